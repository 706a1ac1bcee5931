"""The MLflow registry's settings and its refusals that need no server (issue 19, item 4); the behaviour against a
real MLflow server is tests/integration/test_mlflow_registry.py."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from backend.container.adapters import build_registry_factory
from backend.models import MlflowRegistry, ModelSettings, RegistryError
from backend.models.adapters.mlflow_registry import tracking_uri
from backend.models.signing_admin import adopt_unsigned, rotate_key


@pytest.mark.parametrize("url", ["mlflow+http://127.0.0.1:5000", "mlflow+https://mlflow.bank.example/tracking",
                                 "  mlflow+http://mlflow:5000  ", ""])
def test_registry_url_accepted(url):
    assert ModelSettings(registry_url=url).registry_url == url.strip()


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "mlflow://host:5000", "mlflow+ftp://host", "mlflow+http://",
                                 "mlflow+http://host name:5000", "mlflow+http://host:5000?x=1", "databricks",
                                 "mlflow+file:///tmp/mlruns", "MLFLOW+HTTP://host"])
def test_registry_url_refused_with_the_shape_it_wants(url):
    with pytest.raises(ValidationError, match=r"mlflow\+http://host:port"):
        ModelSettings(registry_url=url)


def test_tracking_uri_and_the_composition_root_choice(tmp_path):
    assert tracking_uri("mlflow+http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert build_registry_factory(ModelSettings(registry_dir=tmp_path)) is None  # the folder: embedded default
    factory = build_registry_factory(ModelSettings(registry_dir=tmp_path, registry_url="mlflow+http://127.0.0.1:9"))
    assert factory is not None
    reg = factory(None)  # no network until first used
    assert isinstance(reg, MlflowRegistry) and reg.path == tmp_path / "mlflow-cache" / "creditrisk"


def test_a_missing_client_is_one_line_naming_the_pin(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    reg = MlflowRegistry("mlflow+http://127.0.0.1:9", tmp_path, keys=None)
    with pytest.raises(RegistryError, match=r"needs the MLflow client: pip install 'mlflow-skinny==3\.18\.0'"):
        reg.aliases()


def test_key_rotation_and_adoption_refuse_an_mlflow_registry():
    remote = SimpleNamespace(remote=True, keys=SimpleNamespace(signer=object()))
    with pytest.raises(RegistryError, match="rotate-key re-signs version folders in place; with an MLflow"):
        rotate_key(remote, object())
    with pytest.raises(RegistryError, match="adopt-unsigned"):
        adopt_unsigned(remote)
