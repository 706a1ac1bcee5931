"""Phase comparison on the simulated history (SQLite and PostgreSQL): every figure equals a direct pandas
computation on the same rows, criteria and guardrails are judged on their intervals, and the phase review
report carries the page's numbers."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from backend.analytics import phase_report as pr
from backend.analytics import stats
from backend.analytics.config import AnalyticsSettings, PhaseCriterion
from backend.analytics.experiments import RECOUNT_AFTER, SNAPSHOT_KIND, ExperimentService
from backend.analytics.experiments_model import (
    NO_AI_ARM,
    NOT_COMPUTED,
    UNKNOWN_METRIC,
    UNKNOWN_PHASE,
    fmt,
    fmt_ci,
)
from backend.monitoring.snapshot_queries import SnapshotRepository
from backend.platform.db.tables_book import (
    Application,
    Decision,
    LLMUsageRow,
    Outcome,
    Prediction,
    SurveyResponse,
)
from backend.platform.db.tables_governance import AuditLog


def _frame(svc) -> pd.DataFrame:
    """One row per application: the few columns the figures need, read directly."""
    with svc.db.read() as s:
        apps = pd.DataFrame(s.execute(sa.select(Application.id, Application.phase, Application.arm,
                                                Application.applied_at)).all(),
                            columns=["id", "phase", "arm", "applied_at"])
        dec = pd.DataFrame(s.execute(sa.select(Decision.application_id, Decision.outcome, Decision.is_override,
                                               Decision.decided_at, Decision.prediction_id)
                                     .where(Decision.status == "final")).all(),
                           columns=["id", "outcome", "is_override", "decided_at", "prediction_id"])
        rejected = set(s.execute(sa.select(Decision.application_id).where(
            Decision.status == "rejected", Decision.is_override.is_(True))).scalars())
        pred = pd.DataFrame(s.execute(sa.select(Prediction.id, Prediction.recommendation, Prediction.risk_class)).all(),
                            columns=["prediction_id", "recommendation", "risk_class"])
        out = pd.DataFrame(s.execute(sa.select(Outcome.application_id, Outcome.funded, Outcome.defaulted,
                                               Outcome.observed_at)).all(),
                           columns=["id", "funded", "defaulted", "observed_at"])
    df = apps.merge(dec, on="id", how="left").merge(pred, on="prediction_id", how="left").merge(out, on="id", how="left")
    df["rejected_override"] = df["id"].isin(rejected)
    for col in ("applied_at", "decided_at", "observed_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def _direct(df: pd.DataFrame, months: int = 12) -> pd.DataFrame:
    d = df[df["outcome"].notna()].copy()
    implied = np.where(d["risk_class"] == "high_risk", "deny", "approve")
    d["agree"] = (d["recommendation"] == d["outcome"]) | ((d["recommendation"] == "manual_review") &
                                                          (d["outcome"] == implied))
    d["approved"] = d["outcome"] == "approve"
    d["override"] = d["is_override"].astype(bool) | d["rejected_override"]
    as_of = df["observed_at"].max()
    cutoff = as_of - pd.DateOffset(months=months)
    known = (d["funded"] == True) & d["defaulted"].notna()  # noqa: E712 - object column with None
    d["known"] = known
    d["default"] = known & (d["defaulted"] == True)  # noqa: E712
    d["matured"] = known & (d["decided_at"] <= cutoff)
    d["matured_default"] = d["matured"] & d["default"] & (d["observed_at"] <= d["decided_at"] + pd.DateOffset(months=months))
    d["seconds"] = (d["decided_at"] - d["applied_at"]).dt.total_seconds()
    return d


def test_per_phase_figures_equal_direct_computation(sim_services) -> None:
    svc = sim_services
    ov = svc.experiments.overview()
    d = _direct(_frame(svc))
    assert ov.current_phase == "scaled"  # clock 2026-02-15: the scaled phase is in force
    assert ov.phases() == ["shadow", "pilot", "scaled"]
    assert {(a.phase, a.arm) for a in ov.arms} == set(map(tuple, d[["phase", "arm"]].drop_duplicates().to_numpy()))
    for a in ov.arms:
        g = d[(d["phase"] == a.phase) & (d["arm"] == a.arm)]
        assert a.counts["decided"] == len(g)
        f = a.figures
        assert f["approval_rate"].value == pytest.approx(g["approved"].mean())
        assert f["agreement_rate"].value == pytest.approx(g["agree"].mean())
        ref = stats.wilson_interval(int(g["approved"].sum()), len(g))
        assert (f["approval_rate"].low, f["approval_rate"].high) == pytest.approx((ref.low, ref.high))
        assert f["default_rate_to_date"].n == int(g["known"].sum())
        assert f["default_rate"].n == int(g["matured"].sum())
        if g["known"].sum():
            assert f["default_rate_to_date"].value == pytest.approx(g.loc[g["known"], "default"].mean())
        if g["matured"].sum():
            assert f["default_rate"].value == pytest.approx(g.loc[g["matured"], "matured_default"].mean())
        if a.arm == "ai":
            assert f["override_rate"].value == pytest.approx(g["override"].mean())
        med, p95 = np.quantile(g["seconds"], [0.5, 0.95])
        assert f["time_median_s"].value == pytest.approx(med, rel=1e-6, abs=0.01)
        assert f["time_p95_s"].value == pytest.approx(p95, rel=1e-6, abs=0.01)
    # matured loans exist for the first vintages only (outcomes as of 2026-11-01, maturity 12 months)
    assert ov.arm("shadow", "control").figures["default_rate"].n > 0
    assert ov.arm("scaled", "ai").figures["default_rate"].n == 0
    assert ov.arm("scaled", "ai").figures["default_rate"].value is None


def test_latency_fact_check_and_error_rates_equal_direct_computation(sim_services) -> None:
    svc = sim_services
    ov = svc.experiments.overview()
    final = sa.select(Decision.prediction_id).where(Decision.status == "final")
    with svc.db.read() as s:
        preds = pd.DataFrame(s.execute(sa.select(Prediction.id, Prediction.timings, Prediction.fallback_error,
                                                 Prediction.id.in_(final), Application.phase, Application.arm)
                                       .join(Application, Application.id == Prediction.application_id)).all(),
                             columns=["pid", "timings", "fallback_error", "decided", "phase", "arm"])
        usage = pd.DataFrame(s.execute(sa.select(LLMUsageRow.prediction_id, LLMUsageRow.provider, LLMUsageRow.purpose,
                                                 LLMUsageRow.latency_ms, LLMUsageRow.error,
                                                 LLMUsageRow.fact_check_ok)).all(),
                             columns=["pid", "provider", "purpose", "ms", "error", "fact_check_ok"])
    calls = usage[usage["provider"] != "cache"]
    llm_ms = calls[calls["purpose"] == "explanation"].groupby("pid")["ms"].sum()
    request_ms = preds["timings"].map(lambda t: sum(v for v in t.values() if isinstance(v, int | float)))
    preds["latency_s"] = (request_ms + preds["pid"].map(llm_ms).fillna(0.0)) / 1000  # end to end per decision
    # a request errs when scoring fell back, or a purpose's LLM calls all failed without an answer
    errored = usage["error"].notna() & usage["fact_check_ok"].isna()
    per_purpose = usage.assign(err=errored).groupby(["pid", "purpose"])["err"].agg(["sum", "count"])
    failed = {pid for (pid, _), r in per_purpose.iterrows() if r["sum"] > 0 and r["sum"] == r["count"]}
    preds["error"] = preds["fallback_error"].notna() | preds["pid"].isin(failed)
    joined = calls.merge(preds[["pid", "phase", "arm"]], on="pid")
    for phase in ("pilot", "scaled"):
        ai = preds[(preds["phase"] == phase) & (preds["arm"] == "ai") & preds["decided"]]
        fig = ov.arm(phase, "ai").figures["latency_p95_s"]
        ref = stats.quantile_interval(ai["latency_s"].to_numpy(), 0.95)
        finite = [None if math.isinf(v) else v for v in (ref.low, ref.high)]  # too few cases: unbounded -> None
        assert (fig.value, fig.n) == pytest.approx((ref.estimate, len(ai)))
        assert [fig.low, fig.high] == pytest.approx(finite)
        g = joined[(joined["phase"] == phase) & (joined["arm"] == "ai")]
        checked = g["fact_check_ok"].notna()
        ai_fig = ov.arm(phase, "ai").figures
        assert ai_fig["fact_check_fail_rate"].n == int(checked.sum())
        assert ai_fig["fact_check_fail_rate"].value == pytest.approx((g.loc[checked, "fact_check_ok"] == False).mean())  # noqa: E712
        assert ai_fig["llm_error_rate"].value == pytest.approx(g["error"].notna().mean())
        arm = preds[(preds["phase"] == phase) & (preds["arm"] == "ai")]
        assert (ai_fig["error_rate"].value, ai_fig["error_rate"].n) == pytest.approx((arm["error"].mean(), len(arm)))
        guard = next(c for c in ov.checks_for(phase, "guardrail") if c.metric == "error_rate")
        p = preds[preds["phase"] == phase]
        assert guard.figure is not None and (guard.figure.value, guard.figure.n) == pytest.approx((p["error"].mean(),
                                                                                                   len(p)))
    # the simulated timeouts were all answered by the fallback provider: LLM call errors, yet no request erred
    assert usage["error"].notna().any() and not preds["error"].any()


def test_ai_arm_is_faster_and_the_time_test_says_so(sim_services) -> None:
    ov = sim_services.experiments.overview()
    cmp = sim_services.experiments.compare("scaled", ov)
    d = _direct(_frame(sim_services))
    g = d[d["phase"] == "scaled"]
    t_ai, t_ctl = g.loc[g["arm"] == "ai", "seconds"], g.loc[g["arm"] == "control", "seconds"]
    assert cmp.time is not None
    assert cmp.time.median_ai == pytest.approx(np.median(t_ai), abs=0.01)
    assert cmp.time.median_control == pytest.approx(np.median(t_ctl), abs=0.01)
    assert cmp.time.diff.high < 0 and cmp.time.p_value < 1e-6  # seconds vs days
    approval = next(r for r in cmp.rows if r.metric == "approval_rate")
    ai, ctl = ov.arm("scaled", "ai"), ov.arm("scaled", "control")
    ref = stats.diff_interval(ai.counts["approved"], ai.counts["decided"], ctl.counts["approved"], ctl.counts["decided"])
    assert (approval.diff.value, approval.diff.low, approval.diff.high) == pytest.approx((ref.estimate, ref.low, ref.high))
    seq = cmp.sequences["approval_rate"]
    assert seq[-1].n_ai == ai.counts["decided"] and seq[-1].n_control == ctl.counts["decided"]
    assert seq[-1].estimate == pytest.approx(ref.estimate)
    with pytest.raises(ValueError) as exc:
        sim_services.experiments.compare("shadow", ov)
    assert str(exc.value) == NO_AI_ARM.format(phase="Shadow mode")
    with pytest.raises(ValueError) as exc:
        sim_services.experiments.compare("beta", ov)
    assert str(exc.value) == UNKNOWN_PHASE.format(phase="beta")


def test_nps_maps_survey_months_to_phases(sim_services) -> None:
    ov = sim_services.experiments.overview()
    with sim_services.db.read() as s:
        answers = pd.DataFrame(s.execute(sa.select(SurveyResponse.period, SurveyResponse.nps)).all(),
                               columns=["period", "nps"])
    months = {"shadow": ("2025-08", "2025-09"), "pilot": ("2025-10", "2025-11"), "scaled": ("2025-12", "2026-01")}
    for sv in ov.surveys:
        scores = answers.loc[answers["period"].isin(months[sv.phase]), "nps"].to_numpy()
        assert sv.nps.n == len(scores) == 24  # 12 officers x 2 months
        assert sv.nps.value == pytest.approx(((scores >= 9).sum() - (scores <= 6).sum()) / len(scores))
        assert sv.nps_ai_users.n + sv.nps_others.n == len(scores)
    assert next(s for s in ov.surveys if s.phase == "shadow").nps_ai_users.n == 0  # nobody saw the AI in shadow


def _service(svc, criteria: dict[str, list[PhaseCriterion]], **guard) -> ExperimentService:
    return ExperimentService(svc.db, svc.clock, AnalyticsSettings(criteria=criteria, **guard), svc.settings.monitoring)


def test_criteria_are_judged_on_their_interval(sim_services) -> None:
    base = sim_services.experiments.overview().arm("pilot", "ai").figures["override_rate"]
    assert base.value is not None and base.low is not None and base.high is not None
    crit = {"pilot": [PhaseCriterion(metric="override_rate", target=min(0.99, base.high + 0.01), direction="max",
                                     label="easy"),
                      PhaseCriterion(metric="override_rate", target=(base.value + base.high) / 2, direction="max",
                                     label="close"),
                      PhaseCriterion(metric="override_rate", target=max(1e-4, base.value / 2), direction="max",
                                     label="hard")],
            "shadow": [PhaseCriterion(metric="agreement_rate", target=0.5, direction="min")],
            "scaled": [PhaseCriterion(metric="nps", target=-1.0, direction="min", label="NPS"),
                       PhaseCriterion(metric="no_such_metric", target=1, direction="max", label="Unknown")]}
    ov = _service(sim_services, crit).overview()
    verdicts = {c.label: c.verdict for c in ov.checks if c.kind == "criterion"}
    assert verdicts["easy"] == stats.MET
    assert verdicts["close"] == stats.LIKELY
    assert verdicts["hard"] == stats.NOT_MET
    assert verdicts["Agreement with the model"] == stats.MET  # the default label of the metric
    assert verdicts["Unknown"] == stats.NO_DATA
    nps = next(c for c in ov.checks if c.label == "NPS")
    assert nps.figure is not None and nps.figure.n == 24 and nps.verdict in (stats.MET, stats.LIKELY)
    easy = next(c for c in ov.checks if c.label == "easy")
    assert easy.figure is not None
    assert f"{fmt(easy.figure.value, 'rate')} (95% CI {fmt(easy.figure.low, 'rate')} to {fmt(easy.figure.high, 'rate')})" \
        in easy.text and "vs target <" in easy.text


def test_guardrails_without_fairness_snapshots_say_not_computed(sim_services) -> None:
    # a service with no fairness service to compute them on demand (the container's computes them:
    # tests/integration/test_verdict_honest.py)
    exp = _service(sim_services, sim_services.settings.analytics.criteria)
    ov = exp.overview()
    fairness = [c for c in ov.checks if c.metric == "fairness_ratio"]
    assert {c.phase for c in fairness} == {"shadow", "pilot", "scaled"}
    assert all(c.verdict == "not computed" and NOT_COMPUTED in c.text for c in fairness)
    advice = exp.advise(ov)
    assert [a.phase for a in advice] == ["scaled", "pilot", "shadow"]  # the phase in force first
    now = advice[0]
    assert now.next_phase == "full" and now.verdict in ("not yet", "no-go")
    assert any(NOT_COMPUTED in r.text and r.status == "wait" for r in now.reasons)
    assert any(r.text.startswith("Sequential test on the default rate") for r in now.reasons)
    assert any(r.text.startswith("Sequential test on the approval rate") for r in now.reasons)
    assert advice[1].headline.startswith("Looking back")
    shadow = next(c for c in ov.checks if c.phase == "shadow" and c.metric == "fact_check_fail_rate")
    assert shadow.verdict == "not applicable"  # no LLM call in shadow mode


def test_the_fairness_guardrail_reads_the_phases_own_snapshot(sim_services) -> None:
    svc = sim_services
    start = datetime(2025, 11, 1, tzinfo=UTC)
    low = {"value": 0.72, "attribute": "sex", "group": "female", "reference": "male", "ci_lo": 0.61, "ci_hi": 0.83}
    with svc.db.transaction() as s:
        repo = SnapshotRepository(s)
        for month, value in (("2025-12", 0.91), ("2026-01", 0.95)):  # months are not the phase's figure
            at = datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC)
            repo.put(kind="fairness", granularity="month", period=month, window_start=at, window_end=at,
                     computed_at=svc.clock.now(), n=500, value=value, payload={"min_di": {**low, "value": value}})
        repo.put(kind="fairness", granularity="phase", period="scaled", window_start=start, window_end=start,
                 computed_at=svc.clock.now(), n=1500, value=0.72, payload={"min_di": low, "ci_level": 0.95})
    ov = _service(svc, {"scaled": []}, guardrail_factcheck_fail_max=0.0001).overview()
    scaled = {c.metric: c for c in ov.checks_for("scaled", "guardrail")}
    fig = scaled["fairness_ratio"].figure
    assert fig is not None and (fig.value, fig.low, fig.high, fig.n) == (0.72, 0.61, 0.83, 1500)
    assert scaled["fairness_ratio"].verdict == stats.NOT_MET
    assert "0.72, 95% CI 0.61 to 0.83 vs minimum 0.80" in scaled["fairness_ratio"].text
    assert scaled["fact_check_fail_rate"].verdict in (stats.NOT_MET, stats.LIKELY)
    shadow = next(c for c in ov.checks_for("shadow", "guardrail") if c.metric == "fairness_ratio")
    assert shadow.verdict == "not computed"  # no snapshot of the shadow phase
    advice = _service(svc, {"scaled": []}).advise()
    assert advice[0].verdict == "no-go" and any(r.status == "block" and "Fairness" in r.text for r in advice[0].reasons)


def test_power_calculator_uses_the_control_arm_and_the_weekly_volume(sim_services) -> None:
    svc = sim_services
    ov = svc.experiments.overview()
    plan = svc.experiments.power("approval_rate", -0.05, ai_share=0.5, overview=ov)
    base = ov.arm("scaled", "control").figures["approval_rate"].value
    assert plan.baseline == pytest.approx(base)
    assert (plan.n_ai, plan.n_control) == stats.sample_size_per_arm(base, -0.05, alpha=0.05, power=0.8, ratio=1.0)
    assert plan.weekly_volume > 0 and math.isfinite(plan.weeks)
    assert plan.weeks == pytest.approx(max(plan.n_ai, plan.n_control) / (plan.weekly_volume * 0.5))
    assert "mature" in svc.experiments.power("default_rate_to_date", -0.01, ai_share=0.9, overview=ov).note
    with pytest.raises(ValueError) as exc:
        svc.experiments.power("latency", 0.1, ai_share=0.5, overview=ov)
    assert str(exc.value) == UNKNOWN_METRIC.format(metric="latency")
    with pytest.raises(ValueError, match="planned AI share"):
        svc.experiments.power("approval_rate", 0.1, ai_share=1.0, overview=ov)


def test_report_html_and_pdf_carry_the_figures(sim_services) -> None:
    svc = sim_services
    rep = svc.experiments.report(simulated=svc.book.simulated_count())
    html, pdf = pr.render_html(rep), pr.render_pdf(rep)
    pilot_ai = rep.overview.arm("pilot", "ai")
    override = fmt_ci(pilot_ai.figures["override_rate"], "rate")
    median = fmt(rep.overview.arm("scaled", "ai").figures["time_median_s"].value, "seconds")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    for needle in (override, median, "Should we advance?", f"Generated {rep.generated_at:%Y-%m-%d}", "Simulated data",
                   "Fairness ratio (lowest disparate-impact ratio"):  # computed on demand for the report
        assert needle in html
        assert needle in text, needle
    assert "<script" not in html.lower()
    assert pdf.startswith(b"%PDF") and b"/JavaScript" not in pdf
    real = pr.render_html(type(rep)(rep.overview, rep.comparisons, rep.advice, rep.generated_at, 0))
    assert "Simulated data" not in real


def test_counts_are_stored_and_reused_until_the_records_change(sim_services) -> None:
    svc = sim_services
    first = svc.experiments.overview()
    assert first.source == "computed"
    assert svc.experiments.overview().source == "memo"
    n = svc.experiments.refresh()
    assert n == sum(a.counts["applications"] for a in first.arms)
    with svc.db.read() as s:
        snap = SnapshotRepository(s).latest(SNAPSHOT_KIND)
        audit = s.execute(sa.select(AuditLog.action, AuditLog.actor).order_by(AuditLog.seq.desc()).limit(1)).one()
    assert snap is not None and snap.n == n and tuple(audit) == ("phase_comparison_refreshed", "monitor")
    fresh = ExperimentService(svc.db, svc.clock, svc.settings.analytics, svc.settings.monitoring)
    again = fresh.overview()
    assert again.source == "snapshot"
    assert [a.figures for a in again.arms] == [a.figures for a in first.arms]
    with svc.db.transaction() as s:  # a new survey answer: the stored counts no longer describe the records
        uid = s.execute(sa.select(SurveyResponse.user_id).limit(1)).scalar_one()
        s.add(SurveyResponse(user_id=uid, period="2026-02", at=svc.clock.now(), nps=10))
    stale = fresh.overview()  # served, dated and marked stale, until the count is RECOUNT_AFTER old
    assert stale.stale and stale.source in ("memo", "snapshot") and stale.computed_at == again.computed_at
    assert fresh.overview(recount=True).source == "computed"  # unless asked
    svc.clock.advance(seconds=RECOUNT_AFTER.total_seconds() + 60)
    with svc.db.transaction() as s:
        s.add(SurveyResponse(user_id=uid, period="2026-03", at=svc.clock.now(), nps=3))
    later = fresh.overview()
    assert later.source == "computed" and not later.stale and later.computed_at == svc.clock.now()
