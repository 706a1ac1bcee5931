"""The operations feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.operations.adapters.s3 import S3ClientFactory, s3_client_factory
from backend.operations.backup import BackupService
from backend.operations.backup_drill import DrillService
from backend.operations.backup_restore import RestoreService
from backend.operations.config import OpsSettings
from backend.operations.incidents import IncidentError, IncidentService
from backend.operations.readiness import ReadinessService, Report
from backend.operations.readiness_config import ReadinessSettings
from backend.operations.signoffs import (
    AREA_LABELS,
    MAX_COUNSEL,
    MAX_NOTE,
    SignOffError,
    SignOffService,
    areas_for,
    describe,
)

__all__ = [
    "IncidentError",
    "IncidentService",
    "AREA_LABELS",
    "areas_for",
    "BackupService",
    "describe",
    "DrillService",
    "MAX_COUNSEL",
    "MAX_NOTE",
    "OpsSettings",
    "ReadinessService",
    "ReadinessSettings",
    "Report",
    "RestoreService",
    "s3_client_factory",
    "S3ClientFactory",
    "SignOffError",
    "SignOffService",
]
