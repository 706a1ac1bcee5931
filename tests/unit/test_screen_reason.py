"""A reason on a screen (card, Q&A) reads as the notice prints it, without words that point at the notice."""

from __future__ import annotations

from backend.domain import FORM_C1, OTHER_SPECIFIED, REASONS, printed_reason, screen_reason


def test_other_specified_reasons_read_as_the_reason_itself_and_never_point_at_a_notice() -> None:
    for key, text in OTHER_SPECIFIED.items():
        shown = screen_reason(text)
        assert not shown.startswith("Other") and "notice" not in shown and shown, (key, shown)
        assert shown in printed_reason(text)
    assert screen_reason(REASONS["other_credit_score"]) == "Credit bureau score"
    assert "listed in this notice" in printed_reason(REASONS["other_credit_score"])  # the notice keeps its words


def test_form_reasons_are_unchanged() -> None:
    for key, text in FORM_C1.items():
        assert screen_reason(text) == text, key
