"""Canary promotion: a challenger serves a growing share of applications (the configured steps,
5 -> 25 -> 50 -> 100 %) before it becomes the champion.

State lives in the registry's ``aliases.json`` under ``"canary"`` and changes only under the
registry's file lock::

    {"version", "champion", "salt", "share", "started_by", "started_at",
     "pending": {"share", "proposed_by", "proposed_at", "note"} | None,
     "history": [{"at", "action", "share", "by", "note"}]}

An ended canary (completed, aborted) moves to ``"canary_log"`` with its step history; every
change is also in the registry's ``events``.

A step is *proposed* (the first proposal starts the canary at 0 %) and then *approved* or
*rejected* by someone else (four-eyes by username, checked here under the lock); only an approval
changes the share. Approving the 100 % step promotes the version (``Registry.promote_in``, gates
re-run when the champion changed) in the same locked write. Who may do what (roles, halted
deployments) and the audit rows are :class:`backend.models.lifecycle.ModelAdmin`'s job.

Routing (:class:`CanaryRouter`): an application goes to the canary when
``bucket(salt, key) < share / 100`` with the keyed hash of :func:`backend.rollout.service.bucket`
and ``key`` the applicant id (else the application id, else the submitted fields). The salt is
fixed for the whole canary, so an application in the 5 % stays in the canary at 25 % and 50 %.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.models.artifacts import RegistryError

MSG_NO_CANARY = "no canary is running"
MSG_NO_CHALLENGER = ("no challenger that passed its gates to put in a canary: retrain or register a model first, "
                     "or name a version")
MSG_NO_CHAMPION = "no champion to compare a canary with: promote the first model directly"
MSG_IS_CHAMPION = "{version} is already the champion"
MSG_RUNNING = "a canary of {version} is already running at {share}%: advance, abort or finish it first"
MSG_PENDING = "a step to {share}% proposed by {by} is already waiting for approval"
MSG_NOTHING_PENDING = "no canary step is waiting for approval"
MSG_FOUR_EYES = "four-eyes: {by} proposed this step and cannot approve or reject it"
MSG_NOTE = "a rejection needs a note of at least 10 characters saying why"
MAX_NOTE = 2000


class CanaryError(RegistryError):
    """A canary action refused; the message says why (nothing was changed)."""


def _now(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).isoformat(timespec="seconds")


def next_share(share: int, steps: list[int]) -> int:
    """The first configured step above ``share`` (100 when none is left)."""
    return next((s for s in steps if s > share), 100)


def propose(reg: Any, *, by: str, steps: list[int], version: str | None = None, note: str = "",
            at: datetime | None = None) -> dict[str, Any]:
    """Propose the next step; with no canary running, start one for ``version`` (default: the newest
    challenger that passed its gates and was never rolled back for cause) at 0 % after checking its gates
    against the champion and its lifecycle state (:mod:`backend.models.states`). Returns the new state."""
    from backend.models import states
    from backend.models.gates import all_passed, failures

    note = (note or "").strip()[:MAX_NOTE]
    with reg._locked():
        doc = reg.aliases()
        state = doc["canary"]
        if state is None:
            ref = version or states.canary_default(_gate_rows(reg, doc), doc)
            if not ref:
                raise CanaryError(MSG_NO_CHALLENGER)
            version = reg.resolve(ref)
            if not doc["champion"]:
                raise CanaryError(MSG_NO_CHAMPION)
            if version == doc["champion"]:
                raise CanaryError(MSG_IS_CHAMPION.format(version=version))
            reg._intact(version)
            gates = reg.gates_now(version, doc["champion"])
            try:  # failed gates or a rollback for cause refuse, unless a risk manager's override covers them
                _, override = states.blockers(doc, version, [] if all_passed(gates) else failures(gates),
                                              what="start a canary of")
                states.check_four_eyes(override, version, by, "propose a canary of")
            except states.LifecycleRefused as exc:
                raise CanaryError(str(exc)) from None
            state = {"version": version, "champion": doc["champion"], "salt": f"canary:{version}", "share": 0,
                     "started_by": by, "started_at": _now(at), "pending": None, "history": [],
                     **({"override_by": override["by"]} if override else {})}
            doc["canary"] = state
        elif version and reg.resolve(version) != state["version"]:
            raise CanaryError(MSG_RUNNING.format(version=state["version"], share=state["share"]))
        if state["pending"]:
            p = state["pending"]
            raise CanaryError(MSG_PENDING.format(share=p["share"], by=p["proposed_by"]))
        share = next_share(int(state["share"]), steps)
        state["pending"] = {"share": share, "proposed_by": by, "proposed_at": _now(at), "note": note}
        state["history"].append({"at": _now(at), "action": "propose", "share": share, "by": by, "note": note})
        reg._event(doc, "canary_propose", state["version"], at=at, share=share, by=by)
        reg._save_aliases(doc)
        return dict(state)


def _gate_rows(reg: Any, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``{"version", "gates_passed"}`` of the versions registered after the champion (canary default)."""
    newer = [v for v in reg.versions() if v > (doc.get("champion") or "")]
    return [{"version": v, "gates_passed": bool(reg.manifest(v).get("gates_passed"))} for v in newer]


def review(reg: Any, *, by: str, approve: bool, note: str = "", at: datetime | None = None) -> dict[str, Any]:
    """Approve or reject the pending step (never by its proposer). Approving 100 % promotes.

    Returns ``{"state": the canary after (None once promoted), "share": the step reviewed,
    "promoted": Registry.promote_in's result or None}``; a refused promotion (gates) raises
    ``PromotionRefused`` and changes nothing.
    """
    note = (note or "").strip()[:MAX_NOTE]
    if not approve and len(note) < 10:
        raise CanaryError(MSG_NOTE)
    with reg._locked():
        doc = reg.aliases()
        state = doc["canary"]
        if state is None:
            raise CanaryError(MSG_NO_CANARY)
        pending = state["pending"]
        if not pending:
            raise CanaryError(MSG_NOTHING_PENDING)
        if pending["proposed_by"] == by:
            raise CanaryError(MSG_FOUR_EYES.format(by=by))
        share, promoted = int(pending["share"]), None
        action = "approve" if approve else "reject"
        state["history"].append({"at": _now(at), "action": action, "share": share, "by": by, "note": note})
        state["pending"] = None
        reg._event(doc, f"canary_{action}", state["version"], at=at, share=share, by=by)
        if approve and share >= 100:
            promoted = reg.promote_in(doc, state["version"], at=at, by=by)  # ends the canary as completed
        elif approve:
            state["share"] = share
        reg._save_aliases(doc)
        return {"state": doc["canary"], "share": share, "promoted": promoted}


def abort(reg: Any, *, by: str, note: str = "", at: datetime | None = None) -> dict[str, Any]:
    """Stop the canary: every application goes to the champion again. Returns the ended state."""
    with reg._locked():
        doc = reg.aliases()
        state = doc["canary"]
        if state is None:
            raise CanaryError(MSG_NO_CANARY)
        end_canary(reg, doc, completed=False, at=at, by=by, reason=(note or "").strip()[:MAX_NOTE] or "aborted")
        reg._save_aliases(doc)
        return dict(state)


def end_canary(reg: Any, doc: dict[str, Any], *, completed: bool, at: datetime | None, by: str | None,
               reason: str) -> None:
    """Clear a running canary in ``doc`` (under the caller's lock) with its event."""
    state = doc.get("canary")
    if not state:
        return
    state["history"].append({"at": _now(at), "action": "complete" if completed else "abort",
                             "share": 100 if completed else state["share"], "by": by, "note": reason})
    reg._event(doc, "canary_complete" if completed else "canary_abort", state["version"], at=at,
               share=state["share"], reason=reason, **({"by": by} if by else {}))
    doc.setdefault("canary_log", []).append(state)  # ended canaries, with their step history
    doc["canary"] = None


# ------------------------------------------------------------------------------------ routing
@dataclass(frozen=True)
class Route:
    version: str
    share: int
    salt: str


def routing_key(raw: Mapping[str, Any]) -> str:
    """What an application's canary bucket is keyed on: the applicant, else the application id,
    else its submitted fields (the same application always lands in the same place)."""
    for name in ("applicant_id", "application_id"):
        if raw.get(name):
            return f"{name}:{raw[name]}"
    body = repr(sorted((str(k), repr(v)) for k, v in raw.items()))
    return "fields:" + hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class CanaryRouter:
    """The running canary as the scoring service sees it: ``aliases.json`` is re-read when the
    file changes (inode, mtime or size; writes replace the file) or after :meth:`invalidate`."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._cached: tuple[tuple[int, int, int] | None, Route | None] | None = None

    def _path(self) -> Path:
        return Path(self.provider.aliases_file())

    def invalidate(self) -> None:
        self._cached = None

    def current(self) -> Route | None:
        try:
            st = os.stat(self._path())
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached[1]
        route = None
        if stamp is not None:
            try:
                state = self.provider.registry().aliases().get("canary")
            except RegistryError:  # unreadable aliases: no canary; resolving the champion says why
                state = None
            if state and int(state.get("share") or 0) > 0:
                route = Route(str(state["version"]), int(state["share"]), str(state["salt"]))
        self._cached = (stamp, route)
        return route

    def pick(self, raw: Mapping[str, Any], route: Route | None) -> str | None:
        """The canary version when this application falls in the canary share, else None."""
        from backend.rollout import bucket

        if route is None:
            return None
        return route.version if bucket(route.salt, routing_key(raw)) < route.share / 100.0 else None
