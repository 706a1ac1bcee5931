"""The second factor in tests.

Most tests sign in with a password only: the root conftest sets ``CREDITRISK_AUTH__MFA_REQUIRED=false`` for
the run (fixtures that clear ``CREDITRISK_*`` put it back, like the model signing key), so accounts that have
not enrolled are not asked for a code. Tests of the second factor turn it on (``MFA_ON``) and make codes
with pyotp from the secret the enrolment showed. Importable from test modules (never ``from conftest``)."""

from __future__ import annotations

import re
from datetime import datetime

import pyotp

MFA_ENV = "CREDITRISK_AUTH__MFA_REQUIRED"
MFA_OFF = {MFA_ENV: "false"}
MFA_ON = {MFA_ENV: "true"}
SECRET_RE = re.compile(r"secret=([A-Z2-7]+)")


def code_at(secret: str, at: datetime | float | None = None, *, steps: int = 0) -> str:
    """The TOTP code of ``secret`` at ``at`` (default now), ``steps`` 30-second steps away."""
    totp = pyotp.TOTP(secret)
    if at is None:
        return totp.at(datetime.now().timestamp(), counter_offset=steps)
    return totp.at(at, counter_offset=steps)


def secret_of(uri: str) -> str:
    m = SECRET_RE.search(uri)
    assert m, f"no secret in {uri!r}"
    return m.group(1)


def enrol(svc: object, username: str, password: str, *, client: str = "c1") -> tuple[str, list[str]]:
    """Enrol the existing ``username`` through the two-step login of ``svc`` (a Services bundle whose
    settings require a second factor for the user's role): (the TOTP secret, the recovery codes)."""
    auth = svc.auth  # type: ignore[attr-defined]
    first = auth.authenticate(username, password, client=client, two_step=True)
    assert first.reason == "mfa_pending" and first.needs == "enrolment", first.reason
    enrolment = auth.begin_enrolment(first.ticket, client=client)
    code = code_at(enrolment.secret, auth.clock.now())
    done = auth.second_factor(first.ticket, code, client=client)
    assert done.ok, done.reason
    _SPENT[enrolment.secret] = code
    return enrolment.secret, list(done.recovery_codes)


_SPENT: dict[str, str] = {}


def spent_code(secret: str) -> str:
    """The code ``enrol`` spent for ``secret``: computing it again later may give the next 30-second step's code,
    which the server rightly accepts (a replay test built that way fails when the test runs long)."""
    return _SPENT[secret]
