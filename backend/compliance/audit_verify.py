"""Verification of the sealed audit log, from plain tuples, against the newest signed checkpoint.

Checked, each failure reported with the first seq it affects:

* the batches: numbered 1, 2, ... with contiguous seq ranges, each ``mac`` recomputed under the
  chain key and linked to the previous one (a forged or re-hashed batch needs the key);
* the newest signed checkpoint: its batch exists with its ``mac`` (a deleted tail, rows and batches
  together, is caught here);
* every row: its payload and row hashes recompute, it sits in exactly one batch at its place (its
  leaf's tag and, for a complete batch, the Merkle root), and every seq a batch sealed is present
  unless a *signed* archive checkpoint covers it (an ``audit_archived`` row alone proves nothing);
* rows written before revision 0009 also link by the old chain rule.

Rows above the last batch are *pending*: counted and hash-checked, not yet sealed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from backend.compliance.audit_payload import payload_matches, stored_payload_matches
from backend.compliance.audit_queries import (
    GENESIS,
    PENDING,
    ChainReport,
    row_hash,
    row_hash_v2,
)
from backend.compliance.audit_seal import (
    GENESIS_MAC,
    TAG_BYTES,
    Checkpoints,
    batch_mac,
    leaf_hash,
    merkle_root,
)
from backend.compliance.audit_sequencer import expected_seqs
from backend.platform.ports import ProgressCallback

Progress = ProgressCallback  # (step, done, total)
BatchTuple = tuple[int, int, int, int, str, bytes, str, str, str]


class Broken(Exception):
    def __init__(self, seq: int, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.detail = seq, detail


def check_batches(batches: list[BatchTuple], key: bytes | None, cps: Checkpoints) -> Broken | None:
    """The batch chain and the newest checkpoint; the problem with the lowest seq, if any.

    Without ``key`` (a restored copy checked without the deployment's secrets) only the links and
    sizes are checked: neither the MACs nor the checkpoint."""
    prev_mac, prev_last = GENESIS_MAC, 0
    for i, (no, first, last, size, gaps, tags, root, prev, mac) in enumerate(batches, start=1):
        if no != i or first != prev_last + 1 or last < first or prev != prev_mac:
            return Broken(first, f"batch {no} does not follow batch {i - 1} (batches removed, added or reordered)")
        if len(tags) != size * TAG_BYTES or (key is not None and batch_mac(key, no, first, last, size, gaps, tags,
                                                                           root, prev) != mac):
            return Broken(first, f"batch {no} was altered (its MAC does not verify under the chain key)")
        prev_mac, prev_last = mac, last
    if key is None:
        return None
    cp = cps.latest
    if cp is None:
        if batches:
            return Broken(1, "no signed checkpoint found: the head cannot be checked (checkpoint file removed?)")
        return None
    n = int(cp["batch"])
    if n > len(batches):
        return Broken(prev_last + 1, f"the signed checkpoint of {cp['at']} covers batch {n} through seq "
                                     f"{cp['last_seq']}, the database ends at batch {len(batches)} (tail deleted)")
    if n and (batches[n - 1][8] != cp["mac"] or batches[n - 1][2] != int(cp["last_seq"])):
        return Broken(batches[n - 1][1], f"batch {n} differs from the signed checkpoint of {cp['at']}")
    return None


@dataclass
class _Walk:
    batches: list[BatchTuple]
    archived_through: int
    anchors: Collection[str]
    unsigned_archive: str
    rows: int = 0
    pending: int = 0
    archived: int = 0
    start_anchor: str | None = None
    last_legacy: str | None = None

    def missing(self, seq: int, batch_no: int) -> None:
        if seq <= self.archived_through:
            self.archived += 1
            self.last_legacy = None
            return
        raise Broken(seq, f"row {seq} was deleted (sealed in batch {batch_no}){self.unsigned_archive}")

    def content(self, r: tuple[Any, ...]) -> None:
        seq, rid, at, actor, role, action, etype, eid, payload, p_hash, prev, r_hash = r
        if not (stored_payload_matches(payload, p_hash) if isinstance(payload, str)
                else payload_matches(payload, p_hash)):
            raise Broken(seq, "payload changed after it was written")
        if prev == PENDING:
            if row_hash_v2(rid, at, actor, role, action, etype, eid, p_hash) != r_hash:
                raise Broken(seq, "row fields changed after it was written")
            return
        if row_hash(prev, rid, at, actor, role, action, etype, eid, p_hash) != r_hash:
            raise Broken(seq, "row fields changed after it was written")
        if self.last_legacy is None:
            if prev != GENESIS and prev not in self.anchors:
                raise Broken(seq, "prev_hash does not match the previous row and no archive anchor matches it")
            self.start_anchor = None if prev == GENESIS else prev
        elif prev != self.last_legacy:
            raise Broken(seq, "prev_hash does not match the previous row (row removed or reordered)")
        self.last_legacy = r_hash

    def run(self, rows: Iterable[tuple[Any, ...]], total: int, progress: Progress | None) -> None:
        it = iter(rows)
        row = next(it, None)
        for no, first, last, size, gaps, tags, root, _prev, _mac in self.batches:
            exp = range(first, last + 1) if gaps == "[]" else expected_seqs(first, last, json.loads(gaps))
            leaves: list[bytes] = []
            p = 0
            while row is not None and row[0] <= last:
                seq = row[0]
                while p < len(exp) and exp[p] < seq:
                    self.missing(exp[p], no)
                    p += 1
                if p == len(exp) or exp[p] != seq:
                    raise Broken(seq, f"row {seq} is not in batch {no} that sealed its range (inserted afterwards)")
                self.content(row)
                leaf = leaf_hash(seq, row[11])
                if leaf[:TAG_BYTES] != tags[p * TAG_BYTES:(p + 1) * TAG_BYTES]:
                    raise Broken(seq, f"row {seq} changed after batch {no} sealed it (re-hashed edit or swap)")
                leaves.append(leaf)
                p += 1
                self.rows += 1
                if progress is not None and self.rows % 5000 == 0:
                    progress("rows verified", self.rows, total)
                row = next(it, None)
            for seq in exp[p:]:
                self.missing(seq, no)
            if len(leaves) == size and merkle_root(leaves) != root:
                raise Broken(first, f"batch {no}'s Merkle root does not match its rows")
        while row is not None:
            self.content(row)
            self.pending += 1
            self.rows += 1
            row = next(it, None)
        if progress is not None:
            progress("rows verified", self.rows, total)


def verify_rows(rows: Iterable[tuple[Any, ...]], batches: list[BatchTuple], key: bytes | None, cps: Checkpoints, *,
                total: int, anchors: Collection[str] = (), unsigned_archives: Collection[int] = (),
                progress: Progress | None = None) -> ChainReport:
    """The whole check over ``rows`` (tuples in seq order, ``audit_chain_queries.ROW_COLUMNS``)."""
    signed = [a for a in cps.archives if isinstance(a.get("through_seq"), int)]
    through = max((int(a["through_seq"]) for a in signed), default=0)
    note = ""
    if unsigned_archives:
        note = (f"; the audit_archived row(s) at seq {', '.join(map(str, unsigned_archives))} claim an archive "
                "that no signed checkpoint records")
    walk = _Walk(batches, through, {*anchors, *(str(a.get("anchor")) for a in signed)}, note)
    problem = check_batches(batches, key, cps)
    try:
        walk.run(rows, total, progress)
    except Broken as exc:
        if problem is None or exc.seq < problem.seq:
            problem = exc
    cp = cps.latest
    where = f"checkpoint of {cp['at']} (batch {cp['batch']}, seq {cp['last_seq']})" if cp else "no checkpoint"
    if problem is not None:
        return ChainReport(walk.rows, False, problem.seq, problem.detail, pending=walk.pending,
                           batches=len(batches), archived=walk.archived, checkpoint=where)
    return ChainReport(walk.rows, True, start_anchor=walk.start_anchor, pending=walk.pending, batches=len(batches),
                       archived=walk.archived, checkpoint=where)
