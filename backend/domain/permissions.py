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
    VIEW_MONITORING = "view_monitoring"  # drift, realized performance, alerts
    VIEW_FAIRNESS = "view_fairness"  # the fairness dashboard and its exported report
    ACK_ALERTS = "ack_alerts"  # acknowledge / resolve alerts
    MANAGE_MODELS = "manage_models"  # retrain, start and advance a canary (first person)
    APPROVE_CANARY = "approve_canary"  # the second person of each canary step (risk manager)
    ROLLBACK_MODELS = "rollback_models"  # roll back to an earlier version in one action
    VIEW_ANALYTICS = "view_analytics"  # phase comparison (AI vs control), power calculator, phase report
    VIEW_LATENCY = "view_latency"  # latency per component
    VIEW_COSTS = "view_costs"  # cost per component, per request, what-if scenarios
    REVEAL_PII = "reveal_pii"  # see an applicant's id/name/address/SSN in clear (officers: own applications only)
    # the production-readiness checklist: risk manager and admin, and the product lead and ML engineer, who sign
    # off for their areas and must see what they sign (loan officers do not)
    VIEW_READINESS = "view_readiness"
    # the rejected claims of an LLM explanation (what the model wrote that the fact-check refused): people who
    # review model behaviour (risk manager, ML engineer, admin); an officer sees only the verdict
    REVIEW_MODEL_OUTPUT = "review_model_output"
    # the model version, engine, cache and timings on the decision card, and the engine choice when scoring
    VIEW_MODEL_DETAILS = "view_model_details"
    SIGN_OFF = "sign_off"  # record/revoke a release sign-off; which area each role may sign: services/signoffs.py


POLICY: dict[Role, frozenset[Perm]] = {
    Role.LOAN_OFFICER: frozenset({Perm.VIEW_HOME, Perm.SCORE, Perm.VIEW_DECISIONS, Perm.DECIDE, Perm.REVEAL_PII}),
    Role.RISK_MANAGER: frozenset({Perm.VIEW_HOME, Perm.SCORE, Perm.VIEW_MODELS, Perm.VIEW_AUDIT, Perm.DECIDE,
                                  Perm.VIEW_DECISIONS, Perm.REVEAL_PII,
                                  Perm.APPROVE_OVERRIDES, Perm.VIEW_ALL_DECISIONS, Perm.VIEW_ROLLOUT,
                                  Perm.APPROVE_ROLLOUT, Perm.VIEW_MONITORING, Perm.VIEW_FAIRNESS, Perm.ACK_ALERTS,
                                  Perm.APPROVE_CANARY, Perm.ROLLBACK_MODELS, Perm.VIEW_ANALYTICS,
                                  Perm.VIEW_READINESS, Perm.SIGN_OFF, Perm.REVIEW_MODEL_OUTPUT}),
    Role.PRODUCT_LEAD: frozenset({Perm.VIEW_HOME, Perm.VIEW_ROLLOUT, Perm.PROPOSE_ROLLOUT, Perm.VIEW_ANALYTICS,
                                  Perm.VIEW_LATENCY, Perm.VIEW_COSTS, Perm.VIEW_READINESS, Perm.SIGN_OFF}),
    Role.ML_ENGINEER: frozenset({Perm.VIEW_HOME, Perm.SCORE, Perm.VIEW_MODEL_DETAILS, Perm.VIEW_MODELS, Perm.VIEW_ROLLOUT, Perm.VIEW_MONITORING,
                                 Perm.ACK_ALERTS, Perm.MANAGE_MODELS, Perm.ROLLBACK_MODELS, Perm.VIEW_LATENCY,
                                 Perm.VIEW_COSTS, Perm.VIEW_READINESS, Perm.SIGN_OFF, Perm.REVIEW_MODEL_OUTPUT}),
    Role.ADMIN: frozenset({Perm.VIEW_HOME, Perm.VIEW_MODEL_DETAILS, Perm.MANAGE_USERS, Perm.VIEW_AUDIT, Perm.VIEW_MODELS, Perm.VIEW_DECISIONS,
                           Perm.REVEAL_PII,
                           Perm.APPROVE_OVERRIDES, Perm.VIEW_ALL_DECISIONS, Perm.VIEW_ROLLOUT, Perm.VIEW_LATENCY,
                           Perm.VIEW_COSTS, Perm.VIEW_READINESS, Perm.SIGN_OFF, Perm.REVIEW_MODEL_OUTPUT}),
}


def allowed(role: str | None, perm: Perm) -> bool:
    try:
        return perm in POLICY[Role(role)]  # type: ignore[arg-type]
    except ValueError:
        return False


#: What makes a second factor mandatory for a password account: approving (the second person of four-eyes,
#: rollout and canary steps), overriding a recommendation (DECIDE), promoting or rolling back a model, and
#: administering users. A role holding any of these must use TOTP; the others may, or must when
#: ``auth.mfa_all_roles`` is set. Derived from POLICY, so a permission added to a role carries its duty with it.
MFA_PERMS: frozenset[Perm] = frozenset({
    Perm.APPROVE_OVERRIDES, Perm.APPROVE_ROLLOUT, Perm.APPROVE_CANARY,  # approve
    Perm.DECIDE,  # accept or override a recommendation
    Perm.MANAGE_MODELS, Perm.ROLLBACK_MODELS,  # promote (canary steps) or roll back a model
    Perm.MANAGE_USERS,  # administer
})


def mfa_required_for(role: str | None) -> bool:
    """Whether ``role`` holds a permission that requires a second factor (unknown roles: yes)."""
    try:
        return bool(POLICY[Role(role)] & MFA_PERMS)  # type: ignore[arg-type]
    except ValueError:
        return True
