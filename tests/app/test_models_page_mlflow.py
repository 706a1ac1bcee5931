"""Model registry page on an MLflow registry (issue 19, item 4): the console reads the versions and their lifecycle
from a real MLflow server on loopback and its buttons act through it (the canary shows as MLflow's ``canary``
alias); a version rolled back for cause is refused from the page, as with the folder."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow_server import mlflow_server, require
from streamlit.testing.v1 import AppTest

from backend.models.adapters.mlflow_registry import TAG_STATE, TAG_VERSION, open_mlflow_registry
from backend.models.gates import GateConfig

PAGE = Path(__file__).resolve().parents[2] / "pages" / "models.py"
LENIENT = GateConfig(min_disparate_impact=0.0, max_auc_loss=1.0)
CAUSE = "trained on the corrupted September feed (PSI above 0.25)"

try:
    from mlflow import MlflowClient

    HAVE_CLIENT = True
except ImportError:  # pragma: no cover - the pinned client is in requirements-dev.txt
    HAVE_CLIENT = False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require(HAVE_CLIENT, "the MLflow client is not installed: pip install -r requirements-dev.txt")
    with mlflow_server(tmp_path_factory.mktemp("mlflow-page")) as s:
        yield s


@pytest.fixture(scope="module")
def trained():
    from backend.training.dataset import from_synthetic
    from backend.training.synthetic import generate
    from backend.training.train import train

    return train(from_synthetic(generate(1500, seed=7)), seed=7, cv_folds=2, n_estimators=3, n_boost=10, n_trees=10)


@pytest.fixture
def on_mlflow(console, server, trained, monkeypatch):
    """The console configured for MLflow with A (champion), B and C registered there."""
    name = f"crt-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_URL", server.url)
    monkeypatch.setenv("CREDITRISK_MODEL__NAME", name)
    reg = open_mlflow_registry(server.url, console.registry_dir, name)
    versions = [reg.register(trained, gates=LENIENT) for _ in range(3)]
    reg.promote(versions[0])
    console.clear_caches()
    return console, reg, versions, MlflowClient(server.uri, server.uri), name


def _page(console, role: str) -> AppTest:
    at = console.open_page(role, PAGE)
    assert not at.error, [e.value for e in at.error]
    return at


def _in_mlflow(client, name) -> tuple[dict[str, str], dict[str, str]]:
    mvs = client.search_model_versions(f"name='{name}'")
    by_number = {str(mv.version): mv.tags[TAG_VERSION] for mv in mvs}
    aliases = {a: by_number[str(n)] for a, n in client.get_registered_model(name).aliases.items()}
    return aliases, {mv.tags[TAG_VERSION]: mv.tags.get(TAG_STATE) for mv in mvs}


def test_the_page_reads_and_acts_through_mlflow(on_mlflow):
    console, reg, (a, b, c), client, name = on_mlflow
    svc = console.services
    admin_user = svc.users.get(console.users["ml_engineer"])
    risk_user = svc.users.get(console.users["risk_manager"])
    at = _page(console, "ml_engineer")
    table = at.dataframe[0].value.set_index("version")
    assert sorted(table.index) == sorted([a, b, c])  # the versions MLflow holds, nothing from a folder
    _, states = _in_mlflow(client, name)
    assert {v: table.loc[v, "state"] for v in table.index} == states  # the page shows MLflow's lifecycle

    at.selectbox(key="models_canary_version").set_value(c).run()
    at.button(key="models_canary_propose").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("from 0% to 5%" in s.value for s in at.success)
    mgr = _page(console, "risk_manager")
    mgr.button(key="models_canary_approve").click().run()
    assert not mgr.exception and not mgr.error, [e.value for e in mgr.error]
    aliases, states = _in_mlflow(client, name)
    assert (aliases["champion"], aliases["canary"], states[c]) == (a, c, "canary")
    assert reg.aliases()["canary"]["share"] == 5

    # B served, then was rolled back for cause (through the same services the page uses): refused from the page
    from backend.container import build_services
    from backend.container.settings import load_settings

    live = build_services(load_settings(), migrate=False)  # this test's environment: the MLflow registry
    live.model_admin.canary_abort(risk_user, note="make room")
    live.model_admin.promote(b, admin_user)
    live.model_admin.rollback(risk_user, to=a, cause=CAUSE)
    _, states = _in_mlflow(client, name)
    assert states[b] == "rolled back for cause"
    at = _page(console, "ml_engineer")
    picker = at.selectbox(key="models_canary_version")
    assert picker.value == c  # the newest clean challenger, never the rolled-back one
    picker.set_value(b).run()
    at.button(key="models_canary_propose").click().run()
    assert any("rolled back for cause" in e.value for e in at.error), [e.value for e in at.error]
    assert "canary" not in _in_mlflow(client, name)[0]
    live.close()
