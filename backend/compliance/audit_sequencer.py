"""The sequencer: orders committed audit rows and seals them into keyed Merkle batches.

One sequencer works at a time. On PostgreSQL ``creditrisk audit sequence`` holds a session advisory
lock for as long as it runs (a standby waits for it and takes over when the holder's connection
dies); an inline seal after a write takes the same lock for its transaction only if nobody holds it,
and otherwise leaves the rows to the holder. On SQLite the write transaction (``BEGIN IMMEDIATE``)
is the lock. Whichever seals, ``batch_no`` is the primary key, so two sealers can never fork the chain.

A seal reads the horizon (the highest committed seq, and on PostgreSQL waits until every transaction
that might still commit a lower seq has ended; see :mod:`.audit_chain_queries`), then cuts the rows
above the last batch into batches of at most ``batch_max``: their seqs, the seqs absent (rolled-back
transactions: ``gaps``), the leaves' tags, the Merkle root and the MAC chained to the previous batch.
A signed checkpoint of the head goes outside the database when one is due.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from backend.compliance import audit_chain_queries as q
from backend.compliance.audit_seal import (
    GENESIS_MAC,
    ChainKeys,
    CheckpointLog,
    batch_mac,
    leaf_hash,
    merkle_root,
    tags_of,
)
from backend.platform.db.engine import Database

log = logging.getLogger(__name__)


def gaps_of(after: int, seqs: list[int]) -> list[list[int]]:
    """The seq ranges ``[from, to]`` in ``after+1 .. seqs[-1]`` that ``seqs`` (ascending) skips."""
    out, expect = [], after + 1
    for seq in seqs:
        if seq > expect:
            out.append([expect, seq - 1])
        expect = seq + 1
    return out


def expected_seqs(first: int, last: int, gaps: list[list[int]]) -> list[int]:
    skip: set[int] = set()
    for a, b in gaps:
        skip.update(range(a, b + 1))
    return [x for x in range(first, last + 1) if x not in skip]


def make_batch(key: bytes, batch_no: int, after: int, rows: list[tuple[int, str]], prev_mac: str,
               now: datetime) -> dict[str, Any]:
    seqs = [seq for seq, _ in rows]
    leaves = [leaf_hash(seq, h) for seq, h in rows]
    gaps = json.dumps(gaps_of(after, seqs), separators=(",", ":"))
    tags, root = tags_of(leaves), merkle_root(leaves)
    mac = batch_mac(key, batch_no, after + 1, seqs[-1], len(rows), gaps, tags, root, prev_mac)
    return {"batch_no": batch_no, "first_seq": after + 1, "last_seq": seqs[-1], "size": len(rows), "gaps": gaps,
            "tags": tags, "root": root, "prev_mac": prev_mac, "mac": mac, "sealed_at": now}


class Sequencer:
    def __init__(self, db: Database, keys: ChainKeys, checkpoints: CheckpointLog, *, batch_max: int = 10_000,
                 wait_s: float = 5.0, checkpoint_every_s: float = 10.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db, self.keys, self.checkpoints = db, keys, checkpoints
        self.batch_max, self.wait_s, self.every_s, self.now = batch_max, wait_s, checkpoint_every_s, now
        self._last_checkpoint: tuple[float, int] | None = None  # (monotonic time, batch_no)
        self._mutex = threading.Lock()

    # -- sealing --------------------------------------------------------------------------------------
    def seal(self, *, wait_s: float | None = None, leader: bool = False) -> int:
        """Seal every committed row above the last batch; returns how many rows were sealed.

        ``leader``: the caller holds the sequencer's session lock (PostgreSQL). Otherwise this seal
        runs only if it can take the lock for its transaction, and returns 0 when another holds it."""
        # no in-process lock around the seal: the database serialises sealers (advisory lock, BEGIN
        # IMMEDIATE), and a thread sealing inline after its commit already holds SQLite's write lock
        sealed, head = self._seal(self.wait_s if wait_s is None else wait_s, leader)
        if sealed:
            self.maybe_checkpoint(head)
        return sealed

    def _seal(self, wait_s: float, leader: bool) -> tuple[int, int]:
        with self.db.transaction() as s:
            if not leader and not q.try_xact_lock(s):
                return 0, 0
            top, running = q.horizon(s)
            if running and not self._settled(s, running, wait_s):
                return 0, 0
            no, after, prev = q.last_batch(s) or (0, 0, GENESIS_MAC)
            sealed = 0
            while after < top:
                rows = q.rows_to_seal(s, after, top, self.batch_max)
                if not rows:
                    break
                no += 1
                batch = make_batch(self.keys.mac_key, no, after, rows, prev, self.now())
                q.insert_batch(s, batch)
                sealed += len(rows)
                after, prev = batch["last_seq"], batch["mac"]
            return sealed, no

    @staticmethod
    def _settled(s: Any, running: list[str], wait_s: float) -> bool:
        deadline, pause = time.monotonic() + wait_s, 0.0005
        while q.still_running(s, running):
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        return True

    # -- checkpoints ----------------------------------------------------------------------------------
    def maybe_checkpoint(self, batch_no: int) -> None:
        if not self._mutex.acquire(blocking=False):
            return  # another thread of this process is writing one now
        try:
            last = self._last_checkpoint
            if last is not None and (last[1] >= batch_no or time.monotonic() - last[0] < self.every_s):
                return
            self.checkpoint()
        finally:
            self._mutex.release()

    def checkpoint(self, kind: str = "sequencer", **extra: Any) -> dict[str, Any]:
        """Sign the current head (batch, last seq, mac, time) and append it outside the database."""
        with self.db.read() as s:
            no, last_seq, mac = q.last_batch(s) or (0, 0, GENESIS_MAC)
        body = {"v": 1, "kind": kind, "batch": no, "last_seq": last_seq, "mac": mac,
                "at": self.now().isoformat(timespec="microseconds"), **extra}
        self.checkpoints.append(body)
        self._last_checkpoint = (time.monotonic(), no)
        return body

    # -- the server loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, idle_s: float = 0.05, standby_s: float = 1.0,
            on_leader: Callable[[bool], None] | None = None) -> None:
        """Seal every ``idle_s`` until ``stop`` is set (the pause bounds the sequencer's cost: under load a
        batch holds what arrived meanwhile). Elected by the session advisory lock on PostgreSQL, with
        fail-over (a standby retries every ``standby_s``); on SQLite each seal is an IMMEDIATE transaction."""
        if self.db.dialect != "postgresql":
            while not stop.is_set():
                self.seal()
                stop.wait(idle_s)
            self._final_checkpoint()
            return
        while not stop.is_set():
            try:
                with self.db.engine.connect() as conn:
                    if not q.try_session_lock(conn):
                        stop.wait(standby_s)
                        continue
                    if on_leader:
                        on_leader(True)
                    self._lead(conn, stop, idle_s)
            except Exception:  # noqa: BLE001 - lost the database: stand by, try again
                log.exception("audit sequencer lost its connection; standing by")
                if on_leader:
                    on_leader(False)
                stop.wait(standby_s)
        self._final_checkpoint()

    def _lead(self, conn: Any, stop: threading.Event, idle_s: float) -> None:
        checked = time.monotonic()
        while not stop.is_set():
            self.seal(leader=True)
            stop.wait(idle_s)
            if time.monotonic() - checked > 1.0:  # still holding the lock (the connection is alive)?
                conn.exec_driver_sql("SELECT 1")
                conn.commit()
                checked = time.monotonic()

    def _final_checkpoint(self) -> None:
        with self.db.read() as s:
            head = q.last_batch(s)
        if head and (self._last_checkpoint is None or self._last_checkpoint[1] < head[0]):
            self.checkpoint()
