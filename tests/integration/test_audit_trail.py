"""The audit trail's console features on SQLite and PostgreSQL: filters, counting, paging, the
formula-safe CSV export (and its own audit row), retention, archives and archive verification."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from signing_key import SESSION_SIGNING_KEY
from typer.testing import CliRunner

from backend.compliance.audit import (
    ARCHIVE_EXISTS,
    EXPORT_COLUMNS,
    EXPORTED,
    ArchiveError,
    ExportTooLarge,
    verify_archive,
)
from backend.compliance.audit_queries import (
    AuditFilter,
    AuditRepository,
    canonical_json,
    row_hash_v2,
    sha256,
)
from backend.domain.csvsafe import DANGEROUS_PREFIXES

T0 = datetime(2018, 1, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # the `clock` fixture's time
SEVEN_YEARS = 2557

#: Text a spreadsheet would run as a formula, plus a few harmless look-alikes.
FORMULAS = ["=1+1", "+1+1", "-2+3", "@SUM(A1:A2)", "\tTAB=1", "\rCR=1", "=HYPERLINK(\"http://x\",\"click\")",
            "=cmd|' /C calc'!A0", "-", "@"]


def _append(db, rows):
    """rows: (actor, action, entity_type, entity_id, at, payload) tuples, appended in order."""
    with db.transaction() as s:
        repo = AuditRepository(s)
        for actor, action, etype, eid, at, payload in rows:
            repo.append(actor=actor, role="admin", action=action, entity_type=etype, entity_id=eid,
                        payload=payload, at=at)


def _sample(db):
    _append(db, [
        ("alice", "login", "session", "s1", T0, {"client": "x"}),
        ("alice", "scored", "prediction", "p1", T0 + timedelta(days=1), {"pd": 0.12}),
        ("bob", "scored", "prediction", "p2", T0 + timedelta(days=2), {"pd": 0.5}),
        ("bob", "override", "decision", "d1", T0 + timedelta(days=2, hours=23), {"reason": "=HYPERLINK(\"x\")"}),
        ("carol", "login", "session", "s2", T0 + timedelta(days=3), {}),
        ("alice", "override", "decision", "p1", T0 + timedelta(days=4), {"note": "entity id shared with a prediction"}),
    ])


# -- filters and counting -------------------------------------------------------------------------
@pytest.mark.parametrize("f,expected", [
    (AuditFilter(), [6, 5, 4, 3, 2, 1]),
    (AuditFilter(actor="alice"), [6, 2, 1]),
    (AuditFilter(action="scored"), [3, 2]),
    (AuditFilter(entity_type="decision"), [6, 4]),
    (AuditFilter(entity_id="p1"), [6, 2]),
    (AuditFilter(entity_type="prediction", entity_id="p1"), [2]),  # type AND id
    (AuditFilter(actor="bob", action="override"), [4]),
    (AuditFilter(since=T0 + timedelta(days=2)), [6, 5, 4, 3]),  # since inclusive
    (AuditFilter(until=T0 + timedelta(days=3)), [4, 3, 2, 1]),  # until exclusive
    (AuditFilter(since=T0 + timedelta(days=1), until=T0 + timedelta(days=3)), [4, 3, 2]),
    (AuditFilter(through_seq=3), [3, 2, 1]),
    (AuditFilter(actor="nobody"), []),
    (AuditFilter(actor="ALICE"), []),  # exact match
], ids=lambda v: str(v) if isinstance(v, list) else repr(v.describe()))
def test_filters_and_counts(services, f, expected):
    _sample(services.db)
    page = services.audit.search(f, limit=100)
    assert [r["seq"] for r in page.rows] == expected
    assert page.total == len(expected) == services.audit.count_matching(f)


def test_paging_covers_every_row_once(services):
    _sample(services.db)
    seen = []
    for offset in range(0, 6, 4):
        page = services.audit.search(AuditFilter(), limit=4, offset=offset)
        assert page.total == 6
        seen += [r["seq"] for r in page.rows]
    assert seen == [6, 5, 4, 3, 2, 1]


def test_choices_list_what_is_present(services):
    _sample(services.db)
    c = services.audit.choices()
    assert c["action"] == ["login", "override", "scored"]
    assert c["actor"] == ["alice", "bob", "carol"]
    assert c["entity_type"] == ["decision", "prediction", "session"]


def test_rows_carry_everything_needed_to_recompute_hashes(services):
    _sample(services.db)
    for r in reversed(services.audit.search(AuditFilter(), limit=100).rows):
        assert r["prev_hash"] == "" and sha256(canonical_json(r["payload"])) == r["payload_hash"]  # sealed in batches
        assert row_hash_v2(uuid.UUID(r["id"]), datetime.fromisoformat(r["at"]), r["actor"], r["role"], r["action"],
                           r["entity_type"], r["entity_id"], r["payload_hash"]) == r["row_hash"]


# -- CSV export -----------------------------------------------------------------------------------
def _read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def _unquote(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(DANGEROUS_PREFIXES) else cell


def test_export_neutralises_every_formula_and_round_trips(services):
    rows = [(text, text, text, text, T0 + timedelta(minutes=i), {"text": text, "n": i})
            for i, text in enumerate(FORMULAS)]
    rows.append(("dave", "note", "decision", "d9", T0 + timedelta(hours=1),
                 {"reason": "=HYPERLINK(\"http://evil\",\"x\")", "multi": "line1\n=line2", "q": "a\"b,c"}))
    _append(services.db, rows)
    export = services.audit.export_csv(AuditFilter())
    parsed = _read_csv(export.data)
    assert export.rows == len(parsed) == len(rows)
    assert list(parsed[0]) == list(EXPORT_COLUMNS)
    for cell in (c for r in parsed for c in r.values()):
        assert not cell.startswith(DANGEROUS_PREFIXES), repr(cell)
    for (actor, action, etype, eid, _, payload), got in zip(rows, parsed, strict=True):  # oldest first
        assert [_unquote(got[k]) for k in ("actor", "action", "entity_type", "entity_id")] == [actor, action, etype, eid]
        assert json.loads(got["payload"]) == payload
        # an examiner can recompute both hashes from the file alone
        assert sha256(got["payload"]) == got["payload_hash"]
        assert row_hash_v2(uuid.UUID(got["id"]), datetime.fromisoformat(got["at"]), _unquote(got["actor"]),
                           got["role"], _unquote(got["action"]), _unquote(got["entity_type"]),
                           _unquote(got["entity_id"]), got["payload_hash"]) == got["row_hash"]
    assert all(r["prev_hash"] == "" for r in parsed)  # their order is sealed by the sequencer's batches


def test_export_honours_the_filters_and_pins_the_head(services):
    _sample(services.db)
    export = services.audit.export_csv(AuditFilter(actor="alice"))
    assert export.filters.through_seq == 6 and export.rows == 3
    assert [r["seq"] for r in _read_csv(export.data)] == ["1", "2", "6"]
    services.audit.record(actor="alice", role="admin", action="login", entity_type="session", entity_id="s3")
    again = services.audit.export_csv(export.filters)  # the same selection later: the same file
    assert again.data == export.data and again.sha256 == export.sha256


def test_each_export_writes_exactly_one_audit_row(services):
    _sample(services.db)
    f = AuditFilter(action="override", since=T0)
    export = services.audit.export_csv(f)
    before = services.audit.count()
    services.audit.record_export(export, actor="riskmanager", role="risk_manager")
    assert services.audit.count() == before + 1
    row = services.audit.search(AuditFilter(action=EXPORTED), limit=10).rows
    assert len(row) == 1
    assert row[0]["actor"] == "riskmanager" and row[0]["entity_type"] == "audit_export"
    assert row[0]["entity_id"] == export.sha256
    assert row[0]["payload"]["rows"] == 2
    assert row[0]["payload"]["filters"] == {"action": "override", "since": T0.isoformat(), "through_seq": 6}
    services.audit.record_export(export, actor="riskmanager", role="risk_manager")  # a second download
    assert services.audit.count() == before + 2
    assert services.audit.verify().ok


def test_export_refuses_more_rows_than_the_limit(services):
    _sample(services.db)
    with pytest.raises(ExportTooLarge, match="6 rows match"):
        services.audit.export_csv(AuditFilter(), max_rows=5)


# -- retention and archives -------------------------------------------------------------------------
def _aged(db, *, old: int, new: int):
    """``old`` rows written eight years before NOW, then ``new`` rows a day before it; one transaction
    each, so each is sealed as its own batch (an archive takes whole batches)."""
    rows = ([("alice", "login", "session", f"o{i}", NOW - timedelta(days=365 * 8) + timedelta(minutes=i),
                  {"i": i, "text": FORMULAS[i % len(FORMULAS)]}) for i in range(old)]
            + [("bob", "login", "session", f"n{i}", NOW - timedelta(days=1) + timedelta(minutes=i), {"i": i})
               for i in range(new)])
    for row in rows:
        _append(db, [row])


def test_retention_report(services):
    _aged(services.db, old=4, new=3)
    r = services.audit.retention(SEVEN_YEARS, NOW)
    assert r.cutoff == NOW - timedelta(days=SEVEN_YEARS)
    assert (r.total_rows, r.past_retention, r.older_than_cutoff, r.first_kept_seq, r.oldest_seq) == (7, 4, 4, 5, 1)
    assert r.oldest_at == NOW - timedelta(days=365 * 8)
    assert services.audit.retention(SEVEN_YEARS * 2, NOW).past_retention == 0


def test_empty_table_retention(services):
    r = services.audit.retention(SEVEN_YEARS, NOW)
    assert (r.total_rows, r.past_retention, r.oldest_seq) == (0, 0, None)


def _delete_as_dba(db, last_seq):
    """The README's DBA step, statement for statement; afterwards DELETE is refused again."""
    with db.transaction() as s:
        if db.dialect == "postgresql":
            s.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
            s.execute(sa.text("DELETE FROM audit_log WHERE seq <= :n"), {"n": last_seq})
            s.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update"))
        else:
            s.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            s.execute(sa.text("DELETE FROM audit_log WHERE seq <= :n"), {"n": last_seq})
            s.execute(sa.text("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                              "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.transaction() as s:
        s.execute(sa.text("DELETE FROM audit_log"))


def test_deleting_without_a_signed_archive_is_detected_whatever_anchor_is_given(services):
    _sample(services.db)
    kept = services.audit.search(AuditFilter(through_seq=3), limit=1).rows[0]
    _delete_as_dba(services.db, 2)  # without an archive: no signed checkpoint covers the rows
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == 1 and "deleted" in report.detail
    assert not services.audit.verify((kept["row_hash"], kept["prev_hash"])).ok


def test_archive_writes_the_rows_past_retention_and_verifies(services, tmp_path):
    _aged(services.db, old=5, new=2)
    out = tmp_path / "archive" / "audit-2018.jsonl"
    res = services.audit.archive(out, retention_days=SEVEN_YEARS, now=NOW, actor="cli:dba", role="admin")
    assert (res.rows, res.first_seq, res.last_seq) == (5, 1, 5) and res.check.ok
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["start_prev_mac"] == "0" * 64 and header["rows"] == 5 and header["version"] == 2
    rows = [json.loads(x) for x in lines[1:]]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert header["anchor"] == header["batches"][-1]["mac"] == res.anchor  # the last archived batch's MAC
    assert verify_archive(out).ok
    # the archive is an audited event that records its anchor; nothing was deleted
    rec = services.audit.search(AuditFilter(action="audit_archived"), limit=5).rows
    assert len(rec) == 1 and rec[0]["payload"]["anchor"] == res.anchor and rec[0]["payload"]["last_seq"] == 5
    assert services.audit.count() == 8
    with pytest.raises(ArchiveError, match="never overwritten"):
        services.audit.archive(out, retention_days=SEVEN_YEARS, now=NOW, actor="cli:dba", role="admin")
    assert ARCHIVE_EXISTS.split("{path}")[1].strip() in str(ArchiveError(ARCHIVE_EXISTS.format(path=out)))

    # the DBA removes the archived rows; the live rows still verify (a signed checkpoint covers the archive)
    _delete_as_dba(services.db, res.last_seq)
    report = services.audit.verify()
    assert report.ok and report.rows == 3 and report.archived == 5
    # a second archive continues from the first one's anchor
    services.audit.record(actor="x", role="admin", action="login", entity_type="session", entity_id="z")
    later = NOW + timedelta(days=SEVEN_YEARS + 10)
    res2 = services.audit.archive(tmp_path / "second.jsonl", retention_days=SEVEN_YEARS, now=later,
                                  actor="cli:dba", role="admin")
    assert res2.check.ok and res2.check.header["start_prev_mac"] == res.anchor


def test_deleting_more_than_was_archived_is_detected(services, tmp_path):
    _aged(services.db, old=3, new=3)
    res = services.audit.archive(tmp_path / "a.jsonl", retention_days=SEVEN_YEARS, now=NOW, actor="d", role="admin")
    _delete_as_dba(services.db, res.last_seq + 1)
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == res.last_seq + 1 and "deleted" in report.detail


def test_nothing_to_archive(services, tmp_path):
    _aged(services.db, old=0, new=2)
    with pytest.raises(ArchiveError, match="no sealed batch of audit rows is wholly past the retention period"):
        services.audit.archive(tmp_path / "a.jsonl", retention_days=SEVEN_YEARS, now=NOW, actor="d", role="admin")
    assert not (tmp_path / "a.jsonl").exists()


def _edit(path, lineno, fn):
    lines = path.read_text().splitlines()
    fn(lines, lineno - 1)
    path.write_text("\n".join(lines) + "\n")


def _set(field, value):
    def fn(lines, i):
        r = json.loads(lines[i])
        r[field] = value
        lines[i] = json.dumps(r)
    return fn


#: how -> (edit, line edited, line reported, words in the report). The file is a header and 5 rows;
#: a problem found only at the end is reported at the line after the last.
TAMPER = {
    "payload": (_set("payload", {"i": 99}), 3, 3, "payload changed"),
    "actor": (_set("actor", "mallory"), 4, 4, "row fields changed"),
    "at": (_set("at", "2017-01-01T00:00:00.000000+00:00"), 2, 2, "row fields changed"),
    "line-removed": (lambda lines, i: lines.pop(i), 3, 3, "row 2 was deleted"),
    "lines-swapped": (lambda lines, i: lines.__setitem__(slice(i, i + 2), [lines[i + 1], lines[i]]), 3, 4,
                      "rows reordered"),
    "seq-reordered": (_set("seq", 1), 3, 3, "rows reordered"),
    "garbage": (lambda lines, i: lines.__setitem__(i, "{not json"), 5, 5, "not a valid audit row"),
    "last-removed": (lambda lines, i: lines.pop(i), 6, 6, "row 5 was deleted"),
    "header": (_set("format", "something-else"), 1, 1, "header"),
    "anchor": (_set("anchor", "f" * 64), 1, 1, "anchor"),
    "batch-root": (lambda lines, i: lines.__setitem__(i, lines[i].replace('"root": "', '"root": "0')), 1, 2,
                   "Merkle root"),
}


@pytest.mark.parametrize("how", list(TAMPER))
def test_tampered_archive_is_detected(services, tmp_path, how):
    _aged(services.db, old=5, new=1)
    out = tmp_path / "a.jsonl"
    services.audit.archive(out, retention_days=SEVEN_YEARS, now=NOW, actor="d", role="admin")
    assert verify_archive(out).ok
    fn, edited, reported, needle = TAMPER[how]
    _edit(out, edited, fn)
    check = verify_archive(out)
    assert not check.ok
    assert check.first_broken_line == reported and needle in check.detail, (check.first_broken_line, check.detail)


def test_unreadable_archive(tmp_path):
    assert not verify_archive(tmp_path / "missing.jsonl").ok
    (tmp_path / "empty.jsonl").write_text("")
    assert verify_archive(tmp_path / "empty.jsonl").first_broken_line == 1


# -- the command line (SQLite under a tmp data dir) -------------------------------------------------
def test_cli_retention_archive_and_verify(tmp_path, monkeypatch):
    from backend.cli import app
    from backend.container import build_services
    from backend.container.settings import load_settings

    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CREDITRISK_AUDIT__RETENTION_DAYS", "800")
    svc = build_services(load_settings(), migrate=True)
    now = datetime.now(UTC)
    for row in ([("alice", "login", "session", str(i), now - timedelta(days=900 - i), {"i": i}) for i in range(3)]
                + [("bob", "login", "session", "new", now - timedelta(days=1), {})]):
        _append(svc.db, [row])  # each sealed as its own batch: an archive takes whole batches
    svc.close()
    run = CliRunner().invoke

    res = run(app, ["audit", "retention"])
    assert res.exit_code == 0, res.output
    assert "800 days" in res.output and "past retention   3" in res.output

    out = tmp_path / "arch.jsonl"
    res = run(app, ["audit", "archive", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "archived 3 rows (seq 1..3)" in res.output and "archive verified" in res.output
    res = run(app, ["audit", "verify", "--archive", str(out)])
    assert res.exit_code == 0 and "archive intact: 3 rows" in res.output, res.output
    assert run(app, ["audit", "archive", "--out", str(out)]).exit_code == 2  # never overwritten

    _edit(out, 3, _set("entity_id", "forged"))
    res = run(app, ["audit", "verify", "--archive", str(out)])
    assert res.exit_code == 1 and "archive BROKEN at line 3" in res.output, res.output
    res = run(app, ["audit", "verify"])
    assert res.exit_code == 0 and "audit chain intact: 5 rows" in res.output, res.output

    monkeypatch.setenv("CREDITRISK_AUDIT__RETENTION_DAYS", "700")
    res = run(app, ["audit", "retention"])
    assert res.exit_code == 2 and "CREDITRISK_AUDIT__RETENTION_DAYS" in res.output and "Regulation B" in res.output
