"""Security primitives: field-level encryption of personal data (:mod:`backend.compliance.pii`).

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.compliance.audit import (
    ARCHIVED,
    ArchiveError,
    AuditExport,
    AuditService,
    ExportTooLarge,
    verify_archive,
)
from backend.compliance.audit_queries import (
    AuditEntry,
    AuditFilter,
    AuditRepository,
    ChainReport,
    append_many,
)
from backend.compliance.audit_seal import AuditKeyError
from backend.compliance.audit_sequencer import Sequencer
from backend.compliance.config import AuditSettings, PiiSettings
from backend.compliance.evidence import KINDS, current_command, record
from backend.compliance.evidence_queries import Evidence, OpsRepository, SignOffRecord
from backend.compliance.pii import PiiKeyRing, applicant_masked, load_pii_keyring, protect_intake
from backend.compliance.pii_fields import (
    DETAIL_FIELDS,
    DETAIL_LABELS,
    EMAIL_PATTERN,
    MAX_LENGTH,
    MSG_EMAIL,
    PHONE_PATTERN,
    SSN_PATTERN,
    check_applicants,
    valid_email,
)
from backend.compliance.pii_reveal import PiiService

__all__ = [
    "MSG_EMAIL",
    "valid_email",
    "append_many",
    "applicant_masked",
    "ARCHIVED",
    "AuditKeyError",
    "ArchiveError",
    "AuditEntry",
    "AuditExport",
    "AuditFilter",
    "AuditRepository",
    "AuditService",
    "AuditSettings",
    "ChainReport",
    "check_applicants",
    "current_command",
    "DETAIL_FIELDS",
    "DETAIL_LABELS",
    "EMAIL_PATTERN",
    "Evidence",
    "ExportTooLarge",
    "KINDS",
    "load_pii_keyring",
    "MAX_LENGTH",
    "OpsRepository",
    "PHONE_PATTERN",
    "PiiKeyRing",
    "PiiService",
    "PiiSettings",
    "protect_intake",
    "record",
    "Sequencer",
    "SignOffRecord",
    "SSN_PATTERN",
    "verify_archive",
]
