"""The fairness page: what a risk manager sees from stored snapshots (stages, the threshold's label,
small groups, downloads), the empty state with "Recompute now", and the refusal of other roles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.monitoring.fairness import KIND, NO_SNAPSHOTS, NOT_PROVIDED_LABEL, SMALL_LABEL, THRESHOLD_LABEL
from backend.monitoring.fairness_queries import CELL_KEYS
from backend.monitoring.fairness_report import ratio
from backend.monitoring.snapshot_queries import SnapshotRepository
from backend.platform.db.tables_governance import AuditLog

PAGE = Path(__file__).resolve().parents[2] / "pages" / "fairness.py"


def _cells(n: int, seed: int) -> pd.DataFrame:
    """Decided applications with a clear age disparity entering at the model stage and a tiny group."""
    rng = np.random.default_rng(seed)
    age = rng.choice(["18-24", "35-44", "55-64", "65+"], n, p=[0.3, 0.35, 0.34, 0.01])
    model = rng.random(n) < np.where(age == "18-24", 0.40, 0.70)
    final = model & (rng.random(n) < 0.95)
    funded = final & (rng.random(n) < 0.9)
    df = pd.DataFrame({"sex": rng.choice(["female", "male", "not_provided"], n, p=[0.48, 0.47, 0.05]), "age_band": age,
                       "race_ethnicity": rng.choice(["black", "white", "hispanic"], n), "phase": "pilot",
                       "arm": "ai", "ai": True, "model": model, "policy": model, "officer": final, "final": final,
                       "override": rng.random(n) < 0.07, "funded": funded, "known": funded,
                       "repaid": funded & (rng.random(n) > 0.05), "w": 1})
    return df.groupby(list(CELL_KEYS), as_index=False)["w"].sum()


def _seed(console) -> dict[str, float]:
    svc = console.services
    values = {}
    plan = [("month", "2025-10", datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC), 1),
            ("month", "2025-11", datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), 2),
            ("phase", "pilot", datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 30, tzinfo=UTC), 3)]
    for gran, period, lo, hi, seed in plan:
        payload = svc.fairness.summarize(_cells(3000, seed), seed=seed)
        payload["population"].update(applications=3000, undecided=0)
        payload["window"] = {"start": lo.isoformat(), "end": hi.isoformat()}
        with svc.db.transaction() as s:
            SnapshotRepository(s).put(kind=KIND, granularity=gran, period=period, window_start=lo, window_end=hi,
                                      computed_at=datetime(2026, 2, 1, tzinfo=UTC), n=3000,
                                      value=payload["min_di"]["value"], payload=payload)
        values[period] = payload["min_di"]["value"]
    return values


def _open(console, role: str) -> AppTest:
    at = console.open_page(role, PAGE)
    return at


def _texts(at: AppTest) -> str:
    out = []
    for e in console_leaves(at):
        for attr in ("value", "body", "label"):
            v = getattr(e, attr, None)
            if isinstance(v, str):
                out.append(v)
    return "\n".join(out)


def console_leaves(at: AppTest) -> list:
    from streamlit.testing.v1.element_tree import Block

    return [n for part in (at.main, at.sidebar) for n in part if not isinstance(n, Block)]


def test_risk_manager_sees_stages_threshold_small_groups_and_exports(console):
    values = _seed(console)
    at = _open(console, "risk_manager")
    assert [t.value for t in at.title] == ["Fairness"]
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Lowest DI, final decision"] == ratio(values["pilot"])  # the phase view is the default
    assert values["pilot"] < 0.8  # the crafted disparity: the warning names the screening threshold
    assert any(THRESHOLD_LABEL in w.value and "18-24" in w.value for w in at.warning)
    text = _texts(at)
    assert THRESHOLD_LABEL in text and "most favoured judged group" in text
    assert len(at.get("plotly_chart")) >= 4
    rates = next(d.value for d in at.dataframe if "DI ratio" in d.value.columns)
    assert set(rates["stage"]) == {"1. Model recommendation (low risk)", "2. Policy (recommendation: approve)",
                                   "3. Officer decision (before four-eyes)", "4. Final decision (approved)"}
    assert rates.loc[rates["group"] == "65+", "note"].eq(SMALL_LABEL).all()  # about 30 of 3,000: shown, not judged
    stage = at.selectbox(key="fairness_stage")  # short names fit the narrow column; the help has the full ones
    assert stage.options == ["1. Model recommendation", "2. Policy", "3. Officer decision", "4. Final decision"]
    assert stage.value == "final" and "4. Final decision (approved)" in (stage.help or "")
    at.selectbox(key="fairness_attr").set_value("sex").run()
    rates = next(d.value for d in at.dataframe if "DI ratio" in d.value.columns)
    assert rates.loc[rates["group"] == "not_provided", "note"].eq(NOT_PROVIDED_LABEL).all()  # 150: never judged
    assert rates.loc[rates["group"] != "not_provided", "note"].eq("").all()
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Download report (HTML)", "Download report (PDF)", "Download CSV"} <= set(labels)

    at.radio(key="fairness_gran").set_value("month").run()
    assert at.metric[0].value == ratio(values["2025-11"])  # the newest month
    at.selectbox(key="fairness_attr").set_value("sex+age_band").run()
    at.selectbox(key="fairness_view").set_value("blind").run()
    assert not at.exception and not at.error
    assert "Intersections are computed over all decided applications." in _texts(at)


def test_without_snapshots_the_page_explains_monitor_run_and_recomputes(console):
    at = _open(console, "risk_manager")
    assert [i.value for i in at.info] == [NO_SNAPSHOTS] and "creditrisk monitor run" in NO_SNAPSHOTS
    next(b for b in at.button if b.label == "Recompute now").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Recomputed: 0 snapshots stored."]  # an empty book
    with console.services.db.read() as s:
        rows = s.query(AuditLog).filter(AuditLog.action == "fairness_refreshed").all()
    assert [(r.actor, r.role) for r in rows] == [(console.users["risk_manager"], "risk_manager")]


@pytest.mark.parametrize("role", ["ml_engineer", "product_lead", "loan_officer"])
def test_other_roles_are_refused_and_see_no_figures(console, role):
    _seed(console)
    at = console.logged_in(role)
    assert PAGE.resolve() not in console.registered_scripts(at)
    page = AppTest.from_file(str(PAGE), default_timeout=30)
    page.session_state[USER_KEY] = console.services.users.get(console.users[role])
    page.run()
    assert [e.value for e in page.error] == [NOT_ALLOWED]
    assert not page.dataframe and not page.metric and not page.get("plotly_chart") and not page.title
