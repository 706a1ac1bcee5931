"""The simulated people: twelve loan officers (four senior, who carry the pilot), a risk manager who reviews
material overrides, and the product lead, risk manager and ML engineer who run the rollout and the models.
They are console users with a random password nobody is told, so nobody can sign in as one of them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from backend.domain import Actor
from backend.identity import UserService
from backend.platform.clock import FixedClock

SIM_OFFICERS = (  # username, display name, senior
    ("sim.aisha", "Aisha Bello (simulated)", True), ("sim.ben", "Ben Carter (simulated)", True),
    ("sim.chloe", "Chloe Dubois (simulated)", True), ("sim.daniel", "Daniel Kim (simulated)", True),
    ("sim.elena", "Elena Rossi (simulated)", False), ("sim.farid", "Farid Haddad (simulated)", False),
    ("sim.grace", "Grace Liu (simulated)", False), ("sim.hugo", "Hugo Martins (simulated)", False),
    ("sim.ines", "Ines Garcia (simulated)", False), ("sim.jonas", "Jonas Berg (simulated)", False),
    ("sim.kemi", "Kemi Adebayo (simulated)", False), ("sim.luca", "Luca Bianchi (simulated)", False),
)
SIM_MANAGERS = (("sim.maya", "Maya Singh (simulated)"),)
PRODUCT_LEAD, RISK_MANAGER, ML_ENGINEER = "sim.priya", "sim.rita", "sim.marcus"
SIM_LEADS = ((PRODUCT_LEAD, "product_lead", "Priya Patel (simulated)"),
             (RISK_MANAGER, "risk_manager", "Rita Chen (simulated)"),
             (ML_ENGINEER, "ml_engineer", "Marcus Lee (simulated)"))


def ensure_people(users: UserService, clock: FixedClock, start: datetime) -> dict[str, Actor]:
    """Every simulated person by username, created (a month before ``start``) when missing."""
    out: dict[str, Actor] = {}
    setup = Actor("simulator", "admin")
    wanted = [(u, "loan_officer", n, s) for u, n, s in SIM_OFFICERS]
    wanted += [(u, "risk_manager", n, False) for u, n in SIM_MANAGERS]
    wanted += [(u, r, n, False) for u, r, n in SIM_LEADS]
    for username, role, name, senior in wanted:
        info = users.get(username)
        if info is None:
            clock.at = start - timedelta(days=30)
            # a random password nobody is told: nobody can sign in as a simulated person
            info, _ = users.add(username, role=role, display_name=name, senior=senior, actor=setup,
                                password=secrets.token_urlsafe(24), rounds=4)
        out[username] = info
    return out


def manager(people: dict[str, Actor]) -> Actor:
    """The risk manager who reviews the officers' material overrides."""
    return people[SIM_MANAGERS[0][0]]


def officers(people: dict[str, Actor]) -> list[Actor]:
    """The loan officers, in :data:`SIM_OFFICERS` order (the order the per-application draws index)."""
    return [people[u] for u, _, _ in SIM_OFFICERS]


def with_display_name(person: Actor) -> Actor:
    """A simulated person as the explanation records name them (display name: the username)."""
    assert person.id is not None  # the simulated people are console users
    return Actor(person.username, person.role, person.id, person.username, person.senior)
