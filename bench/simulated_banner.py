"""The "simulated data" banner's count (issue 20, item 7): every page labels itself when the book holds
simulated applications, by counting them (:meth:`BookService.simulated_count`). Without an index on
``applications.source`` that count reads the whole table (146-193 ms warm on the default history, seconds
cold); migration 0014 adds ``ix_applications_source``.

Run: ``.venv/bin/python bench/simulated_banner.py [--rows 120000] [--repeat 20]``

Builds a SQLite database at head in a temporary folder, fills ``applications`` with ``--rows`` rows of a
realistic width (each with its ~94-feature JSON, as the simulator writes them), then times the banner's
query through the service, warm (median of ``--repeat``) and cold (a new connection and the OS cache as it
is), first without the index (the baseline: dropped for the measurement) and then with it, in this one run,
and prints the ratio. Only this query is measured, not the whole decision page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from backend.decisioning import BookService
from backend.platform.db.engine import Database, make_engine


def _fill(db: Database, rows: int) -> None:
    features = json.dumps({f"f{i}": i * 1.5 for i in range(94)})
    stmt = sa.text("INSERT INTO applications (id, external_id, applicant_id, features, protected, loan_amount, "
                   "applied_at, created_at, source, ai_visible) VALUES (:id, :ext, :app, :f, '{}', 1000, "
                   "'2026-06-06 00:00:00.000000', '2026-06-06 00:00:00.000000', :src, 1)")
    with db.engine.begin() as c:
        for lo in range(0, rows, 10_000):
            c.execute(stmt, [{"id": uuid.uuid4().hex, "ext": f"ops-{i}", "app": f"CUS-{i}", "f": features,
                              "src": "simulated" if i % 50 else "console"} for i in range(lo, min(rows, lo + 10_000))])


def _time(path: Path, repeat: int) -> tuple[float, float, int]:
    db = Database(make_engine(f"sqlite:///{path}"))
    book = BookService(db)
    t0 = time.perf_counter()
    n = book.simulated_count()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        book.simulated_count()
        warm.append(time.perf_counter() - t0)
    db.dispose()
    return cold, statistics.median(warm), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=120_000)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = Database(make_engine(f"sqlite:///{path}"))
        db.migrate()
        _fill(db, a.rows)
        with db.engine.begin() as c:
            c.execute(sa.text("DROP INDEX ix_applications_source"))
        db.dispose()
        before = _time(path, a.repeat)
        db = Database(make_engine(f"sqlite:///{path}"))
        with db.engine.begin() as c:
            c.execute(sa.text("CREATE INDEX ix_applications_source ON applications (source)"))
        db.dispose()
        after = _time(path, a.repeat)
    assert before[2] == after[2]
    print(f"simulated_count over {a.rows:,} applications ({after[2]:,} simulated), SQLite:")
    print(f"  before (no index, baseline): cold {before[0] * 1000:8.1f} ms   warm {before[1] * 1000:8.2f} ms")
    print(f"  after  (ix_applications_source): cold {after[0] * 1000:8.1f} ms   warm {after[1] * 1000:8.2f} ms")
    print(f"  ratio before/after: cold {before[0] / after[0]:.1f}x   warm {before[1] / after[1]:.1f}x")


if __name__ == "__main__":
    main()
