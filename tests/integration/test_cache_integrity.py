"""Poisoning the score cache, as an attacker who can write to Redis (or to a shared cache's memory) but does
not hold the deployment's cache MAC key.

The attack of the penetration test: a cached denial (PD 8.8%) rewritten to an approval (PD 0.01%) was
served to a new applicant with the same features, recorded and audited as approve. Here every rewrite,
forgery and transplant is a miss: the applicant is scored afresh (deny), the ``cache_integrity_failures``
counter counts it and the ``creditrisk.security`` log says so.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from pathlib import Path

import pytest

from backend.container import build_services
from backend.container.settings import load_settings
from backend.domain import Actor
from backend.platform.adapters.cache_memory import MemoryCache
from backend.platform.adapters.cache_redis import RedisCache
from backend.platform.adapters.cache_sealed import MAGIC, TAG_BYTES, SealedCache, cache_mac_key
from backend.platform.adapters.metrics_noop import NoopMetrics
from backend.platform.metrics_catalog import CACHE_INTEGRITY_FAILURES
from backend.scoring.result import ScoreResult
from backend.training.synthetic import generate

OFFICER = Actor("olivia", "loan_officer")
REDIS_URL = os.environ.get("CREDITRISK_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class CountingMetrics(NoopMetrics):
    def __init__(self) -> None:
        self.counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name, labels, value=1.0):
        super().inc(name, labels, value)  # an unknown metric or a wrong label set fails the test
        key = (name, tuple(sorted(labels.items())))
        self.counts[key] = self.counts.get(key, 0.0) + value

    def failures(self) -> float:
        return sum(v for (n, _), v in self.counts.items() if n == CACHE_INTEGRITY_FAILURES)


def _redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"Redis not reachable at {REDIS_URL}: {exc} (CI=true: a failure, not a skip)")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return client


@pytest.fixture(params=["memory", "redis"])
def poisonable(request, tmp_path, db, clock, model_registry):
    """Scoring services on the in-process cache or the real Redis (own namespace), and a way to reach the
    raw entries behind the service's back: ``(services, read(key) -> bytes, write(key, bytes), keys())``."""
    import shutil

    shutil.copytree(model_registry, tmp_path / "models")
    settings = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": tmp_path / "models"})
    metrics = CountingMetrics()
    if request.param == "memory":
        mem = MemoryCache()
        svc = build_services(settings, db=db, clock=clock, cache=mem, metrics=metrics)
        yield (svc, lambda k: mem._data[k][0], lambda k, v: mem._data.__setitem__(k, (v, None)),
               lambda: list(mem._data), metrics)
        return
    client = _redis_client()
    ns = f"creditrisk-test-{uuid.uuid4().hex[:8]}:"
    cache = RedisCache(REDIS_URL, namespace=ns, socket_timeout=1.0, connect_timeout=1.0)
    svc = build_services(settings, db=db, clock=clock, cache=cache, metrics=metrics)
    try:
        yield (svc, lambda k: client.get(ns + k), lambda k, v: client.set(ns + k, v),
               lambda: [k.decode()[len(ns):] for k in client.scan_iter(match=ns + "*")], metrics)
    finally:
        for k in client.scan_iter(match=ns + "*"):
            client.delete(k)
        cache.close()
        client.close()


def _denied_and_approved(svc):
    df = generate(300, seed=5).drop(columns=["default", "pd_true"]).astype(object)
    apps = df.where(df.notna(), None).to_dict("records")
    denied = approved = None
    for app in apps:
        res = svc.scoring.score(app, submitter=OFFICER, persist=False)
        if res.recommendation == "deny" and denied is None:
            denied = (app, res)
        if res.recommendation == "approve" and approved is None:
            approved = (app, res)
        if denied and approved:
            return denied, approved
    raise AssertionError("the synthetic sample holds no denial and approval")


def _key_of(keys, result) -> str:
    (key,) = [k for k in keys() if k.startswith("score:") and k.endswith(result.extra["feature_hash"])]
    return key


def _as_approval(value: bytes) -> bytes:
    data = json.loads(value)
    data.update(pd=0.0001, raw_score=0.0001, recommendation="approve", risk_class="A", policy_reasons=[])
    return json.dumps(data).encode()


def _attacks(stored: bytes, approved_stored: bytes) -> dict[str, bytes]:
    head = len(MAGIC) + TAG_BYTES
    tag, value = stored[:head], stored[head:]
    return {
        "plain JSON (no tag)": _as_approval(value),
        "old tag, rewritten value": tag + _as_approval(value),
        "another applicant's genuine approval": approved_stored,
        "tag bytes flipped": stored[:-1] + bytes([stored[-1] ^ 1]),
        "truncated": stored[: head - 3],
        "empty": b"",
        "magic only": MAGIC,
        "garbage": os.urandom(200),
    }


@pytest.mark.parametrize("attack", ["plain JSON (no tag)", "old tag, rewritten value",
                                    "another applicant's genuine approval", "tag bytes flipped", "truncated", "empty",
                                    "magic only", "garbage"])
def test_a_poisoned_score_is_never_served(poisonable, attack, caplog):
    svc, read, write, keys, metrics = poisonable
    (denied_app, denied), (_, approved) = _denied_and_approved(svc)
    key = _key_of(keys, denied)
    stored, approved_stored = read(key), read(_key_of(keys, approved))
    assert stored[:len(MAGIC)] == MAGIC and b'"deny"' in stored  # what the attacker sees and rewrites
    forged = ScoreResult(**json.loads(_as_approval(stored[len(MAGIC) + TAG_BYTES:])))  # a servable answer
    assert (forged.recommendation, forged.pd) == ("approve", 0.0001)
    write(key, _attacks(stored, approved_stored)[attack])
    # a new applicant with the same features: scored afresh, denied, recorded as such
    twin = {**denied_app, "application_id": f"TWIN-{uuid.uuid4().hex[:6]}"}
    with caplog.at_level(logging.WARNING, logger="creditrisk.security"):
        res = svc.scoring.score(twin, submitter=OFFICER)
    assert (res.cache_hit, res.recommendation, res.pd) == (False, "deny", pytest.approx(denied.pd))
    assert metrics.failures() == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "creditrisk.security"]
    assert len(lines) == 1 and "failed its MAC check" in lines[0] and "keyspace=score" in lines[0]
    assert "deny" not in lines[0] and "approve" not in lines[0]  # never the value
    # the forged entry is gone; the fresh answer is cached (tagged) and served as a hit
    again = svc.scoring.score(twin, submitter=OFFICER, persist=False)
    assert (again.cache_hit, again.recommendation) == (True, "deny") and metrics.failures() == 1


def test_an_entry_tagged_by_another_deployment_is_refused():
    inner = MemoryCache()
    ours, theirs = SealedCache(inner, b"k" * 32), SealedCache(inner, b"x" * 32)
    theirs.set("score:m:v1:compiled:p:abc", b'{"recommendation": "approve"}')
    assert ours.get("score:m:v1:compiled:p:abc") is None and ours.integrity_failures == 1
    assert inner.get("score:m:v1:compiled:p:abc") is None  # deleted
    ours.set("score:m:v1:compiled:p:abc", b"value")
    assert ours.get("score:m:v1:compiled:p:abc") == b"value" and ours.integrity_failures == 1
    # the tag binds the key: model version and features hash; moved to another version, it fails
    inner.set("score:m:v2:compiled:p:abc", inner.get("score:m:v1:compiled:p:abc"))
    assert ours.get("score:m:v2:compiled:p:abc") is None and ours.integrity_failures == 2


def test_the_mac_key_file_is_made_once_with_mode_0600(tmp_path):
    first = cache_mac_key("", data_dir=tmp_path, env="dev", shared=True)
    path = tmp_path / "secrets" / "cache_mac.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cache_mac_key("", data_dir=tmp_path, env="test", shared=True) == first
    assert cache_mac_key("s" * 40, data_dir=tmp_path, env="production", shared=True) != first
    with pytest.raises(ValueError, match="CREDITRISK_CACHE__MAC_KEY must be set in production"):
        cache_mac_key("", data_dir=Path("/nonexistent"), env="production", shared=True)
    a = cache_mac_key("", data_dir=Path("/nonexistent"), env="production", shared=False)
    assert a != cache_mac_key("", data_dir=Path("/nonexistent"), env="production", shared=False)  # per process
    with pytest.raises(ValueError, match="at least 32"):
        cache_mac_key("short", data_dir=tmp_path, env="dev", shared=True)


def test_services_share_one_key_per_deployment(tmp_path, db, clock, model_registry):
    """Two processes of one deployment (same data dir or the same secret) read each other's entries."""
    import shutil

    shutil.copytree(model_registry, tmp_path / "models")
    settings = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": tmp_path / "models"})
    shared = MemoryCache()
    one = build_services(settings, db=db, clock=clock, cache=shared)
    two = build_services(settings, db=db, clock=clock, cache=shared)
    df = generate(1, seed=9).drop(columns=["default", "pd_true"]).astype(object)
    app = df.where(df.notna(), None).to_dict("records")[0]
    first = one.scoring.score(app, submitter=OFFICER, persist=False)
    second = two.scoring.score(app, submitter=OFFICER, persist=False)
    assert (first.cache_hit, second.cache_hit) == (False, True) and second.pd == first.pd
