"""SQL for the fairness snapshots: the few columns the metrics need, one month of applications at a
time, collapsed into weighted cells (never the features JSON, never the whole book in memory).

Per application (the *population* is every scored application with a final decision):

* ``model``: the prediction behind the final decision has risk class ``low_risk``;
* ``policy``: that prediction's recommendation is ``approve``;
* ``officer``: the officer's own decision, i.e. the application's *first* decision row (before
  any four-eyes review; an override rejected by the second manager counts here as the officer
  made it), is ``approve``; ``override`` is that row's override flag;
* ``final``: the decision with status ``final`` approves.

Applications still in flight (no final decision yet: awaiting a decision or a four-eyes review)
and final decisions without a prediction are counted, not judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from backend.monitoring.book_state_queries import month_end
from backend.monitoring.fairness_metrics import ATTRIBUTES
from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction

MISSING_ANSWER = "not_provided"  # a protected attribute absent from the application's record
UNASSIGNED = "unassigned"  # an application made before any rollout phase (no arm, no phase)
FLAG_KEYS = ("ai", "model", "policy", "officer", "final", "override", "funded", "known", "repaid")
CELL_KEYS = (*ATTRIBUTES, "phase", "arm", *FLAG_KEYS)
STORED_READ = 1  # the layout of stored_read (a new layout is not reused, only read again)
_ROW_COLUMNS = ["app", *ATTRIBUTES, "arm", "phase", "ai_visible", "outcome", "status", "is_override", "risk_class",
                "recommendation", "funded", "defaulted"]


@dataclass(frozen=True)
class MonthCells:
    """One month of applications as weighted cells (columns :data:`CELL_KEYS` and ``w``)."""

    start: datetime
    end: datetime
    cells: pd.DataFrame
    applications: int  # applied in the window
    in_flight: int  # no final decision yet
    unscored: int  # a final decision without a prediction
    token: str | None = None  # the month's book_months token it was read under (a whole month only)


def first_applied(s: Session, until: datetime) -> datetime | None:
    return s.execute(select(func.min(Application.applied_at)).where(Application.applied_at < until)).scalar()


def month_windows(first: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Calendar months (UTC) from ``first``'s month up to ``until`` (the last one cut at ``until``)."""
    lo = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while lo < until:
        hi = month_end(lo)
        yield lo, min(hi, until)
        lo = hi


def phase_windows(s: Session, until: datetime) -> dict[str, tuple[datetime, datetime, int]]:
    """Per rollout phase: first and last application before ``until`` and the number of applications."""
    rows = s.execute(select(Application.phase, func.min(Application.applied_at), func.max(Application.applied_at),
                            func.count()).where(Application.applied_at < until).group_by(Application.phase)).all()
    return {(p or UNASSIGNED): (lo, hi, int(n)) for p, lo, hi, n in rows}


def _rows(s: Session, lo: datetime, hi: datetime) -> pd.DataFrame:
    """Applications of the window with every decision row (first decision first) and the final
    decision's prediction and outcome: only the columns named in :data:`_ROW_COLUMNS`."""
    prot = Application.protected
    q = (select(type_coerce(Application.id, String).label("app"),
                *(prot[a].as_string().label(a) for a in ATTRIBUTES),
                Application.arm, Application.phase, Application.ai_visible, Decision.outcome, Decision.status,
                Decision.is_override, Prediction.risk_class, Prediction.recommendation, Outcome.funded,
                Outcome.defaulted)
         .select_from(Application)
         .outerjoin(Decision, Decision.application_id == Application.id)
         .outerjoin(Prediction, Prediction.id == Decision.prediction_id)
         .outerjoin(Outcome, Outcome.application_id == Application.id)
         .where(Application.applied_at >= lo, Application.applied_at < hi)
         .order_by(Application.id, Decision.decided_at, Decision.id))
    return pd.DataFrame(s.execute(q).tuples().all(), columns=_ROW_COLUMNS)


def to_cells(rows: pd.DataFrame) -> tuple[pd.DataFrame, int, int, int]:
    """Decision rows (ordered by application, then decision time) to weighted cells.

    Returns ``(cells, applications, in_flight, unscored)``.
    """
    if rows.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "w"]), 0, 0, 0
    first = rows.drop_duplicates("app", keep="first").set_index("app")
    final = rows[rows["status"] == "final"].drop_duplicates("app", keep="last").set_index("app")
    apps = len(first)
    scored = final[final["risk_class"].notna()]
    unscored = len(final) - len(scored)
    df = first[[*ATTRIBUTES, "arm", "phase", "ai_visible", "outcome", "is_override"]].join(
        scored[["outcome", "risk_class", "recommendation", "funded", "defaulted"]], how="inner", rsuffix="_final")
    funded = df["funded"].eq(True)
    known = funded & df["defaulted"].notna()
    cells = pd.DataFrame({
        **{a: df[a].fillna(MISSING_ANSWER).astype(str) for a in ATTRIBUTES},
        "phase": df["phase"].fillna(UNASSIGNED).astype(str), "arm": df["arm"].fillna(UNASSIGNED).astype(str),
        "ai": df["ai_visible"].ne(False),
        "model": (df["risk_class"] == "low_risk").to_numpy(), "policy": (df["recommendation"] == "approve").to_numpy(),
        "officer": (df["outcome"] == "approve").to_numpy(), "final": (df["outcome_final"] == "approve").to_numpy(),
        "override": df["is_override"].eq(True), "funded": funded, "known": known,
        "repaid": known & df["defaulted"].eq(False)})
    cells = cells.groupby(list(CELL_KEYS), observed=True, sort=False).size().reset_index(name="w")
    return cells, apps, apps - len(final), unscored


def month_cells(s: Session, lo: datetime, hi: datetime) -> MonthCells:
    cells, apps, in_flight, unscored = to_cells(_rows(s, lo, hi))
    return MonthCells(lo, hi, cells, apps, in_flight, unscored)


def stored_read(m: MonthCells) -> dict[str, Any]:
    """What a month snapshot keeps of the read it was made from (column-wise cells and the month's token), so
    a refresh in another process reuses it while the token is unchanged (:func:`stored_cells`)."""
    return {"v": STORED_READ, "token": m.token, "applications": m.applications, "in_flight": m.in_flight,
            "unscored": m.unscored, "cells": {k: m.cells[k].tolist() for k in (*CELL_KEYS, "w")}}


def stored_cells(payload: dict[str, Any] | None, token: str, lo: datetime, hi: datetime) -> MonthCells | None:
    """The cells a month snapshot kept (:func:`stored_read`) when they were read under ``token``, else None.
    The same dtypes as :func:`to_cells` gives (the period's fingerprint hashes them)."""
    read = (payload or {}).get("read") or {}
    if read.get("v") != STORED_READ or read.get("token") != token:
        return None
    cols = read["cells"]
    cells = pd.DataFrame({k: pd.Series(cols[k], dtype=bool if k in FLAG_KEYS else object) for k in CELL_KEYS})
    cells["w"] = pd.Series(cols["w"], dtype="int64")
    return MonthCells(lo, hi, cells, int(read["applications"]), int(read["in_flight"]), int(read["unscored"]), token)


def phase_jobs(months: list[MonthCells], phases: dict[str, tuple[datetime, datetime, int]]) -> list[Any]:
    """Phase snapshots from the months' cells (no second read of the book)."""
    parts = [m.cells for m in months if len(m.cells)]
    if not parts:
        return []
    cells = pd.concat(parts, ignore_index=True)
    cells = cells.groupby(list(CELL_KEYS), observed=True, sort=False)["w"].sum().reset_index()
    out = []
    for phase, part in cells.groupby("phase", sort=False):
        lo, hi, n_apps = phases.get(str(phase), (months[0].start, months[-1].end, 0))
        decided = int(part["w"].sum())
        out.append(("phase", str(phase), lo, hi, part,
                    {"applications": n_apps, "undecided": max(0, n_apps - decided)}))
    return out
