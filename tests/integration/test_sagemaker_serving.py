"""The SageMaker serving container contract, for real: ``docker/sagemaker/serve`` runs on a loopback port
with a ``model.tar.gz`` built by ``creditrisk deploy package`` and extracted as SageMaker does; ``/ping``
and ``/invocations`` (JSON and CSV) answer like the local scorer; bad input gets a 4xx, never a 5xx."""

from __future__ import annotations

import json
import shutil
import tarfile
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sagemaker_support import APPLICATION, package_into, post, serving_process

from backend.container.settings import load_settings
from backend.domain.policy import PolicySettings
from backend.models import package as pkg
from backend.models.provider import ModelProvider
from backend.models.registry import Registry
from backend.scoring.service import ScoringService
from backend.serving.app import build
from backend.serving.scorer import MSG_BATCH, MSG_CSV_WIDTH


@pytest.fixture(scope="module")
def packaged(model_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    return package_into(model_registry, tmp_path_factory.mktemp("sm_package"))


@pytest.fixture(scope="module")
def container(packaged: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> object:
    model_dir, _info = packaged
    with serving_process(model_dir, tmp_path_factory.mktemp("sm_log") / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def local(model_registry: Path) -> tuple[ScoringService, object]:
    """The local scorer on the same registry (evaluate only: no database, no cache)."""
    provider = ModelProvider(load_settings(model={"registry_dir": model_registry}).model, PolicySettings())
    return ScoringService(None, None, provider, None), provider.get("champion")  # type: ignore[arg-type]


def _json(url: str, payload: object) -> tuple[int, dict]:
    status, _h, data = post(url, json.dumps(payload).encode(), "application/json")
    return status, json.loads(data)


def test_package_layout_is_deterministic_and_leaves_out_applicant_data(model_registry, packaged, tmp_path):
    _dir, info = packaged
    again = pkg.build_package(Registry(model_registry, name="creditrisk"), "champion", tmp_path / "again.tar.gz")
    assert again.sha256 == info.sha256  # same version, same code: same bytes
    with tarfile.open(info.path) as tar:
        names = sorted(tar.getnames())
    version = info.version
    assert names == sorted([pkg.SERVING_JSON, "creditrisk/aliases.json",
                            *(f"creditrisk/{version}/{f}" for f in pkg.SHIPPED)])
    assert not any(n.endswith(pkg.NOT_SHIPPED) for n in names)  # no pickle, no held-out rows


def test_ping_answers_200_with_the_packaged_version(container, packaged):
    with urllib.request.urlopen(f"{container}/ping", timeout=5) as resp:
        body = json.loads(resp.read())
        assert resp.status == 200
    assert body["status"] == "ok" and body["model_version"] == packaged[1].version
    assert "loan_amount" in body["features"] and body["source"].startswith("package ")


def test_json_one_and_instances_score_as_the_local_scorer(container, local):
    scoring, model = local
    status, doc = _json(container, APPLICATION)
    assert status == 200 and len(doc["predictions"]) == 1
    item = doc["predictions"][0]
    mine = scoring.evaluate(scoring.validate(APPLICATION, model), model, use_cache=False)
    assert item["model_version"] == mine.model_version and item["model_role"] == "primary"
    assert item["pd"] == pytest.approx(mine.pd, abs=1e-12)
    assert item["raw_score"] == pytest.approx(mine.raw_score, abs=1e-12)
    assert (item["risk_class"], item["recommendation"]) == (mine.risk_class, mine.recommendation)
    assert [r["code"] for r in item["reasons"]] == [r["code"] for r in mine.reasons]
    assert item["attributions"] == pytest.approx(mine.attributions, abs=1e-8)
    assert item["base_value"] + sum(item["attributions"].values()) == pytest.approx(item["margin"], abs=1e-9)
    assert len(item["members"]) > 1 and item["application_id"] == "APP-1"
    big = {**APPLICATION, "application_id": "APP-2", "loan_amount": 40000}
    status, doc = _json(container, {"instances": [APPLICATION, big]})
    assert status == 200 and [p["application_id"] for p in doc["predictions"]] == ["APP-1", "APP-2"]
    assert doc["predictions"][1]["recommendation"] == "manual_review"  # above the $25,000 cap
    assert doc["predictions"][0]["pd"] == pytest.approx(item["pd"], abs=1e-12)


def test_csv_with_header_and_headerless_in_feature_order(container, local):
    _scoring, model = local
    row = {k: v for k, v in APPLICATION.items() if k != "application_id"}
    header = ",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n"
    status, _h, data = post(container, header.encode(), "text/csv")
    assert status == 200
    by_header = json.loads(data)["predictions"][0]
    plain = ",".join("" if row.get(c) is None else str(row[c]) for c in model.columns)
    status, _h, data = post(container, (plain + "\n" + plain + "\n").encode(), "text/csv; charset=utf-8")
    assert status == 200
    preds = json.loads(data)["predictions"]
    assert len(preds) == 2 and preds[0]["pd"] == by_header["pd"]
    status, _h, json_data = post(container, json.dumps(row).encode(), "application/json")
    assert json.loads(json_data)["predictions"][0]["pd"] == by_header["pd"]


BAD = [  # (body, content type, expected status)
    (b'{"loan_amount": NaN}', "application/json", 422),
    (b'{"loan_amount": 1e309}', "application/json", 422),
    (b'{"loan_amount": 1000, "loan_amount": 2000}', "application/json", 422),
    (b'{"loan_amount": "12000"}', "application/json", 422),
    (b'{"loan_amount": true}', "application/json", 422),
    (b'{"loan_amount": -5}', "application/json", 422),
    (b'{"annual_income": 50000}', "application/json", 422),  # loan_amount is required
    (b'{"loan_amount": 1000, "surname": "Doe"}', "application/json", 422),
    (b'{"loan_amount": 1000, "home_ownership": "castle"}', "application/json", 422),
    (b'{"loan_amount": 1000, "x": "\\u0000"}', "application/json", 422),
    (b'{"loan_amount": 1000', "application/json", 422),
    (b"\xff\xfe", "application/json", 422),
    (b"[1, 2]", "application/json", 400),
    (b'{"instances": {"loan_amount": 1000}}', "application/json", 400),
    (b'{"instances": []}', "application/json", 400),
    (b"", "application/json", 422),
    (b"loan_amount\n", "text/csv", 400),
    (b"loan_amount,Jane Doe\n1000,x\n", "text/csv", 400),  # a header name that is not one: not repeated
    (b"loan_amount,annual_income\n1000\n", "text/csv", 400),
    (b"loan_amount\nnan\n", "text/csv", 422),
    (b"loan_amount\n1_000\n", "text/csv", 422),
    (b"1000,2000\n", "text/csv", 400),
    (b"loan_amount\n\x00\n", "text/csv", 400),
    (b"\xff", "text/csv", 400),
    (b"loan_amount=1000", "application/x-www-form-urlencoded", 415),
    (b"{}", "", 415),
]


def test_bad_input_gets_a_4xx_problem_that_never_repeats_it(container):
    for body, ctype, expected in BAD:
        status, headers, data = post(container, body, ctype)
        assert status == expected, (body, ctype, status, data[:300])
        assert headers["content-type"].startswith("application/problem+json")
        assert b"Doe" not in data and b"castle" not in data
    status, _h, data = post(container, json.dumps(APPLICATION).encode(), "application/json", accept="text/csv")
    assert status == 406
    width = json.loads(post(container, b"1000,2000\n", "text/csv")[2])
    assert width["detail"] == MSG_CSV_WIDTH.format(line=1, got=2, n=len(json.loads(
        urllib.request.urlopen(f"{container}/ping", timeout=5).read())["features"]))


def test_batch_and_body_limits(container):
    status, doc = _json(container, {"instances": [APPLICATION] * 101})
    assert status == 413 and doc["detail"] == MSG_BATCH.format(n=100, got=101)
    status, doc = _json(container, {"instances": [APPLICATION] * 100})
    assert status == 200 and len(doc["predictions"]) == 100
    csv_rows = "loan_amount\n" + "1000\n" * 101
    assert post(container, csv_rows.encode(), "text/csv")[0] == 413
    huge = json.dumps({"loan_amount": 1000, "purpose_note": "x" * 1_100_000}).encode()
    assert post(container, huge, "application/json")[0] == 413


def test_tampered_package_is_never_served(packaged, tmp_path):
    model_dir, info = packaged
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "creditrisk" / info.version / "primary.npz").write_bytes(b"tampered")
    client = TestClient(build(broken, settings=load_settings(data_dir=tmp_path)))
    resp = client.get("/ping")
    assert resp.status_code == 503 and "primary.npz" in resp.json()["detail"]
    resp = client.post("/invocations", json=APPLICATION)
    assert resp.status_code == 503


def test_without_a_package_the_local_registry_serves(model_registry, tmp_path):
    settings = load_settings(data_dir=tmp_path, model={"registry_dir": model_registry})
    client = TestClient(build(tmp_path / "no-such-dir", settings=settings))
    resp = client.get("/ping")
    assert resp.status_code == 200 and resp.json()["source"].startswith("local registry")
    assert client.post("/invocations", json=APPLICATION).status_code == 200
