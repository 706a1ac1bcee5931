"""Model registry page builders: versions table, champion vs challenger, canary, rollback, retrain,
events timeline and one version's held-out report. Every figure comes from the registry files
(manifests, aliases.json) and the audit trail; nothing is computed from the book here."""

from __future__ import annotations

import os
import re
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.charts import calibration_curves
from app.components.text import plain
from backend.domain import Perm, allowed
from backend.models import REFUSALS, ROLLED_BACK

HOVER_HELP = ("Versions read as name · trained-on period · short id · lifecycle state; the full id is shown below "
              "the picker (copy it) and in the Versions table.")

FLASH = "models_flash"
PCT = st.column_config.NumberColumn(format="percent")
F3 = st.column_config.NumberColumn(format="%.3f")
ACTION_LABELS = {"register": "registered", "promote": "promoted", "rollback": "rolled back to",
                 "canary_propose": "canary step proposed", "canary_approve": "canary step approved",
                 "canary_reject": "canary step rejected", "canary_abort": "canary aborted",
                 "canary_complete": "canary completed", "override": "overridden by a risk manager"}


class Labels:
    """A version's readable label with its state (``format_func`` of every picker); :meth:`hover` adds the id."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = {r["version"]: r for r in rows}

    def __call__(self, version: str | None) -> str:
        row = self.rows.get(str(version))
        if row is None:
            return str(version or "none")
        state = row.get("state") or ""
        gates = "" if row.get("gates_passed") or state in ("champion", "retired") else ", failed gates"
        return f"{row.get('label') or version} — {state}{gates}"

    def hover(self, version: str | None) -> str | None:
        return f"{self(version)}\n\nfull id: {version}" if version else None

    def blocked(self, version: str) -> list[str]:
        """Why ``version`` cannot go to a canary or be promoted without an override (empty when it can)."""
        row = self.rows.get(version) or {}
        why = [f"rolled back for cause: {row['cause'].get('reason')}"] if row.get("cause") else []
        why += [] if row.get("gates_passed") else ["failed its gates at registration"]
        return [] if row.get("override") and why else why


# -- cached reads (artifacts are immutable; the aliases stamp changes with every lifecycle action) ----------
def stamp(registry: Any) -> tuple[str, int, int, int]:
    try:
        s = os.stat(registry.path / "aliases.json")
        return str(registry.path), s.st_ino, s.st_mtime_ns, s.st_size
    except FileNotFoundError:
        return str(registry.path), 0, 0, 0


@st.cache_data(ttl=300, show_spinner=False)
def versions(_registry: Any, key: tuple[str, int, int, int]) -> list[dict[str, Any]]:
    return list(_registry.list())


@st.cache_data(ttl=3600, show_spinner="Scoring both models on the same held-out rows…")
def comparison(_admin: Any, challenger: str, champion: str | None, root: str) -> dict[str, Any]:
    return dict(_admin.compare(challenger, champion))


@st.cache_data(ttl=3600, show_spinner=False)
def gates(_registry: Any, challenger: str, champion: str | None, key: tuple[str, int, int, int]) -> list[dict[str, Any]]:
    """The challenger's gates against ``champion`` (the champion/challenger gate re-run when needed)."""
    try:
        return [g.to_dict() for g in _registry.gates_now(challenger, champion)]
    except REFUSALS as exc:
        return [{"name": "unavailable", "passed": False, "detail": str(exc)}]


@st.cache_data(ttl=60, show_spinner=False)
def timeline(_admin: Any, key: tuple[str, int, int, int]) -> list[dict[str, Any]]:
    return list(_admin.timeline())


def flash(message: str) -> None:
    st.session_state[FLASH] = message
    st.rerun()


# -- tables and charts -------------------------------------------------------------------------
def _window(lineage: dict[str, Any]) -> str:
    w = lineage.get("window") or {}
    return f"{str(w.get('from', ''))[:10]} to {str(w.get('to', ''))[:10]}" if w else ""


def versions_frame(rows: list[dict[str, Any]], by: dict[str, str]) -> pd.DataFrame:
    """One row per version, newest first: status, aliases, held-out metrics, gates, lineage."""
    out = []
    for r in reversed(rows):
        m, lin, data = r.get("metrics") or {}, r.get("lineage") or {}, r.get("data") or {}
        failed = [g["name"] for g in r.get("gates", []) if not g.get("passed")]
        out.append({"label": r.get("label"), "state": r.get("state"), "version": r["version"],
                    "cause": (r.get("cause") or {}).get("reason", ""), "aliases": ", ".join(r.get("aliases", [])),
                    "created (UTC)": str(r.get("created_at", ""))[:19].replace("T", " "),
                    "AUC": m.get("auc"), "KS": m.get("ks"), "balanced acc.": m.get("balanced_accuracy"),
                    "gates": "pass" if r.get("gates_passed") else "fail: " + ", ".join(failed),
                    "trained from": lin.get("source") or data.get("source"), "rows": data.get("rows"),
                    "window": _window(lin), "data SHA-256": str(r.get("data_sha256", ""))[:12],
                    "parent champion": lin.get("parent_champion") or (r.get("gates_context") or {}).get(
                        "champion_version"), "created by": lin.get("created_by") or by.get(r["version"]),
                    "intact": r.get("intact")})
    return pd.DataFrame(out)


def comparison_frame(cmp: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for label, key in (("AUC", "auc"), ("KS", "ks"), ("Balanced accuracy (policy cutoff)", "balanced_accuracy"),
                       ("Brier score (calibrated PD)", "brier"), ("Expected calibration error", "ece")):
        rows.append({"metric": label, **{f"{role} {m['version']}": m.get(key)
                                         for role, m in cmp["models"].items()}})
    return pd.DataFrame(rows)


def comparison_chart(cmp: dict[str, Any]) -> go.Figure:
    return calibration_curves({f"{role} {m['version'][-6:]}": m["calibration"]
                               for role, m in cmp["models"].items() if "calibration" in m})


def timeline_chart(events: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for action in dict.fromkeys(e["action"] for e in events):
        sel = [e for e in events if e["action"] == action]
        fig.add_scatter(x=[e["at"] for e in sel], y=[ACTION_LABELS.get(action, action)] * len(sel), mode="markers",
                        name=ACTION_LABELS.get(action, action), marker={"size": 11},
                        text=[f"{e['version']} by {e['by'] or '?'}" for e in sel], hoverinfo="x+text")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      title="Registry events (hover for version and who)")
    return fig


# -- panels (widgets -> ModelAdmin) ----------------------------------------------------------------
def halted_banner(halts: list[Any]) -> None:
    if not halts:
        return
    lines = "\n".join(f"- **{plain(h.rule)}** ({h.status} since {h.opened_at:%Y-%m-%d %H:%M} UTC): {plain(h.message)}"
                      for h in halts)
    st.error(f"**Deployments halted.** No promotion, canary start, step or approval until these alerts are "
             f"resolved on the Alerts page; rollback and abort stay available.\n\n{lines}", icon=":material/block:")


def canary_panel(admin: Any, user: Any, state: dict[str, Any] | None, candidates: list[str], default: str | None,
                 lab: Labels, halted: bool) -> None:
    steps = admin.canary_steps()
    if state:
        c = st.columns(3)
        c[0].metric("Canary version", short_version(state["version"]), help=lab.hover(state["version"]))
        c[1].metric("Share of applications", f"{state['share']}%")
        pending = state.get("pending")
        c[2].metric("Pending step", f"{pending['share']}%" if pending else "none")
        if pending:
            st.markdown(f"Step to **{pending['share']}%** proposed by {plain(pending['proposed_by'])} at "
                        f"{plain(pending['proposed_at'])}; waiting for a risk manager (not the proposer).")
            if pending.get("note"):
                st.text(pending["note"])
        hist = pd.DataFrame(state.get("history", []))
        if not hist.empty:
            st.dataframe(hist, hide_index=True, key="models_canary_history")
    else:
        st.caption(f"No canary is running. Steps: {' → '.join(f'{s}%' for s in steps)}; each step is proposed "
                   "by an ML engineer and approved by a risk manager; 100% makes the version champion.")
    try:
        if allowed(user.role, Perm.MANAGE_MODELS) and not (state and state.get("pending")):
            version = None
            if not state and candidates:
                version = st.selectbox("Version to canary", candidates, format_func=lab, help=HOVER_HELP,
                                       index=candidates.index(default) if default in candidates else 0,
                                       key="models_canary_version")
                st.code(version, language=None)
                if why := lab.blocked(version):
                    st.warning(f"{lab(version)} cannot go to a canary: {'; '.join(why)}. A risk manager may override "
                               "this with a written reason (below); another person then proposes it.")
            note = st.text_input("Note for the reviewer", key="models_canary_note", max_chars=2000)
            label = "Start canary" if not state else "Propose next step"
            if st.button(label, key="models_canary_propose", disabled=halted or (not state and not candidates)):
                s = admin.canary_propose(user, version=version, note=note)
                flash(f"Proposed: {s['version']} from {s['share']}% to {s['pending']['share']}%; a risk manager "
                      "must approve it.")
        if allowed(user.role, Perm.APPROVE_CANARY) and state and state.get("pending"):
            note = st.text_input("Review note (required to reject; at least 10 characters)", key="models_review_note")
            c1, c2 = st.columns(2)
            if c1.button("Approve step", key="models_canary_approve", type="primary", disabled=halted):
                res = admin.canary_review(user, approve=True, note=note)
                flash(f"{res['promoted']['version']} is now the champion (canary completed)." if res["promoted"]
                      else f"The canary now serves {res['share']}% of applications.")
            if c2.button("Reject step", key="models_canary_reject"):
                res = admin.canary_review(user, approve=False, note=note)
                flash(f"Step to {res['share']}% rejected; the share is unchanged.")
        if state and any(allowed(user.role, p) for p in (Perm.MANAGE_MODELS, Perm.APPROVE_CANARY, Perm.ROLLBACK_MODELS)):
            if st.button("Abort canary", key="models_canary_abort"):
                s = admin.canary_abort(user, note="aborted from the registry page")
                flash(f"Canary of {s['version']} aborted; every application goes to the champion.")
    except REFUSALS as exc:
        st.error(str(exc))


def override_panel(admin: Any, user: Any, rows: list[dict[str, Any]], lab: Labels) -> None:
    """A risk manager's written override of a version that failed its gates or was rolled back for cause."""
    blocked = [r["version"] for r in reversed(rows) if r.get("state") not in ("champion", "canary")
               and (r.get("cause") or not r.get("gates_passed")) and not r.get("override")]
    if not allowed(user.role, Perm.APPROVE_CANARY) or not blocked:
        return
    with st.expander(f"Override a blocked version ({len(blocked)}): risk manager, written reason, audited"):
        version = st.selectbox("Blocked version", blocked, format_func=lab, help=HOVER_HELP, key="models_override_to")
        st.caption("Blocked because: " + "; ".join(lab.blocked(version)) + ". After the override another person (an "
                   "ML engineer) may propose it as a canary or promote it; a new rollback for cause voids it.")
        reason = st.text_area("Why it may serve again (at least 20 characters)", key="models_override_reason",
                              max_chars=2000)
        if st.button("Record override", key="models_override"):
            try:
                admin.override(user, version, reason=reason)
            except REFUSALS as exc:
                st.error(str(exc))
            else:
                flash(f"Override of {lab(version)} recorded; another person may now propose it as a canary.")


def rollback_panel(admin: Any, user: Any, targets: list[str], lab: Labels) -> None:
    if not allowed(user.role, Perm.ROLLBACK_MODELS):
        st.caption("An ML engineer or a risk manager can roll back.")
        return
    if not targets:
        st.caption("No earlier champion (that was not rolled back for cause) to roll back to.")
        return
    target = st.selectbox("Roll back to (an earlier champion that was not rolled back for cause)", targets,
                          format_func=lab, help=HOVER_HELP, key="models_rollback_to")
    st.code(target, language=None)
    note = st.text_input("Why (kept in the audit trail)", key="models_rollback_note", max_chars=2000)
    for_cause = st.checkbox(f"For cause: the current champion must not serve again without a risk manager's "
                            f"override ({ROLLED_BACK})", key="models_rollback_for_cause")
    cause = st.text_input("Cause (at least 20 characters)", key="models_rollback_cause",
                          max_chars=2000) if for_cause else None
    sure = st.checkbox(f"I confirm: make {lab(target)} the champion now, abort any canary", key="models_rollback_ok")
    if st.button("Roll back", key="models_rollback", type="primary", disabled=not sure):
        try:
            done = admin.rollback(user, to=target, note=note or None, cause=cause)
        except REFUSALS as exc:
            st.error(str(exc))
        else:
            flash(f"Rolled back: {done} is the champion ({admin.last_rollback_seconds:.2f} s, cached scores of the "
                  "previous champion purged).")


def retrain_panel(svc: Any, user: Any, retrain: Any, error: type[Exception]) -> None:
    if not allowed(user.role, Perm.MANAGE_MODELS):
        st.caption("An ML engineer can retrain.")
        return
    months = st.number_input("Window (months of applications with known outcomes)", 1, 120,
                             svc.settings.monitoring.retrain_window_months, key="models_retrain_months")
    st.caption("Only funded loans have outcomes, so the model learns from the funded population (selection bias; "
               "stated in the report). The new version is registered as the challenger; nothing is promoted.")
    if st.button("Retrain now", key="models_retrain"):
        with st.status("Retraining on the book…", expanded=True) as status:
            bar = st.progress(0.0, text="reading the book")
            try:
                rep = retrain(user, months=int(months),
                              progress=lambda step, done, total: bar.progress(done / total, text=step))
            except error as exc:
                status.update(label="Retraining refused", state="error")
                st.error(str(exc))
                return
            status.update(label=f"Registered {rep['version']}", state="complete")
        flash(f"Registered challenger {rep['version']} in {rep['timings']['total_s']:.0f} s: held-out AUC "
              f"{rep['metrics']['auc']:.3f}, gates {'passed' if rep['gates_passed'] else 'FAILED'}. "
              + rep["selection_bias"])


# -- one version's held-out report (the page's original content) ------------------------------------
def version_details(report: dict[str, Any]) -> None:
    ev, m = report["evaluation"], report["metrics"]
    ds = ev["dataset"]
    st.caption(f"Trained on {ds['rows']:,} rows ({plain(ds['source'])}, positive rate {ds['positive_rate']:.2%}); data "
               f"SHA-256 {ds['sha256'][:16]}…; code {report.get('code_version')}; created {report['created_at']}. "
               "All metrics below are measured on the held-out test split, never on training rows.")
    folds = ev.get("params", {}).get("cv_folds", "k")
    c = st.columns(3)
    c[0].metric("AUC", f"{m['auc']:.3f}", help="Held-out test split")
    c[1].metric("Gini", f"{m['gini']:.3f}")
    c[2].metric("KS", f"{m['ks']:.3f}")
    c = st.columns(3)
    c[0].metric("Balanced accuracy", f"{m['balanced_accuracy']:.3f}", help="At the policy cutoff")
    c[1].metric("CV AUC", f"{m['cv_auc_mean']:.3f} ± {m['cv_auc_std']:.3f}", help=f"{folds}-fold on the training part")
    c[2].metric("Logistic baseline AUC", f"{m['baseline_auc']:.3f}", help="Plain logistic regression, same split")
    st.subheader("Gates")
    gates = pd.DataFrame(report["gates"])
    if not gates.empty:
        gates["passed"] = gates["passed"].map({True: "pass", False: "FAIL"})
        st.dataframe(gates[[c for c in ("name", "passed", "value", "threshold", "detail") if c in gates]],
                     hide_index=True)
    st.caption("Disparate impact below 0.80 is an internal screening threshold (the four-fifths rule), not a legal "
               "finding.")
    left, right = st.columns(2)
    with left:
        st.subheader("Calibration")
        cal = ev["calibration"]["primary"]
        st.plotly_chart(calibration_curves({"raw ensemble score": cal["curve_before"],
                                            "calibrated PD": cal["curve_after"]}), key="models_calibration")
        st.caption(f"{cal['method'].capitalize()} calibration fitted on {cal['fitted_on']}. Brier score "
                   f"{cal['brier_before']:.4f} → {cal['brier_after']:.4f}; expected calibration error "
                   f"{cal['curve_before']['ece']:.3f} → {cal['curve_after']['ece']:.3f}.")
    with right:
        st.subheader("Confusion matrix at the policy cutoff")
        cm = ev["test"]["primary"]["confusion"]
        st.dataframe(pd.DataFrame({"predicted high risk": [cm["tp"], cm["fp"]], "predicted low risk": [cm["fn"], cm["tn"]]},
                                  index=["defaulted", "repaid"]))
        st.caption(f"Cutoff {cm['cutoff']} on the ensemble score: approval rate {cm['approval_rate']:.1%}, "
                   f"default rate among approved {cm['default_rate_approved']:.2%}.")
        fid = ev.get("fidelity", {})
        if fid:
            st.caption(f"Compiled scorer vs scikit-learn on {fid['rows']:,} held-out rows: max |Δp| "
                       f"{fid['max_abs_diff']['primary']:.1e} (primary), {fid['max_abs_diff']['fallback']:.1e} (fallback).")
    st.subheader("Fairness on the held-out split")
    st.caption("Approval rate: share scored low risk. TPR: share of applicants who defaulted that the model flagged high "
               "risk. FPR: share of applicants who repaid that the model flagged high risk (good applicants turned "
               "away). Disparate impact: lowest group approval rate / highest, among groups of at least 30 applicants.")
    for attr, f in ev["test"]["primary"].get("fairness", {}).items():
        groups = pd.DataFrame(f.get("groups", {})).T.reset_index(names="group")
        di, ci = f.get("disparate_impact"), f.get("disparate_impact_ci") or [None, None]
        di_txt = f"{di:.3f}" if di is not None else "not measurable"
        ci_txt = f" (95% bootstrap CI {ci[0]:.3f}–{ci[1]:.3f})" if ci[0] is not None else ""
        st.markdown(f"**{plain(attr.replace('_', ' '))}**: disparate impact {di_txt}{ci_txt}; least approved "
                    f"{plain(f.get('least_approved_group'))}, most approved {plain(f.get('most_approved_group'))}; "
                    f"TPR gap {f.get('tpr_gap') or 0:.3f}, FPR gap {f.get('fpr_gap') or 0:.3f}")
        st.dataframe(groups, hide_index=True, column_config={
            "n": st.column_config.NumberColumn("applicants", format="%d"), "approval_rate": PCT,
            "tpr": st.column_config.NumberColumn("TPR", format="percent"),
            "fpr": st.column_config.NumberColumn("FPR", format="percent")})


_VERSION = re.compile(r"^v(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})\d+-([0-9a-f]+)$")


def short_version(version: str | None) -> str:
    """``v20261124-042157041-49a126`` -> ``2026-11-24 04:21 · 49a1`` (fits a metric tile; the full id is in its help)."""
    if not version:
        return "none"
    m = _VERSION.match(version)
    return f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]} · {m[6][:4]}" if m else version
