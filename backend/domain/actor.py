"""Who acts: one type for a console user, an API caller, a command-line operator, the monitor and the simulator.

Every service that writes an audit row or checks a permission takes an :class:`Actor`. ``id`` is set
when the actor is a console user (ownership of applications and four-eyes checks compare ids);
machine clients, the monitor and an operator without a user account have none. ``owner`` names the
namespace of the external application ids the actor submits (see :func:`backend.scoring.stored_external_id`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    username: str
    role: str
    id: uuid.UUID | None = None
    display_name: str = ""
    senior: bool = False
    # whose application ids this actor's submissions live among: "" for the organisation (console users,
    # people through the API, the CLI, the simulator), a machine client's client_id for that client
    owner: str = ""

    @classmethod
    def system(cls) -> Actor:
        """The system itself (migrations, seeding, scheduled jobs acting as administrator)."""
        return cls("system", "admin")

    @classmethod
    def of(cls, user: Any) -> Actor:
        """From a users-table row (or anything with its columns)."""
        return cls(user.username, user.role, user.id, user.display_name, bool(user.senior))
