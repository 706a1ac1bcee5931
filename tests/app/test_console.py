"""The Streamlit console through AppTest: every page for every role, access control, login
failures, revoked sessions, the users and audit pages, and a bad setting.

Pages and roles come from ``app.navigation.PAGES`` and ``backend.domain.permissions.POLICY``, so a page
or role added later is covered without touching this file (a page whose file does not exist yet
is skipped, as ``pages_for`` does).
"""

from __future__ import annotations

import uuid

import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from app.navigation import PAGES, PageSpec, pages_for
from backend.domain import Actor
from backend.domain.permissions import POLICY, Role
from backend.identity.auth import LOGIN_FAILED
from backend.identity.users import USER_EXISTS
from backend.models.provider import NO_MODEL

ROLE_NAMES = [r.value for r in POLICY]
SESSION_ENDED = "Your session has ended"


def _existing(pages=PAGES) -> list[PageSpec]:  # noqa: ANN001
    return [p for p in pages if p.path.exists()]


def _allowed(role: str) -> list[PageSpec]:
    """Straight from POLICY (not via pages_for, so a bug there is caught too)."""
    return [p for p in _existing() if p.perm in POLICY[Role(role)]]


FORBIDDEN = [(p, r) for r in ROLE_NAMES for p in _existing() if p.perm not in POLICY[Role(r)]]


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _assert_clean(at: AppTest, where: str, allowed_errors: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    assert not at.exception, f"{where}: exception {[e.value for e in at.exception]}"
    unexpected = [e for e in _errors(at) if e not in allowed_errors]
    assert not unexpected, f"{where}: st.error {unexpected}"


# -- smoke --------------------------------------------------------------------------------------
@pytest.mark.parametrize("registry", ["trained", "empty"])
@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_page_renders_for_every_role(console, request, role, registry):
    """Log in, then open every page the role may use: no exception, no error box, a title.

    ``empty`` is a fresh install (no model registered yet): the only error box allowed is the
    model provider's own "no champion model ... run `creditrisk train`" guidance.
    """
    if registry == "trained":
        console.install_model(request.getfixturevalue("trained_registry"))
    allowed_errors = set() if registry == "trained" else {
        NO_MODEL.format(ref=ref, root=console.registry_dir) for ref in ("champion", "challenger")}
    at = console.logged_in(role)
    _assert_clean(at, f"{role} after login")
    assert [t.value for t in at.title] == [f"Welcome, {console.services.users.get(console.users[role]).display_name}"]
    pages = pages_for(role)
    assert pages, f"{role} has no page at all"
    for spec in pages:
        at.switch_page(str(spec.path)).run()
        where = f"{role} on {spec.file} ({registry} registry)"
        _assert_clean(at, where, allowed_errors)
        assert at.title, f"{where}: no title"
        assert [b.label for b in at.sidebar.button] == ["Log out"], where


# -- access -------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLE_NAMES)
def test_navigation_offers_exactly_the_roles_pages(console, role):
    at = console.logged_in(role)
    expected = {p.path.resolve() for p in _allowed(role)}
    assert {p.path.resolve() for p in pages_for(role)} == expected
    assert console.registered_scripts(at) == expected
    for spec in _existing():
        if spec.path.resolve() not in expected:
            with pytest.raises(ValueError):  # not registered: the navigation cannot reach it
                at.switch_page(str(spec.path))
    # the home page's "Your pages" links list the same pages
    assert sorted(lnk.value for lnk in at.get("page_link")) == \
        sorted(p.title for p in _allowed(role) if p.file != "home.py")


@pytest.mark.parametrize("spec,role", FORBIDDEN, ids=[f"{p.file}-{r}" for p, r in FORBIDDEN])
def test_page_guard_refuses_a_role_without_the_permission(console, spec, role):
    """The page checks the role itself: run it directly with a user of the wrong role.

    (AppTest.switch_page refuses pages st.navigation did not register, which the test above
    asserts; this checks the second line of defence, ``require(perm)`` on the page.)
    """
    at = AppTest.from_file(str(spec.path), default_timeout=30)
    at.session_state[USER_KEY] = Actor(console.users[role], role, uuid.uuid4(), "Someone")
    at.run()
    assert not at.exception
    assert _errors(at) == [NOT_ALLOWED]
    assert len(console.leaves(at)) == 1, [type(e).__name__ for e in console.leaves(at)]


@pytest.mark.parametrize("spec", _existing(), ids=[p.file for p in _existing()])
def test_page_guard_refuses_anonymous(console, spec):
    at = AppTest.from_file(str(spec.path), default_timeout=30).run()
    assert not at.exception
    assert _errors(at) == ["Please log in."]
    assert len(console.leaves(at)) == 1


def test_logged_out_user_reaches_no_page(console):
    at = console.app().run()
    assert not at.exception and not _errors(at)
    assert console.shows_login_form(at)
    assert not at.title and not at.sidebar.button and not at.get("page_link") and not at.dataframe
    assert console.registered_scripts(at) == set()
    for spec in _existing():
        with pytest.raises(ValueError):
            at.switch_page(str(spec.path))


# -- login failures -----------------------------------------------------------------------------
def _assert_refused(console, at: AppTest) -> None:  # noqa: ANN001
    assert not at.exception
    assert _errors(at) == [LOGIN_FAILED]
    assert console.shows_login_form(at)
    assert not at.title and USER_KEY not in at.session_state


@pytest.mark.parametrize("username,password", [
    ("loanofficer", "wrong password, clearly"),
    ("nobody-here", "correct horse battery staple"),
    ("loanofficer", ""),
], ids=["wrong-password", "unknown-user", "blank-password"])
def test_login_failures_show_one_message(console, username, password):
    at = console.login(console.app().run(), username, password)
    _assert_refused(console, at)


def test_locked_account_refuses_the_right_password(console):
    at = console.app().run()
    attempts = int(console.services.settings.auth.lockout_threshold) + 1
    for _ in range(attempts):
        console.login(at, "loanofficer", "wrong password, clearly")
        _assert_refused(console, at)
    console.login(at, "loanofficer", console.password)
    _assert_refused(console, at)
    assert console.services.audit.recent(1)[0]["payload"]["reason"] == "locked"


def test_disabled_user_cannot_log_in(console):
    console.services.users.set_disabled("loanofficer", True)
    at = console.login(console.app().run(), "loanofficer", console.password)
    _assert_refused(console, at)
    assert console.services.audit.recent(1)[0]["payload"]["reason"] == "disabled"


def test_username_is_case_and_space_insensitive(console):
    at = console.login(console.app().run(), "  LoanOfficer ", console.password)
    _assert_clean(at, "login")
    assert at.title[0].value.startswith("Welcome, ")


# -- revoked session ----------------------------------------------------------------------------
REVOKE = {
    "logout-elsewhere": lambda c, at: c.services.auth.end_session(at.session_state["auth_token"]),
    "user-disabled": lambda c, at: c.services.users.set_disabled("riskmanager", True),
    "password-changed": lambda c, at: c.services.users.set_password("riskmanager", "a brand new passphrase"),
}


@pytest.mark.parametrize("how", list(REVOKE))
def test_revoked_session_logs_the_user_out(console, how):
    at = console.logged_in("risk_manager")
    assert at.title and at.session_state["auth_token"]
    REVOKE[how](console, at)
    at.run()
    assert not at.exception
    assert any(SESSION_ENDED in w.value for w in at.warning), [w.value for w in at.warning]
    assert console.shows_login_form(at), "the login form should be offered right away"
    assert not at.title and not at.sidebar.button and USER_KEY not in at.session_state
    assert console.registered_scripts(at) == set()
    if how == "logout-elsewhere":  # the account itself is fine: signing in again works
        console.login(at, "riskmanager", console.password)
        _assert_clean(at, "login again")
        assert at.title[0].value.startswith("Welcome, ")


def test_log_out_button(console):
    at = console.logged_in("loan_officer")
    token = at.session_state["auth_token"]
    console.by_label(at.sidebar.button, "Log out").click()
    at.run()
    assert not at.exception and not _errors(at)
    assert console.shows_login_form(at) and not at.title
    assert console.services.auth.validate(token) is None  # revoked server-side


# -- users page ---------------------------------------------------------------------------------
def _page(file: str) -> PageSpec:
    return next(p for p in PAGES if p.file == file)


def test_admin_adds_and_disables_a_user(console):
    users_page = _page("users.py")
    at = console.logged_in("admin")
    at.switch_page(str(users_page.path)).run()
    _assert_clean(at, "users page")

    console.by_label(at.text_input, "Username").input("newhire")
    console.by_label(at.text_input, "Display name").input("New Hire")
    console.by_label(at.selectbox, "Role").select("loan_officer")
    console.by_label(at.button, "Add user").click()
    at.run()
    _assert_clean(at, "add user")
    assert any("Created newhire" in s.value for s in at.success), [s.value for s in at.success]
    assert len(at.code) == 1
    password = at.code[0].value
    assert len(password) >= 12
    assert console.services.auth.authenticate("newhire", password).ok

    at.run()  # shown once: gone on the next rerun
    assert not at.code and password not in str([e.value for e in console.leaves(at) if hasattr(e, "value")])
    assert "newhire" in at.dataframe[0].value["username"].tolist()

    # the admin cannot pick themselves
    target = console.by_label(at.selectbox, "User")
    assert "admin" not in target.options and "newhire" in target.options
    target.select("newhire")
    console.by_label(at.radio, "Action").set_value("Disable (ends their sessions)")
    console.by_label(at.button, "Apply").click()
    at.run()
    _assert_clean(at, "disable user")
    row = next(u for u in console.services.users.list() if u["username"] == "newhire")
    assert row["disabled"] is True
    assert dict(zip(at.dataframe[0].value["username"], at.dataframe[0].value["disabled"]))["newhire"]

    refused = console.login(console.app().run(), "newhire", password)
    _assert_refused(console, refused)


def test_adding_an_existing_user_is_refused_with_a_message(console):
    at = console.logged_in("admin")
    at.switch_page(str(_page("users.py").path)).run()
    console.by_label(at.text_input, "Username").input("loanofficer")
    console.by_label(at.button, "Add user").click()
    at.run()
    assert not at.exception
    assert _errors(at) == [USER_EXISTS.format(username="loanofficer")]
    assert not at.code


def test_disabling_through_the_page_ends_that_users_open_session(console):
    officer = console.logged_in("loan_officer")
    assert officer.title
    admin = console.logged_in("admin")
    admin.switch_page(str(_page("users.py").path)).run()
    console.by_label(admin.selectbox, "User").select("loanofficer")
    console.by_label(admin.button, "Apply").click()
    admin.run()
    _assert_clean(admin, "disable")
    officer.run()
    assert any(SESSION_ENDED in w.value for w in officer.warning)
    assert not officer.title


def test_disable_confirmation_is_shown(console):
    at = console.logged_in("admin")
    at.switch_page(str(_page("users.py").path)).run()
    console.by_label(at.selectbox, "User").select("productlead")
    console.by_label(at.button, "Apply").click()
    at.run()
    assert [s.value for s in at.success] == ["productlead disabled."]


def test_added_user_is_in_the_table_at_once(console):
    at = console.logged_in("admin")
    at.switch_page(str(_page("users.py").path)).run()
    console.by_label(at.text_input, "Username").input("newhire")
    console.by_label(at.button, "Add user").click()
    at.run()
    assert at.code  # the password is on screen...
    assert "newhire" in at.dataframe[0].value["username"].tolist()  # ...and the user in the table


# -- audit page ---------------------------------------------------------------------------------
def test_audit_chain_verifies(console):
    audit = _page("audit.py")
    role = next(r for r in ROLE_NAMES if audit.perm in POLICY[Role(r)])
    at = console.logged_in(role)
    at.switch_page(str(audit.path)).run()
    _assert_clean(at, "audit page")
    assert at.dataframe, "the audit table should list the logins and user creations"
    console.by_label(at.button, "Verify the hash chain").click()
    at.run()
    _assert_clean(at, "verify")
    assert any(s.value.startswith("Chain intact") for s in at.success), [s.value for s in at.success]


# -- bad settings -------------------------------------------------------------------------------
def _assert_one_clean_error(console, at: AppTest, *needles: str) -> None:  # noqa: ANN001
    assert not at.exception, [e.value for e in at.exception]
    errors = _errors(at)
    assert len(errors) == 1, errors
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "Traceback" not in errors[0] and "\n" not in errors[0].strip()
    assert not at.text_input and not at.title  # no login form, nothing else of the app


def test_bad_setting_is_named_without_a_traceback(console, monkeypatch):
    monkeypatch.setenv("CREDITRISK_CACHE__URL", "memcached://x")
    console.clear_caches()
    at = console.app().run()
    _assert_one_clean_error(console, at, "CREDITRISK_CACHE__URL")


def test_unreachable_database_is_one_line_without_a_traceback(console, monkeypatch):
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("CREDITRISK_DATABASE__CONNECT_TIMEOUT", "2")
    console.clear_caches()
    at = console.app().run()
    _assert_one_clean_error(console, at, "Cannot reach the backends")
