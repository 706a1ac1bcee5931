"""The second factor of password accounts: TOTP (RFC 6238, through pyotp) and single-use recovery codes.

* Who must use it comes from the access policy (:data:`backend.domain.MFA_PERMS`: approve, override,
  promote, administer); ``auth.mfa_all_roles`` extends the duty to every role, ``auth.mfa_required=false``
  (refused in production) lifts it for accounts not yet enrolled. An enrolled account always needs its code.
* The secret is stored encrypted with the PII key ring (AES-GCM, bound to the user id); without the ring it
  cannot be read, and a factor that cannot be read refuses the login (fail closed).
* A code is accepted for its 30-second step and one step either side (clock drift), only if its step is newer
  than the last accepted one: a code, once used, is refused for the rest of its window (no replay).
* Codes are ASCII digits; spaces and hyphens between them are ignored; anything else (full-width or other
  look-alike digits, letters) is refused without comparing. Recovery codes: 16 base-32 characters, shown once,
  stored as SHA-256 over the user id and the code (80 random bits each), each spent by its first use.
* The QR code is drawn here (segno, pure Python, PNG): the secret never leaves the process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyotp
import segno
from sqlalchemy.orm import Session

from backend.domain import Actor, mfa_required_for
from backend.identity.config import AuthSettings
from backend.identity.mfa_queries import MfaRepository

if TYPE_CHECKING:
    from backend.compliance import PiiKeyRing

FIELD = "totp_secret"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_LENGTH = 16
_SEPARATORS = re.compile(r"[ \-]")
_TOTP_RE = re.compile(r"[0-9]{6}")
_RECOVERY_RE = re.compile(r"[a-z2-7]{16}")
NO_RING = "the second factor needs the PII key ring (CREDITRISK_PII__KEYS) to store its secret"
ALREADY_ENROLLED = "{username} already has a second factor: an admin must reset it before a new enrolment"


class MfaError(ValueError):
    """A second-factor request was refused; the message says why."""


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base-32, for typing into an app by hand
    uri: str  # otpauth://totp/...
    qr_png: bytes


def normalize_code(code: str | None) -> tuple[str, str]:
    """(kind, value): ``totp`` with six ASCII digits, ``recovery`` with 16 base-32 letters, or ``malformed``."""
    raw = _SEPARATORS.sub("", (code or "").strip())[:64]
    if _TOTP_RE.fullmatch(raw):
        return "totp", raw
    if _RECOVERY_RE.fullmatch(raw.lower()):
        return "recovery", raw.lower()
    return "malformed", ""


def new_recovery_codes(n: int) -> list[str]:
    """``n`` codes like ``abcd-efgh-ijkl-mnop`` (80 random bits each)."""
    out = []
    for _ in range(n):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        out.append("-".join(raw[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4)))
    return out


def recovery_hash(user_id: uuid.UUID, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{code}".encode()).hexdigest()


class MfaService:
    def __init__(self, settings: AuthSettings, ring: PiiKeyRing | None) -> None:
        self.cfg = settings
        self.ring = ring

    # -- policy ------------------------------------------------------------------------------------
    def required(self, role: str) -> bool:
        """Whether an account of ``role`` that has no factor yet must enrol one before it may sign in."""
        return self.cfg.mfa_required and (self.cfg.mfa_all_roles or mfa_required_for(role))

    def state(self, s: Session, user_id: uuid.UUID) -> str:
        """``enrolled``, ``pending`` (a secret shown, not yet confirmed) or ``none``."""
        row = MfaRepository(s).get(user_id)
        return "none" if row is None else "enrolled" if row.enrolled_at is not None else "pending"

    # -- enrolment ---------------------------------------------------------------------------------
    def begin(self, s: Session, user: Actor, at: datetime) -> Enrolment:
        """A fresh secret for ``user``, stored unconfirmed; confirmed by the first good code (:meth:`verify`)."""
        if self.ring is None:
            raise MfaError(NO_RING)
        assert user.id is not None
        repo = MfaRepository(s)
        row = repo.get(user.id)
        if row is not None and row.enrolled_at is not None:
            raise MfaError(ALREADY_ENROLLED.format(username=user.username))
        secret = pyotp.random_base32()
        repo.put_pending(user.id, self.ring.encrypt(secret, field=FIELD, row=str(user.id)), at)
        return enrolment(secret, user.username, self.cfg.mfa_issuer)

    def confirm(self, s: Session, user_id: uuid.UUID, at: datetime) -> list[str]:
        """Mark the pending factor enrolled and issue recovery codes (returned once, stored hashed)."""
        repo = MfaRepository(s)
        row = repo.get(user_id, for_update=True)
        assert row is not None
        row.enrolled_at = at
        codes = new_recovery_codes(self.cfg.mfa_recovery_codes)
        repo.add_recovery(user_id, [recovery_hash(user_id, c.replace("-", "")) for c in codes], at)
        return codes

    # -- checking a code ---------------------------------------------------------------------------
    def verify(self, s: Session, user_id: uuid.UUID, code: str | None, at: datetime) -> str:
        """Check ``code`` for ``user_id`` (pending or enrolled factor) and spend it: ``totp``, ``recovery``
        (enrolled factors only), or why not: ``missing``, ``malformed``, ``bad_code``, ``replayed``,
        ``recovery_used``, ``unreadable`` (the secret cannot be decrypted), ``not_enrolled``."""
        repo = MfaRepository(s)
        row = repo.get(user_id, for_update=True)
        if row is None:
            return "not_enrolled"
        if code is None or not code.strip():
            return "missing"
        kind, value = normalize_code(code)
        if kind == "malformed":
            return "malformed"
        if kind == "recovery":
            if row.enrolled_at is None:
                return "bad_code"
            rec = repo.recovery(user_id, recovery_hash(user_id, value))
            if rec is None:
                return "bad_code"
            if rec.used_at is not None:
                return "recovery_used"
            rec.used_at = at
            return "recovery"
        if self.ring is None:
            return "unreadable"
        try:
            secret = self.ring.decrypt(row.secret, field=FIELD, row=str(user_id))
        except ValueError:
            return "unreadable"
        step = match_step(secret, value, at)
        if step is None:
            return "bad_code"
        if step <= row.last_step:
            return "replayed"
        row.last_step = step
        return "totp"

    def recovery_left(self, s: Session, user_id: uuid.UUID) -> int:
        return MfaRepository(s).recovery_left(user_id)


def match_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step whose code is ``code`` (now, or one step either side), compared in constant time."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = int(at.timestamp()) // STEP_SECONDS
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def enrolment(secret: str, username: str, issuer: str) -> Enrolment:
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=username,
                                                                                    issuer_name=issuer)
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="png", scale=5, border=2)
    return Enrolment(secret, uri, buf.getvalue())


def current_code(secret: str, at: float | None = None) -> tuple[str, int]:
    """The code an authenticator app shows now for ``secret`` and the seconds it has left (the demo's
    ``creditrisk demo-code``)."""
    import time

    now = time.time() if at is None else at
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(now), STEP_SECONDS - int(now) % STEP_SECONDS
