"""SQL of the drift service (every statement it runs), and the parsing of stored feature JSON.

Features are read as their stored bytes (compact JSON, inflated by :func:`json_texts`; no per-row
Python ``json.loads``) in chunks of a bounded number of rows, and parsed in bulk by pyarrow's JSON
reader with an explicit schema taken from the model's encoder spec (categorical -> string, everything
else -> float64, null -> NaN/None).
Rows pyarrow cannot take (a number stored as a string, a boolean) fall back to the standard
library parser with the same coercion, so a malformed row never stops a refresh.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj
from sqlalchemy import LargeBinary, func, select, type_coerce
from sqlalchemy.orm import Session

from backend.monitoring.snapshot_queries import Snapshot, SnapshotRepository
from backend.platform.db import compact
from backend.platform.db.tables_book import Application, Prediction
from backend.platform.db.tables_governance import MonitorSnapshot
from backend.platform.db.timesql import epoch_seconds

ID_BATCH = 1_000  # ids per IN (...) when fetching a sample


def _raw_json(s: Session, column: Any) -> Any:
    """The stored bytes of a compact JSON column (``backend.platform.db.compact``), not decoded per row
    by SQLAlchemy: :func:`json_texts` inflates them to JSON text for the bulk parser."""
    return type_coerce(column, LargeBinary)


def json_texts(raws: Sequence[bytes | memoryview | str | None]) -> list[bytes]:
    """The JSON text of stored compact values (plain JSON from before migration 0015 passes through)."""
    return [b"null" if r is None else compact.json_text(r) for r in raws]


def _features_expr(s: Session) -> Any:
    return _raw_json(s, Application.features)


def _epoch_seconds(s: Session) -> Any:
    """Whole seconds since 1970-01-01 UTC of ``applied_at``, computed by the database (exact integers)."""
    return epoch_seconds(Application.applied_at, s.get_bind().dialect.name)


def data_span(s: Session, until: datetime) -> tuple[datetime, datetime] | None:
    """First and last ``applied_at`` of applications made before ``until``."""
    lo, hi = s.execute(select(func.min(Application.applied_at), func.max(Application.applied_at))
                       .where(Application.applied_at < until)).one()
    return None if lo is None else (lo, hi)


def window_stats(s: Session, start: datetime, end: datetime) -> tuple[int, datetime | None]:
    """Row count and newest ``created_at`` of the applications made in ``[start, end)``."""
    n, last = s.execute(select(func.count(), func.max(Application.created_at))
                        .where(Application.applied_at >= start, Application.applied_at < end)).one()
    return int(n or 0), last


def feature_chunks(s: Session, start: datetime, end: datetime, rows: int
                   ) -> Iterator[tuple[list[int], list[bytes]]]:
    """``(applied_at epoch seconds, feature JSON text)`` of the applications in ``[start, end)``, by ``rows``."""
    q = (select(_epoch_seconds(s), _features_expr(s))
         .where(Application.applied_at >= start, Application.applied_at < end)
         .execution_options(yield_per=rows))
    for part in s.execute(q).partitions(rows):
        yield [int(r[0]) for r in part], json_texts([r[1] for r in part])


def deny_reasons(s: Session, start: datetime, end: datetime, rows: int
                 ) -> Iterator[tuple[list[int], list[set[str]]]]:
    """``(applied_at epoch seconds, reason codes)`` of the deny recommendations on applications made in
    ``[start, end)``, ``rows`` at a time. Codes are read from the raw JSON text (see :func:`reason_codes`)."""
    q = (select(_epoch_seconds(s), _raw_json(s, Prediction.reasons))
         .join(Prediction, Prediction.application_id == Application.id)
         .where(Application.applied_at >= start, Application.applied_at < end, Prediction.recommendation == "deny")
         .execution_options(yield_per=rows))
    for part in s.execute(q).partitions(rows):
        yield [int(r[0]) for r in part], [reason_codes(t) for t in json_texts([r[1] for r in part])]


_CODE = re.compile(rb'"code"\s*:\s*"((?:[^"\\]|\\.)*)"')


def reason_codes(raw: bytes | str | None) -> set[str]:
    """The ``code`` values of a stored reasons list, read from its JSON text without parsing it.

    Only the reason objects have a ``code`` key (their ``features`` entries do not), and a ``"``
    inside a JSON string is always escaped, so the pattern cannot match inside a value.
    """
    if not raw:
        return set()
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return {m.decode("utf-8", "replace") for m in _CODE.findall(data)}


def window_ids(s: Session, start: datetime, end: datetime) -> list[uuid.UUID]:
    """Ids of the applications made in ``[start, end)`` (for drawing a sample)."""
    q = (select(Application.id).where(Application.applied_at >= start, Application.applied_at < end)
         .order_by(Application.applied_at, Application.id))
    return list(s.execute(q).scalars())


def features_of(s: Session, ids: Sequence[uuid.UUID]) -> list[bytes | str]:
    """Raw feature JSON of the given applications (fetched ``ID_BATCH`` ids at a time)."""
    out: list[bytes | str] = []
    expr = _features_expr(s)
    for i in range(0, len(ids), ID_BATCH):
        out.extend(json_texts(s.execute(select(expr).where(Application.id.in_(ids[i:i + ID_BATCH]))).scalars().all()))
    return out


def latest_version(s: Session, kind: str) -> str | None:
    """The reference version of the most recently computed snapshot of ``kind``."""
    return s.execute(select(MonitorSnapshot.model_version).where(MonitorSnapshot.kind == kind)
                     .order_by(MonitorSnapshot.computed_at.desc()).limit(1)).scalar()


def stored_snapshots(s: Session, kind: str, granularity: str) -> tuple[str | None, list[Snapshot]]:
    """The version of the newest snapshots of ``kind``, and that version's snapshots of ``granularity``."""
    version = latest_version(s, kind)
    if version is None:
        return None, []
    return version, list(SnapshotRepository(s).list(kind, granularity=granularity, model_version=version))


def merge_ranges(ranges: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching ``[start, end)`` ranges merged (each row is then read once)."""
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# --------------------------------------------------------------------------- parsing
def _schema(kinds: Mapping[str, str]) -> pa.Schema:
    return pa.schema([(c, pa.string() if k == "categorical" else pa.float64()) for c, k in kinds.items()])


def parse_features(blobs: Sequence[bytes | str], kinds: Mapping[str, str]) -> pd.DataFrame:
    """Feature JSON documents -> a frame with one column per ``kinds`` key (missing -> NaN/None).

    Non-categorical columns are float64 (NaN for missing); categorical columns hold strings or None.
    """
    if not blobs:
        return pd.DataFrame({c: pd.Series(dtype=object if k == "categorical" else np.float64)
                             for c, k in kinds.items()})
    raw = [b if isinstance(b, bytes) else b.encode("utf-8") for b in blobs]
    # JSON allows raw newlines only as whitespace between tokens: one document per line is safe
    buf = b"\n".join(r.replace(b"\n", b" ") if b"\n" in r else r for r in raw)
    try:
        table = pj.read_json(pa.BufferReader(buf), read_options=pj.ReadOptions(block_size=1 << 24),
                             parse_options=pj.ParseOptions(explicit_schema=_schema(kinds),
                                                           unexpected_field_behavior="ignore"))
        if table.num_rows == len(raw):
            return table.to_pandas()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    return _parse_slow(raw, kinds)


def _parse_slow(raw: Sequence[bytes], kinds: Mapping[str, str]) -> pd.DataFrame:
    docs: list[Mapping[str, Any]] = []
    for r in raw:
        try:
            doc = json.loads(r)
        except ValueError:
            doc = {}
        docs.append(doc if isinstance(doc, dict) else {})
    cols: dict[str, Any] = {}
    for c, k in kinds.items():
        vals = [d.get(c) for d in docs]
        if k == "categorical":
            cols[c] = pd.Series([None if v is None else str(v) for v in vals], dtype=object)
        else:
            vals = [float(v) if isinstance(v, bool) else v for v in vals]
            cols[c] = pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce").astype(np.float64)
    return pd.DataFrame(cols)
