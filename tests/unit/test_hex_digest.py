"""``HexDigest`` (backend/platform/db/base.py): audit hashes and the applicant blind index stored as their bytes,
read back as the very same hex text; nothing that could not read back the same goes in."""

from __future__ import annotations

import hashlib

import pytest

from backend.platform.db.base import HexDigest

DIGEST = hashlib.sha256(b"creditrisk").hexdigest()


@pytest.mark.parametrize("value", [DIGEST, "", "00" * 32, "ff", hashlib.sha1(b"x").hexdigest()])
def test_lowercase_hex_round_trips_through_its_bytes(value):
    t = HexDigest()
    raw = t.process_bind_param(value, None)
    assert isinstance(raw, bytes) and len(raw) == len(value) // 2
    assert t.process_result_value(raw, None) == value
    assert t.process_result_value(memoryview(raw), None) == value  # (how some drivers hand bytes over)


@pytest.mark.parametrize("bad", [DIGEST.upper(), DIGEST[:-1], " " + DIGEST, DIGEST[:10] + " " + DIGEST[10:],
                                 "zz", "0x" + DIGEST, "\u0430b", "ab\n"])
def test_what_would_not_read_back_the_same_is_refused(bad):
    with pytest.raises(ValueError, match="not a lowercase hex digest"):
        HexDigest().process_bind_param(bad, None)


def test_text_already_in_the_database_reads_back_unchanged():
    """SQLite keeps a value the migration could not convert (or one written around the product) as text."""
    assert HexDigest().process_result_value("NOT-HEX", None) == "NOT-HEX"
    assert HexDigest().process_result_value(None, None) is None
