"""Drift on the simulated history (SQLite and PostgreSQL): snapshots per ISO week and month against the
champion's training hold-out, the September 2025 data-quality incident flagged (weeks 37-39), refreshes
that skip unchanged periods, replays with ``until``, the page's read views and evidently's deep dive."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import func, select, update

from backend.compliance.audit_queries import AuditRepository
from backend.domain import Actor
from backend.monitoring.drift import (
    BAD_GRANULARITY,
    KIND,
    NAIVE_UNTIL,
    REF_GRANULARITY,
    REF_KIND,
    SCORE,
    SCORE_LABEL,
    UNKNOWN_PERIOD,
    period_of,
    periods_between,
)
from backend.monitoring.drift_queries import parse_features, reason_codes
from backend.monitoring.drift_report import load_holdout
from backend.monitoring.psi import psi_from_counts
from backend.monitoring.snapshot_queries import SnapshotRepository
from backend.platform.db.tables_book import Application

INCIDENT = ["annual_income", "revolving_utilization", "max_card_utilization", "num_inquiries_6m",
            "num_inquiries_12m"]
INCIDENT_WEEKS = ["2025-W37", "2025-W38", "2025-W39"]  # 2025-09-08 .. 2025-09-28
BEFORE_WEEKS = ["2025-W32", "2025-W33", "2025-W34", "2025-W35", "2025-W36"]  # full weeks before the incident
WEEKS = [f"2025-W{w}" for w in range(31, 53)] + [f"2026-W{w:02d}" for w in range(1, 6)]
MONTHS = ["2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01"]


def _snaps(svc, granularity: str) -> dict:  # noqa: ANN001
    with svc.db.read() as s:
        return {x.period: x for x in SnapshotRepository(s).list(KIND, granularity=granularity)}


def _total_applications(svc) -> int:  # noqa: ANN001
    with svc.db.read() as s:
        return int(s.execute(select(func.count()).select_from(Application)).scalar_one())


# --------------------------------------------------------------------------- pure helpers
def test_iso_weeks_and_months_in_utc():
    assert period_of(datetime(2025, 9, 8, 0, 0, tzinfo=UTC), "week")[0] == "2025-W37"
    label, start, end = period_of(datetime(2025, 9, 14, 23, 59, tzinfo=UTC), "week")
    assert (label, start, end) == ("2025-W37", datetime(2025, 9, 8, tzinfo=UTC), datetime(2025, 9, 15, tzinfo=UTC))
    assert period_of(datetime(2025, 12, 29, 12, tzinfo=UTC), "week")[0] == "2026-W01"  # ISO year
    assert period_of(datetime(2025, 12, 31, tzinfo=UTC), "month")[1:] == (datetime(2025, 12, 1, tzinfo=UTC),
                                                                           datetime(2026, 1, 1, tzinfo=UTC))
    assert [p[0] for p in periods_between(datetime(2025, 8, 30, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC),
                                          "month")] == ["2025-08", "2025-09", "2025-10"]
    with pytest.raises(ValueError) as exc:
        period_of(datetime(2025, 9, 8, tzinfo=UTC), "day")
    assert str(exc.value) == BAD_GRANULARITY.format(granularity="day")


def test_reason_codes_are_read_from_the_raw_json():
    raw = ('[{"code": "excessive_obligations", "text": "Excessive obligations", "features": [{"name": "dti", '
           '"description": "a \\"code\\": \\"fake\\" inside a string"}]}, {"code":"recent_inquiries"}]')
    assert reason_codes(raw) == {"excessive_obligations", "recent_inquiries"}
    assert reason_codes(raw.encode()) == reason_codes(raw)
    assert reason_codes(None) == set() and reason_codes("[]") == set()


def test_feature_json_parsing_falls_back_on_odd_values():
    kinds = {"income": "numeric", "kind": "categorical", "flag": "binary"}
    docs = ['{"income": 1200.5, "kind": "rent", "flag": 1, "extra": 3}', '{"income": null, "kind": null}']
    frame = parse_features(docs, kinds)
    assert frame["income"].tolist()[0] == 1200.5 and np.isnan(frame["income"].iloc[1])
    assert frame["kind"].tolist() == ["rent", None] and np.isnan(frame["flag"].iloc[1])
    odd = parse_features(['{"income": "1200", "kind": 5, "flag": true}', "not json"], kinds)  # slow path
    assert odd["income"].iloc[0] == 1200.0 and odd["kind"].iloc[0] == "5" and odd["flag"].iloc[0] == 1.0
    assert np.isnan(odd["income"].iloc[1]) and odd["kind"].iloc[1] is None
    assert list(parse_features([], kinds).columns) == list(kinds)


# --------------------------------------------------------------------------- refresh
def test_refresh_all_stores_every_week_and_month_against_the_champion_holdout(sim_services):
    drift = sim_services.drift
    assert drift.latest_max_psi() is None and drift.status()["version"] is None
    assert drift.refresh_all() == len(WEEKS) + len(MONTHS)
    champion = sim_services.models.resolve("champion")
    weeks, months = _snaps(sim_services, "week"), _snaps(sim_services, "month")
    assert list(weeks) == WEEKS and list(months) == MONTHS
    total = _total_applications(sim_services)
    assert sum(x.n for x in weeks.values()) == sum(x.n for x in months.values()) == total
    with sim_services.db.read() as s:
        refs = SnapshotRepository(s).list(REF_KIND, granularity=REF_GRANULARITY)
    assert [r.model_version for r in refs] == [champion]
    assert refs[0].n == len(load_holdout(sim_services.models, champion))
    ref_counts = refs[0].payload["counts"]
    for snap in [*weeks.values(), *months.values()]:
        pl = snap.payload
        assert snap.model_version == champion and pl["reference"]["version"] == champion
        assert snap.value == pytest.approx(max(max(pl["psi"].values()), pl["score_psi"]))
        assert set(pl["psi"]) | {SCORE} == set(pl["counts"]) == set(ref_counts)
        assert all(sum(c) == snap.n for c in pl["counts"].values())  # every row lands in one bin
        # the stored PSI is the PSI of the stored counts (anyone can recompute it)
        assert pl["psi"]["annual_income"] == pytest.approx(
            float(psi_from_counts(ref_counts["annual_income"], pl["counts"]["annual_income"])), abs=1e-6)
        assert pl["complete"]
        assert 0 <= pl["reasons"]["deny"] <= snap.n
    assert drift.status() | {"computed_at": None} == {"version": champion, "champion": champion, "computed_at": None,
                                                       "weeks": len(WEEKS), "months": len(MONTHS), "stale": False}


def test_the_september_incident_stands_out(sim_services):
    drift = sim_services.drift
    drift.refresh_all()
    table = drift.psi_table("week")
    incident = table.loc[INCIDENT, INCIDENT_WEEKS]
    before = table.loc[INCIDENT, BEFORE_WEEKS]
    act = sim_services.settings.monitoring.psi_act
    assert (incident.to_numpy() > act).all(), incident
    assert (before.to_numpy() < act).all(), before
    assert incident.to_numpy().min() > 2 * before.to_numpy().max()
    assert (table.loc[INCIDENT, WEEKS[WEEKS.index("2025-W40"):]].to_numpy() < act).all()  # over after the fix
    top = drift.top_features("week", "2025-W38", k=5)
    assert set(top["feature"]) == set(INCIDENT) and set(top["band"]) == {"act"}
    months = drift.psi_table("month")
    assert (months.loc[INCIDENT, "2025-09"] > act).all() and (months.loc[INCIDENT, "2025-08"] < act).all()
    # the corrupted utilization feed sends rows to the missing bin, which the reference never had
    dist = drift.distribution("week", "2025-W37", "revolving_utilization")
    assert dist["bin"].iloc[-1] == "missing" and dist["reference"].iloc[-1] == 0 < dist["current"].iloc[-1]
    assert dist["reference"].sum() == pytest.approx(1) and dist["current"].sum() == pytest.approx(1)


def test_refresh_skips_unchanged_periods(sim_services):
    drift = sim_services.drift
    assert drift.refresh_all() == len(WEEKS) + len(MONTHS)
    first = _snaps(sim_services, "week")
    assert drift.refresh_all() == 0  # nothing written since: the newest week and month only moved their cut
    assert drift.refresh(granularity="week") == 0
    assert drift.refresh(granularity="month", force=True) == len(MONTHS)
    # a late application in an old week changes that week's and that month's fingerprint
    with sim_services.db.transaction() as s:
        old = s.execute(select(Application).where(Application.applied_at >= datetime(2025, 8, 12, tzinfo=UTC))
                        .order_by(Application.applied_at).limit(1)).scalar_one()
        s.add(Application(id=uuid.uuid4(), applicant_id="late-1", features=dict(old.features), protected={},
                          loan_amount=old.loan_amount, applied_at=datetime(2025, 8, 13, 10, tzinfo=UTC),
                          source="simulated"))
    august = [w for w, x in first.items() if x.window_start < datetime(2025, 9, 1, tzinfo=UTC)
              and x.window_end > datetime(2025, 8, 1, tzinfo=UTC)]
    assert "2025-W33" in august and len(august) >= 5
    assert drift.refresh_all() == len(august) + 1  # every week overlapping August (its token changed) and 2025-08
    after = _snaps(sim_services, "week")
    assert after["2025-W33"].n == first["2025-W33"].n + 1
    assert _figures(after["2025-W34"]) == _figures(first["2025-W34"])  # read again, the same figures
    assert drift.refresh_all() == 0


def test_decisions_outcomes_and_explanations_do_not_make_drift_read_again(sim_services):
    """Drift reads the applications' features and the predictions' deny reasons only: a decision, an outcome
    import or an explanation in every month (what a working day writes) leaves every stored period as it is
    (migration 0022: their own tokens); a new prediction in one month reads that month's periods again."""
    from backend.platform.db.tables_book import Decision, ExplanationRow, Outcome, Prediction

    drift = sim_services.drift
    drift.refresh_all()
    with sim_services.db.transaction() as s:
        for month in MONTHS:
            start = datetime.fromisoformat(f"{month}-01T00:00:00+00:00")
            app_id, pid = s.execute(select(Application.id, Prediction.id)
                                    .join(Prediction, Prediction.application_id == Application.id)
                                    .where(Application.applied_at >= start).order_by(Application.applied_at)
                                    .limit(1)).one()
            s.add(Decision(id=uuid.uuid4(), application_id=app_id, outcome="deny", decided_at=start))
            late = s.execute(select(Outcome.id).join(Application, Application.id == Outcome.application_id)
                             .where(Application.applied_at >= start).order_by(Application.applied_at).limit(1)
                             ).scalar()
            if late is None:  # (a month whose loans have no outcome yet)
                s.add(Outcome(id=uuid.uuid4(), application_id=app_id, funded=True, defaulted=True,
                              observed_at=start, batch_id="late"))
            else:  # an outcome corrected by a later import
                s.execute(update(Outcome).where(Outcome.id == late).values(defaulted=True, batch_id="late"))
            s.add(ExplanationRow(id=uuid.uuid4(), prediction_id=pid, actor="officer", provider="template",
                                 text="t", fact_check_ok=True))
    assert drift.refresh_all() == 0
    with sim_services.db.transaction() as s:
        pid = s.execute(select(Prediction.id).join(Application, Application.id == Prediction.application_id)
                        .where(Application.applied_at >= datetime(2025, 11, 10, tzinfo=UTC))
                        .order_by(Application.applied_at).limit(1)).scalar_one()
        s.execute(update(Prediction).where(Prediction.id == pid).values(recommendation="deny"))
    assert drift.refresh_all() >= 5  # the weeks overlapping November 2025 and the month
    assert drift.refresh_all() == 0


def _figures(snap) -> dict:  # noqa: ANN001 - a drift payload without its fingerprint
    return {k: v for k, v in snap.payload.items() if k != "fingerprint"}


def test_a_changed_prediction_in_an_old_week_is_read_again(sim_services):
    """The reason-code counts come from predictions: a rewrite of one (no new application, so the row count and
    newest time are the same) changes its month's token, and the weeks of that month are counted again."""
    from backend.platform.db.tables_book import Prediction

    drift = sim_services.drift
    drift.refresh_all()
    with sim_services.db.transaction() as s:
        pid = s.execute(select(Prediction.id).join(Application, Application.id == Prediction.application_id)
                        .where(Application.applied_at >= datetime(2025, 10, 8, tzinfo=UTC),
                               Prediction.recommendation == "deny")
                        .order_by(Application.applied_at).limit(1)).scalar_one()
        s.execute(update(Prediction).where(Prediction.id == pid).values(recommendation="approve"))
    assert drift.refresh_all() >= 5  # the weeks overlapping October 2025 and the month
    assert drift.refresh_all() == 0


def test_until_replays_the_history(sim_services):
    drift = sim_services.drift
    until = datetime(2025, 9, 17, 12, tzinfo=UTC)
    assert drift.refresh_all(until=until) == 8 + 2  # weeks 31..38 and months 08..09
    weeks = _snaps(sim_services, "week")
    assert list(weeks) == WEEKS[:8]
    assert not weeks["2025-W38"].payload["complete"] and weeks["2025-W37"].payload["complete"]
    assert weeks["2025-W38"].payload["fingerprint"]["data_end"] == until.isoformat()
    # the fixture's weeks have fewer rows than the alert minimum, so the alert reads the month
    assert max(x.n for x in weeks.values()) < sim_services.settings.monitoring.thresholds.min_rows
    value, period = drift.latest_max_psi(before=until)
    assert period == "2025-09" and value > sim_services.settings.monitoring.psi_act
    assert drift.latest_max_psi(before=datetime(2025, 9, 1, tzinfo=UTC))[1] == "2025-08"
    partial = weeks["2025-W38"].n
    drift.refresh_all()  # now: week 38 (the newest period of the replay) is recomputed with all its rows
    assert _snaps(sim_services, "week")["2025-W38"].n > partial
    with pytest.raises(ValueError) as exc:
        drift.refresh_all(until=datetime(2025, 9, 17))
    assert str(exc.value) == NAIVE_UNTIL


def test_read_views_for_the_page(sim_services):
    drift = sim_services.drift
    drift.refresh_all()
    table = drift.psi_table("month")
    assert list(table.columns) == MONTHS and table.index[0] == SCORE_LABEL
    assert len(table.index) == 1 + len(sim_services.models.get("champion").columns)
    series = drift.series("week")
    assert series["period"].tolist() == WEEKS
    assert series.loc[series["period"] == "2025-W38", "max_feature"].iloc[0] in INCIDENT
    score = drift.distribution("month", "2025-09", SCORE_LABEL)
    assert score["reference"].sum() == pytest.approx(1) and len(score) == len(score["bin"].unique())
    cats = drift.distribution("month", "2025-09", "home_ownership")
    assert cats["bin"].tolist()[-2:] == ["other (unseen)", "missing"]
    shares = drift.reason_shares("month", top=4)
    assert shares["code"].nunique() == 4 and set(shares["period"]) == set(MONTHS)
    assert shares["share"].between(0, 1).all()
    assert drift.periods("week") == WEEKS
    with pytest.raises(KeyError) as exc:
        drift.top_features("week", "1999-W01")
    assert exc.value.args[0] == UNKNOWN_PERIOD.format(granularity="week", period="1999-W01")
    with pytest.raises(ValueError) as exc2:
        drift.psi_table("day")
    assert str(exc2.value) == BAD_GRANULARITY.format(granularity="day")


def test_recompute_from_the_console_is_audited(sim_services):
    n = sim_services.drift.refresh_all(actor=Actor("rita", "risk_manager"))
    with sim_services.db.read() as s:
        row = AuditRepository(s).recent(1, action="drift_refreshed")[0]
    assert (row.actor, row.role, row.entity_type) == ("rita", "risk_manager", "monitoring")
    assert row.payload["snapshots"] == n and row.payload["granularities"] == ["week", "month"]


def test_evidently_deep_dive_of_a_window(sim_services):
    drift = sim_services.drift
    drift.refresh(granularity="week")
    html = drift.deep_dive("week", "2025-W37", rows=300)
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert len(html) > 100_000  # evidently's scripts are inlined: no network needed in the browser
    with pytest.raises(ValueError):
        drift.deep_dive("week", "2025-W37", rows=10)


def test_an_empty_book_has_no_drift(scoring_services):
    drift = scoring_services.drift
    assert drift.refresh_all() == 0
    assert drift.latest_max_psi() is None
    assert drift.psi_table("week").empty and drift.series("week").empty
