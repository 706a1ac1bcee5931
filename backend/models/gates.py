"""Promotion gates: fairness, champion/challenger and an optional minimum AUC.

Each gate returns a ``GateResult`` (name, passed, value, threshold, detail) that is stored in the
manifest and shown by ``creditrisk models list``. A candidate may be promoted to champion only
when every gate passed (unless the operator forces it).

- ``fairness:<attribute>``: disparate impact (lowest / highest approval rate among groups with at
  least ``min_group_size`` held-out rows) must be >= ``min_disparate_impact`` (default 0.80, the
  four-fifths rule). Smaller groups are reported in the detail, not gated. An attribute with fewer
  than two large-enough groups passes with a detail saying it could not be measured.
- ``champion_challenger``: the challenger's AUC must be >= the champion's AUC minus
  ``max_auc_loss`` (default 0.01), both scored on the same held-out rows. No champion: passes.
- ``min_auc`` (only when configured): the challenger's held-out AUC must reach it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from backend.models.evaluation import DI_THRESHOLD, MIN_GROUP_SIZE

MAX_AUC_LOSS = 0.01


@dataclass(frozen=True)
class GateConfig:
    min_disparate_impact: float = DI_THRESHOLD
    min_group_size: int = MIN_GROUP_SIZE
    max_auc_loss: float = MAX_AUC_LOSS
    min_auc: float | None = None
    fairness_attributes: tuple[str, ...] | None = None  # None: every protected attribute

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fairness_attributes"] = list(self.fairness_attributes) if self.fairness_attributes else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> GateConfig:
        d = dict(d or {})
        if d.get("fairness_attributes") is not None:
            d["fairness_attributes"] = tuple(d["fairness_attributes"])
        return cls(**d)


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateResult:
        return cls(
            str(d["name"]), bool(d["passed"]), d.get("value"), d.get("threshold"), str(d.get("detail", ""))
        )


def fairness_gates(
    fairness: Mapping[str, Mapping[str, Any]], config: GateConfig = GateConfig()
) -> list[GateResult]:
    """One gate per protected attribute from ``evaluate``'s ``fairness`` block."""
    results = []
    for attr, block in fairness.items():
        if config.fairness_attributes is not None and attr not in config.fairness_attributes:
            continue
        groups = block.get("groups", {})
        eligible = [g for g, v in groups.items() if v["n"] >= config.min_group_size]
        small = [f"{g} (n={v['n']})" for g, v in groups.items() if v["n"] < config.min_group_size]
        note = f"; not gated, below {config.min_group_size} rows: {', '.join(small)}" if small else ""
        rates = {g: groups[g]["approval_rate"] for g in eligible if groups[g]["approval_rate"] is not None}
        name = f"fairness:{attr}"
        if len(rates) < 2 or max(rates.values()) == 0:
            results.append(
                GateResult(
                    name,
                    True,
                    None,
                    config.min_disparate_impact,
                    f"fewer than two groups with >= {config.min_group_size} rows{note}",
                )
            )
            continue
        lo, hi = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
        di = rates[lo] / rates[hi]
        ci = block.get("disparate_impact_ci")
        ci_txt = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        detail = (
            f"disparate impact {di:.3f}{ci_txt}: approval {rates[lo]:.3f} for {lo} vs "
            f"{rates[hi]:.3f} for {hi}{note}"
        )
        results.append(
            GateResult(
                name, di >= config.min_disparate_impact, float(di), config.min_disparate_impact, detail
            )
        )
    return results


def champion_challenger_gate(
    challenger_auc: float,
    champion_auc: float | None,
    *,
    champion_version: str | None = None,
    config: GateConfig = GateConfig(),
) -> GateResult:
    """No material loss of AUC against the current champion on the same held-out rows."""
    if champion_auc is None:
        return GateResult(
            "champion_challenger", True, float(challenger_auc), None, "no current champion to compare with"
        )
    threshold = float(champion_auc) - config.max_auc_loss
    passed = float(challenger_auc) >= threshold
    detail = (
        f"AUC {challenger_auc:.4f} vs champion {champion_version or '?'} {champion_auc:.4f} on the same "
        f"held-out rows (allowed loss {config.max_auc_loss:g})"
    )
    return GateResult("champion_challenger", passed, float(challenger_auc), threshold, detail)


def champion_unscorable_gate(champion_version: str, reason: str) -> GateResult:
    """The champion cannot score the challenger's held-out rows (e.g. different columns)."""
    return GateResult(
        "champion_challenger",
        False,
        None,
        None,
        f"champion {champion_version} cannot be compared on this held-out data: {reason}",
    )


def min_auc_gate(auc: float, config: GateConfig = GateConfig()) -> GateResult | None:
    """Optional floor on the held-out AUC (None when not configured)."""
    if config.min_auc is None:
        return None
    return GateResult(
        "min_auc", float(auc) >= config.min_auc, float(auc), float(config.min_auc), f"held-out AUC {auc:.4f}"
    )


def run_gates(
    evaluation: Mapping[str, Any],
    *,
    champion_auc: float | None = None,
    champion_version: str | None = None,
    config: GateConfig = GateConfig(),
) -> list[GateResult]:
    """All gates for a candidate's held-out ``evaluation`` (the primary model's report)."""
    results = fairness_gates(evaluation.get("fairness", {}), config)
    results.append(
        champion_challenger_gate(
            evaluation["auc"], champion_auc, champion_version=champion_version, config=config
        )
    )
    floor = min_auc_gate(evaluation["auc"], config)
    if floor is not None:
        results.append(floor)
    return results


def all_passed(results: Iterable[GateResult | Mapping[str, Any]]) -> bool:
    return all((r.passed if isinstance(r, GateResult) else bool(r["passed"])) for r in results)


def failures(results: Iterable[GateResult | Mapping[str, Any]]) -> list[str]:
    """``name: detail`` of every failed gate."""
    out = []
    for r in results:
        g = r if isinstance(r, GateResult) else GateResult.from_dict(r)
        if not g.passed:
            out.append(f"{g.name}: {g.detail}")
    return out


def candidate_gates(
    evaluation: Mapping[str, Any],
    holdout: Any,
    target: str,
    *,
    champion: Any = None,
    champion_version: str | None = None,
    config: GateConfig = GateConfig(),
) -> tuple[list[GateResult], dict[str, Any]]:
    """Gates for a candidate; ``champion`` is the loaded champion model (scored here on the
    candidate's held-out rows), the error that prevented loading it, or None."""
    from backend.models.evaluation import auc

    champion_auc, unscorable = None, None
    if isinstance(champion, Exception):
        unscorable = champion_unscorable_gate(str(champion_version), str(champion))
    elif champion is not None:
        try:
            champion_auc = auc(holdout[target].to_numpy(), champion.predict_raw(holdout))
        except (ValueError, KeyError, RuntimeError) as exc:
            unscorable = champion_unscorable_gate(str(champion_version), str(exc))
    results = run_gates(
        evaluation, champion_auc=champion_auc, champion_version=champion_version, config=config
    )
    if unscorable is not None:
        results = [r for r in results if r.name != "champion_challenger"] + [unscorable]
    return results, {"champion_version": champion_version, "champion_auc": champion_auc}
