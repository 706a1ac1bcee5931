"""Builds the fact-check corpus (written by this project, not an external one): run it to regenerate.

    PYTHONPATH=. .venv/bin/python tests/corpus/build_factcheck_corpus.py

* ``factcheck_records.jsonl`` — decision records: synthetic applications (``backend.training.synthetic``)
  with sparse attributions through the real reason builder (``backend.models.reasons.top_reasons``) and
  ``DecisionRecord.from_score``; the risk class follows a raw score, not the calibrated PD, so some
  records have a PD band that disagrees with the card (a "moderate" PD on a high-risk denial);
* ``factcheck_true.jsonl`` — correct explanations in many styles (every claim is in the record);
* ``factcheck_hostile.jsonl`` — one lie each, inserted into a correct explanation, in the categories of
  issue 16 and more, with wordings written to get past the check (paraphrases, look-alike letters,
  zero-width characters, spelled-out numbers, proxies, numbers equal to another fact's value).

Every line: ``{"id", "record", "category", "text", "lie"}`` (``lie``: the hostile sentence, absent for
true lines). The generator is seeded; the hand-written wordings are the lists below.
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from backend.domain.features import FEATURE_NAMES
from backend.explanations.record import DecisionRecord
from backend.models.reasons import top_reasons
from backend.training.synthetic import generate

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from factcheck_lies import hostile_sentences  # noqa: E402
from factcheck_phrases import true_explanation  # noqa: E402

N_RECORDS = 60


def _clean(v: object) -> object:
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v


def records() -> list[DecisionRecord]:
    df = generate(N_RECORDS, seed=1616)
    rng = np.random.default_rng(1616)
    out = []
    for i in range(N_RECORDS):
        vals = {k: _clean(df.iloc[i][k]) for k in FEATURE_NAMES}
        phi = rng.normal(0, 0.3, len(FEATURE_NAMES)) * (rng.random(len(FEATURE_NAMES)) < 0.3)
        pd_ = float(rng.beta(1.2, 6))
        raw = min(0.99, max(0.01, pd_ * 3 + rng.normal(0, 0.12)))
        risk = "high_risk" if raw >= 0.5 else "low_risk"
        rec = "manual_review" if rng.random() < 0.2 else ("deny" if risk == "high_risk" else "approve")
        result = SimpleNamespace(recommendation=rec, pd=pd_, confidence=float(rng.uniform(0.6, 1.0)), risk_class=risk,
                                 model_version="corpus", reasons=top_reasons(FEATURE_NAMES, phi, vals),
                                 policy_reasons=[], attributions=dict(zip(FEATURE_NAMES, phi.tolist(), strict=True)),
                                 features=vals)
        r = DecisionRecord.from_score(result)
        if r.reasons and r.helping():
            out.append(r)
    return out


def main() -> None:
    recs = records()
    rng = random.Random(16)
    with open(HERE / "factcheck_records.jsonl", "w") as f:
        for i, r in enumerate(recs):
            f.write(json.dumps({"id": i, "record": r.to_dict()}) + "\n")
    true_lines, hostile_lines = [], []
    for k in range(330):
        i = k % len(recs)
        true_lines.append({"id": f"t{k}", "record": i, "category": "true",
                           "text": true_explanation(recs[i], rng)})
    k = 0
    for i, r in enumerate(recs):
        for category, lie in hostile_sentences(r, rng, i):
            base = true_explanation(r, rng).split("\n")
            base.insert(rng.randrange(1, len(base) + 1), lie)
            hostile_lines.append({"id": f"h{k}", "record": i, "category": category, "text": "\n".join(base),
                                  "lie": lie})
            k += 1
    for name, lines in (("factcheck_true.jsonl", true_lines), ("factcheck_hostile.jsonl", hostile_lines)):
        with open(HERE / name, "w") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"{len(recs)} records, {len(true_lines)} true, {len(hostile_lines)} hostile")


if __name__ == "__main__":
    main()
