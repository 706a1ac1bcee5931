"""Model registry page: the less-discriminatory-alternatives panel (issue 19 item 5).

Shows the newest recorded search (the frontier table and plot from :func:`backend.training.frontier_table`, the one
definition the CLI prints too, and the features found carrying the disparity) and lets an ML engineer run one on the
book. Everything comes from the signed version reports; nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app.components.registry_views import flash
from backend.domain import Perm, allowed
from backend.training import attribution_table, frontier_table, headline, latest_search

F3 = st.column_config.NumberColumn(format="%.3f")
F4 = st.column_config.NumberColumn(format="%.4f")
NONE_YET = ("No search recorded yet. Run `creditrisk train --search-alternatives` or `creditrisk retrain "
            "--search-alternatives`, or the button below: when a disparate-impact screen fails (or on request) it tries "
            "dropping the features that carry the disparity, monotone constraints and regularisation, all on the same "
            "held-out rows, and registers the best passing model as the challenger.")
RULES = ("Never used: a protected attribute as a feature, or a threshold per group (every candidate is judged at the "
         "one policy cutoff). AUC interval: Hanley-McNeil; adverse-impact ratio (AIR) interval: bootstrap, the figure "
         "the fairness gate reads.")


def frontier_chart(record: dict[str, Any]) -> go.Figure:
    """AUC against the worst group's AIR, one point per candidate with both intervals; the screen's line."""
    t = frontier_table(record).dropna(subset=["worst AIR"])
    fig = go.Figure()
    for passes, colour, name in ((True, "#2e7d32", "passes the screen"), (False, "#c62828", "fails the screen")):
        s = t[t["passes screen"] == passes]
        fig.add_scatter(x=s["worst AIR"], y=s["AUC"], mode="markers+text", text=s["candidate"], name=name,
                        textposition="top center", marker=dict(color=colour, size=[16 if c else 9 for c in s["chosen"]],
                                                                symbol=["star" if c else "circle" for c in s["chosen"]]),
                        error_x=dict(type="data", symmetric=False, array=s["AIR high"] - s["worst AIR"],
                                     arrayminus=s["worst AIR"] - s["AIR low"], thickness=1),
                        error_y=dict(type="data", symmetric=False, array=s["AUC high"] - s["AUC"],
                                     arrayminus=s["AUC"] - s["AUC low"], thickness=1))
    fig.add_vline(x=float(record.get("threshold", 0.8)), line_dash="dash", annotation_text="screen")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="Worst group's adverse-impact "
                      "ratio (95% CI)", yaxis_title="Held-out AUC (95% CI)", legend=dict(orientation="h", y=1.12))
    return fig


def alternatives_panel(svc: Any, user: Any, registry: Any, error: type[Exception]) -> None:
    found = latest_search(registry)
    if found is None:
        st.info(NONE_YET)
    else:
        version, record = found
        st.markdown(headline(record))
        st.caption(f"Recorded in the report of {version}" + (" (registered as the challenger)." if record.get("chosen")
                   else " (nothing passed, nothing registered).") + " " + RULES)
        st.plotly_chart(frontier_chart(record), key="models_alt_chart")
        st.dataframe(frontier_table(record), hide_index=True, key="models_alt_table",
                     column_config={c: F4 for c in ("AUC", "AUC low", "AUC high", "AUC cost")}
                     | {c: F3 for c in ("worst AIR", "AIR low", "AIR high")})
        st.caption(f"Features carrying the disparity ({record.get('attribute')}: {record.get('least_approved')} vs "
                   f"{record.get('most_approved')}), by the base model's attributions on the held-out rows:")
        st.dataframe(attribution_table(record), hide_index=True, key="models_alt_attr")
    if not allowed(user.role, Perm.MANAGE_MODELS):
        st.caption("An ML engineer can run a search.")
        return
    if st.button("Retrain on the book and search for an alternative", key="models_alt_run"):
        with st.status("Retraining and searching (a few minutes)…", expanded=True) as status:
            bar = st.progress(0.0, text="reading the book")
            try:
                rep = svc.retrainer.from_book(user, search_alternatives=True,
                                              progress=lambda step, done, total: bar.progress(done / total, text=step))
            except error as exc:
                status.update(label="Refused", state="error")
                st.error(str(exc))
                return
            alt = rep.get("alternatives") or {}
            status.update(label=f"Registered {alt.get('version') or rep['version']}", state="complete")
        flash(headline(alt) if alt else f"Registered {rep['version']}; " + rep["selection_bias"])
