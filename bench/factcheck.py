"""The fact-check's cost per explanation, against the baseline it replaces, in one run.

    python bench/factcheck.py [--repeat 3]

On the project's corpus (tests/corpus/factcheck_*.jsonl: 750 explanations, hostile and true, on 60 decision
records), three ways, each the best of ``--repeat`` passes, interleaved:

* **whole**: ``fact_check(text, record)`` as the console checks a finished explanation, every alias pattern tried
  on every sentence (baseline) and only the patterns whose alias words the sentence holds (now);
* **streamed**: what a streamed answer costs: each sentence checked as it arrives, then the whole answer, without
  the memo (baseline: every sentence checked twice) and with it (now).

Verdicts are compared as well (tests/unit/test_factcheck_prefilter.py proves them equal).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from factcheck_corpus import HOSTILE, RECORDS, TRUE  # noqa: E402

from backend.explanations import factcheck_rules  # noqa: E402
from backend.explanations.factcheck import fact_check, sentences  # noqa: E402
from backend.explanations.factcheck_base import ALIASES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = [(d["text"], RECORDS[int(d["record"])]) for d in HOSTILE + TRUE]
    unfiltered = [(p, names, code, ()) for p, names, code, _ in ALIASES]

    def whole(filtered: bool) -> tuple[float, list[bool]]:
        factcheck_rules.ALIASES = ALIASES if filtered else unfiltered  # type: ignore[assignment]
        t = time.perf_counter()
        verdicts = [fact_check(text, rec).ok for text, rec in work]
        return time.perf_counter() - t, verdicts

    def streamed(memo: bool) -> tuple[float, list[bool]]:
        factcheck_rules.ALIASES = ALIASES  # type: ignore[assignment]
        t = time.perf_counter()
        verdicts = []
        for text, rec in work:
            m: dict | None = {} if memo else None
            for s in sentences(text):
                fact_check(s, rec, m)
            verdicts.append(fact_check(text, rec, m).ok)
        return time.perf_counter() - t, verdicts

    best: dict[str, float] = {}
    seen: dict[str, list[bool]] = {}
    for _ in range(args.repeat):
        for name, run in (("whole, every pattern", lambda: whole(False)), ("whole, words first", lambda: whole(True)),
                          ("streamed, no memo", lambda: streamed(False)), ("streamed, memo", lambda: streamed(True))):
            secs, verdicts = run()
            best[name] = min(best.get(name, secs), secs)
            seen[name] = verdicts
    factcheck_rules.ALIASES = ALIASES  # type: ignore[assignment]
    n = len(work)
    print(f"{n} explanations ({sum(len(sentences(t)) for t, _ in work)} sentences), best of {args.repeat}:")
    for name, secs in best.items():
        print(f"  {name:22} {secs:7.2f} s  {secs / n * 1000:6.2f} ms per explanation")
    print(f"whole: {best['whole, every pattern'] / best['whole, words first']:.2f}x faster; "
          f"streamed: {best['streamed, no memo'] / best['streamed, memo']:.2f}x faster; "
          f"same verdicts: {len({tuple(v) for v in seen.values()}) == 1}")


if __name__ == "__main__":
    main()
