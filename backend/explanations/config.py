"""Explanation settings (``CREDITRISK_LLM__...``): the primary and fallback provider and the price table
used for cost accounting. Nested into the root settings as ``llm``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class LLMProviderSettings(BaseModel):
    provider: Literal["template", "openai", "anthropic", "lambda"] = "template"
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    model: str = ""
    timeout: float = Field(10.0, gt=0, le=120)
    max_retries: int = Field(1, ge=0, le=5)
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(200, ge=16, le=4000)
    region: str = ""  # provider lambda: AWS region (empty: AWS_DEFAULT_REGION, else us-east-1)


class ModelPrice(BaseModel):
    """USD per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)


#: Example list prices (USD per 1M tokens) for cost accounting; configurable through
#: ``CREDITRISK_LLM__PRICES`` (JSON). A model missing from the table is accounted with no cost.
DEFAULT_LLM_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00),
    "gpt-4.1": ModelPrice(input_per_mtok=2.00, output_per_mtok=8.00),
    "claude-sonnet-4-5": ModelPrice(input_per_mtok=3.00, output_per_mtok=15.00),
    "claude-3-5-haiku-latest": ModelPrice(input_per_mtok=0.80, output_per_mtok=4.00),
}


class LLMSettings(LLMProviderSettings):
    fallback: LLMProviderSettings = LLMProviderSettings()
    # the fence around every LLM call (backend/explanations/guard.py)
    deadline: float = Field(20.0, gt=0, le=300)  # seconds for the whole answer: connect, first byte and total
    max_answer_chars: int = Field(4000, ge=200, le=100_000)  # a longer answer is refused unread
    workers: int = Field(4, ge=1, le=64)  # explanation calls in flight; more are refused at once (template)
    breaker_cooldown: float = Field(30.0, ge=0, le=3600)  # seconds a failed provider is skipped
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_LLM_PRICES))
