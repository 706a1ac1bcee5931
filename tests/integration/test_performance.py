"""Realized performance on the simulated history (SQLite and PostgreSQL): one snapshot per vintage,
maturity and outcomes as of ``until`` (a replay sees only what was known then), the accuracy the
alert rule reads, and the figures checked against scikit-learn on the raw records."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from sqlalchemy import select

from backend.monitoring.config import MonitoringSettings
from backend.monitoring.performance import (
    KIND,
    NAIVE_UNTIL,
    PerformanceService,
    add_months,
    calibration_summary,
    months_on_book,
    version_table,
    vintage_table,
)
from backend.platform.db.tables_book import Application, Outcome, Prediction
from backend.platform.db.tables_governance import MonitorSnapshot

LATE = datetime(2026, 11, 15, tzinfo=UTC)  # after the outcome feed (2026-11-01): Aug, Sep, Oct mature
EARLY = datetime(2026, 2, 15, tzinfo=UTC)  # the fixture's clock: nothing mature, few defaults seen
VINTAGES = ["2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01"]


def _by_period(svc) -> dict:  # noqa: ANN001
    return {s.period: s for s in svc.performance.snapshots()}


def test_refresh_writes_one_snapshot_per_vintage_as_of_now(sim_services):
    perf = sim_services.performance
    assert perf.latest_accuracy() is None  # nothing stored yet
    assert perf.refresh() == 6  # until = the clock (2026-02-15)
    snaps = _by_period(sim_services)
    assert list(snaps) == VINTAGES
    for period, snap in snaps.items():
        pl = snap.payload
        assert (snap.kind, snap.granularity, snap.model_version) == (KIND, "month", "")
        assert snap.window_start == datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
        assert snap.window_end == add_months(snap.window_start, 1)
        assert snap.value is None and not pl["mature"]  # the newest outcome data is months away
        assert pl["as_of"].startswith("2026-02-15") and snap.n == pl["arms"]["all"]["n"]
        everything = pl["arms"]["all"]
        arms = [g for a, g in pl["arms"].items() if a != "all"]
        assert sum(g["applications"] for g in arms) == everything["applications"] > 0
        assert sum(g["funded"] for g in arms) == everything["funded"] > 0
        assert everything["funded"] <= everything["approved"] <= everything["applications"]
        assert everything["expected"]["lo"] <= everything["expected"]["mean"] <= everything["expected"]["hi"]
    assert set(snaps["2025-08"].payload["arms"]) == {"all", "control"}  # shadow mode: every application blind
    assert {"ai", "control"} <= set(snaps["2025-12"].payload["arms"])  # scaled 50%
    assert perf.latest_accuracy() is None


def test_maturity_and_outcomes_respect_until(sim_services):
    perf = sim_services.performance
    perf.refresh(until=EARLY)
    early = _by_period(sim_services)
    assert perf.refresh(until=LATE) == 6
    late = _by_period(sim_services)
    assert [p for p, s in late.items() if s.payload["mature"]] == ["2025-08", "2025-09", "2025-10"]
    assert not any(s.payload["mature"] for s in early.values())
    for period in VINTAGES:
        e, lt = early[period].payload["arms"]["all"], late[period].payload["arms"]["all"]
        assert e["applications"] == lt["applications"] and e["funded"] == lt["funded"]
        assert e["defaults"] <= lt["defaults"] and e["outcomes_observed"] < lt["outcomes_observed"]
        mature = late[period].payload["mature"]
        assert (late[period].value is not None) == mature
        if mature:
            assert late[period].value == lt["accuracy"]
    total_early = sum(s.payload["arms"]["all"]["defaults"] for s in early.values())
    total_late = sum(s.payload["arms"]["all"]["defaults"] for s in late.values())
    assert total_early < total_late  # as of February most defaults were still to come
    assert early["2025-08"].payload["months_on_book"] == 5 and late["2025-08"].payload["months_on_book"] == 14

    value, period, n = perf.latest_accuracy()
    assert (value, period, n) == (late["2025-10"].value, "2025-10", late["2025-10"].n)
    assert perf.latest_accuracy(before=datetime(2026, 10, 15, tzinfo=UTC))[1] == "2025-09"
    assert perf.latest_accuracy(before=datetime(2026, 8, 31, tzinfo=UTC)) is None
    assert calibration_summary(list(late.values()))["vintages"] == ["2025-08", "2025-09", "2025-10"]
    assert calibration_summary(list(early.values())) is None


def test_a_replay_replaces_the_stored_set(sim_services):
    perf = sim_services.performance
    perf.refresh(until=LATE)
    assert perf.refresh(until=datetime(2025, 10, 15, tzinfo=UTC)) == 3
    snaps = _by_period(sim_services)
    assert list(snaps) == ["2025-08", "2025-09", "2025-10"]  # later vintages did not exist yet
    assert snaps["2025-10"].payload["partial"] and not snaps["2025-09"].payload["partial"]
    with sim_services.db.read() as s:
        made = s.execute(select(Application.id).where(Application.applied_at >= datetime(2025, 10, 1, tzinfo=UTC),
                                                      Application.applied_at < datetime(2025, 10, 15, tzinfo=UTC)))
        assert snaps["2025-10"].payload["arms"]["all"]["applications"] == len(made.all())
        stored = s.execute(select(MonitorSnapshot.period).where(MonitorSnapshot.kind == KIND)).scalars().all()
    assert sorted(stored) == ["2025-08", "2025-09", "2025-10"]
    assert not any(s.payload["arms"]["all"]["defaults"] for s in snaps.values())  # no default seen that early
    with pytest.raises(ValueError) as exc:
        perf.refresh(until=datetime(2026, 1, 1))
    assert str(exc.value) == NAIVE_UNTIL


def test_figures_match_sklearn_on_the_raw_records(sim_services):
    """Recompute one mature vintage straight from the tables (independent of the service's SQL)."""
    sim_services.performance.refresh(until=LATE)
    snap = _by_period(sim_services)["2025-09"]
    start, end = snap.window_start, snap.window_end
    with sim_services.db.read() as s:
        rows = s.execute(select(Application.arm, Prediction.pd, Prediction.risk_class, Outcome.funded,
                                Outcome.defaulted, Outcome.observed_at)
                         .join(Prediction, Prediction.application_id == Application.id)
                         .join(Outcome, Outcome.application_id == Application.id)
                         .where(Application.applied_at >= start, Application.applied_at < end)).all()
    df = pd.DataFrame(rows, columns=["arm", "pd", "risk_class", "funded", "defaulted", "observed_at"])
    df = df[df["funded"].astype(bool) & df["defaulted"].notna()]
    y = (df["defaulted"].astype(bool) & (pd.to_datetime(df["observed_at"], utc=True) <= LATE)).astype(int)
    g = snap.payload["arms"]["all"]
    assert g["n"] == len(df) and g["defaults"] == int(y.sum()) > 0
    assert g["auc"] == pytest.approx(roc_auc_score(y, df["pd"]))
    assert g["accuracy"] == pytest.approx(accuracy_score(y, df["risk_class"] == "high_risk"))
    assert snap.value == pytest.approx(g["accuracy"])
    assert g["expected"]["mean"] == pytest.approx(df["pd"].mean())  # every funded loan has its outcome here
    assert g["calibration_check"]["expected_defaults"] == pytest.approx(df["pd"].sum())
    table = {r["vintage"]: r for r in vintage_table(list(_by_period(sim_services).values()), "all")}
    assert table["2025-09"]["status"] == "mature" and table["2025-09"]["auc"] == g["auc"]
    assert table["2026-01"]["status"] == "estimate (9 of 12 months)"


def test_an_empty_book_stores_nothing(services):
    assert services.performance.refresh() == 0
    assert services.performance.snapshots() == [] and services.performance.latest_accuracy() is None


def test_versions_and_arms_are_summarized_separately():
    """Two model versions in one vintage (as when a retrained model served for nine days)."""
    rng = np.random.default_rng(5)
    n = 4000
    pd_ = rng.beta(1.2, 30, n)
    version = np.where(np.arange(n) < 3000, "v1", "v2")
    frame = pd.DataFrame({
        "applied_at": pd.date_range("2025-09-01", "2025-09-30", periods=n, tz="UTC"),
        "arm": rng.choice(["ai", "control", None], n), "pd": pd_,
        "risk_class": np.where(pd_ > 0.06, "high_risk", "low_risk"), "model_version": version,
        "approved": rng.random(n) < 0.7})
    frame["funded"] = frame["approved"] & (rng.random(n) < 0.9)
    frame["known"] = frame["funded"]
    frame["defaulted"] = frame["funded"] & (rng.random(n) < pd_ * 1.5)
    frame["observed"] = True
    frame.loc[5, "pd"] = np.nan  # an application never scored: counted, not judged
    svc = PerformanceService(None, None, MonitoringSettings(maturity_months=6))  # type: ignore[arg-type]
    start, end = datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC)
    pl = svc.summarize(frame, start, end, datetime(2026, 4, 2, tzinfo=UTC))
    assert pl["mature"] and pl["months_on_book"] == 6 and pl["matures_on"].startswith("2026-04-01")
    assert set(pl["arms"]) == {"all", "ai", "control", "unassigned"}
    assert set(pl["versions"]) == {"v1", "v2"}
    v2 = pl["versions"]["v2"]
    assert v2["applications"] == 1000 and v2["first_applied"] < v2["last_applied"]
    assert sum(v2["by_arm"].values()) == 1000
    assert pl["arms"]["all"]["scored"] == n - 1
    assert pl["arms"]["all"]["n"] == int((frame["funded"] & frame["pd"].notna()).sum())
    snap = type("S", (), {"period": "2025-09", "payload": pl})()
    rows = version_table([snap])  # type: ignore[list-item]
    assert [r["model_version"] for r in rows] == ["v1", "v2"] and rows[1]["served"].startswith("2025-09-2")
    assert months_on_book(end, datetime(2025, 10, 31, 23, tzinfo=UTC)) == 0
    assert months_on_book(end, datetime(2025, 11, 1, tzinfo=UTC)) == 1
    assert months_on_book(end, start) == 0
