"""The pure rules of a human decision: materiality, request checks, text checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.domain import decision_rules as R


@pytest.mark.parametrize(("outcome", "rec", "risk", "amount", "expected"), [
    ("approve", "approve", "low_risk", 90_000, []),  # accepting is never material
    ("approve", "deny", "high_risk", 1_000, [R.MAT_HIGH_RISK, R.MAT_AGAINST_DENY]),
    ("approve", "manual_review", "low_risk", 25_000.01, [R.MAT_OVER_CAP.format(amount=25_000.01, cap=25_000)]),
    ("approve", "manual_review", "low_risk", 25_000, []),
    ("deny", "approve", "low_risk", 90_000, []),  # towards caution: never material
    ("manual_review", "deny", "high_risk", 90_000, []),
])
def test_materiality(outcome, rec, risk, amount, expected):
    assert R.materiality(outcome=outcome, recommendation=rec, risk_class=risk, loan_amount=amount,
                         cap=25_000) == expected


def test_check_request_accept_and_override():
    assert R.check_request(outcome="deny", recommendation="deny", reason_code=None, reason_text=None) is False
    assert R.check_request(outcome="approve", recommendation="deny", reason_code="other",
                           reason_text="x" * 20) is True
    with pytest.raises(R.DecisionError, match="Outcome must be"):
        R.check_request(outcome="APPROVE", recommendation="deny", reason_code=None, reason_text=None)


def test_reasons_are_a_controlled_list_with_labels():
    assert len(R.OVERRIDE_REASONS) == 8 and "other" in R.OVERRIDE_REASONS
    assert all(code.isidentifier() and len(code) <= 32 and label for code, label in R.OVERRIDE_REASONS.items())


def test_elapsed_seconds():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert R.elapsed_seconds(None, now) is None
    assert R.elapsed_seconds(now - timedelta(seconds=12.5), now) == 12.5
    assert R.elapsed_seconds(now + timedelta(seconds=5), now) == 0.0  # a skewed client clock
    with pytest.raises(R.DecisionError, match="timezone-aware"):
        R.elapsed_seconds(datetime(2026, 1, 1), now)


@pytest.mark.parametrize("key", ["abcdefgh", "a" * 128, "form:3f2a-9c.1_x"])
def test_good_keys(key):
    R.check_key(key)


@pytest.mark.parametrize("key", ["short", "a" * 129, "has space", "nul\x00nul\x00", "ключключключ", ""])
def test_bad_keys(key):
    with pytest.raises(R.DecisionError, match="Idempotency key"):
        R.check_key(key)
