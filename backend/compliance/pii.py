"""Personal data protection: the key ring from settings, masking, and the encrypted columns of an
application.

* :func:`load_pii_keyring`: ``CREDITRISK_PII__KEYS`` (+ ``ACTIVE_KID``), else ``pii.key_file``,
  else (dev and test only) a ring created once under ``data_dir/secrets/pii.json`` with mode 0600.
  Production without a configured ring refuses to start (:data:`KEYS_REQUIRED`).
* :func:`mask_identifier`: what screens show of an applicant id (``CUS…0042``, ``…-555``).
* :func:`protect_applicant`: the columns written for a new application: the encrypted applicant
  id, its blind index, its mask and the encrypted direct PII (name, address, SSN, email, phone).

Key material and the protected values never appear in messages, logs or reprs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from backend.compliance.config import PiiSettings
from backend.compliance.pii_keys import (
    TOKEN_PREFIX,
    PiiDecryptError,
    PiiKeyError,
    PiiKeyRing,
    is_token,
    parse_keys,
    token_kid,
)
from backend.platform.secret_file import write_secret_file

__all__ = ["APPLICANT_FIELD", "DETAILS_FIELD", "DEV_KEY_FILE", "KEYS_REQUIRED", "TOKEN_PREFIX", "PiiDecryptError",
           "PiiKeyError", "PiiKeyRing", "is_token", "key_file_path", "load_pii_keyring", "mask_identifier",
           "protect_applicant", "protect_intake", "token_kid", "write_key_file"]

DEV_KEY_FILE = Path("secrets") / "pii.json"
APPLICANT_FIELD = "applications.applicant_id"  # associated data: the field a token belongs to
DETAILS_FIELD = "applications.pii"
MASK = "…"
KEYS_REQUIRED = ("CREDITRISK_PII__KEYS (with CREDITRISK_PII__ACTIVE_KID) or CREDITRISK_PII__KEY_FILE must be set "
                 "in production: applicant data is encrypted with it (make a key with `creditrisk pii keys new`)")
KEY_FILE_MISSING = "the PII key file {path} does not exist"
KEYS_FROM_ENV = ("the PII keys come from CREDITRISK_PII__KEYS: add the new key to your secret store "
                 "(`creditrisk pii keys new` prints one) and set CREDITRISK_PII__ACTIVE_KID")



class KeyRingSettings(Protocol):
    """What the key ring reads from the settings: the deployment (``env``, ``data_dir``) and the ``pii`` section."""

    @property
    def env(self) -> str: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def pii(self) -> PiiSettings: ...


def key_file_path(settings: KeyRingSettings) -> Path:
    return settings.pii.key_file or settings.data_dir / DEV_KEY_FILE


def write_key_file(path: Path, ring: PiiKeyRing, *, replace: bool) -> bool:
    """Write ``ring`` with mode 0600 atomically. ``replace=False``: only if no file exists yet (False
    when another process created it first: concurrent workers agree on one ring)."""
    return write_secret_file(path, ring.to_json(), replace=replace, prefix=".pii-")


def load_pii_keyring(settings: KeyRingSettings) -> PiiKeyRing:
    """The configured ring; outside production without one, the dev ring under ``data_dir``."""
    configured = settings.pii.keys.get_secret_value().strip()
    if configured:
        return PiiKeyRing(parse_keys(configured), settings.pii.active_kid or None)
    if settings.pii.key_file is not None:
        if not settings.pii.key_file.exists():
            raise PiiKeyError(KEY_FILE_MISSING.format(path=settings.pii.key_file))
        return _from_file(settings.pii.key_file, settings.pii.active_kid)
    if settings.env == "production":
        raise PiiKeyError(KEYS_REQUIRED)
    path = key_file_path(settings)
    if not path.exists():
        write_key_file(path, PiiKeyRing.generate(), replace=False)
    return _from_file(path, settings.pii.active_kid)


def _from_file(path: Path, active_kid: str) -> PiiKeyRing:
    ring = PiiKeyRing.from_json(path.read_text())
    return ring.with_active(active_kid) if active_kid else ring


def add_file_key(settings: KeyRingSettings) -> PiiKeyRing:
    """Add a fresh key to the key file and make it active (dev ring or ``pii.key_file``).

    Refused when the keys come from ``CREDITRISK_PII__KEYS`` (the operator's secret store owns them)."""
    if settings.pii.keys.get_secret_value().strip():
        raise PiiKeyError(KEYS_FROM_ENV)
    ring = load_pii_keyring(settings).with_new_key()
    write_key_file(key_file_path(settings), ring, replace=True)
    return ring


def mask_identifier(value: str | None) -> str:
    """What a screen shows of an identifier: its last 4 characters (fewer for short ids), and a short
    letter type code when the id starts with one (``CUS7-000042`` → ``CUS…0042``)."""
    v = str(value or "")
    n = len(v)
    if n == 0:
        return ""
    keep = 4 if n >= 8 else max(n - 4, 0)
    head = ""
    if n >= 10:
        letters = len(v) - len(v.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        if 2 <= letters <= 3 and not v[letters].isalpha():
            head = v[:letters]
    return head + MASK + (v[n - keep:] if keep else "")


def protect_applicant(ring: PiiKeyRing, application_id: str, applicant_id: str,
                      details: Mapping[str, str] | None) -> dict[str, Any]:
    """The PII columns of a new application row (``details``: already validated, see
    :func:`backend.compliance.pii_fields.clean_details`)."""
    row = str(application_id)
    return {
        "applicant_id": ring.encrypt(applicant_id, field=APPLICANT_FIELD, row=row),
        "applicant_ref": ring.blind_index(applicant_id),
        "applicant_mask": mask_identifier(applicant_id),
        "pii": (ring.encrypt(json.dumps(dict(details), ensure_ascii=False, sort_keys=True), field=DETAILS_FIELD,
                             row=row) if details else None),
    }


def reveal_details(ring: PiiKeyRing, application_id: str, stored: str | None) -> dict[str, str]:
    """The direct PII of a row in clear (empty when none was given)."""
    if not stored:
        return {}
    data = json.loads(ring.reveal(stored, field=DETAILS_FIELD, row=str(application_id)))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


NO_RING = "no PII key ring: build the scoring service with pii=load_pii_keyring(settings)"


def protect_intake(ring: PiiKeyRing | None, application_id: object, applicant_id: str,
                   details: object) -> dict[str, Any]:
    """:func:`protect_applicant` for one submitted application: ``details`` is the raw ``applicant``
    object (validated here: :class:`~backend.domain.validation.ApplicationInvalid` names the field)."""
    from backend.compliance.pii_fields import clean_details

    if ring is None:
        raise PiiKeyError(NO_RING)
    return protect_applicant(ring, str(application_id), applicant_id, clean_details(details))


def applicant_masked(app: Any) -> str:
    """What screens show of the applicant id: the mask stored with the row (0007), else one made
    from a plaintext pre-0007 value; never decrypts (revealing is :mod:`backend.compliance.pii_reveal`)."""
    if app.applicant_mask:
        return app.applicant_mask
    return "" if is_token(app.applicant_id) else mask_identifier(app.applicant_id)
