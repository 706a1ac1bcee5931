"""Glue used by the demo: make sure a champion exists (train on synthetic data, then promote)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.config import Settings

DEMO_CV_FOLDS = 3  # the demo reports 3-fold CV to keep the first `make run` short


def ensure_champion(settings: Settings, *, rows: int, seed: int, echo: Callable[..., Any] = print) -> str:
    from backend.model.registry import PromotionRefused, Registry
    from backend.training.train import train_and_register

    reg = Registry(settings.model.registry_dir, name=settings.model.name)
    if reg.aliases().get("champion"):
        return f"champion model: {reg.aliases()['champion']} (already trained)"
    echo(f"training the demo model on {rows:,} synthetic applications (one time, 1-2 minutes on 2 cores)…")
    report = train_and_register(None, rows=rows, seed=seed, registry_root=settings.model.registry_dir,
                                name=settings.model.name, progress=_bar(), cv_folds=DEMO_CV_FOLDS)
    try:
        result = reg.promote(report["version"])
    except PromotionRefused as exc:  # shown, never hidden: the demo still needs a model to serve
        echo(f"warning: {exc}; promoting anyway for the demo (see the Model registry page)")
        result = reg.promote(report["version"], gates_required=False)
    passed = all(g.get("passed") for g in result.get("gates", []))
    return (f"champion model: {report['version']} (held-out AUC {report['metrics']['auc']:.3f}; "
            f"gates {'passed' if passed else 'NOT all passed: see `creditrisk models show champion`'})")


def _bar() -> Callable[[str, int, int], None]:
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def progress(step: str, done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc="training", unit="step")
        bar.set_postfix_str(step)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress
