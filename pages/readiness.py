"""Production readiness: the seed's checklist judged from the system's own records (verdict, one row per item
with its evidence, date and the command that refreshes it), named sign-offs for the champion, the evidence
history, and the checklist as JSON or Markdown. The rules live in backend/operations/readiness*.py."""

from __future__ import annotations

import streamlit as st

from app.components.text import plain
from app.guard import require
from app.services import get_services
from backend.container import Services
from backend.domain import Perm, allowed
from backend.operations import (
    AREA_LABELS,
    MAX_COUNSEL,
    MAX_NOTE,
    Report,
    SignOffError,
    areas_for,
    describe,
)

user = require(Perm.VIEW_READINESS)
svc = get_services()
st.title("Production readiness")
if flash := st.session_state.pop("readiness_flash", None):
    st.success(flash)


@st.cache_data(ttl=30, show_spinner="Reading the evidence…")
def _report(_svc: Services, nonce: int) -> Report:
    return _svc.readiness.evaluate()


def _done(message: str) -> None:
    st.session_state["readiness_flash"] = message
    st.session_state["readiness_nonce"] = st.session_state.get("readiness_nonce", 0) + 1
    st.rerun()


report = _report(svc, st.session_state.get("readiness_nonce", 0))
(st.success if report.ready else st.warning)(report.verdict, icon=":material/task_alt:" if report.ready
                                             else ":material/report:")
st.caption(f"Evaluated {report.at:%Y-%m-%d %H:%M} UTC for the champion {report.champion or '(none)'}. An item is "
           "green only when its evidence exists, passed, meets its target and is recent enough; stale evidence "
           "reads red with the reason 'stale'. Windows and targets: CREDITRISK_READINESS__* settings.")
st.dataframe([{"status": i.status.upper() + (f" ({i.reason})" if i.reason else ""), "item": i.title,
               "evidence": i.evidence, "date (UTC)": f"{i.date:%Y-%m-%d %H:%M}" if i.date else "",
               "produced by": i.command, "refresh with": i.refresh} for i in report.items],
             hide_index=True, key="readiness_items",
             column_config={"evidence": st.column_config.TextColumn(width="large")})
keys = [i.key for i in report.items]
first_red = next((i.key for i in report.items if not i.green), keys[0])
shown = report.item(st.selectbox("Item details (full evidence and commands)", keys, index=keys.index(first_red),
                                 format_func=lambda k: f"{report.item(k).status.upper()}: {report.item(k).title}",
                                 key="readiness_detail"))
with st.container(border=True):
    st.markdown(plain(shown.evidence))  # escaped: notes and names render exactly as typed
    st.caption(f"Evidence date: {shown.date:%Y-%m-%d %H:%M} UTC" if shown.date else "No evidence date.")
    if shown.command:
        st.caption("Produced by")
        st.code(shown.command, language=None)
    st.caption("Refresh with")
    st.code(shown.refresh, language=None)
c1, c2, c3 = st.columns([1, 1, 2])
c1.download_button("Export checklist (JSON)", report.to_json(), file_name=f"readiness_{report.at:%Y%m%d}.json",
                   mime="application/json", on_click="ignore", key="readiness_json")
c2.download_button("Export checklist (Markdown)", report.to_markdown(), file_name=f"readiness_{report.at:%Y%m%d}.md",
                   mime="text/markdown", on_click="ignore", key="readiness_md")
if c3.button("Re-evaluate now", key="readiness_refresh"):
    _done("Checklist re-evaluated.")

# -- sign-offs ------------------------------------------------------------------------------------------
st.subheader("Sign-offs")
st.caption("Product (PM) is signed by a product lead, engineering by an ML engineer, compliance by a risk manager. "
           "Legal counsel has no console account: an administrator or a risk manager records the legal sign-off "
           "and names the counsel who gave it; both are stored (signed by the counsel, recorded by the user). "
           "A new sign-off for an area replaces the previous one for the same model version; a new champion "
           "needs new sign-offs.")
signoffs = svc.signoffs
champion = report.champion
records = signoffs.records(version=champion) if champion else []
if records:
    st.dataframe([{"area": AREA_LABELS.get(r.area, r.area), "signed by": describe(r), "version": r.model_version,
                   "signed (UTC)": f"{r.signed_at:%Y-%m-%d %H:%M}", "note": r.note,
                   "status": "active" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M} ({r.revoked_by})",
                   "id": r.id[:8]} for r in records], hide_index=True, key="readiness_signoffs")
else:
    st.caption("No sign-off recorded for the current champion.")

mine = areas_for(user.role) if allowed(user.role, Perm.SIGN_OFF) else []
if champion and mine:
    with st.form("readiness_sign", clear_on_submit=True):
        area = st.selectbox("Area you sign for", mine, format_func=lambda a: AREA_LABELS[a], key="readiness_area")
        counsel = st.text_input("Legal counsel's name (legal only: the person who signed; you are recorded as the "
                                "one entering it)", max_chars=MAX_COUNSEL, key="readiness_counsel") \
            if "legal" in mine else ""
        note = st.text_area("Note (what you reviewed)", max_chars=MAX_NOTE, key="readiness_note")
        signed = st.form_submit_button(f"Sign off for {champion}", type="primary")
    if signed:
        try:
            rec = signoffs.add(user.username, str(area), note=note or "", counsel=counsel or "")
        except SignOffError as exc:
            st.error(str(exc))
        else:
            _done(f"{AREA_LABELS[rec.area]} signed off for {rec.model_version} by {describe(rec)}.")
    revocable = [r for r in records if r.active and r.area in mine]
    if revocable:
        with st.form("readiness_revoke"):
            pick = st.selectbox("Sign-off to revoke", [r.id for r in revocable], key="readiness_revoke_pick",
                                format_func=lambda i: next(f"{AREA_LABELS[r.area]}: {describe(r)}, "
                                                           f"{r.signed_at:%Y-%m-%d %H:%M}" for r in revocable
                                                           if r.id == i))
            why = st.text_input("Why (kept in the audit trail)", max_chars=MAX_NOTE, key="readiness_revoke_note")
            revoke = st.form_submit_button("Revoke")
        if revoke:
            try:
                rec = signoffs.revoke(user.username, str(pick), note=why or "")
            except SignOffError as exc:
                st.error(str(exc))
            else:
                _done(f"{AREA_LABELS[rec.area]} sign-off revoked.")
elif mine:
    st.caption("There is no champion model to sign off yet.")
else:
    st.caption("Your role does not sign off any area; you can read the checklist.")

# -- evidence history -------------------------------------------------------------------------------------
st.subheader("Evidence history")
st.caption("The newest runs of each kind, as recorded by the commands that produced them (a failed run is kept).")
history = svc.readiness.history(per_kind=5)
if history:
    st.dataframe([{"kind": e.kind, "recorded (UTC)": f"{e.recorded_at:%Y-%m-%d %H:%M}", "ok": "yes" if e.ok else "NO",
                   "summary": e.summary, "command": e.command, "by": e.actor} for e in history],
                 hide_index=True, key="readiness_history")
else:
    st.caption("No operational evidence recorded yet (backups, drills, scans, load tests, rollback drills).")
