"""Offline Q&A answer latency, in-process: the new engine vs the keyword engine it replaces, same run.

Run ``PYTHONPATH=. .venv/bin/python bench/qa_answer.py [--apps 40] [--baseline-rev c0f33a7]``.
Trains a tiny model (tests/small_champion.py) into a temporary registry, scores synthetic applications
(not persisted), then answers the same questions (why, what would it take, what-ifs on the amount, term
and income, compare, define) about the same decisions with

* the **baseline**: ``backend/explanations/questions.py`` and ``questions_intents.py`` as they were at
  ``--baseline-rev`` (loaded from git into a temporary package; it refuses the income what-if), and
* the **new** engine (:class:`backend.explanations.DecisionQA`),

after one warm-up pass each (the classifier's one-off training is timed separately). Prints p50/p95/max
per engine and per intent, and the ratio baseline p95 / new p95. Target: new p95 <= 150 ms. Timings
depend on the machine and its load (the figures in the README say which); nothing here asserts them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["Why was this denied?", "What would it take to get this approved?", "What would change the outcome?",
             "What if the loan amount were $8,000?", "with a 60-month term?", "What if their income were $80,000?",
             "How does the DTI compare with approved applicants?", "What is revolving utilization?"]
TARGET_P95_MS = 150.0


def _baseline(rev: str, tmp: Path) -> Any:
    """The old DecisionQA class, loaded from git as package ``baseline_qa``."""
    pkg = tmp / "baseline_qa"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("questions", "questions_intents"):
        src = subprocess.run(["git", "show", f"{rev}:backend/explanations/{name}.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(src.replace("backend.explanations.questions_intents",
                                                    "baseline_qa.questions_intents"))
    sys.path.insert(0, str(tmp))
    spec = importlib.util.find_spec("baseline_qa.questions")
    assert spec is not None
    return importlib.import_module("baseline_qa.questions").DecisionQA


def _services(tmp: Path) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    import signing_key  # noqa: F401 - a fresh signing key for the temporary registry
    from small_champion import train_small_champion

    from backend.container import build_services
    from backend.container.settings import load_settings

    reg = tmp / "models"
    train_small_champion(reg)
    return build_services(load_settings(data_dir=tmp, model={"registry_dir": reg}), migrate=True)


def _time(qa: Any, decisions: list[Any], stats: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {q: [] for q in QUESTIONS}
    for r in decisions:
        for q in QUESTIONS:
            t0 = time.perf_counter()
            qa.ask(q, result=r, comparison=stats)
            out[q].append((time.perf_counter() - t0) * 1000)
    return out


def _summary(name: str, times: dict[str, list[float]]) -> float:
    every = np.concatenate([np.asarray(v) for v in times.values()])
    p50, p95, top = np.percentile(every, 50), np.percentile(every, 95), every.max()
    print(f"{name:9s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {top:7.1f} ms   (n={len(every)})")
    for q, v in times.items():
        print(f"    {q[:48]:48s} p95 {np.percentile(v, 95):7.1f} ms")
    return float(p95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=40, help="decisions asked about (non-approved first)")
    ap.add_argument("--baseline-rev", default="c0f33a7", help="git revision of the keyword engine")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("CREDITRISK_DATA_DIR", str(tmp))
        Old = _baseline(args.baseline_rev, tmp)
        svc = _services(tmp)
        from backend.domain import Actor
        from backend.explanations import DecisionQA, FrameComparisonStats
        from backend.explanations.qa_classifier import model
        from backend.training.synthetic import generate

        df = generate(600, seed=11).drop(columns=["default", "pd_true"]).astype(object)
        rows = df.where(df.notna(), None).to_dict("records")
        scored = svc.scoring.score_many(rows, submitter=Actor("bench", "loan_officer"), persist=False)
        import pandas as pd
        stats = FrameComparisonStats.approved_from(pd.DataFrame(
            [{**r.features, "recommendation": r.recommendation} for r in scored]))
        decisions = sorted(scored, key=lambda r: r.recommendation == "approve")[:args.apps]
        t0 = time.perf_counter()
        model()
        print(f"classifier training (once per process): {(time.perf_counter() - t0) * 1000:.0f} ms")
        old, new = Old(svc.scoring), DecisionQA(svc.scoring)
        _time(old, decisions[:3], stats)
        _time(new, decisions[:3], stats)
        print(f"{len(decisions)} decisions x {len(QUESTIONS)} questions; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        p_old = _summary("baseline", _time(old, decisions, stats))
        p_new = _summary("new", _time(new, decisions, stats))
        print(f"p95 ratio baseline/new: {p_old / p_new:.1f}x; new p95 {p_new:.1f} ms "
              f"({'meets' if p_new <= TARGET_P95_MS else 'misses'} the {TARGET_P95_MS:.0f} ms target)")
        svc.close()


if __name__ == "__main__":
    main()
