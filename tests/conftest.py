"""Shared fixtures.

* ``db`` is parametrized over SQLite (a file per test) and the real PostgreSQL on this machine (a
  throw-away database per test, copied from a migrated template made once per session).
* Under ``CI=true`` a missing PostgreSQL, Redis or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from file_weights import order
from mfa_helpers import MFA_ENV
from shared_once import once, run_id
from signing_key import SESSION_SIGNING_KEY

from backend.container import Services, build_services
from backend.container.settings import Settings, load_settings
from backend.platform.clock import FixedClock
from backend.platform.db.engine import Database, make_engine

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("CREDITRISK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CREDITRISK_TEST_REDIS", "redis://127.0.0.1:6379/15")
# password-only sign-in for accounts that did not enrol a second factor (tests of MFA turn it on: tests/mfa_helpers.py)
os.environ.setdefault(MFA_ENV, "false")




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


class PgPool:
    """A worker's throw-away PostgreSQL databases, copied from the migrated template.

    ``CREATE DATABASE ... TEMPLATE`` costs 0.1-0.2 s on a quiet machine and 0.4 s (its drop 0.2 s) while both
    workers run; ~600 tests ask for one. The next copy is made by a thread of its own while the current test runs,
    and a finished database is dropped by that thread too, so a test waits only for what the thread has not done
    yet (one thread: the drops and copies keep their order). The gain is small (docs/testing.md): the server's work
    competes for the same two cores as the tests."""

    def __init__(self, admin: sa.Engine, template: str) -> None:
        self.admin, self.template = admin, template
        self._work = ThreadPoolExecutor(1, thread_name_prefix="pg-pool")
        self._next: Future[str] | None = None

    def _create(self) -> str:
        name = f"crt_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def take(self) -> Database:
        """A new migrated database (the one made ahead, and the following one started)."""
        made = self._next or self._work.submit(self._create)
        self._next = self._work.submit(self._create)
        return Database(make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{made.result()}"))

    def drop(self, name: str) -> None:
        """Drop ``name`` in the background (its engine is disposed already)."""
        self._work.submit(_drop, self.admin, name)

    def close(self) -> None:
        if self._next is not None:
            try:
                self.drop(self._next.result())
            except Exception:  # noqa: BLE001 - a copy that failed left nothing to drop
                pass
        self._work.shutdown(wait=True)


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


@pytest.fixture(scope="session")
def pg_pool(pg_template: tuple[sa.Engine, str] | None) -> Iterator[PgPool | None]:
    if pg_template is None:
        yield None
        return
    pool = PgPool(*pg_template)
    yield pool
    pool.close()


def _drop(admin: sa.Engine, name: str) -> None:
    with admin.connect() as c:
        c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


def _pg_copy(pool: PgPool | None) -> tuple[Database, Callable[[], None]]:
    """A new database from the migrated template, and how to drop it."""
    require(pool is not None, f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    assert pool is not None
    db = pool.take()

    def drop() -> None:
        name = db.engine.url.database
        db.dispose()
        assert name is not None
        pool.drop(name)

    return db, drop


@pytest.fixture
def pg_database(pg_pool: PgPool | None) -> Iterator[Database]:
    db, drop = _pg_copy(pg_pool)
    yield db
    drop()


@pytest.fixture
def another_database(tmp_path: Path, pg_pool: PgPool | None) -> Iterator[Callable[[str], Database]]:
    """Makes more empty, migrated databases of a kind (``"sqlite"`` or ``"postgresql"``) for one test."""
    drops: list[Callable[[], None]] = []

    def make(kind: str) -> Database:
        if kind == "postgresql":
            db, drop = _pg_copy(pg_pool)
        else:
            db = Database(make_engine(f"sqlite:///{tmp_path / f'another-{len(drops)}.db'}"))
            db.migrate()
            drop = db.dispose
        drops.append(drop)
        return db

    yield make
    for drop in drops:
        drop()


# --------------------------------------------------------------------------- fresh SQLite files
# Migrating a new SQLite file costs 0.2-0.5 s (Alembic runs every revision) and ~1,000 tests make one (the
# ``sqlite_database`` fixture, ``build_services(..., migrate=True)`` in the console and CLI tests): in this test
# process, ``Database.migrate`` on a SQLite file that does not exist yet copies a file migrated once per worker
# by the real ``migrate`` (the session fixture below); any other database is migrated as usual.
_real_migrate = Database.migrate
_sqlite_migrated: list[Path] = []  # the worker's migrated file, once made


def _new_sqlite_file(db: Database) -> Path | None:
    path = db.engine.url.database if db.dialect == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    p = Path(path)
    if p.exists() or any(Path(path + s).exists() for s in ("-wal", "-shm", "-journal")):
        return None
    return p


def _migrate_by_copy(self: Database) -> None:
    path = _new_sqlite_file(self) if _sqlite_migrated else None
    if path is None:
        _real_migrate(self)
        return
    self.engine.dispose()
    shutil.copyfile(_sqlite_migrated[0], path)


@pytest.fixture(scope="session", autouse=True)
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("sqlite-migrated") / "migrated.db"
    db = Database(make_engine(f"sqlite:///{path}"))
    _real_migrate(db)
    db.dispose()
    with closing(sqlite3.connect(path)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file: it alone is copied
    _sqlite_migrated.append(path)
    Database.migrate = _migrate_by_copy  # type: ignore[method-assign]
    yield path
    Database.migrate = _real_migrate  # type: ignore[method-assign]
    _sqlite_migrated.clear()


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
    """A registry holding one small trained champion (trained once per test run, shared by the workers)."""

    def build(root: Path) -> None:
        from backend.models.registry import Registry
        from backend.training.train import train_and_register

        report = train_and_register(None, rows=4000, seed=3, registry_root=root, name="creditrisk",
                                    cv_folds=2, n_boost=20, n_trees=30)
        Registry(root, name="creditrisk").promote(report["version"], gates_required=False)

    return once(tmp_path_factory, "model-registry", build)


@pytest.fixture
def scoring_services(tmp_path: Path, db: Database, clock: FixedClock, model_registry: Path) -> Services:
    import shutil

    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root})
    return build_services(s, db=db, clock=clock)


# --------------------------------------------------------------------------- simulated history
SIM_VOLUME = 600  # applications per month: small enough for CI, enough for group-level monitoring figures


SIM_DB_PREFIX = "crt_sim_"


@pytest.fixture(scope="session")
def sim_template(tmp_path_factory: pytest.TempPathFactory, model_registry: Path,
                 pg_template: tuple[sa.Engine, str] | None) -> dict[str, object]:
    """Six months of simulated operations (``seed-demo`` with a small volume, incident included, no
    retrain), made once per test run per backend on first use (shared by the xdist workers, see
    ``tests/shared_once.py``) and copied by :func:`sim_services`. The PostgreSQL copy is dropped by
    :func:`pytest_sessionfinish` when the whole run ends."""
    return {"factory": tmp_path_factory, "registry": model_registry, "pg": pg_template, "made": {}}


def _make_sim(template: dict[str, object], backend: str) -> object:
    import shutil

    from backend.simulation.operations import OperationsSimulator, SimConfig

    made: dict[str, object] = template["made"]  # type: ignore[assignment]
    if backend in made:
        return made[backend]
    if backend == "postgresql":
        require(template["pg"] is not None, f"PostgreSQL not reachable at {PG_ADMIN_URL}")

    def build(root: Path) -> None:
        shutil.copytree(template["registry"], root / "models")  # type: ignore[arg-type]
        if backend == "sqlite":
            db = Database(make_engine(f"sqlite:///{root / 'sim.db'}"))
            db.migrate()
        else:
            admin, tmpl = template["pg"]  # type: ignore[misc]
            name = f"{SIM_DB_PREFIX}{run_id()}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{tmpl}"'))
            db = Database(make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"))
            (root / "dbname").write_text(name)
        s = load_settings(data_dir=root, auth={"bcrypt_rounds": 4}, model={"registry_dir": root / "models"})
        svc = build_services(s, db=db)
        OperationsSimulator(svc, SimConfig(volume=SIM_VOLUME, retrain=False), progress=None).run()
        db.dispose()

    root = once(template["factory"], f"sim-{backend}", build)  # type: ignore[arg-type]
    ref: object = root / "sim.db" if backend == "sqlite" else (root / "dbname").read_text()
    made[backend] = (ref, root / "models")
    return made[backend]


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        run_id()  # set before the xdist workers start, so that they all share it


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first (``tests/file_weights.py``): with ``--no-loadscope-reorder`` (the Makefile) the
    workers take them in this order, and the run does not end with one worker on a long file and the other idle."""
    items[:] = order(items, config.rootpath)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) drops the run's shared simulated-history databases."""
    if hasattr(session.config, "workerinput"):
        return
    admin = _pg_admin()
    if admin is None:
        return
    with admin.connect() as c:
        names = c.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                          {"p": f"{SIM_DB_PREFIX}{run_id()}_%"}).scalars().all()
    for name in names:
        _drop(admin, name)
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def sim_services(request: pytest.FixtureRequest, sim_template: dict[str, object], tmp_path: Path,
                 pg_pool: PgPool | None) -> Iterator[Services]:
    """A private copy of the simulated history (database and model registry), per backend.

    The clock is fixed at 2026-02-15 (two weeks after the history's last application); outcomes are
    observed as of 2026-10-31 as in ``seed-demo``.
    """
    import shutil

    ref, registry = _make_sim(sim_template, request.param)  # type: ignore[misc]
    shutil.copytree(registry, tmp_path / "models")
    for keys in ("secrets", "audit_checkpoints"):  # the history's keys (audit chain, PII) and signed checkpoints
        if (registry.parent / keys).is_dir():
            shutil.copytree(registry.parent / keys, tmp_path / keys)
    name = None
    if request.param == "sqlite":
        shutil.copy(ref, tmp_path / "sim.db")
        db = Database(make_engine(f"sqlite:///{tmp_path / 'sim.db'}"))
    else:
        admin, _ = sim_template["pg"]  # type: ignore[misc]
        name = f"crt_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{ref}"'))
        db = Database(make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"))
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": tmp_path / "models"})
    svc = build_services(s, db=db, clock=FixedClock(datetime(2026, 2, 15, 9, 0, tzinfo=UTC)))
    yield svc
    db.dispose()
    if name is not None and pg_pool is not None:
        pg_pool.drop(name)


@pytest.fixture
def wide_cli_tables() -> Iterator[None]:
    """The CLI's tables and messages as wide as a test's assertions expect, whatever the terminal: Rich fixes
    the width from COLUMNS when a console is made, and an 80-column run wraps the text a test looks for."""
    from backend.platform import cli

    consoles = (cli.out, cli.err)
    saved = [c._width for c in consoles]
    for c in consoles:
        c.width = 200
    yield
    for c, width in zip(consoles, saved, strict=True):
        c._width = width


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh install for CLI tests: no CREDITRISK_* from the caller's environment, the working directory
    and data dir under ``tmp_path`` (``var/``, registry ``models/``), cheap password hashing; the session's
    model signing key stays (the registries the tests copy in are signed with it)."""
    for k in list(os.environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)
    monkeypatch.setenv(MFA_ENV, os.environ.get(MFA_ENV, "false"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CREDITRISK_AUTH__BCRYPT_ROUNDS", "4")
    return tmp_path
