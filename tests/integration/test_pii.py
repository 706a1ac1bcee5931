"""Personal data at rest and on screen: tokens only in the database, masked views, audited reveals by
allowed roles only, blind-index lookups, unchanged rollout arms, and resumable key rotation."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import insert, select

from backend.compliance.pii_keys import is_token, token_kid
from backend.compliance.pii_reveal import REVEAL_NOT_ALLOWED, PiiService, PiiUnreadable, RevealRefused
from backend.compliance.pii_rotation import PiiRotation
from backend.domain import Actor
from backend.domain.decision_rules import NOT_FOUND, DecisionNotFound
from backend.domain.validation import ApplicationInvalid
from backend.platform.db.tables_book import Application
from backend.platform.db.tables_governance import AuditLog
from backend.rollout.service import OfficerInfo, assign, default_phase
from backend.training.synthetic import generate

NAME, SSN, EMAIL = "Zebulon Quixote-Marchetti", "219-09-9999", "zq.marchetti@example.org"
ROLES = {"olivia": "loan_officer", "oscar": "loan_officer", "maria": "risk_manager", "ada": "admin",
         "paul": "product_lead"}


def _apps(n: int, seed: int) -> list[dict]:
    df = generate(n, seed=seed).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    rows = df.where(df.notna(), None).to_dict("records")
    for i, row in enumerate(rows):
        row["applicant_id"] = f"CUS{seed}-{i:06d}"
    return rows


def _users(svc) -> dict[str, Actor]:
    return {name: svc.users.add(name, role=role, password="correct horse battery staple")[0]
            for name, role in ROLES.items()}


def _sub(u: Actor) -> Actor:
    return Actor(u.username, u.role, u.id, senior=u.senior)


def _raw(db) -> list[tuple]:
    with db.engine.connect() as c:
        return list(c.execute(sa.text("SELECT id, applicant_id, applicant_ref, applicant_mask, pii FROM applications")))


def test_scored_pii_is_tokens_only_masked_in_views_and_revealed_to_allowed_roles(scoring_services, monkeypatch):
    svc = scoring_services
    u = _users(svc)
    phase = dataclasses.replace(default_phase(svc.settings.policy), phase="scaled", ai_share=0.5, salt="pii-test")
    monkeypatch.setattr(svc.scoring, "phase_at", lambda at: phase)
    rows = _apps(12, seed=7)
    rows[0]["applicant"] = {"name": NAME, "ssn": "219099999", "email": EMAIL, "address": "12 Rue des Lilas"}
    mine = [svc.scoring.score(r, submitter=_sub(u["olivia"])) for r in rows[:8]]
    theirs = svc.scoring.score_many(rows[8:], submitter=_sub(u["oscar"]))

    raw = _raw(svc.db)
    assert len(raw) == 12
    dump = repr(raw)
    assert not [x for x in (NAME, "Zebulon", SSN, "219099999", EMAIL, "Lilas", "CUS7-") if x in dump]
    # the blind index stored as its 32 bytes (HMAC-SHA256; 64 hex characters before 0017)
    assert all(is_token(r[1]) and len(bytes(r[2])) == 32 and r[3].startswith("CUS…") for r in raw)
    assert sum(r[4] is not None for r in raw) == 1 and is_token(next(r[4] for r in raw if r[4]))
    # the rollout arm is still drawn from the plaintext applicant id, exactly as before encryption
    for row, res in zip(rows, [*mine, *theirs], strict=True):
        sub = u["olivia"] if res in mine else u["oscar"]
        want = assign(phase, applicant_id=row["applicant_id"], officer=OfficerInfo(sub.username, sub.role),
                      loan_amount=float(row["loan_amount"]))
        assert res.arm == want.arm
    assert {r.arm for r in [*mine, *theirs]} >= {"ai", "control"}

    listed = svc.decisions.decisions_for(u["maria"])
    assert {c.applicant_masked for c in listed} == {f"CUS…{i:04d}" for i in range(12)}
    pii = PiiService(svc.db, svc.clock, svc.scoring.pii)
    first = mine[0].application_id
    assert pii.summary(first, actor=u["olivia"]).has_details and pii.summary(first, actor=u["olivia"]).may_reveal
    assert pii.summary(first, actor=u["maria"]).applicant_masked == "CUS…0000"

    shown = pii.reveal(first, actor=u["maria"])
    assert shown.applicant_id == "CUS7-000000"
    assert shown.details == {"name": NAME, "ssn": SSN, "email": EMAIL, "address": "12 Rue des Lilas"}
    assert pii.reveal(first, actor=u["olivia"]).details["name"] == NAME  # her own application
    assert pii.reveal(theirs[0].application_id, actor=u["ada"]).details == {}
    with pytest.raises(DecisionNotFound, match=NOT_FOUND):
        pii.reveal(theirs[0].application_id, actor=u["olivia"])  # another officer's: like a missing one
    with pytest.raises(RevealRefused, match=REVEAL_NOT_ALLOWED):
        pii.reveal(first, actor=u["paul"])
    with pytest.raises(DecisionNotFound):
        pii.reveal(str(uuid.uuid4()), actor=u["maria"])

    with svc.db.read() as s:
        audit = list(s.execute(select(AuditLog).where(AuditLog.action.like("pii_%")).order_by(AuditLog.seq))
                     .scalars())
    assert [(a.action, a.actor) for a in audit] == [
        ("pii_revealed", "maria"), ("pii_revealed", "olivia"), ("pii_revealed", "ada"),
        ("pii_reveal_refused", "olivia"), ("pii_reveal_refused", "paul")]
    assert audit[0].entity_id == first and audit[0].payload["fields"] == ["applicant_id", "address", "email",
                                                                          "name", "ssn"]
    assert NAME not in repr([a.payload for a in audit]) and svc.audit.verify().ok

    # equality lookup through the blind index; an officer finds only her own applications
    assert pii.find("CUS7-000000", actor=u["maria"]) == [first]
    assert pii.find("CUS7-000009", actor=u["olivia"]) == [] and pii.find("CUS7-000009", actor=u["ada"])
    with pytest.raises(ApplicationInvalid) as bad:
        svc.scoring.score({**rows[1], "applicant": {"ssn": "12-34"}}, submitter=_sub(u["olivia"]))
    assert [e.field for e in bad.value.errors] == ["applicant.ssn"] and len(_raw(svc.db)) == 12  # nothing written


def test_rotation_is_batched_resumable_audited_and_reads_old_rows(scoring_services):
    svc = scoring_services
    old = svc.scoring.pii
    sub = Actor("olivia", "loan_officer")
    rows = _apps(4, seed=9)
    rows[1]["applicant"] = {"name": NAME, "phone": "+1 555 010 0100"}
    done = svc.scoring.score_many(rows, submitter=sub)
    legacy = uuid.uuid4()  # a row as written before migration 0007: plaintext id, no ref, no mask
    with svc.db.transaction() as s:
        s.execute(insert(Application).values(id=legacy, applicant_id="LEGACY-77", features=done[0].features,
                                             protected={}, loan_amount=1000.0, applied_at=svc.clock.now(),
                                             source="console"))
    maria = svc.users.add("maria", role="risk_manager", password="correct horse battery staple")[0]
    assert PiiService(svc.db, svc.clock, old).reveal(legacy, actor=maria).applicant_id == "LEGACY-77"
    assert [c.applicant_masked for c in svc.decisions.decisions_for(maria) if c.application_id == str(legacy)] \
        == ["…Y-77"]

    new = old.with_new_key()
    rot = PiiRotation(svc.db, svc.clock, new)
    st = rot.status()
    assert (st.total, st.plaintext, st.pending, st.with_details) == (5, 1, 5, 1)
    assert st.by_key[old.active] == {"applicant_id": 4, "pii": 1} and st.by_key[new.active]["applicant_id"] == 0

    first = rot.rotate(batch_size=2, max_batches=1, actor="cli:test")  # stopped after one batch
    assert (first.rows, first.batches, first.remaining) == (2, 1, 3)
    rest = rot.rotate(batch_size=2, actor="cli:test")  # a second run carries on
    assert (rest.rows, rest.batches, rest.remaining) == (3, 2, 0)
    assert sum(first.sources.values()) + sum(rest.sources.values()) == 5
    assert first.sources.get("plaintext", 0) + rest.sources.get("plaintext", 0) == 1
    assert rot.status().ok and rot.rotate().rows == 0

    raw = _raw(svc.db)
    assert all(token_kid(r[1]) == new.active for r in raw) and "LEGACY-77" not in repr(raw)
    only_new = new.without(old.active)  # the old key can now leave the ring
    assert only_new.kids == (new.active,)
    pii = PiiService(svc.db, svc.clock, only_new)
    assert pii.reveal(legacy, actor=maria).applicant_id == "LEGACY-77"
    assert pii.reveal(done[1].application_id, actor=maria).details == {"name": NAME, "phone": "+1 555 010 0100"}
    assert pii.find("LEGACY-77", actor=maria) == [str(legacy)]
    with svc.db.read() as s:
        batches = list(s.execute(select(AuditLog).where(AuditLog.action == "pii_reencrypted")).scalars())
    assert [b.payload["rows"] for b in batches] == [2, 2, 1] and {b.entity_id for b in batches} == {new.active}
    assert svc.audit.verify().ok

    # a ring without the key of existing rows: rotation refuses up front, reveal says why
    stranger = type(new).generate()
    with pytest.raises(PiiUnreadable, match="not in the ring"):
        PiiRotation(svc.db, svc.clock, stranger).rotate()
    assert PiiRotation(svc.db, svc.clock, stranger).status().foreign == {new.active: 6}
    with pytest.raises(PiiUnreadable, match=new.active):
        PiiService(svc.db, svc.clock, stranger).reveal(legacy, actor=maria)


def test_encrypt_existing_takes_plaintext_rows_only(scoring_services):
    svc = scoring_services
    done = svc.scoring.score(_apps(1, seed=5)[0], submitter=Actor("olivia", "loan_officer"))
    with svc.db.transaction() as s:
        s.execute(insert(Application), [dict(id=uuid.uuid4(), applicant_id=f"OLD-{i}", features=done.features,
                                             protected={}, loan_amount=1.0, applied_at=svc.clock.now())
                                        for i in range(3)])
    rot = PiiRotation(svc.db, svc.clock, svc.scoring.pii.with_new_key())
    rep = rot.rotate(plaintext_only=True, batch_size=10)
    assert (rep.rows, rep.sources, rep.remaining) == (3, {"plaintext": 3}, 0)
    st = rot.status()
    assert st.plaintext == 0 and st.pending == 1  # the scored row is still under the previous key


def test_cli_status_encrypt_existing_keys_and_find_print_no_pii(scoring_services, monkeypatch):
    import base64
    import json

    from typer.testing import CliRunner

    from backend.cli import app

    svc = scoring_services
    monkeypatch.setattr("backend.platform.cli._services_factory", lambda migrate=True: svc)
    run = CliRunner().invoke
    svc.scoring.score(_apps(1, seed=3)[0], submitter=Actor("olivia", "loan_officer"))
    ok = run(app, ["pii", "status"])
    assert ok.exit_code == 0 and "not under the active key: 0" in ok.output, ok.output
    with svc.db.transaction() as s:
        s.execute(insert(Application).values(id=uuid.uuid4(), applicant_id="OLDPLAIN-123456", features={},
                                             protected={}, loan_amount=1.0, applied_at=svc.clock.now()))
    st = run(app, ["pii", "status", "--json"])
    assert st.exit_code == 1 and json.loads(st.output)["plaintext"] == 1
    enc = run(app, ["pii", "encrypt-existing", "--batch-size", "1"])
    assert enc.exit_code == 0 and "1 rows now under key" in enc.output and "0 remaining" in enc.output, enc.output
    assert run(app, ["pii", "status"]).exit_code == 0
    found = run(app, ["pii", "find"], input="OLDPLAIN-123456\n")
    assert found.exit_code == 0 and len(found.output.split()) == 1
    kid, key = next(iter(json.loads(run(app, ["pii", "keys", "new"]).output).items()))
    assert len(base64.b64decode(key)) == 32 and kid.startswith("k")
    everything = "".join(r.output for r in (ok, st, enc, found))
    assert "OLDPLAIN" not in everything and "CUS3-" not in everything
