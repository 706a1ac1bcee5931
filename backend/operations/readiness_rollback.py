"""A rollback drill (`creditrisk readiness rollback-drill`): proves that the champion can be rolled back,
without touching the serving registry.

The champion's and the rollback target's version folders and ``aliases.json`` are copied into a scratch
registry; there the real :meth:`Registry.rollback` runs, the restored champion is loaded (checksums
verified) and scores a few of its held-out rows. The result is stored as ``rollback_test`` evidence (one
transaction with its audit row), which the readiness checklist reads beside real rollbacks in the registry.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from backend.compliance import Evidence, record
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

MSG_NO_CHAMPION = "no champion model: there is nothing to roll back"
MSG_NO_TARGET = ("no earlier champion to roll back to ({champion} is the first): a rollback needs a version that "
                 "served before")
SCORED_ROWS = 20


def rollback_drill(registry: Any, db: Database, clock: Clock, *, actor: str = "cli", role: str = "system",
                   to: str | None = None, command: str | None = None) -> Evidence:
    """Roll the champion back to ``to`` (default: the newest earlier champion) in a scratch copy and
    record the outcome (ok or not) as ``rollback_test`` evidence; returns the evidence row."""
    from backend.models import Registry, RegistryError

    started = time.perf_counter()
    doc = registry.aliases()
    champion = doc.get("champion")
    payload: dict[str, Any] = {"champion": champion, "scratch": True}
    try:
        if not champion:
            raise RegistryError(MSG_NO_CHAMPION)
        targets = registry.rollback_targets(doc)  # never a version rolled back for cause
        target = registry.resolve(to) if to else (targets[0] if targets else None)
        if target is None:
            raise RegistryError(MSG_NO_TARGET.format(champion=champion))
        payload["target"] = target
        with tempfile.TemporaryDirectory(prefix="creditrisk-rollback-drill-") as tmp:
            copy = Path(tmp) / registry.name
            copy.mkdir()
            for version in {champion, target}:
                registry.resolve(version)  # an MLflow registry fetches (and verifies) it into its cache first
                shutil.copytree(registry.path / version, copy / version)
            shutil.copy2(registry.path / "aliases.json", copy / "aliases.json")
            scratch = Registry(tmp, registry.name, keys=registry.keys)
            restored = scratch.rollback(to=target, at=clock.now(), by=actor)
            model = scratch.load("champion")
            rows = scratch.holdout(restored).head(SCORED_ROWS)
            scores = np.asarray(model.predict_raw(rows), dtype=float)
        if restored != target or len(scores) != len(rows) or not np.isfinite(scores).all():
            raise RegistryError(f"the restored champion {restored} did not score its held-out rows")
        seconds = time.perf_counter() - started
        payload.update(restored=restored, seconds=round(seconds, 3), scored_rows=len(rows))
        summary = (f"rolled back {champion} -> {restored} in a scratch copy of the registry in {seconds:.2f} s; "
                   f"restored champion loaded (checksums verified) and scored {len(rows)} held-out rows")
        ok = True
    except (RegistryError, OSError, ValueError, KeyError) as exc:
        payload.update(error=str(exc)[:300], seconds=round(time.perf_counter() - started, 3))
        summary, ok = f"rollback drill failed: {exc}"[:500], False
    return record(db, clock, kind="rollback_test", ok=ok, summary=summary, payload=payload,
                           command=command, actor=actor, role=role)
