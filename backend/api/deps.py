"""What a request needs: the API context (built once by the lifespan) and the caller's identity.

:func:`authorize` (used as ``Security(authorize, scopes=[...])``) reads the bearer token, verifies
it (:class:`~backend.identity.tokens.TokenService`), checks that the person or client still exists
and is active (cached ``principal_cache_seconds``), counts the request against the caller's rate
limit, then requires the operation's scope *and* the permission it maps to for the caller's
current role (:func:`backend.domain.permissions.allowed`). 401 for a missing or bad token, 429 over the
limit, 403 for a scope or role refusal.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes

from backend.api.idempotency import IdempotencyStore
from backend.api.problems import Problem
from backend.api.queries import active_user
from backend.container import Services, Settings
from backend.domain import Actor, allowed
from backend.identity import (
    CLIENT_SCOPES,
    SCOPES,
    TokenInvalid,
    scopes_for_role,
)
from backend.platform.db.group_commit import BatchWorker
from backend.platform.ports import RateLimiter, Verdict
from backend.scoring import ScoreJob, ScoreResult

log = logging.getLogger("creditrisk.api")
TOKEN_URL = "/oauth/token"  # noqa: S105 - a path
REALM = 'Bearer realm="creditrisk"'
UNAUTHENTICATED = "Send an access token: 'Authorization: Bearer <token>' (get one from POST /oauth/token)."
INVALID_TOKEN = "The access token is invalid or has expired; get a new one from POST /oauth/token."  # noqa: S105
INSUFFICIENT_SCOPE = "This operation needs the scope {scope!r}, which this token does not grant."
RATE_LIMITED = "Too many requests: at most {limit} per minute; retry after {seconds} s."
UNKNOWN = object()  # a standing not (or no longer) cached
ScoreTask = tuple[dict[str, Any], Actor, str]  # raw application, who submits it, engine

oauth2 = OAuth2(
    flows=OAuthFlows(password=OAuthFlowPassword(tokenUrl=TOKEN_URL, scopes={s: s for s in SCOPES}),
                     clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL,
                                                                  scopes={s: s for s in CLIENT_SCOPES})),
    scheme_name="OAuth2", auto_error=False)


@dataclass(frozen=True)
class Principal:
    sub: str
    kind: str  # user | client
    id: uuid.UUID
    username: str
    role: str
    scopes: frozenset[str]
    senior: bool = False

    def actor(self) -> Actor:
        return Actor(self.username, self.role, self.id, self.username, self.senior)

    def submitter(self) -> Actor:
        """Who submits applications: a person's ids live in the organisation's namespace, a client's in its own."""
        owner = self.sub.partition(":")[2] if self.kind == "client" else ""
        return Actor(self.username[:64], self.role, self.id if self.kind == "user" else None, senior=self.senior,
                     owner=owner)


@dataclass(frozen=True)
class _Standing:  # what the database says about a subject (cached briefly)
    id: uuid.UUID
    username: str
    role: str
    senior: bool
    scopes: frozenset[str]


class ApiContext:
    """Everything the routes share; built by the app's lifespan, closed with it."""

    def __init__(self, services: Services, settings: Settings, limiter: RateLimiter | None = None) -> None:
        self.services = services
        self.settings = settings
        self.tokens = services.tokens
        self.limiter = limiter or services.rate_limiter
        self.clients = services.api_clients
        self.idempotency = IdempotencyStore(services.db, services.clock, ttl_hours=settings.api.idempotency_ttl_hours,
                                            lease_seconds=settings.api.idempotency_lease_seconds)
        self._cache: dict[str, tuple[float, _Standing | None]] = {}
        self._lock = threading.Lock()
        # single applications without an Idempotency-Key: scored and recorded by one thread, in shared
        # transactions (group commit), without a thread-pool trip per request
        self.scorer: BatchWorker[ScoreTask, ScoreResult] = BatchWorker(self._score_batch, name="api-scorer")
        _freeze_heap(services)

    def close(self) -> None:
        self.scorer.close()
        self.limiter.close()

    def _score_batch(self, tasks: Sequence[ScoreTask]) -> list[ScoreResult | Exception]:
        """Each application is validated and scored on its own (an invalid one fails alone); those that
        pass are recorded in one transaction, or one by one if that transaction fails."""
        scoring = self.services.scoring
        out: list[ScoreResult | Exception] = []
        ready: list[tuple[int, ScoreJob]] = []
        for raw, submitter, engine in tasks:
            try:
                ready.append((len(out), scoring.prepare(raw, submitter=submitter, engine=engine)))
                out.append(RuntimeError("not recorded"))
            except Exception as exc:  # noqa: BLE001 - the caller's error (422, 503...)
                out.append(exc)
        if not ready:
            return out
        try:
            for (i, _), result in zip(ready, scoring.record([job for _, job in ready], source="api"), strict=True):
                out[i] = result
        except Exception:  # noqa: BLE001 - nothing was written: each one alone, with its own error
            for i, job in ready:
                try:
                    out[i] = scoring.record([job], source="api")[0]
                except Exception as exc:  # noqa: BLE001
                    out[i] = exc
        return out

    def cached_standing(self, sub: str) -> _Standing | None | object:
        """The standing remembered for ``sub`` when still fresh, else :data:`UNKNOWN` (no I/O)."""
        hit = self._cache.get(sub)
        if hit is not None and time.monotonic() - hit[0] < self.settings.api.principal_cache_seconds:
            return hit[1]
        return UNKNOWN

    def standing(self, sub: str) -> _Standing | None:
        ttl = self.settings.api.principal_cache_seconds
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(sub)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        found = self._lookup(sub)
        if ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[sub] = (now, found)
        return found

    def _lookup(self, sub: str) -> _Standing | None:
        kind, _, ref = sub.partition(":")
        if kind == "user":
            try:
                uid = uuid.UUID(ref)
            except ValueError:
                return None
            user = active_user(self.services.db, uid)
            if user is None or user.id is None:
                return None
            return _Standing(user.id, user.username, user.role, user.senior, frozenset(scopes_for_role(user.role)))
        if kind == "client":
            client = self.clients.get(ref)
            if client is None or not client.active:
                return None
            scopes = frozenset(client.scopes) & frozenset(CLIENT_SCOPES) & frozenset(scopes_for_role(client.role))
            return _Standing(client.id, f"client:{client.name}", client.role, False, scopes)
        return None

    def limit(self, key: str, limit: int, cost: int = 1) -> None:
        verdict: Verdict = self.limiter.hit(key, limit, cost)
        if not verdict.allowed:
            raise Problem(429, "rate-limited", "Too many requests",
                          RATE_LIMITED.format(limit=verdict.limit, seconds=verdict.retry_after),
                          headers={"Retry-After": str(verdict.retry_after)})


_FROZEN = threading.Event()


def _freeze_heap(services: Services) -> None:
    """Once per process: load the champion, then move everything alive to the garbage collector's
    permanent generation (:func:`gc.freeze`). The model, the libraries and the app are never garbage;
    without this every full collection walks them all (~150 ms here, during which no request is
    answered). Objects made later are collected as usual."""
    if _FROZEN.is_set():
        return
    _FROZEN.set()
    try:
        services.models.get("champion")
    except Exception as exc:  # noqa: BLE001 - readiness reports a missing model; the freeze still helps
        log.debug("no champion to load before freezing the heap: %s", type(exc).__name__)
    gc.collect()
    gc.freeze()


def get_ctx(request: Request) -> ApiContext:
    ctx: Any = getattr(request.app.state, "api", None)
    if ctx is None:  # pragma: no cover - only when the lifespan did not run
        raise RuntimeError("the API context is missing: run the app with its lifespan")
    return ctx  # type: ignore[no-any-return]


async def charge(ctx: ApiContext, principal: Principal, cost: int) -> None:
    """Count ``cost`` more requests against the caller's limit (a batch counts as its applications:
    :func:`authorize` counted the request itself)."""
    if cost <= 0:
        return
    if ctx.limiter.backend == "memory":
        ctx.limit(f"sub:{principal.sub}", ctx.settings.api.rate_limit_per_minute, cost)
    else:
        await run_in_threadpool(ctx.limit, f"sub:{principal.sub}", ctx.settings.api.rate_limit_per_minute, cost)


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = REALM + (f', error="{error}"' if error else "")
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


async def authorize(request: Request, security_scopes: SecurityScopes,
                    authorization: str | None = Depends(oauth2)) -> Principal:
    """On the event loop: the token check (a verified token is remembered until it expires), the
    cached standing and the in-process rate limit are CPU work without I/O; a standing not cached and
    a Redis-backed limit go to the thread pool."""
    ctx = get_ctx(request)
    if not authorization:
        raise _unauthorized(UNAUTHENTICATED)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(INVALID_TOKEN, "invalid_token")
    try:
        claims = ctx.tokens.verify(token.strip())
    except TokenInvalid as exc:
        request.scope.setdefault("state", {})["token_refused"] = exc.reason
        raise _unauthorized(INVALID_TOKEN, "invalid_token") from None
    standing = ctx.cached_standing(claims.sub)
    if standing is UNKNOWN:
        standing = await run_in_threadpool(ctx.standing, claims.sub)
    if not isinstance(standing, _Standing):
        raise _unauthorized(INVALID_TOKEN, "invalid_token")
    request.scope.setdefault("state", {})["principal"] = claims.sub
    if ctx.limiter.backend == "memory":
        ctx.limit(f"sub:{claims.sub}", ctx.settings.api.rate_limit_per_minute)
    else:
        await run_in_threadpool(ctx.limit, f"sub:{claims.sub}", ctx.settings.api.rate_limit_per_minute)
    principal = Principal(claims.sub, claims.kind, standing.id, standing.username, standing.role,
                          claims.scopes & standing.scopes, standing.senior)
    for scope in security_scopes.scopes:
        if scope not in principal.scopes or not allowed(principal.role, SCOPES[scope]):
            raise Problem(403, "insufficient-scope", "Forbidden", INSUFFICIENT_SCOPE.format(scope=scope),
                          headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'})
    return principal
