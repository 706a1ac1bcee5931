"""Batch scoring from a file for `creditrisk score`: invalid rows are reported, valid rows scored.

A file shaped like the version's training file scores as it is (issue 19). Its columns are sorted
once, by what the version knows of them (:func:`plan_columns`):

- the model's features go to the model, each converted by the kind the version learned (a CSV is
  text: "yes"/"Y" in a yes/no column, "7" in a numeric one, 3 in a categorical one);
- the target, the protected attributes and the columns the version dropped or excluded at training
  (ids, dates, ...) never reach the model: they are carried to the output beside each row's id, so a
  hold-out file can be scored and then evaluated;
- columns the version never saw are ignored and reported once (not once per row), as are feature
  columns the file lacks (scored as missing);
- a category of one of the lender's own columns that the version never saw (it was only in the
  held-out part of the training file, or it is new) is scored as missing and reported once per column;
  categories of the catalog's features stay strict (an unknown one rejects the row).
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from backend.domain import FEATURES_BY_NAME, Actor, ApplicationInvalid, safe_row
from backend.models import FALSE_TOKENS, TRUE_TOKENS, category_key
from backend.scoring.result import META_FIELDS, PROTECTED_PASSTHROUGH, ApplicationConflict, ScoreResult

READERS = (".csv", ".parquet", ".json", ".jsonl")
ID_FIELD = "application_id"
OUTPUT = ("row", "id", "pd", "risk_class", "confidence", "recommendation", "model_version", "model_role", "engine",
          "reason_1", "reason_2", "reason_3", "reason_4")
MSG_UNKNOWN = "ignored {n} column(s) {version} does not know: {names}"
MSG_ABSENT = "{n} feature column(s) of {version} missing from the file, scored as missing: {names}"
MSG_UNSEEN = ("column {column!r}: {n} row(s) with {k} category value(s) {version} never saw, scored as missing "
              "(values not shown: they may be personal data)")


@dataclass(frozen=True)
class ColumnPlan:
    """What each column of a file is to a model version (see the module docstring)."""

    features: list[str]  # model features present in the file
    passthrough: list[str]  # given to the scoring service beside the features (application id, stored attributes)
    carried: list[str]  # copied to the output beside each row's id
    unknown: list[str]  # never seen by the version: ignored, reported once
    absent: list[str]  # model features the file lacks (scored as missing)
    id_column: str | None


def read_frame(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, low_memory=False)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if suffix == ".json":
        data = json.loads(path.read_text())
        return pd.DataFrame(data if isinstance(data, list) else [data])
    raise ValueError(f"--input must be one of {', '.join(READERS)}, got {path.name!r}")


def read_columns(path: Path) -> list[str]:
    """The file's column names, without reading its rows (CSV and Parquet)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        with pcsv.open_csv(path) as reader:
            return [str(c) for c in reader.schema.names]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [str(c) for c in pq.read_schema(path).names]
    return [str(c) for c in read_frame(path).columns]


def plan_columns(columns: Sequence[str], model: Any) -> ColumnPlan:
    """Sort a file's columns by what ``model`` (a ServingModel) knows of them."""
    manifest: Mapping[str, Any] = model.manifest or {}
    dropped: Mapping[str, str] = (manifest.get("data") or {}).get("dropped") or {}
    known_aside = [manifest.get("target"), *(manifest.get("protected") or ()), *dropped]
    have = [str(c) for c in columns]
    features = [c for c in have if c in model.columns]
    passthrough = [c for c in have if c not in model.columns and c in (*PROTECTED_PASSTHROUGH, *META_FIELDS)]
    id_column = ID_FIELD if ID_FIELD in have else next(
        (c for c, why in dropped.items() if c in have and str(why).startswith("ID-like")), None)
    carried = [c for c in have if c not in model.columns and c != id_column
               and (c in known_aside or c in PROTECTED_PASSTHROUGH or c == "default")]
    unknown = [c for c in have if c not in model.columns and c != id_column and c not in carried
               and c not in META_FIELDS]
    absent = [c for c in model.columns if c not in have]
    return ColumnPlan(features, passthrough, carried, unknown, absent, id_column)


def _binary(v: Any) -> Any:
    if isinstance(v, str) and v.strip().lower() in TRUE_TOKENS | FALSE_TOKENS:
        return int(v.strip().lower() in TRUE_TOKENS)
    return v


def _plain(v: Any) -> Any:
    """A plain Python value; None for every kind of missing (NaN, NaT, pandas NA)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    v = v.item() if hasattr(v, "item") and not isinstance(v, str | bytes) else v
    return None if isinstance(v, float) and v != v else v


def model_rows(frame: pd.DataFrame, model: Any, plan: ColumnPlan,
               unseen: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The rows the scoring service validates: features (converted by kind) and passthrough fields.
    ``unseen`` collects, per column, the values of categories the version never saw (scored as missing)."""
    body = frame[[c for c in (*plan.features, *plan.passthrough) if c in frame.columns]].astype(object)
    if len(body):  # column by column: DataFrame.apply(result_type="broadcast") fails on a column of dicts (applicant)
        body = pd.DataFrame({c: pd.Series([_plain(v) for v in body[c]], index=body.index, dtype=object)
                             for c in body.columns}, index=body.index)
    for col in plan.features:
        kind = model.kinds.get(col, "numeric")
        if kind == "categorical":
            keys = [category_key(v) for v in body[col]]
            feat = FEATURES_BY_NAME.get(col)
            if not (feat and feat.categories):  # the lender's own column: an unseen category is scored as missing
                known = set(model.categories.get(col) or ())
                new = [k for k in keys if k is not None and k not in known]
                if new and unseen is not None:
                    unseen[col] = new
                keys = [k if k is None or k in known else None for k in keys]
            body[col] = keys
        elif kind == "binary":
            body[col] = [_binary(v) for v in body[col]]
        elif frame[col].dtype == object:  # one bad cell must not turn a whole numeric column into strings
            numbers = pd.to_numeric(frame[col], errors="coerce")
            body[col] = numbers.astype(object).where(numbers.notna(), body[col])
    if plan.id_column and plan.id_column != ID_FIELD:
        ids = frame[plan.id_column]
        body[ID_FIELD] = [None if pd.isna(v) else str(_plain(v)) for v in ids]
    rows = body.to_dict("records")
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def to_row(i: int, raw: Mapping[str, Any], r: ScoreResult, carried: Mapping[str, Any] | None = None,
           *, persisted: bool = False) -> dict[str, Any]:
    row = {"row": i + 1, "id": raw.get(ID_FIELD) or r.application_id or ""}
    if persisted:
        row["decision_id"] = r.prediction_id or ""
    for name, value in (carried or {}).items():
        row[name if name not in OUTPUT else f"input_{name}"] = _plain(value)
    row.update({"pd": round(r.pd, 6), "risk_class": r.risk_class, "confidence": round(r.confidence, 4),
                "recommendation": r.recommendation, "model_version": r.model_version, "model_role": r.model_role,
                "engine": r.engine})
    for k in range(4):
        row[f"reason_{k + 1}"] = r.reasons[k]["text"] if k < len(r.reasons) else ""
    return row


def _names(names: Sequence[str], limit: int = 15) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f", ... (+{more} more)" if more > 0 else "")


def run_score(svc: Any, input_path: Path, *, model: str, engine: str, out_path: Path | None, persist: bool,
              fail: Callable[[str], None], out: Any, err: Any) -> None:
    from backend.models import ModelUnavailable

    if engine not in ("compiled", "reference"):
        fail(f"--engine must be compiled or reference, got {engine!r}")
    if not input_path.exists():
        fail(f"--input file not found: {input_path}")
    try:
        columns = read_columns(input_path)
        serving = svc.scoring.models.get(model)
    except (ValueError, ModelUnavailable) as exc:
        fail(str(exc))
        return
    plan = plan_columns(columns, serving)
    if plan.unknown:
        err.print(MSG_UNKNOWN.format(n=len(plan.unknown), version=serving.version, names=_names(plan.unknown)),
                  highlight=False, markup=False)
    if plan.absent:
        err.print(MSG_ABSENT.format(n=len(plan.absent), version=serving.version, names=_names(plan.absent)),
                  highlight=False, markup=False)
    from backend.scoring.batch_pipeline import BackgroundWriter
    from backend.scoring.batch_stream import Writer, stream_score
    from backend.scoring.frames import can_score_frame

    if not can_score_frame(serving):  # a failed primary: row by row, each answer from the fallback (it says so)
        return _run_rows(svc, read_frame(input_path), serving, plan, engine=engine, out_path=out_path, persist=persist, fail=fail,
                         err=err)
    # each chunk is written in a thread while the next is scored (backend/scoring/batch_pipeline.py)
    writer = BackgroundWriter(Writer(out_path, text=("id", *(c if c not in OUTPUT else f"input_{c}"
                                                          for c in plan.carried))))
    try:
        totals = stream_score(svc, input_path, serving, plan, engine=engine, persist=persist,
                              submitter=_submitter(svc), writer=writer, id_field=ID_FIELD, output=OUTPUT,
                              report=lambda line: err.print(line, highlight=False, markup=False))
    except ApplicationConflict as exc:
        writer.close()  # the chunks recorded before the conflict are in the output
        fail(str(exc))
        return
    except BaseException:
        with contextlib.suppress(Exception):  # the error being raised is the one to report
            writer.close()
        raise
    writer.close()
    for col, values in totals.unseen.items():
        err.print(MSG_UNSEEN.format(column=col, n=len(values), k=len(set(values)), version=serving.version),
                  highlight=False, markup=False)
    _finish(err, totals.scored, totals.rejected, serving.version, engine, persist)


def _finish(err: Any, scored: int, bad: int, version: str, engine: str, persist: bool) -> None:
    err.print(f"scored {scored:,} application(s) with {version} ({engine}); {bad:,} rejected"
              + ("" if persist else " (dry run: nothing recorded)"))
    if bad:
        raise SystemExit(1)


def _run_rows(svc: Any, frame: pd.DataFrame, serving: Any, plan: ColumnPlan, *, engine: str,
              out_path: Path | None, persist: bool, fail: Callable[[str], None], err: Any) -> None:
    """The row path (the whole file in memory): used when the primary model cannot serve."""
    unseen: dict[str, list[str]] = {}
    rows = model_rows(frame, serving, plan, unseen)
    for col, values in unseen.items():
        err.print(MSG_UNSEEN.format(column=col, n=len(values), k=len(set(values)), version=serving.version),
                  highlight=False, markup=False)
    aside = [{k: _plain(v) for k, v in r.items()} for r in frame[plan.carried].to_dict("records")]
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
        results = svc.scoring.score_many([r for _, r in good], submitter=_submitter(svc),
                                         model_ref=serving.version, engine=engine, source="cli", persist=persist)
    except ApplicationConflict as exc:
        fail(str(exc))
        return
    table = [to_row(i, raw, r, aside[i], persisted=persist) for (i, raw), r in zip(good, results, strict=True)]
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
    _finish(err, len(table), bad, serving.version, engine, persist)


def _submitter(svc: Any) -> Actor:
    """Who a CLI batch is recorded as: the CLI token's user (their applications), else the OS login."""
    from backend.platform.cli import signed_in

    return signed_in(svc) or Actor(f"cli:{getpass.getuser()}"[:64], "system")
