"""The canonical form of an audit payload and its hash (the standard library's rule), and the
orjson fast path that verification uses (same bytes, so the same hashes; whatever orjson would write
differently goes through the exact rule)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["canonical_json", "loads", "payload_matches", "sha256", "stored_payload_matches"]


def canonical_json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8", "surrogatepass")).hexdigest()


def payload_matches(payload: Any, expected: str) -> bool:
    """``sha256(canonical_json(payload)) == expected``, at C speed: orjson with sorted keys writes the
    same bytes as :func:`canonical_json` for the payloads the product writes; whatever it writes
    differently (exponent floats, huge integers, lone surrogates, NaN) falls back to the exact rule."""
    try:
        if hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest() == expected:
            return True
    except (TypeError, orjson.JSONEncodeError):
        pass
    return sha256(canonical_json(payload)) == expected


def loads(text_: str) -> Any:
    """A stored payload, exactly (the standard library: orjson would turn huge integers into floats)."""
    return json.loads(text_)


def stored_payload_matches(text_: str, expected: str) -> bool:
    """The payload as the database stored it (JSON text) hashes to ``expected``. orjson reads it
    first; when that does not match, the standard library reads it again (orjson turns integers past
    64 bits into floats, for one), so only a real difference fails."""
    try:
        if payload_matches(orjson.loads(text_), expected):
            return True
    except orjson.JSONDecodeError:
        pass
    try:
        return payload_matches(json.loads(text_), expected)
    except ValueError:
        return False
