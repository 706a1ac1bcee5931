"""Retraining from the simulated book (SQLite and PostgreSQL): funded loans with known outcomes ->
train -> gates -> challenger with lineage; refusals with too little data; `--if-due`; the CLI."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from cli_identity import sign_in_as_named
from typer.testing import CliRunner

from backend.domain import Actor
from backend.platform.db.tables_governance import AlertRow
from backend.training.retrain import (
    MSG_TOO_FEW_DEFAULTS,
    MSG_TOO_FEW_ROWS,
    RETRAIN_ACTION,
    RetrainError,
)

SESSION_SIGNING_KEY = __import__("os").environ["CREDITRISK_MODEL__SIGNING_KEY"]  # the root conftest's


AS_OF = datetime(2026, 11, 2, tzinfo=UTC)  # the simulated outcomes are observed by 2026-11-01
ML = Actor("sim.marcus", "ml_engineer")


def _prefix(template: str) -> str:
    return re.escape(template.split("{")[0])


def test_retrain_registers_a_challenger_with_gates_and_lineage(sim_services):
    reg = sim_services.models.registry()
    champion, before = reg.resolve("champion"), reg.versions()
    report = sim_services.retrainer.from_book(ML, at=AS_OF, months=18, n_boost=20, n_trees=40)  # smaller: faster
    version = report["version"]
    assert reg.versions() == sorted([*before, version])
    doc = reg.aliases()
    assert (doc["challenger"], doc["champion"], doc["status"][version]) == (version, champion, "candidate")
    lineage = report["lineage"]
    assert lineage["source"] == "book" and lineage["funded_only"] is True
    assert lineage["parent_champion"] == champion and lineage["created_by"] == "sim.marcus"
    assert lineage["window"]["months"] == 18 and lineage["window"]["to"].startswith("2026-11-02")
    assert 1000 <= lineage["rows"] < lineage["applications_in_window"]  # only funded loans carry labels
    assert lineage["defaults"] == report["data"]["positives"] >= 30
    assert report["data"]["source"].startswith("book: funded applications applied 2025-05-02 to 2026-11-02")
    assert "Selection bias: outcomes exist only for funded loans" in report["selection_bias"]
    assert report["selection_bias"] == lineage["selection_bias"]
    names = [g["name"] for g in report["gates"]]
    assert names == ["fairness:sex", "fairness:age_band", "fairness:race_ethnicity", "champion_challenger"]
    cc = report["gates"][-1]
    assert f"vs champion {champion}" in cc["detail"] and "on the same held-out rows" in cc["detail"]
    manifest = reg.manifest(version)
    assert manifest["lineage"] == lineage and manifest["gates_context"]["champion_version"] == champion
    row = sim_services.audit.recent(1, entity_type="model")[0]
    assert (row["action"], row["actor"], row["entity_id"]) == ("model_registered", "sim.marcus", version)
    assert row["payload"]["data_sha256"] == report["data"]["sha256"] and row["payload"]["rows"] == lineage["rows"]
    assert set(report["timings"]) == {"fetch_s", "train_s", "register_s", "total_s"}


def test_retrain_refuses_with_too_little_data(sim_services):
    reg = sim_services.models.registry()
    before, audit = reg.versions(), sim_services.audit.count()
    with pytest.raises(RetrainError, match=_prefix(MSG_TOO_FEW_ROWS)):
        sim_services.retrainer.from_book(ML, at=AS_OF, months=1)  # October 2026: no applications
    with pytest.raises(RetrainError, match=_prefix(MSG_TOO_FEW_ROWS)):  # before repaid loans are observed
        sim_services.retrainer.from_book(ML, at=datetime(2026, 3, 1, tzinfo=UTC), months=12)
    with pytest.raises(RetrainError, match=_prefix(MSG_TOO_FEW_DEFAULTS)):
        sim_services.retrainer.from_book(ML, at=AS_OF, months=18, min_defaults=100_000)
    with pytest.raises(RetrainError, match="window must be 1 to 120 months"):
        sim_services.retrainer.from_book(ML, at=AS_OF, months=500)
    assert reg.versions() == before and sim_services.audit.count() == audit  # nothing registered or audited


def test_retrain_due_by_age_and_by_alert(sim_services):
    events = [e for e in sim_services.models.registry().aliases()["events"] if e["action"] == "register"]
    last = max(datetime.fromisoformat(e["at"]) for e in events)
    due, why = sim_services.retrainer.due(last + timedelta(days=3))
    assert not due and why.startswith("not due: the last registration") and "retrain every 30 days" in why
    due, why = sim_services.retrainer.due(last + timedelta(days=31))
    assert due and "is 31 days old" in why
    now = datetime(2026, 2, 15, tzinfo=UTC)
    with sim_services.db.transaction() as s:
        s.add(AlertRow(id=uuid.uuid4(), rule="accuracy", metric="accuracy", severity="warning",
                       action=RETRAIN_ACTION, status="acknowledged", value=0.8, threshold=0.88,
                       message="accuracy 0.80 below 0.88", details={}, opened_at=now, last_seen_at=now,
                       notifications=[]))
    due, why = sim_services.retrainer.due(last + timedelta(days=3))
    assert due and why == "due: unresolved retrain alert(s): accuracy"


@pytest.fixture
def cli(sim_services, monkeypatch, tmp_path):
    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(sim_services.settings.model.registry_dir))
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", sim_services.db.engine.url.render_as_string(hide_password=False))
    from backend.cli import app

    runner = CliRunner()

    def run(*args, signed_in_as=None):  # rich wraps long lines: compare the output as one line
        # --as NAME (or a cron job's CLI token) is proven by that user's CLI token
        who = ["--as", signed_in_as] if signed_in_as else list(args)
        sign_in_as_named(sim_services, who, tmp_path / "cli-token", monkeypatch)
        res = runner.invoke(app, list(args))
        return SimpleNamespace(exit_code=res.exit_code, output=" ".join(res.output.split()))

    return run


def test_cli_retrain(cli, sim_services):
    reg = sim_services.models.registry()
    res = cli("retrain", "--as-of", "2026-11-02", "--months", "1", "--as", "sim.marcus")
    assert res.exit_code == 2 and "too little data to retrain" in res.output
    res = cli("retrain", "--as-of", "2026-11-02", "--months", "18", "--as", "sim.priya")
    assert res.exit_code == 2 and "may not retrain" in res.output  # a product lead
    res = cli("retrain", "--as-of", "nope")
    assert res.exit_code == 2 and "is not a date" in res.output
    res = cli("retrain", "--as-of", "2026-11-02", "--months", "18", "--as", "sim.marcus", "--json")
    assert res.exit_code == 0, res.output
    version = reg.aliases()["challenger"]
    assert version and f'"version": "{version}"' in res.output and "Selection bias" in res.output
    res = cli("retrain", "--if-due", signed_in_as="sim.marcus")  # cron's CLI token; just registered: not due
    assert res.exit_code == 0 and "not due: the last registration" in res.output
    assert reg.aliases()["challenger"] == version
