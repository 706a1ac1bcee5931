"""Model registry (ML engineer, risk manager, admin): versions with held-out metrics, gates and lineage;
champion vs challenger on the same held-out rows; canary promotion with four-eyes; rollback to any
earlier champion; retraining on the book; the events timeline; one version's full held-out report."""

from __future__ import annotations

import streamlit as st

from app.components import registry_views as rv
from app.guard import label_simulated, require
from app.services import get_services
from backend.permissions import Perm
from backend.services.model_admin import ModelAdmin
from backend.training.retrain import RetrainError, retrain_from_book

user = require(Perm.VIEW_MODELS)
svc = get_services()
admin = ModelAdmin(svc)
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

c = st.columns(4)
c[0].metric("Champion", rv.short_version(champion), help=champion)
c[1].metric("Challenger", rv.short_version(aliases.get("challenger")), help=aliases.get("challenger"))
c[2].metric("Canary", f"{canary['share']}%" if canary else "none", help=canary["version"] if canary else None)
c[3].metric("Deployments", "halted" if halts else "open")

st.subheader("Versions")
st.dataframe(rv.versions_frame(rows, registered_by), hide_index=True, key="models_versions",
             column_config={"AUC": rv.F3, "KS": rv.F3, "balanced acc.": rv.F3})
st.caption("Metrics on each version's own held-out split. Lineage: the data it was trained from (source, rows, "
           "window, SHA-256), the champion in force when it was registered, and who registered it.")
if not all(r.get("intact") for r in rows):
    st.error("At least one version failed its SHA-256 check; it will not be served.")

tab_cmp, tab_canary, tab_rollback, tab_retrain, tab_events, tab_detail = st.tabs(
    ["Champion vs challenger", "Canary", "Rollback", "Retrain", "Events", "Version details"])

others = [r["version"] for r in reversed(rows) if r["version"] != champion]
with tab_cmp:
    if not champion or not others:
        st.caption("A comparison needs a champion and at least one other version.")
    else:
        preferred = (canary or {}).get("version") or aliases.get("challenger") or others[0]
        challenger = st.selectbox("Challenger", others, index=others.index(preferred) if preferred in others else 0,
                                  key="models_cmp_version")
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
    rv.canary_panel(admin, user, canary, sorted(others, key=lambda v: v != aliases.get("challenger")),
                    halted=bool(halts))

with tab_rollback:
    st.caption("Rollback makes an earlier champion serve again at once: no gates (it already served), allowed while "
               "deployments are halted, any canary is aborted and cached scores of the replaced champion are purged.")
    rv.rollback_panel(admin, user, admin.rollback_targets())

with tab_retrain:
    rv.retrain_panel(svc, user, retrain_from_book, RetrainError)

with tab_events:
    if events:
        st.plotly_chart(rv.timeline_chart(events), key="models_events_chart")
        st.dataframe([{"when (UTC)": e["at"].strftime("%Y-%m-%d %H:%M"), "event": rv.ACTION_LABELS.get(e["action"],
                       e["action"]), "version": e["version"], "by": e["by"] or "—", "previous": e["previous"] or "",
                       "share %": e["share"], "note": e["note"] or ""} for e in events],
                     hide_index=True, key="models_events")
    else:
        st.caption("No events yet.")

with tab_detail:
    versions = [r["version"] for r in reversed(rows)]
    version = st.selectbox("Version", versions, index=versions.index(champion) if champion in versions else 0,
                           key="models_version")
    rv.version_details(registry.report(version))
