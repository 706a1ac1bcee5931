"""`creditrisk score` on arrays, chunk by chunk (issue 21 item 7) gives the same rows, PDs, reasons and
errors as the one-application path, row for row, whatever the file's shape, and recorded runs give each
row's decision id. Small blocks and chunks make a few hundred rows cross many chunk boundaries."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.container import build_services
from backend.container.settings import load_settings
from backend.domain import ApplicationInvalid
from backend.scoring import batch_chunks
from backend.scoring.batch import model_rows, plan_columns

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def env(cli_env: Path, model_registry: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(model_registry, cli_env / "models")
    monkeypatch.setattr(batch_chunks, "CHUNK_ROWS", 64)
    monkeypatch.setattr(batch_chunks, "CSV_BLOCK", 1 << 14)  # ~25 rows a block: many blocks per chunk
    return cli_env


def _file(env: Path, n: int = 300) -> pd.DataFrame:
    assert run("generate", "--rows", str(n), "--seed", "5", "--out", "apps.csv").exit_code == 0
    df = pd.read_csv(env / "apps.csv").astype({"annual_income": object, "employment_type": object,
                                                 "num_jobs_5y": float})
    df.loc[3, "credit_score"] = 5000  # out of bounds
    df.loc[17, "loan_amount"] = np.nan  # required
    df.loc[40, "employment_type"] = "astronaut"  # not a category of the catalogue
    df.loc[41, "employment_type"] = "  " + str(df.loc[41, "employment_type"]) + " "  # padded: accepted
    df.loc[77, "num_jobs_5y"] = 2.5  # a whole number
    df.loc[130, "months_employed"] = -4  # below the bound
    df.loc[150, "application_id"] = '=HYPERLINK("http://x")'  # a formula: neutralised in the CSV
    df.loc[151, "application_id"] = "-1"
    df.loc[250, "annual_income"] = "lots"  # a word in a numeric column, far past the first block
    df.loc[251, "annual_income"] = "52000"  # a number written as text beside it
    df.to_csv(env / "apps.csv", index=False)
    return df


def _one_by_one(env: Path, df: pd.DataFrame, engine: str = "compiled") -> tuple[dict[int, dict], dict[int, str]]:
    """The one-application path: each row converted and validated alone, then ScoringService.evaluate."""
    s = load_settings(data_dir=env / "var", model={"registry_dir": env / "models"})
    svc = build_services(s, migrate=True)
    model = svc.scoring.models.get("champion")
    _, policy = svc.scoring.batch_policy(model)
    plan = plan_columns(list(df.columns), model)
    expected: dict[int, dict] = {}
    errors: dict[int, str] = {}
    for i in range(len(df)):
        raw = model_rows(df.iloc[[i]], model, plan)[0]
        try:
            clean = svc.scoring.validate(raw, model)
        except ApplicationInvalid as exc:
            errors[i + 1] = str(exc)
            continue
        r = svc.scoring.evaluate(clean, model, engine=engine, use_cache=False, policy=policy)
        expected[i + 1] = {"pd": round(r.pd, 6), "recommendation": r.recommendation, "risk_class": r.risk_class,
                           "confidence": round(r.confidence, 4), "reasons": r.reasons,
                           "texts": [x["text"] for x in r.reasons]}
    return expected, errors


def _check_csv(text: str, expected: dict[int, dict]) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["row"]) for r in rows] == sorted(expected)
    for r in rows:
        e = expected[int(r["row"])]
        assert float(r["pd"]) == pytest.approx(e["pd"], abs=1e-12), r["row"]
        assert (r["recommendation"], r["risk_class"]) == (e["recommendation"], e["risk_class"])
        assert float(r["confidence"]) == pytest.approx(e["confidence"], abs=1e-12)
        assert [r[f"reason_{k}"] for k in range(1, 5)] == (e["texts"] + [""] * 4)[:4], r["row"]
    return rows


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_chunked_scores_equal_the_one_application_path(env: Path, suffix: str) -> None:
    df = _file(env)
    expected, errors = _one_by_one(env, df)
    assert len(errors) == 6 and 251 + 1 in expected and 41 + 1 in expected
    name = "apps.csv"
    if suffix == ".parquet":
        name = "apps.parquet"
        pd.read_csv(env / "apps.csv").to_parquet(env / name, index=False)
    elif suffix == ".jsonl":
        name = "apps.jsonl"
        pd.read_csv(env / "apps.csv").to_json(env / name, orient="records", lines=True)
    res = run("score", "--input", name, "--dry-run", "--out", "out.csv")
    assert res.exit_code == 1, res.output  # rows were rejected
    for row, message in errors.items():  # each reported with the row path's own words
        assert f"row {row}: {message}" in " ".join(res.output.split()), row
    rows = _check_csv((env / "out.csv").read_text(), expected)
    by_row = {int(r["row"]): r for r in rows}
    assert by_row[151]["id"].startswith("'=") and by_row[152]["id"] == "'-1"
    assert "decision_id" not in rows[0]  # nothing recorded, nothing to explain


def test_json_output_carries_the_same_full_reasons(env: Path) -> None:
    df = _file(env, 120)
    expected, _ = _one_by_one(env, df)
    assert run("score", "--input", "apps.csv", "--dry-run", "--out", "out.json").exit_code == 1
    rows = json.loads((env / "out.json").read_text())
    assert [r["row"] for r in rows] == sorted(expected)
    for r in rows:
        assert r["reasons"] == expected[r["row"]]["reasons"]


def test_reference_engine_scores_whole_frames_with_the_same_pds(env: Path) -> None:
    df = _file(env, 150)
    expected, _ = _one_by_one(env, df, engine="reference")
    assert run("score", "--input", "apps.csv", "--engine", "reference", "--dry-run", "--out", "ref.csv").exit_code == 1
    _check_csv((env / "ref.csv").read_text(), expected)


def test_recorded_rows_carry_their_decision_id(env: Path) -> None:
    df = _file(env, 100)
    expected, _ = _one_by_one(env, df)
    res = run("score", "--input", "apps.csv", "--out", "out.csv")
    assert res.exit_code == 1
    rows = _check_csv((env / "out.csv").read_text(), expected)
    ids = [r["decision_id"] for r in rows]
    assert all(ids) and len(set(ids)) == len(ids)
    shown = run("explain", "--decision", ids[5])
    assert shown.exit_code == 0, shown.output
    assert run("audit", "verify").exit_code == 0
    again = run("score", "--input", "apps.csv", "--out", "again.csv")  # same ids, same details: re-scored
    rescored = list(csv.DictReader(io.StringIO((env / "again.csv").read_text())))
    assert again.exit_code == 1 and {r["id"] for r in rescored} == {r["id"] for r in rows}
    assert not {r["decision_id"] for r in rescored} & set(ids)


def test_a_changed_row_in_a_later_chunk_stops_there_and_says_what_was_recorded(env: Path) -> None:
    df = _file(env, 100)
    assert run("score", "--input", "apps.csv", "--out", "first.csv").exit_code == 1
    df.loc[90, "loan_amount"] = df.loc[90, "loan_amount"] + 100  # chunk 2 (rows 65-128)
    df.to_csv(env / "apps.csv", index=False)
    res = run("score", "--input", "apps.csv", "--out", "second.csv")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "already exists" in said
    recorded = re.search(r"the (\d+) row\(s\) before that chunk were recorded", said)  # CSV chunks: whole blocks
    assert recorded and 0 < int(recorded.group(1)) < 90
    first = {r["row"] for r in csv.DictReader(io.StringIO((env / "first.csv").read_text()))}
    assert len(first) == 96  # 100 rows less 4 rejected
