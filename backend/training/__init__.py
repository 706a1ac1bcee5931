"""The training feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.training.alternatives_views import attribution_table, frontier_table, headline, latest_search
from backend.training.pipeline import ensure_champion
from backend.training.retrain import Retrainer, RetrainError
from backend.training.synthetic import SCENARIOS, generate, write_dataset
from backend.training.train import train_and_register

__all__ = [
    "attribution_table",
    "frontier_table",
    "headline",
    "latest_search",
    "ensure_champion",
    "generate",
    "Retrainer",
    "RetrainError",
    "SCENARIOS",
    "train_and_register",
    "write_dataset",
]
