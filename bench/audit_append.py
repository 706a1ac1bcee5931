"""``append_many`` (every audited write's audit rows): the Core INSERT it uses against the ORM entity INSERT it
replaced, in the same run, on SQLite and on a scratch PostgreSQL database.

    .venv/bin/python bench/audit_append.py [--rows 4000] [--rounds 3] [--pg postgresql://postgres@127.0.0.1:5432/postgres | --no-pg]

Two shapes, each timed per audit row, the two paths interleaved round by round (so a busy machine slows both):

* ``batch``: transactions of 2,000 rows (the simulated history, batch files, grouped API requests);
* ``single``: transactions of one row (a lone API request, a console action).

The ORM path is the same function with ``insert(AuditLog)`` (the mapped class) instead of ``insert(table)``: the
ORM's bulk path sorts each row's keys into properties before the same statement. Medians of the rounds are
printed with the ratio old/new. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.compliance import (  # noqa: E402
    AuditEntry,
    append_many,
    audit_queries,  # noqa: E402
)
from backend.platform.db.engine import Database, make_engine  # noqa: E402
from backend.platform.db.tables_governance import AuditLog  # noqa: E402

CORE_TABLE = audit_queries._AUDIT_TABLE


def entries(n: int) -> list[AuditEntry]:
    """Audit entries shaped like the scoring path's (``application_scored`` with its payload)."""
    now = datetime.now(UTC)
    return [AuditEntry(actor="officer3", role="loan_officer", action="application_scored", entity_type="prediction",
                       entity_id=str(uuid.uuid4()), at=now + timedelta(microseconds=i),
                       payload={"application_id": str(uuid.uuid4()), "model_version": "v20261207-231807413-bcccd3",
                                "model_role": "primary", "engine": "compiled", "pd": 0.012345,
                                "recommendation": "approve", "reasons": ["R01", "R07", "R12", "R33"],
                                "feature_hash": "ab" * 20, "arm": "ai", "phase": "scaled", "ai_visible": True})
            for i in range(n)]


def timed(db: Database, target: Any, rows: int, per_txn: int) -> float:
    """Microseconds per audit row appending ``rows`` rows in transactions of ``per_txn``, with ``target``."""
    audit_queries._AUDIT_TABLE = target
    try:
        todo = entries(rows)
        t0 = time.perf_counter()
        for i in range(0, rows, per_txn):
            with db.transaction() as s:
                append_many(s, todo[i:i + per_txn])
        return (time.perf_counter() - t0) * 1e6 / rows
    finally:
        audit_queries._AUDIT_TABLE = CORE_TABLE


def run(label: str, db: Database, rows: int, rounds: int) -> None:
    for shape, per_txn, n in (("batch", 2000, rows), ("single", 1, max(rows // 8, 50))):
        timed(db, CORE_TABLE, min(n, 200), per_txn)  # warm both statements
        timed(db, AuditLog, min(n, 200), per_txn)
        old, new = [], []
        for _ in range(rounds):
            old.append(timed(db, AuditLog, n, per_txn))
            new.append(timed(db, CORE_TABLE, n, per_txn))
        o, c = statistics.median(old), statistics.median(new)
        print(f"{label:<11} {shape:<7} {n:>6,} rows  ORM entity {o:8.1f} us/row   Core {c:8.1f} us/row   "
              f"ratio {o / c:5.2f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (2-core machine)")
    with tempfile.TemporaryDirectory() as d:
        db = Database(make_engine(f"sqlite:///{d}/bench.db"))
        db.migrate()
        run("SQLite", db, args.rows, args.rounds)
        db.dispose()
    if not args.no_pg:
        from batch_score import _drop, _pg_database  # the scratch-database helpers of the batch bench

        url, (admin, name) = _pg_database(args.pg)
        try:
            db = Database(make_engine(url))
            db.migrate()
            run("PostgreSQL", db, args.rows, args.rounds)
            db.dispose()
        finally:
            _drop(admin, name)


if __name__ == "__main__":
    main()
