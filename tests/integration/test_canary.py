"""Canary promotion, four-eyes, halted deployments and rollback to any earlier champion (SQLite and
PostgreSQL): routing by a keyed hash, the 100 % step promoting, rollback restoring the old champion's
predictions with the replaced champion's cached scores purged, and the CLI commands."""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from registry_helpers import install_registry
from sqlalchemy import select, update
from typer.testing import CliRunner

from backend.domain import Actor
from backend.models import canary
from backend.models.gates import GateConfig
from backend.models.halts import HALT_ACTION, DeploymentsHalted
from backend.models.lifecycle import MSG_NOT_A_USER, MSG_ROLE, ModelActionRefused
from backend.models.registry import MSG_NOT_FORMER, Registry, RegistryError
from backend.platform.db.tables_access import User
from backend.platform.db.tables_book import Prediction
from backend.platform.db.tables_governance import AlertRow
from backend.training.synthetic import generate

SESSION_SIGNING_KEY = __import__("os").environ["CREDITRISK_MODEL__SIGNING_KEY"]  # the root conftest's


PASSWORD = "correct horse battery staple"
OFFICER = Actor("olivia", "loan_officer")
# The challengers are tiny models: their gates are configured to pass so these tests exercise the canary
# and the rollback, not the gates (gates are tested in test_training.py and test_evaluate_gates.py).
LENIENT = GateConfig(min_disparate_impact=0.0, max_auc_loss=1.0)
USERS = {"mlops": "ml_engineer", "mlops2": "ml_engineer", "risk": "risk_manager", "risk2": "risk_manager",
         "lead": "product_lead"}


@pytest.fixture(scope="module")
def three_models(model_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Champion A (the session's model) plus challengers B and C registered after it."""
    from backend.training.train import train_and_register

    root = tmp_path_factory.mktemp("canary") / "models"
    shutil.copytree(model_registry, root)
    versions = {"A": Registry(root).resolve("champion")}
    for label, seed in (("B", 5), ("C", 6)):
        report = train_and_register(None, rows=3000, seed=seed, registry_root=root, cv_folds=2, n_boost=10,
                                    n_trees=20, gates=LENIENT)
        versions[label] = report["version"]
    return {"root": root, **versions}


@pytest.fixture
def svc(scoring_services, three_models):
    return install_registry(scoring_services, three_models["root"], USERS, PASSWORD)


def _who(svc, name):
    return svc.users.get(name)


def _apps(n, seed=21):
    df = generate(n, seed=seed).drop(columns=["default", "pd_true"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")


def _to_share(admin, svc, share):
    """Propose (ML engineer) and approve (risk manager) steps until the canary serves ``share`` %."""
    while (admin.canary_state() or {}).get("share", 0) < share:
        if not (admin.canary_state() or {}).get("pending"):
            admin.canary_propose(_who(svc, "mlops"))
        admin.canary_review(_who(svc, "risk"), approve=True)


def _halt(svc):
    now = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    with svc.db.transaction() as s:
        s.add(AlertRow(id=uuid.uuid4(), rule="disparate_impact", metric="disparate_impact", severity="critical",
                       action=HALT_ACTION, status="open", value=0.7, threshold=0.8,
                       message="disparate impact 0.70 below 0.80", details={}, opened_at=now, last_seen_at=now,
                       notifications=[]))


def test_routing_share_within_tolerance_and_deterministic(svc, three_models):
    admin = svc.model_admin
    champion, challenger = three_models["A"], three_models["C"]
    apps = _apps(3000)
    before = [r.model_version for r in svc.scoring.score_many(apps, submitter=OFFICER, persist=False)]
    assert set(before) == {champion}
    state = admin.canary_propose(_who(svc, "mlops"))
    assert (state["version"], state["share"], state["pending"]["share"]) == (challenger, 0, 5)
    assert {r.model_version for r in svc.scoring.score_many(apps, submitter=OFFICER, persist=False)} == {champion}
    shares = {}
    for step in (5, 25, 50):
        _to_share(admin, svc, step)
        got = [r.model_version for r in svc.scoring.score_many(apps, submitter=OFFICER, persist=False)]
        again = [r.model_version for r in svc.scoring.score_many(apps, submitter=OFFICER, persist=False)]
        assert got == again  # deterministic per application
        shares[step] = {i for i, v in enumerate(got) if v == challenger}
        assert set(got) == {champion, challenger}
        assert abs(len(shares[step]) / len(apps) - step / 100) < 0.03, (step, len(shares[step]))
    assert shares[5] <= shares[25] <= shares[50]  # the same applications stay in the canary as it grows
    one = next(iter(shares[25]))  # the single-application path routes the same way as the batch
    assert svc.scoring.score(apps[one], submitter=OFFICER, persist=False).model_version == challenger
    saved = svc.scoring.score_many(apps[:400], submitter=OFFICER)  # the prediction row records the version
    with svc.db.read() as s:
        stored = dict(s.execute(select(Prediction.id, Prediction.model_version)).all())
    assert all(stored[uuid.UUID(r.prediction_id)] == r.model_version for r in saved)
    assert {r.model_version for r in saved} == {champion, challenger}


def test_router_sees_a_change_made_elsewhere(svc, three_models):
    """Another process (a CLI run, another console) changes aliases.json: the next score sees it."""
    admin = svc.model_admin
    apps = _apps(1000, seed=4)
    admin.canary_propose(_who(svc, "mlops"))
    reg = Registry(svc.settings.model.registry_dir)  # not through this process's ModelAdmin: nothing invalidated
    canary.review(reg, by="risk", approve=True)
    versions = {r.model_version for r in svc.scoring.score_many(apps, submitter=OFFICER, persist=False)}
    assert three_models["C"] in versions
    canary.abort(reg, by="risk")
    assert {r.model_version for r in svc.scoring.score_many(apps, submitter=OFFICER, persist=False)} == {
        three_models["A"]}


def test_four_eyes_and_roles(svc):
    admin = svc.model_admin
    with pytest.raises(ModelActionRefused, match=MSG_ROLE.format(role="risk manager", what="propose a canary step")):
        admin.canary_propose(_who(svc, "risk"))
    with pytest.raises(ModelActionRefused, match=MSG_ROLE.format(role="product lead", what="propose a canary step")):
        admin.canary_propose(_who(svc, "lead"))
    ghost = type("A", (), {"username": "ghost", "role": "ml_engineer"})()
    with pytest.raises(ModelActionRefused, match=re.escape(MSG_NOT_A_USER.format(username="ghost",
                                                                                  what="propose a canary step"))):
        admin.canary_propose(ghost)  # a canary step needs a named, active user
    admin.canary_propose(_who(svc, "mlops"))
    for name in ("mlops", "mlops2", "lead"):  # an ML engineer or a product lead cannot approve
        with pytest.raises(ModelActionRefused, match="may not approve or reject a canary step"):
            admin.canary_review(_who(svc, name), approve=True)
    with svc.db.transaction() as s:  # the proposer becomes a risk manager: still not their own step
        s.execute(update(User).where(User.username == "mlops").values(role="risk_manager"))
    with pytest.raises(canary.CanaryError, match=canary.MSG_FOUR_EYES.format(by="mlops")):
        admin.canary_review(_who(svc, "mlops"), approve=True)
    with pytest.raises(canary.CanaryError, match=canary.MSG_NOTE):
        admin.canary_review(_who(svc, "risk"), approve=False, note="no")
    assert admin.canary_state()["share"] == 0  # nothing changed by the refusals
    admin.canary_review(_who(svc, "risk"), approve=False, note="Wait for the October vintage to mature.")
    assert admin.canary_state()["share"] == 0 and admin.canary_state()["pending"] is None
    svc.users.set_disabled("risk2", True)
    admin.canary_propose(_who(svc, "mlops2"))
    with pytest.raises(ModelActionRefused, match="is not an active user"):
        admin.canary_review(_who(svc, "risk2"), approve=True)
    actions = [r["action"] for r in svc.audit.recent(20, entity_type="model")]
    assert actions[:3] == ["canary_proposed", "canary_rejected", "canary_proposed"]


def test_halted_deployments_block_start_advance_approve_promote_not_rollback_abort(svc, three_models):
    admin = svc.model_admin
    admin.promote(three_models["B"], _who(svc, "mlops"))  # B champion, A an earlier champion, C the challenger
    admin.canary_propose(_who(svc, "mlops"))
    admin.canary_review(_who(svc, "risk"), approve=True)
    admin.canary_propose(_who(svc, "mlops"))  # 5 % serving, 25 % pending
    _halt(svc)
    with pytest.raises(DeploymentsHalted, match="Deployments are halted by 1 unresolved alert"):
        admin.canary_review(_who(svc, "risk"), approve=True)
    with pytest.raises(DeploymentsHalted):
        admin.promote(three_models["C"], _who(svc, "mlops"))
    assert admin.canary_state()["share"] == 5 and admin.canary_state()["pending"]["share"] == 25
    admin.canary_review(_who(svc, "risk"), approve=False, note="Halted: not while the alert is open.")
    with pytest.raises(DeploymentsHalted):
        admin.canary_propose(_who(svc, "mlops"))
    assert admin.canary_abort(_who(svc, "risk"))["version"] == three_models["C"]  # abort stays possible
    assert admin.canary_state() is None
    with pytest.raises(DeploymentsHalted):
        admin.canary_propose(_who(svc, "mlops"))  # no new canary either
    assert admin.rollback(_who(svc, "risk"), to=three_models["A"]) == three_models["A"]  # rollback stays possible
    assert svc.models.registry().aliases()["champion"] == three_models["A"]


def test_reaching_100_percent_promotes(svc, three_models):
    admin = svc.model_admin
    app = _apps(1)[0]
    old = svc.scoring.score(app, submitter=OFFICER, persist=False)
    assert old.model_version == three_models["A"]
    _to_share(admin, svc, 50)
    admin.canary_propose(_who(svc, "mlops"))
    res = admin.canary_review(_who(svc, "risk2"), approve=True)
    assert res["promoted"]["version"] == three_models["C"] and res["state"] is None
    doc = svc.models.registry().aliases()
    assert (doc["champion"], doc["challenger"], doc["canary"]) == (three_models["C"], None, None)
    assert doc["status"][three_models["A"]] == "retired"
    assert [e["action"] for e in doc["events"]][-3:] == ["canary_approve", "canary_complete", "promote"]
    assert {r.model_version for r in svc.scoring.score_many(_apps(300), submitter=OFFICER, persist=False)} == {
        three_models["C"]}
    assert svc.cache.delete_prefix(f"score:creditrisk:{three_models['A']}:") == 0  # the old champion's cache purged
    actions = [r["action"] for r in svc.audit.recent(20, entity_type="model")]
    assert actions.count("canary_proposed") == 4 and actions.count("canary_approved") == 4
    assert actions[:2] == ["model_promoted", "canary_approved"]  # written together, in one transaction


def test_rollback_to_an_earlier_version_restores_its_predictions(svc, three_models):
    admin = svc.model_admin
    a, b, c = three_models["A"], three_models["B"], three_models["C"]
    app = _apps(1, seed=99)[0]
    first = svc.scoring.score(app, submitter=OFFICER, persist=False)
    admin.promote(b, _who(svc, "mlops"))
    assert svc.scoring.score(app, submitter=OFFICER, persist=False).model_version == b
    admin.promote(c, _who(svc, "mlops"))
    on_c = svc.scoring.score(app, submitter=OFFICER, persist=False)
    assert on_c.model_version == c and svc.scoring.score(app, submitter=OFFICER, persist=False).cache_hit
    admin.canary_propose(_who(svc, "mlops"), version=b)  # a canary running at rollback time is aborted
    with pytest.raises(RegistryError, match="no model version"):
        admin.rollback(_who(svc, "mlops"), to="v-nope")
    with pytest.raises(ModelActionRefused):
        admin.rollback(_who(svc, "lead"), to=a)
    assert admin.rollback_targets() == [b, a]
    assert admin.rollback(_who(svc, "risk"), to=a, note="drill") == a  # two versions back, one action
    again = svc.scoring.score(app, submitter=OFFICER, persist=False)
    assert (again.model_version, again.pd, again.recommendation) == (a, first.pd, first.recommendation)
    assert svc.cache.delete_prefix(f"score:creditrisk:{c}:") == 0  # the rolled-back version's scores are gone
    doc = svc.models.registry().aliases()
    assert doc["canary"] is None and doc["status"][c] == "retired" and doc["champion_history"] == []
    row = svc.audit.recent(1, entity_type="model")[0]
    assert (row["action"], row["actor"], row["payload"]["previous"], row["payload"]["canary_aborted"]) == (
        "model_rolled_back", "risk", c, b)
    assert row["payload"]["seconds"] >= 0 and admin.last_rollback_seconds is not None
    assert admin.rollback(_who(svc, "mlops"), to=c) == c  # forward again to any earlier champion
    assert svc.models.registry().aliases()["champion_history"] == [a]


def test_rollback_refuses_a_version_that_never_served(svc, three_models):
    admin = svc.model_admin
    admin.promote(three_models["B"], _who(svc, "mlops"))
    with pytest.raises(Exception, match=MSG_NOT_FORMER.split("{")[0]):
        admin.rollback(_who(svc, "mlops"), to=three_models["C"])


# -- CLI ------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(svc, monkeypatch, tmp_path):
    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(svc.settings.model.registry_dir))
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", svc.db.engine.url.render_as_string(hide_password=False))
    from backend.cli import app

    runner = CliRunner()

    def run(*args):  # rich wraps long lines: compare the output as one line
        res = runner.invoke(app, list(args), input=f"{PASSWORD}\n" if "--as" in args else None)  # --as: proven
        return SimpleNamespace(exit_code=res.exit_code, output=" ".join(res.output.split()))

    return run


def test_cli_canary_compare_and_rollback(cli, svc, three_models):
    res = cli("models", "compare")
    assert res.exit_code == 0, res.output
    assert "held-out rows of " + three_models["C"] in res.output
    assert cli("models", "canary", "approve", "--as", "risk").exit_code == 2  # nothing pending
    res = cli("models", "canary", "propose", "--as", "risk")
    assert res.exit_code == 2 and "may not propose" in res.output
    res = cli("models", "canary", "propose", "--as", "mlops", "--note", "first step")
    assert res.exit_code == 0 and "from 0% to 5%" in res.output, res.output
    res = cli("models", "canary", "approve", "--as", "mlops")
    assert res.exit_code == 2 and "may not approve" in res.output
    res = cli("models", "canary", "approve", "--as", "risk")
    assert res.exit_code == 0 and "now serves 5%" in res.output, res.output
    res = cli("models", "canary", "status")
    assert "at 5%" in res.output and "approve 5% by risk" in res.output
    res = cli("models", "canary", "abort", "--as", "risk")
    assert res.exit_code == 0 and "was at 5%" in res.output
    assert cli("models", "promote", three_models["B"]).exit_code == 0
    _halt(svc)
    res = cli("models", "promote", three_models["C"])
    assert res.exit_code == 2 and "Deployments are halted" in res.output
    res = cli("models", "rollback", "--to", three_models["A"], "--as", "risk", "--note", "halted: back to A")
    assert res.exit_code == 0 and f"champion: {three_models['A']} (rolled back in" in res.output, res.output
    res = cli("models", "rollback", "--to", three_models["C"])
    assert res.exit_code == 2 and "never served as champion" in res.output
