"""`creditrisk score` on a file: the row path it replaced vs the chunked array path, in the same run (issue 21 item 7).

Run: ``.venv/bin/python bench/batch_score.py [--rows 1000000] [--old-rows 20000] [--pg-rows 100000]
[--pg postgresql://postgres@127.0.0.1:5432/postgres | --no-pg]``

Each measurement runs in a fresh process (so its peak memory is its own) that builds the services, loads
the model and warms the kernels on 2,000 rows first; the time measured is ``run_score`` alone (start-up
excluded), wall and CPU. Printed per line: rows, seconds, rows/s (wall and CPU), peak resident memory of
the whole process (start-up included) and its resident memory before the run.

- ``old``: the row path (the whole file in a frame, one dict per row, validation and one
  ScoreResult per row), on ``--old-rows`` rows of the CSV, dry run and recorded;
- ``new``: the chunked path on the same file, then on ``--rows`` rows as Parquet and as CSV (dry run);
- recorded on a scratch PostgreSQL database (created and dropped) with ``--pg-rows`` rows.

Ratios are printed against ``old`` on the same rows. The model is the API bench's (default ensemble size,
trained once on 4,000 synthetic rows, cached under var/bench/). The machine's load average is printed:
on a shared machine, wall figures move with it; CPU seconds move less. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_DRY = 200_000
TARGET_PG = 20_000


def _rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (``VmHWM``: its peak). Not ``ru_maxrss``: Linux carries it across exec, so a
    worker started by this (large) process would report the parent's peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def worker(mode: str, data: Path, path: Path, database_url: str, persist: bool) -> None:
    """One measurement (in its own process): prints one JSON line."""
    from rich.console import Console

    from backend.container import build_services
    from backend.container.settings import load_settings
    from backend.scoring import batch

    db = {"url": database_url} if database_url else {}
    svc = build_services(load_settings(data_dir=data, database=db, model={"registry_dir": data / "models"}),
                         migrate=True)
    err = Console(stderr=True, quiet=True)

    def fail(msg: str) -> None:
        raise SystemExit(msg)

    def once(p: Path, out: Path) -> None:
        if mode == "old":
            serving = svc.scoring.models.get("champion")
            frame = batch.read_frame(p)
            plan = batch.plan_columns(list(frame.columns), serving)
            batch._run_rows(svc, frame, serving, plan, engine="compiled", out_path=out, persist=persist,
                            fail=fail, err=err)
        else:
            batch.run_score(svc, p, model="champion", engine="compiled", out_path=out, persist=persist,
                            fail=fail, out=None, err=err)

    once(data / "warm.csv", data / "warm-out.csv")
    before = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    once(path, data / f"out-{uuid.uuid4().hex[:6]}.csv")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": _rss_mb("VmHWM"),
                      "before_mb": before}))


def measure(mode: str, data: Path, path: Path, rows: int, *, database_url: str = "", persist: bool = False
            ) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__)), "--worker", mode, "--data", str(data), "--file", str(path),
           "--database-url", database_url, *(["--persist"] if persist else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        sys.exit(f"{mode} on {path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    out["rows"] = rows
    return out


def show(label: str, m: dict[str, Any], base: dict[str, Any] | None = None) -> None:
    rate, cpu_rate = m["rows"] / m["wall"], m["rows"] / m["cpu"]
    ratio = ""
    if base is not None:
        ratio = f"  ×{rate / (base['rows'] / base['wall']):.1f} wall, ×{cpu_rate / (base['rows'] / base['cpu']):.1f} CPU"
    print(f"{label:<44} {m['rows']:>9,} rows {m['wall']:8.2f} s {rate:>10,.0f} rows/s (CPU {cpu_rate:>10,.0f}/s)"
          f"  peak {m['peak_mb']:6.0f} MB (before {m['before_mb']:4.0f}){ratio}", flush=True)


def _pg_database(url: str) -> tuple[str, Any]:
    import sqlalchemy as sa

    u = sa.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://")
                    else url)
    name = f"creditrisk_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(u.set(database="postgres").render_as_string(hide_password=False),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return u.set(database=name).render_as_string(hide_password=False), (admin, name)


def _drop(admin: Any, name: str) -> None:
    import sqlalchemy as sa

    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--old-rows", type=int, default=20_000)
    ap.add_argument("--pg-rows", type=int, default=100_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--worker")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--persist", action="store_true")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.file, args.database_url, args.persist)
        return
    sys.path.insert(0, str(HERE))
    from api_load_env import _model

    from backend.training.synthetic import generate

    data = Path(tempfile.mkdtemp(prefix="batch-score-"))
    try:
        _model(data, False, None)
        t = time.perf_counter()
        frame = generate(args.rows, seed=11)
        frame.head(2_000).to_csv(data / "warm.csv", index=False)
        frame.head(args.old_rows).to_csv(data / "small.csv", index=False)
        frame.to_parquet(data / "big.parquet", index=False, row_group_size=65_536)
        frame.to_csv(data / "big.csv", index=False)
        frame.head(args.pg_rows).to_parquet(data / "pg.parquet", index=False, row_group_size=65_536)
        frame.head(min(args.old_rows, 10_000)).to_csv(data / "pg-small.csv", index=False)
        del frame
        print(f"files written in {time.perf_counter() - t:.0f} s; load average {os.getloadavg()}", flush=True)
        old = measure("old", data, data / "small.csv", args.old_rows)
        show("old row path, CSV, dry run", old)
        show("new chunked path, same CSV, dry run", measure("new", data, data / "small.csv", args.old_rows), old)
        big = measure("new", data, data / "big.parquet", args.rows)
        show("new chunked path, Parquet, dry run", big, old)
        show("new chunked path, CSV, dry run", measure("new", data, data / "big.csv", args.rows), old)
        print(f"target: ≥ {TARGET_DRY:,} rows/s on 1M rows under 1 GB; load average {os.getloadavg()}")
        if not args.no_pg:
            for mode, path, n in (("old", data / "pg-small.csv", min(args.old_rows, 10_000)),
                                  ("new", data / "pg.parquet", args.pg_rows)):
                url, (admin, name) = _pg_database(args.pg)
                try:
                    m = measure(mode, data, path, n, database_url=url, persist=True)
                finally:
                    _drop(admin, name)
                if mode == "old":
                    pg_old = m
                    show("old row path, recorded on PostgreSQL", m)
                else:
                    show("new chunked path, recorded on PostgreSQL", m, pg_old)
            print(f"target: ≥ {TARGET_PG:,} rows/s recorded on PostgreSQL; load average {os.getloadavg()}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
