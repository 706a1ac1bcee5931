"""Machine clients of the scoring API (OAuth 2.0 client credentials).

A client has a public ``client_id``, a secret shown once at creation (only its hash is stored, with
the project's password hasher), a role and the scopes it was created with. Its scopes must be
allowed by its role and may not include ``override``: a decision is recorded by a person. A client
acts at its role's level of access but owns no applications (they are nobody's officer's), so a
client with ``decisions:read`` reads back decisions only with a role that sees every application.
Creating and revoking write one audit row each; revoking refuses the client's tokens at once.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from backend.compliance import AuditRepository
from backend.domain import ROLES
from backend.identity.clients_queries import ApiClientRepository
from backend.identity.passwords import hash_password, verify_password
from backend.identity.tokens import CLIENT_SCOPES, SCOPES, scopes_for_role
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

if TYPE_CHECKING:
    from backend.platform.db.tables_access import ApiClient

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
CLIENT_ID_RE = re.compile(r"^crc_[0-9a-f]{16}$")
MAX_SECRET = 200
BAD_NAME = "Client name must be 3-64 characters: lowercase letters, digits, '.', '_' or '-'."
BAD_ROLE = "Unknown role {role!r}; choose one of: " + ", ".join(ROLES) + "."
BAD_SCOPE = "Unknown scope {scope!r}; choose from: " + ", ".join(SCOPES) + "."
NO_SCOPES = "Give the client at least one scope (--scopes score,decisions:read,explain)."
HUMAN_ONLY = "A machine client cannot hold 'override': decisions are recorded by a person (use a person's token)."
ROLE_LACKS = "Role {role} does not allow scope {scope!r}; its scopes are: {allowed}."
CLIENT_EXISTS = "A client named {name!r} already exists."
NO_SUCH_CLIENT = "No client {ref!r}."
ALREADY_REVOKED = "Client {name!r} was already revoked."


class ClientError(ValueError):
    """A client-administration request was refused; the message says why."""


@dataclass(frozen=True)
class ClientInfo:
    id: uuid.UUID
    client_id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiClient) -> ClientInfo:
        return cls(row.id, row.client_id, row.name, row.role, tuple(row.scopes or ()), row.created_at,
                   row.created_by, row.revoked_at)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_scopes(role: str, scopes: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    if role not in ROLES:
        raise ClientError(BAD_ROLE.format(role=role[:40]))
    if not wanted:
        raise ClientError(NO_SCOPES)
    allowed = scopes_for_role(role)
    for s in wanted:
        if s not in SCOPES:
            raise ClientError(BAD_SCOPE.format(scope=s[:40]))
        if s not in CLIENT_SCOPES:
            raise ClientError(HUMAN_ONLY)
        if s not in allowed:
            raise ClientError(ROLE_LACKS.format(role=role, scope=s, allowed=", ".join(allowed) or "none"))
    return wanted


class ApiClientService:
    def __init__(self, db: Database, clock: Clock, *, rounds: int = 12) -> None:
        self.db = db
        self.clock = clock
        self.rounds = rounds
        self._dummy = hash_password(secrets.token_urlsafe(16), rounds)

    def add(self, name: str, *, role: str, scopes: Iterable[str], actor: str = "system") -> tuple[ClientInfo, str]:
        """Create a client; returns it and its secret (shown once, never stored in clear)."""
        name = (name or "").strip().lower()
        if not NAME_RE.match(name):
            raise ClientError(BAD_NAME)
        granted = check_scopes(role, scopes)
        secret = "crs_" + secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.transaction() as s:
            repo = ApiClientRepository(s)
            if repo.by_name(name) is not None:
                raise ClientError(CLIENT_EXISTS.format(name=name))
            row = repo.create(client_id="crc_" + secrets.token_hex(8), name=name, role=role, scopes=list(granted),
                              secret_hash=hash_password(secret, self.rounds), at=now, created_by=actor[:64])
            AuditRepository(s).append(actor=actor[:64], role="admin", action="api_client_created",
                                      entity_type="api_client", entity_id=row.client_id, at=now,
                                      payload={"name": name, "role": role, "scopes": list(granted)})
            return ClientInfo.of(row), secret

    def list(self) -> list[ClientInfo]:
        with self.db.read() as s:
            return [ClientInfo.of(r) for r in ApiClientRepository(s).list()]

    def revoke(self, ref: str, *, actor: str = "system") -> ClientInfo:
        """Revoke by name or client id; its tokens stop working at once (the row is kept)."""
        now = self.clock.now()
        with self.db.transaction() as s:
            repo = ApiClientRepository(s)
            row = repo.by_client_id(ref) or repo.by_name(ref.strip().lower())
            if row is None:
                raise ClientError(NO_SUCH_CLIENT.format(ref=ref[:64]))
            if row.revoked_at is not None:
                raise ClientError(ALREADY_REVOKED.format(name=row.name))
            row.revoked_at, row.revoked_by = now, actor[:64]
            AuditRepository(s).append(actor=actor[:64], role="admin", action="api_client_revoked",
                                      entity_type="api_client", entity_id=row.client_id, at=now,
                                      payload={"name": row.name})
            s.flush()
            return ClientInfo.of(row)

    def get(self, client_id: str) -> ClientInfo | None:
        with self.db.read() as s:
            row = ApiClientRepository(s).by_client_id(client_id)
            return ClientInfo.of(row) if row is not None else None

    def authenticate(self, client_id: str, secret: str) -> ClientInfo | None:
        """The active client for these credentials, else None (the hash is checked in every case)."""
        known = CLIENT_ID_RE.match(client_id or "") is not None and len(secret or "") <= MAX_SECRET
        with self.db.read() as s:
            row = ApiClientRepository(s).by_client_id(client_id) if known else None
            stored = row.secret_hash if row is not None else self._dummy
        good = verify_password((secret or "")[:MAX_SECRET], stored)
        if row is None or not good or row.revoked_at is not None:
            return None
        return ClientInfo.of(row)
