"""Alerts (risk manager, ML engineer): each rule's reading against its threshold, open and acknowledged
alerts with acknowledge/resolve, resolved history, notification deliveries, on-demand checks, CSV export."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time

import streamlit as st

from app.guard import label_simulated, require
from app.services import get_services
from backend.alerts import (
    MAX_NOTE,
    AlertError,
    Reading,
    alert_label,
    alerts_csv,
    alerts_frame,
    deliveries_frame,
    readings_frame,
)
from backend.container import Services
from backend.domain import Perm, allowed
from backend.models import active_halts

PAGE_SIZE = 20
user = require(Perm.VIEW_MONITORING)
svc = get_services()
can_act = allowed(user.role, Perm.ACK_ALERTS)
st.title("Alerts")
label_simulated()
if flash := st.session_state.pop("alerts_flash", None):
    st.success(flash)
try:
    alerts = svc.alerts
except ValueError as exc:  # the notifier's settings (e.g. a webhook without its URL)
    st.error(str(exc), icon=":material/settings:")
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def _readings(_svc: Services, as_of: str, now: bool) -> list[Reading]:
    """As of now the rules are judged (alerts opened or resolved as the monitor would): the table and the
    open alerts below are the same fact. A past date only reads."""
    rep = _svc.alerts.after_recompute() if now else None
    return rep.readings if rep is not None else _svc.alerts.status(datetime.fromisoformat(as_of))


if halts := active_halts(svc.db):
    st.warning(f"**Deployments halted** by {len(halts)} unresolved alert(s): "
               f"{', '.join(sorted({h.rule for h in halts}))}. No model promotion or canary step is possible "
               "until they are resolved.", icon=":material/block:")

now = svc.clock.now()
st.subheader("Rules")
c1, c2 = st.columns([1, 2])
day = c1.date_input("Readings as of (UTC; a past date means its 00:00)", value=now.date(), max_value=now.date(),
                    key="alerts_as_of")
as_of = datetime.combine(day, time(), tzinfo=UTC) if isinstance(day, date) and day != now.date() else \
    now.replace(second=0, microsecond=0)
c2.caption("A rule with too little data reads *no data* and never fires. Latency and error rate cover the "
           "7 days before the moment, cost per request 30 days; accuracy, drift and fairness read the newest "
           "stored summary. Thresholds: `CREDITRISK_MONITORING__THRESHOLDS__*`.")
st.dataframe(readings_frame(_readings(svc, as_of.isoformat(), day == now.date())), hide_index=True, key="alerts_rules")
st.caption(f"The console judges the rules every {svc.settings.monitoring.check_every_minutes:g} minutes, after every "
           "recompute and when this page opens; a firing rule always has an open alert below.")
if can_act and st.button("Run checks now", type="primary", key="alerts_run",
                         help="Recompute the drift, performance and fairness summaries, then evaluate every rule "
                              "now and open, update or resolve alerts (as `creditrisk monitor run` does)."):
    with st.spinner("Refreshing the summaries and evaluating the rules…"):
        try:
            rep = alerts.evaluate(refresh=True, actor=user.username)
        except AlertError as exc:
            st.error(str(exc))
            st.stop()
    _readings.clear()
    st.session_state["alerts_flash"] = (f"Checks run: {len(rep.opened)} opened, {len(rep.updated)} still firing, "
                                        f"{len(rep.resolved)} resolved; {len(rep.unresolved)} unresolved."
                                        + (f" Problems: {'; '.join(rep.errors)}" if rep.errors else ""))
    st.rerun()

st.subheader("Open and acknowledged")
unresolved = alerts.list(status="unresolved", limit=200)
if not unresolved:
    st.caption("No unresolved alert.")
else:
    st.dataframe(alerts_frame(unresolved), hide_index=True, key="alerts_open")
if unresolved and can_act:
    with st.form("alerts_act", clear_on_submit=True):
        pick = st.selectbox("Alert", [a.id for a in unresolved], key="alerts_pick",
                            format_func=lambda i: alert_label(next(a for a in unresolved if a.id == i)))
        note = st.text_area("Note (required: what was checked or done)", max_chars=MAX_NOTE, key="alerts_note")
        b1, b2 = st.columns(2)
        ack = b1.form_submit_button("Acknowledge")
        res = b2.form_submit_button("Resolve", type="primary")
    if ack or res:
        try:
            done = (alerts.resolve if res else alerts.acknowledge)(str(pick), user, note or "")
        except AlertError as exc:
            st.error(str(exc))
        else:
            for k in ("alerts_note", "alerts_pick"):  # the form starts afresh (the acted-on alert is not "open")
                st.session_state.pop(k, None)
            lifted = res and done.action == "halt_deployments" and not active_halts(svc.db)
            st.session_state["alerts_flash"] = (f"Alert {done.id[:8]} ({done.rule}) {done.status} by {user.username}."
                                                + (" Deployments are no longer halted." if lifted else ""))
            st.rerun()
if unresolved:
    st.caption("Acknowledging says someone is on it; the alert stays unresolved (a halt stays in force). "
               "Resolving by hand does not silence a rule: if it still fires, the next check opens a new alert. "
               "The monitor resolves an alert itself once its rule reads ok again.")

st.subheader("Resolved")
total = alerts.count("resolved")
pages = max(1, math.ceil(total / PAGE_SIZE))
if int(st.session_state.get("alerts_page", 1)) > pages:
    st.session_state["alerts_page"] = pages
page_no = int(st.number_input(f"Page (of {pages:,}; {total:,} resolved)", min_value=1, max_value=pages, value=1,
                              step=1, key="alerts_page"))
resolved = alerts.list(status="resolved", limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
if resolved:
    st.dataframe(alerts_frame(resolved), hide_index=True, key="alerts_resolved")
else:
    st.caption("No resolved alert yet.")

shown = [*unresolved, *resolved]
if shown:
    st.subheader("Notification deliveries")
    chosen = st.selectbox("Alert", [a.id for a in shown], key="alerts_deliveries",
                          format_func=lambda i: alert_label(next(a for a in shown if a.id == i)))
    one = next(a for a in shown if a.id == chosen)
    channel = svc.settings.monitoring.notifier
    if one.notifications:
        st.dataframe(deliveries_frame(one), hide_index=True, key="alerts_deliveries_table")
    else:
        st.caption("No notification recorded for this alert.")
    st.caption(f"Notifier: {channel} (`CREDITRISK_MONITORING__NOTIFIER`). Alerts are notified when opened and when "
               "the monitor resolves them.")
    st.download_button("Export alerts (CSV)", alerts_csv(alerts.list(status="all", limit=10_000)),
                       file_name=f"alerts_{now:%Y%m%d}.csv", mime="text/csv", on_click="ignore", key="alerts_csv")
