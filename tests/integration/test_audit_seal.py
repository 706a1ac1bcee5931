"""The sealed audit log attacked by someone with the database owner's rights (but not the chain key
or the checkpoint directory): each tampering is reported with the first seq it affects, on SQLite and
the real PostgreSQL. Also: pending rows, legacy rows, concurrent writers, the Merkle tree."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from backend.compliance import audit_chain_queries as chain_q
from backend.compliance.audit_queries import (
    GENESIS,
    AuditRepository,
    canonical_json,
    row_hash,
    row_hash_v2,
    sha256,
)
from backend.compliance.audit_seal import leaf_hash, merkle_root
from backend.container import build_services
from backend.platform.db import compact
from backend.platform.db.base import utcnow


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's recursive definition, to hold the iterative one to it."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_merkle_root_is_rfc6962():
    for n in range(1, 70):
        leaves = [leaf_hash(i + 1, sha256(str(i))) for i in range(n)]
        assert merkle_root(leaves) == _mth(leaves).hex()


@pytest.fixture
def svc(settings, db, clock):
    """Checkpoint after every seal (the default waits 10 s between checkpoints)."""
    s2 = settings.model_copy(update={"audit": settings.audit.model_copy(update={"checkpoint_every_s": 0.0})})
    return build_services(s2, db=db, clock=clock)


def _fill(db, n, start=0):
    for i in range(start, start + n):  # one transaction each: each seals as its own batch on SQLite
        with db.transaction() as s:
            AuditRepository(s).append(actor="alice", role="admin", action="test", entity_type="user",
                                      entity_id=str(i), payload={"i": i, "note": "=cmd|' /C calc'!A0 \u202e"})


def _b(hex_digest: str) -> bytes:
    """A hash as the table stores it since 0017 (its bytes)."""
    return bytes.fromhex(hex_digest)


def _plain(db, payload):
    """A payload as plain JSON text (PostgreSQL's bytea column: that text's bytes)."""
    text = json.dumps(payload)
    return text if db.dialect == "sqlite" else text.encode()


def _attacker(db):
    """Drop the append-only triggers on both tables, as a DB owner can."""
    with db.transaction() as s:
        if db.dialect == "postgresql":
            s.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            s.execute(sa.text("ALTER TABLE audit_batch DISABLE TRIGGER USER"))
        else:
            for t in ("audit_log_no_update", "audit_log_no_delete", "audit_batch_no_update", "audit_batch_no_delete"):
                s.execute(sa.text(f"DROP TRIGGER {t}"))


def _sql(db, stmt, **params):
    with db.transaction() as s:
        s.execute(sa.text(stmt), params)


def _seal_all(svc):
    svc.audit.seal()
    report = svc.audit.verify()
    assert report.ok and report.pending == 0, report
    return report


def test_rows_are_sealed_inline_and_verify(svc):
    _fill(svc.db, 7)
    report = _seal_all(svc)
    assert report.rows == 7 and report.batches >= 1 and "checkpoint" in report.checkpoint
    calls: list[tuple[str, int, int]] = []
    assert svc.audit.verify(progress=lambda step, done, total: calls.append((step, done, total))).ok
    assert calls and calls[-1][1:] == (7, 7)


def test_pending_rows_are_shown_and_never_lost(settings, db, clock):
    off = settings.model_copy(update={"audit": settings.audit.model_copy(update={"inline_sequencing": False})})
    svc = build_services(off, db=db, clock=clock)
    _fill(db, 4)
    report = svc.audit.verify()
    assert report.ok and report.pending == 4 and report.batches == 0
    assert svc.audit.seal() == 4
    report = svc.audit.verify()
    assert report.ok and report.pending == 0 and report.batches == 1


def test_deleted_last_row_is_detected(svc):
    _fill(svc.db, 6)
    _seal_all(svc)
    _attacker(svc.db)
    _sql(svc.db, "DELETE FROM audit_log WHERE seq = 6")
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == 6 and "deleted" in report.detail


def test_deleted_tail_with_its_batches_is_caught_by_the_checkpoint(svc):
    _fill(svc.db, 10)
    _seal_all(svc)
    _attacker(svc.db)
    _sql(svc.db, "DELETE FROM audit_log WHERE seq > 5")
    _sql(svc.db, "DELETE FROM audit_batch WHERE last_seq > 5")
    _sql(svc.db, "DELETE FROM audit_batch WHERE first_seq > 1 AND first_seq <= 5 AND last_seq >= 5")
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq is not None and report.first_broken_seq <= 6
    assert "tail deleted" in report.detail or "deleted" in report.detail


def test_deleted_middle_row_is_named(svc):
    _fill(svc.db, 8)
    _seal_all(svc)
    _attacker(svc.db)
    _sql(svc.db, "DELETE FROM audit_log WHERE seq = 3")
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == 3


@pytest.mark.parametrize("stored", ["compact", "plain JSON text", "hex text hashes"])
@pytest.mark.parametrize("field", ["actor", "payload"])
def test_edited_and_rehashed_row_is_named(svc, field, stored):
    """Written back as the product stores it, or in the forms the table held before 0017 (the payload as plain
    JSON text, the hashes as hex text): either way the sealed batch names the row."""
    _fill(svc.db, 8)
    _seal_all(svc)
    _attacker(svc.db)
    with svc.db.read() as s:
        row = next(r for r in chain_q.iter_rows(s) if r[0] == 4)
    seq, rid, at, actor, role, action, etype, eid, payload, _ph, _prev, _rh = row
    payload = json.loads(payload)  # the stored payload's JSON text in the tuple
    if field == "actor":
        actor = "mallory"
    else:
        payload = {**payload, "i": 999}
    p_hash = sha256(canonical_json(payload))
    r_hash = row_hash_v2(rid, at, actor, role, action, etype, eid, p_hash)  # everything the DB holds, re-hashed
    as_text = stored == "hex text hashes" and svc.db.dialect == "sqlite"  # (a bytea column holds no text)
    _sql(svc.db, "UPDATE audit_log SET actor = :a, payload = :p, payload_hash = :ph, row_hash = :rh WHERE seq = 4",
         a=actor, p=_plain(svc.db, payload) if stored == "plain JSON text" else compact.dumps(payload, compact.AUDIT),
         ph=p_hash if as_text else _b(p_hash), rh=r_hash if as_text else _b(r_hash))
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == 4 and "changed after batch" in report.detail


def test_swapped_rows_are_named(svc):
    _fill(svc.db, 5)
    _seal_all(svc)
    _attacker(svc.db)
    _sql(svc.db, "UPDATE audit_log SET seq = 100 WHERE seq = 2")
    _sql(svc.db, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _sql(svc.db, "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == 2


def test_rebuilt_batch_without_the_key_is_refused(svc):
    """The attacker edits a row, then recomputes the batch's tags and root: the MAC gives it away."""
    _fill(svc.db, 3)
    svc.audit.seal()
    _attacker(svc.db)
    _sql(svc.db, "UPDATE audit_log SET entity_id = 'x' WHERE seq = 2")
    with svc.db.read() as s:
        rows = [(r[0], row_hash_v2(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9])) for r in chain_q.iter_rows(s)]
        batches = chain_q.batches(s)
    _sql(svc.db, "UPDATE audit_log SET row_hash = :h WHERE seq = 2", h=_b(rows[1][1]))
    no, first, last = next(b[:3] for b in batches if b[1] <= 2 <= b[2])
    leaves = [leaf_hash(seq, h) for seq, h in rows if first <= seq <= last]
    _sql(svc.db, "UPDATE audit_batch SET tags = :t, root = :r WHERE batch_no = :n",
         t=b"".join(x[:8] for x in leaves), r=merkle_root(leaves), n=no)
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == first and "altered" in report.detail


def test_forged_archive_anchor_is_detected(svc):
    _fill(svc.db, 6)
    _seal_all(svc)
    _attacker(svc.db)
    with svc.db.read() as s:
        anchor = next(r for r in chain_q.iter_rows(s) if r[0] == 3)[11]
    _sql(svc.db, "DELETE FROM audit_log WHERE seq <= 3")
    svc.audit.record(actor="cli:dba", role="admin", action="audit_archived", entity_type="audit_archive",
                     entity_id="f" * 64, payload={"anchor": anchor, "first_seq": 1, "last_seq": 3, "through_batch": 3})
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == 1
    assert "no signed checkpoint records" in report.detail


def test_forged_checkpoint_line_is_ignored(svc):
    _fill(svc.db, 4)
    _seal_all(svc)
    path = svc.audit.sequencer.checkpoints.path
    with open(path, "a") as fh:  # a checkpoint claiming fewer batches, with a signature that cannot verify
        fh.write(json.dumps({"body": {"v": 1, "kind": "sequencer", "batch": 99, "last_seq": 1, "mac": "0" * 64,
                                      "at": "2999-01-01T00:00:00+00:00"}, "sig": "AAAA"}) + "\n")
    assert svc.audit.verify().ok
    path.unlink()  # the checkpoints gone: the head can no longer be trusted
    report = svc.audit.verify()
    assert not report.ok and "no signed checkpoint" in report.detail


def _legacy(db, n):
    """Rows as written before revision 0009: the SHA-256 chain, prev_hash linking each to the last."""
    prev = GENESIS
    for i in range(n):
        rid, at, payload = uuid.uuid4(), utcnow(), {"old": i}
        ph = sha256(canonical_json(payload))
        h = row_hash(prev, rid, at, "bob", "admin", "old", "user", str(i), ph)
        _sql(db, "INSERT INTO audit_log (id, at, actor, role, action, entity_type, entity_id, payload, payload_hash, "
                 "prev_hash, row_hash) VALUES (:id, :at, 'bob', 'admin', 'old', 'user', :e, :p, :ph, :prev, :h)",
             id=rid.hex if db.dialect == "sqlite" else rid, at=at, e=str(i), p=json.dumps(payload), ph=_b(ph),
             prev=_b(prev), h=_b(h))
        prev = h


def test_legacy_rows_are_sealed_and_a_forward_rehash_is_named(svc):
    _legacy(svc.db, 5)
    _fill(svc.db, 3)
    report = _seal_all(svc)
    assert report.rows == 8
    _attacker(svc.db)
    with svc.db.read() as s:
        rows = list(chain_q.iter_rows(s))
    prev = rows[1][11]
    for r in rows[2:5]:  # edit seq 3 and re-hash the old chain forward (all the old rule could see)
        seq, rid, at, actor, role, action, etype, eid, payload, ph, _prev, _h = r
        actor = "mallory" if seq == 3 else actor
        h = row_hash(prev, rid, at, actor, role, action, etype, eid, ph)
        _sql(svc.db, "UPDATE audit_log SET actor = :a, prev_hash = :p, row_hash = :h WHERE seq = :s",
             a=actor, p=_b(prev), h=_b(h), s=seq)
        prev = h
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == 3


def test_archive_then_dba_delete_verifies_and_more_is_caught(svc, tmp_path, clock):
    _fill(svc.db, 6)
    _seal_all(svc)
    later = clock.now().replace(year=clock.now().year + 30)
    res = svc.audit.archive(tmp_path / "a.jsonl", retention_days=2557, now=later, actor="cli:dba", role="admin")
    assert res.check.ok and res.rows >= 6
    _attacker(svc.db)
    _sql(svc.db, "DELETE FROM audit_log WHERE seq <= :s", s=res.last_seq)
    report = svc.audit.verify()
    assert report.ok and report.archived == res.rows, report
    _sql(svc.db, "DELETE FROM audit_log WHERE seq = :s", s=res.last_seq + 1)  # one more than was archived
    report = svc.audit.verify()
    assert not report.ok and report.first_broken_seq == res.last_seq + 1


def test_concurrent_writers_and_rollbacks_seal_exactly_once(svc):
    errors: list[BaseException] = []

    def writer(k):
        try:
            for i in range(25):
                try:
                    with svc.db.transaction() as s:
                        AuditRepository(s).append(actor=f"w{k}", role="admin", action="t", entity_type="x",
                                                  entity_id=str(i))
                        if i % 7 == 0:
                            raise RuntimeError("roll back: leaves a gap in the seqs")
                except RuntimeError:
                    pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = _seal_all(svc)
    assert report.rows == 4 * (25 - 4)
    with svc.db.read() as s:
        assert sum(b[3] for b in chain_q.batches(s)) == report.rows


#: payloads written to break the orjson fast path: where it would write other bytes, the exact rule decides
NASTY_PAYLOADS = [
    {}, {"a": 1, "B": 2, "b": [1.5, -0.0, 1e16, 1e-7, 123456789.123456789, 2 ** 63, -(2 ** 64) - 1]},
    {"nan": float("nan"), "inf": float("inf")}, {"s": "\u202e\x00\ud800 lone surrogate"}, {"emoji": "😀 é ß 中"},
    {"nested": {"z": {"y": [None, True, False, "", {"x": []}]}}}, {"1": "one", "10": "ten", "2": "two"},
    {"quote": "\"\\/\b\f\n\r\t"}, {"big": 10 ** 30}, {"f": 0.1 + 0.2},
]


@pytest.mark.parametrize("payload", NASTY_PAYLOADS, ids=range(len(NASTY_PAYLOADS)))
def test_fast_payload_hash_is_the_canonical_one(payload):
    from backend.compliance.audit_payload import payload_matches, stored_payload_matches

    good = sha256(canonical_json(payload))
    assert payload_matches(payload, good)
    assert not payload_matches({**payload, "extra": 1}, good)
    text = canonical_json(payload)  # what the database hands back: its text verifies, other text does not
    assert stored_payload_matches(text, good)
    assert not stored_payload_matches(text.replace("}", ',"x":0}', 1) if text != "{}" else '{"x":0}', good)
    assert not stored_payload_matches("{not json", good)


def test_sequencer_fails_over_when_the_leader_dies(pg_database, settings, clock):
    """Two sequencers: one is elected; its connection is killed; the standby takes over and seals."""
    import time

    from backend.compliance.audit_seal import CheckpointLog, checkpoint_dir, load_chain_keys
    from backend.compliance.audit_sequencer import Sequencer
    from backend.platform.db.engine import Database, make_engine

    keys = load_chain_keys(settings)
    log = CheckpointLog(checkpoint_dir(settings), keys)
    url = pg_database.engine.url.render_as_string(hide_password=False)
    events: list[tuple[str, bool]] = []
    dbs = [Database(make_engine(url, pool_size=2)) for _ in range(2)]
    seqs = [Sequencer(db, keys, log, checkpoint_every_s=0) for db in dbs]
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=seqs[i].run, args=(stops[i],),
                                kwargs={"idle_s": 0.02, "standby_s": 5.0 if i == 0 else 0.1,  # s0 won't retry soon
                                        "on_leader": lambda lead, i=i: events.append((f"s{i}", lead))})
               for i in range(2)]
    try:
        threads[0].start()
        deadline = time.monotonic() + 10
        while ("s0", True) not in events and time.monotonic() < deadline:
            time.sleep(0.02)
        threads[1].start()
        _fill(pg_database, 3)
        while time.monotonic() < deadline:
            with pg_database.read() as s:
                head = chain_q.last_batch(s)
            if head and head[1] >= 3:
                break
            time.sleep(0.05)
        assert head and head[1] >= 3 and ("s1", True) not in events  # the standby stood by
        with pg_database.transaction() as s:  # the leader's session dies (its lock goes with it)
            s.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                              "AND objid = :k AND granted"), {"k": chain_q.SEQUENCER_LOCK})
        stops[0].set()  # and its process stops retrying
        _fill(pg_database, 3, start=3)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with pg_database.read() as s:
                head = chain_q.last_batch(s)
            if ("s1", True) in events and head and head[1] >= 6:
                break
            time.sleep(0.05)
        assert ("s1", True) in events and head and head[1] >= 6, (events, head)
    finally:
        for stop in stops:
            stop.set()
        for t in threads:
            if t.is_alive() or t.ident:
                t.join(timeout=10)
        for db in dbs:
            db.dispose()
    report = build_services(settings, db=pg_database, clock=clock).audit.verify()
    assert report.ok and report.rows == 6 and report.pending == 0, report


def test_cli_sequence_once_seals_and_checkpoints(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from backend.cli import app
    from backend.container.settings import load_settings

    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CREDITRISK_AUDIT__INLINE_SEQUENCING", "false")
    svc = build_services(load_settings(), migrate=True)
    _fill(svc.db, 3)
    svc.close()
    res = CliRunner().invoke(app, ["audit", "verify"])
    assert res.exit_code == 0 and "3 pending" in res.output, res.output
    res = CliRunner().invoke(app, ["audit", "sequence", "--once"])
    assert res.exit_code == 0 and "sealed 3 rows; checkpoint batch 1 through seq 3" in res.output, res.output
    res = CliRunner().invoke(app, ["audit", "verify"])
    assert res.exit_code == 0 and "audit chain intact: 3 rows" in res.output and "0 pending" in res.output, res.output


def test_explicit_seals_and_inline_seals_in_threads_do_not_deadlock(svc):
    """One thread writes (sealing inline after each commit) while another seals and checkpoints."""
    done = threading.Event()
    errors: list[BaseException] = []

    def sealer():
        try:
            while not done.is_set():
                svc.audit.seal()
                svc.audit.checkpoint()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=sealer)
    t.start()
    try:
        _fill(svc.db, 30)
    finally:
        done.set()
        t.join(timeout=60)
    assert not t.is_alive() and not errors
    report = _seal_all(svc)
    assert report.rows == 30
