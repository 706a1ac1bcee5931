"""Glue used by the demo: make sure a champion exists (train on synthetic data, then promote)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.models import ModelSettings
from backend.platform.ports import ProgressCallback

DEMO_CV_FOLDS = 3  # the demo reports 3-fold CV to keep the first `make run` short


def ensure_champion(model: ModelSettings, *, rows: int, seed: int, echo: Callable[..., Any] = print,
                    progress: ProgressCallback | None = None) -> str:
    """Train and promote a demo champion when the registry has none; ``progress``: see :func:`train`."""
    from backend.models import PromotionRefused, Registry
    from backend.training.train import train_and_register

    reg = Registry(model.registry_dir, name=model.name)
    if reg.aliases().get("champion"):
        return f"champion model: {reg.aliases()['champion']} (already trained)"
    echo(f"training the demo model on {rows:,} synthetic applications (one time, ~20 s on 2 cores)…")
    report = train_and_register(None, rows=rows, seed=seed, registry_root=model.registry_dir,
                                name=model.name, progress=progress, cv_folds=DEMO_CV_FOLDS)
    try:
        result = reg.promote(report["version"])
    except PromotionRefused as exc:  # shown, never hidden: the demo still needs a model to serve
        echo(f"warning: {exc}; promoting anyway for the demo (see the Model registry page)")
        result = reg.promote(report["version"], gates_required=False)
    passed = all(g.get("passed") for g in result.get("gates", []))
    return (f"champion model: {report['version']} (held-out AUC {report['metrics']['auc']:.3f}; "
            f"gates {'passed' if passed else 'NOT all passed: see `creditrisk models show champion`'})")
