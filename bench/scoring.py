"""Scoring latency and throughput: scikit-learn / imbalanced-learn reference vs compiled numba models.

Run ``.venv/bin/python bench/scoring.py [--rows N]``. Fits the primary (EasyEnsemble of
AdaBoost stumps) and the fallback (BalancedRandomForest) on the synthetic data the unit tests
use, compiles both, warms numba up, then prints per model:

* single row: reference ``predict_proba`` p50/p99 vs compiled ``score_one`` (probability,
  margin, attributions and member probabilities) p50/p99, and the p50 ratio;
* batch: reference rows/s (on ``--ref-rows`` rows) vs compiled ``predict_proba`` rows/s on
  ``--rows`` rows (best of three), and the ratio;
* fidelity: max |compiled - reference| over every row the reference scored.

Targets (primary): single row with attributions p50 <= 50 us, batch >= 1,000,000 rows/s,
fidelity <= 1e-9. Timings depend on the machine and its load; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np
from imblearn.ensemble import BalancedRandomForestClassifier, EasyEnsembleClassifier
from sklearn.datasets import make_classification

from backend.models.compiled import compile_estimator

N_FEATURES = 93
TARGET_P50_US = 50.0
TARGET_ROWS_PER_S = 1_000_000
TARGET_FIDELITY = 1e-9


def make_data(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit tests' data: 5,000 training rows and 1,000 held-out rows, 5 % positives."""
    X, y = make_classification(
        n_samples=6000,
        n_features=N_FEATURES,
        n_informative=12,
        n_redundant=8,
        weights=[0.95],
        random_state=seed,
    )
    return X[:5000], y[:5000], X[5000:]


def jittered(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows resampled from ``rows`` with 10 % Gaussian jitter (no two rows identical)."""
    out = rows[rng.integers(0, len(rows), n)]
    out += rng.standard_normal(out.shape) * (0.1 * rows.std(axis=0))
    return out


def percentiles_us(samples_ns: list[int]) -> tuple[float, float]:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def time_single(fn, rows: np.ndarray, repeats: int) -> tuple[float, float]:
    samples = []
    for i in range(repeats):
        x = rows[i % len(rows)]
        t0 = time.perf_counter_ns()
        fn(x)
        samples.append(time.perf_counter_ns() - t0)
    return percentiles_us(samples)


def _thread_seconds(fn, X: np.ndarray) -> float:
    t0 = time.thread_time()
    fn(X)
    return time.thread_time() - t0


def time_batch(fn, X: np.ndarray, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(X)
        best = min(best, time.perf_counter() - t0)
    return len(X) / best


def bench_model(name, model, X_background, X_holdout, args, rng, scale=1) -> dict[str, float | str]:
    """Time one model; ``scale`` divides the compiled sample sizes (the forest's TreeSHAP is slower)."""
    single, rows = max(args.single // scale, 100), max(args.rows // scale, 1000)
    compiled = compile_estimator(model)
    compiled.set_background(X_background)
    # warm-up: loads (or compiles) every numba kernel used below
    compiled.score_one(X_holdout[0])
    compiled.predict_proba(X_holdout[:1000])
    compiled.attributions(X_holdout[:4])

    ref_single = time_single(lambda x: model.predict_proba(x[None, :]), X_holdout, args.ref_single)
    cmp_single = time_single(compiled.score_one, X_holdout, single)

    X_ref = np.vstack([X_holdout, jittered(X_holdout, args.ref_rows, rng)])
    t0 = time.perf_counter()
    reference = model.predict_proba(X_ref)[:, 1]
    ref_rate = len(X_ref) / (time.perf_counter() - t0)
    fidelity = float(np.abs(compiled.predict_proba(X_ref) - reference).max())
    one = np.array([compiled.score_one(x)[0] for x in X_ref[:single]])
    fidelity = max(fidelity, float(np.abs(one - reference[:single]).max()))

    X_big = jittered(X_holdout, rows, rng)
    cmp_rate = time_batch(compiled.predict_proba, X_big, 3)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # CPU seconds of one thread: robust to other load on the machine
    part = X_big[: max(rows // 5, 1)]
    cpu_ns = min(_thread_seconds(compiled.predict_proba, part) for _ in range(3)) / len(part) * 1e9
    numba.set_num_threads(threads)
    return {
        "model": name,
        "single": single,
        "rows": rows,
        "ref_p50": ref_single[0],
        "ref_p99": ref_single[1],
        "cmp_p50": cmp_single[0],
        "cmp_p99": cmp_single[1],
        "ref_rate": ref_rate,
        "cmp_rate": cmp_rate,
        "fidelity": fidelity,
        "cpu_ns": cpu_ns,
    }


def print_table(results: list[dict], args) -> None:
    print()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cpus={os.cpu_count()}, numba threads={numba.get_num_threads()}, load average {load}")
    print(f"reference: {args.ref_single} single rows, {args.ref_rows + 1000:,} batch rows")
    for r in results:
        print(
            f"{r['model']}: compiled {r['single']:,} single rows, {r['rows']:,} batch rows; "
            f"batch CPU cost on one thread {r['cpu_ns']:,.0f} ns/row ({1e9 / r['cpu_ns']:,.0f} rows/s per core)"
        )
    head = (
        f"{'model':<24}{'ref p50/p99 us':>20}{'score_one p50/p99 us':>24}{'x p50':>9}"
        f"{'ref rows/s':>13}{'compiled rows/s':>17}{'x rows/s':>10}{'max |diff|':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['model']:<24}{r['ref_p50']:>11,.0f} /{r['ref_p99']:>7,.0f}"
            f"{r['cmp_p50']:>14.1f} /{r['cmp_p99']:>8.1f}{r['ref_p50'] / r['cmp_p50']:>9,.0f}"
            f"{r['ref_rate']:>13,.0f}{r['cmp_rate']:>17,.0f}{r['cmp_rate'] / r['ref_rate']:>10,.0f}"
            f"{r['fidelity']:>12.1e}"
        )
    primary = results[0]
    checks = [
        (
            f"primary single row with attributions p50 <= {TARGET_P50_US:.0f} us",
            primary["cmp_p50"] <= TARGET_P50_US,
        ),
        (f"primary batch >= {TARGET_ROWS_PER_S:,} rows/s", primary["cmp_rate"] >= TARGET_ROWS_PER_S),
        (
            f"both models fidelity <= {TARGET_FIDELITY:g}",
            all(r["fidelity"] <= TARGET_FIDELITY for r in results),
        ),
    ]
    print()
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISS'}] {label}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="compiled batch rows")
    parser.add_argument("--ref-rows", type=int, default=20_000, help="extra reference batch rows")
    parser.add_argument("--single", type=int, default=20_000, help="compiled single-row calls")
    parser.add_argument("--ref-single", type=int, default=60, help="reference single-row calls")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X, y, X_holdout = make_data()
    t0 = time.perf_counter()
    primary = EasyEnsembleClassifier(n_estimators=10, random_state=0, n_jobs=1).fit(X, y)
    fallback = BalancedRandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
    print(f"fitted both models in {time.perf_counter() - t0:.1f} s")
    results = [
        bench_model("easy_ensemble (primary)", primary, X[:100], X_holdout, args, rng),
        bench_model("balanced_random_forest", fallback, X[:100], X_holdout, args, rng, scale=20),
    ]
    print_table(results, args)


if __name__ == "__main__":
    main()
