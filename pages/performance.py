"""Realized performance by origination vintage: AUC, KS, bad rate, balanced accuracy, calibration,
with estimates from the calibrated PDs before a vintage matures. Reads stored snapshots only."""

from __future__ import annotations

import streamlit as st

from app.guard import label_simulated, require
from app.services import get_services
from backend.domain import Perm
from backend.monitoring import (
    ARM_LABELS,
    PERCENT_COLUMNS,
    Snapshot,
    arm_comparison_frame,
    bad_rate_chart,
    calibration_chart,
    calibration_summary,
    discrimination_chart,
    export_csv,
    version_chart,
    version_frame,
    version_table,
    vintage_frame,
    vintage_table,
)

NO_SNAPSHOTS = ("No realized-performance summaries yet. They are computed from the book by `creditrisk monitor run` "
                "(schedule it, e.g. nightly with cron) or right now with **Recompute now**.")
SELECTION_BIAS = (
    "**Selection bias.** Outcomes exist only for funded loans: denied applications never get one and are not "
    "imputed, so every figure here describes the model on the loans that were funded. In the AI arm the model's "
    "own recommendation shaped who was funded, which narrows the scores it is judged on; in the control arm "
    "officers decided without the model (which still scored every application), so the control arm is the less "
    "biased comparison of how well the model ranks risk.")
ARMS = ("all", "ai", "control")

user = require(Perm.VIEW_MONITORING)
svc = get_services()
st.title("Realized performance")
label_simulated()


@st.cache_data(ttl=60, show_spinner=False)
def _snapshots() -> list[Snapshot]:
    return get_services().performance.snapshots()


if flash := st.session_state.pop("performance_flash", None):
    st.success(flash)
snaps = _snapshots()
top = st.columns([4, 1], vertical_alignment="center")
if snaps:
    pl = snaps[-1].payload
    top[0].caption(f"As of {pl['as_of'][:16].replace('T', ' ')} UTC (computed {snaps[-1].computed_at:%Y-%m-%d %H:%M} "
                   f"UTC). A vintage is mature {pl['maturity_months']} months after its month ends; before "
                   "that its figures are to date and its bad rate is an **estimate** from the calibrated PDs.")
else:
    top[0].info(NO_SNAPSHOTS, icon=":material/info:")
if top[1].button("Recompute now", key="performance_recompute", icon=":material/refresh:"):
    try:
        with st.spinner("Recomputing every vintage from the book…"):
            count = svc.performance.refresh()
    except Exception as exc:  # noqa: BLE001 - one line on the page instead of a traceback
        st.error(f"Recompute failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    else:
        _snapshots.clear()
        st.session_state["performance_flash"] = f"Recomputed {count} vintage(s) from the book."
        st.rerun()
if not snaps:
    st.stop()

st.warning(SELECTION_BIAS, icon=":material/filter_alt:")
by_arm = {arm: vintage_table(snaps, arm) for arm in ARMS}
arm = st.radio("Loans", ARMS, format_func=ARM_LABELS.__getitem__, horizontal=True, key="performance_arm")
rows = by_arm[arm]
st.subheader("By origination vintage")
fmt = {c: st.column_config.NumberColumn(format="percent") for c in PERCENT_COLUMNS}
fmt |= {c: st.column_config.NumberColumn(format="%.3f") for c in ("AUC", "KS", "Balanced accuracy", "Accuracy",
                                                                   "Brier", "Observed / expected")}
st.dataframe(vintage_frame(rows), hide_index=True, column_config=fmt, key="performance_table")
st.caption("Status *estimate*: the vintage is not mature, so its observed bad rate and figures are to date "
           "(defaults still to come) and the expected bad rate from the PDs is the estimate, with the range "
           "chance alone allows if the PDs are right. Accuracy and balanced accuracy use the model's class "
           "(high risk = predicted default).")
st.download_button("Download CSV (all arms)", data=export_csv(by_arm), file_name="realized_performance.csv",
                   mime="text/csv", key="performance_csv", icon=":material/download:")

summary = calibration_summary(snaps, arm)
if summary is None:
    st.caption("No mature vintage yet: the PDs' calibration cannot be checked against realized defaults.")
else:
    ratio, z = summary["ratio"], summary["z"]
    verdict = ("within what chance allows" if ratio is None or z is None or abs(z) <= 1.96 else
               f"the PDs {'over' if ratio < 1 else 'under'}state realized defaults by about {abs(1 - ratio):.0%}")
    st.info(f"**How far to trust the estimates.** On the mature vintages ({', '.join(summary['vintages'])}; "
            f"{summary['n']:,} funded loans) {summary['observed']:.2%} defaulted against {summary['expected']:.2%} "
            f"expected from the PDs (observed / expected {ratio or float('nan'):.2f}, z = {z or 0:.1f}): "
            f"{verdict}. Read the estimates of immature vintages with that in mind.", icon=":material/rule:")

VIEWS = ("AUC and KS by arm", "Bad rate: observed vs expected", "Calibration", "By model version")
view = st.radio("Show", VIEWS, horizontal=True, key="performance_view")  # one chart at a time: a light page
if view == VIEWS[0]:
    st.plotly_chart(discrimination_chart(by_arm), key="performance_auc")
    st.caption("Filled markers: mature vintages; open markers: to date. The control arm (officers decided without "
               "the model) is the less biased test of the model's ranking; in the AI arm the model's recommendation "
               "shaped who was funded. Intervals: Hanley-McNeil approximation.")
    st.dataframe(arm_comparison_frame(by_arm), hide_index=True, key="performance_arms",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("AUC control arm",
                                                                                         "AUC AI arm")})
elif view == VIEWS[1]:
    st.plotly_chart(bad_rate_chart(by_arm), key="performance_badrate")
elif view == VIEWS[2]:
    mature = [s for s in snaps if s.payload.get("mature") and s.payload["arms"].get(arm, {}).get("calibration")]
    if not mature:
        st.caption("No mature vintage with outcomes for these loans yet.")
    else:
        pick = st.selectbox("Mature vintage", [s.period for s in mature], index=len(mature) - 1,
                            key="performance_cal_vintage")
        group = next(s for s in mature if s.period == pick).payload["arms"][arm]
        st.plotly_chart(calibration_chart(group["calibration"], f"{pick}, {ARM_LABELS[arm].lower()}"),
                        key="performance_calibration")
        st.caption(f"{group['n']:,} funded loans with an outcome in PD-ordered bins; bars are 95% intervals.")
else:
    versions = version_table(snaps)
    if not versions:
        st.caption("Each vintage was scored by a single model version: nothing to compare.")
    else:
        pick = st.selectbox("Vintage", sorted({r["vintage"] for r in versions}), key="performance_ver_vintage")
        chosen = [r for r in versions if r["vintage"] == pick]
        try:
            champion = svc.models.resolve("champion")
        except Exception:  # noqa: BLE001 - no registry: the table still stands
            champion = None
        for r in chosen:
            r["role now"] = "current champion" if r["model_version"] == champion else ""
        st.dataframe(version_frame(chosen), hide_index=True, key="performance_versions", column_config=fmt)
        st.plotly_chart(version_chart(chosen), key="performance_version_chart")
        st.caption(("Mature vintage. " if chosen[0]["mature"] else "Not mature: figures to date. ") +
                   "Each application was scored by the version serving that day, so the versions were judged on "
                   "different applications and days (a version that served during an incident saw its data).")
