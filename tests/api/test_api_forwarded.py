"""Forwarded headers are believed only from the proxies named in ``api.trusted_proxies`` (none by
default), so rotating ``X-Forwarded-For`` buys no extra token requests or password guesses; the token
endpoint also limits per client id, and login failures also count per account across addresses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import PASSWORD, with_api
from fastapi.testclient import TestClient
from proc_helpers import free_port, wait_until_ok

from backend.api import create_app
from backend.identity.config import ApiSettings
from backend.platform.adapters.ratelimit_memory import MemoryLimiter

ROOT = Path(__file__).resolve().parents[2]
FORGED = ["1.2.3.{}", "10.0.{}.1", "::ffff:8.8.8.{}", "203.0.113.{}, 127.0.0.1", "unknown{}", "{}", "[::1]:{}"]


def _xff(i: int) -> dict[str, str]:
    return {"X-Forwarded-For": FORGED[i % len(FORGED)].format(i % 250 + 1),
            "X-Real-IP": f"9.9.9.{i % 250}", "Forwarded": f"for=198.51.100.{i % 250}"}


@pytest.fixture
def served(cli_env, model_registry):
    """`creditrisk serve` (a real uvicorn on loopback: where uvicorn's default trusted forwarded headers)
    with 5 token requests per minute and a user ``olga`` in its database."""
    shutil.copytree(model_registry, cli_env / "models")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CREDITRISK_API__TOKEN_RATE_LIMIT_PER_MINUTE": "8",
           "CREDITRISK_AUTH__BCRYPT_ROUNDS": "4",  # 20 password checks in a second or two, not half a minute
           "FORWARDED_ALLOW_IPS": "*"}  # uvicorn's own knob, set the most permissive way: must not matter
    from backend.container import build_services, load_settings

    svc = build_services(load_settings(auth={"bcrypt_rounds": 4}), migrate=True)
    try:
        svc.users.add("olga", role="loan_officer", password=PASSWORD)
    finally:
        svc.close()
    port = free_port()
    log = cli_env / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port", str(port)], cwd=cli_env,
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ok(f"{base}/health/live", proc, seconds=90, name="creditrisk serve", log=log.read_text)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _fresh_window(needed: float = 20.0) -> None:
    """The limiter's windows are minutes aligned on the wall clock: start where at least ``needed`` seconds of one
    are left, so the 20 requests fall in one window (a run that crossed a minute saw 8 more guesses checked)."""
    left = 60.0 - time.time() % 60.0
    if left < needed:
        time.sleep(left + 0.5)  # into the next minute


def test_rotating_forwarded_for_over_real_uvicorn_neither_bypasses_the_token_limit_nor_the_lockout(served):
    for attempt in range(2):  # a run that still crossed a minute (a stalled machine) is repeated in a new one
        _fresh_window(20.0 if attempt == 0 else 61.0)
        started, statuses = time.time(), []
        for i in range(20):  # 8 per minute per address; every request claims another address
            res = httpx.post(f"{served}/oauth/token", headers=_xff(i), timeout=10,
                             data={"grant_type": "password", "username": "olga", "password": f"guess-{i}"})
            statuses.append(res.status_code)
        if int(started // 60) == int(time.time() // 60):
            break
    assert int(started // 60) == int(time.time() // 60), "both runs crossed a minute: the counts restarted"
    assert statuses[:8] == [400] * 8, statuses  # invalid_grant: guesses that were checked
    assert statuses[8:] == [429] * 12, statuses  # the rest: limited, the forged addresses ignored
    assert all(s != 200 for s in statuses)


def test_rotating_forwarded_for_does_not_reset_the_login_lockout(api_sqlite):
    a = api_sqlite  # TestClient's peer is one address; every request forges another
    threshold = int(a.svc.settings.auth.lockout_threshold)
    for i in range(threshold):
        res = a.client.post("/oauth/token", headers=_xff(i),
                            data={"grant_type": "password", "username": "oscar", "password": "bad"})
        assert res.json()["error"] == "invalid_grant"
    res = a.client.post("/oauth/token", headers=_xff(999),
                        data={"grant_type": "password", "username": "oscar", "password": PASSWORD})
    assert res.status_code == 400 and res.json()["error"] == "invalid_grant"  # locked: the right password too
    rows = [r for r in a.svc.audit.recent(threshold + 1) if r["action"].startswith("login")]
    assert {json.loads(r["payload"])["client"] if isinstance(r["payload"], str) else r["payload"]["client"]
            for r in rows} == {"api:testclient"}  # one address recorded, none of the forged ones


def _still_limiter() -> MemoryLimiter:
    """A limiter whose clock stands still mid-window: a slow run crossing a minute boundary would reset the
    counts between two requests and make the limit look broken (seen under load in CI)."""
    return MemoryLimiter(clock=lambda: 1_800_000_030.0)


def _peer_app(svc, peer: str, *, limiter=None, **api):
    return TestClient(create_app(services=with_api(svc, principal_cache_seconds=0, **api),
                                 limiter=limiter or _still_limiter()), client=(peer, 40000))


def test_a_named_proxy_is_believed_and_any_other_peer_is_not(sqlite_services):
    svc = sqlite_services
    svc.users.add("olga", role="loan_officer", password=PASSWORD)
    form = {"grant_type": "password", "username": "olga", "password": "bad"}
    # behind the named proxy: each forwarded address has its own limit
    with _peer_app(svc, "10.1.2.3", trusted_proxies=["10.1.0.0/16"], token_rate_limit_per_minute=2) as c:
        codes = [c.post("/oauth/token", data=form, headers={"X-Forwarded-For": f"198.51.100.{i // 2}"}).status_code
                 for i in range(6)]
        assert codes == [400] * 6, codes
    # a peer that is not the proxy: its own address counts, whatever it forwards
    with _peer_app(svc, "10.9.9.9", trusted_proxies=["10.1.0.0/16"], token_rate_limit_per_minute=2) as c:
        codes = [c.post("/oauth/token", data=form, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                 for i in range(6)]
        assert codes == [400, 400, 429, 429, 429, 429], codes


@pytest.mark.parametrize("bad", ["*", "localhost", "10.0.0.0/33", "1.2.3", "not an ip", "0.0.0.0/0 "])
def test_trusted_proxies_must_be_addresses_or_networks(bad):
    if bad.strip() == "0.0.0.0/0":
        assert ApiSettings(trusted_proxies=[bad]).trusted_proxies == ["0.0.0.0/0"]  # explicit, not a wildcard
        return
    with pytest.raises(ValueError, match="not an IP address or network"):
        ApiSettings(trusted_proxies=[bad])


def test_default_trusts_no_proxy():
    assert ApiSettings().trusted_proxies == []


def test_token_endpoint_limits_per_client_id_across_addresses(sqlite_services):
    svc = sqlite_services
    info, secret = svc.api_clients.add("los", role="loan_officer", scopes=["score"], actor="test")
    other, other_secret = svc.api_clients.add("los2", role="loan_officer", scopes=["score"], actor="test")
    shared = _still_limiter()  # one counter store, as Redis shares it between replicas

    def guess(peer: str, cid: str, sec: str) -> int:
        with _peer_app(svc, peer, token_rate_limit_per_minute=3, limiter=shared) as c:
            return c.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                                "client_secret": sec}).status_code

    codes = [guess(f"192.0.2.{i + 1}", info.client_id, f"crs_guess{i}") for i in range(6)]  # a new address each
    assert codes == [401, 401, 401, 429, 429, 429], codes
    assert guess("192.0.2.99", info.client_id, secret) == 429  # the right secret waits for the window too
    assert guess("192.0.2.99", other.client_id, other_secret) == 200  # other clients are not affected


def test_per_account_lockout_across_many_addresses_decays(services, clock):
    svc = services
    svc.users.add("alice", role="loan_officer", password=PASSWORD)
    n = int(svc.settings.auth.account_lockout_threshold)
    per_client = int(svc.settings.auth.lockout_threshold)
    for i in range(n):  # never more than a few from one address: no per-address lock
        r = svc.auth.authenticate("alice", "bad", client=f"api:198.51.100.{i // (per_client - 1)}")
        assert r.reason == "bad_password"
    locked = svc.auth.authenticate("alice", PASSWORD, client="api:192.0.2.77")  # a fresh address
    assert not locked.ok and locked.reason == "locked"
    clock.advance(seconds=svc.settings.auth.lockout_max_seconds + 1)  # bounded, never permanent
    assert svc.auth.authenticate("alice", PASSWORD, client="api:192.0.2.77").ok
