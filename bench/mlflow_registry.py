"""The MLflow registry against the folder it replaces, in one run: registering a version, the first load of a
version (MLflow: download + signature + every checksum, then the same verified load), a cached load, and the
lifecycle document read.

Run: ``.venv/bin/python bench/mlflow_registry.py [--url mlflow+http://127.0.0.1:5000] [--repeat 5]``
Without ``--url`` it starts an MLflow server on loopback from ``.mlflow-server`` (``make mlflow-server``; SQLite
store in a temporary folder). The model is a small synthetic one (1,500 rows, tiny ensembles): the registry's
overhead, not training, is what is timed. Figures are medians of ``--repeat``; ratios are MLflow / folder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import signing_key  # noqa: F401 - a signing key for this run (tests/signing_key.py)

    from backend.models import Registry, open_mlflow_registry
    from backend.training.dataset import from_synthetic
    from backend.training.synthetic import generate
    from backend.training.train import train

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = args.url
        if not url:
            import pytest
            from mlflow_server import mlflow_server

            try:
                url = stack.enter_context(mlflow_server(tmp / "server")).url
            except (pytest.skip.Exception, pytest.fail.Exception) as exc:
                sys.exit(f"no MLflow server: {exc}")
        result = train(from_synthetic(generate(1500, seed=7)), seed=7, cv_folds=2, n_estimators=3, n_boost=10,
                       n_trees=10)
        name = f"bench-{uuid.uuid4().hex[:6]}"
        folder, mlflow = Registry(tmp / "folder", name=name), open_mlflow_registry(url, tmp / "cache", name)
        rows = []
        for label, reg in (("folder", folder), ("mlflow", mlflow)):
            reg.register(result)  # a champion first: later registrations compare against it, as in production
            reg.promote(reg.versions()[-1], gates_required=False)
            register = _median(lambda reg=reg: reg.register(result), args.repeat)
            version = reg.versions()[-1]

            def first_load(reg=reg, label=label, version=version) -> None:
                fresh = reg if label == "folder" else open_mlflow_registry(
                    url, tmp / f"cache-{uuid.uuid4().hex[:6]}", name)
                fresh.load(version)

            first = _median(first_load, args.repeat)
            cached = _median(lambda reg=reg, version=version: reg.load(version), args.repeat)
            aliases = _median(reg.aliases, args.repeat)
            rows.append((label, register, first, cached, aliases))
        print(f"{'registry':<8} {'register':>10} {'first load':>11} {'cached load':>12} {'lifecycle read':>15}")
        for label, *figures in rows:
            print(f"{label:<8} " + " ".join(f"{f * 1000:>{w}.0f} ms" for f, w in zip(figures, (7, 8, 9, 12),
                                                                                    strict=True)))
        (_, *base), (_, *ml) = rows
        print("ratio    " + " ".join(f"{m / b:>{w}.1f}x" for m, b, w in zip(ml, base, (9, 10, 11, 14), strict=True))
              + f"   (MLflow / folder, medians of {args.repeat})")


if __name__ == "__main__":
    main()
