"""Principal reasons are material: the floor, at most four, at least one, adversarial contributions."""

from __future__ import annotations

import numpy as np
import pytest

from backend.domain import PolicySettings
from backend.models.reasons import DEFAULT_REASON_FLOOR, ReasonMapper, material

# five features with five different reasons (catalog mapping)
COLS = ["debt_to_income", "num_delinquencies_2y", "num_inquiries_6m", "revolving_utilization", "has_bankruptcy"]


def codes(phi, floor=DEFAULT_REASON_FLOOR, cols=COLS):
    m = ReasonMapper(cols, floor=floor)
    return [r["code"] for r in m.top(np.asarray(phi, dtype=float), dict.fromkeys(cols, 1))]


def test_the_issue_case_a_negligible_factor_beside_a_large_one_is_not_listed():
    # +0.006 log-odds beside +0.54: 1.1% of the risk-raising contribution
    assert codes([0.54, 0.006, 0.0, 0.0, 0.0]) == ["excessive_obligations"]


def test_at_most_four_and_the_floor_is_a_share_of_all_raising_contribution():
    assert len(codes([0.3, 0.3, 0.3, 0.3, 0.3])) == 4
    # 0.04 / (0.5 + 0.4 + 0.04 + 0.02) = 4.2% < 5%: cut; the others stay
    assert codes([0.5, 0.4, 0.04, 0.02, 0.0]) == ["excessive_obligations", "delinquent_obligations"]


def test_all_negligible_still_leaves_the_largest_one():
    # everything tiny and nearly equal: no reason is below 5% of the total except by rounding; with a
    # high floor only the largest survives (a denial always has at least one)
    assert codes([1e-6, 9e-7, 8e-7, 0, 0], floor=0.5) == ["excessive_obligations"]


def test_ties_keep_a_stable_order_and_are_both_listed():
    assert codes([0.2, 0.2, 0.0, 0.0, 0.0]) == ["delinquent_obligations", "excessive_obligations"] or \
        codes([0.2, 0.2, 0.0, 0.0, 0.0]) == ["excessive_obligations", "delinquent_obligations"]
    a, b = codes([0.2, 0.2, 0, 0, 0]), codes([0.2, 0.2, 0, 0, 0])
    assert a == b and len(a) == 2


def test_one_feature_model():
    assert codes([0.01], cols=["debt_to_income"]) == ["excessive_obligations"]
    assert codes([-0.3], cols=["debt_to_income"]) == []


def test_nothing_raised_the_risk_means_no_reason():
    assert codes([-0.1, -0.2, 0.0, -0.05, 0.0]) == []
    assert codes([0.0] * 5) == []


def test_protected_columns_never_count_in_the_total_nor_as_a_reason():
    m = ReasonMapper(["debt_to_income", "num_inquiries_6m", "sex"], protected=["sex"], floor=0.1)
    # sex's +5.0 is not in the total: inquiries' 0.05 is 1/3 of the allowed total, so it is listed
    got = [r["code"] for r in m.top(np.array([0.1, 0.05, 5.0]), {})]
    assert got == ["excessive_obligations", "recent_inquiries"]


def test_floor_zero_lists_every_raising_reason_up_to_four():
    assert len(codes([0.5, 1e-9, 1e-9, 1e-9, 1e-9], floor=0.0)) == 4


def test_material_helper_edge_cases():
    assert material([], 0.0, 0.05) == []
    assert material([(1, 0.1, [0])], 0.0, 0.05) == [(1, 0.1, [0])]


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_the_floor_setting_is_bounded(bad):
    with pytest.raises(ValueError):
        PolicySettings(reason_floor=bad)
