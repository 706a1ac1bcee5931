"""The book's tables as an early revision created them, for migration tests that write rows the way the code of
that revision did (JSON columns, no columns added later). Only the columns those tests write."""

from __future__ import annotations

import sqlalchemy as sa

HEAD = "0018"  # the newest migration (backend/platform/db/migrations/versions)

APPLICATION_COLUMNS = (("id", sa.Uuid), ("applicant_id", sa.String), ("features", sa.JSON), ("protected", sa.JSON),
                       ("loan_amount", sa.Float), ("applied_at", sa.DateTime(timezone=True)),
                       ("created_at", sa.DateTime(timezone=True)), ("source", sa.String))
PREDICTION_COLUMNS = (
    ("id", sa.Uuid), ("application_id", sa.Uuid), ("model_name", sa.String), ("model_version", sa.String),
    ("model_role", sa.String), ("engine", sa.String), ("pd", sa.Float), ("raw_score", sa.Float),
    ("risk_class", sa.String), ("confidence", sa.Float), ("recommendation", sa.String),
    ("policy_reasons", sa.JSON), ("reasons", sa.JSON), ("attributions", sa.JSON), ("cache_hit", sa.Boolean),
    ("latency_ms", sa.Float), ("created_at", sa.DateTime(timezone=True)))


def book_tables(*application_extra: tuple[str, sa.types.TypeEngine]) -> tuple[sa.Table, sa.Table]:
    """``applications`` and ``predictions`` as migration 0001 created them, ``applications`` with the columns
    ``application_extra`` (name, type) a later revision requires."""
    meta = sa.MetaData()
    apps = sa.Table("applications", meta, *[sa.Column(n, t) for n, t in (*APPLICATION_COLUMNS, *application_extra)])
    preds = sa.Table("predictions", meta, *[sa.Column(n, t) for n, t in PREDICTION_COLUMNS])
    return apps, preds
