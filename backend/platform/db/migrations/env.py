"""Alembic environment: runs against the engine handed in by ``Database.migrate``."""

from alembic import context

from backend.platform.db.schema import metadata

target_metadata = metadata
engine = context.config.attributes.get("connection_engine")
if engine is None:  # pragma: no cover - only through `alembic` CLI
    from backend.container.settings import load_settings
    from backend.platform.db.engine import make_engine

    engine = make_engine(load_settings().database_url)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
