"""Product analytics: the phase comparison (``experiments``), latency and the serving error rate
(``latency``, ``error_rate``), costs (``costs``), and their statistics (``stats``, ``sequential``).

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.analytics.config import AnalyticsSettings, CostSettings
from backend.analytics.cost_model import COMPONENTS, Breakdown, UnitCosts
from backend.analytics.cost_scenarios import Scenario, WhatIf, what_if
from backend.analytics.costs import CostReport, CostService
from backend.analytics.error_rate import ErrorRate
from backend.analytics.error_rate import error_rate as serving_error_rate
from backend.analytics.experiments import RECOUNT_AFTER, ExperimentService
from backend.analytics.experiments_model import (
    METRICS,
    POWER_METRICS,
    Advice,
    Comparison,
    Overview,
    PowerPlan,
    SeqPoint,
    fmt,
)
from backend.analytics.latency import (
    ALERT_WINDOW,
    E2E_DEFINITION,
    LatencyFigure,
    LatencyReport,
    LatencyRow,
    LatencyService,
)
from backend.analytics.phase_report import (
    arm_figures_long,
    arm_table,
    checks_table,
    comparison_table,
    definitions,
    render_html,
    render_pdf,
    sequence_table,
    survey_table,
)

__all__ = [
    "serving_error_rate",
    "Advice",
    "ALERT_WINDOW",
    "AnalyticsSettings",
    "arm_figures_long",
    "arm_table",
    "Breakdown",
    "checks_table",
    "Comparison",
    "comparison_table",
    "COMPONENTS",
    "CostReport",
    "CostService",
    "CostSettings",
    "definitions",
    "E2E_DEFINITION",
    "ErrorRate",
    "ExperimentService",
    "fmt",
    "LatencyFigure",
    "LatencyReport",
    "LatencyRow",
    "LatencyService",
    "METRICS",
    "Overview",
    "POWER_METRICS",
    "PowerPlan",
    "RECOUNT_AFTER",
    "render_html",
    "render_pdf",
    "Scenario",
    "SeqPoint",
    "sequence_table",
    "survey_table",
    "UnitCosts",
    "what_if",
    "WhatIf",
]
