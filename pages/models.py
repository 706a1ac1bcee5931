"""Model registry (ML engineer, risk manager): versions, held-out metrics, calibration, fairness, gates."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.charts import calibration_curves
from app.guard import label_simulated, require
from app.services import get_services
from backend.permissions import Perm

user = require(Perm.VIEW_MODELS)
svc = get_services()
registry = svc.models.registry()

st.title("Model registry")
label_simulated()
rows = registry.list()
if not rows:
    st.info("No model is registered yet. Train one with `creditrisk train` (the demo does this on `make run`).")
    st.stop()

table = pd.DataFrame([{
    "version": r["version"], "status": r.get("status"), "aliases": ", ".join(r.get("aliases", [])),
    "AUC": (r.get("metrics") or {}).get("auc"), "KS": (r.get("metrics") or {}).get("ks"),
    "gates": "pass" if r.get("gates_passed") else "fail", "artifacts intact": r.get("intact"),
    "created (UTC)": str(r.get("created_at", ""))[:19]} for r in reversed(rows)])
st.dataframe(table, hide_index=True, column_config={"AUC": st.column_config.NumberColumn(format="%.3f"),
                                                    "KS": st.column_config.NumberColumn(format="%.3f")})
if not all(r.get("intact") for r in rows):
    st.error("At least one version failed its SHA-256 check; it will not be served.")

versions = [r["version"] for r in reversed(rows)]
champion = registry.aliases().get("champion")
version = st.selectbox("Version", versions, index=versions.index(champion) if champion in versions else 0,
                       key="models_version")
report = registry.report(version)
ev, m = report["evaluation"], report["metrics"]
ds = ev["dataset"]
st.caption(f"Trained on {ds['rows']:,} rows ({ds['source']}, positive rate {ds['positive_rate']:.2%}); "
           f"data SHA-256 {ds['sha256'][:16]}…; code {report.get('code_version')}; created {report['created_at']}. "
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
    st.dataframe(gates[[c for c in ("name", "passed", "value", "threshold", "detail") if c in gates]], hide_index=True)
st.caption("Disparate impact below 0.80 is an internal screening threshold (the four-fifths rule), not a legal finding.")

left, right = st.columns(2)
with left:
    st.subheader("Calibration")
    cal = ev["calibration"]["primary"]
    st.plotly_chart(calibration_curves({"raw ensemble score": cal["curve_before"], "calibrated PD": cal["curve_after"]}))
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
           "risk. FPR: share of applicants who repaid that the model flagged high risk (good applicants turned away). "
           "Disparate impact: lowest group approval rate / highest, among groups of at least 30 applicants.")
for attr, f in ev["test"]["primary"].get("fairness", {}).items():
    groups = pd.DataFrame(f.get("groups", {})).T.reset_index(names="group")
    pct = st.column_config.NumberColumn(format="percent")
    di, ci = f.get("disparate_impact"), f.get("disparate_impact_ci") or [None, None]
    st.markdown(f"**{attr.replace('_', ' ')}**: disparate impact {di:.3f} (95% bootstrap CI {ci[0]:.3f}–{ci[1]:.3f}); "
                f"least approved {f.get('least_approved_group')}, most approved {f.get('most_approved_group')}; "
                f"TPR gap {f.get('tpr_gap', 0):.3f}, FPR gap {f.get('fpr_gap', 0):.3f}")
    st.dataframe(groups, hide_index=True, column_config={
        "n": st.column_config.NumberColumn("applicants", format="%d"), "approval_rate": pct,
        "tpr": st.column_config.NumberColumn("TPR", format="percent"),
        "fpr": st.column_config.NumberColumn("FPR", format="percent")})
