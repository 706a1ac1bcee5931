"""Outcome import speed: ``OutcomeService.import_file`` on a CSV of N outcomes, twice (inserts, then updates).

Run: ``.venv/bin/python bench/outcomes_import.py [--rows 150000] [--url postgresql+psycopg://.../EMPTY_DB]``

Creates N applications directly in a fresh database (a temporary SQLite file by default; with
``--url`` an empty, throw-away database that is migrated here), writes a CSV of N outcomes (half by
application UUID, half by external id, 70% funded, 10% of funded loans defaulted, 40 distinct
observation dates) and times the whole import: reading and hashing the file, validation, id
resolution, the writes and the audit row, committed. Prints wall time and process CPU time (the
CPU figure is the one to compare on a busy machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import insert

from backend.decisioning.outcomes import OutcomeService
from backend.platform.clock import FixedClock
from backend.platform.db.engine import Database, make_engine
from backend.platform.db.tables_book import Application


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=150_000)
    ap.add_argument("--url", default=None, help="an EMPTY throw-away database (default: a temporary SQLite file)")
    args = ap.parse_args()
    n, tmp = args.rows, tempfile.mkdtemp(prefix="bench-outcomes-")
    db = Database(make_engine(args.url or f"sqlite:///{tmp}/bench.db"))
    db.migrate()
    apps = [{"id": uuid.uuid4(), "external_id": f"ext-{i:07d}", "applicant_id": f"a{i}", "features": {},
             "protected": {}, "loan_amount": 1000.0, "applied_at": datetime(2025, 8, 1, tzinfo=UTC) + timedelta(minutes=i),
             "source": "simulated"} for i in range(n)]
    with db.transaction() as s:
        for i in range(0, n, 5000):
            s.execute(insert(Application), apps[i:i + 5000])
    rng = np.random.default_rng(1)
    funded = rng.random(n) < 0.7
    dates = pd.date_range("2025-12-01", periods=40, freq="D").strftime("%Y-%m-%d").to_numpy()
    df = pd.DataFrame({"application_id": [a["external_id"] if i % 2 else str(a["id"]) for i, a in enumerate(apps)],
                       "funded": np.where(funded, "true", "false"),
                       "default_flag": np.where(funded, np.where(rng.random(n) < 0.1, "1", "0"), ""),
                       "observation_date": dates[rng.integers(0, len(dates), n)]})
    path = f"{tmp}/outcomes.csv"
    df.to_csv(path, index=False)
    svc = OutcomeService(db, FixedClock(datetime(2026, 1, 15, tzinfo=UTC)))
    for label in ("insert", "update"):
        t0, c0 = time.perf_counter(), time.process_time()
        r = svc.import_file(path, actor="bench", role="admin")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{db.dialect} {label}: {n:,} rows in {wall:.2f} s wall ({n / wall:,.0f} rows/s), {cpu:.2f} s CPU; "
              f"accepted {r.accepted:,} (inserted {r.inserted:,}, updated {r.updated:,}), rejected {len(r.rejected):,}")
    db.dispose()


if __name__ == "__main__":
    main()
