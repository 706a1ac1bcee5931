"""Audit trail (risk manager, admin): filters, paging, payloads, safe CSV export, retention, chain check."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from app.guard import label_simulated, require
from app.services import get_services
from backend.compliance import AuditExport, AuditFilter, ExportTooLarge
from backend.container import Services
from backend.domain import Actor, Perm

EXPORT_KEY = "audit_export"
EXPORTED_KEY = "audit_export_recorded"
ANY = "(any)"

user = require(Perm.VIEW_AUDIT)
svc = get_services()


@st.cache_data(ttl=60, show_spinner=False)
def _choices(_svc: Services) -> dict[str, list[str]]:
    return _svc.audit.choices()


def _day_start(d: date | None, days: int = 0) -> datetime | None:
    return None if d is None else datetime.combine(d + timedelta(days=days), time(), tzinfo=UTC)


def _record_export(export: AuditExport, who: Actor) -> None:
    """on_click of the download button: one audit row per download, before the page reruns."""
    get_services().audit.record_export(export, actor=who.username, role=who.role)
    st.session_state[EXPORTED_KEY] = export.rows


st.title("Audit trail")
label_simulated()
st.caption("Append-only and hash-chained: each row stores the SHA-256 of its payload and of the previous row. "
           "The database refuses UPDATE and DELETE on this table. Times are UTC.")

ret = svc.audit.retention(svc.settings.audit.retention_days, svc.clock.now())
st.caption(f"Retention: {ret.retention_days:,} days (CREDITRISK_AUDIT__RETENTION_DAYS). "
           f"{ret.past_retention:,} rows are past retention (written before {ret.cutoff:%Y-%m-%d %H:%M} UTC)"
           + ("; archive them with `creditrisk audit archive --out FILE`." if ret.past_retention else ".")
           + (f" {ret.older_than_cutoff:,} rows in all are older than the cutoff; an archive takes only the unbroken "
              "start of the chain." if ret.older_than_cutoff != ret.past_retention else ""))

choices = _choices(svc)
c1, c2, c3 = st.columns(3)
entity_type = c1.selectbox("Entity type", [ANY, *choices["entity_type"]], key="audit_entity_type")
entity_id = c1.text_input("Entity id", key="audit_entity_id").strip()
actor = c2.text_input("User (actor, exact username)", key="audit_actor").strip()
action_pick = c2.selectbox("Action", [ANY, *choices["action"]], key="audit_action_pick")
action_text = c3.text_input("…or type an action", key="audit_action_text").strip()
d1, d2 = c3.columns(2)
date_from = d1.date_input("From (UTC)", value=None, key="audit_from")
date_to = d2.date_input("To (UTC, inclusive)", value=None, key="audit_to")

filters = AuditFilter(
    entity_type=None if entity_type == ANY else entity_type, entity_id=entity_id or None, actor=actor or None,
    action=action_text or (None if action_pick == ANY else action_pick),
    since=_day_start(date_from if isinstance(date_from, date) else None),
    until=_day_start(date_to if isinstance(date_to, date) else None, days=1))

p1, p2 = st.columns([1, 1])
page_size = int(p1.selectbox("Rows per page", [50, 200, 1000], key="audit_page_size"))
total = svc.audit.count_matching(filters)
pages = max(1, math.ceil(total / page_size))
if int(st.session_state.get("audit_page", 1)) > pages:  # the filters narrowed: back to the last page
    st.session_state["audit_page"] = pages
page_no = int(p2.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, step=1, key="audit_page"))
result = svc.audit.search(filters, limit=page_size, offset=(page_no - 1) * page_size)

if not result.rows:
    st.info("No audit rows match.")
else:
    first, last = result.offset + 1, result.offset + len(result.rows)
    st.caption(f"Showing rows {first:,}–{last:,} of {result.total:,} matching (newest first).")
    df = pd.DataFrame(result.rows)
    df["at"] = pd.to_datetime(df["at"], format="ISO8601")
    df["payload"] = df["payload"].map(lambda p: json.dumps(p, ensure_ascii=False, sort_keys=True))
    st.dataframe(df[["seq", "at", "actor", "role", "action", "entity_type", "entity_id", "payload"]],
                 hide_index=True,
                 column_config={"at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss")})
    by_seq = {r["seq"]: r for r in result.rows}
    seq = st.selectbox("Show the full row (seq)", list(by_seq), key="audit_show_seq")
    if seq is not None:
        row = by_seq[seq]
        st.text(json.dumps(row["payload"], indent=2, ensure_ascii=False, sort_keys=True))
        st.text(f"payload_hash {row['payload_hash']}\nprev_hash    {row['prev_hash']}\nrow_hash     {row['row_hash']}")

st.subheader("Export")
st.caption("CSV of every matching row (oldest first) with the hashes needed to re-verify the chain. Cells that a "
           "spreadsheet would run as a formula are prefixed with '. Each download is itself recorded in this trail.")
if st.session_state.pop(EXPORTED_KEY, None) is not None:
    st.success("Export recorded in the audit trail (audit_exported).")
if st.button("Prepare CSV export", key="audit_prepare", disabled=total == 0):
    try:
        st.session_state[EXPORT_KEY] = svc.audit.export_csv(filters)
    except ExportTooLarge as exc:
        st.session_state.pop(EXPORT_KEY, None)
        st.warning(str(exc))
export = st.session_state.get(EXPORT_KEY)
if isinstance(export, AuditExport) and replace(export.filters, through_seq=None) == filters:
    st.caption(f"{export.rows:,} rows through seq {export.filters.through_seq:,}; SHA-256 {export.sha256}")
    st.download_button("Download CSV", data=export.data, file_name=export.file_name, mime="text/csv",
                       key="audit_download", on_click=_record_export, args=(export, user))
elif export is not None:
    st.caption("The filters changed: prepare the export again.")

st.subheader("Chain")
if st.button("Verify the hash chain", key="audit_verify"):
    bar = st.progress(0.0, text="Recomputing every hash…")
    report = svc.audit.verify(progress=lambda _step, done, total: bar.progress(min(1.0, done / max(total, 1))))
    bar.empty()
    sealed = (f"{report.batches:,} sealed batches, {report.pending:,} pending, {report.archived:,} archived; "
              f"held to the {report.checkpoint}")
    if report.ok:
        start = " (starting at an archive's anchor)" if report.start_anchor else ""
        st.success(f"Chain intact: {report.rows:,} rows verified{start} ({sealed}).")
    else:
        st.error(f"Chain broken at row {report.first_broken_seq}: {report.detail} ({sealed}).")
