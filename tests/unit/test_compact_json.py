"""Compact JSON columns (backend/platform/db/compact.py): lossless for any JSON, small for the book's rows,
loud on what it cannot read, and its dictionary frozen."""

from __future__ import annotations

import hashlib
import json
import math
import zlib

import pytest

from backend.domain.features import FEATURES
from backend.platform.db import compact

# the dictionary's bytes are part of every stored row: an edit makes the rows written with it unreadable
DICT_V1_SHA256 = "a6331b3edb4e574408e4a8d807dcea2bc4d5abd90f8cc9af5bc165efbd199bc2"
AUDIT_V1_SHA256 = "d0b9243589132af7ea3417a86ee7280667e5901c8e324d7bee70115107babd20"

ODD_VALUES = [
    {}, [], {"": ""}, {"a": None}, [None, True, False, 0, -0.0, 1e308, -1e-308, 2**63, -(2**70)],
    {"income": "4\u04270"},  # a Cyrillic look-alike in a string
    {"name": "Ηome", "k": "\u200b"},  # Greek capital eta, zero-width space
    {"nested": {"deeper": [{"x": [1, [2, [3]]]}]}},
    {"text": "line\nbreak\t\"quoted\"\\ and \u2028 separator"},
    {"emoji": "\U0001f4b8", "accents": "\u00e9\u00e8", "lone surrogate": "\ud800x", "nul": "a\x00b"},
    {f.name: None for f in FEATURES},
    {"months_employed": 136.0, "employment_type": "full_time", "x" * 5000: "y" * 20000},
    "just a string", 3.14159, 0, True, None, ["annual_income", "annual_income"],
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=range(len(ODD_VALUES)))
@pytest.mark.parametrize("version", [compact.CURRENT, compact.AUDIT])
def test_any_json_value_round_trips_exactly(value, version):
    raw = compact.dumps(value, version)
    # (a dict keyed by the whole catalogue is a vector: tests/unit/test_compact_vectors.py)
    assert raw[0] in ({version, *compact.VECTORS} if version == compact.CURRENT else {version})
    assert not compact.is_plain(raw)
    back = compact.loads(raw)
    assert back == value and json.dumps(back, sort_keys=True) == json.dumps(value, sort_keys=True)


def test_an_audit_payload_keeps_its_hash_and_is_a_third_of_its_text():
    from backend.compliance.audit_payload import canonical_json, sha256

    payload = {"application_id": "46daa604-f992-4bf1-96e6-27039f7821f4", "recommendation": "approve",
               "prediction_id": "b92957b9-7ed2-4e51-b7db-4f699b88a816", "risk_class": "low_risk",
               "outcome": "approve", "status": "final", "is_override": False, "reason_code": None,
               "reason_text": None, "materiality": [], "loan_amount": 4800.0, "loan_amount_cap": 25000.0,
               "decision_seconds": 815.0890950198587, "ai_visible": False, "note": "Ηome \u202e"}
    raw = compact.dumps(payload, compact.AUDIT)
    assert sha256(canonical_json(compact.loads(raw))) == sha256(canonical_json(payload))
    assert len(raw) < len(canonical_json(payload).encode()) / 2, len(raw)


def test_nan_and_infinity_round_trip_as_json_does():
    back = compact.loads(compact.dumps({"a": math.nan, "b": math.inf, "c": -math.inf}))
    assert math.isnan(back["a"]) and back["b"] == math.inf and back["c"] == -math.inf


def test_float_precision_is_kept_to_the_last_bit():
    vals = [0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, 0.02829814, -3.643e-05]
    assert compact.loads(compact.dumps(vals)) == vals


def test_a_full_catalogue_row_is_a_fraction_of_its_text():
    row = {f.name: (f"{f.name}_value" if f.kind == "categorical" else round(1234.5678 * (i + 1) % 997, 4))
           for i, f in enumerate(FEATURES)}
    text = json.dumps(row).encode()
    raw = compact.dumps(row)
    assert len(raw) < len(text) / 3, (len(raw), len(text))
    assert compact.loads(raw) == row


def test_plain_json_from_before_the_migration_is_read_as_json():
    for text in ('{"a": 1}', "[1, 2]", "null", ' {"a": 1}', "\n[]", '"s"', "12", "true"):
        assert compact.is_plain(text) and compact.is_plain(text.encode())
        assert compact.loads(text) == json.loads(text) == compact.loads(memoryview(text.encode()))


def test_unknown_header_and_corrupt_bytes_fail_loudly():
    with pytest.raises(compact.CompactJSONError, match="header 7 is not known"):
        compact.loads(b"\x07" + b"anything")
    good = compact.dumps({"annual_income": 47200.0})
    for bad in (good[:-3], good[:1] + bytes(b ^ 0x5A for b in good[1:]), b"\x01", b"", good + b"\x00"):
        with pytest.raises(compact.CompactJSONError, match="compact JSON"):
            compact.loads(bad)
    # and a different dictionary cannot read it (the dictionary is part of the format)
    do = zlib.decompressobj(-15, b"x" * 100)
    with pytest.raises(zlib.error):
        do.decompress(good[1:]) + do.flush()


def test_the_dictionary_is_frozen():
    assert hashlib.sha256(compact.dictionary(1)).hexdigest() == DICT_V1_SHA256
    assert hashlib.sha256(compact.dictionary(compact.AUDIT)).hexdigest() == AUDIT_V1_SHA256
    assert compact.HEADERS[compact.CURRENT] and all(0 < h < 0x09 for h in compact.HEADERS)
