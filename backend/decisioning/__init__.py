"""The decisioning feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.decisioning.book import BookService
from backend.decisioning.config import (
    EXAMPLE_ORGANIZATION_ADDRESS,
    EXAMPLE_ORGANIZATION_NAME,
    LetterSettings,
    NoticeSettings,
)
from backend.decisioning.decisions import BulkDecision, BulkReview, DecisionService
from backend.decisioning.feedback import FeedbackError, FeedbackItem, FeedbackService, SurveyItem, period_of
from backend.decisioning.letters import NoticeNotRequired, build_notice, notice_outcome, render_text
from backend.decisioning.letters_pdf import render_pdf
from backend.decisioning.outcomes import OutcomeService
from backend.decisioning.preparation import HistoryProgress, ProgressFile, ProgressRecorder
from backend.decisioning.workspace import FEATURE_OFF, AIHidden, WorkspaceService

__all__ = [
    "AIHidden",
    "BookService",
    "build_notice",
    "notice_outcome",
    "BulkDecision",
    "BulkReview",
    "DecisionService",
    "EXAMPLE_ORGANIZATION_ADDRESS",
    "EXAMPLE_ORGANIZATION_NAME",
    "FEATURE_OFF",
    "FeedbackError",
    "FeedbackItem",
    "FeedbackService",
    "HistoryProgress",
    "LetterSettings",
    "NoticeNotRequired",
    "NoticeSettings",
    "OutcomeService",
    "ProgressFile",
    "ProgressRecorder",
    "period_of",
    "render_pdf",
    "render_text",
    "SurveyItem",
    "WorkspaceService",
]
