"""Fixtures for the scoring API: the app on the shared ``scoring_services`` (SQLite and PostgreSQL),
or on SQLite only (``api_sqlite``) for tests whose subject is the HTTP layer; people of every role,
tokens, and applications from the synthetic generator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from api_helpers import applications, make_api

from backend.container import Services, build_services


@pytest.fixture
def api(scoring_services: Services) -> Iterator[SimpleNamespace]:
    """The API on SQLite and on PostgreSQL."""
    yield from make_api(scoring_services)


@pytest.fixture
def sqlite_services(tmp_path: Path, sqlite_database: Any, clock: Any, model_registry: Path) -> Services:
    import shutil

    from backend.container.settings import load_settings

    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root})
    return build_services(s, db=sqlite_database, clock=clock)


@pytest.fixture
def api_sqlite(sqlite_services: Services) -> Iterator[SimpleNamespace]:
    """The API on SQLite only (tests of the HTTP layer: parsing, tokens, limits)."""
    yield from make_api(sqlite_services)


@pytest.fixture(scope="session")
def sample() -> list[dict[str, Any]]:
    return applications(40, seed=11)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """``REDIS_URL`` of tests/conftest.py (skipped locally, failed under CI=true, when Redis is down)."""
    import redis

    root = request.config.pluginmanager.get_plugin(str(Path(__file__).resolve().parent.parent / "conftest.py"))
    url = str(root.REDIS_URL)
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        root.require(False, f"Redis not reachable at {url}")
    finally:
        client.close()
    return url
