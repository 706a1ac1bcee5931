"""PSI (backend.monitoring.psi): hand-computed cases, evidently's own PSI on identical bins, categorical
and missing-value bins, the 2-D and grouped paths, and bad input refused with its message."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backend.monitoring.psi import (
    BAD_BINS,
    BAD_COUNTS,
    BAD_EDGES,
    BAD_KIND,
    BAD_NDIM,
    COUNTS_MISMATCH,
    EMPTY,
    EPS,
    MISSING_LABEL,
    NOT_NUMERIC,
    OTHER_LABEL,
    SHAPE_MISMATCH,
    BinSpec,
    band,
    fit_spec,
    grouped_counts,
    numeric_codes,
    psi,
    psi_from_counts,
    psi_matrix,
    quantile_edges,
    spec_counts,
)


def _evidently_psi(ref: pd.Series, cur: pd.Series, numerical: bool) -> float:
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if numerical else ColumnType.Categorical
    return float(_psi(ref, cur, kind, 0.1)[0])


# --------------------------------------------------------------------------- by hand
def test_two_bins_by_hand():
    # bins: x < 1.5 | x >= 1.5 | missing. Reference shares 1/2, 1/2, 0; current 1/4, 3/4, 0.
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert expected == pytest.approx(0.25 * math.log(3))
    assert psi([1, 1, 2, 2], [1, 2, 2, 2], edges=[1.5]) == pytest.approx(expected, rel=1e-12)
    assert psi([1, 1, 2, 2], [1, 1, 2, 2], edges=[1.5]) == 0.0


def test_an_empty_bin_uses_the_epsilon():
    # current has nothing at or above 0.5: its share 0 becomes EPS = 1e-4 (the missing bin is empty on both sides)
    expected = (1 - 0.5) * math.log(1 / 0.5) + (EPS - 0.5) * math.log(EPS / 0.5)
    assert psi([0, 0, 1, 1], [0, 0, 0, 0], edges=[0.5]) == pytest.approx(expected, rel=1e-12)
    assert EPS == 1e-4


def test_missing_values_get_their_own_bin_by_hand():
    # bins: < 2.5 | >= 2.5 | missing. Reference 1/2, 1/2, 0; current 1/2, 1/4, 1/4.
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - EPS) * math.log(0.25 / EPS)
    assert psi([1, 2, 3, 4], [1, 2, 3, np.nan], edges=[2.5]) == pytest.approx(expected, rel=1e-12)
    codes = numeric_codes([1.0, np.nan, 2.5, 9.0], [2.5])
    assert codes.tolist() == [0, 2, 1, 1]  # an edge value goes to the bin above, NaN to the missing bin


def test_categorical_unseen_and_missing_by_hand():
    spec = fit_spec(["a", "a", "b", None], "categorical")
    assert spec.categories == ("a", "b") and spec.labels() == ["a", "b", OTHER_LABEL, MISSING_LABEL]
    ref = spec_counts(["a", "a", "b", None], spec)[0]
    cur = spec_counts(["a", "c", None, ""], spec)[0]  # "c" unseen, a blank string is missing
    assert ref.tolist() == [2, 1, 0, 1] and cur.tolist() == [1, 0, 1, 2]
    expected = ((0.25 - 0.5) * math.log(0.25 / 0.5) + (EPS - 0.25) * math.log(EPS / 0.25)
                + (0.25 - EPS) * math.log(0.25 / EPS) + (0.5 - 0.25) * math.log(0.5 / 0.25))
    assert float(psi_from_counts(ref, cur)) == pytest.approx(expected, rel=1e-12)
    # 1, 1.0 and "1" are one category; surrounding blanks do not make a new one
    assert fit_spec([1, 2], "categorical").codes(["1", 1.0, " 2 ", 3, None]).tolist() == [0, 0, 1, 2, 3]


def test_psi_is_symmetric_and_counts_or_shares_agree():
    r, c = np.array([30, 50, 20, 0]), np.array([10, 60, 25, 5])
    assert float(psi_from_counts(r, c)) == pytest.approx(float(psi_from_counts(c, r)))
    assert float(psi_from_counts(r, c)) == pytest.approx(float(psi_from_counts(r / 100, c * 3)))
    stacked = psi_from_counts(r, np.stack([c, r, c * 2]))  # one reference against three periods
    assert stacked.shape == (3,) and stacked[1] == 0 and stacked[0] == pytest.approx(stacked[2])


# --------------------------------------------------------------------------- evidently on the same bins
def test_equals_evidently_on_its_own_numeric_bins():
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=5_000), rng.normal(0.3, 1.2, size=4_000)
    edges = np.histogram_bin_edges(np.r_[ref, cur], bins="sturges")  # the bins evidently uses (> 20 values)
    ours = psi(ref, cur, edges=edges[1:-1])
    assert ours == pytest.approx(_evidently_psi(pd.Series(ref), pd.Series(cur), numerical=True), rel=1e-12)
    assert ours > 0.05


def test_equals_evidently_on_our_bins_given_as_categories():
    rng = np.random.default_rng(3)
    ref = rng.gamma(2.0, 1.0, size=3_000)
    cur = np.where(rng.random(2_500) < 0.1, np.nan, rng.gamma(2.3, 1.1, size=2_500))
    spec = fit_spec(ref, "numeric", 10)
    r_codes, c_codes = spec.codes(ref), spec.codes(cur)  # missing is a bin of its own (code 10)
    ours = float(psi_from_counts(spec_counts(ref, spec)[0], spec_counts(cur, spec)[0]))
    theirs = _evidently_psi(pd.Series(r_codes.astype(str)), pd.Series(c_codes.astype(str)), numerical=False)
    assert ours == pytest.approx(theirs, rel=1e-12)
    cats = fit_spec(["rent", "own", "mortgage"] * 50, "categorical")
    values = rng.choice(["rent", "own", "mortgage", "other"], size=400, p=[0.5, 0.2, 0.2, 0.1])
    ours = float(psi_from_counts(spec_counts(["rent", "own", "mortgage"] * 50, cats)[0], spec_counts(values, cats)[0]))
    theirs = _evidently_psi(pd.Series(["rent", "own", "mortgage"] * 50), pd.Series(values), numerical=False)
    assert ours == pytest.approx(theirs, rel=1e-12)  # "other" is unseen in both: its own bin


# --------------------------------------------------------------------------- 2-D and grouped paths
def test_matrix_equals_column_by_column():
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(2_000, 5))
    cur = rng.normal(0.1, 1.0, size=(1_500, 5))
    cur[rng.random(cur.shape) < 0.05] = np.nan
    ref[:, 3] = rng.integers(0, 3, size=2_000)  # few distinct values: one bin per value
    cur[:, 3] = rng.integers(0, 4, size=1_500)  # a new value (3) lands in the top bin
    out = psi_matrix(ref, cur, bins=10)
    assert out.shape == (5,)
    for j in range(5):
        assert out[j] == pytest.approx(psi(ref[:, j], cur[:, j], bins=10), rel=1e-12)


def test_grouped_counts_equal_separate_counts():
    rng = np.random.default_rng(5)
    x = rng.normal(size=1_000)
    groups = rng.integers(0, 4, size=1_000)
    spec = fit_spec(x, "numeric", 8)
    by_group = spec_counts(x, spec, groups, 4)
    assert by_group.shape == (4, spec.n_bins)
    for g in range(4):
        assert by_group[g].tolist() == spec_counts(x[groups == g], spec)[0].tolist()
    assert grouped_counts([0, 1, 1], 3).tolist() == [[1, 2, 0]]


def test_quantile_edges():
    assert quantile_edges([0, 1, 1, 0, np.nan], 10).tolist() == [0.0, 1.0]  # few values: one bin each
    edges = quantile_edges(np.arange(1_000, dtype=float), 10)
    assert len(edges) == 9 and edges[0] == pytest.approx(99.9) and np.all(np.diff(edges) > 0)
    assert quantile_edges([np.nan, np.nan], 10).size == 0
    only_missing = BinSpec("numeric")
    assert only_missing.labels() == ["any value", MISSING_LABEL] and only_missing.n_bins == 2


def test_spec_round_trip_and_labels():
    spec = fit_spec([10.0, 2500.0, 40_000.0, 7.5], "numeric", 2)
    assert BinSpec.from_dict(spec.to_dict()) == spec
    assert spec.labels()[0].startswith("< ") and spec.labels()[-2].startswith(">= ")
    assert fit_spec(np.arange(5.0), "numeric").labels() == ["< 0", "[0, 1)", "[1, 2)", "[2, 3)", "[3, 4)", ">= 4",
                                                            MISSING_LABEL]


def test_bands():
    assert [band(v) for v in (0.0, 0.0999, 0.10, 0.25, 0.2501, None, float("nan"))] == \
        ["stable", "stable", "watch", "watch", "act", "n/a", "n/a"]
    assert band(0.15, watch=0.2, act=0.3) == "stable"


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("call", "message"), [
    (lambda: psi([], [1.0]), EMPTY.format(ref=0, cur=1)),
    (lambda: psi([1.0], []), EMPTY.format(ref=1, cur=0)),
    (lambda: psi_matrix(np.zeros((4, 3)), np.zeros((4, 4))), SHAPE_MISMATCH.format(ref=3, cur=4)),
    (lambda: psi_matrix(np.zeros((0, 3)), np.zeros((4, 3))), EMPTY.format(ref=0, cur=4)),
    (lambda: psi_matrix(np.zeros(4), np.zeros(4)), BAD_NDIM.format(ndim=1)),
    (lambda: psi(np.zeros((2, 2)), np.zeros(2)), BAD_NDIM.format(ndim=2)),
    (lambda: psi([1.0, 2.0], [1.0], bins=1), BAD_BINS.format(bins=1)),
    (lambda: psi([1.0, 2.0], [1.0], bins=True), BAD_BINS.format(bins=True)),
    (lambda: quantile_edges([1.0], 101), BAD_BINS.format(bins=101)),
    (lambda: psi([1.0, 2.0], [1.0], edges=[2.0, 1.0]), BAD_EDGES),
    (lambda: psi([1.0, 2.0], [1.0], edges=[np.inf]), BAD_EDGES),
    (lambda: psi(["a", "b"], ["a"]), NOT_NUMERIC.format(dtype="<U1")),
    (lambda: psi_from_counts([1, 2, 3], [1, 2]), COUNTS_MISMATCH.format(ref=(3,), cur=(2,))),
    (lambda: psi_from_counts([1, -2], [1, 2]), BAD_COUNTS),
    (lambda: psi_from_counts([1, np.nan], [1, 2]), BAD_COUNTS),
    (lambda: psi_from_counts([0, 0], [1, 2]), EMPTY.format(ref=0, cur=3)),
    (lambda: grouped_counts([0, 1], 2, groups=[0]), SHAPE_MISMATCH.format(ref=2, cur=1)),
    (lambda: BinSpec("ordinal"), BAD_KIND.format(kind="ordinal")),
    (lambda: fit_spec([1, 2], "text"), BAD_KIND.format(kind="text")),
    (lambda: BinSpec("numeric", edges=(3.0, 1.0)), BAD_EDGES),
])
def test_bad_input_is_refused_with_its_message(call, message):
    with pytest.raises(ValueError) as exc:
        call()
    assert str(exc.value) == message
