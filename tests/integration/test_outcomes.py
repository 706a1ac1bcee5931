"""Outcome import on SQLite and PostgreSQL: good files, malformed files rejected row by row with a
report, strict mode, nothing half-written, one audit row per import, Parquet, `creditrisk outcomes`."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from backend.compliance.audit_queries import AuditRepository
from backend.decisioning import outcomes_file as oc
from backend.decisioning.outcomes_file import OutcomeFileError
from backend.decisioning.outcomes_queries import OutcomeImportRepository
from backend.platform.db.engine import Database
from backend.platform.db.tables_book import Application, Outcome
from backend.platform.db.tables_governance import AuditLog

SESSION_SIGNING_KEY = __import__("os").environ["CREDITRISK_MODEL__SIGNING_KEY"]  # the root conftest's


APPLIED = datetime(2025, 10, 1, 14, 30, tzinfo=UTC)  # the clock fixture is 2026-01-15 09:00 UTC
HEADER = "application_id,funded,default_flag,observation_date\n"


def _count(db: Database, table, *where) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _stored(db: Database) -> dict[str, Outcome]:
    with db.read() as s:
        return {str(o.application_id): o for o in s.execute(select(Outcome)).scalars()}


def _imports(db: Database) -> list[AuditLog]:
    with db.read() as s:
        return list(s.execute(select(AuditLog).where(AuditLog.action == "outcomes_imported")
                              .order_by(AuditLog.seq)).scalars())


@pytest.fixture
def o(services, tmp_path):
    """Twelve applications (ids and external ids EXT-0..EXT-11), the outcome service and a file writer."""
    apps = [{"id": uuid.uuid4(), "external_id": f"EXT-{i}", "applicant_id": f"p{i}", "features": {},
             "protected": {}, "loan_amount": 5000.0, "applied_at": APPLIED, "source": "simulated"} for i in range(12)]
    with services.db.transaction() as s:
        s.execute(insert(Application), apps)

    def write(body: str, name: str = "outcomes.csv"):
        p = tmp_path / name
        p.write_text(body, encoding="utf-8")
        return p

    def imp(body: str, **kw):
        return services.outcomes.import_file(write(body), actor="tester", role="admin", **kw)

    return SimpleNamespace(svc=services.outcomes, services=services, db=services.db, ids=[str(a["id"]) for a in apps],
                           write=write, imp=imp, tmp=tmp_path)


def test_good_file_by_id_and_external_id(o):
    body = HEADER + (f"{o.ids[0]},true,false,2026-01-10\n"
                     f"EXT-1,yes,1,2026-01-10T08:00:00Z\n"
                     f"{o.ids[2].upper()},0,,2025-12-01\n"
                     f" EXT-3 ,No,no,2025-12-31 23:00:00+01:00\n")
    r = o.imp(body)
    assert (r.rows, r.accepted, r.inserted, r.updated, r.rejected, r.written) == (4, 4, 4, 0, [], True)
    got = _stored(o.db)
    assert {k: (v.funded, v.defaulted) for k, v in got.items()} == {
        o.ids[0]: (True, False), o.ids[1]: (True, True), o.ids[2]: (False, None), o.ids[3]: (False, False)}
    assert got[o.ids[1]].observed_at == datetime(2026, 1, 10, 8, tzinfo=UTC)
    assert got[o.ids[3]].observed_at == datetime(2025, 12, 31, 22, tzinfo=UTC)  # offset converted to UTC
    assert {v.batch_id for v in got.values()} == {r.batch_id}
    (row,) = _imports(o.db)
    assert (row.actor, row.role, row.entity_id) == ("tester", "admin", r.batch_id)
    assert row.payload == {"file": "outcomes.csv", "sha256": r.sha256, "batch_id": r.batch_id, "rows": 4,
                           "accepted": 4, "inserted": 4, "updated": 0, "rejected": 0, "strict": False}
    import hashlib
    assert r.sha256 == hashlib.sha256(body.encode()).hexdigest()
    views = o.svc.outcomes_for([o.ids[0], o.ids[5], "not-a-uuid"])
    assert list(views) == [o.ids[0]] and views[o.ids[0]].funded is True


def test_malformed_rows_rejected_one_by_one_and_valid_rows_written(o):
    body = HEADER + "\n".join([
        f"{o.ids[0]},true,false,2026-01-10",      # 2 ok
        ",true,false,2026-01-10",                 # 3 missing id
        "EXT-404,true,false,2026-01-10",          # 4 unknown external id
        f"{uuid.uuid4()},true,false,2026-01-10",  # 5 unknown uuid
        "EXT-1,maybe,false,2026-01-10",           # 6 bad boolean
        "EXT-2,true,perhaps,2026-01-10",          # 7 bad default flag
        "EXT-3,true,false,10/01/2026",            # 8 bad date
        "EXT-4,true,false,2026-02-01",            # 9 future
        "EXT-5,false,true,2026-01-10",            # 10 default on unfunded
        "",                                       # 11 blank line: ignored, still counted
        "EXT-6,true,false,2025-09-30",            # 12 before the application date
        "EXT-7,true,false,",                      # 13 empty date
        "EXT-8,,false,2026-01-10",                # 14 empty funded
    ]) + "\n"
    r = o.imp(body)
    reasons = {row: reason for row, _id, reason in r.rejected}
    assert r.accepted == 1 and r.inserted == 1 and r.rows == 12 and len(r.rejected) == 11
    assert reasons[3] == oc.R_MISSING_ID
    assert reasons[4] == reasons[5] == oc.R_UNKNOWN_ID
    assert reasons[6] == oc.R_BAD_FUNDED + " (got 'maybe')"
    assert reasons[7] == oc.R_BAD_DEFAULT + " (got 'perhaps')"
    assert reasons[8] == oc.R_BAD_DATE + " (got '10/01/2026')"
    assert reasons[9] == oc.R_FUTURE
    assert reasons[10] == oc.R_DEFAULT_UNFUNDED
    assert reasons[12] == oc.R_BEFORE_APP + " (2025-10-01)"
    assert reasons[13] == oc.R_DATE_EMPTY and reasons[14] == oc.R_FUNDED_EMPTY
    assert 11 not in reasons
    assert [x.application_id for x in r.rejected if x.row == 4] == ["EXT-404"]
    assert list(_stored(o.db)) == [o.ids[0]]
    assert len(_imports(o.db)) == 1 and _imports(o.db)[0].payload["rejected"] == 11
    frame = r.to_frame()
    assert list(frame.columns) == ["row", "application_id", "reason"] and len(frame) == 11


def test_several_reasons_on_one_row_and_observation_on_application_day(o):
    r = o.imp(HEADER + "EXT-0,nope,x,2027-01-01\nEXT-1,true,false,2025-10-01\n")
    assert r.accepted == 1  # the application's own day is not "before" it
    (bad,) = r.rejected
    assert bad.reason.split("; ") == [oc.R_BAD_FUNDED + " (got 'nope')", oc.R_BAD_DEFAULT + " (got 'x')",
                                      oc.R_FUTURE]


def test_duplicates_rejected_all_copies_even_by_id_and_external_id(o):
    r = o.imp(HEADER + f"EXT-0,true,false,2026-01-10\n{o.ids[0]},true,true,2026-01-11\nEXT-1,true,false,2026-01-10\n")
    assert r.accepted == 1
    assert [(x.row, x.reason) for x in r.rejected] == [(2, oc.R_DUPLICATE + " (rows 2, 3)"),
                                                       (3, oc.R_DUPLICATE + " (rows 2, 3)")]
    assert list(_stored(o.db)) == [o.ids[1]]


def test_newer_observation_replaces_older_is_stale(o):
    first = o.imp(HEADER + "EXT-0,true,,2025-12-01\nEXT-1,true,false,2026-01-10\n")
    assert first.inserted == 2
    second = o.imp(HEADER + "EXT-0,true,true,2026-01-12\nEXT-1,true,true,2026-01-05\n")
    assert (second.inserted, second.updated, second.accepted) == (0, 1, 1)
    (stale,) = second.rejected
    assert stale.row == 3 and stale.reason == oc.R_STALE + " (stored: 2026-01-10T00:00:00Z)"
    got = _stored(o.db)
    assert (got[o.ids[0]].defaulted, got[o.ids[0]].observed_at) == (True, datetime(2026, 1, 12, tzinfo=UTC))
    assert got[o.ids[0]].batch_id == second.batch_id and got[o.ids[1]].batch_id == first.batch_id
    assert got[o.ids[1]].defaulted is False
    again = o.imp(HEADER + "EXT-0,true,true,2026-01-12\n")  # the same observation again: replaces, no error
    assert (again.updated, again.rejected) == (1, [])
    assert _count(o.db, Outcome) == 2 and len(_imports(o.db)) == 3


def test_strict_mode_writes_nothing_when_a_row_is_rejected(o):
    before = _count(o.db, AuditLog)
    r = o.imp(HEADER + "EXT-0,true,false,2026-01-10\nEXT-404,true,false,2026-01-10\n", strict=True)
    assert (r.valid, r.accepted, r.written, len(r.rejected)) == (1, 0, False, 1)
    assert _count(o.db, Outcome) == 0 and _count(o.db, AuditLog) == before
    ok = o.imp(HEADER + "EXT-0,true,false,2026-01-10\n", strict=True)
    assert ok.written and ok.accepted == 1


@pytest.mark.parametrize("body, missing", [
    ("application_id,funded,observation_date\nEXT-0,true,2026-01-10\n", "default_flag (or defaulted)"),
    ("id,funded,default_flag,date\nEXT-0,true,false,2026-01-10\n", "application_id, observation_date"),
    ("", "application_id, funded, default_flag (or defaulted), observation_date"),
])
def test_missing_columns_refuse_the_whole_file(o, body, missing):
    if not body:
        with pytest.raises(OutcomeFileError, match="Cannot read"):
            o.imp(body)
        return
    with pytest.raises(OutcomeFileError) as e:
        o.imp(body)
    assert str(e.value) == oc.MISSING_COLUMNS.format(missing=missing)
    assert _count(o.db, Outcome) == 0 and _imports(o.db) == []


def test_unreadable_files_are_refused(o):
    with pytest.raises(OutcomeFileError, match="must end in .csv or .parquet"):
        o.svc.import_file(o.write("x", "outcomes.xlsx"), actor="t", role="admin")
    with pytest.raises(OutcomeFileError, match="Cannot read broken.parquet as Parquet"):
        o.svc.import_file(o.write("not parquet", "broken.parquet"), actor="t", role="admin")
    p = o.tmp / "latin1.csv"
    p.write_bytes(HEADER.encode() + "EXT-0,true,false,2026-01-10 caf\xe9\n".encode("latin-1"))
    with pytest.raises(OutcomeFileError, match="Cannot read latin1.csv as CSV"):
        o.svc.import_file(p, actor="t", role="admin")
    with pytest.raises(OutcomeFileError, match="both default_flag and defaulted"):
        o.imp("application_id,funded,default_flag,defaulted,observation_date\nEXT-0,1,0,0,2026-01-10\n")
    assert _count(o.db, Outcome) == 0


def test_defaulted_column_name_and_parquet_with_typed_columns(o):
    df = pd.DataFrame({"Application_ID": ["EXT-0", o.ids[1], "EXT-2"], "funded": [True, True, False],
                       "defaulted": pd.array([True, None, None], dtype="boolean"),
                       "observation_date": pd.to_datetime(["2026-01-10 00:00", "2026-01-11 12:00", "2026-01-09 00:00"]),
                       "extra": ["ignored", "x", "y"]})
    p = o.tmp / "outcomes.parquet"
    df.to_parquet(p)
    r = o.svc.import_file(p, actor="t", role="admin")
    assert (r.accepted, r.rejected) == (3, [])
    got = _stored(o.db)
    assert (got[o.ids[0]].defaulted, got[o.ids[1]].defaulted, got[o.ids[2]].funded) == (True, None, False)
    assert got[o.ids[1]].observed_at == datetime(2026, 1, 11, 12, tzinfo=UTC)
    bad = pd.DataFrame({"application_id": ["EXT-3", "EXT-4"], "funded": [1, 7], "default_flag": [0.0, None],
                        "observation_date": ["2026-01-10", "2026-01-10"]})
    p2 = o.tmp / "bad.parquet"
    bad.to_parquet(p2)
    r2 = o.svc.import_file(p2, actor="t", role="admin")
    assert r2.accepted == 1 and [(x.row, x.application_id) for x in r2.rejected] == [(2, "EXT-4")]  # Parquet: rows from 1


def test_exception_mid_import_leaves_nothing(o, monkeypatch):
    def boom(self, **kw):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(AuditRepository, "append", boom)
    before = _count(o.db, AuditLog)
    with pytest.raises(RuntimeError, match="audit store down"):
        o.imp(HEADER + "EXT-0,true,false,2026-01-10\nEXT-1,false,,2026-01-10\n")
    assert _count(o.db, Outcome) == 0 and _count(o.db, AuditLog) == before
    monkeypatch.undo()
    o.imp(HEADER + "EXT-0,true,false,2025-12-01\n")

    def boom_update(self, rows, now, batch):
        raise RuntimeError("disk full")

    monkeypatch.setattr(OutcomeImportRepository, "update", boom_update)
    with pytest.raises(RuntimeError, match="disk full"):
        o.imp(HEADER + "EXT-0,true,true,2026-01-10\nEXT-1,true,false,2026-01-10\n")  # an insert AND an update
    got = _stored(o.db)
    assert list(got) == [o.ids[0]] and got[o.ids[0]].defaulted is False and len(_imports(o.db)) == 1


def test_hostile_ids_are_data(o):
    """Formula-looking, NUL, very long and injection-looking ids: rejected as unknown, never executed."""
    body = HEADER + ('"=HYPERLINK(""http://x"")",true,false,2026-01-10\n'
                     "'; DROP TABLE outcomes; --,true,false,2026-01-10\n"
                     "a\x00b,true,false,2026-01-10\n"
                     + "X" * 500 + ",true,false,2026-01-10\n"
                     "EXT-0,true,false,2026-01-10\n")
    r = o.imp(body)
    assert r.accepted == 1 and [x.reason for x in r.rejected] == [oc.R_UNKNOWN_ID] * 4
    assert r.rejected[0].application_id == '=HYPERLINK("http://x")'
    assert len(r.rejected[3].application_id) == 200
    assert _count(o.db, Outcome) == 1


def test_cli_import_report_is_formula_safe_and_exit_codes(o, monkeypatch):
    """`creditrisk outcomes import` on the test's database (its own Services, the system clock)."""
    import os

    from typer.testing import CliRunner

    from backend.cli import app

    for k in list(os.environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.chdir(o.tmp)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(o.tmp / "var"))
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", o.db.engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    o.services.users.add("rita", role="risk_manager", password="a long enough password")
    good = o.write(HEADER + "EXT-0,true,false,2026-01-10\n", "good.csv")
    res = runner.invoke(app, ["outcomes", "import", str(good), "--as", "rita"], input="a long enough password\n")
    assert res.exit_code == 0, res.output
    assert "accepted    1" in res.output and "rejected    0" in res.output
    assert _imports(o.db)[-1].actor == "rita" and _imports(o.db)[-1].role == "risk_manager"

    bad = o.write(HEADER + '"=cmd|\' /C calc\'!A0",true,false,2026-01-10\n-2+3,true,false,2026-01-10\n'
                  "EXT-1,true,false,2026-01-10\n", "bad.csv")
    report = o.tmp / "report.csv"
    res = runner.invoke(app, ["outcomes", "import", str(bad), "--report", str(report)])
    assert res.exit_code == 1, res.output
    assert "row 2:" in res.output and oc.R_UNKNOWN_ID in res.output
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert [r["row"] for r in rows] == ["2", "3"]
    assert rows[0]["application_id"] == "'=cmd|' /C calc'!A0" and rows[1]["application_id"] == "'-2+3"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())

    res = runner.invoke(app, ["outcomes", "import", str(bad), "--strict"])
    assert res.exit_code == 1 and "nothing was written" in res.output
    missing = o.write("application_id,funded\nEXT-0,true\n", "missing.csv")
    res = runner.invoke(app, ["outcomes", "import", str(missing)])
    assert res.exit_code == 2 and "default_flag (or defaulted), observation_date" in " ".join(res.output.split())
    assert runner.invoke(app, ["outcomes", "import", str(good), "--as", "nobody"]).exit_code == 2
    tpl = runner.invoke(app, ["outcomes", "template"])
    assert tpl.exit_code == 0 and tpl.output.splitlines()[0] == HEADER.strip()
    assert len(tpl.output.splitlines()) == 2


def test_a_larger_file_round_trips(o):
    """Many rows through the vectorized path: every row accounted for, the stored values exact."""
    n = 3000
    with o.db.transaction() as s:
        s.execute(insert(Application), [
            {"id": uuid.uuid4(), "external_id": f"BULK-{i}", "applicant_id": "p", "features": {}, "protected": {},
             "loan_amount": 1.0, "applied_at": APPLIED + timedelta(minutes=i), "source": "simulated"} for i in range(n)])
    df = pd.DataFrame({"application_id": [f"BULK-{i}" for i in range(n)],
                       "funded": ["true" if i % 3 else "false" for i in range(n)],
                       "default_flag": ["1" if i % 3 and i % 7 == 0 else ("" if i % 3 == 0 else "0") for i in range(n)],
                       "observation_date": [f"2026-01-{1 + i % 14:02d}T{i % 24:02d}:15:00.123456Z" for i in range(n)]})
    r = o.svc.import_frame(df, actor="sim", role="admin", source_name="frame")
    assert (r.accepted, r.inserted, r.rejected) == (n, n, [])
    with o.db.read() as s:
        got = {e: (f, d, t) for e, f, d, t in s.execute(
            select(Application.external_id, Outcome.funded, Outcome.defaulted, Outcome.observed_at)
            .join(Outcome, Outcome.application_id == Application.id))}
    for i in (0, 1, 7, 14, 2999):
        f, d, t = got[f"BULK-{i}"]
        assert f is (i % 3 != 0) and d == (None if i % 3 == 0 else (i % 7 == 0))
        assert t == datetime(2026, 1, 1 + i % 14, i % 24, 15, 0, 123456, tzinfo=UTC)
    assert o.services.audit.verify().ok
