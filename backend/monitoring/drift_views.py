"""Plotly builders of the drift page (pure: data in, figure out). PSI bands: below ``watch`` stable,
``watch``-``act`` watch, above ``act`` act; the same three colours everywhere on the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from backend.domain import safe_csv_text

BAND_COLORS = {"stable": "#2e7d32", "watch": "#f9a825", "act": "#c62828", "n/a": "#9aa5b1"}
SCORE_COLOR, MAX_COLOR = "#1f5f8b", "#c62828"
_MARGIN = dict(l=10, r=10, t=30, b=10)


def psi_csv(table: pd.DataFrame) -> str:
    """The PSI table (feature x period, every feature) as spreadsheet-safe CSV, six decimals."""
    rows = table.round(6).astype(object).where(table.notna(), "").reset_index(names="feature")
    return safe_csv_text(rows.to_dict("records"), ["feature", *map(str, table.columns)])


def heatmap_rows(table: pd.DataFrame, score_label: str, top: int = 20) -> pd.DataFrame:
    """The score row, then the ``top`` features by their highest PSI over the periods."""
    features = table.drop(index=[score_label], errors="ignore")
    order = features.max(axis=1).sort_values(ascending=False).head(top).index
    rows = ([score_label] if score_label in table.index else []) + list(order)
    return table.loc[rows]


def heatmap(table: pd.DataFrame, *, watch: float, act: float) -> go.Figure:
    """Periods (x) by features (y), coloured by band; the colour scale stops at twice ``act``."""
    zmax = 2 * act
    z = table.to_numpy(dtype=float)
    w, a = watch / zmax, act / zmax
    scale = [[0.0, "#c8e6c9"], [w, "#66bb6a"], [w, "#fff59d"], [a, "#f9a825"], [a, "#ef9a9a"], [1.0, "#b71c1c"]]
    text = np.where(np.isnan(z), "", np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(z)))
    fig = go.Figure(go.Heatmap(
        z=np.minimum(z, zmax), x=list(table.columns), y=list(table.index), zmin=0, zmax=zmax, colorscale=scale,
        customdata=z, text=text, texttemplate="%{text}" if z.size <= 600 else None, textfont=dict(size=9),
        hovertemplate="%{y}<br>%{x}<br>PSI %{customdata:.3f}<extra></extra>", xgap=1, ygap=1,
        colorbar=dict(title="PSI", tickvals=[watch / 2, (watch + act) / 2, (act + zmax) / 2],
                      ticktext=[f"stable < {watch:g}", f"watch {watch:g}-{act:g}", f"act > {act:g}"])))
    fig.update_layout(height=max(360, 22 * len(table.index) + 120), margin=_MARGIN,
                      yaxis=dict(autorange="reversed"), xaxis=dict(type="category", tickangle=-45))
    return fig


def psi_lines(series: pd.DataFrame, *, watch: float, act: float) -> go.Figure:
    """Highest PSI (any feature or the score) and the score's PSI per period, log scale, band lines."""
    fig = go.Figure()
    fig.add_scatter(x=series["period"], y=series["max_psi"], mode="lines+markers", name="highest PSI",
                    line=dict(color=MAX_COLOR), customdata=series["max_feature"],
                    hovertemplate="%{x}: %{y:.3f} (%{customdata})<extra></extra>")
    fig.add_scatter(x=series["period"], y=series["score_psi"], mode="lines+markers", name="model score PSI",
                    line=dict(color=SCORE_COLOR), hovertemplate="%{x}: %{y:.3f}<extra></extra>")
    for value, name in ((watch, "watch"), (act, "act")):
        fig.add_hline(y=value, line=dict(dash="dot", color=BAND_COLORS[name]))
        # on a log axis an annotation's y is log10 of the value (add_hline's own label lands elsewhere)
        fig.add_annotation(x=0, xref="paper", y=float(np.log10(value)), yref="y", text=f"{name} {value:g}",
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(color=BAND_COLORS[name]))
    fig.update_layout(height=340, margin=_MARGIN, yaxis=dict(type="log", title="PSI (log scale)", dtick=1),
                      xaxis=dict(type="category"), legend=dict(orientation="h", y=1.12))
    return fig


def top_features_bar(top: pd.DataFrame) -> go.Figure:
    """Horizontal bars of the period's highest PSIs, coloured by band."""
    fig = go.Figure(go.Bar(x=top["psi"], y=top["feature"], orientation="h",
                           marker_color=[BAND_COLORS.get(b, BAND_COLORS["n/a"]) for b in top["band"]],
                           text=[f"{v:.3f} {b}" for v, b in zip(top["psi"], top["band"], strict=True)],
                           textposition="auto", customdata=top["band"],
                           hovertemplate="%{y}: PSI %{x:.3f} (%{customdata})<extra></extra>"))
    fig.update_layout(height=max(260, 26 * len(top) + 60), margin=_MARGIN, yaxis=dict(autorange="reversed"),
                      xaxis_title="PSI")
    return fig


def distribution_bars(dist: pd.DataFrame, *, period: str) -> go.Figure:
    """Reference vs current share of rows per bin (bins fixed by the reference)."""
    fig = go.Figure()
    fig.add_bar(x=dist["bin"], y=dist["reference"], name="reference (training hold-out)", marker_color="#9aa5b1")
    fig.add_bar(x=dist["bin"], y=dist["current"], name=period, marker_color=SCORE_COLOR)
    fig.update_layout(barmode="group", height=340, margin=_MARGIN, yaxis=dict(tickformat=".0%", title="Share of rows"),
                      xaxis=dict(type="category", title="Bin"), legend=dict(orientation="h", y=1.12))
    return fig


def reason_lines(shares: pd.DataFrame) -> go.Figure:
    """Share of deny recommendations citing each reason code, per period."""
    fig = go.Figure()
    for code, part in shares.groupby("code", sort=False):
        label = str(part["reason"].iloc[0])
        fig.add_scatter(x=part["period"], y=part["share"], mode="lines+markers", name=label[:60],
                        customdata=np.stack([part["cited"], part["deny"]], axis=-1),
                        hovertemplate=f"{code}<br>%{{x}}: %{{y:.1%}} (%{{customdata[0]}} of %{{customdata[1]}})"
                                      "<extra></extra>")
    fig.update_layout(height=380, margin=_MARGIN, yaxis=dict(tickformat=".0%", title="Share of deny recommendations"),
                      xaxis=dict(type="category"), legend=dict(orientation="h", y=-0.25))
    return fig
