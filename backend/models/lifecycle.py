"""Model lifecycle actions with their audit rows: register (train), promote, rollback, canary.

The registry files are the source of truth for artifacts, aliases and the canary state; every
change also writes an audit row, and every switch purges cached scores of the versions that
stopped serving. Who may act:

- promote: ``MANAGE_MODELS``; canary proposal (start, next step): ``MANAGE_MODELS``; canary
  approval or rejection: ``APPROVE_CANARY``, never the proposer (four-eyes by username); both
  canary sides must be named, active users (their role is read from the users table);
- rollback: ``ROLLBACK_MODELS``; abort a canary: any of those three permissions;
- override (a version that failed its gates or was rolled back for cause may go to a canary or be
  promoted): ``APPROVE_CANARY`` (a risk manager), a named active user, with a written reason; the
  person who wrote it cannot also propose the canary or promote (four-eyes by username). The lifecycle
  states and their rules are :mod:`backend.models.states`.

While deployments are halted (:mod:`backend.models.halts`) no promotion, canary start, step or
approval is possible; rollback, abort and rejection stay possible (they reduce risk).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from backend.compliance import AuditRepository, AuditService
from backend.domain import Actor, Perm, allowed
from backend.identity import UserRepository, normalize_username
from backend.models import canary, states
from backend.models.artifacts import RegistryError
from backend.models.canary import CanaryRouter
from backend.models.halts import DeploymentsHalted, active_halts, ensure_not_halted
from backend.models.provider import ModelProvider
from backend.platform.db.engine import Database
from backend.platform.ports import Cache, Clock

MSG_NOT_A_USER = "{username!r} is not an active user: a named person must {what}"
MSG_ROLE = "a {role} may not {what}"
AUDIT_ACTIONS = {"model_registered": "register", "model_promoted": "promote", "model_rolled_back": "rollback",
                 "model_override": "override",
                 "canary_proposed": "canary_propose", "canary_approved": "canary_approve",
                 "canary_rejected": "canary_reject", "canary_aborted": "canary_abort"}


class ModelActionRefused(RegistryError):
    """The actor may not do this (role, disabled or unknown user); nothing was changed."""


REFUSALS: tuple[type[Exception], ...] = (RegistryError, DeploymentsHalted)  # what callers show as a message


class ModelAdmin:
    """Built once by the composition root; ``router`` is the scoring service's canary router (its
    cached routing is dropped after every switch), ``canary_steps`` the configured shares."""

    def __init__(self, db: Database, models: ModelProvider, cache: Cache, audit: AuditService, *,
                 model_name: str, canary_steps: Sequence[int], router: CanaryRouter | None = None,
                 clock: Clock | None = None, on_rollback: Callable[[], Any] | None = None) -> None:
        """``clock``: the services' clock; every lifecycle time (registry events, audit rows) is read from it.
        ``on_rollback()``: called after a rollback (the composition root opens its incident)."""
        self.db, self.models, self.cache, self.audit, self.clock = db, models, cache, audit, clock
        self.model_name, self.steps, self.router = model_name, tuple(canary_steps), router
        self.on_rollback = on_rollback
        self.last_rollback_seconds: float | None = None

    def registry(self) -> Any:
        return self.models.registry()

    def _at(self, at: datetime | None) -> datetime | None:
        return at or (self.clock.now() if self.clock is not None else None)

    # -- helpers -----------------------------------------------------------------------------------
    def _audit(self, actor: Actor, action: str, version: str, payload: dict[str, Any],
               at: datetime | None = None, extra: list[tuple[str, str, dict[str, Any]]] | None = None) -> None:
        """One audit row (plus ``extra`` rows: action, version, payload) in one transaction."""
        with self.db.transaction() as s:
            repo = AuditRepository(s)
            for act, ver, body in [(action, version, payload), *(extra or [])]:
                repo.append(actor=actor.username, role=actor.role, action=act, entity_type="model",
                            entity_id=ver, payload=body, at=at)

    def _role(self, actor: Actor, perms: tuple[Perm, ...], what: str, *, named: bool = False) -> str:
        """The actor's role (from the users table when they are a user) if it has one of ``perms``.

        ``named``: the actor must be an active console user (both sides of four-eyes are people).
        Operators outside the users table (``cli:<login>``, the simulator) act with their stated role.
        """
        with self.db.read() as s:
            user = UserRepository(s).by_username(normalize_username(actor.username))
            found = (user.role, bool(user.disabled)) if user is not None else None
        if found is not None and found[1] or found is None and named:
            raise ModelActionRefused(MSG_NOT_A_USER.format(username=actor.username, what=what))
        role = found[0] if found is not None else actor.role
        if not any(allowed(role, p) for p in perms):
            raise ModelActionRefused(MSG_ROLE.format(role=str(role).replace("_", " "), what=what))
        return role

    def _after_switch(self, *old_versions: str | None) -> None:
        self.models.invalidate()
        if self.router is not None:
            self.router.invalidate()
        for old in {v for v in old_versions if v}:
            self.cache.delete_prefix(f"score:{self.model_name}:{old}:")

    # -- register / promote / rollback ---------------------------------------------------------
    def registered(self, report: dict[str, Any], actor: Actor, at: datetime | None = None) -> None:
        at = self._at(at)
        gates = report.get("gates", [])
        lineage = report.get("lineage") or {}
        self._audit(actor, "model_registered", str(report.get("version")),
                    {"gates_passed": all(g.get("passed") for g in gates) if gates else None,
                     "data_sha256": (report.get("data") or {}).get("sha256"),
                     **{k: lineage[k] for k in ("source", "window", "rows", "defaults", "parent_champion",
                                                "base_version", "alternatives_search")
                        if k in lineage}}, at=at)

    def promote(self, ref: str, actor: Actor, *, at: datetime | None = None,
                note: str | None = None) -> dict[str, Any]:
        """Make ``ref`` the champion. A version that failed its gates or was rolled back for cause is
        refused unless a risk manager overrode it (:meth:`override`), and then not by the override's
        author. ``at``/``note``: the operations simulator replays promotions at their historical time."""
        self._role(actor, (Perm.MANAGE_MODELS,), "promote a model")
        ensure_not_halted(self.db)
        at = self._at(at)
        reg = self.registry()
        doc = reg.aliases()
        running = (doc.get("canary") or {}).get("version")
        version = reg.resolve(ref)
        states.check_four_eyes((doc.get(states.OVERRIDES) or {}).get(version), version, actor.username, "promote")
        result = reg.promote(version, at=at, by=actor.username)
        if result.get("changed"):
            self._after_switch(result.get("previous"), running if running != result["version"] else None)
            self._audit(actor, "model_promoted", result["version"],
                        {"previous": result.get("previous"),
                         "forced": not all(g.get("passed") for g in result.get("gates", [])),
                         **({"override_by": o["by"]} if (o := (doc.get(states.OVERRIDES) or {}).get(
                             result["version"])) else {}),
                         "gates": [{"name": g.get("name"), "passed": g.get("passed")} for g in result.get("gates", [])],
                         **({"canary_ended": running} if running else {}), **({"note": note} if note else {})}, at=at)
        return result

    def rollback(self, actor: Actor, *, to: str | None = None, at: datetime | None = None,
                 note: str | None = None, cause: str | None = None, open_incident: bool = True) -> str:
        """Back to ``to`` (any earlier champion not rolled back for cause; None: the previous one) in one
        action: aliases, canary aborted, caches of the versions that stopped serving purged, the restored
        champion loaded and verified, audit row. ``cause``: the replaced champion is rolled back *for cause*
        (this written reason): it cannot go to a canary, be promoted or be rolled back to again without a
        risk manager's override. The time it took is in the audit row and :attr:`last_rollback_seconds`.
        Allowed while deployments are halted. The rollback's incident opens at once (``on_rollback``), unless
        ``open_incident`` is False: the simulator records its rollback before the days it covers are written and
        opens the incident after them."""
        t0 = time.perf_counter()
        self._role(actor, (Perm.ROLLBACK_MODELS,), "roll back a model")
        at = self._at(at)
        reg = self.registry()
        doc = reg.aliases()
        previous, running = doc.get("champion"), (doc.get("canary") or {}).get("version")
        target = reg.rollback(to=to, at=at, by=actor.username, cause=cause)
        self._after_switch(previous, running)
        warm = None
        try:
            self.models.get("champion")  # verified and loaded now: the next application is served at once
        except Exception as exc:  # noqa: BLE001 - the switch happened; say what failed instead of hiding it
            warm = f"{type(exc).__name__}: {exc}"[:300]
        self.last_rollback_seconds = time.perf_counter() - t0
        self._audit(actor, "model_rolled_back", target,
                    {"previous": previous, "requested": to or "previous champion",
                     "seconds": round(self.last_rollback_seconds, 3), **({"canary_aborted": running} if running else {}),
                     **({"load_error": warm} if warm else {}), **({"note": note} if note else {}),
                     **({"cause": " ".join(cause.split())} if cause else {})}, at=at)
        if open_incident and self.on_rollback is not None:
            self.on_rollback()
        return str(target)

    def rollback_targets(self) -> list[str]:
        """Versions a rollback may return to: earlier champions not rolled back for cause, newest first."""
        return list(self.registry().rollback_targets())

    def override(self, actor: Actor, version: str, *, reason: str, at: datetime | None = None) -> dict[str, Any]:
        """A risk manager's written override: ``version`` (failed gates and/or rolled back for cause) may go
        to a canary or be promoted by someone else. Refused when there is nothing to override. Audited."""
        self._role(actor, (Perm.APPROVE_CANARY,), "override a blocked model version", named=True)
        at = self._at(at)
        reg = self.registry()
        version = reg.resolve(version)
        from backend.models.gates import all_passed, failures

        gates = reg.gates_now(version, reg.aliases().get("champion"))
        entry = states.record_override(reg, version, by=actor.username, reason=reason,
                                       gate_failures=[] if all_passed(gates) else failures(gates), at=at)
        self._audit(actor, "model_override", version, {"reason": entry["reason"], "causes": entry["causes"]}, at=at)
        return entry

    def lifecycle_view(self) -> dict[str, Any]:
        """Every version's lifecycle state, label, cause and override, with the canary default (the page)."""
        reg = self.registry()
        doc, rows = reg.aliases(), reg.list()
        return {"doc": doc, "rows": rows, "labels": {r["version"]: states.label(r, reg.name) for r in rows},
                "state": {r["version"]: states.state(doc, r["version"]) for r in rows},
                "canary_candidates": states.canary_candidates(rows, doc),
                "canary_default": states.canary_default(rows, doc),
                "rollback_targets": states.rollback_targets(doc, reg.former_champions(doc))}

    # -- canary --------------------------------------------------------------------------------
    def canary_state(self) -> dict[str, Any] | None:
        return self.registry().aliases().get("canary")

    def canary_steps(self) -> list[int]:
        return list(self.steps)

    def canary_propose(self, actor: Actor, *, version: str | None = None, note: str = "") -> dict[str, Any]:
        """Start a canary (``version`` or the challenger, gates checked) or propose its next step."""
        self._role(actor, (Perm.MANAGE_MODELS,), "propose a canary step", named=True)
        ensure_not_halted(self.db)
        at = self._at(None)
        state = canary.propose(self.registry(), by=actor.username, steps=self.canary_steps(), version=version,
                               note=note, at=at)
        self._audit(actor, "canary_proposed", state["version"],
                    {"share": state["pending"]["share"], "current_share": state["share"],
                     "champion": state["champion"], **({"note": note} if note else {})}, at=at)
        return state

    def canary_review(self, actor: Actor, *, approve: bool, note: str = "") -> dict[str, Any]:
        """Approve (the share changes; 100 % promotes) or reject (nothing changes) the pending step."""
        self._role(actor, (Perm.APPROVE_CANARY,), "approve or reject a canary step", named=True)
        if approve:
            ensure_not_halted(self.db)
        reg = self.registry()
        before = reg.aliases()
        state = before.get("canary") or {}
        at = self._at(None)
        out = canary.review(reg, by=actor.username, approve=approve, note=note, at=at)
        version = str(state.get("version"))
        body = {"share": out["share"], "proposed_by": (state.get("pending") or {}).get("proposed_by"),
                **({"note": note} if note else {})}
        promoted = out["promoted"]
        extra: list[tuple[str, str, dict[str, Any]]] = []
        if promoted and promoted.get("changed"):
            self._after_switch(promoted.get("previous"))
            extra.append(("model_promoted", version, {"previous": promoted.get("previous"), "forced": False,
                                                      "via": "canary", "gates": [
                                                          {"name": g.get("name"), "passed": g.get("passed")}
                                                          for g in promoted.get("gates", [])]}))
        else:
            self._after_switch()
        self._audit(actor, "canary_approved" if approve else "canary_rejected", version, body, at=at, extra=extra)
        return out

    def canary_abort(self, actor: Actor, *, note: str = "") -> dict[str, Any]:
        """Every application back to the champion (allowed while deployments are halted)."""
        self._role(actor, (Perm.MANAGE_MODELS, Perm.APPROVE_CANARY, Perm.ROLLBACK_MODELS), "abort a canary")
        at = self._at(None)
        state = canary.abort(self.registry(), by=actor.username, note=note, at=at)
        self._after_switch(state["version"])
        self._audit(actor, "canary_aborted", state["version"], {"share": state["share"],
                                                                **({"note": note} if note else {})}, at=at)
        return state

    # -- views ----------------------------------------------------------------------------------
    def halts(self) -> list[Any]:
        return active_halts(self.db)

    def timeline(self, limit: int = 500) -> list[dict[str, Any]]:
        """Registry events, newest first, with who acted and their note from the audit rows (events
        written before the registry recorded ``by`` are matched to their audit row)."""
        audit = [r for r in self.audit.recent(limit, entity_type="model") if r["action"] in AUDIT_ACTIONS]
        out = []
        for e in self.registry().aliases().get("events", [])[-limit:]:
            at = datetime.fromisoformat(e["at"])
            match = next((r for r in audit if AUDIT_ACTIONS[r["action"]] == e["action"]
                          and r["entity_id"] == e["version"] and abs((r["at"] - at).total_seconds()) < 300), None)
            out.append({"at": at, "action": e["action"], "version": e["version"],
                        "by": e.get("by") or (match["actor"] if match else None),
                        "share": e.get("share"), "previous": e.get("previous"),
                        "note": (match or {}).get("payload", {}).get("note") or e.get("reason") or e.get("cause"),
                        "cause": e.get("cause")})
        # events in the same second keep their written order: sort oldest first (stable), then reverse
        return sorted(out, key=lambda r: r["at"])[::-1]

    def compare(self, challenger: str, champion: str | None = None) -> dict[str, Any]:
        """Challenger and champion on the SAME rows: the challenger's held-out split (the rows its
        champion/challenger gate used), each at its own policy cutoff and calibration."""
        from backend.models.evaluation import model_metrics

        reg = self.registry()
        challenger = reg.resolve(challenger)
        champion = champion or reg.aliases().get("champion")
        holdout = reg.holdout(challenger)
        y = holdout[reg.manifest(challenger)["target"]].to_numpy()
        out: dict[str, Any] = {"holdout_of": challenger, "rows": len(y), "defaults": int(y.sum()), "models": {}}
        for role, version in (("challenger", challenger), ("champion", champion)):
            if not version:
                continue
            try:
                model = reg.load(version)
                raw = model.predict_raw(holdout)
            except (ValueError, KeyError, RegistryError) as exc:
                out["models"][role] = {"version": version, "error": str(exc)[:300]}
                continue
            m = model_metrics(y, raw, model.calibrate(raw), cutoff=float(model.manifest["policy"]["cutoff"]))
            out["models"][role] = {"version": version, "auc": m["auc"], "ks": m["ks"],
                                   "balanced_accuracy": m["balanced_accuracy"], "brier": m["brier"],
                                   "ece": m["calibration"]["ece"], "calibration": m["calibration"]}
        return out
