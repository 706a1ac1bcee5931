"""Login, lockout, sessions and user administration against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from backend.identity.auth import LOGIN_FAILED
from backend.identity.passwords import PASSWORD_TOO_SHORT
from backend.identity.users import BAD_ROLE, BAD_USERNAME, USER_EXISTS, UserError

PW = "correct horse battery"


@pytest.fixture
def alice(services):
    user, _ = services.users.add("alice", role="loan_officer", password=PW, display_name="Alice")
    return user


def test_login_success_creates_audited_session(services, alice):
    res = services.auth.authenticate("  Alice ", PW, client="1.2.3.4")
    assert res.ok and res.user.username == "alice"
    token = services.auth.start_session(res.user)
    assert services.auth.validate(token).username == "alice"
    actions = [r["action"] for r in services.audit.recent(10)]
    assert actions[:3] == ["session_started", "login_succeeded", "user_created"]


@pytest.mark.parametrize("username,password", [("alice", "wrong password"), ("nobody", PW), ("", ""), ("alice", "")])
def test_failures_share_one_message(services, alice, username, password):
    res = services.auth.authenticate(username, password)
    assert not res.ok and res.user is None
    assert res.message == LOGIN_FAILED


def test_unknown_user_still_runs_bcrypt(services, alice, monkeypatch):
    import backend.identity.auth as auth_mod

    calls = []
    real = auth_mod.verify_password
    monkeypatch.setattr(auth_mod, "verify_password", lambda p, h: calls.append(h) or real(p, h))
    services.auth.authenticate("nobody", PW)
    services.auth.authenticate("alice", "bad")
    assert len(calls) == 2  # same work for unknown and known users: no timing oracle


def test_lockout_blocks_then_decays(services, alice, clock):
    for _ in range(5):
        assert not services.auth.authenticate("alice", "bad", client="attacker").ok
    locked = services.auth.authenticate("alice", PW, client="attacker")
    assert not locked.ok and locked.reason == "locked" and locked.message == LOGIN_FAILED
    # the owner's own client is not locked by the attacker
    assert services.auth.authenticate("alice", PW, client="owner").ok
    # lockout is bounded: after the cap it opens again
    clock.advance(seconds=services.settings.auth.lockout_max_seconds + 1)
    assert services.auth.authenticate("alice", PW, client="attacker").ok


def test_lockout_never_exceeds_cap(services, alice, clock):
    for _ in range(60):
        services.auth.authenticate("alice", "bad", client="x")
        clock.advance(seconds=1)
    clock.advance(seconds=services.settings.auth.lockout_max_seconds + 1)
    assert services.auth.authenticate("alice", PW, client="x").ok


def test_logout_revokes_the_token(services, alice):
    token = services.auth.start_session(alice)
    assert services.auth.end_session(token)
    assert services.auth.validate(token) is None  # a copied cookie stops working
    assert not services.auth.end_session(token)


def test_disabling_a_user_ends_sessions_and_login(services, alice):
    token = services.auth.start_session(alice)
    services.users.set_disabled("alice", True)
    assert services.auth.validate(token) is None
    assert services.auth.authenticate("alice", PW).reason == "disabled"
    services.users.set_disabled("alice", False)
    assert services.auth.validate(token) is None  # revoked stays revoked
    assert services.auth.authenticate("alice", PW).ok


def test_password_change_ends_sessions(services, alice):
    token = services.auth.start_session(alice)
    services.users.set_password("alice", "another long passphrase")
    assert services.auth.validate(token) is None
    assert services.auth.authenticate("alice", "another long passphrase").ok


def test_session_expires(services, alice, clock):
    token = services.auth.start_session(alice)
    clock.advance(hours=services.settings.auth.session_ttl_hours + 0.01)
    assert services.auth.validate(token) is None


def test_unknown_and_garbage_tokens(services):
    assert services.auth.validate(None) is None
    assert services.auth.validate("") is None
    assert services.auth.validate("x" * 5000) is None


@pytest.mark.parametrize("kwargs,message", [
    ({"username": "A", "role": "admin"}, BAD_USERNAME),
    ({"username": "bob; drop table users", "role": "admin"}, BAD_USERNAME),
    ({"username": "bob", "role": "superuser"}, BAD_ROLE.format(role="superuser")),
    ({"username": "bob", "role": "admin", "password": "short"}, PASSWORD_TOO_SHORT),
])
def test_user_validation(services, kwargs, message):
    with pytest.raises(UserError) as exc:
        services.users.add(**kwargs)
    assert str(exc.value) == message


def test_duplicate_user(services, alice):
    with pytest.raises(UserError, match="already exists"):
        services.users.add("alice", role="admin")
    assert str(USER_EXISTS.format(username="alice"))
    again, pw = services.users.add("alice", role="admin", exist_ok=True)
    assert again.role == "loan_officer" and pw is None


def test_generated_password_works(services):
    user, pw = services.users.add("carol", role="risk_manager")
    assert pw and len(pw) >= 12
    assert services.auth.authenticate("carol", pw).ok


def test_long_and_unicode_passwords(services):
    long_pw = "ü" * 200  # beyond bcrypt's 72 bytes: must neither truncate nor fail
    services.users.add("dave", role="admin", password=long_pw)
    assert services.auth.authenticate("dave", long_pw).ok
    assert not services.auth.authenticate("dave", "ü" * 199).ok
