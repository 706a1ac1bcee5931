"""Arm assignment (pure): deterministic, sticky across versions, the configured split within a binomial
tolerance, shadow mode never visible, and eligibility (senior only, named officers, roles, cap)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from backend.rollout.service import AI, CONTROL, EXCLUDED, OfficerInfo, Phase, assign, bucket

N = 20_000
IDS = [f"applicant-{i:06d}" for i in range(N)]
OFFICER = OfficerInfo("olivia", "loan_officer", senior=True)
SALT = "5eed5a1t"


def phase(name: str = "pilot", share: float = 0.1, *, version: int = 1, **kw) -> Phase:  # noqa: ANN003
    return Phase(version=version, phase=name, ai_share=share, loan_amount_cap=25_000.0, confidence_threshold=0.7,
                 salt=SALT, **kw)


def arms(p: Phase, officer: OfficerInfo = OFFICER, loan: float = 10_000.0) -> list[str]:
    return [assign(p, applicant_id=a, officer=officer, loan_amount=loan).arm for a in IDS]


def test_bucket_is_uniform_range_and_keyed():
    values = [bucket(SALT, a) for a in IDS[:2000]]
    assert all(0.0 <= v < 1.0 for v in values)
    assert values == [bucket(SALT, a) for a in IDS[:2000]]  # deterministic
    assert values != [bucket("another-salt", a) for a in IDS[:2000]]  # the salt matters


def test_assignment_is_deterministic():
    p = phase(share=0.3)
    first = [assign(p, applicant_id=a, officer=OFFICER, loan_amount=5000.0) for a in IDS[:500]]
    again = [assign(p, applicant_id=a, officer=OFFICER, loan_amount=5000.0) for a in IDS[:500]]
    assert first == again
    assert all(x.ai_visible == (x.arm == AI) for x in first)


def test_same_applicant_same_arm_across_versions_with_the_same_salt():
    v1, v2 = phase(share=0.3, version=1), phase(share=0.3, version=7, rationale="re-approved")
    assert arms(v1) == arms(v2)


@pytest.mark.parametrize(("small", "large"), [(0.1, 0.5), (0.5, 1.0), (0.1, 0.11)])
def test_ai_at_a_smaller_share_stays_ai_at_a_larger_one(small, large):
    pilot, scaled = phase("pilot", small, version=1), phase("scaled", large, version=2)
    before, after = arms(pilot), arms(scaled)
    moved_out = [i for i in range(N) if before[i] == AI and after[i] != AI]
    assert not moved_out
    assert sum(a == AI for a in after) >= sum(a == AI for a in before)


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5, 0.9])
def test_split_matches_the_ai_share_within_binomial_tolerance(share):
    got = sum(a == AI for a in arms(phase("scaled", share))) / N
    assert abs(got - share) < 4 * math.sqrt(share * (1 - share) / N), got


def test_split_holds_for_other_salts():
    for salt in ("a", "b" * 16, "0123456789abcdef"):
        p = replace(phase("scaled", 0.5), salt=salt)
        got = sum(a == AI for a in arms(p)) / N
        assert abs(got - 0.5) < 4 * math.sqrt(0.25 / N), (salt, got)


def test_shadow_mode_is_all_control_and_never_visible():
    p = phase("shadow", 0.0)
    out = [assign(p, applicant_id=a, officer=o, loan_amount=loan)
           for a in IDS[:3000] for o, loan in [(OFFICER, 1000.0)]]
    out += [assign(p, applicant_id="x", officer=OfficerInfo("z", "loan_officer"), loan_amount=1e9)]  # any officer/cap
    assert {x.arm for x in out} == {CONTROL}
    assert not any(x.ai_visible for x in out)
    assert all(x.phase == "shadow" and x.version == 1 for x in out)


def test_senior_only_excludes_non_senior_officers():
    p = phase(share=1.0, senior_only=True)
    junior = OfficerInfo("oscar", "loan_officer", senior=False)
    assert set(arms(p, junior)) == {EXCLUDED}
    assert set(arms(p, OFFICER)) == {AI}
    a = assign(p, applicant_id="x", officer=junior, loan_amount=100.0)
    assert not a.ai_visible and "senior" in a.reason


def test_named_officers_only():
    p = phase(share=1.0, eligible_officers=("olivia",))
    assert assign(p, applicant_id="x", officer=OFFICER, loan_amount=100.0).arm == AI
    other = OfficerInfo("omar", "loan_officer", senior=True)
    assert assign(p, applicant_id="x", officer=other, loan_amount=100.0).arm == EXCLUDED


def test_role_not_in_the_phase_is_excluded():
    p = phase(share=1.0, eligible_roles=("loan_officer",))
    manager = OfficerInfo("rita", "risk_manager", senior=True)
    assert assign(p, applicant_id="x", officer=manager, loan_amount=100.0).arm == EXCLUDED
    assert assign(p, applicant_id="x", officer=OfficerInfo("cli", "system"), loan_amount=100.0).arm == EXCLUDED


def test_loan_above_the_cap_is_excluded_at_the_cap_is_not():
    p = phase(share=1.0)
    assert assign(p, applicant_id="x", officer=OFFICER, loan_amount=25_000.01).arm == EXCLUDED
    assert assign(p, applicant_id="x", officer=OFFICER, loan_amount=25_000.0).arm == AI


def test_excluded_does_not_depend_on_the_bucket():
    p = phase(share=0.5)
    assert set(arms(p, loan=30_000.0)) == {EXCLUDED}


def test_full_production_includes_everyone():
    p = phase("full", 1.0, senior_only=True, eligible_officers=("olivia",))
    junior = OfficerInfo("oscar", "loan_officer")
    assert set(arms(p, junior, loan=90_000.0)) == {AI}  # above the cap: the policy sends it to review, with the AI
