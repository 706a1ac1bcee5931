"""Model registry page: an ML engineer starts a canary and a risk manager approves it; rollback to an
earlier champion; the halted banner; retraining refused on an empty book; product lead refused."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.models.gates import GateConfig
from backend.models.halts import HALT_ACTION
from backend.models.registry import Registry
from backend.platform.db.tables_governance import AlertRow

PAGE = Path(__file__).resolve().parents[2] / "pages" / "models.py"
LENIENT = GateConfig(min_disparate_impact=0.0, max_auc_loss=1.0)  # a tiny challenger: gates set to pass


@pytest.fixture(scope="module")
def two_models(trained_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backend.training.train import train_and_register

    root = tmp_path_factory.mktemp("models_page") / "models"
    shutil.copytree(trained_registry, root)
    train_and_register(registry_root=root, rows=1500, seed=8, cv_folds=2, n_estimators=3, n_boost=10, n_trees=10,
                       gates=LENIENT)
    return root


@pytest.fixture
def ready(console, two_models):
    console.install_model(two_models)
    return console


def _page(console, role: str) -> AppTest:
    at = console.open_page(role, PAGE)
    assert not at.error, [e.value for e in at.error]
    return at


def _events(at: AppTest):  # noqa: ANN202 - a DataFrame
    return next(d.value for d in at.dataframe if "event" in d.value.columns)


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_ml_engineer_proposes_and_risk_manager_approves(ready):
    reg = Registry(ready.registry_dir)
    champion, challenger = reg.resolve("champion"), reg.resolve("challenger")
    at = _page(ready, "ml_engineer")
    assert "Approve step" not in _labels(at) and "Retrain now" in _labels(at)
    assert at.dataframe[0].value["version"].tolist() == [challenger, champion]  # versions, newest first
    cmp = at.dataframe[1].value  # champion vs challenger on the challenger's held-out rows
    assert list(cmp.columns) == ["metric", f"challenger {challenger}", f"champion {champion}"]
    assert any("same" in m.value and "held-out rows" in m.value for m in at.markdown)
    at.text_input(key="models_canary_note").input("<b>5%</b> first =SUM(A1)")
    at.button(key="models_canary_propose").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("from 0% to 5%" in s.value for s in at.success)
    assert "Propose next step" not in _labels(at)  # one step at a time

    mgr = _page(ready, "risk_manager")
    assert "Start canary" not in _labels(mgr) and "Propose next step" not in _labels(mgr)
    assert any(t.value == "<b>5%</b> first =SUM(A1)" for t in mgr.text)  # the note, verbatim and inert
    mgr.button(key="models_canary_approve").click().run()
    assert not mgr.exception and not mgr.error, [e.value for e in mgr.error]
    assert any("now serves 5% of applications" in s.value for s in mgr.success)
    assert reg.aliases()["canary"]["share"] == 5
    assert any(m.label == "Canary" and m.value == "5%" for m in mgr.metric)
    events = _events(mgr)
    assert events["event"].tolist()[:2] == ["canary step approved", "canary step proposed"]
    assert events["by"].tolist()[:2] == [ready.users["risk_manager"], ready.users["ml_engineer"]]


def test_rollback_from_the_page(ready):
    svc = ready.services
    reg = Registry(ready.registry_dir)
    first, second = reg.resolve("champion"), reg.resolve("challenger")
    svc.model_admin.promote(second, svc.users.get(ready.users["ml_engineer"]))
    at = _page(ready, "risk_manager")
    assert at.selectbox(key="models_rollback_to").value == first
    assert at.button(key="models_rollback").disabled  # confirm first
    at.checkbox(key="models_rollback_ok").check().run()
    at.text_input(key="models_rollback_note").input("drill")
    at.button(key="models_rollback").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value.startswith(f"Rolled back: {first} is the champion") for s in at.success)
    assert reg.aliases()["champion"] == first
    events = _events(at)
    assert events["event"].tolist()[:2] == ["rolled back to", "promoted"]
    assert events["note"].tolist()[0] == "drill"


def test_rolled_back_for_cause_is_not_offered_and_is_refused_from_the_page(ready):
    """Issue 19: the September model, rolled back for cause, must not come back through the canary picker."""
    from backend.training.train import train_and_register

    svc, reg = ready.services, Registry(ready.registry_dir)
    first, second = reg.resolve("champion"), reg.resolve("challenger")
    admin = svc.model_admin
    admin.promote(second, svc.users.get(ready.users["ml_engineer"]))
    admin.rollback(svc.users.get(ready.users["risk_manager"]), to=first,
                   cause="trained on the corrupted September feed (PSI above 0.25)")
    newest = train_and_register(registry_root=ready.registry_dir, rows=1500, seed=9, cv_folds=2, n_estimators=3,
                                n_boost=10, n_trees=10, gates=LENIENT)["version"]
    at = _page(ready, "ml_engineer")
    table = at.dataframe[0].value.set_index("version")
    assert table.loc[second, "state"] == "rolled back for cause" and "corrupted" in table.loc[second, "cause"]
    assert table.loc[first, "state"] == "champion" and table.loc[newest, "state"] == "challenger"
    assert all(str(lbl).startswith("creditrisk · trained ") and v not in str(lbl) for v, lbl in table["label"].items())
    picker = at.selectbox(key="models_canary_version")
    assert picker.value == newest  # the newest challenger that passed its gates, not the rolled-back one
    assert picker.options[0].startswith("creditrisk · trained ") and "rolled back for cause" in picker.options[-1]
    assert at.selectbox(key="models_cmp_version").value == newest  # the comparison is of the version considered
    assert not any(c.value == second for c in at.code) and any(c.value == newest for c in at.code)
    picker.set_value(second).run()
    assert any("cannot go to a canary" in w.value and "rolled back for cause" in w.value for w in at.warning)
    at.button(key="models_canary_propose").click().run()
    assert any("rolled back for cause" in e.value and "override" in e.value for e in at.error), [e.value for e in at.error]
    assert reg.aliases()["canary"] is None  # refused: nothing started

    mgr = _page(ready, "risk_manager")
    assert "models_rollback_to" not in [s.key for s in mgr.selectbox]  # its only earlier champion was rolled back
    assert any("No earlier champion (that was not rolled back for cause)" in c.value for c in mgr.caption)
    mgr.text_area(key="models_override_reason").input("clean retrain elsewhere; a 5% look is acceptable")
    mgr.button(key="models_override").click().run()
    assert not mgr.error, [e.value for e in mgr.error]
    assert reg.aliases()["overrides"][second]["by"] == ready.users["risk_manager"]
    again = _page(ready, "ml_engineer")
    again.selectbox(key="models_canary_version").set_value(second).run()
    again.button(key="models_canary_propose").click().run()
    assert not again.error and reg.aliases()["canary"]["version"] == second, [e.value for e in again.error]


def test_halted_banner_blocks_the_canary(ready):
    now = datetime(2026, 1, 15, tzinfo=UTC)
    with ready.services.db.transaction() as s:
        s.add(AlertRow(id=uuid.uuid4(), rule="disparate_impact", metric="disparate_impact", severity="critical",
                       action=HALT_ACTION, status="open", value=0.7, threshold=0.8, message="DI 0.70 < 0.80",
                       details={}, opened_at=now, last_seen_at=now, notifications=[]))
    at = ready.logged_in("ml_engineer")
    at.switch_page(str(PAGE)).run()
    assert not at.exception
    assert [e.value for e in at.error][0].startswith("**Deployments halted.**")
    assert "disparate\\_impact" in at.error[0].value
    assert at.button(key="models_canary_propose").disabled
    assert any(m.label == "Deployments" and m.value == "halted" for m in at.metric)


def test_retrain_on_an_empty_book_is_refused_clearly(ready):
    at = _page(ready, "ml_engineer")
    at.button(key="models_retrain").click().run()
    assert not at.exception
    assert any(e.value.startswith("too little data to retrain: 0 funded loan(s)") for e in at.error)
    assert len(Registry(ready.registry_dir).versions()) == 2  # nothing registered


def test_admin_sees_the_registry_without_actions(ready):
    at = _page(ready, "admin")
    assert not {"Start canary", "Approve step", "Roll back", "Retrain now"} & set(_labels(at))


def test_models_page_refuses_a_product_lead(ready):
    at = ready.logged_in("product_lead")
    assert PAGE.resolve() not in ready.registered_scripts(at)  # not in the menu
    page = AppTest.from_file(str(PAGE), default_timeout=30)  # and refused when run directly
    page.session_state[USER_KEY] = ready.services.users.get(ready.users["product_lead"])
    page.run()
    assert [e.value for e in page.error] == [NOT_ALLOWED]
    assert not page.button and not page.dataframe
