"""Scaled-down soak (issue 21 item 2): the API at the capacity plan's rate per core for ten minutes, several
uvicorn workers, PostgreSQL and Redis; then every answered request is looked for in the database.

Run: ``.venv/bin/python bench/soak.py [--minutes 10] [--workers 3] [--rate-per-core R] [--server-cores 1]
[--database-url postgresql://postgres@127.0.0.1:5432/postgres]``

* A scratch PostgreSQL database on that server (created, dropped at the end), a private ``redis-server`` on a
  free port as the cache and the rate-limit store, the bench model and machine client of ``bench/api_load.py``.
* ``creditrisk serve --workers N`` (N uvicorn worker processes, each with its own connection pool) configured as
  the README tells servers to be: ``CREDITRISK_AUDIT__INLINE_SEQUENCING=false`` and one ``creditrisk audit
  sequence`` process beside them sealing the audit trail (``--inline-sealing``: the embedded default instead,
  where the writer seals after its commit when nobody holds the sequencer's lock).
* The open-loop generator of ``bench/api_load_gen.py`` sends ``POST /v1/score`` (one new application per
  request) at a fixed rate: request i leaves at start + i/rate whatever happened to the ones before, and is timed
  from then (no coordinated omission). The rate is the README's capacity plan per core (1,000 req/s over the
  cores it sizes, ``--rate-per-core``) times the cores the server is given here (``--server-cores``: on two cores
  the generator, PostgreSQL and Redis need the other).
* Reported per minute: requests, errors, p50/p99; the server's resident memory at the start and the end
  (a leak shows as growth); then the accounting: answered 200s against applications, predictions and
  ``application_scored`` audit rows in the database (a lost write is a 200 with no rows; a duplicate, rows with no
  200; rows beyond the 200s, e.g. of a request the generator gave up on, are counted as extra), the audit trail
  verified once what was pending is sealed.

Nothing is asserted by a test (timings never are): the table and the RESULT line say whether the soak held
(0 errors, 0 lost writes, no extra rows, the trail intact, nothing left pending); the exit status is 1 if not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from api_load import GOAL_RPS, UTILISATION, cores_for
from api_load_env import ROOT, PrivateRedis, Scratch, Server, cleanup, prepare
from api_load_gen import collect, fixed_rate_stats, spawn_open_loop, tree_cpu_seconds, tree_pids, wait_ready

PLANNED_CORES = 8  # the README's plan for GOAL_RPS ("1000 req/s for an hour"), whose rate per core this soak runs at


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (the uvicorn supervisor and its workers), in MB."""
    total = 0
    for p in tree_pids(pid):
        try:
            total += next((int(line.split()[1]) for line in Path(f"/proc/{p}/status").read_text().splitlines()
                           if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
    return total / 1024


def per_minute(res: dict[str, Any], minutes: int) -> list[dict[str, Any]]:
    rows = []
    for m in range(minutes):
        lo, hi = 60.0 * m, 60.0 * (m + 1)
        keep = [i for i, t in enumerate(res["sched_s"]) if lo <= t < hi]
        sub = {"sched_s": [res["sched_s"][i] for i in keep], "lat_ms": [res["lat_ms"][i] for i in keep],
               "status": [res["status"][i] for i in keep]}
        rows.append({"minute": m + 1, **fixed_rate_stats(sub, 200)})
    return rows


def account(scratch: Scratch, answered: int) -> dict[str, Any]:
    """What the database holds against the ``answered`` 200s, after the sequencer sealed what was pending."""
    import sqlalchemy as sa

    from backend.container import build_services
    from backend.platform.db.tables_book import Application, Prediction
    from backend.platform.db.tables_governance import AuditLog

    svc = build_services(scratch.settings())
    try:
        deadline = time.monotonic() + 60
        report = svc.audit.verify()
        while report.pending and time.monotonic() < deadline:
            svc.audit.seal()
            report = svc.audit.verify()
        with svc.db.read() as s:
            apps = s.execute(sa.select(sa.func.count()).select_from(Application)).scalar_one()
            preds = s.execute(sa.select(sa.func.count()).select_from(Prediction)).scalar_one()
            audits = s.execute(sa.select(sa.func.count()).select_from(AuditLog)
                               .where(AuditLog.action == "application_scored")).scalar_one()
    finally:
        svc.close()
    return {"answered": answered, "applications": apps, "predictions": preds, "audit_rows": audits,
            "lost": max(0, answered - min(apps, preds, audits)), "extra": max(0, max(apps, preds, audits) - answered),
            "chain_ok": report.ok, "chain_rows": report.rows, "pending": report.pending, "batches": report.batches,
            "chain_detail": report.detail}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    ap.add_argument("--rate-per-core", type=float, default=GOAL_RPS / PLANNED_CORES)
    ap.add_argument("--server-cores", type=float, default=1.0, help="cores the rate is scaled to")
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--inline-sealing", action="store_true", help="writers seal (the embedded default) instead of "
                    "a sequencer process")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "soak.json")
    ap.add_argument("--keep", action="store_true", help="keep the scratch data dir and database")
    args = ap.parse_args()
    rate = args.rate_per_core * args.server_cores
    seconds = 60.0 * args.minutes

    load0 = os.getloadavg()
    scratch = prepare(database_url=args.database_url, retrain=False, registry=None)
    try:
        run(args, scratch, rate, seconds, load0[0])
    finally:
        cleanup(scratch, keep=args.keep)
        if args.keep:
            print(f"kept {scratch.root} and database {scratch.pg_name}")


def run(args: argparse.Namespace, scratch: Scratch, rate: float, seconds: float, load0: float) -> None:
    redis = PrivateRedis(scratch.root)
    srv = seq = None
    sealing = {} if args.inline_sealing else {"CREDITRISK_AUDIT__INLINE_SEQUENCING": "false"}
    try:
        if not args.inline_sealing:
            seq = subprocess.Popen([sys.executable, "-m", "backend", "audit", "sequence"],  # noqa: S603
                                   env=scratch.env(**sealing), cwd=scratch.root, stdout=subprocess.DEVNULL,
                                   stderr=(scratch.root / "sequencer.log").open("w"), start_new_session=True)
        srv = Server(scratch, workers=args.workers, cpus=None, name="soak", **sealing,
                     CREDITRISK_CACHE__URL=f"{redis.url}/0", CREDITRISK_API__RATE_LIMIT_URL=f"{redis.url}/1")
        token = srv.token()
        rss0, cpu0 = tree_rss_mb(srv.proc.pid), tree_cpu_seconds(srv.proc.pid)
        seq0 = tree_cpu_seconds(seq.pid) if seq is not None else 0.0
        cfg = {"host": "127.0.0.1", "port": srv.port, "method": "POST", "path": "/v1/score", "paths": None,
               "token": token, "rate": rate, "duration": seconds, "prefix": "soak", "offset": 0,
               "templates": str(scratch.templates), "timeout": 30.0}
        print(f"soak: {rate:.0f} req/s ({args.rate_per_core:.0f} per core x {args.server_cores:g}) for {args.minutes} min, "
              f"{args.workers} workers, PostgreSQL + private Redis, "
              f"{'writers seal inline' if args.inline_sealing else 'one sequencer process seals'}; load average at the start {load0:.2f}", flush=True)
        gen = spawn_open_loop(cfg, scratch.root / "gen-soak.json", cpu=None)
        wait_ready(gen)
        res = collect(gen)
        rss1, cpu = tree_rss_mb(srv.proc.pid), tree_cpu_seconds(srv.proc.pid) - cpu0
        seq_cpu = tree_cpu_seconds(seq.pid) - seq0 if seq is not None else 0.0
        srv.stop()
        srv = None
        whole = fixed_rate_stats(res, 200)
        acc = account(scratch, answered=sum(1 for s in res["status"] if s == 200))
    finally:
        if srv is not None:
            srv.stop()
        if seq is not None and seq.poll() is None:
            os.killpg(seq.pid, signal.SIGTERM)
            seq.wait(30)
        redis.kill()
    minutes = per_minute(res, args.minutes)
    print(f"{'minute':>6} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for m in minutes:
        print(f"{m['minute']:6d} {m['requests']:9d} {m['errors']:7d} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['max_ms']:8.1f}")
    print(f"all: {whole['requests']} requests, {whole['errors']} errors {whole['statuses']}, p50 {whole['p50_ms']:.1f} "
          f"p99 {whole['p99_ms']:.1f} p99.9 {whole['p999_ms']:.1f} ms; server CPU {cpu / res['wall_s']:.0%} of a core "
          f"({1000 * cpu / max(1, whole['requests']):.2f} CPU-ms per request)"
          + (f", the sequencer {1000 * seq_cpu / max(1, whole['requests']):.2f}" if seq is not None else "")
          + f"; resident memory {rss0:.0f} -> {rss1:.0f} MB")
    cost_ms = 1000 * (cpu + seq_cpu) / max(1, whole["requests"])
    cores, instances = cores_for(cost_ms)
    print(f"sized on that cost ({cost_ms:.2f} CPU-ms per request, PostgreSQL's own not counted): {GOAL_RPS} req/s at "
          f"<= {UTILISATION:.0%} CPU needs {cores} cores -> {instances} instance(s) of 4 vCPU + 1 spare")
    print(f"database: {acc['applications']} applications, {acc['predictions']} predictions, {acc['audit_rows']} "
          f"audit rows for {acc['answered']} answered requests: lost {acc['lost']}, extra {acc['extra']}; "
          f"audit trail {'intact' if acc['chain_ok'] else 'BROKEN: ' + acc['chain_detail']} ({acc['chain_rows']} rows, "
          f"{acc['batches']} batches, {acc['pending']} pending)")
    ok = (whole["errors"] == 0 and acc["lost"] == 0 and acc["extra"] == 0 and acc["chain_ok"]
          and acc["pending"] == 0)
    print(f"load average at the end {os.getloadavg()[0]:.2f}\nRESULT: {'PASS' if ok else 'FAIL'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rate": rate, "minutes": args.minutes, "workers": args.workers,
                                    "overall": whole, "per_minute": minutes, "accounting": acc,
                                    "rss_mb": [rss0, rss1], "server_cpu_s": cpu, "sequencer_cpu_s": seq_cpu,
                                    "inline_sealing": args.inline_sealing, "cores_for_goal": cores, "ok": ok}, indent=1, default=str))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
