"""What the CLI and the Model registry page show of a less-discriminatory-alternatives search.

:func:`frontier_table` is the one definition of the frontier's figures (AUC and its interval, the worst
adverse-impact ratio and its interval, the AUC cost against the base): ``creditrisk train|retrain
--search-alternatives`` prints it and the page's panel draws its table and plot from it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

COLUMNS = ["candidate", "what changed", "features", "AUC", "AUC low", "AUC high", "AUC cost", "worst attribute",
           "worst AIR", "AIR low", "AIR high", "passes screen", "chosen"]


def frontier_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per candidate of ``record`` (a search record, :func:`backend.training.alternatives.search`)."""
    rows = []
    for r in record.get("candidates", []):
        auc_ci, air_ci = r.get("auc_ci") or (None, None), r.get("worst_air_ci") or (None, None)
        rows.append([r["name"], r["description"], r["features"], r["auc"], auc_ci[0], auc_ci[1], r["auc_cost"],
                     r.get("worst_attribute"), r.get("worst_air"), air_ci[0], air_ci[1], bool(r["passes"]),
                     r["name"] == record.get("chosen")])
    return pd.DataFrame(rows, columns=COLUMNS)


def attribution_table(record: dict[str, Any], top: int = 10) -> pd.DataFrame:
    """The features carrying the disparity: mean SHAP (log-odds) in the least minus the most approved group."""
    rows = [(a["feature"], a["share"]) for a in record.get("attribution", [])[:top]]
    return pd.DataFrame(rows, columns=["feature", "risk added to the least approved group (log-odds)"])


def headline(record: dict[str, Any]) -> str:
    """One sentence: the attribute, the base's ratio, what was chosen and at what AUC cost."""
    table = frontier_table(record)
    base = table[table["candidate"] == "base"]
    air = record.get("base_worst_air")
    head = (f"Worst adverse-impact ratio of the base model: {air:.3f} ({record.get('attribute')}, "
            f"{record.get('least_approved')} vs {record.get('most_approved')}); screen "
            f"{'passed' if record.get('base_passes') else 'FAILED'} at {record.get('threshold', 0.8):g}. "
            if air is not None else "No protected group could be judged. ")
    chosen = table[table["chosen"]]
    if chosen.empty:
        return head + str(record.get("why", ""))
    c = chosen.iloc[0]
    return head + (f"Chosen: {c['candidate']} ({c['what changed']}): worst AIR {c['worst AIR']:.3f} "
                   f"[{c['AIR low']:.3f}, {c['AIR high']:.3f}], AUC {c['AUC']:.4f} against {base.iloc[0]['AUC']:.4f}, "
                   f"a cost of {c['AUC cost']:.4f}, on the same {record.get('held_out_rows', 0):,} held-out rows.")


def latest_search(registry: Any) -> tuple[str, dict[str, Any]] | None:
    """The newest registered version whose report holds a search, and that search record (None when none)."""
    for version in reversed(registry.versions()):
        try:
            record = (registry.manifest(version).get("evaluation") or {}).get("alternatives")
        except Exception:  # noqa: BLE001, S112 - an unreadable version is shown elsewhere; the panel skips it
            continue
        if record:
            return version, record
    return None
