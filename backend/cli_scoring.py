"""Batch scoring from a file for `creditrisk score`: invalid rows are reported, valid rows scored."""

from __future__ import annotations

import csv
import getpass
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from backend.csvsafe import safe_row
from backend.services.scoring import ApplicationConflict, ScoreResult, Submitter
from backend.services.validation import ApplicationInvalid

READERS = (".csv", ".parquet", ".json", ".jsonl")


def read_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = pd.read_csv(path)
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix == ".jsonl":
        df = pd.read_json(path, lines=True)
    elif suffix == ".json":
        data = json.loads(path.read_text())
        df = pd.DataFrame(data if isinstance(data, list) else [data])
    else:
        raise ValueError(f"--input must be one of {', '.join(READERS)}, got {path.name!r}")
    body = df.astype(object)
    for col in body.columns:  # a CSV is text: one bad cell must not turn a whole numeric column into strings
        if df[col].dtype == object:
            numbers = pd.to_numeric(df[col], errors="coerce")
            body[col] = numbers.astype(object).where(numbers.notna(), df[col])
    return body.where(body.notna(), None).to_dict("records")


def to_row(i: int, raw: dict[str, Any], r: ScoreResult) -> dict[str, Any]:
    row = {"row": i + 1, "id": raw.get("application_id") or r.application_id or "", "pd": round(r.pd, 6),
           "risk_class": r.risk_class, "confidence": round(r.confidence, 4), "recommendation": r.recommendation,
           "model_version": r.model_version, "model_role": r.model_role, "engine": r.engine}
    for k in range(4):
        row[f"reason_{k + 1}"] = r.reasons[k]["text"] if k < len(r.reasons) else ""
    return row


def run_score(svc: Any, input_path: Path, *, model: str, engine: str, out_path: Path | None, persist: bool,
              fail: Callable[[str], None], out: Any, err: Any) -> None:
    from backend.services.model_provider import ModelUnavailable

    if engine not in ("compiled", "reference"):
        fail(f"--engine must be compiled or reference, got {engine!r}")
    if not input_path.exists():
        fail(f"--input file not found: {input_path}")
    try:
        rows = read_rows(input_path)
        serving = svc.scoring.models.get(model)
    except (ValueError, ModelUnavailable) as exc:
        fail(str(exc))
        return
    good: list[tuple[int, dict[str, Any]]] = []
    bad = 0
    for i, raw in enumerate(rows):
        try:
            svc.scoring.validate(raw, serving)
            good.append((i, raw))
        except ApplicationInvalid as exc:
            bad += 1
            err.print(f"row {i + 1}: {exc}", highlight=False, markup=False)
    try:
        results = svc.scoring.score_many([r for _, r in good],
                                         submitter=Submitter(f"cli:{getpass.getuser()}", "system"),
                                         model_ref=serving.version, engine=engine, source="cli", persist=persist)
    except ApplicationConflict as exc:
        fail(str(exc))
        return
    table = [to_row(i, raw, r) for (i, raw), r in zip(good, results, strict=True)]
    if out_path is not None and out_path.suffix.lower() == ".json":
        full = [{**row, "reasons": r.reasons} for row, r in zip(table, results, strict=True)]
        out_path.write_text(json.dumps(full, indent=2, default=str))
    else:
        buf = io.StringIO()
        if table:
            writer = csv.DictWriter(buf, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(safe_row(r) for r in table)
        if out_path is None:
            sys.stdout.write(buf.getvalue())
        else:
            out_path.write_text(buf.getvalue())
    err.print(f"scored {len(table):,} application(s) with {serving.version} ({engine}); {bad:,} rejected"
              + ("" if persist else " (dry run: nothing recorded)"))
    if bad:
        raise SystemExit(1)
