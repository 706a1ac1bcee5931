"""Less discriminatory alternatives (issue 19): when a model's disparate-impact screen fails, or on request,
search for a model that passes it with the least loss of accuracy, and say openly what was tried.

The search starts from a trained :class:`~backend.training.train.TrainResult` (the *base*) and its data:

1. **Attribution on the protected groups.** For the attribute with the worst adverse-impact ratio (AIR: the
   lowest approval rate over the highest among judged groups, :func:`backend.models.evaluation.fairness_by_attribute`,
   the same figure and bootstrap interval the fairness gate reads), the base model's SHAP attributions
   (:meth:`StumpEnsemble.attributions`, the engine's own) on the held-out rows are averaged in the least and the
   most approved group; a feature's *disparity share* is the difference (risk it adds to the least approved group
   beyond the most approved one). The features with the largest positive share carry the disparity.
2. **Candidates** (a small grid, :func:`grid`): drop the top 1 to 5 of those features, or the 2 or 3 with the
   largest share per unit of importance (:func:`efficient`: the cheapest in accuracy); monotone constraints
   (every stump may only raise the risk in the direction the training rows show for its feature); regularisation
   (fewer, shrunken stumps); and the top 1 to 4 dropped under monotone constraints. Each is trained by the same pipeline
   (:func:`backend.training.recipes.primary_pipeline`) on the same training rows and scored on the same held-out
   rows (:func:`backend.training.train.split_indices`) with the one policy cutoff.
3. **Frontier.** Each candidate's held-out AUC with its Hanley-McNeil interval
   (:func:`backend.platform.stats.auc_interval`) and its worst AIR with the bootstrap interval, and whether every
   fairness gate passes (:func:`backend.models.gates.fairness_gates`).
4. **Choice.** When the base fails the screen: the passing candidate with the highest AUC. When it passes (a search
   on request): the passing candidate with the highest worst AIR among those within ``max_auc_loss`` of the base
   AUC, if any improves on the base. The chosen configuration is then trained in full by
   :func:`backend.training.train.train` (cross-validation, calibration, compilation, fallback) and registered as
   the challenger, with the whole search in its report (``alternatives``) and a summary in its lineage (audited).

Never used: a protected attribute as a feature (refused, :data:`MSG_PROTECTED_FEATURE`) or a threshold per group
(every candidate is judged at the one policy cutoff; the registered version carries one cutoff).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from backend.models import GateConfig, as_groups, auc, evaluate, fairness_gates
from backend.platform.stats import auc_interval
from backend.training.dataset import Dataset
from backend.training.recipes import primary_pipeline

TOP_FEATURES = 5  # disparity-carrying features considered for dropping
REGULARISED = {"learning_rate": 0.5, "n_boost": 25}
MSG_PROTECTED_FEATURE = "refused: protected attribute(s) {names} among the model's features; they are never features"
MSG_NO_PROTECTED = "no protected attribute in the data: there is no adverse-impact ratio to improve"
MSG_NONE_PASSES = ("no candidate passes the disparate-impact screen; nothing registered. Consider other features or "
                   "a wider grid, and review the attribution table")
MSG_BASE_PASSES = "the base model passes the screen and no candidate improves its worst ratio within the AUC budget"


@dataclass(frozen=True)
class Candidate:
    """One configuration of the grid: features dropped, monotone constraints, regularisation."""

    name: str
    drop: tuple[str, ...] = ()
    monotone: bool = False
    regularised: bool = False

    def describe(self) -> str:
        parts = [f"drop {', '.join(self.drop)}"] if self.drop else []
        parts += ["monotone constraints"] if self.monotone else []
        parts += ["regularised (learning rate 0.5, 25 stumps a bag)"] if self.regularised else []
        return "; ".join(parts) or "as trained"


def grid(top: Sequence[str], cheap: Sequence[str] = ()) -> list[Candidate]:
    """The candidate grid for the disparity-carrying features ``top`` (largest share first) and ``cheap`` (largest
    share per unit of importance first, :func:`efficient`; a drop already in the grid is not repeated)."""
    out = [Candidate("base")]
    out += [Candidate(f"drop_top{k}", drop=tuple(top[:k])) for k in range(1, min(TOP_FEATURES, len(top)) + 1)]
    seen = {frozenset(c.drop) for c in out}
    for k in (2, 3):
        if len(cheap) >= k and frozenset(cheap[:k]) not in seen:
            out.append(Candidate(f"drop_efficient{k}", drop=tuple(cheap[:k])))
            seen.add(frozenset(cheap[:k]))
    out += [Candidate("monotone", monotone=True), Candidate("regularised", regularised=True)]
    out += [Candidate(f"drop_top{k}_monotone", drop=tuple(top[:k]), monotone=True) for k in (1, 2, 3, 4)
            if len(top) >= k]
    return out


def check_no_protected(features: Sequence[str], protected: Sequence[str]) -> None:
    """Refuse a feature list holding a protected attribute (the rule every candidate obeys)."""
    bad = sorted(set(map(str, features)) & set(map(str, protected)))
    if bad:
        raise ValueError(MSG_PROTECTED_FEATURE.format(names=", ".join(bad)))


def monotone_directions(X: np.ndarray, y: np.ndarray) -> list[int]:
    """+1 where the encoded feature rises with the default rate on the training rows, -1 where it falls, 0 when
    flat (Pearson sign on the encoded values; categorical codes are ordered by training default rate)."""
    yc = y - y.mean()
    out = []
    for j in range(X.shape[1]):
        xc = X[:, j] - X[:, j].mean()
        c = float(np.dot(xc, yc))
        out.append(0 if not np.isfinite(c) or abs(c) < 1e-12 else (1 if c > 0 else -1))
    return out


def worst_air(fairness: dict[str, Any], gates: Sequence[Any]) -> dict[str, Any]:
    """The gated attribute with the lowest ratio: ``attribute``, ``air``, ``ci``, ``groups`` (least, most)."""
    measured = [g for g in gates if g.value is not None]
    if not measured:
        return {"attribute": None, "air": None, "ci": None, "least": None, "most": None}
    g = min(measured, key=lambda r: r.value)
    attr = g.name.split(":", 1)[1]
    block = fairness[attr]
    return {"attribute": attr, "air": float(g.value), "ci": block.get("disparate_impact_ci"),
            "least": block.get("least_approved_group"), "most": block.get("most_approved_group")}


def disparity_shares(compiled: Any, M_te: np.ndarray, groups: np.ndarray, least: str, most: str,
                     features: Sequence[str]) -> list[dict[str, Any]]:
    """Per feature, mean SHAP (log-odds of default) in the least approved group minus in the most approved
    group, largest first: the risk a feature adds to the least approved group beyond the most approved one."""
    phi, _ = compiled.attributions(M_te)
    lo, hi = groups == least, groups == most
    share = phi[lo].mean(axis=0) - phi[hi].mean(axis=0)
    importance = np.abs(phi).mean(axis=0)
    order = np.argsort(-share, kind="stable")
    return [{"feature": str(features[j]), "share": float(share[j]), "importance": float(importance[j])}
            for j in order]


def efficient(attribution: Sequence[dict[str, Any]]) -> list[str]:
    """Disparity-carrying features ranked by disparity share per unit of importance (mean |SHAP| over every held-out
    row): the ones that cost the least accuracy for the disparity they remove come first."""
    carrying = [a for a in attribution if a["share"] > 0 and a.get("importance", 0) > 0]
    ranked = sorted(carrying, key=lambda a: -a["share"] / a["importance"])
    return [a["feature"] for a in ranked][:TOP_FEATURES]


def _row(cand: Candidate, y: np.ndarray, score: np.ndarray, protected: pd.DataFrame, features: Sequence[str],
         cutoff: float, seed: int, gate_config: Any, base_auc: float | None) -> dict[str, Any]:
    ev = evaluate(y, score, protected=protected, cutoff=cutoff, seed=seed)
    gates = fairness_gates(ev["fairness"], gate_config)
    worst = worst_air(ev["fairness"], gates)
    a = auc(y, score)
    ci = auc_interval(a, int(y.sum()), int(len(y) - y.sum()))
    return {"name": cand.name, "description": cand.describe(), "drop": list(cand.drop), "monotone": cand.monotone,
            "regularised": cand.regularised, "features": len(features), "auc": a, "auc_ci": list(ci) if ci else None,
            "auc_cost": (base_auc - a) if base_auc is not None else 0.0, "worst_attribute": worst["attribute"],
            "worst_air": worst["air"], "worst_air_ci": worst["ci"],
            "air": {k: v["disparate_impact"] for k, v in ev["fairness"].items()},
            "passes": all(g.passed for g in gates), "cutoff": cutoff}


def choose(rows: Sequence[dict[str, Any]], *, base_passes: bool, max_auc_loss: float) -> tuple[str | None, str]:
    """The chosen candidate's name (or None) and why (see the module docstring)."""
    alts = [r for r in rows if r["name"] != "base" and r["passes"]]
    if not base_passes:
        if not alts:
            return None, MSG_NONE_PASSES
        best = max(alts, key=lambda r: (r["auc"], r["worst_air"] or 0.0))
        return best["name"], (f"the base fails the screen; {best['name']} passes with the highest AUC "
                              f"(cost {best['auc_cost']:+.4f})")
    base = next(r for r in rows if r["name"] == "base")
    near = [r for r in alts if r["auc_cost"] <= max_auc_loss and (r["worst_air"] or 0) > (base["worst_air"] or 0)]
    if not near:
        return None, MSG_BASE_PASSES
    best = max(near, key=lambda r: (r["worst_air"], r["auc"]))
    return best["name"], (f"the base passes; {best['name']} raises the worst ratio to {best['worst_air']:.3f} at an "
                          f"AUC cost of {best['auc_cost']:+.4f} (budget {max_auc_loss:g})")


def search(dataset: Dataset, base: Any, *, gate_config: Any = None, seed: int | None = None,
           progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run the search from ``base`` (a ``TrainResult`` of ``dataset``); returns the JSON-able search record
    (``attribution``, ``candidates`` (the frontier), ``chosen``, ``why``, ``chosen_options``, ``timings``)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _search(dataset, base, gate_config=gate_config, seed=seed, progress=progress)


def _search(dataset: Dataset, base: Any, *, gate_config: Any, seed: int | None,
            progress: Callable[[str, int, int], None] | None) -> dict[str, Any]:
    from backend.training.train import split_indices

    t0 = time.perf_counter()
    config = gate_config if gate_config is not None else GateConfig()
    params = base.params
    seed = int(params["seed"] if seed is None else seed)
    protected_cols = list(dataset.protected.columns)
    if not protected_cols:
        raise ValueError(MSG_NO_PROTECTED)
    check_no_protected(dataset.features, protected_cols)
    idx_tr, idx_te = split_indices(dataset.y, test_size=params["test_size"], seed=params["seed"])
    X_tr, y_tr = dataset.X.iloc[idx_tr].reset_index(drop=True), dataset.y[idx_tr]
    X_te, y_te = dataset.X.iloc[idx_te].reset_index(drop=True), dataset.y[idx_te]
    P_te = dataset.protected.iloc[idx_te].reset_index(drop=True)
    cutoff = float(params["cutoff"])
    base_ev = base.report["test"]["primary"]
    base_gates = fairness_gates(base_ev["fairness"], config)
    worst = worst_air(base_ev["fairness"], base_gates)
    encoder = base.primary.named_steps["encode"]
    attribution: list[dict[str, Any]] = []
    if worst["attribute"] is not None:
        groups = as_groups(P_te[worst["attribute"]])
        attribution = disparity_shares(base.compiled_primary, encoder.transform(X_te), groups, str(worst["least"]),
                                       str(worst["most"]), dataset.features)
    top = [a["feature"] for a in attribution if a["share"] > 0][:TOP_FEATURES]
    cands = grid(top, efficient(attribution))
    directions = dict(zip(dataset.features, monotone_directions(encoder.transform(X_tr), y_tr.astype(float)),
                          strict=True))
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for k, cand in enumerate(cands, 1):
        t = time.perf_counter()
        if cand.name == "base":
            score = base.primary.predict_proba(X_te)[:, 1]
        else:
            feats = [f for f in dataset.features if f not in cand.drop]
            check_no_protected(feats, protected_cols)
            pipe = primary_pipeline(feats, {f: dataset.kinds[f] for f in feats}, seed=params["seed"],
                                    **candidate_options(cand, params, directions, feats))
            model = clone(pipe).fit(X_tr[feats], y_tr)
            score = model.predict_proba(X_te[feats])[:, 1]
        rows.append(_row(cand, y_te, score, P_te, [f for f in dataset.features if f not in cand.drop], cutoff,
                         seed, config, rows[0]["auc"] if rows else None))
        timings[cand.name] = time.perf_counter() - t
        if progress is not None:
            progress(f"candidate {cand.name}", k, len(cands))
    chosen, why = choose(rows, base_passes=all(g.passed for g in base_gates), max_auc_loss=config.max_auc_loss)
    pick = next((c for c in cands if c.name == chosen), None)
    return {
        "attribute": worst["attribute"], "least_approved": worst["least"], "most_approved": worst["most"],
        "base_worst_air": worst["air"], "base_passes": all(g.passed for g in base_gates),
        "attribution": attribution, "disparity_features": top, "candidates": rows,
        "chosen": chosen, "why": why, "held_out_rows": int(len(idx_te)), "train_rows": int(len(idx_tr)),
        "cutoff": cutoff, "threshold": config.min_disparate_impact, "max_auc_loss": config.max_auc_loss,
        "chosen_drop": list(pick.drop) if pick else [],
        "chosen_options": candidate_options(pick, params, directions,
                                            [f for f in dataset.features if f not in pick.drop]) if pick else {},
        "timings": {"candidates_s": timings, "total_s": time.perf_counter() - t0},
    }


def candidate_options(cand: Candidate, params: dict[str, Any], directions: dict[str, int],
                      feats: Sequence[str]) -> dict[str, Any]:
    """Keyword arguments of :func:`primary_pipeline` / :func:`train` (as ``n_boost`` and ``primary_options``)
    for ``cand``; ``n_estimators``/``n_boost`` are the base's unless regularised."""
    opts: dict[str, Any] = {"n_estimators": params["n_estimators"], "n_boost": params["n_boost"]}
    if cand.regularised:
        opts.update(n_boost=min(REGULARISED["n_boost"], params["n_boost"]), learning_rate=REGULARISED["learning_rate"])
    if cand.monotone:
        opts["monotone"] = [directions[f] for f in feats]
    return opts


def without(dataset: Dataset, drop: Sequence[str]) -> Dataset:
    """``dataset`` with the features ``drop`` removed (rows, target and protected columns unchanged)."""
    keep = [f for f in dataset.features if f not in set(drop)]
    dropped = {**dataset.dropped, **{f: "dropped by the less-discriminatory-alternatives search" for f in drop}}
    return replace(dataset, X=dataset.X[keep].copy(), kinds={f: dataset.kinds[f] for f in keep}, dropped=dropped)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The search in a few fields (lineage and audit payload); the full record is in the version's report."""
    rows = {r["name"]: r for r in record["candidates"]}
    chosen = rows.get(record["chosen"] or "")
    return {"attribute": record["attribute"], "base_worst_air": record["base_worst_air"],
            "base_auc": rows["base"]["auc"], "candidates": len(rows), "chosen": record["chosen"],
            "chosen_description": chosen["description"] if chosen else None,
            "worst_air": chosen["worst_air"] if chosen else None, "auc_cost": chosen["auc_cost"] if chosen else None,
            "disparity_features": record["disparity_features"], "why": record["why"]}


def train_chosen(dataset: Dataset, base: Any, record: dict[str, Any], *,
                 progress: Callable[[str, int, int], None] | None = None) -> Any:
    """Train the chosen configuration in full (same rows, seed and settings as ``base``), with the search in its
    report under ``alternatives``; None when nothing was chosen."""
    from backend.training.train import train

    if not record.get("chosen"):
        return None
    p, opts = base.params, record["chosen_options"]
    data = without(dataset, record["chosen_drop"])
    check_no_protected(data.features, list(data.protected.columns))
    result = train(data, seed=p["seed"], test_size=p["test_size"], cv_folds=p["cv_folds"],
                   n_estimators=opts["n_estimators"], n_boost=opts["n_boost"], n_trees=p["n_trees"],
                   calibration=p["calibration"], cutoff=p["cutoff"], progress=progress,
                   primary_options={k: opts[k] for k in ("learning_rate", "monotone") if k in opts})
    result.report["alternatives"] = record
    return result


def register_chosen(registry: Any, dataset: Dataset, base: Any, record: dict[str, Any], *,
                    lineage: dict[str, Any] | None = None, gates: Any = None, at: Any = None,
                    progress: Callable[[str, int, int], None] | None = None) -> str | None:
    """Train and register the chosen alternative as the challenger (its lineage holds :func:`summary`, which
    :meth:`ModelAdmin.registered` audits); returns its version, or None when nothing was chosen."""
    result = train_chosen(dataset, base, record, progress=progress)
    if result is None:
        return None
    lin = {**dict(lineage or {}), "alternatives_search": summary(record)}
    lin.setdefault("source", "less-discriminatory-alternatives search")
    return str(registry.register(result, gates=gates, lineage=lin, at=at))
