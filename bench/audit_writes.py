"""Audited writes per second from 1, 2, 4, 8 (16) writer processes, on a PostgreSQL of its own.

    .venv/bin/python bench/audit_writes.py [--seconds 5] [--writers 1,2,4,8] [--verify-rows 200000] [--async-commit]

Starts a throw-away PostgreSQL (``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/*/bin into a temp
directory, on a free port; as root it runs them as the ``postgres`` user), creates the schema, and
for each writer count runs three paths, each in a database of its own, in the same run:

* ``plain``  — the ceiling: each transaction INSERTs a decision row and its audit row, no chain at all;
* ``locked`` — the old path: the same rows, chained under one transaction-wide advisory lock (read the
  head's ``row_hash``, hash, insert), as every audited write did before revision 0008;
* ``sealed`` — the new path: :func:`append_many` (no lock, no head), while one ``Sequencer`` process
  seals batches every 50 ms (Merkle root, MAC, signed checkpoints) alongside.

Each writer is its own process with its own connection and commits one decision + one audit row per
transaction. After the sealed run it reports how long the sequencer took to drain what was pending.

``--group N`` (default 8; 0 for none) adds ``plain xN`` and ``sealed xN``: the same rows, N decisions and their N
audit rows per transaction, as the product writes concurrent requests (``backend/platform/db/group_commit.py``:
the API's ``BatchWorker`` and the scoring service's ``GroupCommit`` put every request that arrives while a
transaction is being written into the next one; a lone request goes alone). Both write the audit rows with
``append_many``; ``plain xN`` has no sequencer sealing them alongside (no chain: the ceiling), ``sealed xN`` has.

Then verification speed: ``--verify-rows`` rows are written (``append_many``) and sealed, and
``AuditService.verify`` is timed against a plain loop that reads the same tuples and recomputes
the same two hashes per row (ratio printed; the target is <= 1.5x).
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from backend.compliance import audit_chain_queries as chain_q  # noqa: E402
from backend.compliance.audit import AuditService  # noqa: E402
from backend.compliance.audit_payload import stored_payload_matches  # noqa: E402
from backend.compliance.audit_queries import (  # noqa: E402
    AuditEntry,
    append_many,
    canonical_json,
    row_hash,
    row_hash_v2,
    sha256,
)
from backend.compliance.audit_seal import ChainKeys, CheckpointLog  # noqa: E402
from backend.compliance.audit_sequencer import Sequencer  # noqa: E402
from backend.platform.db.engine import Database, make_engine  # noqa: E402
from backend.platform.db.tables_governance import AuditLog  # noqa: E402

PATHS = ("plain", "locked", "sealed")
DECISIONS = "CREATE TABLE IF NOT EXISTS bench_decisions (id uuid PRIMARY KEY, at timestamptz, payload json)"
DECISION_INSERT = sa.text("INSERT INTO bench_decisions (id, at, payload) VALUES (:id, now(), CAST(:p AS json))")


def _payload(i: int) -> dict[str, Any]:
    """About 1 kB, like the product's decision audit rows."""
    return {"decision": "approve" if i % 3 else "decline", "pd": 0.0123 + (i % 97) / 1000, "model": "xgb-2026.11",
            "policy": {"threshold": 0.2, "band": "B", "overrides": []}, "application_id": f"APP-{i:09d}",
            "reasons": [{"code": f"R{k}", "weight": 0.1 * k, "text": "Debt to income ratio is high " * 2}
                        for k in range(6)], "features_hash": sha256(str(i)), "latency_ms": 3.2}


# -- a throw-away PostgreSQL -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_postgres(*, async_commit: bool = False) -> Any:
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    tmp = Path(tempfile.mkdtemp(prefix="audit-bench-pg-"))
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(tmp, "postgres", "postgres")
    port = _free_port()
    data = tmp / "data"
    subprocess.run([*as_pg, f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, stdout=subprocess.DEVNULL)
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB"
    if async_commit:  # commits stop waiting for the disk: what is left is CPU and locks
        opts += " -c synchronous_commit=off"
    subprocess.run([*as_pg, f"{bindir}/pg_ctl", "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_pg, f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


def _create_db(base: str, name: str) -> Database:
    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    db = Database(make_engine(f"{base}/{name}", pool_size=2))
    db.migrate()
    with db.transaction() as s:
        s.execute(sa.text(DECISIONS))
    return db


# -- writers -----------------------------------------------------------------------------------------
def _decision(s: Any, i: int, body: dict[str, Any]) -> None:
    s.execute(DECISION_INSERT, {"id": uuid.uuid4(), "p": canonical_json(body)})


def _insert_row(s: Any, i: int, body: dict[str, Any], prev: str | None) -> None:
    """One audit row as the product stores it (compact payload, hashes as bytes: the table's own column types):
    chained to ``prev`` as before revision 0008, or with ``prev=None`` hashed but neither chained nor sealed."""
    rid, when = uuid.uuid4(), datetime.now(UTC)
    ph = sha256(canonical_json(body))
    fields = (rid, when, "api", "client", "decided", "decision", str(i), ph)
    s.execute(sa.insert(AuditLog), [{
        "id": rid, "at": when, "actor": "api", "role": "client", "action": "decided", "entity_type": "decision",
        "entity_id": str(i), "payload": body, "payload_hash": ph, "prev_hash": prev or "",
        "row_hash": row_hash_v2(*fields) if prev is None else row_hash(prev, *fields)}])


def _plain(s: Any, i: int, body: dict[str, Any]) -> None:
    """The ceiling: the audit row alone, no chain."""
    _insert_row(s, i, body, None)


def _locked(s: Any, i: int, body: dict[str, Any]) -> None:
    """The product's ``append_many`` before revision 0008, statement for statement (lock, head, INSERT)."""
    s.execute(sa.text("SELECT pg_advisory_xact_lock(7734001)"))  # the old chain-head lock
    prev = s.execute(sa.select(AuditLog.row_hash).order_by(AuditLog.seq.desc()).limit(1)).scalar() or "0" * 64
    _insert_row(s, i, body, prev)


def _sealed(s: Any, i: int, body: dict[str, Any]) -> None:
    """The product's ``append_many`` now: no lock, no head, one INSERT."""
    append_many(s, [AuditEntry("api", "client", "decided", "decision", str(i), body)])


def _grouped(s: Any, first: int, bodies: list[dict[str, Any]]) -> None:
    """N decisions and their N audit rows in this transaction, each table in one statement, as the scoring
    service's ``_persist`` writes a group (the audit rows through ``append_many``; whether a sequencer seals them
    alongside is the difference between the two grouped paths)."""
    s.execute(DECISION_INSERT, [{"id": uuid.uuid4(), "p": canonical_json(b)} for b in bodies])
    append_many(s, [AuditEntry("api", "client", "decided", "decision", str(first + j), b)
                    for j, b in enumerate(bodies)])


def _writer(url: str, path: str, seconds: float, start: Any, out: Any, k: int) -> None:
    db = Database(make_engine(url, pool_size=1))
    base, _, group = path.partition(" x")
    size = int(group or 1)
    audit = {"plain": _plain, "locked": _locked, "sealed": _sealed}[base]
    bodies = [_payload(i) for i in range(64)]
    start.wait()
    n, end = 0, time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            if group:
                with db.transaction() as s:
                    _grouped(s, k * 10_000_000 + n, [bodies[(n + j) % 64] for j in range(size)])
                n += size
                continue
            body = bodies[n % 64]
            with db.transaction() as s:
                _decision(s, n, body)
                audit(s, k * 10_000_000 + n, body)
            n += 1
    except Exception as exc:  # the parent stops with it (it used to wait for this writer's count forever)
        out.put(f"writer {k} ({path}) failed: {type(exc).__name__}: {str(exc)[:300]}")
        raise
    finally:
        db.dispose()
    out.put(n)


def _sequencer(url: str, ckdir: str, keys_json: str, stop: Any) -> None:
    import json

    doc = json.loads(keys_json)
    keys = ChainKeys.parse(doc["chain_key"], doc["signing_key"])
    db = Database(make_engine(url, pool_size=2))
    seq = Sequencer(db, keys, CheckpointLog(Path(ckdir), keys), checkpoint_every_s=1.0)
    flag = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), flag.set()), daemon=True).start()
    seq.run(flag, idle_s=0.05)
    db.dispose()


def run_cell(base: str, path: str, writers: int, seconds: float, keys: ChainKeys, ckdir: Path) -> tuple[float, str]:
    name = f"bench_{path.replace(' x', '_x')}_{writers}"
    db = _create_db(base, name)
    url = f"{base}/{name}"
    ctx = mp.get_context("fork")
    start, out, stop = ctx.Event(), ctx.Queue(), ctx.Event()
    seqp = None
    shutil.rmtree(ckdir / name, ignore_errors=True)  # a database made afresh gets fresh checkpoints
    if path.startswith("sealed"):
        seqp = ctx.Process(target=_sequencer, args=(url, str(ckdir / name), keys.to_json(), stop))
        seqp.start()
    procs = [ctx.Process(target=_writer, args=(url, path, seconds, start, out, k)) for k in range(writers)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    start.set()
    counts = [out.get(timeout=seconds + 120) for _ in procs]
    failed = [c for c in counts if isinstance(c, str)]
    if failed:
        for p in procs:
            p.kill()
        stop.set()
        raise RuntimeError("; ".join(failed))
    total = sum(counts)
    for p in procs:
        p.join()
    note = ""
    if seqp is not None:
        t0 = time.perf_counter()
        with db.read() as s:
            top = chain_q.horizon(s)[0]
        while True:
            with db.read() as s:
                head = chain_q.last_batch(s)
            if head and head[1] >= top:
                break
            time.sleep(0.01)
        drained = time.perf_counter() - t0
        stop.set()
        seqp.join()
        from backend.compliance.audit_verify import verify_rows

        with db.read() as s:  # every row in exactly one batch, in order, under the key and the checkpoint
            report = verify_rows(chain_q.iter_rows(s), chain_q.batches(s), keys.mac_key,
                                 CheckpointLog(ckdir / name, keys).read(), total=chain_q.count_rows(s))
        assert report.ok and report.pending == 0 and report.rows == total, report
        note = f"drained {drained:.2f}s after the writers stopped; {report.batches} batches verified"
    db.dispose()
    return total / seconds, note


# -- verification speed ------------------------------------------------------------------------------
def verify_speed(base: str, rows: int, tmp: Path) -> None:
    from types import SimpleNamespace

    from backend.compliance.config import AuditSettings

    db = _create_db(base, "bench_verify")
    settings = SimpleNamespace(env="dev", data_dir=tmp / "verify",
                               audit=AuditSettings(inline_sequencing=False, checkpoint_every_s=0))
    svc = AuditService(db, settings)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for i in range(0, rows, 5000):
        with db.transaction() as s:
            append_many(s, [AuditEntry("api", "client", "decided", "decision", str(j), _payload(j))
                            for j in range(i, min(rows, i + 5000))])
    svc.seal()
    svc.checkpoint()
    print(f"\nverification: {rows:,} rows written and sealed in {time.perf_counter() - t0:.1f}s")

    def plain() -> int:
        n = 0
        with db.read() as s:
            for r in chain_q.iter_rows(s):
                assert stored_payload_matches(r[8], r[9])
                assert row_hash_v2(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9]) == r[11]
                n += 1
        return n

    best: dict[str, float] = {}
    for _ in range(3):  # best of three each, interleaved
        t = time.perf_counter()
        plain()
        best["plain"] = min(best.get("plain", 1e9), time.perf_counter() - t)
        t = time.perf_counter()
        report = svc.verify(progress=lambda step, done, total: None)
        best["verify"] = min(best.get("verify", 1e9), time.perf_counter() - t)
        assert report.ok and report.rows == rows, report
    print(f"  plain read+hash loop   {best['plain']:.2f}s  ({rows / best['plain']:,.0f} rows/s)")
    print(f"  audit verify           {best['verify']:.2f}s  ({rows / best['verify']:,.0f} rows/s)  "
          f"ratio {best['verify'] / best['plain']:.2f}x (batches {report.batches}, checkpoint checked)")
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--writers", default="1,2,4,8")
    ap.add_argument("--verify-rows", type=int, default=200_000)
    ap.add_argument("--async-commit", action="store_true", help="synchronous_commit=off (no wait for the disk)")
    ap.add_argument("--group", type=int, default=8, help="decisions per transaction of the grouped paths (0: none)")
    args = ap.parse_args()
    counts = [int(x) for x in args.writers.split(",")]
    keys = ChainKeys.generate()
    with private_postgres(async_commit=args.async_commit) as base, tempfile.TemporaryDirectory() as tmp:
        sync = "synchronous_commit=off" if args.async_commit else "durable commits"
        print(f"private PostgreSQL at {base} ({sync}); {os.cpu_count()} cores; {args.seconds:.0f}s per cell; "
              "audited decisions/s (one decision row + one audit row per transaction)\n")
        print(f"{'writers':>7} | {'plain (ceiling)':>15} | {'locked (old)':>12} | {'sealed (new)':>12} | "
              f"{'new/old':>7} | {'new/ceiling':>11} | sequencer")
        grouped = (f"plain x{args.group}", f"sealed x{args.group}") if args.group > 1 else ()
        results: dict[int, dict[str, tuple[float, str]]] = {}
        single: dict[int, float] = {}
        for w in counts:
            got = {p: run_cell(base, p, w, args.seconds, keys, Path(tmp)) for p in PATHS}
            single[w] = got["sealed"][0]
            print(f"{w:>7} | {got['plain'][0]:>15,.0f} | {got['locked'][0]:>12,.0f} | {got['sealed'][0]:>12,.0f} | "
                  f"{got['sealed'][0] / got['locked'][0]:>6.2f}x | {got['sealed'][0] / got['plain'][0]:>10.2f}x | "
                  f"{got['sealed'][1]}", flush=True)
            results[w] = {p: run_cell(base, p, w, args.seconds, keys, Path(tmp)) for p in grouped}
        if grouped:
            p, q = grouped
            print(f"\ngrouped: {args.group} decisions (and their audit rows) per transaction, as the product's group "
                  "commit writes concurrent requests\n")
            print(f"{'writers':>7} | {p + ' (ceiling)':>17} | {q:>12} | {'sealed x / sealed':>17} | "
                  f"{'/ceiling':>8} | sequencer")
            for w, got in results.items():
                print(f"{w:>7} | {got[p][0]:>17,.0f} | {got[q][0]:>12,.0f} | {got[q][0] / single[w]:>16.2f}x | "
                      f"{got[q][0] / got[p][0]:>7.2f}x | {got[q][1]}", flush=True)
        if args.verify_rows:
            verify_speed(base, args.verify_rows, Path(tmp))


if __name__ == "__main__":
    main()
