"""`creditrisk seed-demo`: the simulated history tells the seed's story from its own records.

Every figure below is computed from the rows the simulator wrote through the real services
(applications with their arm, predictions, decisions, explanations and usage, feedback, surveys,
outcomes, rollout versions, audit rows), never from the simulator's parameters.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from backend.container import Services, build_services
from backend.container.settings import load_settings
from backend.platform.db.engine import Database
from backend.platform.db.tables_book import (
    Application,
    Decision,
    ExplanationFeedback,
    ExplanationRow,
    LLMUsageRow,
    Outcome,
    Prediction,
    SurveyResponse,
)
from backend.platform.db.tables_governance import AuditLog
from backend.simulation.draws import generate_applications
from backend.simulation.operations import OperationsSimulator, SimConfig

VOLUME = 900  # per month: small enough for CI, large enough for the story's rates


def _services(tmp_path: Path, db: Database, registry: Path) -> Services:
    root = tmp_path / "models"
    shutil.copytree(registry, root)
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root})
    return build_services(s, db=db)


def _frame(db: Database) -> pd.DataFrame:
    with db.read() as s:
        rows = s.execute(
            select(Application.external_id, Application.arm, Application.phase, Application.ai_visible,
                   Application.applied_at, Prediction.recommendation, Prediction.risk_class, Prediction.model_version,
                   Prediction.attributions, Application.features, Decision.outcome, Decision.is_override,
                   Decision.decided_at, Outcome.funded, Outcome.defaulted)
            .join(Prediction, Prediction.application_id == Application.id)
            .join(Decision, (Decision.application_id == Application.id) & (Decision.status == "final"))
            .outerjoin(Outcome, Outcome.application_id == Application.id)
            .where(Application.source == "simulated")).all()
    df = pd.DataFrame(rows, columns=["external_id", "arm", "phase", "ai_visible", "applied_at", "recommendation",
                                     "risk_class", "model_version", "attributions", "features", "outcome",
                                     "is_override", "decided_at", "funded", "defaulted"])
    df["implied"] = np.where(df["risk_class"] == "low_risk", "approve", "deny")
    df["hours"] = (pd.to_datetime(df["decided_at"], utc=True) - pd.to_datetime(df["applied_at"], utc=True)
                   ).dt.total_seconds() / 3600
    return df


def test_simulated_history(tmp_path: Path, db: Database, model_registry: Path):
    """One simulation per backend (they take a while), then every check on its records."""
    svc = _services(tmp_path, db, model_registry)
    report = OperationsSimulator(svc, SimConfig(volume=VOLUME, retrain=False), progress=None).run()
    history = (svc, _frame(db), report)
    _history_tells_the_seed_story(history)
    _september_incident_is_visible_in_the_data(history)
    _records_behind_the_dashboards(history, db)
    _idempotent_and_same_seed_same_history(history, tmp_path, model_registry)


def _history_tells_the_seed_story(history):
    svc, df, report = history
    assert report.applications == len(df) > 5 * VOLUME
    # phases and their dates, from the rollout versions (proposed and approved by two people)
    phases = [p for p in svc.rollout.history() if p.status == "approved"]
    assert [(p.phase, f"{p.starts_at:%Y-%m}") for p in sorted(phases, key=lambda p: p.version)] == \
        [("shadow", "2025-08"), ("pilot", "2025-10"), ("scaled", "2025-12")]
    assert all(p.proposed_by != p.reviewed_by for p in phases)
    month = pd.to_datetime(df["applied_at"], utc=True).dt.strftime("%Y-%m")
    assert set(df.loc[month.isin(["2025-08", "2025-09"]), "phase"]) == {"shadow"}
    shadow = df[df["phase"] == "shadow"]
    assert not shadow["ai_visible"].any() and set(shadow["arm"]) == {"control"}
    # shadow agreement above 95%: officers' own decisions vs the model's call
    agreement = (shadow["outcome"] == shadow["implied"]).mean()
    assert agreement > 0.95, agreement
    # pilot: the AI arm is about 10% of eligible applications, overrides below 10%
    pilot = df[df["phase"] == "pilot"]
    eligible = pilot[pilot["arm"] != "excluded"]
    assert 0.05 < (eligible["arm"] == "ai").mean() < 0.15
    pilot_ai = pilot[pilot["arm"] == "ai"]
    assert len(pilot_ai) > 50 and pilot_ai["is_override"].mean() < 0.10
    scaled = df[(df["phase"] == "scaled") & (df["arm"] != "excluded")]
    assert 0.45 < (scaled["arm"] == "ai").mean() < 0.55
    # AI decisions in seconds, manual ones in days
    ai = df[df["ai_visible"] & (df["recommendation"] != "manual_review")]
    manual = df[~df["ai_visible"]]
    assert ai["hours"].median() * 3600 < 120 and manual["hours"].median() / 24 > 2
    # funded AI-arm loans are less risky than control-arm ones. At this size the realized defaults are a
    # handful, so the check uses the generator's ground-truth default probability of the same rows
    # (the full default run's realized rates are in the README).
    cfg = SimConfig(volume=VOLUME, retrain=False)
    truth = generate_applications(VOLUME * cfg.months, seed=cfg.seed, start=cfg.start, end=cfg.end,
                      incident=cfg.incident_window).set_index("application_id")["pd_true"]
    funded = df[df["funded"].eq(True) & df["arm"].isin(["ai", "control"])]
    risk = truth.reindex(funded["external_id"]).to_numpy()
    by_arm = pd.Series(risk).groupby(funded["arm"].to_numpy()).mean()
    assert by_arm["ai"] < by_arm["control"], by_arm


def _september_incident_is_visible_in_the_data(history):
    _svc, df, _report = history
    income = df["features"].map(lambda f: f.get("annual_income"))
    inquiries = df["features"].map(lambda f: f.get("num_inquiries_6m"))
    day = pd.to_datetime(df["applied_at"], utc=True)
    incident = (day >= datetime(2025, 9, 8, tzinfo=UTC)) & (day < datetime(2025, 9, 29, tzinfo=UTC))
    before = day < datetime(2025, 9, 1, tzinfo=UTC)
    assert income[incident].median() < 0.8 * income[before].median()  # incomes captured monthly
    assert inquiries[incident].mean() > 1.6 * inquiries[before].mean()  # inquiries double-counted
    month = day.dt.strftime("%Y-%m")
    agree = (df["outcome"] == df["implied"]).groupby(month).mean()
    assert agree["2025-09"] < agree["2025-08"]  # officers (true documents) part from the model


def _records_behind_the_dashboards(history, db):
    svc, df, report = history
    with db.read() as s:
        def n(table, *where):
            return s.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

        # officers open the AI card at their own rate (62-95%, varying by month): adoption is not 100%
        shown, ai_cases = n(ExplanationRow), int(df["ai_visible"].sum())
        assert shown == report.explanations and 0.62 * ai_cases <= shown <= 0.97 * ai_cases
        usage = s.execute(select(LLMUsageRow.provider, LLMUsageRow.input_tokens, LLMUsageRow.cost_usd,
                                 LLMUsageRow.error, LLMUsageRow.fallback_used)).all()
        providers = {u.provider for u in usage}
        assert {"openai", "cache"} <= providers
        assert all(u.cost_usd and u.cost_usd > 0 for u in usage if u.provider == "openai" and u.input_tokens)
        assert any(u.error and u.error.startswith("timeout") for u in usage) or len(usage) < 300
        assert n(ExplanationFeedback) == report.feedback > 0
        assert n(SurveyResponse) == report.surveys == 12 * 6
        assert n(Outcome) == report.outcomes > 0
        assert n(AuditLog, AuditLog.action == "rollout_approved") == 3
    assert svc.audit.verify().ok
    # outcomes mature with time: the last month has fewer observed defaults than the first
    funded = df[df["funded"].eq(True)]
    month = pd.to_datetime(funded["applied_at"], utc=True).dt.strftime("%Y-%m")
    observed = funded["defaulted"].eq(True).groupby(month).mean()
    assert observed.iloc[-1] < observed.iloc[0]


def _idempotent_and_same_seed_same_history(history, tmp_path, model_registry):
    svc, df, _report = history
    with svc.db.read() as s:
        audit_rows = s.scalar(select(func.count()).select_from(AuditLog))
    again = OperationsSimulator(svc, SimConfig(volume=VOLUME, retrain=False), progress=None).run()
    assert again.applications == 0 and again.decisions == 0 and again.skipped_days > 150
    assert again.outcomes == 0
    with svc.db.read() as s:  # a re-run says nothing happened that did not (no backdated outcomes_imported)
        assert s.scalar(select(func.count()).select_from(AuditLog)) == audit_rows
    assert len(_frame(svc.db)) == len(df)
    if svc.db.dialect != "sqlite":
        return
    other = tmp_path / "second"
    other.mkdir()
    from backend.platform.db.engine import make_engine

    db2 = Database(make_engine(f"sqlite:///{other / 'second.db'}"))
    db2.migrate()
    OperationsSimulator(_services(other, db2, model_registry), SimConfig(volume=VOLUME, retrain=False),
                        progress=None).run()
    df2 = _frame(db2)
    cols = ["external_id", "arm", "phase", "recommendation", "outcome", "funded", "defaulted"]
    a = df[cols].sort_values("external_id").reset_index(drop=True)
    b = df2[cols].sort_values("external_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert _voice(svc.db) == _voice(db2)  # ratings and surveys too (ratings once followed the random prediction ids)


def _voice(db: Database) -> tuple[object, ...]:
    """What the officers said, by application and month: which explanations they rated and how, their NPS."""
    with db.read() as s:
        ratings = sorted(s.execute(select(Application.external_id, ExplanationFeedback.helpful, ExplanationFeedback.at)
                                   .join(Prediction, Prediction.id == ExplanationFeedback.prediction_id)
                                   .join(Application, Application.id == Prediction.application_id)).all())
        surveys = sorted(s.execute(select(SurveyResponse.period, SurveyResponse.nps)).all())
    assert ratings and surveys
    return tuple(ratings), tuple(surveys)


def test_incident_retrain_is_promoted_then_rolled_back(tmp_path, sqlite_database, model_registry):
    svc = _services(tmp_path, sqlite_database, model_registry)
    report = OperationsSimulator(svc, SimConfig(volume=150, retrain=True, retrain_rows=2500), progress=None).run()
    df = _frame(sqlite_database)
    served = df.groupby(pd.to_datetime(df["applied_at"], utc=True).dt.strftime("%Y-%m-%d"))["model_version"].first()
    champion = svc.models.registry().resolve("champion")
    assert served["2025-08-01"] == champion and served["2026-01-15"] == champion
    retrained = set(served.values) - {champion}
    assert len(retrained) == 1 and set(served[served != champion].index.str[:7]) <= {"2025-09", "2025-10"}
    events = [e["action"] for e in svc.models.registry().aliases()["events"]][-2:]
    assert events == ["promote", "rollback"] and any("rolled back" in n for n in report.notes)
    with sqlite_database.read() as s:
        actions = dict(s.execute(select(AuditLog.action, AuditLog.at).where(
            AuditLog.action.in_(["model_promoted", "model_rolled_back"]))).all())
    assert f"{actions['model_rolled_back']:%Y-%m}" == "2025-09"


@pytest.mark.parametrize("args", [["--start", "August"], ["--as-of", "2026-13-40"], ["--volume", "0"]])
def test_seed_demo_refuses_bad_options_before_writing_anything(tmp_path, monkeypatch, args):
    from typer.testing import CliRunner

    from backend.cli import app

    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["seed-demo", *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert not (tmp_path / "creditrisk.db").exists()  # refused before the database was touched


def test_make_runs_one_demo_process_users_model_history_then_today(tmp_path, monkeypatch, model_registry):
    """`make demo` is one `creditrisk demo --history` (one process start instead of three): it prints the users'
    passwords once, keeps the trained champion, replays the history with the volume given, then queues today's
    applications after it (the history's own behaviour is tested above through the simulator)."""
    import shutil

    from typer.testing import CliRunner

    from backend.cli import app
    from backend.simulation import cli as sim_cli

    shutil.copytree(model_registry, tmp_path / "models")
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CREDITRISK_AUTH__BCRYPT_ROUNDS", "4")
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(sim_cli, "_simulate", lambda svc, *, volume: calls.append(("history", volume)))
    from backend.simulation.demo import DemoService

    real = DemoService.load_applications
    monkeypatch.setattr(DemoService, "load_applications",
                        lambda self, **kw: calls.append(("today", kw["rows"])) or real(self, **kw))
    result = CliRunner().invoke(app, ["demo", "--history", "--volume", "30", "--rows", "3"])
    assert result.exit_code == 0, result.output
    assert calls == [("history", 30), ("today", 3)]
    assert "Passwords are shown once" in result.output and "simulated applications: 3 added" in result.output
    again = CliRunner().invoke(app, ["demo", "--rows", "0"])  # without --history: as before, no replay
    assert again.exit_code == 0 and calls == [("history", 30), ("today", 3), ("today", 0)]
    assert "Passwords are shown once" not in again.output
