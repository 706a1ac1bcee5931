"""The console's pages and the permission each needs (roles → permissions live in backend.domain.permissions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.domain import Perm, allowed

ROOT = Path(__file__).resolve().parent.parent
PAGES_DIR = ROOT / "pages"


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    perm: Perm
    section: str = "Workspace"

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


PAGES: tuple[PageSpec, ...] = (
    PageSpec("home.py", "Home", ":material/home:", Perm.VIEW_HOME),
    PageSpec("score.py", "Score an application", ":material/calculate:", Perm.SCORE),
    PageSpec("decisions.py", "Applications", ":material/list_alt:", Perm.VIEW_DECISIONS),
    PageSpec("decision.py", "Decision", ":material/gavel:", Perm.VIEW_DECISIONS),
    PageSpec("review.py", "Review queue", ":material/fact_check:", Perm.APPROVE_OVERRIDES, "Governance"),
    PageSpec("models.py", "Model registry", ":material/model_training:", Perm.VIEW_MODELS, "Models"),
    PageSpec("drift.py", "Drift", ":material/ssid_chart:", Perm.VIEW_MONITORING, "Monitoring"),
    PageSpec("performance.py", "Realized performance", ":material/monitoring:", Perm.VIEW_MONITORING, "Monitoring"),
    PageSpec("fairness.py", "Fairness", ":material/balance:", Perm.VIEW_FAIRNESS, "Monitoring"),
    PageSpec("alerts.py", "Alerts", ":material/notifications_active:", Perm.VIEW_MONITORING, "Monitoring"),
    PageSpec("phases.py", "Phase comparison", ":material/compare_arrows:", Perm.VIEW_ANALYTICS, "Product"),
    PageSpec("latency.py", "Latency", ":material/timer:", Perm.VIEW_LATENCY, "Product"),
    PageSpec("costs.py", "Costs", ":material/payments:", Perm.VIEW_COSTS, "Product"),
    PageSpec("rollout.py", "Rollout phases", ":material/linear_scale:", Perm.VIEW_ROLLOUT, "Governance"),
    PageSpec("readiness.py", "Production readiness", ":material/task_alt:", Perm.VIEW_READINESS, "Governance"),
    PageSpec("audit.py", "Audit trail", ":material/policy:", Perm.VIEW_AUDIT, "Governance"),
    PageSpec("users.py", "Users", ":material/group:", Perm.MANAGE_USERS, "Governance"),
)


def pages_for(role: str | None) -> list[PageSpec]:
    return [p for p in PAGES if allowed(role, p.perm) and p.path.exists()]
