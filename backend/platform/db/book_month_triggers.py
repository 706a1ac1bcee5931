"""The SQLite triggers that keep ``book_months`` (migration 0016): one upsert of a row's book month per insert,
update and delete of the book's tables. The month is taken from ``applications.applied_at`` by a SQL pattern
(``{c}``: the column): the text's first seven characters while times were text (0016), ``strftime`` over the
integer microseconds since 0019. Shared by the migrations so the trigger text has one definition.

Since 0022 the writes of the scored rows (``applications`` and ``predictions``: what drift reads) go to shard
:data:`SCORED_SHARD` of their month, the other tables' to shard 0: a month's token (all its shards) still changes
with any write, and its scored token (:data:`SCORED_SHARD` and up) only with a write drift would read, so a
decision or an outcome import no longer makes drift read the month's features again."""

from __future__ import annotations

CHILDREN = ("predictions", "decisions", "outcomes")  # rows with an application_id
VIA_PREDICTION = ("explanations", "llm_usage")  # rows with a prediction_id (nullable in llm_usage: no month)
TABLES = ("applications", *CHILDREN, *VIA_PREDICTION)
OPS = ("INSERT", "UPDATE", "DELETE")
TOKEN_SQLITE = "random() & 1099511627775"  # noqa: S105 - SQL for a random 40-bit token, not a secret
MONTH_TEXT = "substr({c}, 1, 7)"  # times as SQLAlchemy's text (before 0019)
MONTH_INTEGER = "strftime('%Y-%m', {c} / 1000000, 'unixepoch')"  # times as integer microseconds (0019)
SCORED = ("applications", "predictions")  # the rows drift reads (features; deny reasons)
SCORED_SHARD = 256  # their shards since 0022: SCORED_SHARD (SQLite), SCORED_SHARD + pid % 256 (PostgreSQL)


def touch(table: str, row: str, month: str, scored_shard: int = 0) -> str:
    """One upsert of the month (and shard: ``scored_shard`` for :data:`SCORED` tables, else 0) of ``row``'s
    application."""
    shard = scored_shard if table in SCORED else 0
    if table == "applications":
        return (f"INSERT INTO book_months (month, shard, token) VALUES ({month.format(c=row + '.applied_at')}, {shard}, "  # noqa: S608
                f"{TOKEN_SQLITE}) ON CONFLICT (month, shard) DO UPDATE SET token = excluded.token;")
    source = (f"FROM predictions p JOIN applications a ON a.id = p.application_id WHERE p.id = {row}.prediction_id"
              if table in VIA_PREDICTION else f"FROM applications a WHERE a.id = {row}.application_id")
    return (f"INSERT INTO book_months (month, shard, token) SELECT {month.format(c='a.applied_at')}, {shard}, "  # noqa: S608
            f"{TOKEN_SQLITE} {source} ON CONFLICT (month, shard) DO UPDATE SET token = excluded.token;")


def create_statements(month: str, scored_shard: int = 0) -> list[str]:
    """``CREATE TRIGGER`` for every table and operation, the month taken by ``month`` (0016-0021: every table's
    writes in shard 0; 0022: ``scored_shard=SCORED_SHARD``)."""
    out = []
    for table in TABLES:
        for opname in OPS:
            rows = {"INSERT": ("NEW",), "UPDATE": ("OLD", "NEW"), "DELETE": ("OLD",)}[opname]
            body = " ".join(touch(table, r, month, scored_shard) for r in rows)
            out.append(f"CREATE TRIGGER book_months_{table}_{opname.lower()} AFTER {opname} ON {table} "
                       f"BEGIN {body} END")
    return out


def drop_statements() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS book_months_{table}_{opname.lower()}" for table in TABLES for opname in OPS]
