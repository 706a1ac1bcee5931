"""Migration 0020 (catalogue vectors; no unique index on ``audit_log.row_hash``) on a simulated history, both
databases: what the Decision page, the notice letter, the drift page, the audit export and a backup read is the
same before and after the upgrade and after a downgrade; the rows are stored as vectors after it and as 0019 wrote
them after the downgrade; the audit chain verifies, stays append-only and keeps growing in order."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from old_schema import HEAD

from backend.compliance.audit_queries import AuditFilter
from backend.container import Services
from backend.decisioning.letters import NoticeNotRequired, build_notice, notice_outcome, render_text
from backend.domain.actor import Actor
from backend.operations.backup_queries import migrate_to
from backend.platform.db import compact
from backend.platform.db.tables_access import User
from backend.platform.db.tables_book import Application, Prediction
from backend.platform.db.tables_governance import AuditLog

SAMPLE = 40  # decisions opened; denials first, so that letters are among them


def _headers(svc: Services) -> Counter[tuple[str, int]]:
    with svc.db.engine.connect() as c:
        out: Counter[tuple[str, int]] = Counter()
        for name, col in (("features", Application.features), ("attributions", Prediction.attributions)):
            for raw in c.execute(sa.select(sa.type_coerce(col, sa.LargeBinary))).scalars():
                out[(name, bytes(raw[:1])[0])] += 1
        return out


def _sample(svc: Services) -> list[str]:
    with svc.db.read() as s:
        rows = s.execute(sa.select(Prediction.id, Prediction.recommendation).order_by(Prediction.created_at)).all()
    deny = [str(i) for i, r in rows if r == "deny"]
    return (deny[:SAMPLE // 2] + [str(i) for i, r in rows if r != "deny"])[:SAMPLE]


def _readings(svc: Services, pids: list[str]) -> dict[str, Any]:
    """What the pages, letters and exports show that comes from the features and attributions (as text, so a
    changed type, order or last bit shows)."""
    with svc.db.read() as s:  # a console user who may open every decision (the history's risk manager)
        actor = Actor.of(s.execute(sa.select(User).where(User.role == "risk_manager").limit(1)).scalar_one())
    out: dict[str, Any] = {}
    for pid in pids:
        result = svc.workspace.result(pid, actor=actor)
        case = svc.workspace.case(pid, actor=actor)
        current = svc.decisions.current(case.application_id, actor=actor)
        letter = None
        outcome, _why = notice_outcome(current)
        if outcome is not None:
            picked = list(current.notice_reasons or ()) if current is not None else []
            try:  # as the Decision page's letter panel: the letter, or the sentence why there is none
                letter = render_text(build_notice(result, applicant_name=None, decision_outcome=outcome,
                                                  human_reasons=picked or None, settings=svc.settings,
                                                  today=date(2026, 2, 15), bureau_key_factors=case.bureau_key_factors))
            except (NoticeNotRequired, ValueError) as exc:
                letter = f"no letter: {exc}"
        out[pid] = (repr(result), repr(case), repr(svc.scoring.card(result)), letter)
    svc.drift.refresh_all(force=True)
    with svc.db.read() as s:
        # (without the fingerprint: the book's tokens it was read under, which 0022 gives new shards)
        out["drift"] = repr(sorted((r.kind, r.granularity, r.period, r.n, r.value, _figures(r.payload)) for r in
                                   s.execute(sa.select(sa.text("*")).select_from(sa.text("monitor_snapshots"))
                                             .where(sa.text("kind LIKE 'drift%' OR kind LIKE 'psi%'"))).all()))
    out["audit_csv"] = svc.audit.export_csv(AuditFilter(action="application_scored")).data
    with svc.db.engine.connect() as c:  # the backup's JSON text of each value (backend/operations/backup_queries.py)
        out["backup"] = [compact.json_text(r) for col in (Application.features, Prediction.attributions)
                         for r in c.execute(sa.select(sa.type_coerce(col, sa.LargeBinary))
                                            .order_by(sa.text("id"))).scalars()]
    return out


def _figures(payload: Any) -> Any:
    """A drift payload (JSON text or dict, as the driver returns it) without its fingerprint."""
    import json

    value = json.loads(payload) if isinstance(payload, str | bytes) else dict(payload)
    value.pop("fingerprint", None)
    return value


def _row_hash_unique(svc: Services) -> bool:
    with svc.db.engine.connect() as c:
        if svc.db.dialect == "sqlite":
            sql = c.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'audit_log'")).scalar_one()
            return "UNIQUE (row_hash)" in sql
        return c.execute(sa.text("SELECT count(*) FROM pg_constraint WHERE conname = 'uq_audit_log_row_hash'")
                         ).scalar_one() == 1


def test_0020_stores_vectors_and_every_reading_is_the_same(sim_services: Services) -> None:
    svc = sim_services
    assert svc.db.current_revision() == HEAD
    pids = _sample(svc)
    migrate_to(svc.db, "0019")  # the history as 0019 stored it
    at_0019 = _headers(svc)
    assert set(at_0019) == {("features", compact.CURRENT), ("attributions", compact.CURRENT)}
    assert _row_hash_unique(svc)
    before = _readings(svc, pids)
    assert any(v[3] and not v[3].startswith("no letter") for k, v in before.items() if k in pids), "no letter read"
    with svc.db.engine.connect() as c:
        seq_before = c.execute(sa.select(sa.func.max(AuditLog.seq))).scalar_one()
        # (PostgreSQL lists the constraint's own index too: it is the one that goes)
        indexes = sorted(i["name"] for i in sa.inspect(c).get_indexes("audit_log") if i["name"] != "uq_audit_log_row_hash")

    migrate_to(svc.db, HEAD)
    stored = _headers(svc)
    # every application was scored with the catalogue: no row keeps the general header
    assert {h for _, h in stored} <= set(compact.VECTORS) and stored[("attributions", compact.VECTOR_FIXED)] > 0
    assert sum(stored.values()) == sum(at_0019.values())
    assert not _row_hash_unique(svc)
    with svc.db.engine.connect() as c:
        assert sorted(i["name"] for i in sa.inspect(c).get_indexes("audit_log")) == indexes
    after = _readings(svc, pids)
    assert after == before

    report = svc.audit.verify()
    assert report.ok, report
    with svc.db.engine.connect() as c:  # still append-only
        for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), c.begin():
                c.execute(sa.text(sql))
    svc.audit.record(actor="test", role="admin", action="test_after_0020", entity_type="test", entity_id="1",
                     payload={"n": 1})
    with svc.db.engine.connect() as c:
        assert c.execute(sa.select(sa.func.max(AuditLog.seq))).scalar_one() > seq_before
    assert svc.audit.verify().ok

    # an interrupted upgrade runs again and changes nothing
    raw = _readings(svc, pids[:3])["backup"]
    with svc.db.engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0019'"))
    migrate_to(svc.db, HEAD)
    assert _headers(svc) == stored and _readings(svc, pids[:3])["backup"] == raw


def test_0020_downgrade_gives_0019_rows_and_the_constraint_back(sim_services: Services) -> None:
    svc = sim_services
    pids = _sample(svc)[:8]
    at_head = _readings(svc, pids)
    migrate_to(svc.db, "0019")
    assert {h for _, h in _headers(svc)} == {compact.CURRENT}
    assert _row_hash_unique(svc)
    assert _readings(svc, pids) == at_head
    with svc.db.engine.connect() as c:  # the constraint holds again: a twin row hash is refused
        row = c.execute(sa.text("SELECT * FROM audit_log ORDER BY seq LIMIT 1")).mappings().one()
        c.rollback()
        twin = {**row, "seq": 10**9, "id": uuid.uuid4().bytes if svc.db.dialect == "sqlite" else uuid.uuid4()}
        with pytest.raises(sa.exc.IntegrityError), c.begin():
            c.execute(sa.text(f"INSERT INTO audit_log ({', '.join(twin)}) VALUES ({', '.join(':' + k for k in twin)})"),
                      twin)
    migrate_to(svc.db, HEAD)
    assert {h for _, h in _headers(svc)} <= set(compact.VECTORS) and not _row_hash_unique(svc)
    assert _readings(svc, pids) == at_head and svc.audit.verify().ok
