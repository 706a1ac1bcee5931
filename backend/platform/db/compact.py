"""Compact JSON columns: the large per-application JSON values stored in a fraction of their text.

``applications.features`` (94 keys), ``predictions.attributions`` (94 keys) and ``predictions.reasons``
were 5.7 kB of JSON text per application, half of the database. :class:`CompactJSON` stores them as one
header byte (the dictionary's version) and raw DEFLATE of the compact JSON text, with a preset
dictionary (zlib's ``zdict``) holding what every row repeats: the feature names in catalogue order, the
reason codes and texts, the feature descriptions. On the default history: features 2,750 → 417 bytes,
attributions 2,707 → 192, reasons 700 → 103; a value costs ~40 µs more to write and ~8 µs more to read than
its JSON text (``bench/compact_rows.py`` prints both for a data dir).

Lossless: a value reads back as exactly what ``json.loads`` gives for the text ``json.dumps`` wrote
(NaN included), so every reader sees the same dicts and lists as before. Why not a binary float array:
the columns hold strings, integers and nulls too, and a lender's own file has other feature names; the
dictionary only helps compression, any JSON round-trips.

The dictionary file is frozen: a row written with it is readable only with the same bytes. A changed
catalogue gets a new file and a new header byte (a control character), never an edit
(``tests/unit/test_compact_json.py`` pins the file's SHA-256). A value that starts the way JSON text can (one
written before migration 0015) is read as plain JSON.
"""

from __future__ import annotations

import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect

HEADERS = {1: "compact_v1.dict"}  # header byte -> its frozen dictionary (never edit one: add one)
CURRENT = 1
LEVEL = 6  # zlib level: 9 gives the same sizes here, 1 is 50% larger
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


def dumps(value: Any) -> bytes:
    """The stored bytes of ``value`` (any JSON-serialisable value)."""
    # ASCII with \u escapes, as the JSON columns wrote it: any str goes in, a lone surrogate included
    text = json.dumps(value, separators=(",", ":")).encode("ascii")
    co = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary(CURRENT))
    return bytes((CURRENT,)) + co.compress(text) + co.flush()


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
    """A JSON value stored compactly (see the module docstring); SQL ``NULL`` for ``None``."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else loads(value)
