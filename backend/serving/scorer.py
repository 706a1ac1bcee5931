"""What the SageMaker serving container does with a request: parse, validate, score, answer.

Input (``POST /invocations``):

* ``application/json``: one application object (the API's ``Application`` schema: the feature
  catalogue's fields, bounds and categories, extra fields forbidden, numbers strict), or
  ``{"instances": [application, ...]}`` with 1..``max_batch`` of them. Read by the API's strict JSON
  reader (NaN, Infinity, 1e309, duplicate keys, NUL, lone surrogates refused).
* ``text/csv``: one application per line, either under a header row of field names or, without a
  header, one value per model feature in the model's feature order (``GET /ping`` lists it). An
  empty cell is a missing value.

Every application then passes the model's own validation (:mod:`backend.domain.validation`), as in
the local path. A refusal is a 4xx problem (``application/problem+json``) naming the application
index and field, never the value sent.

Output (``application/json``): ``{"model_name", "model_version", "predictions": [...]}``, one item per
application in order, with what the local scorer computes: the calibrated ``pd``, ``raw_score``,
``risk_class``, ``confidence``, ``recommendation`` and ``policy_reasons`` under the model's own policy,
the recommendation inputs (``members``: each ensemble member's probability, ``member_spread``), the
adverse-action ``reasons``, the per-feature ``attributions`` (unrounded) with ``base_value`` and
``margin``, ``model_role`` (``fallback`` when the primary could not score, with ``fallback_error``).
A caller with its own policy (the rollout phase's threshold and cap) re-decides from these inputs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from backend.api.jsonbody import is_json, strict_loads
from backend.api.problems import UNRECOGNISED, Problem, sanitize_errors
from backend.api.schemas import application_model
from backend.domain import FEATURES_BY_NAME, MAX_STRING, ApplicationInvalid, decide, validate_application
from backend.models import ModelProvider, ModelUnavailable, ServingModel
from backend.scoring import META_FIELDS, PROTECTED_PASSTHROUGH

INSTANCES = "instances"
MAX_STRING_LENGTH = 10_000
MSG_MEDIA = "POST /invocations takes application/json or text/csv."
MSG_ACCEPT = "Answers are application/json."
MSG_SHAPE = "The body must be one application object or {\"instances\": [application, ...]}."
MSG_EMPTY = "The body holds no application."
MSG_BATCH = "At most {n} applications per invocation (got {got})."
MSG_CSV = "The body is not valid CSV: {reason}."
MSG_CSV_WIDTH = "Line {line} has {got} values; a headerless line has one per model feature ({n}), in /ping order."
MSG_CSV_HEADER = "Header field {name!r} is not a field of the application."
MSG_CSV_HEADER_WIDTH = "Line {line} has {got} values for {n} header fields."
MSG_UTF8 = "The body is not valid UTF-8."
MSG_NOT_READY = "The model is not loaded: {reason}"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FIELD = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # a field name is shown only when it looks like one
_BOOLEAN = {"0": 0, "1": 1, "true": 1, "false": 0, "yes": 1, "no": 0}


def _invalid(detail: str, errors: list[dict[str, Any]] | None = None, status: int = 422) -> Problem:
    return Problem(status, "invalid-input", "The input is not valid", detail,
                   extra={"errors": errors} if errors else None)


class ContainerScorer:
    """Holds the served model (loaded once) and answers invocations."""

    def __init__(self, provider: ModelProvider, *, max_batch: int = 100, source: str = "") -> None:
        self.provider = provider
        self.max_batch = max_batch
        self.source = source
        self._lock = threading.Lock()
        self._model: ServingModel | None = None
        self.error: str | None = None

    # -- model ----------------------------------------------------------------------------------
    def load(self) -> ServingModel | None:
        with self._lock:
            if self._model is None:
                try:
                    model = self.provider.get("champion")
                    score_items(model, [_warm_up_record(model)])  # compiles the kernels before /ping says ok
                    self._model, self.error = model, None
                except ModelUnavailable as exc:
                    self.error = str(exc)[:500]
                except Exception as exc:  # noqa: BLE001 - a model that cannot score is not ready; say why
                    self.error = f"the model cannot score: {type(exc).__name__}: {exc}"[:500]
            return self._model

    @property
    def model(self) -> ServingModel:
        model = self._model or self.load()
        if model is None:
            raise Problem(503, "model-not-loaded", "The model is not loaded", MSG_NOT_READY.format(reason=self.error))
        return model

    def ping(self) -> tuple[int, dict[str, Any]]:
        model = self._model or self.load()
        if model is None:
            return 503, {"status": "unavailable", "detail": self.error, "source": self.source}
        return 200, {"status": "ok", "model_name": model.name, "model_version": model.version,
                     "primary": model.primary is not None, "features": model.columns, "max_batch": self.max_batch,
                     "source": self.source}

    # -- parsing ----------------------------------------------------------------------------------
    def parse(self, body: bytes, content_type: str | None) -> list[dict[str, Any]]:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if is_json(content_type):
            rows = self._json_rows(body)
        elif media in ("text/csv", "application/csv"):
            rows = self._csv_rows(body)
        else:
            raise Problem(415, "unsupported-media-type", "Unsupported media type", MSG_MEDIA)
        if not rows:
            raise _invalid(MSG_EMPTY, status=400)
        if len(rows) > self.max_batch:
            raise _invalid(MSG_BATCH.format(n=self.max_batch, got=len(rows)), status=413)
        return rows

    def _json_rows(self, body: bytes) -> list[dict[str, Any]]:
        value = strict_loads(body, max_string_length=MAX_STRING_LENGTH)
        if isinstance(value, dict) and INSTANCES in value:
            items = value[INSTANCES]
            if len(value) != 1 or not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise _invalid(MSG_SHAPE, status=400)
            return items
        if isinstance(value, dict):
            return [value]
        raise _invalid(MSG_SHAPE, status=400)

    def _csv_rows(self, body: bytes) -> list[dict[str, Any]]:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _invalid(MSG_UTF8, status=400) from None
        if "\x00" in text:
            raise _invalid(MSG_CSV.format(reason="it contains a NUL character"), status=400)
        try:
            lines = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if any(c.strip() for c in r)]
        except csv.Error as exc:
            raise _invalid(MSG_CSV.format(reason=str(exc).split(":", 1)[0][:80]), status=400) from None
        if not lines:
            return []
        known = set(application_model().model_fields)
        header = [c.strip() for c in lines[0]]
        has_header = any(h in known for h in header)
        if has_header:  # a header row: every name must be a field
            for h in header:
                if h not in known:
                    raise _invalid(MSG_CSV_HEADER.format(name=h if _FIELD.match(h) else UNRECOGNISED), status=400)
            names, data, first = header, lines[1:], 2
        else:
            names, data, first = list(self.model.columns), lines, 1
        rows = []
        if len(data) > self.max_batch:
            raise _invalid(MSG_BATCH.format(n=self.max_batch, got=len(data)), status=413)
        for n, line in enumerate(data, start=first):
            if len(line) != len(names):
                msg = MSG_CSV_HEADER_WIDTH if has_header else MSG_CSV_WIDTH
                raise _invalid(msg.format(line=n, got=len(line), n=len(names)), status=400)
            rows.append({k: _cell(k, v, self.model.kinds) for k, v in zip(names, line, strict=True) if v.strip()})
        return rows

    # -- validation and scoring ---------------------------------------------------------------------
    def validate(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The catalogue schema (as the API), then the model's validation; all errors, indexed."""
        model, schema = self.model, application_model()
        errors: list[dict[str, Any]] = []
        cleans: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            try:
                parsed = schema.model_validate(row).model_dump(exclude_unset=True)
            except ValidationError as exc:
                errors += [{"index": i, **e} for e in sanitize_errors(exc.errors(include_url=False, include_input=False))]
                continue
            try:
                cleans.append(validate_application(parsed, columns=model.columns, kinds=model.kinds,
                                                   categories=model.categories,
                                                   ignore_extra=PROTECTED_PASSTHROUGH + META_FIELDS))
            except ApplicationInvalid as inv:
                errors += [{"index": i, "loc": [e.field], "type": "value_error", "msg": e.message} for e in inv.errors]
        if errors:
            raise _invalid("See 'errors' for each application and field that was refused.", errors[:50])
        return cleans

    def invoke(self, body: bytes, content_type: str | None, accept: str | None = None) -> bytes:
        if accept and not any(a.split(";", 1)[0].strip().lower() in ("application/json", "*/*", "application/*")
                              for a in accept.split(",")):
            raise Problem(406, "not-acceptable", "Not acceptable", MSG_ACCEPT)
        rows = self.parse(body, content_type)
        cleans = self.validate(rows)
        model = self.model
        items = score_items(model, cleans)
        for item, row in zip(items, rows, strict=True):
            if row.get("application_id"):
                item["application_id"] = row["application_id"]
        doc = {"model_name": model.name, "model_version": model.version, "predictions": items}
        return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()


def _warm_up_record(model: ServingModel) -> dict[str, Any]:
    """A valid application with every feature missing but the loan amount (the catalogue's lower bound)."""
    feat = FEATURES_BY_NAME.get("loan_amount")
    return {c: (float(feat.lower or 1000.0) if feat else 1000.0) if c == "loan_amount" else None for c in model.columns}


def _cell(name: str, text: str, kinds: Mapping[str, str]) -> Any:
    """One CSV cell as the JSON value it stands for (the schema then validates it)."""
    value = text.strip()
    kind = kinds.get(name)
    if kind in ("numeric", "integer") and _NUMBER.match(value):
        x = float(value)
        return int(x) if kind == "integer" and math.isfinite(x) and x.is_integer() and abs(x) < 2**53 else x
    if kind == "binary" and value.lower() in _BOOLEAN:
        return _BOOLEAN[value.lower()]
    return value[: MAX_STRING * 2]  # the schema refuses what is not a valid value of the field


def score_items(model: ServingModel, cleans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score validated applications as the local scorer does (primary; the fallback forest when the
    primary cannot score, saying so) and describe each result with its recommendation inputs."""
    X = model.encoder.transform_records(cleans)
    role, error = "primary", None
    try:
        if model.primary is None:
            raise RuntimeError("primary artifact failed its integrity check")
        raw = model.primary.predict_proba(X)
        phi, base = model.primary.attributions(X)
        members = model.primary.member_probas(X)
        margins = base + phi.sum(axis=1)
    except Exception as exc:  # noqa: BLE001 - any primary failure falls back, and says so (as the local path)
        role, error = "fallback", f"{type(exc).__name__}: {exc}"[:300]
        raw = model.fallback.predict_proba(X)
        phi, base = model.fallback.attributions(X)
        members = model.fallback.member_probas(X)
        margins = np.asarray(raw, dtype=np.float64)
    pds = model.calibrate(np.asarray(raw, dtype=np.float64), model=role)
    out = []
    for i, clean in enumerate(cleans):
        ms = [float(m) for m in members[i]]
        o = decide(float(raw[i]), loan_amount=float(clean.get("loan_amount") or 0.0), members=ms,
                   fallback_used=role == "fallback", policy=model.policy)
        out.append({
            "model_name": model.name, "model_version": model.version, "model_role": role, "engine": "compiled",
            "pd": float(pds[i]), "raw_score": float(raw[i]), "risk_class": o.risk_class, "confidence": o.confidence,
            "recommendation": o.recommendation, "policy_reasons": list(o.policy_reasons),
            "reasons": model.reasons.top(phi[i], clean),
            "attributions": dict(zip(model.columns, (float(v) for v in phi[i]), strict=True)),
            "base_value": float(base[i]), "margin": float(margins[i]), "member_spread": o.member_spread,
            "members": ms, "fallback_error": error})
    return out
