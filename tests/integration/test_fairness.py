"""Fairness snapshots on the simulated history (SQLite and PostgreSQL): one per month and per phase,
stage figures equal to plain SQL counts, ``until`` respected, the alert figure, the audit row, and
the exported report (HTML, and PDF read back with pypdf)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from backend.domain import Actor
from backend.monitoring.fairness import BAD_UNTIL, THRESHOLD_LABEL
from backend.monitoring.fairness_report import build_report, ratio, render_html, render_pdf
from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction
from backend.platform.db.tables_governance import AuditLog

MONTHS = ["2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01"]
SEX = Application.protected["sex"].as_string()


def _window(snap):
    return (Application.applied_at >= snap.window_start, Application.applied_at < snap.window_end)


def _raw_stage_counts(s, snap, stage: str) -> dict[str, tuple[int, int]]:
    """(applications, favourable) per sex at one stage, by plain SQL over the decided population."""
    final = aliased(Decision)
    first = aliased(Decision)
    earlier = aliased(Decision)
    is_first = ~exists().where(earlier.application_id == first.application_id,
                               (earlier.decided_at < first.decided_at)
                               | and_(earlier.decided_at == first.decided_at, earlier.id < first.id))
    fav = {"model": Prediction.risk_class == "low_risk", "policy": Prediction.recommendation == "approve",
           "officer": first.outcome == "approve", "final": final.outcome == "approve"}[stage]
    rows = s.execute(
        select(SEX, fav.label("fav"))
        .select_from(Application)
        .join(final, and_(final.application_id == Application.id, final.status == "final"))
        .join(Prediction, Prediction.id == final.prediction_id)
        .join(first, and_(first.application_id == Application.id, is_first))
        .where(*_window(snap))).all()
    out: dict[str, list[int]] = {}
    for sex, f in rows:
        c = out.setdefault(sex, [0, 0])
        c[0] += 1
        c[1] += int(bool(f))
    return {k: (v[0], v[1]) for k, v in out.items()}


@pytest.fixture
def refreshed(sim_services):
    n = sim_services.fairness.refresh(actor=Actor("rita", "risk_manager"))
    return sim_services, n


def test_refresh_stores_a_snapshot_per_month_and_phase_matching_sql_counts(refreshed):
    svc, n = refreshed
    snaps = svc.fairness.snapshots()
    assert [s.period for s in snaps if s.granularity == "month"] == MONTHS
    assert {s.period for s in snaps if s.granularity == "phase"} == {"shadow", "pilot", "scaled"}
    assert n == len(snaps) == 9
    pilot_month = next(s for s in snaps if s.period == "2025-10")
    with svc.db.read() as s:
        for snap in snaps:
            decided = s.execute(select(func.count(func.distinct(Application.id))).select_from(Application)
                                .join(Decision, and_(Decision.application_id == Application.id,
                                                     Decision.status == "final"))
                                .join(Prediction, Prediction.id == Decision.prediction_id)
                                .where(*_window(snap))).scalar_one()
            if snap.granularity == "phase":
                decided = s.execute(select(func.count()).select_from(Application)
                                    .join(Decision, and_(Decision.application_id == Application.id,
                                                         Decision.status == "final"))
                                    .where(Application.phase == snap.period)).scalar_one()
            assert snap.n == snap.payload["population"]["decided"] == decided, snap.period
        rates = pd.DataFrame(pilot_month.payload["rates"])
        for stage in ("model", "policy", "officer", "final"):
            raw = _raw_stage_counts(s, pilot_month, stage)
            ours = rates[(rates["view"] == "all") & (rates["attribute"] == "sex") & (rates["stage"] == stage)]
            assert {r.group: (r.n, r.favourable) for r in ours.itertuples()} == raw, stage
        ai_decided = s.execute(select(func.count()).select_from(Application)
                               .join(Decision, and_(Decision.application_id == Application.id,
                                                    Decision.status == "final"))
                               .where(*_window(pilot_month), Application.ai_visible.is_(True))).scalar_one()
        known = s.execute(select(func.count()).select_from(Application)
                          .join(Outcome, Outcome.application_id == Application.id)
                          .where(*_window(pilot_month), Outcome.funded.is_(True), Outcome.defaulted.is_not(None))
                          ).scalar_one()
    pop = pilot_month.payload["population"]
    assert (pop["ai"], pop["funded_known"]) == (ai_decided, known)
    assert ai_decided > 0  # the pilot has an AI arm: overrides by group exist
    over = pd.DataFrame(pilot_month.payload["overrides"])
    assert over.groupby("attribute")["decisions"].sum().eq(ai_decided).all()
    for snap in snaps:  # the headline is the lowest judged final-stage ratio
        r = pd.DataFrame(snap.payload["rates"])
        judged = r[(r["view"] == "all") & (r["stage"] == "final") & r["judged"]
                   & r["attribute"].isin(["sex", "age_band", "race_ethnicity"])]
        assert snap.value == pytest.approx(judged["di"].min(), abs=1e-6)
        small = r[~r["judged"]]
        assert ((small["n"] < snap.payload["min_group"]) | small["group"].str.contains("not_provided")).all()
    latest = svc.fairness.latest_min_di()
    assert latest is not None
    value, period, detail = latest
    assert period == "2026-01" and value == pytest.approx(next(s.value for s in snaps if s.period == "2026-01"))
    assert {"attribute", "group", "stage", "reference", "ci_lo", "ci_hi", "threshold"} <= set(detail)
    assert svc.fairness.latest_min_di(before=datetime(2025, 10, 1, tzinfo=UTC))[1] == "2025-09"
    with svc.db.read() as s:
        audit = s.execute(select(AuditLog).where(AuditLog.action == "fairness_refreshed")).scalars().all()
    assert len(audit) == 1 and audit[0].actor == "rita" and audit[0].payload["snapshots"] == 9


def test_refresh_is_deterministic_and_reuses_unchanged_periods(refreshed):
    svc, _ = refreshed
    before = {(s.granularity, s.period): s.payload for s in svc.fairness.snapshots()}
    assert svc.fairness.refresh(force=True) == 9
    after = {(s.granularity, s.period): s.payload for s in svc.fairness.snapshots()}
    assert after == before  # the same cells and seeds give the same figures and intervals


def test_until_is_respected(sim_services):
    until = datetime(2025, 9, 20, tzinfo=UTC)
    assert sim_services.fairness.refresh(until=until) == 3
    snaps = sim_services.fairness.snapshots()
    assert [(s.granularity, s.period) for s in snaps] == [("month", "2025-08"), ("phase", "shadow"),
                                                          ("month", "2025-09")]
    assert all(s.window_end <= until for s in snaps)
    sept = snaps[-1]
    with sim_services.db.read() as s:
        applied = s.execute(select(func.count()).select_from(Application)
                            .where(Application.applied_at >= datetime(2025, 9, 1, tzinfo=UTC),
                                   Application.applied_at < until)).scalar_one()
    assert sept.payload["population"]["applications"] == applied
    assert sim_services.fairness.latest_min_di()[1] == "2025-09"
    with pytest.raises(ValueError) as e:
        sim_services.fairness.refresh(until=datetime(2025, 9, 20))
    assert str(e.value) == BAD_UNTIL


def _text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))


def test_report_html_and_pdf_carry_the_numbers(refreshed):
    svc, _ = refreshed
    snaps = svc.fairness.snapshots()
    phases = [s for s in snaps if s.granularity == "phase"]
    snap = next(s for s in phases if s.period == "pilot")
    rep = build_report(snap, phases=phases, generated_at=datetime(2026, 2, 15, 9, 0, tzinfo=UTC),
                       simulated=svc.book.simulated_count())
    html_doc, pdf = render_html(rep), render_pdf(rep)
    pdf_text = _text(pdf)
    low = snap.payload["min_di"]
    must = ["2026-02-15 09:00 UTC", f"{snap.window_start:%Y-%m-%d %H:%M}", THRESHOLD_LABEL, "Simulated data",
            f"Lowest disparate-impact ratio at the final decision: {ratio(low['value'])}",
            f"{snap.payload['population']['decided']:,}"]
    for phase in phases:
        must.append(ratio(phase.value))
    for m in must:
        assert m in html_doc, m
        assert m in pdf_text, m
    assert "<script" not in html_doc.lower() and pdf.startswith(b"%PDF")
    rates = pd.DataFrame(snap.payload["rates"])
    sample = rates[(rates["view"] == "all") & (rates["attribute"] == "sex") & (rates["stage"] == "final")]
    for r in sample.itertuples():
        assert f"{100 * r.rate:.1f}%" in html_doc and f"{100 * r.rate:.1f}%" in pdf_text
