"""What the card and the notice say on fresh simulated applications, with the change against the old rules.

Run: ``.venv/bin/python bench/card_reasons.py --registry DIR [--rows 2000] [--seed 9]`` (``DIR``: a model registry,
e.g. one trained by ``creditrisk train``; its champion scores). Prints, on the same applications:

* principal reasons per application with the materiality floor (``policy.reason_floor``) against the old
  rule (no floor, top four), and how many listed reasons carried under 5% of the risk-raising contribution;
* for applications whose members all agree (the old "Confidence 100%"), how many sit near or close to the
  cutoff by the new measure (distance in member spreads);
* the bureau key factors the generator carried (share with none sent).

These are our own generated applications (``backend/training/synthetic.py``), not real ones.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=9)
    a = ap.parse_args()
    import tempfile

    import numpy as np

    from backend.container import build_services
    from backend.container.settings import load_settings
    from backend.models.reasons import ReasonMapper
    from backend.training import generate

    svc = build_services(load_settings(data_dir=tempfile.mkdtemp(), model={"registry_dir": a.registry}))
    m = svc.scoring.models.get("champion")
    old = ReasonMapper(m.columns, (m.manifest.get("data") or {}).get("reason_codes"), protected=m.manifest.get("protected")
                       or (), floor=0.0)
    df = generate(a.rows, seed=a.seed).drop(columns=["default", "pd_true"])
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")]
    new_n, old_n, small, labels, agree = [], [], 0, Counter(), 0
    for raw in rows:
        clean = svc.scoring.validate(raw, m)
        r = svc.scoring.evaluate(clean, m, use_cache=False)
        phi = np.array([r.attributions[c] for c in m.columns])
        before = old.top(phi, clean)
        total = float(phi[(phi > 0) & old.allowed].sum())
        small += sum(1 for x in before if total > 0 and x["weight"] / total < 0.05)
        new_n.append(len(r.reasons))
        old_n.append(len(before))
        if r.confidence == 1.0:
            agree += 1
            labels[svc.scoring.card(r).distance.label] += 1
    n = len(rows)
    none = sum(1 for v in df["bureau_key_factors"] if not v) / n
    print(f"applications: {n} (simulated, seed {a.seed}); floor {svc.settings.policy.reason_floor:.0%}")
    print(f"reasons per application: old {np.mean(old_n):.2f}, new {np.mean(new_n):.2f} "
          f"(ratio {np.mean(new_n) / np.mean(old_n):.2f}); old listed {small} reasons under 5% of the "
          f"risk-raising contribution ({small / max(sum(old_n), 1):.1%} of its reasons); new lists none")
    print(f"members all agree (old card 'Confidence 100%'): {agree}; by distance from the cutoff: "
          + ", ".join(f"{k} {v} ({v / max(agree, 1):.1%})" for k, v in sorted(labels.items())))
    print(f"bureau key factors: none sent for {none:.1%}")


if __name__ == "__main__":
    main()
