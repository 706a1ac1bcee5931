"""Home's "Waiting for you": each role's pending items with a link to where they are handled (issue 20,
item 4). Every count is read through the feature's own service, as the signed-in user where the service
checks the user; an item the role may not act on is not listed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.navigation import PAGES_DIR
from backend.domain import Actor, Perm, allowed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    what: str
    count: int
    page: str  # pages/<file>
    label: str


def pending_items(svc: Any, user: Any) -> list[Pending]:
    """What waits for ``user`` (only what their role acts on); a source that cannot be read is skipped and logged."""
    role, actor = user.role, Actor(user.username, user.role, getattr(user, "id", None))
    out: list[Pending] = []

    def add(what: str, page: str, label: str, count: Any) -> None:
        try:
            n = int(count())
        except Exception:  # noqa: BLE001 - Home never fails for one source
            log.exception("reading the pending %s failed", what)
            return
        if n:
            out.append(Pending(what, n, page, label))

    if allowed(role, Perm.DECIDE) and not allowed(role, Perm.VIEW_ALL_DECISIONS):
        rows = lambda: svc.decisions.decisions_for(actor, limit=500)  # noqa: E731
        add("applications waiting for your decision", "decisions.py", "Applications",
            lambda: sum(r.state == "awaiting_decision" for r in rows()))
        add("overrides returned by the reviewer", "decisions.py", "Applications",
            lambda: sum(r.state == "returned" for r in rows()))
    if allowed(role, Perm.APPROVE_OVERRIDES):
        add("overrides waiting for your second approval", "review.py", "Review queue",
            lambda: len(svc.decisions.review_queue(actor=actor, limit=500)))
    if allowed(role, Perm.ACK_ALERTS):
        add("open alerts", "alerts.py", "Alerts", lambda: svc.alerts.count("unresolved"))
    if allowed(role, Perm.APPROVE_CANARY):
        add("canary steps to approve", "models.py", "Model registry",
            lambda: bool((svc.model_admin.canary_state() or {}).get("pending")))
    if allowed(role, Perm.APPROVE_ROLLOUT):
        add("rollout proposals waiting for your review", "rollout.py", "Rollout phases",
            lambda: sum(p.proposed_by != user.username for p in svc.rollout.pending()))
    if allowed(role, Perm.PROPOSE_ROLLOUT):
        add("of your rollout proposals waiting for a risk manager", "rollout.py", "Rollout phases",
            lambda: sum(p.proposed_by == user.username for p in svc.rollout.pending()))
    return out


def pending_panel(svc: Any, user: Any) -> None:
    items = pending_items(svc, user)
    st.subheader("Waiting for you")
    if not items:
        st.caption("Nothing waits for you right now.")
        return
    for it in items:
        st.page_link(str(PAGES_DIR / it.page), label=f"{it.count:,} {it.what} → {it.label}",
                     icon=":material/pending_actions:")
