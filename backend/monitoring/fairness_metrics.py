"""Group fairness metrics for the decision book: pure functions, data in, numbers out.

The per-group figures (selection rates, TPR/FPR, default and override rates) are fairlearn's
definitions, and the unit tests check every one against fairlearn's :class:`~fairlearn.metrics.MetricFrame`
run directly on the raw rows. To stay fast on a million decisions the rows are first collapsed into
*cells*: one row per distinct combination of the columns that matter, with the number of applications
in the cell as weight ``w``. Every figure is then a weighted selection rate, ``sum(w * flag) / sum(w)``
per group (fairlearn's ``selection_rate`` with ``sample_weight=w``): a weighted mean over cells is
exactly the unweighted mean over the rows they stand for. TPR and FPR are the selection rate among
repaid and among defaulted loans, which is what fairlearn's ``true_positive_rate`` /
``false_positive_rate`` compute.

Hand-written on purpose (:func:`shares`): MetricFrame pays ~0.7 ms per group and part in pandas
``groupby.apply``, and a refresh asks for thousands of them (6,014 per period on a 12,000-application
book): it was 7.4 s of a 9.5 s fairness refresh. The same weighted means from one pandas ``groupby``
sum take milliseconds (``bench/fairness_shares.py`` prints both on the same parts; the values agree to
the last few bits of a double, ``tests/unit/test_fairness_metrics.py``).

Definitions (stated on the page and in the report):

* **Selection rate** of a group at a stage: the share of its applications with a favourable
  result at that stage.
* **Disparate-impact ratio** (DI) of a group: its selection rate divided by the selection rate of
  the *reference group*, the most favoured judged group (highest selection rate among groups with
  at least ``min_group`` applications; "not provided" answers are shown but never judged nor used
  as the reference). The lowest DI equals fairlearn's ``demographic_parity_ratio`` over the judged
  groups.
* **TPR / FPR** on funded loans with a known outcome: the favourable result is the prediction and
  *repaid* is the positive label, so TPR = P(favourable | repaid) and FPR = P(favourable |
  defaulted). Gaps are the largest minus the smallest value over judged groups; fairlearn's
  ``equalized_odds_difference`` is the larger of the two gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

STAGES = ("model", "policy", "officer", "final")
STAGE_LABELS = {
    "model": "1. Model recommendation (low risk)",
    "policy": "2. Policy (recommendation: approve)",
    "officer": "3. Officer decision (before four-eyes)",
    "final": "4. Final decision (approved)",
}
ATTRIBUTES = ("sex", "age_band", "race_ethnicity")
INTERSECTIONS = (("sex", "race_ethnicity"), ("sex", "age_band"), ("age_band", "race_ethnicity"))
ATTRIBUTE_LABELS = {"sex": "Sex", "age_band": "Age band", "race_ethnicity": "Race/ethnicity"}
SEP = "+"  # attribute key of an intersection: "sex+race_ethnicity"; its groups read "female / black"
GROUP_SEP = " / "
NOT_PROVIDED = frozenset({"not_provided", "unknown", "missing", ""})
CI_LEVEL = 0.95

# error messages (asserted by tests)
MISSING_COLUMNS = "Cells lack the columns {missing}; expected {expected}."
BAD_COUNTS = "Group counts must satisfy 0 <= favourable <= n (got n={n}, favourable={k})."
BAD_SAMPLES = "The number of bootstrap samples must be at least 1 (got {b})."


def attribute_key(attrs: str | Sequence[str]) -> str:
    return attrs if isinstance(attrs, str) else SEP.join(attrs)


def attribute_columns(key: str) -> list[str]:
    return key.split(SEP)


def attribute_label(key: str) -> str:
    return " × ".join(ATTRIBUTE_LABELS.get(a, a) for a in attribute_columns(key))


def _check(cells: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in cells.columns]
    if missing:
        raise ValueError(MISSING_COLUMNS.format(missing=missing, expected=list(cols)))


def group_labels(cells: pd.DataFrame, key: str) -> np.ndarray:
    """Each cell's group under attribute ``key`` ("female", or "female / black" for an intersection)."""
    cols = attribute_columns(key)
    out = cells[cols[0]].astype(str).to_numpy()
    for c in cols[1:]:
        out = out + GROUP_SEP + cells[c].astype(str).to_numpy()
    return np.asarray(out, dtype=object)


#: One slice of a stacked MetricFrame call: (attribute key, part name, cells, flag column). The
#: selection rate of ``flag`` is measured per group of ``key`` over ``cells``.
Part = tuple[str, str, pd.DataFrame, str]


def shares(parts: Sequence[Part], *, weight: str = "w") -> pd.DataFrame:
    """Share of rows with the flag set, per group, for many parts in one grouped sum.

    All parts are stacked into one long frame keyed by part and ``"<key>=<group>"``; each figure is
    the weighted selection rate ``sum(w * flag) / sum(w)`` (fairlearn's ``selection_rate`` with
    ``sample_weight``; see the module docstring for why it is not computed by MetricFrame).

    Parameters
    ----------
    parts : sequence of (key, name, cells, flag)
        ``key``: attribute key (``"sex"`` or ``"sex+race_ethnicity"``); ``name``: the part's name
        (e.g. a stage); ``cells``: attribute columns, boolean ``flag`` and ``weight``; parts may
        use different subsets of the cells.
    weight : str
        The column holding the number of applications a cell stands for.

    Returns
    -------
    DataFrame
        ``attribute, group, stage, n, favourable, rate`` in the order of ``parts`` then group:
        ``stage`` is the part's name, ``n`` and ``favourable`` are counts of applications (exact
        sums of the weights) and ``rate`` is fairlearn's ``selection_rate``.
    """
    long = stacked(parts, weight=weight)
    if long is None:
        return pd.DataFrame(columns=SHARE_COLUMNS)
    merged = long.assign(yw=long["y"] * long["w"]).groupby(["stage", "sf"], sort=False)[["w", "yw"]].sum()
    merged["rate"] = merged["yw"] / merged["w"]  # every group here has weight > 0 (empty cells were dropped)
    return share_table(merged, parts)


SHARE_COLUMNS = ["attribute", "group", "stage", "n", "favourable", "rate"]


def stacked(parts: Sequence[Part], *, weight: str = "w") -> pd.DataFrame | None:
    """All parts in one long frame: ``sf`` ("<key>=<group>"), ``stage`` ("<key>|<name>"), the flag ``y``
    and the weight ``w`` of each non-empty cell; None when no part has one."""
    frames = []
    for key, name, cells, flag in parts:
        _check(cells, [*attribute_columns(key), flag, weight])
        cells = cells[cells[weight] > 0]
        if len(cells):
            frames.append(pd.DataFrame({"sf": key + "=" + group_labels(cells, key), "stage": f"{key}|{name}",
                                        "y": cells[flag].to_numpy(dtype=np.int8),
                                        "w": cells[weight].to_numpy(dtype=float)}))
    return pd.concat(frames, ignore_index=True) if frames else None


def share_table(merged: pd.DataFrame, parts: Sequence[Part]) -> pd.DataFrame:
    """:func:`shares`' result from its grouped sums (index ``stage, sf``; columns ``w``, ``yw``, ``rate``)."""
    stage = merged.index.get_level_values("stage").str.split("|", n=1)
    sf = merged.index.get_level_values("sf").str.split("=", n=1)
    out = pd.DataFrame({"attribute": sf.str[0], "group": sf.str[1], "stage": stage.str[1],
                        "n": np.rint(merged["w"].to_numpy()).astype(int),
                        "favourable": np.rint(merged["yw"].to_numpy()).astype(int),
                        "rate": merged["rate"].to_numpy(dtype=float)})
    order = {(k, nm): i for i, (k, nm, _c, _f) in enumerate(parts)}
    out["_o"] = [order[(a, s)] for a, s in zip(out["attribute"], out["stage"], strict=True)]
    return out.sort_values(["_o", "group"], ignore_index=True)[SHARE_COLUMNS]


def group_rates(cells: pd.DataFrame, attrs: str | Sequence[str], stages: Sequence[str] = STAGES, *,
                weight: str = "w") -> pd.DataFrame:
    """Selection rate per group and stage (see :func:`shares`); ``cells`` has one boolean column per
    stage (favourable result at that stage).

    Returns
    -------
    DataFrame
        ``group, stage, n, favourable, rate``.
    """
    key = attribute_key(attrs)
    out = shares([(key, s, cells, s) for s in stages], weight=weight)
    return out.drop(columns="attribute")


def provided(group: str) -> bool:
    """False when any part of the group label is a "not provided" answer (shown, never judged)."""
    return not any(part.strip().lower() in NOT_PROVIDED for part in group.split(GROUP_SEP))


def judged(groups: Sequence[str], n: np.ndarray, min_group: int) -> np.ndarray:
    """Which groups are judged: at least ``min_group`` applications and a provided answer."""
    return np.asarray([provided(g) for g in groups], dtype=bool) & (np.asarray(n) >= min_group)


def disparate_impact(rate: np.ndarray, is_judged: np.ndarray) -> tuple[np.ndarray, int | None]:
    """DI of every group against the most favoured judged group.

    Parameters
    ----------
    rate : ndarray
        Selection rates of the groups.
    is_judged : ndarray of bool
        Which groups may be the reference (see :func:`judged`).

    Returns
    -------
    di : ndarray
        ``rate / rate[reference]`` (NaN when there is no reference or its rate is zero).
    reference : int or None
        Index of the reference group (highest rate among judged groups; ties: the first).
    """
    rate = np.asarray(rate, dtype=float)
    if not np.any(is_judged):
        return np.full(rate.shape, np.nan), None
    ref = int(np.flatnonzero(is_judged)[np.argmax(rate[is_judged])])
    if rate[ref] <= 0:
        return np.full(rate.shape, np.nan), ref
    return rate / rate[ref], ref


def bootstrap_rates(n: np.ndarray, k: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of each group's selection rate, resampling within each group.

    Resampling a group's ``n`` rows with replacement and counting the favourable ones gives a
    count distributed exactly as ``Binomial(n, k / n)``; so instead of drawing ``n`` row indices
    per replicate (O(rows x samples) work and memory) we draw the counts directly, O(groups x
    samples), vectorized in numpy. Group sizes stay fixed (a stratified bootstrap), which is the
    design of the question: the groups are given, their selection rates are estimated.

    Parameters
    ----------
    n, k : ndarray of int
        Applications and favourable results per group.
    samples : int
        Number of bootstrap replicates ``B``.
    rng : numpy.random.Generator
        Source of randomness (a seeded generator makes the result reproducible).

    Returns
    -------
    ndarray, shape (groups, B)
        Replicated selection rates (NaN for an empty group).
    """
    n = np.asarray(n, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    if samples < 1:
        raise ValueError(BAD_SAMPLES.format(b=samples))
    if np.any((k < 0) | (k > n)):
        bad = int(np.flatnonzero((k < 0) | (k > n))[0])
        raise ValueError(BAD_COUNTS.format(n=int(n[bad]), k=int(k[bad])))
    p = np.divide(k, n, out=np.zeros(n.shape, dtype=float), where=n > 0)
    draws = rng.binomial(n[:, None], p[:, None], size=(len(n), samples))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n[:, None] > 0, draws / np.maximum(n, 1)[:, None], np.nan)


def di_intervals(n: np.ndarray, k: np.ndarray, reference: int | None, *, samples: int, seed: int,
                 level: float = CI_LEVEL) -> dict[str, np.ndarray]:
    """Percentile bootstrap intervals for selection rates and DI ratios (see :func:`bootstrap_rates`).

    Parameters
    ----------
    n, k : ndarray of int
        Applications and favourable results per group.
    reference : int or None
        The reference group of the point estimate; each group's DI interval is that of
        ``rate_g / rate_reference`` (the reference itself gets [1, 1]).
    samples, seed : int
        Replicates and the seed of ``numpy.random.default_rng`` (same seed, same intervals).
    level : float
        Coverage of the two-sided interval.

    Returns
    -------
    dict
        ``rate_lo, rate_hi, di_lo, di_hi``: arrays per group (NaN where undefined). The interval of
        the lowest ratio is that of its group against the reference: re-selecting the minimum and
        maximum group in every replicate would bias the interval downwards when there are many
        groups (the extremes of noisy estimates), so the groups are kept fixed.
    """
    rng = np.random.default_rng(seed)
    reps = bootstrap_rates(n, k, samples, rng)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    nan = np.full(len(reps), np.nan)
    out = {"rate_lo": nan.copy(), "rate_hi": nan.copy(), "di_lo": nan.copy(), "di_hi": nan.copy()}
    if len(reps) == 0:
        return out
    with np.errstate(all="ignore"):
        live = np.asarray(n) > 0
        if live.any():
            out["rate_lo"][live], out["rate_hi"][live] = np.percentile(reps[live], q, axis=1)
        if reference is not None:
            ratios = reps / reps[reference][None, :]
            ratios[~np.isfinite(ratios)] = np.nan
            ok = live & ~np.all(np.isnan(ratios), axis=1)
            if ok.any():
                out["di_lo"][ok], out["di_hi"][ok] = nan_percentile_rows(ratios[ok], q)
    return out


def nan_percentile_rows(a: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """``np.nanpercentile(a, q, axis=1)`` for a 2-D ``a``, the same values bit for bit
    (``tests/unit/test_fairness_metrics.py``), 2-4x faster on 4-12 groups of 1,000 replicates. A DI ratio is NaN in the
    replicates where the reference group's rate is 0, the same replicates in every row: the rows whose NaNs are
    exactly those (or none) go to ``np.percentile`` together without them, any other row on its own."""
    nan = np.isnan(a)
    if not nan.any():
        return np.percentile(a, q, axis=1)
    out = np.empty((len(q), len(a)))
    common = nan.all(axis=0)  # NaN in every row
    same = (nan == common).all(axis=1) if not common.all() else np.zeros(len(a), dtype=bool)
    if same.any():
        out[:, same] = np.percentile(a[same][:, ~common], q, axis=1)
    for i in np.flatnonzero(~same):
        out[:, i] = np.percentile(a[i][~nan[i]], q) if not nan[i].all() else np.nan  # (numpy: NaN and a warning)
    return out


def error_rates(cells: pd.DataFrame, attrs: str | Sequence[str], stages: Sequence[str] = STAGES, *,
                label: str = "repaid", weight: str = "w") -> pd.DataFrame:
    """TPR and FPR per group and stage (positive label: ``label``; prediction: the stage's
    favourable result). Pass only rows with a known outcome (funded loans).

    TPR is the selection rate among the positives and FPR among the negatives, each computed by
    fairlearn's ``MetricFrame`` in the stacked call of :func:`shares` (identical to fairlearn's
    ``true_positive_rate`` / ``false_positive_rate``; the unit tests check it).

    Returns
    -------
    DataFrame
        ``group, stage, n, positives, negatives, tpr, fpr`` (``tpr``/``fpr`` NaN when the group has
        no positives/negatives).
    """
    key = attribute_key(attrs)
    _check(cells, [label])
    pos, neg = cells[cells[label].astype(bool)], cells[~cells[label].astype(bool)]
    return tpr_fpr(shares([(key, f"{k}|{s}", part, s) for s in stages
                           for k, part in (("tpr", pos), ("fpr", neg))], weight=weight), stages)


def tpr_fpr(sh: pd.DataFrame, stages: Sequence[str] = STAGES) -> pd.DataFrame:
    """Reshape :func:`shares` rows named ``tpr|<stage>`` / ``fpr|<stage>`` into one row per group
    and stage: ``group, stage, n, positives, negatives, tpr, fpr``."""
    cols = ["group", "stage", "n", "positives", "negatives", "tpr", "fpr"]
    sh = sh[sh["stage"].str.startswith(("tpr|", "fpr|"))]
    if sh.empty:
        return pd.DataFrame(columns=cols)
    kind = sh["stage"].str.split("|", n=1)
    wide = sh.assign(kind=kind.str[0], st=kind.str[1]).pivot_table(index=["st", "group"], columns="kind",
                                                                    values=["n", "rate"], aggfunc="first")
    n_pos = wide.get(("n", "tpr"), pd.Series(0, index=wide.index)).fillna(0).astype(int)
    n_neg = wide.get(("n", "fpr"), pd.Series(0, index=wide.index)).fillna(0).astype(int)
    out = pd.DataFrame({"group": wide.index.get_level_values("group"), "stage": wide.index.get_level_values("st"),
                        "n": (n_pos + n_neg).to_numpy(), "positives": n_pos.to_numpy(), "negatives": n_neg.to_numpy(),
                        "tpr": wide.get(("rate", "tpr"), pd.Series(np.nan, index=wide.index)).to_numpy(dtype=float),
                        "fpr": wide.get(("rate", "fpr"), pd.Series(np.nan, index=wide.index)).to_numpy(dtype=float)})
    order = {s: i for i, s in enumerate(stages)}
    out["_o"] = out["stage"].map(order)
    return out.sort_values(["_o", "group"], ignore_index=True)[cols]


def gap(values: np.ndarray, mask: np.ndarray) -> float | None:
    """Largest minus smallest of ``values`` over ``mask`` (None with fewer than two finite values)."""
    v = np.asarray(values, dtype=float)[np.asarray(mask, dtype=bool)]
    v = v[np.isfinite(v)]
    return float(v.max() - v.min()) if len(v) >= 2 else None


def finite(x: Any) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    if x is None:
        return None
    f = float(x)
    return f if np.isfinite(f) else None
