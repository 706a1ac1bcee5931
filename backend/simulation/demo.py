"""Demo preparation for `make run` / `creditrisk demo`: idempotent and resumable.

* one user per role (plus a second officer), passwords generated once, printed once and kept in
  ``<data_dir>/demo_credentials.txt`` (mode 600, never in the repository);
* the users whose role requires a second factor enrolled in TOTP, their secrets (and recovery codes) kept in
  ``<data_dir>/demo_mfa.txt`` (mode 600): ``creditrisk demo-code NAME`` prints the current code, or scan the
  ``otpauth://`` line with an authenticator app;
* a trained champion model in the registry (synthetic data; trained here, nothing downloaded);
* simulated applications scored through the real scoring service and stored with
  ``source="simulated"`` so every page can label them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.container import Services
from backend.domain import Actor
from backend.platform.ports import ProgressCallback

DEMO_USERS: tuple[tuple[str, str, str, bool], ...] = (
    ("officer", "loan_officer", "Olivia Okafor", True),
    ("officer2", "loan_officer", "Mateo Silva", False),
    ("risk", "risk_manager", "Rita Chen", False),
    ("product", "product_lead", "Priya Patel", False),
    ("mlops", "ml_engineer", "Marcus Lee", False),
    ("admin", "admin", "Ada Adeyemi", False),
)
Echo = Callable[..., Any]


class DemoService:
    def __init__(self, services: Services) -> None:
        self.svc = services
        self.credentials_path = services.settings.data_dir / "demo_credentials.txt"
        self.mfa_path = services.settings.data_dir / "demo_mfa.txt"

    def ensure_users(self) -> list[tuple[str, str, str]]:
        """Create missing demo users; return (username, role, password) for those created now."""
        created: list[tuple[str, str, str]] = []
        for username, role, name, senior in DEMO_USERS:
            if self.svc.users.get(username) is not None:
                continue
            _, password = self.svc.users.add(username, role=role, display_name=name, senior=senior,
                                             actor=Actor("demo-setup", "admin"))
            created.append((username, role, password or ""))
        if created:
            self._save_credentials(created)
        return created

    def _save_credentials(self, rows: list[tuple[str, str, str]], path: Path | None = None) -> None:
        path = path or self.credentials_path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            for row in rows:
                fh.write("\t".join(row) + "\n")
        os.chmod(path, 0o600)

    def ensure_mfa(self) -> list[str]:
        """Enrol the demo users whose role requires a second factor and who have none; their secrets go to
        ``demo_mfa.txt`` (username, secret, otpauth URI, recovery codes). Returns the usernames enrolled now."""
        listed = {str(u["username"]): u for u in self.svc.users.list()}
        rows: list[tuple[str, str, str]] = []
        for username, role, _, _ in DEMO_USERS:
            u = listed.get(username)
            if u is None or u["second_factor"] or not self.svc.auth.mfa.required(role):
                continue
            enrol, codes = self.svc.auth.provision_mfa(username, actor=Actor("demo-setup", "admin"))
            rows.append((username, enrol.secret, enrol.uri + "\t" + ",".join(codes)))
        if rows:
            self._save_credentials(rows, self.mfa_path)
        return [r[0] for r in rows]

    def secret_for(self, username: str) -> str | None:
        """The demo user's TOTP secret from ``demo_mfa.txt`` (the last one written), or None."""
        if not self.mfa_path.exists():
            return None
        found = None
        for line in self.mfa_path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0] == username:
                found = parts[1]
        return found

    def ensure_model(self, *, train_rows: int, seed: int, echo: Echo = print,
                     progress: ProgressCallback | None = None) -> str:
        """Train and promote a champion when the registry has none."""
        from backend.training import ensure_champion

        return ensure_champion(self.svc.settings.model, rows=train_rows, seed=seed, echo=echo, progress=progress)

    def load_applications(self, *, rows: int, seed: int, echo: Echo = print,
                          progress: ProgressCallback | None = None) -> int:
        """Generate ``rows`` simulated applications and score the ones not yet in the book."""
        if rows <= 0:
            return 0
        from backend.domain import Actor
        from backend.simulation.book import load_simulated_book

        officers = [Actor(u.username, u.role, u.id) for name, role, _, _ in DEMO_USERS
                    if role == "loan_officer" and (u := self.svc.users.get(name)) is not None]
        return load_simulated_book(self.svc, rows=rows, seed=seed, echo=echo, officers=officers, progress=progress)
