"""Audit trail (risk manager, admin): recent events, filters and chain verification."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import require
from app.services import get_services
from backend.permissions import Perm

user = require(Perm.VIEW_AUDIT)
svc = get_services()

st.title("Audit trail")
st.caption("Append-only and hash-chained: each row stores the SHA-256 of its payload and of the previous row. "
           "The database refuses UPDATE and DELETE on this table.")

c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
actor = c1.text_input("Actor (username)", key="audit_actor").strip() or None
action = c2.text_input("Action (e.g. login_failed)", key="audit_action").strip() or None
entity = c3.selectbox("Entity type", [None, "user", "session", "application", "prediction", "decision", "model"],
                      key="audit_entity", format_func=lambda v: "any" if v is None else v)
limit = c4.number_input("Rows", 10, 5000, 200, step=50, key="audit_limit")

rows = svc.audit.recent(int(limit), actor=actor, action=action, entity_type=entity)
df = pd.DataFrame(rows)
if df.empty:
    st.info("No audit rows match.")
else:
    df["payload"] = df["payload"].map(lambda p: ", ".join(f"{k}={v}" for k, v in (p or {}).items()))
    st.dataframe(df, hide_index=True,
                 column_config={"at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss")})
st.caption(f"{svc.audit.count():,} rows in total.")

if st.button("Verify the hash chain", key="audit_verify"):
    with st.spinner("Recomputing every hash…"):
        report = svc.audit.verify()
    if report.ok:
        st.success(f"Chain intact: {report.rows:,} rows verified.")
    else:
        st.error(f"Chain broken at row {report.first_broken_seq}: {report.detail}.")
