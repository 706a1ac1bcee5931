"""Per-application decision latency through the real serving objects, compiled vs reference.

Trains a model on synthetic data (or uses ``--registry DIR``), then times on the same applications:

* reference: scikit-learn's ``predict_proba`` on a one-row DataFrame (the imblearn pipeline with our
  encoder), then the same reasons and policy;
* decision core (compiled): encode -> compiled score with exact attributions -> reason selection ->
  policy -> calibrated PD (what the issue's 50 µs target covers);
* service evaluate (compiled): the above plus building the full result (reason texts, per-feature
  attribution dict) as the console/API/CLI receive it, cache off;
* service evaluate, cache hit.

Usage: ``.venv/bin/python bench/service.py [--rows 20000] [--apps 3000]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

from backend.container.settings import load_settings
from backend.domain.policy import decide
from backend.models.provider import ModelProvider
from backend.platform.adapters.cache_memory import MemoryCache
from backend.platform.clock import SystemClock
from backend.scoring.service import ScoringService
from backend.training.synthetic import generate


def timed(fn, items) -> np.ndarray:
    out = np.empty(len(items))
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        fn(item)
        out[i] = time.perf_counter() - t0
    return out * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="training rows (when no --registry)")
    ap.add_argument("--apps", type=int, default=3_000, help="applications timed per path")
    ap.add_argument("--registry", default=None, help="use the champion of an existing registry")
    args = ap.parse_args()

    root = args.registry
    if root is None:
        from backend.models.registry import Registry
        from backend.training.train import train_and_register

        root = tempfile.mkdtemp(prefix="bench-registry-")
        t0 = time.perf_counter()
        report = train_and_register(None, rows=args.rows, seed=1, registry_root=root, cv_folds=2)
        Registry(root).promote(report["version"], gates_required=False)
        print(f"trained on {args.rows:,} synthetic rows in {time.perf_counter() - t0:.1f} s")
    settings = load_settings(model={"registry_dir": root})
    provider = ModelProvider(settings.model, settings.policy)
    model = provider.get("champion")
    service = ScoringService(None, MemoryCache(max_entries=100_000), provider, SystemClock())  # type: ignore[arg-type]

    frame = generate(args.apps, seed=99).drop(columns=["default", "pd_true"]).astype(object)
    apps = [service.validate(r, model) for r in frame.where(frame.notna(), None).to_dict("records")]
    ref_apps = apps[: max(50, args.apps // 30)]

    def core(clean):
        x = model.encoder.encode_one(clean)
        raw, _margin, phi, members = model.primary.score_one(x)
        model.reasons.select(phi)
        decide(raw, loan_amount=clean["loan_amount"], members=members.tolist(), fallback_used=False,
               policy=model.policy)
        return model.calibrate(raw, model="primary")

    pipeline = model._loaded.reference()["primary"]

    def reference(clean):
        raw = float(pipeline.predict_proba(pd.DataFrame([clean]))[0, 1])
        x = model.encoder.encode_one(clean)
        _, _, phi, members = model.primary.score_one(x)  # sklearn has no exact attributions of its own
        model.reasons.select(phi)
        decide(raw, loan_amount=clean["loan_amount"], members=members.tolist(), fallback_used=False,
               policy=model.policy)
        return model.calibrate(raw, model="primary")

    for clean in apps[:200]:  # warm-up: numba, caches, allocator
        core(clean)
        service.evaluate(clean, model, use_cache=False)
    reference(ref_apps[0])
    for clean in apps:
        service.evaluate(clean, model, use_cache=True)  # fill the cache for the hit path

    rows = [
        ("reference (sklearn predict_proba)", timed(reference, ref_apps)),
        ("decision core, compiled", timed(core, apps)),
        ("service evaluate, compiled, cache off", timed(lambda c: service.evaluate(c, model, use_cache=False), apps)),
        ("service evaluate, cache hit", timed(lambda c: service.evaluate(c, model, use_cache=True), apps)),
    ]
    base = float(np.median(rows[0][1]))
    load = os.getloadavg()
    print(f"model {model.version} ({len(model.columns)} features), cpus={os.cpu_count()}, "
          f"load average {load[0]:.1f}")
    print(f"{'path (score + attributions + reasons + policy)':48} {'n':>6} {'p50 us':>10} {'p99 us':>10} {'x faster':>9}")
    for name, t in rows:
        p50, p99 = np.percentile(t, [50, 99])
        print(f"{name:48} {len(t):6d} {p50:10.1f} {p99:10.1f} {base / p50:9.0f}")
    core_p50 = float(np.median(rows[1][1]))
    print(f"\n  [{'ok' if core_p50 <= 50 else 'MISSED'}] decision core p50 {core_p50:.1f} us (target <= 50 us)")


if __name__ == "__main__":
    main()
