"""The whole schema: every table module imported, so :data:`metadata` holds every table.

Alembic's ``env.py`` compares against it and the backup copies every table in it; anything that
needs *all* tables (not the few it queries) takes them from here.
"""

from __future__ import annotations

from backend.platform.db import tables_access, tables_book, tables_governance
from backend.platform.db.base import Base

TABLE_MODULES = (tables_access, tables_book, tables_governance)
metadata = Base.metadata
