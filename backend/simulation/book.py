"""Load simulated applications into the book through the real scoring path.

Rows come from the synthetic generator (deterministic for a seed); those already present (by
their generator id, stored as ``external_id``) are skipped, so the load is idempotent and
resumable. Each chunk is one transaction: applications, predictions and their audit rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.container import Services
from backend.domain import Actor
from backend.platform.ports import ProgressCallback
from backend.simulation.config import SOURCE
from backend.simulation.queries import existing_external_ids

CHUNK = 1000
SIMULATOR = Actor("simulator", "loan_officer")


def load_simulated_book(svc: Services, *, rows: int, seed: int, echo: Callable[..., Any] = print,
                        progress: ProgressCallback | None = None, officers: list[Actor] | None = None) -> int:
    """``officers``: the simulated applications are shared among them (so a demo officer has a book)."""
    from backend.training import generate

    df = generate(rows, seed=seed, id_prefix=f"sim{seed}-")
    existing = existing_external_ids(svc.db, df["application_id"].astype(str).tolist())
    todo = df[~df["application_id"].isin(existing)]
    if todo.empty:
        return 0
    # today's queue: applied now, under the rollout phase in force now (the history is `seed-demo`'s)
    body = todo.drop(columns=["default", "pd_true", "applied_at"]).astype(object)
    records = body.where(body.notna(), None).to_dict("records")  # NaN means "not provided"
    added = 0
    for i in range(0, len(records), CHUNK):
        chunk = records[i:i + CHUNK]
        # the simulator queues them (the audit says so); the officer only owns them until they act
        owner = officers[(i // CHUNK) % len(officers)] if officers else None
        svc.scoring.score_many(chunk, submitter=SIMULATOR, for_officer=owner, source=SOURCE)
        added += len(chunk)
        if progress is not None:
            progress(f"{added:,} applications", added, len(records))
    return added
