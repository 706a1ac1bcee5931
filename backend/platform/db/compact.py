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

**Catalogue vectors** (migration 0020, issue 21 item 4): a features or attributions dict whose keys are exactly
the frozen catalogue names in their order (``vector_v1.names``; every application scored by the product's own
model) does not need its keys stored:

* header 3: the JSON list of its values as orjson writes it, with dictionary 1 (features 417 -> ~267 bytes on the
  default history); read back by orjson;
* header 5: the same when the standard library had to write the list (NaN, infinity, integers past 64 bits, lone
  surrogates); read back by it;
* header 4: a dict whose values are all floats with at most 6, 8 or 10 decimals (the scorer rounds attributions to
  8): the number of decimals, a bitmap of the non-zero values and each of those as a zig-zag varint of value x
  10^decimals, -0.0 as a listed 0 (attributions 187 -> ~79 bytes); used only when every value reads back bit for
  bit (no NaN or infinity; an integer 0 or True is not a float).

Anything else (another key set or order, a look-alike letter in a name, a dict subclass) takes header 1 as before.
"""

from __future__ import annotations

import json
import math
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect

from backend.platform.db.engine import json_bytes, json_dumps

HEADERS = {1: "compact_v1.dict", 2: "audit_v1.dict"}  # header byte -> its frozen dictionary (never edit one: add one)
CURRENT = 1  # the book's columns
AUDIT = 2  # audit_log.payload
VECTOR_LIST = 3  # a dict keyed by the frozen catalogue names: its values as a JSON list, dictionary 1
VECTOR_FIXED = 4  # such a dict of floats with few decimals: decimals, bitmap of non-zero values, zig-zag varints
VECTOR_TEXT = 5  # header 3 for values orjson does not write (NaN, infinity, huge integers): the standard library's
VECTORS = dict.fromkeys((VECTOR_LIST, VECTOR_FIXED, VECTOR_TEXT), "vector_v1.names")  # frozen: add a file, never edit
FIXED_DECIMALS = (6, 8, 10)  # tried in this order: the fewest that hold every value exactly
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


@cache
def vector_names(header: int = VECTOR_LIST) -> tuple[str, ...]:
    """The frozen key list of a catalogue-vector header, in order."""
    return tuple((Path(__file__).with_name(VECTORS[header])).read_text("utf-8").splitlines())


def _varints(out: bytearray, n: int) -> None:
    z = n << 1 if n >= 0 else (-n << 1) - 1  # zig-zag: small magnitudes of either sign take few bytes
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _fixed(values: list[Any]) -> bytes | None:
    """Header 4's bytes for ``values`` when every one is a float that reads back exactly; else None."""
    for v in values:
        if type(v) is not float or not abs(v) < 1e15:
            return None  # (NaN and infinity fail the comparison; past 1e15 no decimals are left to save)
    for decimals in FIXED_DECIMALS:
        scale, bitmap, out = 10 ** decimals, 0, bytearray()
        for i, v in enumerate(values):
            if v:
                n = round(v * scale)
                if n / scale != v:  # (an exact float of a nonzero value: equal means the same bits)
                    break
                bitmap |= 1 << i
                _varints(out, n)
            elif math.copysign(1.0, v) < 0:  # -0.0 (rounding a tiny negative gives it): a listed zero
                bitmap |= 1 << i
                out.append(0)
        else:
            return bytes((VECTOR_FIXED, decimals)) + bitmap.to_bytes((len(values) + 7) // 8, "little") + bytes(out)
    return None


def _vector(value: Any) -> bytes | None:
    """A catalogue vector's stored bytes (header 4, else 3 or 5), or None for any other value."""
    names = vector_names()
    if type(value) is not dict or len(value) != len(names) or tuple(value) != names:
        return None
    values = list(value.values())
    fixed = _fixed(values)
    if fixed is not None:
        return fixed
    text, by_orjson = json_bytes(values)
    co = _compressor(CURRENT)
    return bytes((VECTOR_LIST if by_orjson else VECTOR_TEXT,)) + co.compress(text) + co.flush()


def _compressor(version: int) -> Any:
    d = dictionary(version)
    # a copy of a primed compressor beats loading a large dictionary again (13 kB: 41 -> 32 us), not a small one
    return _primed(version).copy() if len(d) > PRIME_ABOVE else zlib.compressobj(
        LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, d)


def _inflate(data: bytes, version: int) -> bytes:
    do = zlib.decompressobj(-15, dictionary(version))
    try:
        text = do.decompress(data) + do.flush()
    except zlib.error as exc:
        raise CompactJSONError(f"corrupt compact JSON value ({len(data) + 1} bytes): {exc}") from exc
    if not do.eof or do.unused_data:
        raise CompactJSONError(f"corrupt compact JSON value ({len(data) + 1} bytes): truncated or trailing bytes")
    return text


def _unfixed(data: bytes, names: tuple[str, ...]) -> dict[str, float]:
    """Header 4's dict from its bytes after the header byte."""
    width = (len(names) + 7) // 8
    if len(data) < 1 + width or data[0] not in FIXED_DECIMALS:
        raise CompactJSONError(f"corrupt catalogue vector ({len(data) + 1} bytes): bad header")
    scale, bitmap, pos, end = 10 ** data[0], int.from_bytes(data[1:1 + width], "little"), 1 + width, len(data)
    if bitmap >> len(names):
        raise CompactJSONError(f"corrupt catalogue vector ({end + 1} bytes): a value past the last name")
    values = [0.0] * len(names)
    while bitmap:
        low = bitmap & -bitmap
        bitmap ^= low
        z = shift = 0
        while True:
            if pos >= end:
                raise CompactJSONError(f"corrupt catalogue vector ({end + 1} bytes): truncated")
            b = data[pos]
            pos += 1
            z |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        values[low.bit_length() - 1] = (z >> 1 if not z & 1 else -(z >> 1) - 1) / scale if z else -0.0
    if pos != end:
        raise CompactJSONError(f"corrupt catalogue vector ({end + 1} bytes): trailing bytes")
    return dict(zip(names, values, strict=True))


def _vector_value(data: bytes) -> tuple[dict[str, Any], bool]:
    """The dict of a stored catalogue vector (``data`` starts with its header byte 3, 4 or 5), and whether orjson
    can write it as it is (no NaN, infinity, integer past 64 bits or lone surrogate in it)."""
    names = vector_names(data[0])
    if data[0] == VECTOR_FIXED:
        return _unfixed(data[1:], names), True
    text = _inflate(data[1:], CURRENT)
    plain = data[0] == VECTOR_LIST  # orjson wrote it: orjson reads it (~5x the standard library on 94 numbers)
    try:
        values = orjson.loads(text) if plain else json.loads(text)
    except ValueError as exc:
        raise CompactJSONError(f"corrupt catalogue vector ({len(data)} bytes): {exc}") from exc
    if type(values) is not list or len(values) != len(names):
        raise CompactJSONError(f"corrupt catalogue vector ({len(data)} bytes): not {len(names)} values")
    return dict(zip(names, values, strict=True)), plain


def dumps(value: Any, version: int = CURRENT, *, vectors: bool = True) -> bytes:
    """The stored bytes of ``value`` (any JSON-serialisable value) with dictionary ``version``; with the book's
    dictionary, a catalogue vector takes header 3, 4 or 5 (module docstring) unless ``vectors`` is False (what
    revisions before 0020 wrote)."""
    if version == CURRENT and vectors:
        vector = _vector(value)
        if vector is not None:
            return vector
    # the JSON columns' own writer: orjson (attributions 24 -> 6 us; features, scanned for NaN because they hold
    # nulls, 29 -> 21 us), the standard library for what orjson would write differently (NaN, lone surrogates,
    # integers past 64 bits); either text parses back to the same value
    text = json_dumps(value).encode("utf-8")
    co = _compressor(version)
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
    if data[0] in VECTORS:  # the dict's text (drift parses features in bulk as JSON objects)
        value, plain = _vector_value(data)
        return orjson.dumps(value) if plain else json_dumps(value).encode("utf-8")
    return _inflate(data[1:], data[0])


def is_plain(raw: bytes | memoryview | str) -> bool:
    """Whether a stored value is plain JSON text (written before migration 0015), not compact."""
    if isinstance(raw, str):
        return True
    head = bytes(raw[:1])
    return not head or head[0] in _PLAIN_START


def loads(raw: bytes | memoryview | str) -> Any:
    """The value of stored bytes (compact, or plain JSON text from before the migration)."""
    if not isinstance(raw, str) and raw[:1] and raw[0] in VECTORS:
        return _vector_value(bytes(raw))[0]
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
