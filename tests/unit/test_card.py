"""The decision card's figures (backend/scoring/card.py): words that agree, distance from the cutoff,
contributions in PD points."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from backend.scoring.card import card, cutoff_distance, pd_points, risk_band


def calibrate(p: float) -> float:  # a monotone calibration shaped like the demo model's (0.5 -> ~4.9%)
    return 1 / (1 + math.exp(-(12 * (p - 0.5) - 2.97)))


def result(raw=0.564, spread=0.05, rec="deny", risk="high_risk", attributions=None, role="primary", base=None):
    attributions = attributions if attributions is not None else {"a": 0.3, "b": -0.1, "c": 0.05}
    margin = math.log(raw / (1 - raw)) if role == "primary" else raw
    base = base if base is not None else margin - sum(attributions.values())
    return SimpleNamespace(raw_score=raw, member_spread=spread, pd=calibrate(raw), recommendation=rec,
                           risk_class=risk, confidence=1.0, attributions=attributions, margin=margin,
                           base_value=base, model_role=role)


@pytest.mark.parametrize("rec, risk, band", [
    ("deny", "high_risk", "High risk"),
    ("approve", "low_risk", "Low risk"),
    ("manual_review", "high_risk", "High risk"),
    ("manual_review", "low_risk", "Low risk"),
    ("deny", "low_risk", "High risk"),  # a policy denial is never described as low risk
])
def test_risk_band_agrees_with_the_recommendation(rec, risk, band):
    assert risk_band(rec, risk) == band
    assert "moderate" not in band


def test_just_over_the_cutoff_reads_near_even_when_every_member_agrees():
    # the case: score 0.564 over a 0.5 cutoff, member agreement 100%
    d = cutoff_distance(result(raw=0.564, spread=0.07), calibrate, 0.5)
    assert d.label == "near" and d.points > 0 and "Near the cutoff (above)" in d.words
    assert d.cutoff_pd == pytest.approx(calibrate(0.5))


def test_far_from_the_cutoff_reads_clear_and_below_says_below():
    d = cutoff_distance(result(raw=0.2, spread=0.03, rec="approve", risk="low_risk"), calibrate, 0.5)
    assert d.label == "clear" and d.points < 0 and "below" in d.words


def test_members_that_agree_exactly_have_no_spread():
    d = cutoff_distance(result(raw=0.51, spread=0.0), calibrate, 0.5)
    assert d.spreads == math.inf and d.label == "clear" and d.spread_points == 0


def test_exactly_at_the_cutoff():
    d = cutoff_distance(result(raw=0.5, spread=0.05), calibrate, 0.5)
    assert d.points == pytest.approx(0.0) and d.label == "near"


@pytest.mark.parametrize("attributions", [
    {"a": 0.3, "b": -0.1, "c": 0.05},
    {"only": 0.42},  # one feature
    {"a": 0.2, "b": 0.2},  # a tie
    {"a": 1e-9, "b": -1e-9},  # nothing moved the score
])
def test_points_add_up_from_the_baseline_pd_to_this_pd_and_keep_sign_and_order(attributions):
    r = result(attributions=attributions)
    pts = pd_points(r, calibrate)
    base_pd = calibrate(1 / (1 + math.exp(-r.base_value)))
    if abs(r.margin - r.base_value) > 1e-9:
        assert sum(pts.values()) == pytest.approx((r.pd - base_pd) * 100)
    for k, v in attributions.items():
        assert np.sign(pts[k]) == np.sign(v)
    order = sorted(attributions, key=lambda k: attributions[k])
    assert sorted(pts, key=lambda k: pts[k]) == order


def test_card_without_the_model_keeps_the_words_and_drops_model_figures():
    c = card(result(), None)
    assert c.risk_band == "High risk" and c.distance is None and c.points == {}


def test_card_with_a_model_uses_its_cutoff_and_calibration():
    model = SimpleNamespace(policy=SimpleNamespace(score_cutoff=0.5), calibrate=lambda p, model: calibrate(p))
    c = card(result(), model)
    assert c.distance is not None and c.distance.label in ("near", "close", "clear")
    assert c.base_pd is not None and set(c.points) == {"a", "b", "c"}
