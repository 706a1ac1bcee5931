"""The scoring feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.scoring.card import Card, CutoffDistance, card, cutoff_distance, pd_points, risk_band
from backend.scoring.examples import Example, arm_sentence, example_applications
from backend.scoring.result import (
    META_FIELDS,
    PROTECTED_PASSTHROUGH,
    ApplicationConflict,
    Intake,
    ScoreJob,
    ScoreResult,
    stored_external_id,
)
from backend.scoring.service import ScoringService

__all__ = [
    "Card",
    "CutoffDistance",
    "card",
    "cutoff_distance",
    "pd_points",
    "risk_band",
    "ApplicationConflict",
    "arm_sentence",
    "Example",
    "example_applications",
    "Intake",
    "META_FIELDS",
    "PROTECTED_PASSTHROUGH",
    "ScoreJob",
    "ScoreResult",
    "ScoringService",
    "stored_external_id",
]
