"""Field encryption primitives: tokens, associated data, blind index, key parsing, masking, detail checks."""

from __future__ import annotations

import base64
import json
import re
import stat

import pytest

from backend.compliance import pii_keys as K
from backend.compliance.pii import (
    DEV_KEY_FILE,
    KEYS_FROM_ENV,
    KEYS_REQUIRED,
    add_file_key,
    load_pii_keyring,
    mask_identifier,
    protect_applicant,
    reveal_details,
)
from backend.compliance.pii_fields import (
    MSG_CONTROL,
    MSG_EMAIL,
    MSG_PHONE,
    MSG_SSN,
    MSG_UNKNOWN,
    clean_details,
)
from backend.compliance.pii_keys import (
    PiiDecryptError,
    PiiKeyError,
    PiiKeyRing,
    is_token,
    parse_keys,
    token_kid,
)
from backend.container.settings import load_settings
from backend.domain.validation import ApplicationInvalid
from backend.platform.config import SettingsError

TOKEN_RE = re.compile(r"^pii1:[A-Za-z0-9-]{1,32}:[A-Za-z0-9+/]+={0,2}$")
ROW = "0b6a3c1e-0000-4000-8000-000000000001"


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture(scope="module")
def ring() -> PiiKeyRing:
    return PiiKeyRing.generate()


def test_round_trip_token_format_and_fresh_nonces(ring):
    t1 = ring.encrypt("CUS7-000042", field="applications.applicant_id", row=ROW)
    t2 = ring.encrypt("CUS7-000042", field="applications.applicant_id", row=ROW)
    assert TOKEN_RE.match(t1) and t1 != t2 and "CUS7" not in t1
    assert token_kid(t1) == ring.active and is_token(t1) and not is_token("CUS7-000042")
    assert ring.decrypt(t1, field="applications.applicant_id", row=ROW) == "CUS7-000042"
    assert ring.reveal("plain-pre-0007", field="x", row=ROW) == "plain-pre-0007"  # old rows stay readable
    assert len(t1) <= 255  # fits the widened column, for the longest allowed id too
    assert len(ring.encrypt("x" * 64, field="applications.applicant_id", row=ROW)) <= 255


def test_associated_data_binds_field_and_row_and_tampering_fails(ring):
    t = ring.encrypt("Jane Q. Public", field="applications.pii", row=ROW)
    for field, row in (("applications.applicant_id", ROW), ("applications.pii", ROW[:-1] + "2")):
        with pytest.raises(PiiDecryptError, match=re.escape(K.TOKEN_INVALID)):
            ring.decrypt(t, field=field, row=row)
    head, blob = t.rsplit(":", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    with pytest.raises(PiiDecryptError, match=re.escape(K.TOKEN_INVALID)):
        ring.decrypt(f"{head}:{_b64(bytes(raw))}", field="applications.pii", row=ROW)
    kid = ring.active
    for bad in ("pii1:only-two", f"pii1:{kid}:!!!", f"pii1:{kid}:AAAA", "not a token"):
        with pytest.raises(PiiDecryptError, match=re.escape(K.TOKEN_MALFORMED)):
            ring.decrypt(bad, field="applications.pii", row=ROW)
    other = PiiKeyRing.generate()
    with pytest.raises(PiiDecryptError, match="not in the ring"):
        other.decrypt(t, field="applications.pii", row=ROW)


def test_blind_index_is_keyed_deterministic_and_per_key(ring):
    a = ring.blind_index("CUS7-000042")
    assert re.fullmatch(r"[0-9a-f]{64}", a) and a == ring.blind_index("CUS7-000042")
    assert a != ring.blind_index("CUS7-000043") and a != ring.blind_index("CUS7-000042", field="email")
    assert a != PiiKeyRing.generate().blind_index("CUS7-000042")  # keyed: another key, another index
    both = ring.with_new_key()
    assert both.active != ring.active and set(both.kids) == {ring.active, both.active}
    assert a in both.blind_indexes("CUS7-000042") and len(both.blind_indexes("CUS7-000042")) == 2
    assert both.decrypt(ring.encrypt("v", field="f", row=ROW), field="f", row=ROW) == "v"  # old keys still read
    assert both.without(ring.active).kids == (both.active,)
    with pytest.raises(PiiKeyError, match=re.escape(K.ACTIVE_REMOVED.format(kid=both.active))):
        both.without(both.active)


def test_key_parsing_errors_never_hold_key_material():
    good = _b64(bytes(range(32)))
    assert parse_keys(json.dumps({"k1": good})) == {"k1": bytes(range(32))}
    cases = [("not json", K.KEYS_NOT_JSON), ("[]", K.KEYS_NOT_OBJECT), ("{}", K.KEYS_EMPTY),
             (json.dumps({"k_1": good}), K.KEY_ID_BAD), (json.dumps({"k1": _b64(b"short")}), K.KEY_BAD.format(kid="k1")),
             (json.dumps({"k1": "changeme"}), K.KEY_BAD.format(kid="k1")),
             (json.dumps({"k1": _b64(b"\x00" * 32)}), K.KEY_WEAK.format(kid="k1"))]
    for raw, msg in cases:
        with pytest.raises(PiiKeyError) as exc:
            parse_keys(raw)
        assert str(exc.value) == msg and good not in str(exc.value)
    with pytest.raises(PiiKeyError, match=re.escape(K.ACTIVE_AMBIGUOUS.format(n=2))):
        PiiKeyRing({"a": bytes(range(32)), "b": bytes(range(1, 33))})
    with pytest.raises(PiiKeyError, match=re.escape(K.ACTIVE_UNKNOWN.format(kid="c"))):
        PiiKeyRing({"a": bytes(range(32))}, "c")
    assert good not in repr(PiiKeyRing({"a": bytes(range(32))}))


def test_settings_name_the_variable_and_production_needs_keys(tmp_path):
    with pytest.raises(SettingsError, match=r"^Invalid setting CREDITRISK_PII__KEYS: holds no key$"):
        load_settings(data_dir=tmp_path, pii={"keys": "{}"})
    with pytest.raises(SettingsError, match="CREDITRISK_PII__ACTIVE_KID"):
        load_settings(data_dir=tmp_path, pii={"active_kid": "bad kid!"})
    prod = load_settings(data_dir=tmp_path, env="production", auth={"cookie_key": "x" * 40})
    with pytest.raises(PiiKeyError, match=re.escape(KEYS_REQUIRED)):
        load_pii_keyring(prod)
    keys = {"k2026a": _b64(bytes(range(32))), "k2025b": _b64(bytes(range(2, 34)))}
    s = load_settings(data_dir=tmp_path, env="production", auth={"cookie_key": "x" * 40},
                      pii={"keys": json.dumps(keys), "active_kid": "k2026a"})
    r = load_pii_keyring(s)
    assert r.active == "k2026a" and set(r.kids) == set(keys)
    assert not (tmp_path / DEV_KEY_FILE).exists()  # nothing written in production
    with pytest.raises(PiiKeyError, match=re.escape(KEYS_FROM_ENV)):
        add_file_key(s)


def test_dev_ring_is_made_once_with_mode_0600_and_rotates(tmp_path):
    s = load_settings(data_dir=tmp_path)
    first = load_pii_keyring(s)
    path = tmp_path / DEV_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_pii_keyring(s).active == first.active  # the same ring on every start
    token = first.encrypt("v", field="f", row=ROW)
    rotated = add_file_key(s)
    again = load_pii_keyring(s)
    assert again.active == rotated.active != first.active and set(again.kids) == {first.active, rotated.active}
    assert again.decrypt(token, field="f", row=ROW) == "v"
    assert load_pii_keyring(load_settings(data_dir=tmp_path, pii={"key_file": path})).active == rotated.active


@pytest.mark.parametrize(("value", "masked"), [
    ("CUS7-000042", "CUS…0042"), ("JOHN-DOE-555", "…-555"), ("a1b2c3d4e5f6", "…e5f6"), ("abcdefg", "…efg"),
    ("abcd", "…"), ("", ""), ("cus7-000042", "…0042"), ("AB-123", "…23")])
def test_mask_keeps_a_short_suffix_and_a_type_code(value, masked):
    assert mask_identifier(value) == masked


def test_protect_applicant_columns(ring):
    cols = protect_applicant(ring, ROW, "CUS7-000042", {"name": "Jane Q. Public", "ssn": "123-45-6789"})
    assert set(cols) == {"applicant_id", "applicant_ref", "applicant_mask", "pii"}
    assert is_token(cols["applicant_id"]) and is_token(cols["pii"]) and cols["applicant_mask"] == "CUS…0042"
    assert "Jane" not in cols["pii"] and "6789" not in cols["pii"]
    assert reveal_details(ring, ROW, cols["pii"]) == {"name": "Jane Q. Public", "ssn": "123-45-6789"}
    assert protect_applicant(ring, ROW, "x", {})["pii"] is None


def test_details_are_validated_normalised_and_never_echoed():
    given = {"name": "  Jane  ", "ssn": "123456789", "email": "j@example.org", "phone": "+1 (555) 010-0100",
             "address": "1 Main St\nSpringfield"}
    assert clean_details(given) == {**given, "name": "Jane", "ssn": "123-45-6789"}
    assert clean_details(None) == {} and clean_details({"name": "  ", "ssn": None}) == {}
    secret = "98-765-4321"
    with pytest.raises(ApplicationInvalid) as exc:
        clean_details({"ssn": secret, "email": "nope", "phone": "12", "name": "Jane\x1b[31m", "dob": "1990"})
    got = {e.field: e.message for e in exc.value.errors}
    assert got == {"applicant.ssn": MSG_SSN, "applicant.email": MSG_EMAIL, "applicant.phone": MSG_PHONE,
                   "applicant.name": MSG_CONTROL, "applicant.dob": MSG_UNKNOWN}
    assert secret not in str(exc.value) and "Jane" not in str(exc.value)
    with pytest.raises(ApplicationInvalid):
        clean_details("Jane")
