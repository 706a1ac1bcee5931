"""Audit archives (JSON Lines, a header line then one row per line) and their verification.

Version 2 (since revision 0009) holds whole sealed batches: the header lists them (range, gaps, tags,
root, MAC links) and verification recomputes every row's hashes, its place in its batch and each
batch's Merkle root, without the database. Version 1 files (the old per-row chain) still verify.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.compliance.audit_queries import GENESIS, canonical_json, row_hash, sha256
from backend.compliance.audit_seal import GENESIS_MAC, Checkpoints, batch_mac
from backend.compliance.audit_verify import Broken, _Walk, check_batches

ARCHIVE_FORMAT, ARCHIVE_VERSION = "creditrisk-audit-archive", 2
ROW_KEYS = ("seq", "id", "at", "actor", "role", "action", "entity_type", "entity_id", "payload", "payload_hash",
            "prev_hash", "row_hash")


@dataclass(frozen=True)
class ArchiveCheck:
    ok: bool
    rows: int
    header: dict[str, Any] = field(default_factory=dict)
    first_broken_line: int | None = None
    detail: str = ""


def batch_dict(b: tuple[int, int, int, int, str, bytes, str, str, str]) -> dict[str, Any]:
    no, first, last, size, gaps, tags, root, prev, mac = b
    return {"batch_no": no, "first_seq": first, "last_seq": last, "size": size, "gaps": gaps, "tags": tags.hex(),
            "root": root, "prev_mac": prev, "mac": mac}


def verify_archive(path: Path, mac_key: bytes | None = None) -> ArchiveCheck:
    """Recompute every row's hashes, places and batch roots in an archive and compare with its header."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return ArchiveCheck(False, 0, first_broken_line=None, detail=f"cannot read the archive: {exc}")
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    version = header.get("version") if isinstance(header, dict) else None
    if not isinstance(header, dict) or header.get("format") != ARCHIVE_FORMAT or version not in (1, 2):
        return ArchiveCheck(False, 0, first_broken_line=1, detail=f"line 1 is not a {ARCHIVE_FORMAT} v1/v2 header")
    if version == 2:
        return _verify_v2(lines, header, mac_key)
    prev, n, last_seq, first_seq = header.get("start_prev_hash", GENESIS), 0, None, None
    for lineno, line in enumerate(lines[1:], start=2):
        problem, r = _row_problem(line, prev, last_seq)
        if problem:
            return ArchiveCheck(False, n, header, lineno, problem)
        n += 1
        prev, last_seq = r["row_hash"], r["seq"]
        first_seq = r["seq"] if first_seq is None else first_seq
    end = len(lines) + 1
    if n != header.get("rows"):
        return ArchiveCheck(False, n, header, end, f"the header says {header.get('rows')} rows, the file holds {n}")
    if prev != header.get("anchor") or (first_seq, last_seq) != (header.get("first_seq"), header.get("last_seq")):
        return ArchiveCheck(False, n, header, end, "the last row does not match the header's anchor and seq range")
    return ArchiveCheck(True, n, header)


def _verify_v2(lines: list[str], header: dict[str, Any], mac_key: bytes | None) -> ArchiveCheck:
    rows: list[tuple[Any, ...]] = []
    line_of: dict[int, int] = {}
    end = len(lines) + 1
    try:
        batches = [(int(b["batch_no"]), int(b["first_seq"]), int(b["last_seq"]), int(b["size"]), str(b["gaps"]),
                    bytes.fromhex(b["tags"]), str(b["root"]), str(b["prev_mac"]), str(b["mac"]))
                   for b in header["batches"]]
        first_no = batches[0][0]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return ArchiveCheck(False, 0, header, 1, f"the header's batch list is not valid ({type(exc).__name__})")
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            r = json.loads(line)
            t = tuple(r[k] for k in ROW_KEYS)
            seq = int(t[0])
            t = (seq, t[1], datetime.fromisoformat(t[2]), *t[3:])
            if r["at"] != t[2].isoformat(timespec="microseconds") or (rows and seq <= rows[-1][0]):
                return ArchiveCheck(False, len(rows), header, lineno, "row fields changed or rows reordered")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return ArchiveCheck(False, len(rows), header, lineno, f"not a valid audit row ({type(exc).__name__})")
        rows.append(t)
        line_of[seq] = lineno
    # the batches must link to each other (renumbered from 1 for the structural check) and to the header
    if batches[0][7] != header.get("start_prev_mac") or batches[-1][8] != header.get("anchor"):
        return ArchiveCheck(False, len(rows), header, 1, "the header's batches do not match its start and anchor")
    shifted = [(b[0] - first_no + 1, b[1] - batches[0][1] + 1, b[2] - batches[0][1] + 1, *b[3:]) for b in batches]
    link = check_batches([(*b[:7], GENESIS_MAC if i == 0 else b[7], b[8]) for i, b in enumerate(shifted)],
                         None, Checkpoints(None, [], []))
    if link is not None or (mac_key is not None and _bad_mac(batches, mac_key)):
        return ArchiveCheck(False, len(rows), header, 1, "the header's batches are not one unbroken, keyed chain")
    walk = _Walk(batches, 0, {header.get("legacy_start_prev_hash", GENESIS)}, "")
    try:
        walk.run(rows, len(rows), None)
    except Broken as exc:
        later = [line for seq, line in line_of.items() if seq >= exc.seq]  # a missing row: where it would be
        return ArchiveCheck(False, walk.rows, header, min(later, default=end), exc.detail)
    if walk.pending or len(rows) != header.get("rows"):
        return ArchiveCheck(False, len(rows), header, end, f"the header says {header.get('rows')} rows in its "
                            f"batches, the file holds {len(rows)} ({walk.pending} outside them)")
    return ArchiveCheck(True, len(rows), header)


def _bad_mac(batches: list[tuple[int, int, int, int, str, bytes, str, str, str]], key: bytes) -> bool:
    return any(batch_mac(key, *b[:8]) != b[8] for b in batches)
def _row_problem(line: str, prev: str, last_seq: int | None) -> tuple[str, dict[str, Any]]:
    """What is wrong with one archived row given the previous one ("" when nothing is)."""
    try:
        r = json.loads(line)
        at = datetime.fromisoformat(r["at"])
        expect = row_hash(r["prev_hash"], uuid.UUID(r["id"]), at, r["actor"], r["role"], r["action"],
                          r["entity_type"], r["entity_id"], r["payload_hash"])
        seq_ok = last_seq is None or int(r["seq"]) > last_seq
        payload_ok = sha256(canonical_json(r["payload"])) == r["payload_hash"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"not a valid audit row ({type(exc).__name__})", {}
    if not seq_ok:
        return "seq does not increase (rows reordered)", r
    if r["prev_hash"] != prev:
        return "prev_hash does not match the previous row (row removed, added or reordered)", r
    if not payload_ok:
        return "payload changed after it was written", r
    if expect != r["row_hash"] or r["at"] != at.isoformat(timespec="microseconds"):
        return "row fields changed after they were written", r
    return "", r
