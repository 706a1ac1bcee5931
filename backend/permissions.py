"""Roles and what each may do: the one copy of the access policy (console pages and API use it)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    LOAN_OFFICER = "loan_officer"
    RISK_MANAGER = "risk_manager"
    PRODUCT_LEAD = "product_lead"
    ML_ENGINEER = "ml_engineer"
    ADMIN = "admin"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)
ROLE_LABELS = {
    Role.LOAN_OFFICER: "Loan officer",
    Role.RISK_MANAGER: "Risk manager",
    Role.PRODUCT_LEAD: "Product lead",
    Role.ML_ENGINEER: "ML engineer",
    Role.ADMIN: "Administrator",
}


class Perm(StrEnum):
    VIEW_HOME = "view_home"
    SCORE = "score"
    VIEW_MODELS = "view_models"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"
    VIEW_DECISIONS = "view_decisions"  # the Applications and Decision pages (what is visible: see VIEW_ALL_DECISIONS)
    DECIDE = "decide"  # accept or override a recommendation (officers: their own applications only)
    APPROVE_OVERRIDES = "approve_overrides"  # the second person of four-eyes; the review queue
    VIEW_ALL_DECISIONS = "view_all_decisions"  # every officer's applications and decisions
    VIEW_ROLLOUT = "view_rollout"  # the rollout page: phases, history, pending proposals
    PROPOSE_ROLLOUT = "propose_rollout"  # the first person of a phase change (product lead)
    APPROVE_ROLLOUT = "approve_rollout"  # the second person (risk manager), never the proposer


POLICY: dict[Role, frozenset[Perm]] = {
    Role.LOAN_OFFICER: frozenset({Perm.VIEW_HOME, Perm.SCORE, Perm.VIEW_DECISIONS, Perm.DECIDE}),
    Role.RISK_MANAGER: frozenset({Perm.VIEW_HOME, Perm.SCORE, Perm.VIEW_MODELS, Perm.VIEW_AUDIT, Perm.DECIDE,
                                  Perm.VIEW_DECISIONS,
                                  Perm.APPROVE_OVERRIDES, Perm.VIEW_ALL_DECISIONS, Perm.VIEW_ROLLOUT,
                                  Perm.APPROVE_ROLLOUT}),
    Role.PRODUCT_LEAD: frozenset({Perm.VIEW_HOME, Perm.VIEW_ROLLOUT, Perm.PROPOSE_ROLLOUT}),
    Role.ML_ENGINEER: frozenset({Perm.VIEW_HOME, Perm.VIEW_MODELS, Perm.VIEW_ROLLOUT}),
    Role.ADMIN: frozenset({Perm.VIEW_HOME, Perm.MANAGE_USERS, Perm.VIEW_AUDIT, Perm.VIEW_MODELS, Perm.VIEW_DECISIONS,
                           Perm.APPROVE_OVERRIDES, Perm.VIEW_ALL_DECISIONS, Perm.VIEW_ROLLOUT}),
}


def allowed(role: str | None, perm: Perm) -> bool:
    try:
        return perm in POLICY[Role(role)]  # type: ignore[arg-type]
    except ValueError:
        return False
