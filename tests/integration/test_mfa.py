"""The TOTP second factor against SQLite and PostgreSQL: who must use it, enrolment, codes (wrong, reused,
expired, early, look-alike digits, spaces), recovery codes (single use), throttling of code guesses, the admin
reset, and the audit row of every outcome. The clock is fixed, so every code's 30-second step is known."""

from __future__ import annotations

import pytest
from mfa_helpers import code_at

from backend.container import build_services
from backend.domain import ROLES, Actor, mfa_required_for
from backend.identity.auth import LOGIN_FAILED, MFA_CODE_FAILED, MFA_CODE_NEEDED, MFA_ENROL_FIRST
from backend.identity.mfa import normalize_code
from backend.identity.users import MFA_SELF_RESET, UserError

PW = "correct horse battery"


@pytest.fixture
def mfa_services(settings, db, clock):
    s = settings.model_copy(update={"auth": settings.auth.model_copy(update={"mfa_required": True})})
    return build_services(s, db=db, clock=clock)


def _actions(svc, n=5):
    return [(r["action"], (r.get("payload") or {}).get("reason")) for r in svc.audit.recent(n)]


def enrol(svc, username, role="risk_manager", client="c1"):
    """A user of ``role``, enrolled through the two-step login: (secret, recovery codes)."""
    svc.users.add(username, role=role, password=PW)
    first = svc.auth.authenticate(username, PW, client=client, two_step=True)
    assert first.reason == "mfa_pending" and first.needs == "enrolment"
    enrolment = svc.auth.begin_enrolment(first.ticket, client=client)
    assert enrolment.qr_png.startswith(b"\x89PNG") and f"secret={enrolment.secret}" in enrolment.uri
    done = svc.auth.second_factor(first.ticket, code_at(enrolment.secret, svc.clock.now()), client=client)
    assert done.ok and len(done.recovery_codes) == svc.settings.auth.mfa_recovery_codes
    return enrolment.secret, list(done.recovery_codes)


def test_the_duty_follows_the_permissions():
    assert {r: mfa_required_for(r) for r in ROLES} == {
        "loan_officer": True, "risk_manager": True, "product_lead": False, "ml_engineer": True, "admin": True}
    assert mfa_required_for("no-such-role") is True


def test_required_role_without_factor_is_refused_and_audited(mfa_services):
    mfa_services.users.add("rita", role="risk_manager", password=PW)
    res = mfa_services.auth.authenticate("rita", PW, client="api:1.2.3.4")
    assert not res.ok and res.reason == "mfa_not_enrolled" and res.message == MFA_ENROL_FIRST
    assert _actions(mfa_services, 1) == [("login_failed", "mfa_not_enrolled")]


def test_optional_role_signs_in_with_password_unless_all_roles(mfa_services, settings, db, clock):
    mfa_services.users.add("priya", role="product_lead", password=PW)
    assert mfa_services.auth.authenticate("priya", PW).ok
    strict = settings.model_copy(update={"auth": settings.auth.model_copy(
        update={"mfa_required": True, "mfa_all_roles": True})})
    assert build_services(strict, db=db, clock=clock).auth.authenticate("priya", PW).reason == "mfa_not_enrolled"


def test_enrolment_then_login_with_code_audits_the_factor(mfa_services, clock):
    secret, codes = enrol(mfa_services, "rita")
    assert [a for a, _ in _actions(mfa_services, 4)][:3] == ["login_succeeded", "mfa_enrolled", "mfa_enrolment_started"]
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes) and len(set(codes)) == len(codes)
    clock.advance(seconds=30)
    res = mfa_services.auth.authenticate("rita", PW, client="api:x", code=code_at(secret, clock.now()))
    assert res.ok and res.factor == "totp"
    row = mfa_services.audit.recent(1)[0]
    assert row["action"] == "login_succeeded" and row["payload"]["second_factor"] == "totp"
    assert mfa_services.users.list()[0]["second_factor"] == "TOTP"


def test_password_alone_is_refused_once_enrolled(mfa_services, clock):
    enrol(mfa_services, "rita")
    res = mfa_services.auth.authenticate("rita", PW, client="api:x")
    assert not res.ok and res.reason == "mfa_missing" and res.message == MFA_CODE_NEEDED
    assert _actions(mfa_services, 1) == [("login_failed", "mfa_missing")]


def test_an_enrolled_account_needs_its_code_even_when_not_required(mfa_services, settings, db, clock):
    secret, _ = enrol(mfa_services, "rita")
    svc = build_services(settings, db=db, clock=clock)  # mfa_required=false (the tests' default)
    assert svc.auth.authenticate("rita", PW).reason == "mfa_missing"
    clock.advance(seconds=30)
    assert svc.auth.authenticate("rita", PW, code=code_at(secret, clock.now())).ok


def test_a_code_is_accepted_once(mfa_services, clock):
    secret, _ = enrol(mfa_services, "rita")
    clock.advance(seconds=30)
    code = code_at(secret, clock.now())
    assert mfa_services.auth.authenticate("rita", PW, client="a", code=code).ok
    again = mfa_services.auth.authenticate("rita", PW, client="b", code=code)  # same window, another client
    assert not again.ok and again.reason == "mfa_replayed" and again.message == MFA_CODE_FAILED
    clock.advance(seconds=20)  # still inside the drift window of that step
    assert mfa_services.auth.authenticate("rita", PW, client="a", code=code).reason == "mfa_replayed"
    # an older step's code after a newer one was accepted: refused too
    assert mfa_services.auth.authenticate("rita", PW, code=code_at(secret, clock.now(), steps=-1)).reason in (
        "mfa_replayed", "mfa_bad_code")


def test_expired_and_far_future_codes_are_refused(mfa_services, clock):
    secret, _ = enrol(mfa_services, "rita")
    clock.advance(seconds=300)
    now = clock.now()
    for steps in (-3, -2, 2, 5):
        assert mfa_services.auth.authenticate("rita", PW, code=code_at(secret, now, steps=steps)).reason == \
            "mfa_bad_code", steps
    assert mfa_services.auth.authenticate("rita", PW, code=code_at(secret, now, steps=-1)).ok  # clock drift


@pytest.mark.parametrize("mangle,accepted", [
    (lambda c: f"{c[:3]} {c[3:]}", True),
    (lambda c: f" {c}\t".replace("\t", " "), True),
    (lambda c: f"{c[:3]}-{c[3:]}", True),
    (lambda c: c.translate(str.maketrans("0123456789", "０１２３４５６７８９")), False),  # full-width
    (lambda c: c.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")), False),  # Arabic-Indic
    (lambda c: c.translate(str.maketrans("0123456789", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗")), False),  # mathematical bold
    (lambda c: c.replace("0", "O").replace("1", "l") if set(c) & {"0", "1"} else "O" + c[1:], False),
    (lambda c: c + "0", False),
    (lambda c: c[:5], False),
    (lambda c: c[:3] + "\u200b" + c[3:], False),  # zero-width space
    (lambda c: "", False),
])
def test_code_spelling(mfa_services, clock, mangle, accepted):
    secret, _ = enrol(mfa_services, "rita")
    clock.advance(seconds=30)
    res = mfa_services.auth.authenticate("rita", PW, code=mangle(code_at(secret, clock.now())))
    assert res.ok is accepted, res.reason
    if not accepted:
        assert res.reason in ("mfa_malformed", "mfa_missing", "mfa_bad_code")


def test_normalize_code_refuses_non_ascii_digits():
    assert normalize_code("123 456") == ("totp", "123456")
    assert normalize_code("１２３４５６")[0] == "malformed"
    assert normalize_code("ABCD-EFGH-IJKL-MNOP") == ("recovery", "abcdefghijklmnop")
    assert normalize_code("abcd-efgh-ijkl-mno0")[0] == "malformed"  # 0 is not base-32
    assert normalize_code(None)[0] == "malformed"


def test_recovery_codes_work_once(mfa_services):
    _, codes = enrol(mfa_services, "rita")
    res = mfa_services.auth.authenticate("rita", PW, code=codes[0].upper().replace("-", " "))
    assert res.ok and res.factor == "recovery"
    row = mfa_services.audit.recent(1)[0]
    assert row["payload"]["second_factor"] == "recovery" and row["payload"]["recovery_codes_left"] == len(codes) - 1
    again = mfa_services.auth.authenticate("rita", PW, code=codes[0])
    assert not again.ok and again.reason == "mfa_recovery_used"
    assert mfa_services.auth.authenticate("rita", PW, code=codes[1]).ok
    # another user's recovery code is no good here
    _, other = enrol(mfa_services, "ravi")
    assert mfa_services.auth.authenticate("rita", PW, code=other[0]).reason == "mfa_bad_code"


def test_code_guesses_are_throttled_like_passwords(mfa_services, clock):
    secret, _ = enrol(mfa_services, "rita")
    clock.advance(seconds=30)
    for guess in ("000000", "111111", "123456", "999999", "424242"):
        assert not mfa_services.auth.authenticate("rita", PW, client="attacker", code=guess).ok
    locked = mfa_services.auth.authenticate("rita", PW, client="attacker", code=code_at(secret, clock.now()))
    assert not locked.ok and locked.reason == "locked" and locked.message == LOGIN_FAILED


def test_second_step_guesses_are_throttled_and_password_does_not_reset_them(mfa_services, clock):
    secret, _ = enrol(mfa_services, "rita")
    clock.advance(seconds=30)
    for _ in range(5):  # the password is right every time; the codes are not
        first = mfa_services.auth.authenticate("rita", PW, client="attacker", two_step=True)
        assert first.reason == "mfa_pending", first.reason
        assert mfa_services.auth.second_factor(first.ticket, "000000", client="attacker").reason == "mfa_bad_code"
    assert mfa_services.auth.authenticate("rita", PW, client="attacker", two_step=True).reason == "locked"


def test_tickets_are_bound_to_the_client_and_unforgeable(mfa_services, clock):
    secret, _ = enrol(mfa_services, "rita")
    clock.advance(seconds=30)
    first = mfa_services.auth.authenticate("rita", PW, client="c1", two_step=True)
    code = code_at(secret, clock.now())
    forged = first.ticket[:-1] + ("1" if first.ticket.endswith("0") else "0")  # a different last character
    for ticket, client in ((first.ticket, "c2"), (forged, "c1"), ("", "c1"), ("x.y.z", "c1")):
        assert mfa_services.auth.second_factor(ticket, code, client=client).reason == "mfa_ticket"
    assert mfa_services.auth.second_factor(first.ticket, code, client="c1").ok


def test_admin_reset_is_audited_ends_sessions_and_never_ones_own(mfa_services, clock):
    secret, _ = enrol(mfa_services, "rita")
    admin_secret, _ = enrol(mfa_services, "ada", role="admin")
    ada = mfa_services.users.get("ada")
    clock.advance(seconds=30)
    rita = mfa_services.auth.authenticate("rita", PW, code=code_at(secret, clock.now())).user
    token = mfa_services.auth.start_session(rita)
    with pytest.raises(UserError, match="own second factor"):
        mfa_services.users.reset_mfa("ada", actor=ada)
    assert MFA_SELF_RESET
    out = mfa_services.users.reset_mfa("rita", actor=ada)
    assert out["had_factor"] and out["recovery_codes_removed"] == 10 and out["sessions_ended"] == 1
    assert mfa_services.auth.validate(token) is None
    row = mfa_services.audit.recent(1)[0]
    assert row["action"] == "mfa_reset" and row["actor"] == "ada"
    assert mfa_services.auth.authenticate("rita", PW).reason == "mfa_not_enrolled"  # enrols again next time
    with pytest.raises(UserError, match="no second factor"):
        mfa_services.users.reset_mfa("rita", actor=Actor("ada", "admin"))


def test_unreadable_secret_fails_closed(mfa_services, settings, db, clock):
    from backend.compliance import PiiKeyRing

    secret, _ = enrol(mfa_services, "rita")
    other_ring = build_services(settings.model_copy(update={"auth": mfa_services.settings.auth}), db=db,
                                clock=clock, pii_ring=PiiKeyRing.generate())
    clock.advance(seconds=30)
    res = other_ring.auth.authenticate("rita", PW, code=code_at(secret, clock.now()))
    assert not res.ok and res.reason == "mfa_unreadable"


def test_production_always_requires_it():
    from backend.container.settings import load_settings

    s = load_settings(env="production", auth={"cookie_key": "k" * 64, "mfa_required": False})
    assert s.auth.mfa_required is True
    assert load_settings(env="dev", auth={"mfa_required": False}).auth.mfa_required is False
