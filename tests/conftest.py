"""Shared fixtures.

* ``db`` is parametrized over SQLite (a file per test) and the real PostgreSQL on this machine (a
  throw-away database per test, copied from a migrated template made once per session).
* Under ``CI=true`` a missing PostgreSQL, Redis or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend.clock import FixedClock
from backend.config import Settings, load_settings
from backend.container import Services, build_services
from backend.db.engine import Database, make_engine

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("CREDITRISK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CREDITRISK_TEST_REDIS", "redis://127.0.0.1:6379/15")


def require(ok: bool, reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


def _pg_admin() -> sa.Engine | None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
        return engine
    except Exception:  # noqa: BLE001
        engine.dispose()
        return None


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[sa.Engine, str] | None]:
    admin = _pg_admin()
    if admin is None:
        yield None
        return
    name = f"crt_tmpl_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = Database(make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"))
    db.migrate()
    db.dispose()
    yield admin, name
    _drop(admin, name)
    admin.dispose()


def _drop(admin: sa.Engine, name: str) -> None:
    with admin.connect() as c:
        c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture
def pg_database(pg_template: tuple[sa.Engine, str] | None) -> Iterator[Database]:
    require(pg_template is not None, f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    assert pg_template is not None
    admin, template = pg_template
    name = f"crt_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    db = Database(make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"))
    yield db
    db.dispose()
    _drop(admin, name)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'test.db'}"))
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    name = "sqlite_database" if request.param == "sqlite" else "pg_database"
    return request.getfixturevalue(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4},
                         model={"registry_dir": tmp_path / "models"})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 15, 9, 0, tzinfo=UTC))


@pytest.fixture
def services(settings: Settings, db: Database, clock: FixedClock) -> Services:
    return build_services(settings, db=db, clock=clock)


@pytest.fixture(scope="session")
def model_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one small trained champion (trained once per test session)."""
    from backend.model.registry import Registry
    from backend.training.train import train_and_register

    root = tmp_path_factory.mktemp("registry")
    report = train_and_register(None, rows=4000, seed=3, registry_root=root, name="creditrisk",
                                cv_folds=2, n_boost=20, n_trees=30)
    Registry(root, name="creditrisk").promote(report["version"], gates_required=False)
    return root


@pytest.fixture
def scoring_services(tmp_path: Path, db: Database, clock: FixedClock, model_registry: Path) -> Services:
    import shutil

    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root})
    return build_services(s, db=db, clock=clock)
