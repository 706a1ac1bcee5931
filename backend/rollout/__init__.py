"""The rollout feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.rollout.acceptances import Acceptance, AcceptanceService
from backend.rollout.service import (
    FEATURE_LABELS,
    FEATURES,
    PHASE_LABELS,
    PHASES,
    OfficerInfo,
    Phase,
    RolloutError,
    RolloutService,
    assign,
    bucket,
    default_phase,
    with_policy,
)

__all__ = [
    "Acceptance",
    "AcceptanceService",
    "assign",
    "bucket",
    "default_phase",
    "FEATURE_LABELS",
    "FEATURES",
    "OfficerInfo",
    "Phase",
    "PHASE_LABELS",
    "PHASES",
    "RolloutError",
    "RolloutService",
    "with_policy",
]
