"""Model registry page: the rollback incidents tab (issue 19 item 3). Each incident's steps with the seed's clocks
(rollback < 5 min, verify < 10 min, post-mortem < 24 h), the verification read from the records, a sample of the
rolled-back version's decisions queued for review, and the post-mortem; actions for who may roll back."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.components.registry_views import flash
from backend.domain import Perm, allowed
from backend.operations import IncidentError

VERDICT = {True: "back to baseline", False: "NOT back to baseline", None: "no data yet"}


def _took(step: dict[str, Any]) -> str:
    return "—" if step.get("seconds") is None else f"{step['seconds'] / 60:.1f} min"


def steps_frame(view: dict[str, Any]) -> pd.DataFrame:
    st_ = view["steps"]
    rows = []
    for name, key in (("1. Roll back", "rollback"), ("2. Verify from the records", "verify"),
                      ("4. Post-mortem", "postmortem")):
        s = st_[key]
        rows.append({"step": name, "took": _took(s), "target": f"{s['target_s'] / 60:.0f} min",
                     "met": {True: "yes", False: "NO", None: "not done"}[s["met"]]})
    r = st_["review"]
    rows.insert(2, {"step": "3. Decisions queued for review", "took": f"{r['queued'] + r['reviewed']} queued",
                    "target": "last 100", "met": f"{r['reviewed']} reviewed"})
    return pd.DataFrame(rows)


def incidents_panel(svc: Any, user: Any) -> None:
    inc = svc.incidents
    may = allowed(user.role, Perm.ROLLBACK_MODELS)
    inc.open_from_registry()  # a rollback opens its incident (idempotent: one per rolled-back version)
    rows = inc.all()
    if not rows:
        st.caption("No incidents. A rollback opens one, with its steps and clocks.")
        return
    labels = {r["id"]: f"{r['opened_at']:%Y-%m-%d} · {r['model_version']} · {r['status']}" for r in rows}
    ref = st.selectbox("Incident", list(labels), format_func=labels.__getitem__, key="models_inc_pick")
    view = next(r for r in rows if r["id"] == ref)
    st.markdown(f"**{view['status'].upper()}** · `{view['model_version']}` rolled back to `{view['restored_version']}`"
                f" on {view['opened_at']:%Y-%m-%d %H:%M} UTC by {view['opened_by']}")
    st.text(f"Cause: {view['cause'] or '—'}")  # stored text, shown as text
    st.dataframe(steps_frame(view), hide_index=True, key="models_inc_steps")
    checks = view["steps"]["verify"]["checks"]
    if checks:
        st.dataframe(pd.DataFrame([{"check": c["name"], "baseline": c["baseline"], "after rollback": c["after"],
                                    "rows after": c["n_after"], "verdict": VERDICT[c["ok"]], "rule": c["rule"]}
                                   for c in checks]), hide_index=True, key="models_inc_checks")
    pm = view["steps"]["postmortem"]
    st.text(f"Post-mortem owner: {pm['owner'] or '—'} · due {pm['due']:%Y-%m-%d %H:%M} UTC · test that now catches "
            f"the cause: {pm['test'] or '—'}\n{pm['summary'] or ''}")
    st.caption("Sample of the queued decisions (the rolled-back version's last decisions before the rollback):")
    st.dataframe(inc.review_sample(ref, 20), hide_index=True, key="models_inc_sample")
    if not may or view["status"] == "closed":
        return
    c = st.columns(2)
    try:
        if c[0].button("Verify now", key="models_inc_verify"):
            res = inc.verify(ref, user)
            flash("Verification passed." if res["passed"] else "Verification did not pass: see the checks.")
        if c[1].button("Close the incident", key="models_inc_close"):
            inc.close(ref, user)
            flash("Incident closed.")
        with st.form("models_inc_pm"):
            owner = st.text_input("Post-mortem owner", value=pm["owner"] or user.username)
            summary = st.text_area("What happened and why")
            test = st.text_input("Test that now catches the cause (path::name)")
            if st.form_submit_button("Record the post-mortem"):
                inc.postmortem(ref, user, owner=owner, summary=summary, test=test)
                flash("Post-mortem recorded.")
    except IncidentError as exc:
        st.error(str(exc))
