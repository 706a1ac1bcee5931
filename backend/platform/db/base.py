"""What every table shares: the declarative base with its naming convention, UUID keys and UTC timestamps.

The tables live by area in ``tables_access`` (users, sessions, API clients), ``tables_book``
(applications, predictions, decisions, outcomes, explanations, feedback) and ``tables_governance``
(audit log, rollout, monitoring, alerts, evidence, sign-offs); :mod:`backend.platform.db.schema`
holds them all. The schema is created by Alembic (``backend/platform/db/migrations``), never by
``create_all`` in production code; tests use the same migrations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    Uuid,
    case,
    cast,
    func,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend: PostgreSQL ``timestamptz``; on SQLite microseconds since
    1970-01-01 UTC as an integer (since migration 0019: 8 bytes instead of 26 characters of text, exact, ordered;
    SQL that computes with them goes through :mod:`backend.platform.db.timesql`). Reads accept the text of a row
    written before 0019 too."""

    impl = DateTime(timezone=True)
    cache_ok = True
    since = "0019"

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> int | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use timezone-aware UTC")
            return (value - _EPOCH) // _US

        return process

    def literal_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().literal_processor(dialect)
        bind = self.bind_processor(dialect)
        return lambda value: str(bind(value))

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        text = super().result_processor(dialect, coltype)  # a row from before 0019: SQLAlchemy's text

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, int):
                return _EPOCH + timedelta(microseconds=value)
            return text(value) if text is not None else value

        return process


def sqlite_time(value: datetime) -> int:
    """How :class:`UTCDateTime` stores ``value`` (aware) on SQLite, for statements that bypass the type."""
    return (value.astimezone(UTC) - _EPOCH) // _US


class HexDigest(TypeDecorator[str]):
    """A hex digest (SHA-256: 64 characters) stored as its bytes (32): half the row's bytes and half its unique
    index; read back as the same lowercase hex text (``""`` as empty bytes). Only lowercase hex of even length
    goes in (what ``hexdigest()`` gives); a value in the database that is text (written around the product, or
    on SQLite before migration 0017 rewrote it) reads back as that text, unchanged. ``since``: the migration
    from which the column holds bytes (backups keep these columns as hex text, portable across revisions)."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, since: str = "0017") -> None:
        super().__init__()
        self.since = since

    def process_bind_param(self, value: str | bytes | None, dialect: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        try:  # (fromhex and a round trip: a tenth of a regular expression's time, 3 per audit row)
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
        if raw is None or raw.hex() != value:  # uppercase and whitespace would not read back the same
            raise ValueError(f"not a lowercase hex digest: {value[:80]!r}")
        return raw

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return bytes(value).hex()


class UUIDKey(TypeDecorator[uuid.UUID]):
    """A UUID (keys and references): PostgreSQL's native ``uuid``; on SQLite its 16 bytes (since migration 0018;
    before it, 32 hex characters: half the bytes of every key, reference and their indexes: ~45 MB of the default
    history). The column's DDL is ``Uuid``'s (``CHAR(32)`` on SQLite, whose text affinity keeps a BLOB as it is).
    Reads accept both forms, so rows written before the migration (or a backup loaded into an older schema)
    read back as the same UUIDs; a UUID's text (with or without dashes) binds as that UUID."""

    impl = Uuid
    cache_ok = True
    since = "0018"

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> bytes | None:
            if value is None or isinstance(value, bytes):
                return value
            return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes

        return process

    def literal_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().literal_processor(dialect)
        bind = self.bind_processor(dialect)
        return lambda value: f"X'{bind(value).hex()}'"

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> uuid.UUID | None:
            if value is None:
                return None
            if isinstance(value, bytes | memoryview):
                return uuid.UUID(bytes=bytes(value))
            return uuid.UUID(value)  # hex text: a row from before 0018

        return process


class EntityRef(TypeDecorator[str]):
    """The audit log's ``entity_id`` (text up to 64 characters: mostly a UUID's canonical text, sometimes a name
    or a number): on SQLite a value that is exactly a UUID's canonical text (lowercase, dashed: what ``str()`` of
    a UUID gives) is stored as its 16 bytes (since migration 0018; 20 bytes less in the row and again in
    ``ix_audit_log_entity``), any other value as its text; reads give back the same text either way, so the
    row hashes over it do not change. PostgreSQL stores the text."""

    impl = String(64)
    cache_ok = True
    since = "0018"

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return entity_bytes

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return entity_text


def entity_bytes(value: Any) -> Any:
    """How :class:`EntityRef` stores ``value`` on SQLite: a UUID's canonical text as its 16 bytes, anything else as
    it is (also migration 0018's rewrite)."""
    if isinstance(value, str) and len(value) == 36:
        try:
            u = uuid.UUID(value)
        except ValueError:
            return value
        return u.bytes if str(u) == value else value
    return value


def entity_text(value: Any) -> Any:
    """The inverse of :func:`entity_bytes`: 16 bytes as the UUID's canonical text (without building a UUID object:
    0.3 us, not 1.3), anything else as it is."""
    if isinstance(value, bytes | memoryview) and len(value) == 16:
        h = bytes(value).hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return value


def sqlite_function(conn: Any, name: str, fn: Callable[[Any], Any]) -> None:
    """Register the one-argument, deterministic SQL function ``name`` on the SQLite connection under ``conn`` (a
    SQLAlchemy ``Connection``), for the statements of this connection (migrations, the outcome import)."""
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError("no DBAPI connection is open under this connection")
    raw.create_function(name, 1, fn, deterministic=True)


def uuid_text(column: Any, dialect: str) -> Any:
    """SQL for a :class:`UUIDKey` column as 32 lowercase hex digits, no dashes (for prefix searches): on SQLite
    from its 16 bytes (or a value from before 0018 that is that text already), on PostgreSQL from its text."""
    if dialect == "sqlite":
        return case((func.typeof(column) == "blob", func.lower(func.hex(column))), else_=func.lower(column))
    return func.replace(func.lower(cast(column, String)), "-", "")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def new_id() -> uuid.UUID:
    return uuid.uuid4()
