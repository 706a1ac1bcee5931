"""Demo preparation for `make run` / `creditrisk demo`: idempotent and resumable.

* one user per role (plus a second officer), passwords generated once, printed once and kept in
  ``<data_dir>/demo_credentials.txt`` (mode 600, never in the repository);
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
from backend.services.users import Actor

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

    def _save_credentials(self, rows: list[tuple[str, str, str]]) -> None:
        path: Path = self.credentials_path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            for username, role, password in rows:
                fh.write(f"{username}\t{role}\t{password}\n")
        os.chmod(path, 0o600)

    def ensure_model(self, *, train_rows: int, seed: int, echo: Echo = print) -> str:
        """Train and promote a champion when the registry has none."""
        from backend.training.pipeline import ensure_champion

        return ensure_champion(self.svc.settings, rows=train_rows, seed=seed, echo=echo)

    def load_applications(self, *, rows: int, seed: int, echo: Echo = print) -> int:
        """Generate ``rows`` simulated applications and score the ones not yet in the book."""
        if rows <= 0:
            return 0
        from backend.services.scoring import Submitter
        from backend.services.simulated_book import load_simulated_book

        officers = [Submitter(u.username, u.role, u.id) for name, role, _, _ in DEMO_USERS
                    if role == "loan_officer" and (u := self.svc.users.get(name)) is not None]
        return load_simulated_book(self.svc, rows=rows, seed=seed, echo=echo, officers=officers)
