"""Rollback incidents (issue 19 item 3): the seed's rollback procedure as a workflow with clocks.

A model rollback (``rollback`` event in the registry, from the CLI, the page or the simulator) opens an incident
(:meth:`IncidentService.open_from_registry`, idempotent: one incident per rolled-back version). Its steps, each with
the seed's clock:

1. **rollback** (target < 5 min): from the request (``opened_at``) to the restored champion serving
   (``rollback_done_at``, the registry event);
2. **verify** (< 10 min after the rollback): read from the records (:meth:`IncidentService.verify`): the restored
   version's estimated performance (expected bad rate of its PDs, :func:`backend.monitoring.expected_bad_rate`) and
   realized performance (AUC on outcomes, :func:`backend.monitoring.realized_auc`, when outcomes exist), the
   end-to-end latency p95 (:meth:`backend.analytics.LatencyService.end_to_end_p95`) and the error rate
   (:func:`backend.analytics.error_rate`), each after the rollback against its baseline (the
   :data:`BASELINE` before the rolled-back version was promoted);
3. **review**: the last :data:`REVIEW_DECISIONS` decisions of the rolled-back version queued for manual review;
4. **post-mortem** (due 24 h after opening): an owner, a summary and the test that now catches the cause.

Closed (:meth:`IncidentService.close`) only when every step is done; every write is audited in its transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from backend.analytics import serving_error_rate as error_rate
from backend.compliance import AuditRepository
from backend.domain import Actor, Perm, allowed
from backend.monitoring import expected_bad_rate, realized_auc
from backend.operations import incident_queries as q
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

ROLLBACK_TARGET = timedelta(minutes=5)
VERIFY_TARGET = timedelta(minutes=10)
POSTMORTEM_TARGET = timedelta(hours=24)
BASELINE = timedelta(days=7)
REVIEW_DECISIONS = 100
VERIFY_MIN_REQUESTS = 5  # the simulator verifies once the restored version has served this many requests
LATENCY_SLACK, ERROR_SLACK, PD_SLACK, AUC_SLACK = 1.2, 0.005, 0.25, 0.02
MSG_UNKNOWN = "no incident {ref!r}"
MSG_NOT_DONE = "cannot close incident {id}: {missing}"
MSG_OWNER = "a post-mortem needs an owner, a summary of at least 20 characters and the test that now catches the cause"
MSG_NO_ROLLBACK = "no rollback of {version} in the registry: an incident opens from a rollback"


MSG_ROLE = "{user!r} ({role}) may not {what}: a risk manager or an ML engineer does"



def _latency_back(before: Any, after: Any) -> bool | None:
    """Latency is back to its baseline unless the p95 after the rollback is *shown* to exceed
    :data:`LATENCY_SLACK` x the baseline's: its distribution-free interval's lower limit (the figure's ``low_s``)
    lies above. The verification reads a handful of requests (:data:`VERIFY_MIN_REQUESTS`); the p95 of five
    requests is nearly their maximum, so comparing the point estimate failed about one history in twenty on
    lognormal LLM latencies that had not changed at all. ``None`` (inconclusive, not counted) when either window
    has no decisions or the after-window is too small to give a lower limit."""
    if after.p95_s is None or before.p95_s is None or after.low_s is None:
        return None
    return bool(after.low_s <= before.p95_s * LATENCY_SLACK)

class IncidentError(ValueError):
    """An incident action refused; the message says why."""


def _may(actor: Actor, what: str) -> None:
    if not allowed(actor.role, Perm.ROLLBACK_MODELS):
        raise IncidentError(MSG_ROLE.format(user=actor.username, role=actor.role, what=what))


def _step(start: datetime | None, end: datetime | None, target: timedelta) -> dict[str, Any]:
    took = (end - start).total_seconds() if start and end else None
    return {"started": start, "done": end, "seconds": took, "target_s": target.total_seconds(),
            "met": None if took is None else took <= target.total_seconds()}


def view(row: Any, counts: dict[str, int]) -> dict[str, Any]:
    """An incident as the CLI and the console show it: its steps with their clocks."""
    v = row.verification or {}
    return {"id": str(row.id), "status": row.status, "model_version": row.model_version,
            "restored_version": row.restored_version, "cause": row.cause, "opened_at": row.opened_at,
            "opened_by": row.opened_by,
            "steps": {"rollback": _step(row.opened_at, row.rollback_done_at, ROLLBACK_TARGET),
                      "verify": {**_step(row.rollback_done_at, row.verified_at, VERIFY_TARGET),
                                 "passed": v.get("passed"), "checks": v.get("checks", [])},
                      "review": {"queued": counts.get("queued", 0), "reviewed": counts.get("reviewed", 0),
                                 "queued_at": row.review_queued_at},
                      "postmortem": {**_step(row.opened_at, row.postmortem_done_at, POSTMORTEM_TARGET),
                                     "owner": row.postmortem_owner, "due": row.postmortem_due_at,
                                     "test": row.postmortem_test, "summary": row.postmortem_summary}},
            "closed_at": row.closed_at}


def _check(name: str, baseline: float | None, after: float | None, n: int, ok: bool | None, rule: str) -> dict:
    return {"name": name, "baseline": baseline, "after": after, "n_after": n, "ok": ok, "rule": rule}


class IncidentService:
    """Built by the composition root; ``registry`` returns the model registry, ``latency`` the latency service."""

    def __init__(self, db: Database, clock: Clock, registry: Callable[[], Any], latency: Callable[[], Any]) -> None:
        self.db, self.clock, self.registry, self.latency = db, clock, registry, latency

    def _audit(self, s: Any, actor: str, role: str, action: str, incident_id: Any, payload: dict[str, Any],
               at: datetime) -> None:
        AuditRepository(s).append(actor=actor, role=role, action=action, entity_type="incident",
                                  entity_id=str(incident_id), payload=payload, at=at)

    def _get(self, s: Any, ref: str) -> Any:
        row = q.get(s, ref) or q.for_version(s, ref)
        if row is None:
            raise IncidentError(MSG_UNKNOWN.format(ref=ref))
        return row

    # -- opening ----------------------------------------------------------------------------------------------
    def open_from_registry(self, *, requested_at: datetime | None = None, role: str = "ml_engineer") -> list[str]:
        """Open one incident per registry rollback that has none yet (its version, the cause, who, when); each
        queues the last decisions of the rolled-back version. ``requested_at``: when the rollback was asked for
        (default: the event's time, a rollback recorded in one action). Returns the ids opened."""
        opened = []
        for e in self.registry().aliases().get("events", []):
            if e.get("action") != "rollback" or not e.get("previous"):
                continue
            done = datetime.fromisoformat(e["at"])
            with self.db.transaction() as s:
                if q.for_version(s, e["previous"]) is not None:
                    continue
                start = min(requested_at or done, done)
                row = q.add(s, kind="model_rollback", status="open", model_version=e["previous"],
                            restored_version=e["version"], cause=e.get("cause") or e.get("note") or "",
                            opened_at=start, opened_by=e.get("by") or "unknown", rollback_done_at=done,
                            verification={}, postmortem_due_at=start + POSTMORTEM_TARGET)
                rows = q.last_decisions(s, e["previous"], done, REVIEW_DECISIONS)
                q.add_reviews(s, row.id, rows)
                row.review_queued_at = done
                self._audit(s, row.opened_by, role, "incident_opened", row.id,
                            {"model_version": row.model_version, "restored": row.restored_version,
                             "queued_for_review": len(rows)}, done)
                opened.append(str(row.id))
        return opened

    # -- verification -----------------------------------------------------------------------------------------
    def verify(self, ref: str, actor: Actor, *, at: datetime | None = None) -> dict[str, Any]:
        """Read the records after the rollback against the baseline and record the result (step 2)."""
        _may(actor, "verify an incident")
        at = at or self.clock.now()
        with self.db.read() as s:
            row = self._get(s, ref)
            iid, done, restored = row.id, row.rollback_done_at, row.restored_version
            promoted = self._promoted_at(row.model_version) or row.opened_at
            base_lo, base_hi = promoted - BASELINE, promoted
            before, after = q.scored(s, restored, base_lo, base_hi), q.scored(s, restored, done, at)
            err_b, err_a = error_rate(s, base_lo, base_hi), error_rate(s, done, at)
        lat = self.latency()
        lat_b, lat_a = lat.end_to_end_p95(start=base_lo, end=base_hi), lat.end_to_end_p95(start=done, end=at)
        checks = [self._pd_check(before, after), self._auc_check(before, after),
                  _check("latency p95 (s)", lat_b.p95_s, lat_a.p95_s, lat_a.n, _latency_back(lat_b, lat_a),
                         f"after <= {LATENCY_SLACK:g} x baseline, unless only its sampling range reaches that"),
                  _check("error rate", err_b.value, err_a.value, err_a.requests,
                         None if err_a.value is None or err_b.value is None else err_a.value <= err_b.value + ERROR_SLACK,
                         f"after <= baseline + {ERROR_SLACK:g}")]
        measured = [c["ok"] for c in checks if c["ok"] is not None]
        passed = bool(measured) and all(measured)
        result = {"passed": passed, "checks": checks, "window": {"baseline": [base_lo.isoformat(), base_hi.isoformat()],
                                                                 "after": [done.isoformat(), at.isoformat()]}}
        with self.db.transaction() as s:
            q.set_fields(s, iid, verification=result, verified_at=at if passed else None)
            self._audit(s, actor.username, actor.role, "incident_verified", iid, {"passed": passed,
                        "checks": {c["name"]: c["ok"] for c in checks}}, at)
        return result

    def _promoted_at(self, version: str) -> datetime | None:
        times = [e["at"] for e in self.registry().aliases().get("events", [])
                 if e.get("version") == version and e.get("action") in ("promote", "canary_complete")]
        return datetime.fromisoformat(times[-1]) if times else None

    @staticmethod
    def _pd_check(before: list[tuple[float, Any]], after: list[tuple[float, Any]]) -> dict[str, Any]:
        b = expected_bad_rate([p for p, _ in before]) if before else None
        a = expected_bad_rate([p for p, _ in after]) if after else None
        ok = None if a is None or b is None else abs(a["mean"] - b["mean"]) <= max(PD_SLACK * b["mean"], a["hi"] - a["mean"])
        return _check("estimated bad rate (mean PD)", b["mean"] if b else None, a["mean"] if a else None, len(after), ok,
                      f"within {PD_SLACK:.0%} of baseline or its sampling range")

    @staticmethod
    def _auc_check(before: list[tuple[float, Any]], after: list[tuple[float, Any]]) -> dict[str, Any]:
        def of(rows: list[tuple[float, Any]]) -> float | None:
            known = [(p, int(d)) for p, d in rows if d is not None]
            return realized_auc(np.array([d for _, d in known]), np.array([p for p, _ in known])) if known else None

        b, a = of(before), of(after)
        ok = None if a is None or b is None else a >= b - AUC_SLACK
        return _check("realized AUC (outcomes known so far)", b, a, sum(d is not None for _, d in after), ok,
                      f"after >= baseline - {AUC_SLACK:g}; none until outcomes arrive")

    def records_ready(self, ref: str, k: int = VERIFY_MIN_REQUESTS) -> datetime | None:
        """When the restored version had served ``k`` requests after the rollback: the earliest a verification
        reads enough records (None when not yet)."""
        with self.db.read() as s:
            row = self._get(s, ref)
            return q.kth_scored_after(s, row.restored_version, row.rollback_done_at, k)

    # -- review queue, post-mortem, closing --------------------------------------------------------------------
    def review(self, ref: str, application_id: str, actor: Actor, *, note: str, at: datetime | None = None) -> int:
        import uuid

        _may(actor, "review an incident's decisions")
        try:
            app_id = uuid.UUID(application_id)
        except ValueError:
            raise IncidentError(f"{application_id!r} is not an application id") from None
        at = at or self.clock.now()
        with self.db.transaction() as s:
            row = self._get(s, ref)
            n = q.mark_reviewed(s, row.id, app_id, by=actor.username, at=at, note=note)
            if n:
                self._audit(s, actor.username, actor.role, "incident_review", row.id, {"application_id": application_id}, at)
        return n

    def postmortem(self, ref: str, actor: Actor, *, owner: str, summary: str, test: str,
                   at: datetime | None = None) -> None:
        _may(actor, "write a post-mortem")
        at = at or self.clock.now()
        if not owner.strip() or len(" ".join(summary.split())) < 20 or not test.strip():
            raise IncidentError(MSG_OWNER)
        with self.db.transaction() as s:
            row = self._get(s, ref)
            q.set_fields(s, row.id, postmortem_owner=owner.strip(), postmortem_summary=" ".join(summary.split()),
                         postmortem_test=test.strip(), postmortem_done_at=at)
            self._audit(s, actor.username, actor.role, "incident_postmortem", row.id, {"owner": owner, "test": test}, at)

    def close(self, ref: str, actor: Actor, *, at: datetime | None = None) -> dict[str, Any]:
        _may(actor, "close an incident")
        at = at or self.clock.now()
        with self.db.transaction() as s:
            row = self._get(s, ref)
            missing = [m for m, ok in (("verification has not passed", row.verified_at is not None),
                                       ("no post-mortem", row.postmortem_done_at is not None),
                                       ("no decisions queued for review", row.review_queued_at is not None)) if not ok]
            if missing:
                raise IncidentError(MSG_NOT_DONE.format(id=row.id, missing="; ".join(missing)))
            q.set_fields(s, row.id, status="closed", closed_at=at)
            self._audit(s, actor.username, actor.role, "incident_closed", row.id, {}, at)
        return self.get(str(row.id))

    # -- reading ----------------------------------------------------------------------------------------------
    def get(self, ref: str) -> dict[str, Any]:
        with self.db.read() as s:
            row = self._get(s, ref)
            return view(row, q.review_counts(s, row.id))

    def all(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [view(r, q.review_counts(s, r.id)) for r in q.listing(s, status)]

    def review_sample(self, ref: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.db.read() as s:
            row = self._get(s, ref)
            return [{"application": str(r.application_id), "scored_at": r.scored_at, "applied_at": applied,
                     "loan_amount": amount, "recommendation": r.recommendation, "final decision": final,
                     "status": r.status, "reviewed_by": r.reviewed_by, "note": r.note}
                    for r, applied, amount, final in q.reviews(s, row.id, limit)]
