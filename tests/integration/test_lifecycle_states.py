"""Lifecycle states that mean something (issue 19): a version rolled back for cause or failing its gates cannot
come back through the canary, a promotion or a rollback, from the service or the CLI, unless a risk manager writes
an override (audited, four-eyes); the canary default and the rollback choices skip such versions."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_identity import sign_in_as_named
from registry_helpers import install_registry
from sqlalchemy import update
from typer.testing import CliRunner

from backend.models import canary, states
from backend.models.gates import GateConfig
from backend.models.lifecycle import ModelActionRefused
from backend.models.registry import PromotionRefused, Registry
from backend.platform.db.tables_access import User

PASSWORD = "correct horse battery staple"
LENIENT = GateConfig(min_disparate_impact=0.0, max_auc_loss=1.0)
STRICT = GateConfig(min_disparate_impact=0.0, max_auc_loss=1.0, min_auc=0.999)  # fails: a gate-blocked version
USERS = {"mlops": "ml_engineer", "mlops2": "ml_engineer", "risk": "risk_manager", "risk2": "risk_manager"}
CAUSE = "trained on the corrupted September feed; PSI above 0.25"
WHY = "retrained on clean data elsewhere; one more look under a 5% canary"


@pytest.fixture(scope="module")
def versions(model_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A champion (the session's model), B and C that pass their gates, D that fails one."""
    from backend.training.train import train_and_register

    root = tmp_path_factory.mktemp("states") / "models"
    shutil.copytree(model_registry, root)
    out: dict[str, object] = {"root": root, "A": Registry(root).resolve("champion")}
    for label, seed, gates in (("B", 5, LENIENT), ("C", 6, LENIENT), ("D", 7, STRICT)):
        out[label] = train_and_register(None, rows=2500, seed=seed, registry_root=root, cv_folds=2, n_boost=10,
                                        n_trees=20, gates=gates)["version"]
    return out


@pytest.fixture
def svc(scoring_services, versions):
    return install_registry(scoring_services, versions["root"], USERS, PASSWORD)


def _who(svc, name):
    return svc.users.get(name)


def _served_then_rolled_back_for_cause(svc, versions) -> str:
    """B served as champion and was rolled back for cause to A; returns B."""
    admin = svc.model_admin
    admin.promote(versions["B"], _who(svc, "mlops"))
    assert admin.rollback(_who(svc, "risk"), to=versions["A"], cause=CAUSE) == versions["A"]
    return str(versions["B"])


def test_states_of_every_version(svc, versions):
    b = _served_then_rolled_back_for_cause(svc, versions)
    rows = {r["version"]: r for r in svc.models.registry().list()}
    assert rows[versions["A"]]["state"] == states.CHAMPION
    assert rows[b]["state"] == states.ROLLED_BACK and rows[b]["cause"]["reason"] == CAUSE
    assert rows[b]["cause"]["by"] == "risk"
    assert rows[versions["C"]]["state"] == states.CHALLENGER and rows[versions["D"]]["state"] == states.CHALLENGER
    for v, r in rows.items():  # a readable label: name, trained-on period, short id (the full id stays in "version")
        assert r["label"].startswith("creditrisk · trained ") and r["label"].endswith(states.short_id(v))
        assert v not in r["label"]
    view = svc.model_admin.lifecycle_view()
    assert view["canary_default"] == versions["C"]  # D is newer but failed a gate; B was rolled back for cause
    assert view["canary_candidates"][0] == versions["C"] and set(view["canary_candidates"][1:]) == {b, versions["D"]}
    assert b not in view["rollback_targets"] and b not in svc.model_admin.rollback_targets()
    audit = svc.audit.recent(1, entity_type="model")[0]
    assert audit["action"] == "model_rolled_back" and audit["payload"]["cause"] == CAUSE


def test_rolled_back_for_cause_is_refused_as_canary_promotion_and_rollback_target(svc, versions):
    admin = svc.model_admin
    b = _served_then_rolled_back_for_cause(svc, versions)
    with pytest.raises(canary.CanaryError, match=rf"cannot start a canary of {b}: .*rolled back for cause.*corrupted"):
        admin.canary_propose(_who(svc, "mlops"), version=b)
    with pytest.raises(PromotionRefused, match=rf"cannot promote {b}: .*rolled back for cause"):
        admin.promote(b, _who(svc, "mlops"))
    with pytest.raises(states.LifecycleRefused, match=f"cannot roll back to {b}: it was rolled back for cause"):
        admin.rollback(_who(svc, "risk"), to=b)
    doc = svc.models.registry().aliases()
    assert (doc["champion"], doc["canary"]) == (versions["A"], None)  # nothing changed by the refusals
    with pytest.raises(canary.CanaryError, match=rf"{versions['D']} failed its gate\(s\): min_auc"):
        admin.canary_propose(_who(svc, "mlops"), version=versions["D"])
    state = admin.canary_propose(_who(svc, "mlops"))  # the default goes through
    assert state["version"] == versions["C"]


def test_only_a_risk_managers_written_override_lets_it_back_and_not_by_the_same_person(svc, versions):
    admin = svc.model_admin
    b = _served_then_rolled_back_for_cause(svc, versions)
    with pytest.raises(ModelActionRefused, match="may not override"):
        admin.override(_who(svc, "mlops"), b, reason=WHY)
    with pytest.raises(states.LifecycleRefused, match="a written reason of at least 20 characters"):
        admin.override(_who(svc, "risk"), b, reason="  looks fine   ")
    with pytest.raises(states.LifecycleRefused, match="is not blocked"):
        admin.override(_who(svc, "risk"), versions["C"], reason=WHY)
    entry = admin.override(_who(svc, "risk"), b, reason=WHY)
    assert entry["covers"] == ["cause"] and entry["by"] == "risk"
    row = svc.audit.recent(1, entity_type="model")[0]
    assert (row["action"], row["actor"], row["entity_id"], row["payload"]["reason"]) == ("model_override", "risk", b, WHY)
    with svc.db.transaction() as s:  # the override's author becomes an ML engineer: still not their own override
        s.execute(update(User).where(User.username == "risk").values(role="ml_engineer"))
    with pytest.raises(canary.CanaryError, match="four-eyes: risk wrote the override"):
        admin.canary_propose(_who(svc, "risk"), version=b)
    with pytest.raises(states.LifecycleRefused, match="four-eyes: risk wrote the override"):
        admin.promote(b, _who(svc, "risk"))
    state = admin.canary_propose(_who(svc, "mlops"), version=b)
    assert state["version"] == b and state["override_by"] == "risk"
    admin.canary_abort(_who(svc, "mlops"), note="done looking")


def test_a_new_cause_needs_a_new_override(svc, versions):
    admin = svc.model_admin
    b = _served_then_rolled_back_for_cause(svc, versions)
    admin.override(_who(svc, "risk"), b, reason=WHY)
    admin.promote(b, _who(svc, "mlops"))  # overridden: it may serve again
    admin.rollback(_who(svc, "risk"), to=versions["A"], cause="the same drift again after the override")
    with pytest.raises(PromotionRefused, match="the same drift again"):
        admin.promote(b, _who(svc, "mlops"))
    events = [e["action"] for e in svc.models.registry().aliases()["events"]]
    assert events.count("override") == 1 and events[-1] == "rollback"


def test_gate_failure_override_lets_promotion_through(svc, versions):
    admin = svc.model_admin
    d = str(versions["D"])
    with pytest.raises(PromotionRefused, match=rf"cannot promote {d}: {d} failed its gate\(s\): min_auc"):
        admin.promote(d, _who(svc, "mlops"))
    admin.override(_who(svc, "risk2"), d, reason="AUC floor set for another product; accepted for this one")
    res = admin.promote(d, _who(svc, "mlops2"))
    assert res["changed"] and svc.models.registry().aliases()["champion"] == d
    promoted = svc.audit.recent(1, entity_type="model")[0]
    assert promoted["payload"]["forced"] is True and promoted["payload"]["override_by"] == "risk2"


# -- CLI ------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(svc, monkeypatch, tmp_path):
    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_") and k not in ("CREDITRISK_MODEL__SIGNING_KEY", "CREDITRISK_AUTH__MFA_REQUIRED"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(svc.settings.model.registry_dir))
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", svc.db.engine.url.render_as_string(hide_password=False))
    from backend.cli import app

    runner = CliRunner()

    def run(*args):  # --as NAME is proven by NAME's CLI token (tests/cli_identity.py)
        sign_in_as_named(svc, list(args), tmp_path / "cli-token", monkeypatch)
        res = runner.invoke(app, list(args))
        return SimpleNamespace(exit_code=res.exit_code, output=" ".join(res.output.split()))

    return run


def test_cli_roll_back_for_cause_then_propose_as_canary_is_refused(cli, versions):
    b = str(versions["B"])
    assert cli("models", "promote", b, "--as", "mlops").exit_code == 0
    res = cli("models", "rollback", "--to", str(versions["A"]), "--as", "risk", "--cause", CAUSE)
    assert res.exit_code == 0, res.output
    res = cli("models", "canary", "propose", b, "--as", "mlops")
    assert res.exit_code == 2 and "rolled back for cause" in res.output and "corrupted September" in res.output
    assert "creditrisk models override" in res.output
    res = cli("models", "promote", b, "--as", "mlops")
    assert res.exit_code == 2 and "rolled back for cause" in res.output
    res = cli("models", "rollback", "--to", b, "--as", "risk")
    assert res.exit_code == 2 and "it was rolled back for cause" in res.output
    res = cli("models", "list", "--json")
    assert '"state": "rolled back for cause"' in res.output and CAUSE in res.output
    res = cli("models", "override", b, "--reason", "short", "--as", "risk")
    assert res.exit_code == 2 and "at least 20 characters" in res.output
    res = cli("models", "override", b, "--reason", WHY, "--as", "risk")
    assert res.exit_code == 0 and "override of" in res.output, res.output
    res = cli("models", "canary", "propose", b, "--as", "mlops")
    assert res.exit_code == 0 and "from 0% to 5%" in res.output, res.output


def test_lifecycle_times_come_from_the_services_clock(svc, versions, clock):
    """One clock: registry events and audit rows of every lifecycle action read the services' clock (the
    simulator's, in the seeded history), so a version's events read in order."""
    from backend.training.train import train_and_register

    admin = svc.model_admin
    before = len(svc.models.registry().aliases()["events"])  # the fixture's own registrations (wall clock)
    b = _served_then_rolled_back_for_cause(svc, versions)
    admin.override(_who(svc, "risk"), b, reason=WHY)
    admin.canary_propose(_who(svc, "mlops"), version=b)
    stamp = clock.now().isoformat(timespec="seconds")
    doc = svc.models.registry().aliases()
    ours = doc["events"][before:]
    assert [e["action"] for e in ours] == ["promote", "rollback", "override", "canary_propose"]
    assert len(ours) == 4 and {e["at"] for e in ours} == {stamp}
    assert doc[states.CAUSES][b]["at"] == stamp and doc[states.OVERRIDES][b]["at"] == stamp
    assert {r["at"] for r in svc.audit.recent(4, entity_type="model")} == {clock.now()}
    report = train_and_register(None, rows=1500, seed=3, registry_root=svc.settings.model.registry_dir, cv_folds=2,
                                n_boost=5, n_trees=5, gates=LENIENT, registered_at=clock.now())
    assert report["created_at"] == stamp  # the simulator registers its retrained model at simulated time
    assert svc.models.registry().aliases()["events"][-1] == {**svc.models.registry().aliases()["events"][-1],
                                                             "action": "register", "at": stamp}
