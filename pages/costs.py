"""Costs: what a scoring request, a decision and a funded loan cost, component by component, from the
usage records and the configured price table; cache savings, the monthly trend with a projection,
what-if scenarios computed from the actual usage, and the per-request alert threshold."""

from __future__ import annotations

import streamlit as st

from app.components import cost_views as v
from app.guard import history_key, label_simulated, require
from app.services import get_services
from backend.analytics import COMPONENTS, CostReport, Scenario, what_if
from backend.domain import Perm

user = require(Perm.VIEW_COSTS)
st.title("Costs")
label_simulated()
ALL = "All months"


@st.cache_data(ttl=300, show_spinner="Adding up the usage records…")
def load_report(history: str) -> CostReport:
    return get_services().costs.report()


report = load_report(history_key())
c = report.settings
with st.expander("Price table in use", icon=":material/sell:"):
    st.caption(v.PRICE_NOTE)
    prices = v.price_frame(c, report.llm_prices)
    v.table(prices, "the price table", "costs_prices", column_config={"price": v.PRICE})
if not report.months or report.total is None:
    st.info("No usage recorded yet: costs appear here once applications are scored.")
    st.stop()

months = [x.month for x in report.months]
complete = [x.month for x in report.months if not x.partial and x.breakdown.usage.requests] or [ALL]
options = [ALL, *reversed(months)]
choice = st.selectbox("Period", options, index=options.index(complete[-1]), key="costs_period",
                      help="Calendar months (UTC) with recorded activity; the month in progress is billed up to now.")
picked = report.month(choice)
b = report.total if picked is None else picked.breakdown
units = report.total_units if picked is None else picked.units
assert units is not None
u = b.usage

cols = st.columns(4)
cols[0].metric("Total cost", v.usd(b.total), help=f"{u.start:%Y-%m-%d} to {u.end:%Y-%m-%d %H:%M} UTC")
limit = get_services().settings.monitoring.thresholds.cost_per_request_max_usd  # the cost alert's own setting
cols[1].metric("Per scoring request", v.usd(b.per_request, 4), help=f"{u.requests:,} scoring requests in {choice}; "
               "the alert judges the last 30 days (below)")
cols[2].metric("Per final decision", v.usd(b.per_decision, 4), help=f"{u.decisions:,} final decisions")
cols[3].metric("Per funded loan", v.usd(b.per_funded, 4),
               help=f"{u.funded:,} funded loans (outcomes imported so far, by the month of the decision)")

# -- the alert threshold: the rule's own figure (CostService.recent) ---------------------------------------
recent = report.recent
current = recent.per_request
where = f"the last 30 days ({recent.usage.start:%Y-%m-%d} to {recent.usage.end:%Y-%m-%d}, {recent.usage.requests:,} requests)"
if current is None:
    st.info(f"Cost alert: no scoring requests in {where}; the threshold is {v.usd(limit)} per request.",
            icon=":material/notifications:")
elif current > limit:
    st.warning(f"Cost alert: {v.usd(current, 4)} per scoring request over {where} is above the {v.usd(limit)} "
               "threshold (CREDITRISK_MONITORING__THRESHOLDS__COST_PER_REQUEST_MAX_USD).",
               icon=":material/notifications_active:")
else:
    st.success(f"Cost alert: {v.usd(current, 4)} per scoring request over {where}, below the {v.usd(limit)} "
               "threshold (CREDITRISK_MONITORING__THRESHOLDS__COST_PER_REQUEST_MAX_USD).", icon=":material/notifications:")

# -- components ---------------------------------------------------------------------------------------
st.subheader(f"Cost per component: {choice}")
lines = v.lines_frame(b)
v.table(lines, "the cost lines", "costs_lines", column_config={"USD": v.MONEY})
for note in b.notes:
    st.caption(note)
st.caption("Serving and database bill every hour of the period, busy or idle; storage is the database and model "
           "registry size measured now; LLM lines are the recorded cost_usd, or tokens x the price table when a "
           "cost is missing. Stored-explanation views make no LLM call and cost nothing.")
unit = v.unit_frame(b)
v.table(unit, "the unit costs", "costs_units", column_config={"USD each": v.UNIT_MONEY})

# -- caches -------------------------------------------------------------------------------------------
st.subheader("Caches and what they saved")
cache = v.cache_frame(b, units)
v.table(cache, "the cache table", "costs_cache",
        column_config={"hit rate": v.PCT, "cost of a miss": v.UNIT_MONEY, "cost of a hit": v.UNIT_MONEY,
                       "saving": v.MONEY})
per_prediction = v.prediction_cost_frame(units)
v.table(per_prediction, "the cost per prediction", "costs_prediction",
        column_config={k: v.UNIT_MONEY for k in ("marginal USD", "fixed share USD", "all-in USD")})
st.caption("Saving = hits x (what a miss costs - what a hit costs). A scoring miss costs its model time priced as "
           "serverless compute (on instances billed by the hour the marginal cost is that small); an explanation "
           "miss costs the LLM calls behind it (timeouts and fallbacks included). The fixed share spreads the "
           "period's hourly and monthly costs over its scoring requests.")

# -- trend and projection -----------------------------------------------------------------------------------
st.subheader("Monthly trend and projection")
st.plotly_chart(v.trend_figure(report), key="costs_trend_chart")
trend = v.trend_frame(report)
v.table(trend, "the monthly trend", "costs_trend",
        column_config={k: v.MONEY for k in (*COMPONENTS, "total", "low", "high")} | {"per request": v.UNIT_MONEY})
if report.projection:
    st.caption(f"Projection (an estimate): {report.projection.explanation}")

# -- what-if --------------------------------------------------------------------------------------------
st.subheader(f"What if: {choice}")
w1, w2, w3 = st.columns(3)
serverless = w1.toggle("Serverless inference instead of instances", key="costs_serverless")
hit_rate = w2.slider("LLM answer cache hit rate", 0.0, 0.9, 0.2, 0.05, format="%.2f", key="costs_llm_cache",
                     help="Share of the recorded LLM calls an answer cache would serve (0 switches it off).")
reserved = w3.toggle(f"Reserved database instances ({c.database_reserved_discount:.0%} off)", key="costs_reserved")
scenario = Scenario(serverless=serverless, llm_cache_hit_rate=hit_rate, reserved_database=reserved)
result = what_if(report.breakdowns if picked is None else [b], scenario, c)
st.metric("Saving", v.usd(result.saving), help=f"{v.usd(result.total_before)} -> {v.usd(result.total_after)}")
effect = v.what_if_frame(result)
v.table(effect, "the what-if table", "costs_whatif", column_config={k: v.MONEY for k in ("before", "after", "saving")})
st.caption("Each effect is computed from this period's records: serverless bills the recorded uncached model-scoring "
           "time as GB-seconds (cold starts and per-invocation minimums are not modelled), the answer cache removes "
           "its share of the recorded LLM calls and their recorded costs, reserved instances discount the "
           "database line only.")
