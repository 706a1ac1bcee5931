"""Tables, charts and downloads for the latency and cost pages (data in, frames and figures out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend.analytics import (
    COMPONENTS,
    Breakdown,
    CostReport,
    CostSettings,
    LatencyFigure,
    LatencyRow,
    UnitCosts,
    WhatIf,
)
from backend.domain import safe_csv_text
from backend.explanations import ModelPrice

PRICE_NOTE = ("Example list prices; configure with CREDITRISK_COSTS__<NAME> (e.g. "
              "CREDITRISK_COSTS__SERVING_INSTANCE_HOUR=0.23) and LLM token prices with CREDITRISK_LLM__PRICES (JSON).")
PRICE_ROWS = (  # field, what, unit
    ("serving_instance_hour", "Model serving: real-time endpoint", "USD per instance-hour"),
    ("serving_instances", "Model serving: instances", "instances"),
    ("serverless_gb_second", "Serverless inference (what-if)", "USD per GB-second"),
    ("serverless_memory_gb", "Serverless inference memory", "GB"),
    ("lambda_request", "Lambda", "USD per request"),
    ("lambda_gb_second", "Lambda", "USD per GB-second"),
    ("lambda_memory_gb", "Lambda memory", "GB"),
    ("database_instance_hour", "Database (on demand)", "USD per instance-hour"),
    ("database_reserved_discount", "Database reserved-instance discount (what-if)", "share"),
    ("storage_gb_month", "Storage", "USD per GB-month"),
    ("cache_instance_hour", "Cache (Redis only)", "USD per instance-hour"),
    ("monitoring_month", "Monitoring", "USD per month"),
)
MONEY = st.column_config.NumberColumn(format="$%.2f")
UNIT_MONEY = st.column_config.NumberColumn(format="$%.6f")
MS = st.column_config.NumberColumn(format="%.1f")
MS_PERCENTILES = {k: MS for k in ("mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms")}
PCT = st.column_config.NumberColumn(format="percent")
PRICE = st.column_config.NumberColumn(format="%g")
PROVIDER_NAMES = {"cache (explanation)": "stored explanation (cache, explanation)"}


def usd(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    if x == 0 or abs(x) >= 10 ** -digits:
        return f"${x:,.{digits}f}"
    return f"${x:.2e}"


def download(df: pd.DataFrame, name: str, key: str) -> None:
    """A CSV download of ``df`` (cells that spreadsheets would execute are quoted)."""
    data = safe_csv_text(df.to_dict("records"), list(df.columns))
    st.download_button(f"Download {name} (CSV)", data, file_name=f"{key}.csv", mime="text/csv", key=key)


def table(df: pd.DataFrame, name: str, key: str, column_config: dict[str, Any] | None = None) -> None:
    """A table and its CSV download (keys ``<key>_table`` and ``<key>``): every table on these pages has both."""
    st.dataframe(df, hide_index=True, key=f"{key}_table", column_config=column_config)
    download(df, name, key)


# -- latency ---------------------------------------------------------------------------------------
def seconds(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def latency_help(f: LatencyFigure) -> str:
    """The figure's interval, count and window, for a metric's help."""
    if not f.n:
        return f"no final decisions in {f.period}"
    low, high = ("unbounded" if x is None else f"{x:.2f} s" for x in (f.low_s, f.high_s))
    return f"95% interval {low} to {high}; {f.n:,} final decisions, {f.period}."


def latency_figures_frame(figures: Sequence[LatencyFigure]) -> pd.DataFrame:
    """End-to-end p95 figures (one per phase and arm) with their intervals, in seconds."""
    return pd.DataFrame([{"phase": f.phase or "all", "arm": f.arm or "all", "final decisions": f.n,
                          "p95 s": f.p95_s, "interval low s": f.low_s, "interval high s": f.high_s} for f in figures])


def latency_frame(rows: Sequence[LatencyRow], *, group_title: str = "group") -> pd.DataFrame:
    return pd.DataFrame([{
        "measure": r.name,
        group_title: "all" if r.grouping == "all" else PROVIDER_NAMES.get(r.group, r.group), "n": r.n, "mean ms": r.mean_ms,
        "p50 ms": r.p50_ms, "p95 ms": r.p95_ms, "p99 ms": r.p99_ms, "max ms": r.max_ms,
        **({"share over target": r.over_target} if r.over_target is not None else {})} for r in rows])


def e2e_distribution(quantiles: Sequence[tuple[float, float]], target_s: float) -> go.Figure:
    """End-to-end latency quantiles (share of decisions at or below a latency) against the target.

    The target is drawn as a trace, not a shape with an annotation: on a log axis plotly reads an
    annotation's position as a power of ten and would stretch the axis."""
    fig = go.Figure(go.Scatter(x=[ms / 1000 for _, ms in quantiles], y=[q for q, _ in quantiles],
                               mode="lines+markers", name="decisions", hovertemplate="%{y:.1%} within %{x:.3g} s"))
    fig.add_scatter(x=[target_s, target_s], y=[0, 1], mode="lines", name=f"p95 target {target_s:g} s",
                    line={"dash": "dash", "color": "#c62828"})
    fig.add_hline(y=0.95, line_dash="dot", line_color="#9aa5b1")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_type="log",
                      xaxis_title="End-to-end latency (s, log scale)", yaxis_title="Share of decisions (dotted: 95%)",
                      yaxis_tickformat=".0%", legend={"orientation": "h", "y": 1.15})
    return fig


def latency_trend(e2e: Sequence[LatencyRow], request: Sequence[LatencyRow], target_s: float) -> go.Figure:
    fig = go.Figure()
    months: list[str] = []
    for rows, name in ((e2e, "end to end"), (request, "scoring request")):
        rows = [r for r in rows if r.grouping == "month"]
        months += [r.group for r in rows]
        for col, dash in (("p50_ms", "dot"), ("p95_ms", "solid")):
            fig.add_scatter(x=[r.group for r in rows], y=[getattr(r, col) / 1000 for r in rows], mode="lines+markers",
                            name=f"{name} {col[:3]}", line={"dash": dash})
    span = sorted(set(months))
    if span:
        fig.add_scatter(x=[span[0], span[-1]], y=[target_s, target_s], mode="lines", name=f"target {target_s:g} s",
                        line={"dash": "dash", "color": "#c62828"})
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_type="log",
                      yaxis_title="Seconds (log scale)", legend={"orientation": "h", "y": 1.15},
                      xaxis={"type": "category", "title": "Month scored", "categoryorder": "category ascending"})
    return fig


# -- prices and components --------------------------------------------------------------------------
def price_frame(c: CostSettings, prices: Mapping[str, ModelPrice]) -> pd.DataFrame:
    rows = [{"item": what, "price": float(getattr(c, f)), "unit": unit, "setting": f"CREDITRISK_COSTS__{f.upper()}"}
            for f, what, unit in PRICE_ROWS]
    for model, p in sorted(prices.items()):
        rows += [{"item": f"LLM {model} input", "price": p.input_per_mtok, "unit": "USD per 1M tokens",
                  "setting": "CREDITRISK_LLM__PRICES"},
                 {"item": f"LLM {model} output", "price": p.output_per_mtok, "unit": "USD per 1M tokens",
                  "setting": "CREDITRISK_LLM__PRICES"}]
    return pd.DataFrame(rows)


def lines_frame(b: Breakdown) -> pd.DataFrame:
    return pd.DataFrame([{"component": x.component, "detail": x.detail, "USD": x.usd, "how": x.basis}
                         for x in b.lines])


def unit_frame(b: Breakdown) -> pd.DataFrame:
    u = b.usage
    return pd.DataFrame([{"per": name, "count": n, "USD each": b.per(n)} for name, n in (
        ("scoring request", u.requests), ("final decision", u.decisions), ("funded loan", u.funded))])


def cache_frame(b: Breakdown, units: UnitCosts) -> pd.DataFrame:
    u = b.usage
    return pd.DataFrame([
        {"cache": "scoring (model results)", "hits": u.cached_requests, "lookups": u.requests,
         "hit rate": units.scoring_hit_rate, "cost of a miss": units.scoring_uncached,
         "cost of a hit": units.scoring_cached, "saving": units.scoring_cache_saving},
        {"cache": "explanations (stored text)", "hits": u.explanations_cached,
         "lookups": u.explanations_cached + u.explanations_llm, "hit rate": units.explanation_hit_rate,
         "cost of a miss": units.explanation_llm, "cost of a hit": units.explanation_cached,
         "saving": units.explanation_cache_saving}])


def prediction_cost_frame(units: UnitCosts) -> pd.DataFrame:
    fixed = units.fixed_per_request
    return pd.DataFrame([
        {"prediction": "uncached (model scored, explanation by an LLM)",
         "marginal USD": (units.scoring_uncached or 0.0) + (units.explanation_llm or 0.0),
         "fixed share USD": fixed, "all-in USD": units.uncached_prediction},
        {"prediction": "cached (cache read, stored explanation)",
         "marginal USD": (units.scoring_cached or 0.0) + units.explanation_cached,
         "fixed share USD": fixed, "all-in USD": units.cached_prediction}])


# -- trend and what-if --------------------------------------------------------------------------------
def trend_frame(r: CostReport) -> pd.DataFrame:
    rows = [{"month": x.month, "kind": "in progress" if x.partial else "actual", "requests": x.breakdown.usage.requests,
             **{k: v for k, v in x.breakdown.by_component.items()}, "total": x.breakdown.total,
             "per request": x.breakdown.per_request, "low": None, "high": None} for x in r.months]
    if r.total is not None:
        rows.append({"month": "all months", "kind": "total", "requests": r.total.usage.requests,
                     **r.total.by_component, "total": r.total.total, "per request": r.total.per_request})
    for p in r.projection.months if r.projection else ():
        rows.append({"month": p.month, "kind": "projection (estimate)", "requests": round(p.requests), "total": p.usd,
                     "per request": p.usd / p.requests if p.requests else None, "low": p.usd_low, "high": p.usd_high})
    return pd.DataFrame(rows)


def trend_figure(r: CostReport) -> go.Figure:
    fig = go.Figure()
    months = [x.month for x in r.months]
    for comp in COMPONENTS:
        ys = [x.breakdown.component(comp) for x in r.months]
        if any(ys):
            fig.add_bar(x=months, y=ys, name=comp)
    if r.projection:
        p = r.projection.months
        fig.add_scatter(x=[x.month for x in p], y=[x.usd for x in p], mode="lines+markers", name="projection (estimate)",
                        line={"dash": "dash", "color": "#1f5f8b"},
                        error_y=None if p[0].usd_high is None else {
                            "type": "data", "symmetric": False, "array": [(x.usd_high or x.usd) - x.usd for x in p],
                            "arrayminus": [x.usd - (x.usd_low or x.usd) for x in p]})
    fig.update_layout(barmode="stack", height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="USD",
                      xaxis={"type": "category", "title": "Month"}, legend={"orientation": "h", "y": 1.15})
    return fig


def what_if_frame(w: WhatIf) -> pd.DataFrame:
    rows = [{"component": k, "before": w.before[k], "after": w.after[k], "saving": w.before[k] - w.after[k],
             "how": w.explanation.get(k, "unchanged")} for k in COMPONENTS]
    rows.append({"component": "total", "before": w.total_before, "after": w.total_after, "saving": w.saving, "how": ""})
    return pd.DataFrame(rows)
