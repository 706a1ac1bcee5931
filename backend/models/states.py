"""Lifecycle states that mean something (issue 19): what a version is, and whether it may serve again.

A version is exactly one of:

- **candidate**: registered, never served, not the newest registration;
- **challenger**: registered after the champion, never served (the ``challenger`` alias, or any
  candidate newer than the champion);
- **canary**: serving a share of applications now;
- **champion**: serving every other application;
- **retired**: served as champion and was replaced (it may come back by rollback);
- **rolled back for cause**: served and was rolled back *for a stated reason* (the reason, who and when
  are kept in ``aliases.json`` under ``rolled_back_for_cause``).

A canary or a promotion of a version that failed its gates or was rolled back for cause is refused
(:func:`blockers`) unless a risk manager has written an override for exactly those causes
(:func:`record_override`, ``aliases.json`` under ``overrides``; audited by
:class:`backend.models.lifecycle.ModelAdmin`, which also keeps the four-eyes rule: whoever wrote the
override cannot be the one who proposes the canary or promotes). A rollback goes only to a version that
served and was not rolled back for cause (:func:`rollback_targets`). The default canary candidate is
the newest challenger that passed its gates and has no cause against it (:func:`canary_default`).

Versions are shown to people by :func:`label` (name, trained-on period, short id); the full id stays
available on hover and copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from backend.models.artifacts import RegistryError

CANDIDATE, CHALLENGER, CANARY, CHAMPION, RETIRED, ROLLED_BACK = (
    "candidate", "challenger", "canary", "champion", "retired", "rolled back for cause")
STATES = (CANDIDATE, CHALLENGER, CANARY, CHAMPION, RETIRED, ROLLED_BACK)
CAUSES = "rolled_back_for_cause"
OVERRIDES = "overrides"
MIN_REASON = 20  # characters of a cause or an override's written reason
MAX_REASON = 2000

MSG_CAUSED = "{version} was rolled back for cause on {at} by {by}: {reason}"
MSG_GATES = "{version} failed its gate(s): {failures}"
MSG_BLOCKED = ("cannot {what} {version}: {causes}. A risk manager may override this with a written reason: "
               "creditrisk models override {version} --reason TEXT --as USER")
MSG_REASON = "a written reason of at least {n} characters is required"
MSG_NOTHING = "{version} is not blocked (it passed its gates and was never rolled back for cause): nothing to override"
MSG_NO_CAUSED_TARGET = ("cannot roll back to {version}: it was rolled back for cause ({reason}); "
                        "earlier champions you may return to: {known}")
MSG_FOUR_EYES = ("four-eyes: {by} wrote the override of {version} and cannot also {what} it; "
                 "another person must")


class LifecycleRefused(RegistryError):
    """A lifecycle action refused by the state rules; the message says why and what would allow it."""


def _now(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).isoformat(timespec="seconds")


def clean_reason(reason: str | None) -> str:
    """A written reason, whitespace-normalised; :class:`LifecycleRefused` when shorter than ``MIN_REASON``."""
    text = " ".join(str(reason or "").split())[:MAX_REASON]
    if len(text) < MIN_REASON:
        raise LifecycleRefused(MSG_REASON.format(n=MIN_REASON))
    return text


# ------------------------------------------------------------------------------------------- reading
def cause(doc: Mapping[str, Any], version: str) -> dict[str, Any] | None:
    """Why ``version`` was rolled back for cause (``reason``, ``at``, ``by``), or None."""
    return (doc.get(CAUSES) or {}).get(version)


def state(doc: Mapping[str, Any], version: str) -> str:
    """The lifecycle state of ``version`` in an aliases document (see the module docstring)."""
    if doc.get("champion") == version:
        return CHAMPION
    if ((doc.get("canary") or {}).get("version")) == version:
        return CANARY
    if cause(doc, version):
        return ROLLED_BACK
    status = (doc.get("status") or {}).get(version, "candidate")
    if status in ("retired", "champion") or version in (doc.get("champion_history") or ()):
        return RETIRED
    if doc.get("challenger") == version or (doc.get("champion") or "") < version:
        return CHALLENGER  # version ids sort by registration time
    return CANDIDATE


def blocking_causes(doc: Mapping[str, Any], version: str, gate_failures: Sequence[str]) -> list[str]:
    """The reasons ``version`` may not go to a canary or be promoted (empty when it may)."""
    out = []
    caused = cause(doc, version)
    if caused:
        out.append(MSG_CAUSED.format(version=version, at=str(caused.get("at", ""))[:10], by=caused.get("by") or "?",
                                     reason=caused.get("reason")))
    if gate_failures:
        out.append(MSG_GATES.format(version=version, failures="; ".join(gate_failures)))
    return out


def override(doc: Mapping[str, Any], version: str, causes: Sequence[str]) -> dict[str, Any] | None:
    """The risk manager's override of ``version`` when it covers every one of ``causes`` (a new cause
    after the override, e.g. another rollback, needs a new override)."""
    o = (doc.get(OVERRIDES) or {}).get(version)
    if not o or not causes:
        return None
    kinds = {_kind(c) for c in causes}
    return o if kinds <= set(o.get("covers") or ()) and (cause(doc, version) or {}).get("at") == o.get(
        "cause_at") else None


def _kind(text: str) -> str:
    return "cause" if "rolled back for cause" in text else "gates"


def blockers(doc: Mapping[str, Any], version: str, gate_failures: Sequence[str], *, what: str
             ) -> tuple[list[str], dict[str, Any] | None]:
    """``(causes, override)``; raises :class:`LifecycleRefused` when causes exist and no override covers them."""
    causes = blocking_causes(doc, version, gate_failures)
    if not causes:
        return [], None
    o = override(doc, version, causes)
    if o is None:
        raise LifecycleRefused(MSG_BLOCKED.format(what=what, version=version, causes="; ".join(causes)))
    return causes, o


def check_four_eyes(o: Mapping[str, Any] | None, version: str, by: str | None, what: str) -> None:
    if o is not None and by and o.get("by") == by:
        raise LifecycleRefused(MSG_FOUR_EYES.format(by=by, version=version, what=what))


# ------------------------------------------------------------------------------------------- writing
def mark_cause(doc: dict[str, Any], version: str, reason: str, *, by: str | None, at: datetime | None) -> None:
    """Record in ``doc`` (under the registry lock) that ``version`` was rolled back for ``reason``."""
    doc.setdefault(CAUSES, {})[version] = {"reason": reason, "at": _now(at), "by": by}
    (doc.get(OVERRIDES) or {}).pop(version, None)  # an older override does not cover a new cause


def record_override(reg: Any, version: str, *, by: str, reason: str, gate_failures: Sequence[str],
                    at: datetime | None = None) -> dict[str, Any]:
    """A risk manager's written override of ``version``'s current causes (under the registry lock).
    Who may write it (role, named user) and the audit row are ``ModelAdmin``'s job."""
    text = clean_reason(reason)
    with reg._locked():
        doc = reg.aliases()
        causes = blocking_causes(doc, version, gate_failures)
        if not causes:
            raise LifecycleRefused(MSG_NOTHING.format(version=version))
        entry = {"by": by, "reason": text, "at": _now(at), "covers": sorted({_kind(c) for c in causes}),
                 "causes": causes, "cause_at": (cause(doc, version) or {}).get("at")}
        doc.setdefault(OVERRIDES, {})[version] = entry
        reg._event(doc, "override", version, at=at, by=by, reason=text)
        reg._save_aliases(doc)
        return entry


# ---------------------------------------------------------------------------------------- choosing
def rollback_targets(doc: Mapping[str, Any], former: Iterable[str]) -> list[str]:
    """Earlier champions a rollback may return to: those not rolled back for cause (newest first)."""
    return [v for v in former if not cause(doc, v)]


def canary_candidates(rows: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
    """Versions that could go to a canary (never the champion or a running canary), newest first,
    those that may go now (gates passed, no cause) before those a risk manager would have to override."""
    champion, running = doc.get("champion"), (doc.get("canary") or {}).get("version")
    versions = [r["version"] for r in reversed(rows) if r["version"] not in (champion, running)]
    ok = {r["version"] for r in rows if r.get("gates_passed") and not cause(doc, r["version"])}
    return [v for v in versions if v in ok] + [v for v in versions if v not in ok]


def canary_default(rows: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> str | None:
    """The newest challenger that passed its gates and has no cause against it (None when there is none)."""
    return next((r["version"] for r in reversed(rows) if state(doc, r["version"]) == CHALLENGER
                 and r.get("gates_passed") and not cause(doc, r["version"])), None)


# ----------------------------------------------------------------------------------------- showing
_VERSION = re.compile(r"^v(\d{4})(\d{2})(\d{2})-\d+-([0-9a-f]+)$")


def short_id(version: str) -> str:
    """The random tail of a version id (``v20261206-083928225-7c3e4d`` -> ``7c3e4d``)."""
    m = _VERSION.match(version)
    return m[4] if m else version[-6:]


def trained_on(row: Mapping[str, Any]) -> str:
    """The period a version's training data covers: the book window, else the registration date."""
    window = (row.get("lineage") or {}).get("window") or {}
    if window.get("from") and window.get("to"):
        lo, hi = str(window["from"])[:10], str(window["to"])[:10]
        return f"trained on {lo} to {hi}"
    data = row.get("data") or {}
    source = str(data.get("source") or "")
    source = "" if source in ("", "synthetic", "<DataFrame>") else source.rsplit("/", 1)[-1]
    created = str(row.get("created_at") or "")[:10]
    return f"trained {created}" + (f" on {source}" if source else "") if created else (source or "trained ?")


def label(row: Mapping[str, Any], name: str = "creditrisk") -> str:
    """``creditrisk · trained on 2025-08-01 to 2025-09-10 · 92686d`` (the full id on hover/copy)."""
    return f"{row.get('name') or name} · {trained_on(row)} · {short_id(str(row['version']))}"
