"""The readiness checklist and sign-offs on SQLite and PostgreSQL: items red when evidence is missing, green when
fresh, red again once stale; sign-off role rules, supersession, revocation, a new champion's version
mismatch; and a real rollback drill on a trained registry."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from types import SimpleNamespace

import pytest

from backend.compliance import evidence
from backend.container import build_services
from backend.container.settings import load_settings
from backend.operations.readiness import ReadinessService
from backend.operations.readiness_checks import MISMATCH, MISSING, STALE
from backend.operations.readiness_rollback import MSG_NO_TARGET, rollback_drill
from backend.operations.signoffs import (
    AREA_ROLES,
    AREAS,
    MSG_ALREADY_REVOKED,
    MSG_BAD_AREA,
    MSG_COUNSEL_BAD,
    MSG_COUNSEL_NOT_LEGAL,
    MSG_COUNSEL_REQUIRED,
    MSG_NO_CHAMPION,
    MSG_NOT_FOUND,
    MSG_NOT_USER,
    MSG_NOTE_LONG,
    MSG_ROLE_REVOKE,
    SignOffError,
    SignOffService,
)

PASSWORD = "correct horse battery staple"
USERS = {"pat": "product_lead", "pia": "product_lead", "mel": "ml_engineer", "rita": "risk_manager", "ada": "admin",
         "olly": "loan_officer"}
SIGNER = {"pm": "pat", "engineering": "mel", "compliance": "rita", "legal": "ada"}
MANIFEST = {"created_at": "2026-01-01T10:00:00+00:00", "metrics": {"auc": 0.82}, "gates": [
    {"name": "fairness:sex", "passed": True}], "evaluation": {"split": {"test_rows": 1000}}}
GOOD = {"load_test": {"rps": 200, "p99_ms": 20.0, "errors": 0, "ratio_vs_trivial": 0.9},
        "security_scan": {"findings": {"high": 0, "low": 2}, "tools": ["pip-audit"]},
        "backup_drill": {"rto_seconds": 30, "rpo_seconds": 60, "chain_ok": True}}


class FakeRegistry:
    def __init__(self, champion: str | None = "v2", events: list | None = None) -> None:
        self.champion, self.events = champion, events or []

    def aliases(self) -> dict:
        return {"champion": self.champion, "events": self.events}

    def manifest(self, version: str) -> dict:
        return MANIFEST

    def verify(self, version: str) -> dict:
        return {}


@pytest.fixture
def world(services):
    for name, role in USERS.items():
        services.users.add(name, role=role, password=PASSWORD, display_name=f"{name.title()} Tester")
    reg = FakeRegistry(champion=None)
    state = {"fairness": None}
    readiness = ReadinessService(services.db, services.clock, services.settings.readiness, fairness_threshold=0.8,
                                 registry=lambda: reg, fairness=lambda: state["fairness"])
    return SimpleNamespace(svc=services, reg=reg, state=state, readiness=readiness,
                           signoffs=SignOffService(services.db, services.clock, lambda: reg.champion))


def red(world) -> dict[str, str]:  # noqa: ANN001
    return {i.key: i.reason for i in world.readiness.evaluate().red}


def test_missing_then_fresh_then_stale(world):
    svc, clock = world.svc, world.svc.clock
    report = world.readiness.evaluate()
    assert not report.ready and len(report.items) == 10 and {i.reason for i in report.items} == {MISSING}
    with pytest.raises(SignOffError, match=re.escape(MSG_NO_CHAMPION)):
        world.signoffs.add("pat", "pm")

    world.reg.champion = "v2"
    world.reg.events = [{"at": (clock.now() - timedelta(days=3)).isoformat(), "action": "rollback", "version": "v1",
                         "previous": "v0"}]
    world.state["fairness"] = (0.85, "2025-12", {"computed_at": clock.now().isoformat(), "attribute": "sex"})
    for kind, payload in GOOD.items():
        evidence.record(svc.db, clock, kind=kind, ok=True, summary=f"{kind} passed", payload=payload,
                        command=f"run {kind}")
    for area, user in SIGNER.items():
        world.signoffs.add(user, area, counsel="Jane Roe" if area == "legal" else "")
    report = world.readiness.evaluate()
    assert report.ready, [(i.key, i.evidence) for i in report.red]
    assert report.item("load_test").command == "run load_test"

    clock.advance(days=7.5)  # past the scan and drill windows (7 days)
    assert red(world) == {"security_scan": STALE, "backup_drill": STALE}
    clock.advance(days=1)  # 8.5: the fairness audit too (8 days)
    assert red(world) == {"security_scan": STALE, "backup_drill": STALE, "fairness": STALE}
    clock.advance(days=22)  # 30.5: the load test (30 days)
    assert set(red(world)) == {"security_scan", "backup_drill", "fairness", "load_test"}
    evidence.record(svc.db, clock, kind="backup_drill", ok=True, summary="again", payload=GOOD["backup_drill"])
    assert "backup_drill" not in red(world)  # a fresh run turns it green again
    clock.advance(minutes=5)
    evidence.record(svc.db, clock, kind="backup_drill", ok=False, summary="restore failed", payload={})
    assert red(world)["backup_drill"] == "failed"  # the newest run decides


def test_signoff_role_rules_and_bad_input(world):
    world.reg.champion = "v2"
    for area in AREAS:
        for user, role in USERS.items():
            counsel = "Jane Roe" if area == "legal" else ""
            if role in AREA_ROLES[area]:
                assert world.signoffs.add(user, area, counsel=counsel).username == user
            else:
                with pytest.raises(SignOffError, match=f"may not sign off for {area}: that needs "):
                    world.signoffs.add(user, area, counsel=counsel)
    legal = world.signoffs.add("rita", "legal", counsel="Jane Roe, Esq.", note="memo 2026-14")
    assert (legal.username, legal.display_name) == ("rita", "Jane Roe, Esq.")  # recorder and counsel both kept
    refusals = [
        (dict(username="ada", area="legal"), MSG_COUNSEL_REQUIRED),
        (dict(username="pat", area="pm", counsel="Jane"), MSG_COUNSEL_NOT_LEGAL.format(area="pm")),
        (dict(username="ada", area="legal", counsel="Jane\x00Roe"), MSG_COUNSEL_BAD),
        (dict(username="pat", area="marketing"), MSG_BAD_AREA.format(area="marketing")),
        (dict(username="nobody", area="pm"), MSG_NOT_USER.format(username="nobody")),
        (dict(username="pat", area="pm", note="x" * 5000), MSG_NOTE_LONG),
    ]
    before = len(world.signoffs.records())
    for kw, message in refusals:
        with pytest.raises(SignOffError) as exc:
            world.signoffs.add(kw.pop("username"), kw.pop("area"), **kw)
        assert str(exc.value) == message
    world.svc.users.set_disabled("pat", True)
    with pytest.raises(SignOffError, match="not an active console user"):
        world.signoffs.add("pat", "pm")
    assert len(world.signoffs.records()) == before  # nothing written by a refusal
    audit = world.svc.audit.recent(50, entity_type="signoff")
    assert audit[0]["action"] == "signoff_recorded" and audit[0]["payload"]["signed_by"] == "Jane Roe, Esq." and \
        audit[0]["payload"]["recorded_by"] == "rita" and audit[0]["actor"] == "rita"


def test_supersede_revoke_and_version_mismatch(world):
    world.reg.champion = "v2"
    first = world.signoffs.add("pat", "pm", note="first look")
    second = world.signoffs.add("pia", "pm", note="second look")
    rows = {r.id: r for r in world.signoffs.records(version="v2")}
    assert rows[first.id].revoked_by == "superseded by pia" and rows[second.id].active
    assert world.signoffs.current()["pm"].id == second.id
    assert world.svc.audit.recent(1, entity_type="signoff")[0]["payload"]["superseded"] == [first.id]

    with pytest.raises(SignOffError) as exc:
        world.signoffs.revoke("mel", second.id[:8])
    assert str(exc.value) == MSG_ROLE_REVOKE.format(role="an ML engineer", area="pm", needs="a product lead")
    with pytest.raises(SignOffError) as exc:
        world.signoffs.revoke("pat", "abc")
    assert str(exc.value) == MSG_NOT_FOUND.format(ref="abc")
    done = world.signoffs.revoke("pat", second.id[:8], note="found an issue")
    assert done.revoked_by == "pat" and world.signoffs.current()["pm"] is None
    with pytest.raises(SignOffError) as exc:
        world.signoffs.revoke("pat", second.id)
    assert str(exc.value) == MSG_ALREADY_REVOKED.format(id=second.id, by="pat", at=done.revoked_at)
    assert red(world)["signoff_pm"] == MISSING

    for area, user in SIGNER.items():
        world.signoffs.add(user, area, counsel="Jane Roe" if area == "legal" else "")
    assert not any(k.startswith("signoff_") for k in red(world))
    world.reg.champion = "v3"  # a new champion: the v2 sign-offs no longer count
    reasons = red(world)
    assert {k: v for k, v in reasons.items() if k.startswith("signoff_")} == {f"signoff_{a}": MISMATCH for a in AREAS}
    assert "for v2, not for the current champion v3" in world.readiness.evaluate().item("signoff_legal").evidence


def _resign_as(reg, version):
    """Make a copied version folder a genuine version of its own id: manifest, checksums and signature (the
    test holds the signing key, as the registering process does)."""
    import hashlib
    import json

    folder = reg.path / version
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
    sums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
            for f in json.loads((folder / "checksums.json").read_text())}
    (folder / "checksums.json").write_text(json.dumps(sums))
    (folder / "signature.json").write_bytes(reg.keys.sign(reg.name, version, (folder / "checksums.json").read_bytes()))


def test_rollback_drill_on_a_trained_registry(sqlite_database, clock, model_registry, tmp_path):
    from backend.models.registry import Registry

    shutil.copytree(model_registry, tmp_path / "models")
    svc = build_services(load_settings(data_dir=tmp_path, model={"registry_dir": tmp_path / "models"}),
                         db=sqlite_database, clock=clock)
    reg = svc.models.registry()
    first = reg.aliases()["champion"]
    failed = rollback_drill(reg, svc.db, clock, actor="cli:test")
    assert not failed.ok and MSG_NO_TARGET.format(champion=first) in failed.summary
    assert svc.readiness.evaluate().item("rollback").reason == "failed"

    second = "v29990101-000000000-abcdef"  # a second version that served: a copy of the first under a new id
    shutil.copytree(reg.path / first, reg.path / second)
    _resign_as(reg, second)
    Registry(reg.root, reg.name).promote(second, gates_required=False)
    clock.advance(minutes=1)
    ok = rollback_drill(reg, svc.db, clock, actor="cli:test")
    assert ok.ok, ok.summary
    assert ok.payload["restored"] == first and ok.payload["scored_rows"] > 0
    assert reg.aliases()["champion"] == second  # the serving registry was not touched
    report = svc.readiness.evaluate()
    assert report.item("rollback").green and "scratch copy" in report.item("rollback").evidence
    assert "held-out AUC" in report.item("holdout").evidence and report.champion == second
    assert svc.audit.recent(1, entity_type="ops_evidence")[0]["payload"]["kind"] == "rollback_test"
