"""The realized-performance page: what a risk manager and an ML engineer see (vintage table with
estimates, charts, calibration, version comparison, the selection-bias caveat, CSV), the empty
state with its "Recompute now" button, and the refusal for a loan officer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.monitoring.config import MonitoringSettings
from backend.monitoring.performance import (
    ARM_LABELS,
    GRANULARITY,
    KIND,
    PerformanceService,
    add_months,
    vintage_table,
)
from backend.monitoring.performance_views import export_csv
from backend.monitoring.snapshot_queries import SnapshotRepository

PAGE = Path(__file__).resolve().parents[2] / "pages" / "performance.py"
UNTIL = datetime(2026, 5, 15, tzinfo=UTC)  # with 6-month maturity: Sep-Oct mature, Nov-Dec estimates


def _frame(seed: int, n: int, start: datetime, *, two_versions: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 30, n)
    frame = pd.DataFrame({
        "applied_at": pd.date_range(start, add_months(start, 1), periods=n + 1, tz="UTC", inclusive="left")[:n],
        "arm": rng.choice(["ai", "control"], n), "pd": p,
        "risk_class": np.where(p > 0.06, "high_risk", "low_risk"),
        "model_version": np.where((np.arange(n) > n // 2) & two_versions, "v-retrained", "v-champion"),
        "approved": rng.random(n) < 0.75, "observed": True})
    frame["funded"] = frame["approved"] & (rng.random(n) < 0.9)
    frame["known"] = frame["funded"]
    frame["defaulted"] = frame["funded"] & (rng.random(n) < p)
    return frame


def _store_snapshots(console) -> None:
    svc = PerformanceService(console.services.db, console.services.clock, MonitoringSettings(maturity_months=6))
    with console.services.db.transaction() as s:
        repo = SnapshotRepository(s)
        for k in range(4):
            start = datetime(2025, 9 + k, 1, tzinfo=UTC)
            pl = svc.summarize(_frame(k, 3000, start, two_versions=k == 0), start, add_months(start, 1), UNTIL)
            repo.put(kind=KIND, granularity=GRANULARITY, period=pl["vintage"], window_start=start,
                     window_end=add_months(start, 1), computed_at=UNTIL, n=pl["arms"]["all"]["n"],
                     value=pl["arms"]["all"]["accuracy"] if pl["mature"] else None, payload=pl)


def _open(console, role: str) -> AppTest:
    at = console.open_page(role, PAGE)
    assert not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Realized performance"]
    return at


@pytest.mark.parametrize("role", ["risk_manager", "ml_engineer"])
def test_page_shows_vintages_estimates_and_the_caveat(console, role):
    _store_snapshots(console)
    at = _open(console, role)
    assert any("Selection bias" in w.value and "control arm" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert list(table["Vintage"]) == ["2025-09", "2025-10", "2025-11", "2025-12"]
    assert list(table["Status"]) == ["mature", "mature", "estimate (5 of 6 months)", "estimate (4 of 6 months)"]
    assert table["AUC"].between(0, 1).all() and table["Expected bad rate (PDs)"].notna().all()
    assert any("estimate" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 1
    snaps = console.services.performance.snapshots()
    csv_lines = export_csv({a: vintage_table(snaps, a) for a in ("all", "ai", "control")}).splitlines()
    assert csv_lines[0].startswith('"arm","vintage","status","mature"') and len(csv_lines) == 1 + 3 * 4
    assert any("How far to trust the estimates" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1  # one view at a time: AUC and KS by arm first
    arms = at.dataframe[1].value  # the less biased comparison: control arm against AI arm
    assert list(arms["Vintage"]) == list(table["Vintage"])
    assert arms["AUC control arm"].notna().all() and arms["AUC AI arm"].notna().all()
    assert arms["95% interval control arm"].str.match(r"0\.\d\d to [01]\.\d\d").all()

    view = at.radio(key="performance_view")
    view.set_value("Bad rate: observed vs expected").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    bad = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in bad["layout"]["annotations"]] == ["All", "AI arm", "Control arm"]

    at.radio(key="performance_view").set_value("Calibration").run()
    cal = next(s for s in at.selectbox if s.label == "Mature vintage")
    assert cal.options == ["2025-09", "2025-10"] and cal.value == "2025-10"
    cal.set_value("2025-09").run()
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"] == \
        f"2025-09, {ARM_LABELS['all'].lower()}"

    at.radio(key="performance_view").set_value("By model version").run()
    assert not at.exception and not at.error
    versions = at.dataframe[1].value
    assert list(versions["Model version"]) == ["v-champion", "v-retrained"]
    assert versions["AUC"].notna().all() and versions["Served (first to last application)"].str.match(
        r"2025-09-\d\d to 2025-09-\d\d").all()

    at.radio(key="performance_arm").set_value("control").run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["Funded"].sum() < table["Funded"].sum()  # the control arm only
    at.radio(key="performance_view").set_value("Calibration").run()
    calibration = json.loads(at.get("plotly_chart")[0].proto.spec)  # follows the chosen arm
    assert calibration["layout"]["title"]["text"].endswith(ARM_LABELS["control"].lower())


def test_empty_state_explains_how_to_compute_and_recompute_works(console):
    at = _open(console, "risk_manager")
    assert any("creditrisk monitor run" in i.value for i in at.info)
    assert not at.dataframe and not at.warning
    _store_snapshots(console)  # stale summaries of a book that is in fact empty
    at.button(key="performance_recompute").click().run()
    assert not at.exception and not at.error
    assert any(s.value == "Recomputed 0 vintage(s) from the book." for s in at.success)
    assert any("creditrisk monitor run" in i.value for i in at.info)  # the stored set was replaced
    assert console.services.performance.snapshots() == []


def test_loan_officer_is_refused_and_sees_no_figures(console):
    _store_snapshots(console)
    page = AppTest.from_file(str(PAGE), default_timeout=30)
    page.session_state[USER_KEY] = console.services.users.get(console.users["loan_officer"])
    page.run()
    assert [e.value for e in page.error] == [NOT_ALLOWED]
    assert not page.title and not page.dataframe and not page.button and not page.warning
    assert not page.get("plotly_chart") and not page.get("download_button")
