"""What the Rollout phases page shows of a phase: who it reaches, its settings as one row, and the
approved phases on a timeline (pure functions: a phase in, text or a figure out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from backend.domain import ROLE_LABELS, Role
from backend.rollout import FEATURE_LABELS, FEATURES, PHASE_LABELS, PHASES, Phase


def who(p: Phase) -> str:
    roles = ", ".join(ROLE_LABELS[Role(r)].lower() + "s" for r in p.eligible_roles) or "any role"
    named = f"; named officers: {', '.join(p.eligible_officers)}" if p.eligible_officers else ""
    return f"{roles}{' (senior only)' if p.senior_only else ''}{named}"


def summary(p: Phase) -> dict[str, str]:
    return {"Phase": p.label, "AI share": f"{p.ai_share:.0%}", "Eligible": who(p),
            "Loan-amount cap": f"${p.loan_amount_cap:,.0f}", "Confidence threshold": f"{p.confidence_threshold:.2f}",
            "Features": ", ".join(FEATURE_LABELS[f] + ("" if p.enabled(f) else " (off)") for f in FEATURES),
            "Starts": f"{p.starts_at:%Y-%m-%d %H:%M} UTC" if p.starts_at else "—"}


def timeline_chart(approved: Sequence[Phase], now: datetime) -> go.Figure:
    """Approved phases (with a start) over time; the open phase runs on a week past now or its start."""
    end_default = max(now, approved[-1].starts_at or now) + timedelta(days=7)
    chart = pd.DataFrame([{"phase": p.label, "version": f"v{p.version}", "start": p.starts_at,
                           "end": p.ends_at or end_default, "AI share": f"{p.ai_share:.0%}"} for p in approved])
    fig = px.timeline(chart, x_start="start", x_end="end", y="phase", color="phase", text="version",
                      hover_data=["version", "AI share"], category_orders={"phase": [PHASE_LABELS[x] for x in PHASES]})
    fig.add_vline(x=now, line_dash="dot", line_color="gray")
    fig.update_layout(height=260, showlegend=False, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title="Approved phases over time (dotted line: now; the open phase runs on)")
    return fig
