"""The book's tables as an early revision created them, for migration tests that write rows the way the code of
that revision did (JSON columns, no columns added later). Only the columns those tests write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from backend.compliance.audit_payload import canonical_json, sha256
from backend.compliance.audit_queries import row_hash_v2
from backend.platform.db import compact
from backend.platform.db.engine import Database

HEAD = "0022"  # the newest migration (backend/platform/db/migrations/versions)

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


T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


# the audit entity ids of the first rows: a UUID's text that is not its canonical form (stays text), then canonical
ENTITY_IDS = (lambda d: str(d).upper(), lambda d: d.hex, lambda d: "{" + str(d) + "}", lambda d: "batch-7")


def applied_time(k: int) -> datetime:
    """The ``k``-th application's time in :func:`write_0017_book`: nine days apart (across month and year ends), a
    different microsecond each, the first at the very end of a month."""
    return datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC) + timedelta(days=9 * k, microseconds=-37 * k)


def _t(name: str, *cols: tuple[str, sa.types.TypeEngine]) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *[sa.Column(n, t) for n, t in cols])


def write_0017_book(db: Database, n: int = 7) -> dict[str, list[uuid.UUID]]:
    """A small book as 0017's code stored it: ``sa.Uuid`` columns (32 hex digits on SQLite)."""
    naive = (lambda t: t.replace(tzinfo=None)) if db.dialect == "sqlite" else (lambda t: t)
    officer = uuid.uuid4()
    ids = {"app": [uuid.uuid4() for _ in range(n)], "pred": [uuid.uuid4() for _ in range(n)],
           "dec": [uuid.uuid4() for _ in range(n)], "out": [uuid.uuid4() for _ in range(n)], "officer": [officer]}
    U, S, D = sa.Uuid(), sa.String(), sa.DateTime(timezone=True)
    with db.engine.begin() as c:
        c.execute(_t("users", ("id", U), ("username", S), ("display_name", S), ("password_hash", S), ("role", S),
                     ("disabled", sa.Boolean()), ("senior", sa.Boolean()), ("created_at", D), ("updated_at", D))
                  .insert(), [dict(id=officer, username="olga", display_name="Olga", password_hash="x",
                                   role="loan_officer", disabled=False, senior=False, created_at=naive(T0),
                                   updated_at=naive(T0))])
        c.execute(_t("applications", ("id", U), ("applicant_id", S), ("features", sa.LargeBinary()),
                     ("protected", sa.JSON()), ("loan_amount", sa.Float()), ("applied_at", D), ("created_at", D),
                     ("officer_id", U), ("source", S), ("ai_visible", sa.Boolean())).insert(),
                  [dict(id=a, applicant_id=f"a{k}", features=compact.dumps({"k": k}), protected={}, loan_amount=1.0,
                        applied_at=naive(applied_time(k)), created_at=naive(T0), officer_id=officer, source="console",
                        ai_visible=True) for k, a in enumerate(ids["app"])])
        c.execute(_t("predictions", ("id", U), ("application_id", U), ("model_name", S), ("model_version", S),
                     ("model_role", S), ("engine", S), ("pd", sa.Float()), ("raw_score", sa.Float()),
                     ("risk_class", S), ("confidence", sa.Float()), ("recommendation", S),
                     ("policy_reasons", sa.JSON()), ("reasons", sa.LargeBinary()), ("attributions", sa.LargeBinary()),
                     ("cache_hit", sa.Boolean()), ("latency_ms", sa.Float()), ("created_at", D)).insert(),
                  [dict(id=p, application_id=a, model_name="m", model_version="v1", model_role="primary",
                        engine="compiled", pd=0.1, raw_score=0.1, risk_class="low_risk", confidence=0.9,
                        recommendation="approve", policy_reasons=[], reasons=compact.dumps([]),
                        attributions=compact.dumps({}), cache_hit=False, latency_ms=1.0, created_at=naive(T0))
                   for p, a in zip(ids["pred"], ids["app"], strict=True)])
        c.execute(_t("decisions", ("id", U), ("application_id", U), ("prediction_id", U), ("outcome", S),
                     ("status", S), ("decided_by", U), ("decided_at", D), ("is_override", sa.Boolean())).insert(),
                  [dict(id=d, application_id=a, prediction_id=p, outcome="approve", status="final",
                        decided_by=officer, decided_at=naive(T0), is_override=False)
                   for d, a, p in zip(ids["dec"], ids["app"], ids["pred"], strict=True)])
        c.execute(_t("outcomes", ("id", U), ("application_id", U), ("funded", sa.Boolean()),
                     ("defaulted", sa.Boolean()), ("observed_at", D), ("imported_at", D), ("batch_id", S)).insert(),
                  [dict(id=o, application_id=a, funded=True, defaulted=k % 2 == 0, observed_at=naive(T0),
                        imported_at=naive(T0), batch_id="b") for k, (o, a) in enumerate(zip(ids["out"], ids["app"],
                                                                                              strict=True))])
        audit = _t("audit_log", ("id", U), ("at", D), ("actor", S), ("role", S), ("action", S), ("entity_type", S),
                   ("entity_id", S), ("payload", sa.LargeBinary()), ("payload_hash", sa.LargeBinary()),
                   ("prev_hash", sa.LargeBinary()), ("row_hash", sa.LargeBinary()))
        rows = []
        for k, d in enumerate(ids["dec"]):
            rid, at, payload = uuid.uuid4(), T0 + timedelta(seconds=k), {"decision": str(d), "k": k}
            ph = sha256(canonical_json(payload))
            entity = ENTITY_IDS[k](d) if k < len(ENTITY_IDS) else str(d)
            rows.append(dict(id=rid, at=naive(at), actor="olga", role="loan_officer", action="decision_accepted",
                             entity_type="decision", entity_id=entity, payload=compact.dumps(payload, compact.AUDIT),
                             payload_hash=bytes.fromhex(ph), prev_hash=b"",
                             row_hash=bytes.fromhex(row_hash_v2(rid, at, "olga", "loan_officer", "decision_accepted",
                                                                "decision", entity, ph))))
            ids.setdefault("entity", []).append(entity)
            ids.setdefault("audit", []).append(rid)
        c.execute(audit.insert(), rows)
    return ids
