"""Compact JSON columns: the large per-application JSON values stored in a fraction of their text.

``applications.features`` (94 keys), ``predictions.attributions`` (94 keys) and ``predictions.reasons``
were 5.7 kB of JSON text per application, half of the database. :class:`CompactJSON` stores them as one
header byte (the dictionary's version) and raw DEFLATE of the compact JSON text, with a preset
dictionary (zlib's ``zdict``) holding what every row repeats: the feature names in catalogue order, the
reason codes and texts, the feature descriptions. On the default history: features 2,750 → 417 bytes,
attributions 2,707 → 192, reasons 700 → 103; a value costs ~40 µs more to write and ~8 µs more to read than
its JSON text (``bench/compact_rows.py`` prints both for a data dir).

Lossless: a value reads back as exactly what ``json.loads`` gives for the text the JSON columns' writer
(``engine.json_dumps``: orjson, or ``json.dumps`` where orjson would write otherwise) produced, NaN included, so
every reader sees the same dicts and lists as before. Why not a binary float array:
the columns hold strings, integers and nulls too, and a lender's own file has other feature names; the
dictionary only helps compression, any JSON round-trips.

The dictionary file is frozen: a row written with it is readable only with the same bytes. A changed
catalogue gets a new file and a new header byte (a control character), never an edit
(``tests/unit/test_compact_json.py`` pins the file's SHA-256). A value that starts the way JSON text can (one
written before migration 0015) is read as plain JSON.

Audit payloads (migration 0017) use their own dictionary (header 2, ``audit_v1.dict``: the payload keys and the
enumerated values the product writes, e.g. recommendations, statuses, reason codes; built once from the default
history's payloads with identifiers, versions and dates left out): 359 -> ~131 bytes on the default history. A
payload's hash is over its canonical JSON, computed from the value, so how it is stored does not change it.
"""

from __future__ import annotations

import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect

from backend.platform.db.engine import json_dumps

HEADERS = {1: "compact_v1.dict", 2: "audit_v1.dict"}  # header byte -> its frozen dictionary (never edit one: add one)
CURRENT = 1  # the book's columns
AUDIT = 2  # audit_log.payload
LEVEL = 6  # zlib level: 9 gives the same sizes here, 1 is 50% larger
PRIME_ABOVE = 4096  # dictionary bytes above which a value's compressor is copied from a primed one
# a header byte is a control character JSON text never starts with (JSON may start with whitespace)
_PLAIN_START = frozenset(range(0x20, 0x100)) | {0x09, 0x0A, 0x0D}


class CompactJSONError(ValueError):
    """A stored value that is neither compact JSON this version knows nor plain JSON text."""


@cache
def dictionary(version: int) -> bytes:
    name = HEADERS.get(version)
    if name is None:
        raise CompactJSONError(f"compact JSON header {version} is not known to this version of creditrisk "
                               f"(known: {sorted(HEADERS)}); was the row written by a newer one?")
    return (Path(__file__).with_name(name)).read_bytes()


@cache
def _primed(version: int) -> Any:
    """A compressor with ``version``'s dictionary already loaded: each value starts from a copy of it."""
    return zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary(version))


def dumps(value: Any, version: int = CURRENT) -> bytes:
    """The stored bytes of ``value`` (any JSON-serialisable value) with dictionary ``version``."""
    # the JSON columns' own writer: orjson (attributions 24 -> 6 us; features, scanned for NaN because they hold
    # nulls, 29 -> 21 us), the standard library for what orjson would write differently (NaN, lone surrogates,
    # integers past 64 bits); either text parses back to the same value
    text = json_dumps(value).encode("utf-8")
    d = dictionary(version)
    # a copy of a primed compressor beats loading a large dictionary again (13 kB: 41 -> 32 us), not a small one
    co = _primed(version).copy() if len(d) > PRIME_ABOVE else zlib.compressobj(
        LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, d)
    return bytes((version,)) + co.compress(text) + co.flush()


def json_text(raw: bytes | memoryview | str) -> bytes:
    """The JSON text (UTF-8) of a stored value, for readers that parse many rows at once (drift)."""
    if isinstance(raw, str):
        return raw.encode("utf-8")
    data = bytes(raw)
    if not data:
        raise CompactJSONError("empty compact JSON value")
    if is_plain(data):
        return data
    do = zlib.decompressobj(-15, dictionary(data[0]))
    try:
        text = do.decompress(data[1:]) + do.flush()
    except zlib.error as exc:
        raise CompactJSONError(f"corrupt compact JSON value ({len(data)} bytes): {exc}") from exc
    if not do.eof or do.unused_data:
        raise CompactJSONError(f"corrupt compact JSON value ({len(data)} bytes): truncated or trailing bytes")
    return text


def is_plain(raw: bytes | memoryview | str) -> bool:
    """Whether a stored value is plain JSON text (written before migration 0015), not compact."""
    if isinstance(raw, str):
        return True
    head = bytes(raw[:1])
    return not head or head[0] in _PLAIN_START


def loads(raw: bytes | memoryview | str) -> Any:
    """The value of stored bytes (compact, or plain JSON text from before the migration)."""
    return json.loads(json_text(raw))


class CompactJSON(TypeDecorator[Any]):
    """A JSON value stored compactly (see the module docstring); SQL ``NULL`` for ``None``.

    ``version``: the dictionary new values are written with; ``since``: the migration from which the column
    stores compact values (backups of older revisions hold them as JSON)."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, version: int = CURRENT, since: str = "0015") -> None:
        super().__init__()
        self.version, self.since = version, since

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else dumps(value, self.version)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else loads(value)
