"""Model registry page, Incidents tab: a rollback for cause opens its incident on view, with the steps and clocks;
closing before verification and post-mortem is refused on the page; a role without rollback rights sees no action."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backend.models.registry import Registry

PAGE = Path(__file__).resolve().parents[2] / "pages" / "models.py"


@pytest.fixture(scope="module")
def rolled_back(trained_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backend.training.train import train_and_register

    root = tmp_path_factory.mktemp("inc_page") / "models"
    shutil.copytree(trained_registry, root)
    rep = train_and_register(registry_root=root, rows=1500, seed=9, cv_folds=2, n_estimators=3, n_boost=10, n_trees=10)
    reg = Registry(root)
    reg.promote(rep["version"], gates_required=False)
    reg.rollback(by="marcus", cause="trained on a corrupted feed; must not serve again (page test)")
    return root


@pytest.fixture
def ready(console, rolled_back):
    console.install_model(rolled_back)
    return console


def test_the_rollback_shows_an_open_incident_that_cannot_close_early(ready):
    at = ready.open_page("ml_engineer", PAGE)
    steps = next(d.value for d in at.dataframe if "step" in d.value.columns)
    assert list(steps["step"]) == ["1. Roll back", "2. Verify from the records", "3. Decisions queued for review",
                                   "4. Post-mortem"]
    assert steps.loc[0, "met"] == "yes" and steps.loc[3, "met"] == "not done"
    assert any("trained on a corrupted feed" in t.value for t in at.text)
    at.button(key="models_inc_close").click().run()
    assert any("cannot close incident" in e.value for e in at.error)
    assert ready.services.incidents.all()[0]["status"] == "open"


def test_admin_sees_the_incident_without_actions(ready):
    at = ready.open_page("admin", PAGE)
    assert any("step" in d.value.columns for d in at.dataframe)
    assert not {"Verify now", "Close the incident"} & {b.label for b in at.button}
