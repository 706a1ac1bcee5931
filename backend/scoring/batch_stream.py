"""`creditrisk score` file to file in chunks (issue 21 item 7).

Each chunk of the file (:func:`~backend.scoring.batch_chunks.read_chunks`) is validated on arrays
(:func:`~backend.scoring.batch_chunks.convert_chunk`), encoded, scored with its attributions, policy and
reasons in one call each (:func:`~backend.scoring.frames.score_frame`) and written before the next is
read, so memory is bounded by the chunk size, not the file. Rows that fail a check go through the row
path (:func:`~backend.scoring.batch.model_rows` and validation) and are reported with its words; the
few it accepts are scored with their chunk. Recorded runs write each chunk's applications, predictions
and audit rows in one transaction (:meth:`ScoringService.record_frame`) and output each row's
``decision_id``, the id ``creditrisk explain --decision`` and ``creditrisk ask --decision`` take.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd

from backend.domain import DANGEROUS_PREFIXES, Actor, ApplicationInvalid
from backend.scoring import batch_chunks
from backend.scoring.batch_chunks import (
    clean_records,
    convert_chunk,
    passthrough_records,
    read_chunks,
)
from backend.scoring.batch_pipeline import BackgroundWriter, ahead
from backend.scoring.frames import FrameScores, score_frame
from backend.scoring.result import ApplicationConflict, ScoreResult


@dataclass
class StreamTotals:
    scored: int = 0
    rejected: int = 0
    unseen: dict[str, list[str]] = field(default_factory=dict)


def _safe(col: Any) -> Any:
    """Text cells that a spreadsheet would execute get a leading quote (backend.domain.csvsafe), on arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(col.type):
        return col
    pattern = "^[" + "".join("\\" + c if c in "-^]\\" else c for c in DANGEROUS_PREFIXES) + "]"
    danger = pc.fill_null(pc.match_substring_regex(col, pattern), False)
    if not pc.any(danger).as_py():
        return col
    return pc.if_else(danger, pc.binary_join_element_wise("'", col, ""), col)


class Writer:
    """CSV (pyarrow, chunk by chunk) or JSON (one array, rows with their full reasons) to a file or stdout."""

    def __init__(self, out_path: Path | None, text: tuple[str, ...] = ()) -> None:
        self.text = text  # the columns whose cells come from the file (checked by _safe); the rest are ours
        self.json = out_path is not None and out_path.suffix.lower() == ".json"
        self.fh: IO[bytes] = open(out_path, "wb") if out_path is not None else sys.stdout.buffer  # noqa: SIM115
        self.owned = out_path is not None
        self.csv: Any = None
        self.schema: Any = None
        self.first = True

    def write(self, table: pd.DataFrame, results: list[ScoreResult] | None) -> None:
        if self.json:
            rows = table.to_dict("records")
            for row, r in zip(rows, results or [], strict=True):
                row["reasons"] = r.reasons
                self.fh.write((b"[\n" if self.first else b",\n")
                              + orjson.dumps(row, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
                self.first = False
            return
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        at = pa.Table.from_pandas(table, preserve_index=False)
        for i, f in enumerate(at.schema):  # True/False as the row path and pandas write them (pyarrow: true/false)
            if pa.types.is_boolean(f.type):
                at = at.set_column(i, f.name, pc.if_else(at.column(i), "True", "False"))
        for name in self.text:
            if name in at.column_names:
                at = at.set_column(at.column_names.index(name), name, _safe(at.column(name)))
        if self.csv is None:
            at = at.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in at.schema]))
            self.schema = at.schema
            self.csv = pcsv.CSVWriter(self.fh, self.schema, write_options=pcsv.WriteOptions(quoting_style="needed"))
        else:
            at = _conform(at, self.schema)
        self.csv.write_table(at)

    def close(self) -> None:
        if self.json:
            self.fh.write(b"[]\n" if self.first else b"\n]\n")
        elif self.csv is not None:
            self.csv.close()
        if self.owned:
            self.fh.close()
        else:
            self.fh.flush()


def _conform(at: Any, schema: Any) -> Any:
    """A later chunk cast to the first chunk's column types (text where a column's type changed)."""
    import pyarrow as pa

    cols = []
    for f in schema:
        col = at.column(f.name)
        if col.type != f.type:
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                col = pa.array([None if v is None else str(v) for v in col.to_pylist()], type=pa.string()).cast(
                    f.type, safe=False) if pa.types.is_string(f.type) else col.cast(pa.string())
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def output_table(frame: pd.DataFrame, rows: np.ndarray, ids: list[Any] | np.ndarray, carried: list[str], fs: FrameScores,
                 output: tuple[str, ...], decision_ids: list[str] | None) -> pd.DataFrame:
    """The output columns of the scored rows (``rows``: their positions in ``frame``)."""
    cols: dict[str, Any] = {"row": frame.index.to_numpy()[rows] + 1, "id": ids}
    if decision_ids is not None:
        cols["decision_id"] = decision_ids
    for name in carried:
        values = frame[name].to_numpy()[rows]
        cols[name if name not in output else f"input_{name}"] = values
    m = fs.model
    cols.update({"pd": np.round(fs.pd, 6), "risk_class": fs.risk_class(), "confidence": np.round(fs.confidence, 4),
                 "recommendation": fs.recommendation(), "model_version": m.version, "model_role": "primary",
                 "engine": fs.engine})
    for k, texts in enumerate(fs.reason_texts()):
        cols[f"reason_{k + 1}"] = texts
    return pd.DataFrame(cols)


def stream_score(svc: Any, input_path: Path, serving: Any, plan: Any, *, engine: str, persist: bool,
                 submitter: Actor, writer: Writer | BackgroundWriter, report: Callable[[str], None], id_field: str,
                 output: tuple[str, ...], chunk_rows: int | None = None) -> StreamTotals:
    """Score ``input_path`` chunk by chunk into ``writer``; ``report(line)`` for each rejected row."""
    from backend.scoring.batch import model_rows

    totals = StreamTotals()
    phase, policy = svc.scoring.batch_policy(serving)
    aside = plan.passthrough if persist else [c for c in plan.passthrough if c == "applicant"]
    wanted = list(dict.fromkeys([*plan.features, *aside, *plan.carried, *([plan.id_column] if plan.id_column else [])]))
    # the next chunk is read and checked in a thread while this one is scored (batch_pipeline)
    chunks = ahead((frame, convert_chunk(frame, serving, plan.features, plan.passthrough))
                   for frame in read_chunks(input_path, chunk_rows or batch_chunks.CHUNK_ROWS, wanted))
    with contextlib.closing(chunks):  # an error or a conflict stops the reader and closes the file
        for frame, chunk in chunks:
            for col, values in chunk.unseen.items():
                totals.unseen.setdefault(col, []).extend(values)
            keep = ~chunk.bad
            if chunk.bad.any():  # the row path words each error as it always did; the few it accepts are kept
                idx = np.flatnonzero(chunk.bad)
                raws = model_rows(frame.iloc[idx], serving, plan)
                for i, raw in zip(idx.tolist(), raws, strict=True):
                    try:
                        clean = svc.scoring.validate(raw, serving)
                    except ApplicationInvalid as exc:
                        totals.rejected += 1
                        report(f"row {int(frame.index[i]) + 1}: {exc}")
                        continue
                    for col, v in clean.items():
                        chunk.clean.iat[i, chunk.clean.columns.get_loc(col)] = np.nan if v is None and \
                            serving.kinds.get(col, "numeric") != "categorical" else v
                    keep[i] = True
            rows = np.flatnonzero(keep)
            if not len(rows):
                continue
            clean = chunk.clean if len(rows) == len(chunk.clean) else chunk.clean.iloc[rows]  # (a copy costs 0.2 us/row)
            X = serving.encoder.transform(clean)
            loan = np.nan_to_num(clean["loan_amount"].to_numpy(dtype=np.float64, na_value=np.nan)) \
                if "loan_amount" in clean else np.zeros(len(rows))
            fs = score_frame(serving, X, loan, policy, engine=engine, clean=clean if engine == "reference" else None)
            ids = _ids(frame, rows, plan.id_column, id_field)
            results: list[ScoreResult] | None = None
            decision_ids = None
            if persist or writer.json:
                cleans = clean_records(clean, serving)
                results = [fs.result(i, c) for i, c in enumerate(cleans)]
            if persist:
                assert results is not None
                extra = passthrough_records(frame.iloc[rows], plan.passthrough, plan.id_column, id_field)
                try:
                    results = svc.scoring.record_frame(extra, results, phase, submitter=submitter, source="cli")
                except ApplicationConflict as exc:
                    if not totals.scored:
                        raise
                    raise ApplicationConflict(f"{exc} in its chunk of {len(rows):,} row(s); the {totals.scored:,} "
                                              "row(s) before that chunk were recorded") from exc
                decision_ids = [r.prediction_id or "" for r in results]
                ids = [i or r.application_id or "" for i, r in zip(ids, results, strict=True)]
            writer.write(output_table(frame, rows, ids, plan.carried, fs, output, decision_ids), results)
            totals.scored += len(rows)
    return totals


def _ids(frame: pd.DataFrame, rows: np.ndarray, id_column: str | None, id_field: str) -> list[Any] | np.ndarray:
    """Each scored row's id as the row path gives it ("" without one)."""
    if not id_column:
        return [""] * len(rows)
    values = frame[id_column].iloc[rows]
    if id_column == id_field:
        plain = values.astype(object).where(values.notna(), "")
        return plain.to_numpy()
    return values.astype(object).map(lambda v: str(v.item() if hasattr(v, "item") else v),
                                     na_action="ignore").fillna("").to_numpy()
