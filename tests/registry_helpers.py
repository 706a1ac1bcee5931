"""Put a prepared model registry under a test's services (the canary and lifecycle tests share this)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def install_registry(svc: Any, registry: Path, users: Mapping[str, str], password: str) -> Any:
    """Replace ``svc``'s registry folder with a copy of ``registry``, drop the cached models and canary
    route, and add ``users`` (name -> role) with ``password``; returns ``svc``."""
    root = Path(svc.settings.model.registry_dir)
    shutil.rmtree(root)
    shutil.copytree(registry, root)
    svc.models.invalidate()
    svc.scoring.canary.invalidate()
    for name, role in users.items():
        svc.users.add(name, role=role, password=password)
    return svc
