"""Load simulated applications into the book through the real scoring path.

Rows come from the synthetic generator (deterministic for a seed); those already present (by
their generator id, stored as ``external_id``) are skipped, so the load is idempotent and
resumable. Each chunk is one transaction: applications, predictions and their audit rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from tqdm import tqdm

from backend.container import Services
from backend.db.tables import Application
from backend.services.scoring import Submitter

CHUNK = 1000
SIMULATOR = Submitter("simulator", "loan_officer")


def load_simulated_book(svc: Services, *, rows: int, seed: int, echo: Callable[..., Any] = print,
                        progress: bool = True, officers: list[Submitter] | None = None) -> int:
    """``officers``: the simulated applications are shared among them (so a demo officer has a book)."""
    from backend.training.synthetic import generate

    df = generate(rows, seed=seed, id_prefix=f"sim{seed}-")
    ids = df["application_id"].astype(str).tolist()
    with svc.db.read() as s:
        existing: set[str | None] = set()
        for i in range(0, len(ids), 5000):
            existing.update(s.execute(select(Application.external_id)
                                      .where(Application.external_id.in_(ids[i:i + 5000]))).scalars())
    todo = df[~df["application_id"].isin(existing)]
    if todo.empty:
        return 0
    # today's queue: applied now, under the rollout phase in force now (the history is `seed-demo`'s)
    body = todo.drop(columns=["default", "pd_true", "applied_at"]).astype(object)
    records = body.where(body.notna(), None).to_dict("records")  # NaN means "not provided"
    bar = tqdm(total=len(records), desc="scoring simulated applications", unit="app", disable=not progress)
    added = 0
    for i in range(0, len(records), CHUNK):
        chunk = records[i:i + CHUNK]
        who = officers[(i // CHUNK) % len(officers)] if officers else SIMULATOR
        svc.scoring.score_many(chunk, submitter=who, source="simulated")
        added += len(chunk)
        bar.update(len(chunk))
    bar.close()
    return added
