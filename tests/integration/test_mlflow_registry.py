"""MLflow as the model registry (issue 19, item 4), against a real MLflow tracking server started once per run
on loopback with a SQLite backend store (tests/mlflow_server.py): a training run and a model version appear in
MLflow; the lifecycle (canary, promotion, rollback for cause) acts through the services and the CLI and shows in
MLflow as aliases and tags; a version altered in MLflow's artifact store is refused before anything loads it; a
server that is down is one clear message. Each test uses its own registered model name on the shared server."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_identity import sign_in_as_named
from mlflow_server import artifact_file, free_port, mlflow_server, require
from typer.testing import CliRunner

from backend.container import build_services
from backend.container.settings import load_settings
from backend.models import canary, states
from backend.models.adapters.mlflow_registry import TAG_CAUSE, TAG_STATE, TAG_VERSION, open_mlflow_registry
from backend.models.artifacts import ArtifactIntegrityError, RegistryError
from backend.models.gates import GateConfig
from backend.models.provider import ModelUnavailable

try:
    from mlflow import MlflowClient

    HAVE_CLIENT = True
except ImportError:  # pragma: no cover - the pinned client is in requirements-dev.txt
    HAVE_CLIENT = False

PASSWORD = "correct horse battery staple"
LENIENT = GateConfig(min_disparate_impact=0.0, max_auc_loss=1.0)
USERS = {"mlops": "ml_engineer", "risk": "risk_manager"}
CAUSE = "trained on the corrupted September feed; PSI above 0.25"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    require(HAVE_CLIENT, "the MLflow client is not installed: pip install -r requirements-dev.txt")
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as s:
        yield s


@pytest.fixture(scope="module")
def trained():
    """One small trained model; each registration of it is a new signed version."""
    from backend.training.dataset import from_synthetic
    from backend.training.synthetic import generate
    from backend.training.train import train

    return train(from_synthetic(generate(1500, seed=7)), seed=7, cv_folds=2, n_estimators=3, n_boost=10, n_trees=10)


def _settings(tmp_path: Path, url: str, name: str):
    return load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4},
                         model={"registry_dir": tmp_path / "models", "registry_url": url, "name": name,
                                "registry_refresh_seconds": 0})


@pytest.fixture
def svc(server, trained, tmp_path, sqlite_database, clock):
    """Services on the MLflow registry (chosen by the composition root from registry_url) with three versions:
    A, B, C, all passing lenient gates."""
    name = f"crt-{uuid.uuid4().hex[:8]}"
    services = build_services(_settings(tmp_path, server.url, name), db=sqlite_database, clock=clock)
    reg = services.models.registry()
    versions = {label: reg.register(trained, gates=LENIENT) for label in "ABC"}
    for user, role in USERS.items():
        services.users.add(user, role=role, password=PASSWORD)
    return SimpleNamespace(svc=services, name=name, v=versions, client=MlflowClient(server.uri, server.uri))


def _who(ctx, name):
    return ctx.svc.users.get(name)


def _mlflow_view(ctx) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(alias -> our version id, our version id -> its creditrisk.* tags) as MLflow holds them."""
    mvs = ctx.client.search_model_versions(f"name='{ctx.name}'")
    by_number = {str(mv.version): mv.tags[TAG_VERSION] for mv in mvs}
    aliases = {a: by_number[str(n)] for a, n in ctx.client.get_registered_model(ctx.name).aliases.items()}
    return aliases, {mv.tags[TAG_VERSION]: {k: v for k, v in mv.tags.items() if k.startswith("creditrisk.")}
                     for mv in mvs}


def test_a_training_run_and_a_version_appear_in_mlflow(svc):
    a = svc.v["A"]
    mvs = svc.client.search_model_versions(f"name='{svc.name}'")
    assert sorted(mv.tags[TAG_VERSION] for mv in mvs) == sorted(svc.v.values())
    mv = next(m for m in mvs if m.tags[TAG_VERSION] == a)
    run = svc.client.get_run(mv.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == a
    assert run.data.metrics["auc"] > 0.5 and "gates_passed" in run.data.metrics
    assert run.data.params["target"] == "default" and int(run.data.params["features"]) > 5
    assert any(k.startswith("training.") for k in run.data.params)
    files = {f.path for f in svc.client.list_artifacts(mv.run_id, "reports")}
    assert files == {"reports/evaluation.json", "reports/fairness.json", "reports/gates.json"}
    model = {f.path.rsplit("/", 1)[-1] for f in svc.client.list_artifacts(mv.run_id, "model")}
    assert {"manifest.json", "primary.npz", "checksums.json", "signature.json", "holdout.parquet"} <= model
    local = svc.client.download_artifacts(mv.run_id, "reports/fairness.json", str(svc.svc.settings.data_dir))
    fairness = json.loads(Path(local).read_text())
    assert {"primary", "fallback"} <= set(fairness) and fairness["primary"]  # one block per protected attribute
    aliases, tags = _mlflow_view(svc)
    assert aliases == {"challenger": svc.v["C"]}  # the newest registration
    assert {t[TAG_STATE] for t in tags.values()} <= {states.CHALLENGER, states.CANDIDATE}


def test_lifecycle_acts_through_mlflow_and_the_console_listing_agrees(svc):
    admin, a, b = svc.svc.model_admin, svc.v["A"], svc.v["B"]
    admin.promote(a, _who(svc, "mlops"))
    assert svc.svc.models.get("champion").version == a  # served from the verified cache
    admin.canary_propose(_who(svc, "mlops"), version=b)
    admin.canary_review(_who(svc, "risk"), approve=True)
    aliases, tags = _mlflow_view(svc)
    assert (aliases["champion"], aliases["canary"]) == (a, b) and tags[b][TAG_STATE] == states.CANARY
    admin.promote(b, _who(svc, "mlops"))  # the canary completes
    aliases, tags = _mlflow_view(svc)
    assert aliases.get("champion") == b and "canary" not in aliases
    assert (tags[a][TAG_STATE], tags[b][TAG_STATE]) == (states.RETIRED, states.CHAMPION)
    admin.rollback(_who(svc, "risk"), to=a, cause=CAUSE)
    aliases, tags = _mlflow_view(svc)
    assert aliases["champion"] == a and tags[b][TAG_STATE] == states.ROLLED_BACK and tags[b][TAG_CAUSE] == CAUSE
    assert svc.svc.models.get("champion").version == a
    with pytest.raises(canary.CanaryError, match=rf"cannot start a canary of {b}: .*rolled back for cause"):
        admin.canary_propose(_who(svc, "mlops"), version=b)
    aliases, _ = _mlflow_view(svc)
    assert "canary" not in aliases  # the refusal changed nothing in MLflow
    rows = {r["version"]: r for r in svc.svc.models.registry().list()}  # what the Model registry page lists
    _, tags = _mlflow_view(svc)
    assert {v: r["state"] for v, r in rows.items()} == {v: t[TAG_STATE] for v, t in tags.items()}
    assert rows[b]["cause"]["reason"] == CAUSE and all(r["intact"] for r in rows.values())
    view = admin.lifecycle_view()
    assert b not in view["rollback_targets"] and view["canary_default"] == svc.v["C"]


def test_another_process_sees_the_lifecycle_from_mlflow_alone(svc, tmp_path, sqlite_database, clock):
    svc.svc.model_admin.promote(svc.v["C"], _who(svc, "mlops"))
    other = build_services(_settings(tmp_path / "other", svc.svc.settings.model.registry_url, svc.name),
                           db=sqlite_database, clock=clock)  # an empty cache: everything comes from MLflow
    assert other.models.get("champion").version == svc.v["C"]
    assert other.models.registry().aliases()["champion"] == svc.v["C"]


@pytest.fixture
def cli(svc, monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("CREDITRISK_") and k != "CREDITRISK_MODEL__SIGNING_KEY":
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    model = svc.svc.settings.model
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(tmp_path / "cli-cache"))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_URL", model.registry_url)
    monkeypatch.setenv("CREDITRISK_MODEL__NAME", model.name)
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", svc.svc.db.engine.url.render_as_string(hide_password=False))
    from backend.cli import app

    runner = CliRunner()

    def run(*args):
        sign_in_as_named(svc.svc, list(args), tmp_path / "cli-token", monkeypatch)
        res = runner.invoke(app, list(args))
        return SimpleNamespace(exit_code=res.exit_code, output=" ".join(res.output.split()), raw=res.output)

    return run


def test_cli_reads_and_acts_through_mlflow(cli, svc):
    a, b = svc.v["A"], svc.v["B"]
    assert cli("models", "promote", a, "--as", "mlops").exit_code == 0
    assert cli("models", "promote", b, "--as", "mlops").exit_code == 0
    res = cli("models", "rollback", "--to", a, "--as", "risk", "--cause", CAUSE)
    assert res.exit_code == 0, res.output
    aliases, tags = _mlflow_view(svc)
    assert aliases["champion"] == a and tags[b][TAG_STATE] == states.ROLLED_BACK
    res = cli("models", "canary", "propose", b, "--as", "mlops")
    assert res.exit_code == 2 and "rolled back for cause" in res.output and "corrupted September" in res.output
    res = cli("models", "list", "--json")
    assert res.exit_code == 0, res.output
    listed = {r["version"]: r["state"] for r in json.loads(res.raw)}  # stdout is JSON only (no MLflow chatter)
    assert listed == {v: t[TAG_STATE] for v, t in tags.items()}
    res = cli("models", "canary", "propose", "--as", "mlops")  # the default: the newest clean challenger
    assert res.exit_code == 0 and "from 0% to 5%" in res.output, res.output
    aliases, tags = _mlflow_view(svc)  # proposed at 0% (the approval is a risk manager's): state canary
    assert aliases["canary"] == svc.v["C"] and tags[svc.v["C"]][TAG_STATE] == states.CANARY
    res = cli("models", "verify", "--all")  # signature, checksums and a parse of every version fetched from MLflow
    assert res.exit_code == 0 and all(v in res.output for v in svc.v.values()), res.output
    res = cli("deploy", "package", "champion", "--out", "model.tar.gz")  # the champion MLflow names
    assert res.exit_code == 0 and a in res.output, res.output
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from backend.models.signing import private_to_b64

    (Path.cwd() / "new.key").write_text(private_to_b64(Ed25519PrivateKey.generate()))
    res = cli("models", "rotate-key", "--new-key-file", "new.key")
    assert res.exit_code != 0 and "not supported" in res.output and "Traceback" not in res.output, res.output


def test_a_version_altered_in_mlflow_is_refused_before_anything_loads_it(server, trained, tmp_path):
    name = f"crt-{uuid.uuid4().hex[:8]}"
    reg = open_mlflow_registry(server.url, tmp_path / "writer", name)
    client = MlflowClient(server.uri, server.uri)
    for file in ("primary.npz", "manifest.json", "signature.json", "checksums.json", "holdout.parquet"):
        version = reg.register(trained, gates=LENIENT)
        mv = next(m for m in client.search_model_versions(f"name='{name}'") if m.tags[TAG_VERSION] == version)
        stored = artifact_file(server, mv.run_id, f"model/{file}")
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit
        stored.write_bytes(bytes(data))
        fresh = open_mlflow_registry(server.url, tmp_path / f"fresh-{file}", name)  # an empty cache
        with pytest.raises(ArtifactIntegrityError, match=r"fetched from the MLflow registry") as err:
            fresh.load(version)
        assert "signature" in str(err.value) or file in str(err.value), (file, str(err.value))
        assert not (fresh.path / version).exists()  # never cached
        row = next(r for r in fresh.list() if r["version"] == version)
        assert row["intact"] is False, file
    first = reg.versions()[0]
    assert reg.load(first).manifest["version"] == first  # the writer's own verified copy still loads


def test_an_unsigned_version_in_mlflow_is_refused(server, trained, tmp_path):
    """Someone with write access to MLflow replaces a version's files and its checksums: without the signing key
    the signature cannot follow."""
    from backend.models.artifacts import sha256_bytes

    name = f"crt-{uuid.uuid4().hex[:8]}"
    a = open_mlflow_registry(server.url, tmp_path / "writer", name).register(trained, gates=LENIENT)
    client = MlflowClient(server.uri, server.uri)
    mv = next(m for m in client.search_model_versions(f"name='{name}'") if m.tags[TAG_VERSION] == a)
    primary, sums_file = (artifact_file(server, mv.run_id, f"model/{f}") for f in ("primary.npz", "checksums.json"))
    primary.write_bytes(primary.read_bytes() + b"\0")
    sums = json.loads(sums_file.read_text())
    sums["primary.npz"] = sha256_bytes(primary.read_bytes())
    sums_file.write_text(json.dumps(sums))
    fresh = open_mlflow_registry(server.url, tmp_path / "fresh", name)
    with pytest.raises(ArtifactIntegrityError, match="signature"):
        fresh.manifest(a)


def test_server_down_is_one_clear_error(tmp_path, sqlite_database, clock, monkeypatch):
    require(HAVE_CLIENT, "the MLflow client is not installed")
    url = f"mlflow+http://127.0.0.1:{free_port()}"  # nothing listens there
    reg = open_mlflow_registry(url, tmp_path / "cache", "creditrisk")
    with pytest.raises(RegistryError, match=r"MLflow registry at http://127\.0\.0\.1:\d+ is unreachable"):
        reg.aliases()  # one /health probe, not MLflow's minutes of retries
    services = build_services(_settings(tmp_path, url, "creditrisk"), db=sqlite_database, clock=clock)
    with pytest.raises(ModelUnavailable, match="unreachable"):
        services.models.get("champion")
    for k in list(os.environ):
        if k.startswith("CREDITRISK_") and k != "CREDITRISK_MODEL__SIGNING_KEY":
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_URL", url)
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", sqlite_database.engine.url.render_as_string(hide_password=False))
    from backend.cli import app

    res = CliRunner().invoke(app, ["models", "list"])
    assert res.exit_code == 2 and "unreachable" in res.output and "Traceback" not in res.output, res.output


def test_the_server_going_down_keeps_the_champion_serving_and_refuses_lifecycle_actions(
        trained, tmp_path, sqlite_database, clock):
    """A throw-away server (never the session's): the champion, verified and cached, keeps serving from the last
    lifecycle read; a lifecycle action and a fresh host fail with the one clear line."""
    with mlflow_server(tmp_path / "doomed") as doomed:
        services = build_services(_settings(tmp_path, doomed.url, "creditrisk"), db=sqlite_database, clock=clock)
        reg = services.models.registry()
        a, b = (reg.register(trained, gates=LENIENT) for _ in range(2))
        reg.promote(a, gates_required=False)
        assert services.models.get("champion").version == a
        services.users.add("mlops", role="ml_engineer", password=PASSWORD)
    # the server is stopped here
    assert services.models.get("champion").version == a  # refresh_seconds=0: the re-read failed, the last one holds
    with pytest.raises(RegistryError, match="is unreachable"):
        services.model_admin.promote(b, services.users.get("mlops"))
    fresh = build_services(_settings(tmp_path / "fresh", doomed.url, "creditrisk"), db=sqlite_database, clock=clock)
    with pytest.raises(ModelUnavailable, match="is unreachable"):
        fresh.models.get("champion")
