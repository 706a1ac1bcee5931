"""Explanations of scored decisions: decision record, template, LLM adapters, fact-check, engine."""
