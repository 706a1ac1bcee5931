"""Model registry (ML engineer, risk manager, admin): versions with held-out metrics, gates and lineage;
champion vs challenger on the same held-out rows; canary promotion with four-eyes; rollback to any
earlier champion; retraining on the book; the events timeline; one version's full held-out report."""

from __future__ import annotations

import streamlit as st

from app.components import registry_views as rv
from app.components.alternatives_panel import alternatives_panel
from app.components.incidents_panel import incidents_panel
from app.guard import label_simulated, require
from app.services import get_services
from backend.domain import Perm
from backend.models import canary_candidates, canary_default
from backend.training import RetrainError

user = require(Perm.VIEW_MODELS)
svc = get_services()
admin = svc.model_admin
registry = admin.registry()

st.title("Model registry")
label_simulated()
if message := st.session_state.pop(rv.FLASH, None):
    st.success(message)
key = rv.stamp(registry)
rows = rv.versions(registry, key)
if not rows:
    st.info("No model is registered yet. Train one with `creditrisk train` (the demo does this on `make run`).")
    st.stop()

halts = admin.halts()
rv.halted_banner(halts)
aliases = registry.aliases()
champion, canary = aliases.get("champion"), aliases.get("canary")
events = rv.timeline(admin, key)
registered_by = {e["version"]: e["by"] for e in events if e["action"] == "register" and e["by"]}

lab = rv.Labels(rows)  # every picker and table shows a readable label; the full id is on hover and copy
default = canary_default(rows, aliases)
c = st.columns(4)
c[0].metric("Champion", rv.short_version(champion), help=lab.hover(champion))
c[1].metric("Challenger", rv.short_version(default), help=lab.hover(default) or "no challenger passed its gates")
c[2].metric("Canary", f"{canary['share']}%" if canary else "none", help=lab.hover(canary["version"]) if canary else None)
c[3].metric("Deployments", "halted" if halts else "open")

st.subheader("Versions")
st.dataframe(rv.versions_frame(rows, registered_by), hide_index=True, key="models_versions",
             column_config={"AUC": rv.F3, "KS": rv.F3, "balanced acc.": rv.F3})
st.caption("Metrics on each version's own held-out split. Lineage: the data it was trained from (source, rows, "
           "window, SHA-256), the champion in force when it was registered, and who registered it.")
if not all(r.get("intact") for r in rows):
    st.error("At least one version failed its SHA-256 check; it will not be served.")

tab_cmp, tab_canary, tab_rollback, tab_inc, tab_retrain, tab_alt, tab_events, tab_detail = st.tabs(
    ["Champion vs challenger", "Canary", "Rollback", "Incidents", "Retrain", "Fairer alternatives", "Events",
     "Version details"])

others = [r["version"] for r in reversed(rows) if r["version"] != champion]
with tab_cmp:
    if not champion or not others:
        st.caption("A comparison needs a champion and at least one other version.")
    else:
        preferred = (canary or {}).get("version") or default or others[0]  # the version being considered
        challenger = st.selectbox("Challenger", others, index=others.index(preferred) if preferred in others else 0,
                                  key="models_cmp_version", format_func=lab, help=rv.HOVER_HELP)
        cmp = rv.comparison(admin, challenger, champion, str(registry.path))
        st.markdown(f"Both models scored on the **same {cmp['rows']:,} held-out rows** of {challenger} "
                    f"({cmp['defaults']:,} defaults): the rows its champion/challenger gate used.")
        errors = [m["error"] for m in cmp["models"].values() if "error" in m]
        if errors:
            st.warning("Cannot score on these rows: " + "; ".join(errors))
        st.dataframe(rv.comparison_frame(cmp), hide_index=True, key="models_cmp_table")
        st.plotly_chart(rv.comparison_chart(cmp), key="models_cmp_chart")
        st.caption("Gates against the current champion: " + "; ".join(
            f"{g['name']} {'pass' if g['passed'] else 'FAIL'}" for g in rv.gates(registry, challenger, champion, key)))

with tab_canary:
    rv.canary_panel(admin, user, canary, canary_candidates(rows, aliases), default, lab, halted=bool(halts))
    rv.override_panel(admin, user, rows, lab)

with tab_rollback:
    st.caption("Rollback makes an earlier champion serve again at once: no gates (it already served), allowed while "
               "deployments are halted, any canary is aborted and cached scores of the replaced champion are purged.")
    rv.rollback_panel(admin, user, admin.rollback_targets(), lab)

with tab_inc:
    incidents_panel(svc, user)

with tab_retrain:
    rv.retrain_panel(svc, user, svc.retrainer.from_book, RetrainError)

with tab_alt:
    alternatives_panel(svc, user, registry, RetrainError)

with tab_events:
    if events:
        st.plotly_chart(rv.timeline_chart(events), key="models_events_chart")
        st.dataframe([{"when (UTC)": e["at"].strftime("%Y-%m-%d %H:%M"), "event": rv.ACTION_LABELS.get(e["action"],
                       e["action"]), "version": lab(e["version"]), "by": e["by"] or "—",
                       "previous": lab(e["previous"]) if e["previous"] else "",
                       "share %": e["share"], "note": e["note"] or "", "cause": e.get("cause") or ""} for e in events],
                     hide_index=True, key="models_events")
    else:
        st.caption("No events yet.")

with tab_detail:
    versions = [r["version"] for r in reversed(rows)]
    version = st.selectbox("Version", versions, index=versions.index(champion) if champion in versions else 0,
                           key="models_version", format_func=lab, help=rv.HOVER_HELP)
    st.code(version, language=None)  # the full id, to copy
    rv.version_details(registry.report(version))
