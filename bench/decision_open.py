"""Opening one decision on the Decision page (issue 20, item 7: target <= 1 s on the default history).

Times, in-process, the service calls ``pages/decision.py`` and its components make to open one decision,
in the page's order: the "simulated data" banner's count (``app.guard.label_simulated``), the stored result,
the case, the current decision, the rollout phase, the applicant box (``app.components.pii``), the card,
the explanation (the page writes the template one when none is stored: it is written here too), the
officer's rating, the Q&A history, and the adverse action notice (text and PDF) after a final denial.

Runs on a **copy** of a data directory's database (opening writes explanations and their audit rows).
Measured over ``--decisions`` decisions drawn at random (seeded), as a risk manager (who sees them all):

* **warm**: one process, each decision opened once (p50/p95/max per open and per call);
* **cold**: ``--cold`` fresh processes, each opening one decision first (model load, first connection and
  the OS cache as it is);
* the **baselines** in the same run: the raw read of the decision's two rows (prediction and application,
  one primary-key SELECT: the floor), and the open as it was before: the banner's count without migration
  0014's index ``ix_applications_source`` (dropped on the copy: it read the whole applications table) and
  the notice's PDF made at every open of a final denial (now a deferred download), warm and cold.

    PYTHONPATH=. .venv/bin/python bench/decision_open.py --data-dir var --registry-dir models
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from book_copy import book_arguments, copied_book

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 1.0
RAW = ("SELECT p.*, a.* FROM predictions p JOIN applications a ON a.id = p.application_id WHERE p.id = :id")


def open_decision(svc: Any, pid: str, user: Any, *, pdf: bool = False) -> dict[str, float]:
    """The page's calls for one decision, each timed (seconds); ``pdf``: the notice's PDF made at open too, as the
    page did before it became a deferred download."""
    from backend.decisioning import (
        AIHidden,
        NoticeNotRequired,
        build_notice,
        notice_outcome,
        render_pdf,
        render_text,
    )
    from backend.domain import DecisionError

    t: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            t[name] = t.get(name, 0.0) + time.perf_counter() - t0

    step("banner", svc.book.simulated_count)
    try:
        result = step("result", lambda: svc.workspace.result(pid, actor=user))
    except AIHidden:
        result = None
    case = step("case", lambda: svc.workspace.case(pid, actor=user))
    current = step("current", lambda: svc.decisions.current(case.application_id, actor=user))
    phase = step("phase", svc.rollout.active)
    step("applicant", lambda: svc.pii.summary(case.application_id, actor=user))
    if result is None:
        return t
    step("card", lambda: svc.scoring.card(result))
    if result.ai_visible and phase.enabled("explanations"):
        def explanation() -> Any:
            stored = svc.workspace.latest_explanation(pid, actor=user)
            try:
                return stored or svc.workspace.explain(pid, actor=user)
            except DecisionError:
                return None
        step("explanation", explanation)
        step("rating", lambda: svc.feedback.latest_rating(pid, actor=user))
    if result.ai_visible and phase.enabled("qa"):
        step("qa_history", lambda: svc.workspace.history(pid, actor=user))
    outcome, _why = notice_outcome(current)
    picked = list(current.notice_reasons or ()) if current is not None else []
    model_reasons = current is not None and not current.is_override
    if outcome is not None and (picked or model_reasons) and phase.enabled("letters"):
        def notice() -> Any:  # app.components.notice.letter_panel: the text and the PDF, or a sentence why not
            try:
                n = build_notice(result, applicant_name=None, decision_outcome=outcome, human_reasons=picked or None,
                                 settings=svc.settings, today=date.today(), bureau_key_factors=case.bureau_key_factors)
            except (NoticeNotRequired, ValueError):
                return None
            return render_text(n), render_pdf(n) if pdf else None
        step("notice", notice)
    return t


def raw_read(svc: Any, pid: str) -> float:
    from sqlalchemy import text

    t0 = time.perf_counter()
    with svc.db.read() as s:
        s.execute(text(RAW), {"id": pid}).one()
    return time.perf_counter() - t0


def banner(svc: Any) -> float:
    t0 = time.perf_counter()
    svc.book.simulated_count()
    return time.perf_counter() - t0


def services() -> tuple[Any, Any]:
    from sqlalchemy import text

    from backend.container import build_services, load_settings
    from backend.domain import Actor

    svc = build_services(load_settings(), migrate=False)
    with svc.db.read() as s:
        u = s.execute(text("SELECT username FROM users WHERE role = 'risk_manager' ORDER BY username LIMIT 1")).scalar_one()
    user = svc.users.get(u)
    assert isinstance(user, Actor)
    return svc, user


def child(pid: str, pdf: bool) -> None:
    """A fresh process: open one decision, print its timings as JSON."""
    svc, user = services()
    out = {"open": open_decision(svc, pid, user, pdf=pdf)}
    out["raw"] = {"raw": raw_read(svc, pid)}
    print(json.dumps(out))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def line(label: str, xs: list[float]) -> float:
    p50 = statistics.median(xs)
    print(f"  {label:<52} p50 {p50 * 1000:8.1f} ms  p95 {pct(xs, .95) * 1000:8.1f} ms  max {max(xs) * 1000:8.1f} ms"
          f"  (n={len(xs)})")
    return p50


def run_cold(pids: list[str], *, pdf: bool = False) -> list[dict[str, dict[str, float]]]:
    out = []
    for pid in pids:
        r = subprocess.run([sys.executable, __file__, "--child", pid, *(["--pdf"] if pdf else [])], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:  # noqa: PLR0915 - one measurement script, read top to bottom
    ap = argparse.ArgumentParser()
    book_arguments(ap)
    ap.add_argument("--decisions", type=int, default=200)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--child", default="")
    ap.add_argument("--pdf", action="store_true")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.pdf)
        return
    with copied_book(a.data_dir, a.registry_dir):
        svc, user = services()
        from sqlalchemy import text

        with svc.db.read() as s:
            every = [str(p) for p in s.execute(text("SELECT id FROM predictions ORDER BY id")).scalars()]
        rng = random.Random(a.seed)
        pids = rng.sample(every, a.decisions + 2 * a.cold)
        warm_pids, cold_pids, cold_old = pids[:a.decisions], pids[a.decisions:a.decisions + a.cold], pids[-a.cold:]
        print(f"{len(every):,} predictions; {a.decisions} decisions warm, {a.cold} + {a.cold} cold processes")

        cold = run_cold(cold_pids)
        open_decision(svc, warm_pids[0], user)  # the process's first open (model load), not counted as warm
        warm = [open_decision(svc, p, user) for p in warm_pids[1:]]
        raw = [raw_read(svc, p) for p in warm_pids[1:]]
        banner_new = [banner(svc) for _ in range(20)]
        reopen = [open_decision(svc, p, user) for p in warm_pids[1:21]]
        with svc.db.transaction() as s:  # the banner before migration 0014, on the copy
            s.execute(text("DROP INDEX ix_applications_source"))
        banner_old = [banner(svc) for _ in range(20)]
        cold_before = run_cold(cold_old, pdf=True)
        warm_before = [open_decision(svc, p, user, pdf=True) for p in rng.sample(every, 40)]
        svc.close()

    print("Opening a decision (the page's service calls), risk manager:")
    w = line("warm, first open of each decision", [sum(r.values()) for r in warm])
    line("warm, opened again", [sum(r.values()) for r in reopen])
    c = line("cold (fresh process, first open)", [sum(r["open"].values()) for r in cold])
    keys = sorted({k for r in warm for k in r})
    print("  warm per call (p50 / p95 ms): " + ", ".join(
        f"{k} {statistics.median(r.get(k, 0) for r in warm) * 1000:.1f}/{pct([r.get(k, 0) for r in warm], .95) * 1000:.1f}"
        for k in keys))
    ck = sorted({k for r in cold for k in r["open"]})
    print("  cold per call (p50 ms): " + ", ".join(
        f"{k} {statistics.median(r['open'].get(k, 0) for r in cold) * 1000:.0f}" for k in ck))
    print("Baselines, same run:")
    r = line("raw read of the two rows (warm)", raw)
    line("raw read of the two rows (cold process)", [x["raw"]["raw"] for x in cold])
    bn = line("banner count with ix_applications_source (warm)", banner_new)
    bo = line("banner count without it, as before 0014 (warm)", banner_old)
    wb = line("open as before (no index, PDF at open) (warm)", [sum(x.values()) for x in warm_before])
    cb = line("open as before (no index, PDF at open) (cold process)", [sum(x["open"].values()) for x in cold_before])
    print(f"Ratios: warm open / raw read {w / r:.0f}x; banner before/after {bo / bn:.0f}x; open before/after: "
          f"warm {wb / w:.1f}x, cold {cb / c:.1f}x; target <= {TARGET_S:g} s (p95 warm "
          f"{pct([sum(x.values()) for x in warm], .95):.3f} s, max cold {max(sum(x['open'].values()) for x in cold):.3f} s)")


if __name__ == "__main__":
    main()
