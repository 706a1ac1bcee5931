"""The served model when the primary runs on SageMaker: the scoring service's seams, unchanged.

:class:`~backend.scoring.service.ScoringService` scores one application as
``primary.score_one(encoder.encode_one(clean))`` and, when that raises, scores it with the local
fallback forest, records ``fallback_error`` and sends it to manual review (the documented fallback).
:func:`remote_model` keeps that contract and only swaps two parts of the local
:class:`~backend.models.provider.ServingModel`:

* the encoder still encodes locally (the fallback needs the vector) but the row it returns also
  carries the validated application (``row.record``);
* the primary is :class:`RemotePrimary`: ``score_one`` sends that application to the endpoint and
  returns the raw score, margin, attributions and member probabilities it answered. The policy
  (with the rollout phase's threshold and cap), the calibration and the reasons are then applied
  locally as for the local model.

The answer is accepted only from the version the registry serves here (the endpoint must serve the
registry's champion: ``creditrisk deploy sagemaker`` deploys it), from the endpoint's primary, with
one attribution per feature, ``base + sum(attributions) == margin`` and the calibrated PD of its raw
score equal to the PD it reported. Anything else raises, so the local fallback scores and the
prediction says why. With ``CREDITRISK_MODEL__SERVER=sagemaker`` the engine recorded is
``sagemaker``.

Matrix calls (``predict_proba``, ``attributions``, ``member_probas``: monitoring, batch scoring with
the ``compiled`` engine) run on the local compiled primary, as their engine label says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from backend.models.adapters.sagemaker_runtime import BAD_RESPONSE, SageMakerError

MSG_VERSION = "the endpoint serves {got}, the registry serves {want}: deploy the champion or wait for the update"
MSG_ROLE = "the endpoint scored with its fallback model ({error})"
MSG_FEATURES = "the endpoint's attributions do not name this model's {n} features"
MSG_INCONSISTENT = "the endpoint's answer is inconsistent: {what}"
MSG_NO_LOCAL = "the local primary model is unavailable for {what}"
MSG_NO_RECORD = "score_one needs a row from the SageMaker encoder (with its application)"
TOLERANCE = 1e-6


class EncodedRow(np.ndarray):
    """An encoded application that remembers the application it came from."""

    record: Mapping[str, Any] | None = None


class RecordEncoder:
    """The local encoder, whose single rows carry their application for the endpoint."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder

    def encode_one(self, record: Mapping[str, Any]) -> np.ndarray:
        row = np.asarray(self._encoder.encode_one(record)).view(EncodedRow)
        row.record = dict(record)
        return row

    def __getattr__(self, name: str) -> Any:  # transform, transform_records, to_dict, columns_ ...
        if name.startswith("__") or name == "_encoder":
            raise AttributeError(name)
        return getattr(self._encoder, name)


class RemotePrimary:
    """The primary model on a SageMaker endpoint (single applications), local for matrices."""

    def __init__(self, server: Any, *, version: str, columns: list[str], local: Any, calibrate: Any) -> None:
        self.server = server
        self.version = version
        self.columns = list(columns)
        self.local = local
        self.calibrate = calibrate

    def score_one(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        record = getattr(x, "record", None)
        if record is None:
            raise SageMakerError(BAD_RESPONSE, MSG_NO_RECORD)
        r = self.server.invoke([record])[0]
        if r.model_version != self.version:
            raise SageMakerError(BAD_RESPONSE, MSG_VERSION.format(got=r.model_version[:64], want=self.version))
        if r.model_role != "primary":
            raise SageMakerError(BAD_RESPONSE, MSG_ROLE.format(error=(r.fallback_error or "no reason given")[:200]))
        if set(r.attributions) != set(self.columns):
            raise SageMakerError(BAD_RESPONSE, MSG_FEATURES.format(n=len(self.columns)))
        phi = np.array([r.attributions[c] for c in self.columns], dtype=np.float64)
        if abs(r.base_value + float(phi.sum()) - r.margin) > TOLERANCE:
            raise SageMakerError(BAD_RESPONSE, MSG_INCONSISTENT.format(what="base + attributions != margin"))
        if abs(float(self.calibrate(float(r.raw_score), model="primary")) - r.pd) > TOLERANCE:
            raise SageMakerError(BAD_RESPONSE, MSG_INCONSISTENT.format(what="pd is not the calibrated raw score"))
        return r.raw_score, r.margin, phi, np.array(r.members, dtype=np.float64)

    def _local(self, what: str) -> Any:
        if self.local is None:
            raise RuntimeError(MSG_NO_LOCAL.format(what=what))
        return self.local

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._local("predict_proba").predict_proba(np.asarray(X))

    def attributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._local("attributions").attributions(np.asarray(X))

    def member_probas(self, X: np.ndarray) -> np.ndarray:
        return self._local("member_probas").member_probas(np.asarray(X))

    def __getattr__(self, name: str) -> Any:  # margin, n_members, to_arrays ...
        if name.startswith("__") or name == "local":
            raise AttributeError(name)
        return getattr(self._local(name), name)


def remote_model(model: Any, server: Any) -> Any:
    """``model`` (a ServingModel) with its primary on ``server`` (a SageMakerModelServer)."""
    primary = RemotePrimary(server, version=model.version, columns=model.columns, local=model.primary,
                            calibrate=model.calibrate)
    return dataclasses.replace(model, encoder=RecordEncoder(model.encoder), primary=primary)
