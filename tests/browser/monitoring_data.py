"""A small simulated history for the monitoring and product pages' browser tests.

``build_history(data_dir, registry)`` copies a trained registry to ``data_dir/models`` and replays six
months of simulated operations into ``data_dir``'s SQLite database (``seed-demo`` with a small volume,
the September 2025 data-quality incident, no retrain), running the monitors weekly through the history
(drift, performance and fairness snapshots; alerts opened and resolved at their historical times).

The settings are the console server's (``tests/browser/conftest.py``, ``_console_env``): the same
data directory, registry directory and bcrypt rounds, so the server started on ``data_dir`` afterwards
reads exactly what was written here. Users of the console are added later by the server factory; the
simulator only adds its own ``sim.*`` people, whose usernames never collide with them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from backend.simulation.operations import SimReport

VOLUME = 400  # applications per month: ~2,400 in all, a few minutes at most on 2 cores


def console_settings_env(data_dir: Path) -> dict[str, str]:
    """The environment variables that point a console (``console_server_factory(env=...)``) at ``data_dir``."""
    return {"CREDITRISK_DATA_DIR": str(data_dir), "CREDITRISK_MODEL__REGISTRY_DIR": str(data_dir / "models")}


def build_history(data_dir: Path, registry: Path, *, volume: int = VOLUME) -> SimReport:
    """Six months of simulated operations with the monitors run weekly, into ``data_dir``."""
    from backend.container import build_services
    from backend.container.settings import load_settings
    from backend.simulation.operations import OperationsSimulator, SimConfig

    shutil.copytree(registry, data_dir / "models")
    settings = load_settings(data_dir=data_dir, auth={"bcrypt_rounds": 4}, model={"registry_dir": data_dir / "models"})
    svc = build_services(settings, migrate=True)
    try:
        return OperationsSimulator(svc, SimConfig(volume=volume, retrain=False, monitoring=True),
                                   echo=lambda *a, **k: None, progress=None).run()
    finally:
        svc.close()
