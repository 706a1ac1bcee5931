"""The applicant's direct personal data accepted with an application, and its validation.

``applicant`` is an optional object ``{name, address, ssn, email, phone}`` (every field optional).
It is validated here (the console, the CLI and the scoring service) and by the API schema with the
same patterns and limits, stored only encrypted (:func:`backend.compliance.pii.protect_applicant`)
and never echoed: error messages name the field and the rule, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email

from backend.domain import ApplicationInvalid, FieldError

DETAIL_FIELDS = ("name", "address", "ssn", "email", "phone")
DETAIL_LABELS = {"name": "Name", "address": "Address", "ssn": "SSN", "email": "Email", "phone": "Phone"}
MAX_LENGTH = {"name": 200, "address": 500, "ssn": 11, "email": 254, "phone": 25}
#: patterns shared with the API schema (Python ``re`` and pydantic's regex engine both accept them)
SSN_PATTERN = r"^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$"
PHONE_PATTERN = r"^\+?[0-9][0-9 ().\-]{5,23}[0-9]$"
PATTERNS = {"ssn": SSN_PATTERN, "email": EMAIL_PATTERN, "phone": PHONE_PATTERN}

MSG_NOT_OBJECT = "must be an object with name, address, ssn, email and/or phone"
MSG_UNKNOWN = "is not an applicant field (name, address, ssn, email, phone)"
MSG_NOT_TEXT = "must be text"
MSG_TOO_LONG = "must have at most {max} characters"
MSG_CONTROL = "must not contain control characters"
MSG_SSN = "must be 9 digits, as 123-45-6789 or 123456789"
MSG_EMAIL = "must be an email address (name@example.org)"
MSG_PHONE = "must be a phone number of 7 to 15 digits (spaces, dashes, dots, parentheses and a leading + allowed)"
MSG_FORMAT = {"ssn": MSG_SSN, "email": MSG_EMAIL, "phone": MSG_PHONE}
_COMPILED = {k: re.compile(v) for k, v in PATTERNS.items() if k != "email"}  # email: valid_email


def valid_email(text: str) -> str | None:
    """``text`` as a normalised email address, or None when it is not one: the one rule of the API, the
    console and the CLI: the maintained ``email-validator`` (syntax only, no DNS lookup), which refuses
    ``<script>…</script>@x.com``, IP-literal domains, display names and whitespace; quoted local parts too."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH["email"] or _control(text, newlines=False):
        return None
    if len(text.rpartition("@")[0]) > 64:  # RFC 5321's local-part limit (email-validator lets some through)
        return None
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def _control(text: str, *, newlines: bool) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and not (newlines and c == "\n") for c in text)


def clean_details(value: Any) -> dict[str, str]:
    """The non-empty applicant fields, trimmed (SSN as ``123-45-6789``), or :class:`ApplicationInvalid`
    whose errors name ``applicant.<field>`` and the rule broken (never the value)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ApplicationInvalid([FieldError("applicant", MSG_NOT_OBJECT)])
    errors: list[FieldError] = []
    out: dict[str, str] = {}
    for key, raw in value.items():
        name = f"applicant.{str(key)[:32]}"
        if key not in DETAIL_FIELDS:
            errors.append(FieldError(name, MSG_UNKNOWN))
            continue
        if raw is None:
            continue
        if not isinstance(raw, str):
            errors.append(FieldError(name, MSG_NOT_TEXT))
            continue
        text = raw.strip()
        if not text:
            continue
        if len(text) > MAX_LENGTH[key]:
            errors.append(FieldError(name, MSG_TOO_LONG.format(max=MAX_LENGTH[key])))
        elif _control(text, newlines=key == "address"):
            errors.append(FieldError(name, MSG_CONTROL))
        elif key in _COMPILED and not _COMPILED[key].match(text):
            errors.append(FieldError(name, MSG_FORMAT[key]))
        elif key == "email" and valid_email(text) is None:
            errors.append(FieldError(name, MSG_EMAIL))
        elif key == "phone" and not 7 <= sum(c.isdigit() for c in text) <= 15:
            errors.append(FieldError(name, MSG_PHONE))
        else:
            out[key] = _normal(key, text)
    if errors:
        raise ApplicationInvalid(errors)
    return out


def _normal(key: str, text: str) -> str:
    if key == "ssn":
        digits = text.replace("-", "")
        return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
    if key == "email":
        return valid_email(text) or text
    return text


def check_applicants(raws: Sequence[Mapping[str, Any]]) -> None:
    """:func:`clean_details` of every application's ``applicant`` object, before anything is scored or
    written (one bad object refuses the batch, as a bad feature does)."""
    for raw in raws:
        details = raw.get("applicant")
        if details is not None:
            clean_details(details)
