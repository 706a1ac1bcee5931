"""One figure, one value wherever it is shown (issue 15 item 4), on the simulated history, SQLite and PostgreSQL.

For each figure shown in several places, the test reads it from every place a person reads it: the console
pages rendered by ``streamlit.testing`` (the metric, table cell or banner as shown), the alert reading on
the Alerts page and in ``creditrisk monitor run --json``, the readiness checklist, and the HTML and PDF
reports. Values shown rounded agree when the intervals their displayed digits stand for overlap
(:func:`consistent`); tables that carry raw numbers are compared exactly.

========================== ==========================================================================
figure                     the one function, and where it is read here
========================== ==========================================================================
end-to-end latency p95     ``analytics.latency.end_to_end_p95``: Latency page (overall, last 7 days,
                           AI arm by phase, component table), Phase comparison (arm table, scaled
                           criterion), phase review HTML/PDF, Alerts page, ``monitor run``
disparate impact + CI      ``monitoring.fairness.disparate_impact_of``: Fairness page (month and phase
                           headline), fairness report HTML/PDF, Alerts page, ``monitor run``,
                           readiness page, Phase comparison's fairness guardrail
rates per arm and phase    ``analytics.experiments_model.arm_figures``: Phase comparison arm table,
                           AI-vs-control table, phase review HTML/PDF; the Fairness page's AI-arm
                           approvals and overrides summed over groups
cost per request           ``analytics.cost_model.Breakdown.per_request`` of ``CostService.window`` /
                           ``recent``: Costs page (period metric, trend table, alert banner), Alerts
                           page, ``monitor run``
AUC / accuracy by vintage  ``monitoring.performance_metrics.evaluate`` via ``vintage_table``:
                           Performance page (vintage table, arm comparison), the accuracy alert on
                           the Alerts page and ``monitor run``, scikit-learn on the rows
error rate                 ``analytics.error_rate.error_rate``: Alerts page, ``monitor run``
========================== ==========================================================================
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import streamlit as st
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app.guard import USER_KEY
from backend.analytics import render_html as phase_html
from backend.analytics import render_pdf as phase_pdf
from backend.analytics.cost_model import month_bounds
from backend.analytics.experiments_model import Figure, fmt, fmt_ci
from backend.cli import app as cli
from backend.container import Services, build_services
from backend.domain import Actor
from backend.monitoring import build_report
from backend.monitoring import render_html as fairness_html
from backend.monitoring import render_pdf as fairness_pdf
from backend.platform.clock import FixedClock
from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction
from backend.rollout import PHASE_LABELS

PAGES = Path(__file__).resolve().parents[2] / "pages"
JAN = datetime(2026, 1, 28, 12, 0, tzinfo=UTC)  # inside the history: the trailing windows hold decisions
AFTER = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)  # two weeks after the history's last application
LATE = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)  # after the outcome feed: the first vintages have matured
runner = CliRunner()


# -- reading what is shown -------------------------------------------------------------------------------
NUMBER = re.compile(r"^\s*\$?(-?[\d,]*\.?\d+)\s*(%|s|ms)?\s*$")


def shown(text: str) -> tuple[float, float]:
    """The interval of true values a displayed number stands for ("0.872" -> [0.8715, 0.8725])."""
    m = NUMBER.match(str(text))
    assert m, f"not a displayed number: {text!r}"
    digits, unit = m.group(1).replace(",", ""), m.group(2)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    scale = {"%": 0.01, "ms": 0.001}.get(unit or "", 1.0)
    value, half = float(digits) * scale, 0.5 * 10 ** -decimals * scale
    return value - half - 1e-12, value + half + 1e-12


def consistent(*texts: Any) -> None:
    """Every displayed value (text) or exact value (float) can be the same number."""
    spans = [shown(t) if isinstance(t, str) else (float(t) - 1e-9, float(t) + 1e-9) for t in texts]
    assert max(lo for lo, _ in spans) <= min(hi for _, hi in spans), f"the places disagree: {texts}"


def page(name: str, role: str, *, setup: Callable[[AppTest], None] | None = None) -> AppTest:
    """One console page as ``role`` sees it (the session holds the signed-in user, as after the login)."""
    at = AppTest.from_file(str(PAGES / name), default_timeout=300)
    at.session_state[USER_KEY] = Actor(role.replace("_", ""), role, uuid.uuid4(), "Agreement Tester")
    at.run()
    if setup is not None:
        setup(at)
    assert not at.exception, [e.value for e in at.exception]
    verdicts = [e for e in at.error if str(e.value).startswith("Do not move")]  # a phase verdict, not a failure
    assert len(at.error) == len(verdicts), [e.value for e in at.error]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def rule_value(at: AppTest, label: str) -> str:
    rules = table(at, "fires when").set_index("rule")
    return str(rules.loc[label, "value"])


def monitor_run(at: datetime) -> dict[str, Any]:
    res = runner.invoke(cli, ["monitor", "run", "--as-of", at.strftime("%Y-%m-%dT%H:%M"), "--no-refresh", "--json"])
    assert res.exit_code in (0, 1), res.output
    return {r["rule"]: r for r in json.loads(res.output)["readings"]}


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


@pytest.fixture
def book(sim_services: Services, cli_env: Path, wide_cli_tables: None,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[datetime], Services]]:
    """The simulated history seen at a moment: the console pages and the CLI read this Services bundle."""
    made: list[Services] = []

    def at(when: datetime) -> Services:
        svc = build_services(sim_services.settings, db=sim_services.db, clock=FixedClock(when))
        monkeypatch.setattr("app.services.get_services", lambda: svc)
        monkeypatch.setattr("backend.platform.cli._services_factory", lambda migrate=True: svc)
        st.cache_data.clear()
        st.cache_resource.clear()
        made.append(svc)
        return svc

    yield at
    st.cache_data.clear()
    st.cache_resource.clear()


# -- end-to-end latency p95 -----------------------------------------------------------------------------------
def test_end_to_end_latency_p95_is_one_figure(book) -> None:
    svc = book(JAN)
    lat = page("latency.py", "product_lead")
    overall, week = metric(lat, "End to end p95"), metric(lat, "p95, last 7 days")
    components = table(lat, "measure").set_index("measure")
    consistent(overall, components.loc["End to end per decision", "p95 ms"] / 1000)  # SQL percentiles vs the figure
    ai = table(lat, "interval low s")
    assert set(ai["phase"]) == {"pilot", "scaled"} and set(ai["arm"]) == {"ai"}

    ph = page("phases.py", "risk_manager")
    arms = table(ph, "Latency p95")
    checks = table(ph, "Value (CI)")
    rep = svc.experiments.report(simulated=svc.book.simulated_count())
    html, pdf = phase_html(rep), pdf_text(phase_pdf(rep))
    for r in ai.itertuples(index=False):
        fig = Figure(r[3], None if pd.isna(r[4]) else r[4], None if pd.isna(r[5]) else r[5], int(r[2]))
        want = fmt_ci(fig, "seconds")  # the Latency page's numbers, formatted as the phase comparison shows them
        row = arms[(arms["Phase"] == PHASE_LABELS[r.phase]) & (arms["Arm"] == "AI")]
        assert row["Latency p95"].tolist() == [want]
        assert want in html and want in pdf
        if r.phase == "scaled":  # the scaled phase's success criterion judges this figure
            crit = checks[(checks["Phase"] == PHASE_LABELS["scaled"]) & (checks["What"] == "Latency p95")]
            assert crit["Value (CI)"].tolist() == [want] and crit["n"].tolist() == [int(r[2])]

    alerts = page("alerts.py", "risk_manager")
    cli_latency = monitor_run(JAN)["latency"]
    assert cli_latency["n"] > 0 and cli_latency["period"] == "2026-01-21..2026-01-28"
    consistent(week, rule_value(alerts, "Decision latency p95").replace(" s", ""), cli_latency["value"])


# -- disparate impact and its interval ----------------------------------------------------------------------
def _fairness_headline(granularity: str, period: str) -> AppTest:
    def choose(at: AppTest) -> None:
        next(r for r in at.radio if r.key == "fairness_gran").set_value(granularity).run()
        next(s for s in at.selectbox if s.key == f"fairness_period_{granularity}").set_value(period).run()

    return page("fairness.py", "risk_manager", setup=choose)


def test_disparate_impact_and_its_interval_are_one_figure(book) -> None:
    svc = book(JAN)
    assert svc.fairness.refresh() > 0
    reading = monitor_run(JAN)["fairness"]
    month = reading["period"]
    extra = reading["extra"]["fairness"]
    fp = _fairness_headline("month", month)
    value, ci = metric(fp, "Lowest DI, final decision"), metric(fp, "95% interval")
    lo, hi = (x.strip() for x in ci.strip("[]").split(","))
    consistent(value, reading["value"])
    consistent(lo, extra["ci_lo"])
    consistent(hi, extra["ci_hi"])
    assert metric(fp, "Group vs reference") == f"{extra['group']} vs {extra['reference']}"

    alerts = page("alerts.py", "risk_manager")
    consistent(rule_value(alerts, "Lowest disparate impact"), value)

    ready = page("readiness.py", "product_lead")
    evidence = " ".join(table(ready, "evidence")["evidence"])
    said = re.search(r"Lowest disparate impact ([\d.]+) at the final decision \(([^)]*)\) in (\S+),", evidence)
    assert said is not None and said.group(3) == month
    consistent(said.group(1), value)
    assert said.group(2).endswith(f"{extra['group']} vs {extra['reference']}")

    snap = next(s for s in svc.fairness.snapshots("month") if s.period == month)  # the page's report buttons
    report = build_report(snap, phases=svc.fairness.snapshots("phase"), generated_at=JAN)
    head = f"Lowest disparate-impact ratio at the final decision: {value} "
    assert f"95% CI {ci})" in next(p for p in report.paragraphs if p.startswith(head))
    assert head + "(" in fairness_html(report) and f"95% CI {ci}" in fairness_html(report)
    assert head.strip() in pdf_text(fairness_pdf(report)) and f"95% CI {ci}" in pdf_text(fairness_pdf(report))

    ph = page("phases.py", "risk_manager")  # the guardrail reads each phase's own figure
    checks = table(ph, "Value (CI)")
    for phase in ("pilot", "scaled"):
        head = _fairness_headline("phase", phase)
        shown_value, shown_ci = metric(head, "Lowest DI, final decision"), metric(head, "95% interval")
        cell = checks[(checks["Phase"] == PHASE_LABELS[phase]) & (checks["What"] == "Fairness ratio")]["Value (CI)"]
        m = re.fullmatch(r"([\d.]+) \(([\d.]+) to ([\d.]+)\)", cell.tolist()[0])
        assert m is not None, cell.tolist()
        lo, hi = (x.strip() for x in shown_ci.strip("[]").split(","))
        consistent(m.group(1), shown_value)
        consistent(m.group(2), lo)
        consistent(m.group(3), hi)


# -- approval, override and default rates per arm and phase ------------------------------------------------
def _direct_rates(svc: Services) -> pd.DataFrame:
    """Approval and override counts per phase and arm, recounted from the rows."""
    with svc.db.read() as s:
        rows = s.execute(sa.select(Application.phase, Application.arm, Decision.outcome, Decision.is_override)
                         .join(Decision, sa.and_(Decision.application_id == Application.id, Decision.status == "final"))
                         .where(Application.phase.is_not(None))).all()
    return pd.DataFrame(rows, columns=["phase", "arm", "outcome", "override"])


def test_rates_per_arm_and_phase_are_one_figure(book) -> None:
    svc = book(AFTER)  # the fairness snapshots then cover every application, as the phase comparison does
    ph = page("phases.py", "risk_manager")
    arms = table(ph, "Approval rate")
    compare = table(ph, "AI - control")  # the phase picked by default: the phase in force
    phase = next(s for s in ph.selectbox if s.key == "phases_compare_phase").value
    rep = svc.experiments.report(simulated=svc.book.simulated_count())
    html, pdf = phase_html(rep), pdf_text(phase_pdf(rep))
    direct = _direct_rates(svc)
    for arm, label in (("ai", "AI"), ("control", "Control")):
        row = arms[(arms["Phase"] == PHASE_LABELS[phase]) & (arms["Arm"] == label)].iloc[0]
        for metric_name, col in (("Approval rate", "approval"), ("Default rate (matured)", "default")):
            cell = str(compare.set_index("Metric").loc[metric_name, label])
            assert cell.startswith(str(row[metric_name]).split(" [n=")[0] + " [n="), (cell, row[metric_name])
            assert str(row[metric_name]) in html and str(row[metric_name]) in pdf
        mine = direct[(direct["phase"] == phase) & (direct["arm"] == arm)]
        consistent(str(row["Approval rate"]).split(" ")[0], (mine["outcome"] == "approve").mean())
    ai_row = arms[(arms["Phase"] == PHASE_LABELS[phase]) & (arms["Arm"] == "AI")].iloc[0]
    assert ai_row["Override rate"] in html and ai_row["Override rate"] in pdf

    # the Fairness page counts the same AI-arm approvals and overrides, group by group
    assert svc.fairness.refresh() > 0

    def ai_arm(at: AppTest) -> None:
        next(s for s in at.selectbox if s.key == "fairness_period_phase").set_value(phase).run()
        next(s for s in at.selectbox if s.key == "fairness_view").set_value("ai").run()

    fair = page("fairness.py", "risk_manager", setup=ai_arm)
    rates = table(fair, "selection rate")
    final = rates[rates["stage"] == rates["stage"].iloc[-1]]  # stage 4, the final decision
    consistent(str(ai_row["Approval rate"]).split(" ")[0], final["favourable"].sum() / final["applications"].sum())
    over = table(fair, "override rate")
    consistent(str(ai_row["Override rate"]).split(" ")[0], over["overrides"].sum() / over["AI-arm decisions"].sum())


# -- cost per request -----------------------------------------------------------------------------------------
def test_cost_per_request_is_one_figure(book) -> None:
    svc = book(JAN)
    costs = page("costs.py", "product_lead")
    banner = next(x.value for x in [*costs.warning, *costs.success, *costs.info] if "Cost alert" in str(x.value))
    said = re.search(r"Cost alert: \$([\d.]+) per scoring request over the last 30 days \((\S+) to (\S+), ([\d,]+) "
                     r"requests\)", str(banner))
    assert said is not None, banner
    # a month: the period metric, the trend table and the month's window agree (storage is measured live, so
    # the window is priced before anything writes to the database)
    next(s for s in costs.selectbox if s.key == "costs_period").set_value("2025-12").run()
    per = metric(costs, "Per scoring request").lstrip("$")
    trend = table(costs, "per request").set_index("month")
    lo, hi = month_bounds("2025-12")
    consistent(per, trend.loc["2025-12", "per request"], svc.costs.window(lo, hi).per_request)
    reading = monitor_run(JAN)["cost"]  # the alert rule's figure
    consistent(said.group(1), reading["value"])
    assert reading["n"] == int(said.group(4).replace(",", "")) and reading["period"].startswith(said.group(2))
    alerts = page("alerts.py", "risk_manager")
    consistent(rule_value(alerts, "Cost per request").lstrip("$"), reading["value"])


# -- AUC and accuracy by vintage --------------------------------------------------------------------------------
def test_auc_and_accuracy_by_vintage_are_one_figure(book) -> None:
    from sklearn.metrics import roc_auc_score

    svc = book(LATE)
    assert svc.performance.refresh() > 0
    perf = page("performance.py", "risk_manager")
    vintages = table(perf, "AUC").set_index("Vintage")
    reading = monitor_run(LATE)["accuracy"]
    consistent(float(vintages.loc[reading["period"], "Accuracy"]), reading["value"])
    alerts = page("alerts.py", "risk_manager")
    consistent(rule_value(alerts, "Model accuracy").rstrip("%"), 100 * reading["value"])
    arms = table(perf, "AUC control arm").set_index("Vintage")
    with svc.db.read() as s:  # scikit-learn on the rows the page describes: funded, outcome known by then
        rows = pd.DataFrame(s.execute(sa.select(Application.applied_at, Application.arm, Prediction.pd,
                                                Outcome.defaulted, Outcome.observed_at)
                                      .join(Decision, sa.and_(Decision.application_id == Application.id,
                                                              Decision.status == "final"))
                                      .join(Prediction, Prediction.id == Decision.prediction_id)
                                      .join(Outcome, Outcome.application_id == Application.id)
                                      .where(Outcome.funded.is_(True), Outcome.defaulted.is_not(None))).all(),
                            columns=["applied_at", "arm", "pd", "defaulted", "observed_at"])
    rows["vintage"] = pd.to_datetime(rows["applied_at"], utc=True).dt.strftime("%Y-%m")
    rows["bad"] = rows["defaulted"] & (pd.to_datetime(rows["observed_at"], utc=True) <= pd.Timestamp(LATE))
    checked = 0
    for vintage, g in rows.groupby("vintage"):
        if g["bad"].nunique() < 2:
            continue
        direct = roc_auc_score(g["bad"], g["pd"])
        assert float(vintages.loc[vintage, "AUC"]) == pytest.approx(direct, abs=1e-9)
        ctl = g[g["arm"] == "control"]
        if ctl["bad"].nunique() == 2:
            assert float(arms.loc[vintage, "AUC control arm"]) == pytest.approx(roc_auc_score(ctl["bad"], ctl["pd"]))
        checked += 1
    assert checked >= 3


# -- error rate -------------------------------------------------------------------------------------------------
def test_error_rate_is_one_figure(book) -> None:
    svc = book(JAN)
    reading = monitor_run(JAN)["errors"]
    alerts = page("alerts.py", "risk_manager")
    consistent(rule_value(alerts, "Error rate").rstrip("%"), 100 * reading["value"])
    figure = svc.latency.errors(JAN)
    assert (reading["value"], reading["n"]) == (figure.value, figure.requests)
    with svc.db.read() as s:  # every scoring request of the window, recounted
        n = s.execute(sa.select(sa.func.count()).select_from(Prediction)
                      .where(Prediction.created_at >= JAN.replace(day=21), Prediction.created_at < JAN)).scalar_one()
    assert reading["n"] == n > 0
    assert fmt(reading["value"], "rate") == f"{100 * figure.errors / n:.1f}%"
    assert np.isfinite(reading["value"])


# -- highest PSI (drift) -----------------------------------------------------------------------------------------
def _chart_points(at: AppTest, trace: str) -> dict[str, float]:
    """``x -> y`` of one named trace of the plotly charts on the page, from the figure the browser receives."""
    for chart in at.get("plotly_chart"):
        for t in json.loads(chart.proto.spec).get("data", []):
            if t.get("name") == trace:
                return dict(zip(t["x"], t["y"], strict=True))
    raise AssertionError(f"no chart trace named {trace!r}")


def test_highest_psi_is_one_figure(book) -> None:
    svc = book(JAN)
    assert svc.drift.refresh_all() > 0
    reading = monitor_run(JAN)["drift"]
    granularity = "week" if "-W" in reading["period"] else "month"

    def choose(at: AppTest) -> None:
        next(r for r in at.radio if r.key == "drift_granularity").set_value(granularity).run()
        next(s for s in at.selectbox if s.key == "drift_period").set_value(reading["period"]).run()

    drift = page("drift.py", "risk_manager", setup=choose)
    assert _chart_points(drift, "highest PSI")[reading["period"]] == pytest.approx(reading["value"], rel=1e-12)
    bars = next(json.loads(c.proto.spec)["data"][0] for c in drift.get("plotly_chart")
                if json.loads(c.proto.spec)["data"][0].get("orientation") == "h")
    consistent(str(bars["text"][0]).split(" ")[0], reading["value"])  # the period's top bar: the same PSI
    alerts = page("alerts.py", "risk_manager")
    consistent(rule_value(alerts, "Drift (highest PSI)"), reading["value"])
