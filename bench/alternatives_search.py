"""The less-discriminatory-alternatives search on the simulated book, timed (the figure quoted in the README).

Usage: CREDITRISK_DATA_DIR=DIR CREDITRISK_MODEL__REGISTRY_DIR=DIR/models python bench/alternatives_search.py [AS_OF]
(after `creditrisk seed-demo` into DIR). Does what `creditrisk retrain --search-alternatives --as <ML engineer>`
does (retrain on the book, search, register the chosen alternative as the challenger) and prints the frontier,
the chosen alternative's worst adverse-impact ratio and its AUC cost against the base retrained model (the baseline
it replaces), and the time taken by the retrain and by the search.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from backend.container import build_services
from backend.domain import Actor
from backend.training import frontier_table, headline


def main() -> None:
    svc = build_services()
    at = datetime.fromisoformat(sys.argv[1]).replace(tzinfo=UTC) if len(sys.argv) > 1 else None
    t0 = time.perf_counter()
    rep = svc.retrainer.from_book(Actor("sim.marcus", "ml_engineer"), at=at, search_alternatives=True)
    total = time.perf_counter() - t0
    record = rep["alternatives"]
    table = frontier_table(record)
    print(table.drop(columns=["what changed"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(headline(record))
    base = table[table["candidate"] == "base"].iloc[0]
    chosen = table[table["chosen"]]
    if not chosen.empty:
        c = chosen.iloc[0]
        print(f"worst AIR {c['worst AIR']:.3f} vs base {base['worst AIR']:.3f} (ratio {c['worst AIR'] / base['worst AIR']:.2f}x); "
              f"AUC {c['AUC']:.4f} vs base {base['AUC']:.4f} (cost {c['AUC cost']:.4f}); registered {record['version']}")
    print(f"rows: {record['train_rows']:,} training, {record['held_out_rows']:,} held out; base retrain "
          f"{rep['timings']['train_s']:.1f} s; search {record['timings']['total_s']:.1f} s "
          f"({len(table) - 1} candidates); whole command {total:.1f} s")


if __name__ == "__main__":
    main()
