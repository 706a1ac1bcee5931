"""Explanations of scored decisions: decision record, template, LLM adapters, fact-check, engine.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.explanations.adapters.anthropic import AnthropicExplainer
from backend.explanations.adapters.lambda_ import LambdaExplainer
from backend.explanations.adapters.openai import OpenAIExplainer
from backend.explanations.config import LLMProviderSettings, LLMSettings, ModelPrice
from backend.explanations.engine import (
    UNKNOWN_PROVIDER,
    EngineStream,
    ExplanationEngine,
    ExplanationOutcome,
    LLMExplainer,
    StreamEvent,
)
from backend.explanations.factcheck import fact_check, verdict
from backend.explanations.guard import ProviderGuard
from backend.explanations.metrics import record_scores
from backend.explanations.providers import LLMUsage, ProviderError, classify_error, cost_usd
from backend.explanations.qa_llm import LLMQA, QAStream, ToolStream, ToolTurn
from backend.explanations.queries import ExplainRepository
from backend.explanations.questions import Answer, DecisionQA
from backend.explanations.questions_compare import MIN_COUNT, FrameComparisonStats
from backend.explanations.record import DecisionRecord, RecordError, format_value
from backend.explanations.template import TemplateExplainer

__all__ = [
    "Answer",
    "AnthropicExplainer",
    "classify_error",
    "cost_usd",
    "DecisionQA",
    "DecisionRecord",
    "EngineStream",
    "ExplainRepository",
    "ExplanationEngine",
    "ExplanationOutcome",
    "fact_check",
    "format_value",
    "FrameComparisonStats",
    "LambdaExplainer",
    "LLMExplainer",
    "LLMQA",
    "LLMProviderSettings",
    "LLMSettings",
    "LLMUsage",
    "MIN_COUNT",
    "ModelPrice",
    "OpenAIExplainer",
    "ProviderError",
    "ProviderGuard",
    "QAStream",
    "record_scores",
    "RecordError",
    "StreamEvent",
    "TemplateExplainer",
    "ToolStream",
    "ToolTurn",
    "UNKNOWN_PROVIDER",
    "verdict",
]
