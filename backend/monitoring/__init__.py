"""Pure monitoring statistics (no I/O): PSI, fairness metrics, performance metrics.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.monitoring.book_state import RowMemo, month_tokens, month_window
from backend.monitoring.config import AlertThresholds, MonitoringSettings
from backend.monitoring.drift import SCORE_LABEL, DriftService
from backend.monitoring.drift_views import (
    distribution_bars,
    heatmap,
    heatmap_rows,
    psi_csv,
    psi_lines,
    reason_lines,
    top_features_bar,
)
from backend.monitoring.fairness import (
    BLIND_NOTE,
    ERROR_NOTE,
    NO_SNAPSHOTS,
    REFERENCE_NOTE,
    THRESHOLD_LABEL,
    VIEWS,
    DisparateImpact,
    FairnessService,
    disparate_impact_of,
    lowest_di_by_arm,
)
from backend.monitoring.fairness_metrics import (
    ATTRIBUTES,
    INTERSECTIONS,
    SEP,
    STAGE_LABELS,
    STAGES,
    attribute_key,
    attribute_label,
)
from backend.monitoring.fairness_report import (
    Report,
    build_report,
    defaults_table,
    errors_table,
    gaps_table,
    interval,
    overrides_table,
    period_table,
    rates_table,
    ratio,
    render_html,
    render_pdf,
    stage_table,
)
from backend.monitoring.performance import (
    ARM_LABELS,
    PerformanceService,
    calibration_summary,
    version_table,
    vintage_table,
)
from backend.monitoring.performance_metrics import auc as realized_auc
from backend.monitoring.performance_metrics import expected_bad_rate
from backend.monitoring.performance_views import (
    PERCENT_COLUMNS,
    arm_comparison_frame,
    bad_rate_chart,
    calibration_chart,
    discrimination_chart,
    export_csv,
    version_chart,
    version_frame,
    vintage_frame,
)
from backend.monitoring.period_defaults import drift_default, fairness_default
from backend.monitoring.snapshot_queries import Snapshot, SnapshotRepository

__all__ = [
    "RowMemo",
    "month_tokens",
    "month_window",
    "drift_default",
    "fairness_default",
    "expected_bad_rate",
    "realized_auc",
    "AlertThresholds",
    "arm_comparison_frame",
    "ARM_LABELS",
    "attribute_key",
    "attribute_label",
    "ATTRIBUTES",
    "bad_rate_chart",
    "BLIND_NOTE",
    "build_report",
    "calibration_chart",
    "calibration_summary",
    "defaults_table",
    "discrimination_chart",
    "disparate_impact_of",
    "lowest_di_by_arm",
    "DisparateImpact",
    "distribution_bars",
    "DriftService",
    "ERROR_NOTE",
    "errors_table",
    "export_csv",
    "FairnessService",
    "gaps_table",
    "heatmap",
    "heatmap_rows",
    "INTERSECTIONS",
    "interval",
    "MonitoringSettings",
    "NO_SNAPSHOTS",
    "overrides_table",
    "PERCENT_COLUMNS",
    "PerformanceService",
    "period_table",
    "psi_csv",
    "psi_lines",
    "rates_table",
    "ratio",
    "reason_lines",
    "REFERENCE_NOTE",
    "render_html",
    "render_pdf",
    "Report",
    "SCORE_LABEL",
    "SEP",
    "Snapshot",
    "SnapshotRepository",
    "STAGE_LABELS",
    "stage_table",
    "STAGES",
    "THRESHOLD_LABEL",
    "top_features_bar",
    "version_chart",
    "version_frame",
    "version_table",
    "VIEWS",
    "vintage_frame",
    "vintage_table",
]
