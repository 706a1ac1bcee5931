"""The tiny promoted model the console tests (AppTest and browser) render their model pages with."""

from __future__ import annotations

from pathlib import Path


def train_small_champion(registry_dir: Path) -> None:
    """A tiny promoted model trained on synthetic data (~10 s), promoted without gates (too small to pass
    the fairness gates). Build it through ``shared_once.once`` so the whole run trains it once."""
    from backend.models.registry import Registry
    from backend.training.train import train_and_register

    report = train_and_register(registry_root=registry_dir, rows=1500, seed=7, cv_folds=2,
                                n_estimators=3, n_boost=10, n_trees=10)
    Registry(registry_dir).promote(report["version"], gates_required=False)
