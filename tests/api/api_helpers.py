"""Helpers shared by the API tests (imported by name: ``from api_helpers import ...``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from fastapi.testclient import TestClient

from backend.api import create_app
from backend.container import Services
from backend.platform.adapters.ratelimit_memory import MemoryLimiter
from backend.training.synthetic import generate

PASSWORD = "correct horse battery staple"
PEOPLE = {"olivia": "loan_officer", "oscar": "loan_officer", "maria": "risk_manager", "mark": "risk_manager",
          "ada": "admin", "paul": "product_lead", "eve": "ml_engineer"}
DROP = ("default", "pd_true", "application_id", "applied_at")


def applications(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """JSON-ready applications (missing values left out, as a client would send them)."""
    df = generate(n, seed=seed).drop(columns=list(DROP))
    out = []
    for rec in df.to_dict("records"):
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()
               if v is not None and not (isinstance(v, float) and math.isnan(v))}
        factors = str(row.pop("bureau_key_factors", "") or "")  # JSON carries the bureau's codes as a list
        if factors:
            row["bureau_key_factors"] = factors.split(";")
        out.append(row)
    return out


class FakeTime:
    """Wall-clock seconds for the rate limiter (fixed, inside a window)."""

    def __init__(self, t: float = 1_000_040.0) -> None:  # 20 s into a minute
        self.t = t

    def __call__(self) -> float:
        return self.t


def with_api(svc: Services, **api: Any) -> Services:
    """The same services with some API settings changed."""
    settings = svc.settings.model_copy(update={"api": svc.settings.api.model_copy(update=api)})
    return dataclasses.replace(svc, settings=settings)


def make_api(svc: Services, *, limiter: Any = None, **api: Any) -> Iterator[SimpleNamespace]:
    api.setdefault("principal_cache_seconds", 0)
    svc = with_api(svc, **api)
    users = {name: svc.users.add(name, role=role, password=PASSWORD)[0] for name, role in PEOPLE.items()}
    clock = FakeTime()
    app = create_app(services=svc, limiter=limiter or MemoryLimiter(clock=clock))
    with TestClient(app, raise_server_exceptions=True) as client:
        def token(username: str, scope: str | None = None) -> str:
            form = {"grant_type": "password", "username": username, "password": PASSWORD}
            if scope is not None:
                form["scope"] = scope
            res = client.post("/oauth/token", data=form)
            assert res.status_code == 200, res.text
            return str(res.json()["access_token"])

        def auth(username: str, scope: str | None = None) -> dict[str, str]:
            return {"Authorization": f"Bearer {token(username, scope)}"}

        yield SimpleNamespace(client=client, app=app, svc=svc, users=users, token=token, auth=auth, time=clock,
                              ctx=app.state.api)


def assert_problem(res: Any, status: int, *, not_echoed: tuple[str, ...] = ()) -> dict[str, Any]:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json"), res.headers["content-type"]
    assert res.headers.get("x-request-id")
    body = res.json()
    assert body["status"] == status and body["type"].startswith("/problems/") and body["title"]
    for marker in not_echoed:
        assert marker not in res.text, f"{marker!r} echoed in {res.text[:300]}"
    return dict(body)
