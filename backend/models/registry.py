"""Filesystem model registry: ``<root>/<name>/<version>/`` plus ``<root>/<name>/aliases.json``.

A version folder is written once (into a temporary folder, then renamed) and never changed:

- ``manifest.json``: name, version, created time (UTC), code version, features and kinds, encoder
  spec, calibration, policy parameters, training-data SHA-256, metrics, the evaluation report
  and the gate results at registration;
- ``primary.npz`` / ``fallback.npz``: the compiled models as plain arrays (``np.savez``, read
  back with ``allow_pickle=False``); the runtime scorer needs nothing else;
- ``reference.joblib``: the fitted scikit-learn pipelines, only unpickled for the ``reference``
  engine and for retraining (after its checksum is verified);
- ``holdout.parquet``: the held-out rows (features, protected attributes, target);
- ``checksums.json``: SHA-256 of every other file, verified before anything is parsed;
- ``signature.json``: an Ed25519 signature over the name, the version id and ``checksums.json``
  (:mod:`backend.models.signing`), verified before the checksums are read: a version that is unsigned,
  signed by an unknown key or altered after signing is refused, naming it.

Lifecycle state (status candidate/champion/retired, the ``champion``/``challenger`` aliases,
the champion history used by ``rollback``, the running canary (:mod:`backend.models.canary`) and an
event log) lives in ``aliases.json``, signed with the same keys (:mod:`backend.models.aliases_file`), rewritten atomically (temporary file + ``os.replace``) under
a file lock, so verified version folders never change. The manifest's ``status`` is the status at
registration; ``load`` and ``list`` report the live one.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from backend.models.aliases_file import MSG_BAD_ALIASES, parse_aliases_data, save_aliases
from backend.models.artifacts import (
    ARTIFACTS,
    HOLDOUT,
    MANIFEST,
    PD_FLOOR,
    ArtifactIntegrityError,
    LoadedModel,
    RegistryError,
    apply_calibration,
    load_version,
    parse_manifest,
    read_checksums,
    read_regular,
    read_verified,
)
from backend.models.registration import build_manifest, new_version_id, write_version_folder
from backend.models.signing import MSG_NO_SIGNER, ModelKeys, keys_from_environment

__all__ = ["ArtifactIntegrityError", "LoadedModel", "PD_FLOOR", "PromotionRefused", "Registry", "RegistryError",
           "apply_calibration"]  # fmt: skip

ALIASES = "aliases.json"
STATUSES = ("candidate", "champion", "retired")
MSG_UNKNOWN_VERSION = "no model version {ref!r} under {path} (known: {known})"
MSG_NO_ALIAS = "no {alias} model under {path}"
MSG_GATES_FAILED = "cannot promote {version}: gate(s) failed: {failures}"
MSG_NO_PREVIOUS = "no previous champion to roll back to under {path}"
MSG_NOT_FORMER = ("cannot roll back to {version}: it never served as champion (earlier champions: {known}); "
                  "a version that never served goes through the canary instead")
MSG_ALREADY = "{version} is already the champion"


class PromotionRefused(RegistryError):
    """Promotion refused because gates failed."""


class Registry:
    """Versioned models of one ``name`` under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path = "models", name: str = "creditrisk", *, keys: ModelKeys | None = None) -> None:
        """``keys``: the deployment's signing/verification keys (default: from the ``CREDITRISK_MODEL__*``
        variables, see :func:`backend.models.signing.keys_from_environment`)."""
        self.root = Path(root)
        self.name = name
        self.path = self.root / name
        self._keys = keys

    @property
    def keys(self) -> ModelKeys:
        if self._keys is None:
            self._keys = keys_from_environment()
        return self._keys

    # ----------------------------------------------------------- aliases
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def aliases(self) -> dict[str, Any]:
        """``champion``, ``challenger``, ``champion_history``, ``status``, ``canary`` and ``events``, after the
        document's signature verifies (:mod:`backend.models.aliases_file`)."""
        try:
            data: bytes | None = self._aliases_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:  # a directory, unreadable, ...
            raise RegistryError(MSG_BAD_ALIASES.format(path=self.path / ALIASES, reason=type(exc).__name__)) from None
        return parse_aliases_data(data, path=self.path / ALIASES, name=self.name, keys=self.keys)

    def _aliases_bytes(self) -> bytes:
        """The stored lifecycle document (``FileNotFoundError`` when there is none yet)."""
        return read_regular(self.path / ALIASES)

    def _save_aliases(self, doc: dict[str, Any]) -> None:
        save_aliases(self.path / ALIASES, name=self.name, keys=self.keys, doc=doc)

    def _store_version(self, version: str, manifest: dict[str, Any], result: Any) -> None:
        """Write the signed version folder (a remote registry also uploads it before the lifecycle changes)."""
        write_version_folder(self.path, version, manifest, result, self.keys)

    def _event(self, doc: dict[str, Any], action: str, version: str, at: datetime | None = None,
               **extra: Any) -> None:
        doc["events"].append({"at": (at or datetime.now(UTC)).isoformat(timespec="seconds"), "action": action,
                              "version": version, **extra})

    # ---------------------------------------------------------- versions
    def versions(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.is_dir() and p.name.startswith("v"))

    def resolve(self, ref: str = "champion") -> str:
        """A version id from a version id, ``champion``, ``challenger`` or ``latest``."""
        if ref in ("champion", "challenger"):
            version = self.aliases()[ref]
            if not version:
                raise RegistryError(MSG_NO_ALIAS.format(alias=ref, path=self.path))
            return str(version)
        known = self.versions()
        if ref == "latest" and known:
            return known[-1]
        if ref not in known:
            raise RegistryError(MSG_UNKNOWN_VERSION.format(ref=ref, path=self.path, known=", ".join(known[-10:]) or "none"))
        return ref

    def status(self, version: str) -> str:
        return str(self.aliases()["status"].get(version, "candidate"))

    def _checksums(self, version: str) -> dict[str, str]:
        return read_checksums(self.path / version, self.name, version, self.keys)

    def manifest(self, version: str) -> dict[str, Any]:
        """The verified manifest of ``version`` (a version id or an alias)."""
        version = self.resolve(version)
        data = read_verified(self.path / version, MANIFEST, self._checksums(version), self.name, version)
        return parse_manifest(data, self.name, version)

    def verify(self, version: str) -> dict[str, str]:
        """Check every artifact's checksum; returns ``{file: error}`` (empty when intact)."""
        version = self.resolve(version)
        try:
            sums = self._checksums(version)
        except ArtifactIntegrityError as exc:
            return {exc.file: str(exc)}
        errors = {}
        for file in ARTIFACTS:
            try:
                read_verified(self.path / version, file, sums, self.name, version)
            except ArtifactIntegrityError as exc:
                errors[file] = str(exc)
        if not errors:  # every byte is as signed: check that it also parses (JSON and arrays, no pickle)
            try:
                self.load(version)
            except ArtifactIntegrityError as exc:
                errors[exc.file] = str(exc)
        return errors

    def load(self, ref: str = "champion", *, allow_partial: bool = False) -> LoadedModel:
        """Verify checksums, then build the runtime model from JSON and ``.npz`` arrays only.

        With ``allow_partial`` a bad ``primary.npz`` or ``fallback.npz`` leaves that model
        ``None`` (listed in ``integrity_errors``) instead of failing, so a service can serve
        the other one or report "not ready"; a bad manifest always raises.
        """
        version = self.resolve(ref)
        return load_version(self.path / version, self.name, version, status=self.status(version),
                            keys=self.keys, allow_partial=allow_partial)

    def list(self) -> list[dict[str, Any]]:
        """One summary per version, oldest first (:func:`backend.models.listing.version_summaries`)."""
        from backend.models.listing import version_summaries

        return version_summaries(self)

    # --------------------------------------------------------- register
    def _gates(self, evaluation: Mapping[str, Any], holdout: pd.DataFrame, target: str, config: Any
               ) -> tuple[builtins.list[Any], dict[str, Any]]:
        """Gates for a candidate, scoring the current champion (if any) on the candidate's holdout."""
        from backend.models.gates import candidate_gates

        version = self.aliases()["champion"]
        champion: LoadedModel | Exception | None = None
        if version:
            try:
                champion = self.load(version)
            except RegistryError as exc:
                champion = exc
        return candidate_gates(evaluation, holdout, target, champion=champion, champion_version=version, config=config)

    def register(self, result: Any, *, gates: Any = None, lineage: Mapping[str, Any] | None = None,
                 at: datetime | None = None) -> str:
        """Write a trained ``TrainResult`` as a new candidate version (also the ``challenger``).

        ``lineage``: where the training data came from (window, rows, who asked), stored in the
        manifest with the champion in force at registration (``parent_champion``). ``at``: the
        registration time of the caller's clock (the simulator's), so that every lifecycle time of a
        version reads from one clock; the version id keeps the wall-clock time (ids sort by creation)."""
        from backend.models.gates import GateConfig

        if self.keys.signer is None:  # refused before any work: an unsigned version is never written
            raise RegistryError(MSG_NO_SIGNER)
        config = gates if gates is not None else GateConfig()
        version = new_version_id(datetime.now(UTC))
        now = at or datetime.now(UTC)
        gate_results, context = self._gates(result.report["test"]["primary"], result.holdout, result.dataset.target,
                                            config)
        manifest = build_manifest(self.name, version, now, result, gate_results=gate_results, context=context,
                                  config=config, lineage=lineage)
        self._store_version(version, manifest, result)
        with self._locked():
            doc = self.aliases()
            doc["status"][version] = "candidate"
            doc["challenger"] = version
            self._event(doc, "register", version, at=now, gates_passed=manifest["gates_passed"],
                        **({"by": lineage["created_by"]} if lineage and lineage.get("created_by") else {}))
            self._save_aliases(doc)
        return version

    # ------------------------------------------------ promote / rollback
    def holdout(self, version: str) -> pd.DataFrame:
        """The verified held-out rows of ``version`` (features, protected attributes, target)."""
        version = self.resolve(version)
        data = read_verified(self.path / version, HOLDOUT, self._checksums(version), self.name, version)
        return pd.read_parquet(io.BytesIO(data))

    def _intact(self, version: str) -> None:
        errors = self.verify(version)
        if errors:
            file = next(iter(errors))
            raise ArtifactIntegrityError(errors[file], file)

    def gates_now(self, version: str, champion: str | None, gates: Any = None) -> builtins.list[Any]:
        """The gate results of ``version`` against ``champion``: as registered, with the
        champion/challenger gate re-run on its holdout if the champion changed since."""
        from backend.models.gates import GateConfig, GateResult

        manifest = self.manifest(version)
        if champion == manifest["gates_context"].get("champion_version"):
            return [GateResult.from_dict(g) for g in manifest["gates"]]
        config = gates or GateConfig.from_dict(manifest.get("gates_config"))
        results, _ = self._gates(manifest["evaluation"]["test"]["primary"], self.holdout(version),
                                 manifest["target"], config)
        return results

    def promote(self, ref: str, *, gates_required: bool = True, gates: Any = None,
                at: datetime | None = None, by: str | None = None) -> dict[str, Any]:
        """Make ``ref`` the champion. Refused (``PromotionRefused``) when a gate failed, with the
        champion/challenger gate re-run if the champion changed since registration. A running
        canary ends: completed when ``ref`` is its version, aborted otherwise."""
        version = self.resolve(ref)
        self.manifest(version)  # verified
        self._intact(version)
        with self._locked():
            doc = self.aliases()
            result = self.promote_in(doc, version, gates_required=gates_required, gates=gates, at=at, by=by)
            if result["changed"]:
                self._save_aliases(doc)
        return result

    def promote_in(self, doc: dict[str, Any], version: str, *, gates_required: bool = True, gates: Any = None,
                   at: datetime | None = None, by: str | None = None) -> dict[str, Any]:
        """:meth:`promote` on an aliases document already read under the lock (the caller saves)."""
        from backend.models import states
        from backend.models.canary import end_canary
        from backend.models.gates import all_passed, failures

        current = doc["champion"]
        if current == version:
            return {"version": version, "changed": False, "gates": self.manifest(version)["gates"]}
        results = self.gates_now(version, current, gates)
        failed = failures(results) if gates_required and not all_passed(results) else []
        try:  # failed gates or a rollback for cause refuse, unless a risk manager's override covers them
            _, override = states.blockers(doc, version, failed, what="promote")
        except states.LifecycleRefused as exc:
            raise PromotionRefused(str(exc)) from None
        end_canary(self, doc, completed=(doc["canary"] or {}).get("version") == version, at=at, by=by,
                   reason=f"{version} promoted")
        if current:
            doc["champion_history"].append(current)
            doc["status"][current] = "retired"
        doc["champion"] = version
        doc["status"][version] = "champion"
        if doc["challenger"] == version:
            doc["challenger"] = None
        self._event(doc, "promote", version, previous=current, at=at, forced=not all_passed(results),
                    gates=[r.to_dict() for r in results], **({"by": by} if by else {}),
                    **({"override_by": override["by"]} if override else {}))
        return {"version": version, "changed": True, "previous": current, "gates": [r.to_dict() for r in results]}

    def former_champions(self, doc: Mapping[str, Any] | None = None) -> builtins.list[str]:
        """Versions that served as champion before (newest first), the current champion excluded."""
        doc = doc if doc is not None else self.aliases()
        served = [*doc["champion_history"]]
        for e in doc["events"]:
            if e.get("action") in ("promote", "rollback"):
                served += [e.get("previous"), e.get("version")]
        known = set(self.versions())
        out: builtins.list[str] = []
        for v in reversed(served):
            if v and v != doc["champion"] and v not in out and v in known:
                out.append(v)
        return out

    def rollback_targets(self, doc: Mapping[str, Any] | None = None) -> builtins.list[str]:
        """Earlier champions a rollback may return to: not rolled back for cause, newest first."""
        from backend.models import states

        doc = doc if doc is not None else self.aliases()
        return states.rollback_targets(doc, self.former_champions(doc))

    def rollback(self, *, to: str | None = None, at: datetime | None = None, by: str | None = None,
                 cause: str | None = None) -> str:
        """Champion -> ``to`` (any version that served as champion before and was not rolled back for
        cause; default the previous such champion). The current champion is retired (with ``cause``:
        rolled back for cause, see :mod:`backend.models.states`) and a running canary aborted; returns the
        new champion. No gates: rollback returns to a version that already served."""
        from backend.models import states
        from backend.models.canary import end_canary

        reason = states.clean_reason(cause) if cause is not None else None
        with self._locked():
            doc = self.aliases()
            history = doc["champion_history"]
            allowed = states.rollback_targets(doc, self.former_champions(doc))
            if to is None:
                target = next((v for v in reversed(history) if v in allowed), None)
                if target is None:
                    raise RegistryError(MSG_NO_PREVIOUS.format(path=self.path))
            else:
                target = self.resolve(to)
                if target == doc["champion"]:
                    raise RegistryError(MSG_ALREADY.format(version=target))
                caused = states.cause(doc, target)
                if caused:
                    raise states.LifecycleRefused(states.MSG_NO_CAUSED_TARGET.format(
                        version=target, reason=caused.get("reason"), known=", ".join(allowed) or "none"))
                if target not in self.former_champions(doc):
                    raise RegistryError(MSG_NOT_FORMER.format(version=target, known=", ".join(allowed) or "none"))
            self._intact(target)
            current = doc["champion"]
            if target in history:  # back to an earlier state: later champions leave the history
                del history[len(history) - 1 - history[::-1].index(target):]
            elif current:
                history.append(current)
            if current:
                doc["status"][current] = "retired"
                if reason:
                    states.mark_cause(doc, current, reason, by=by, at=at)
            doc["champion"] = target
            doc["status"][target] = "champion"
            end_canary(self, doc, completed=False, at=at, by=by, reason=f"rollback to {target}")
            self._event(doc, "rollback", target, at=at, previous=current, **({"by": by} if by else {}),
                        **({"cause": reason} if reason else {}))
            self._save_aliases(doc)
        return target

    def report(self, ref: str) -> dict[str, Any]:
        """The JSON report of a version (what ``creditrisk train --json`` prints)."""
        version = self.resolve(ref)
        m = self.manifest(version)
        return {"name": self.name, "version": version, "status": self.status(version),
                "path": str(self.path / version), "created_at": m["created_at"], "code_version": m["code_version"],
                "metrics": m["metrics"], "gates": m["gates"], "gates_passed": m["gates_passed"],
                "data": m.get("data", {}), "lineage": m.get("lineage", {}), "evaluation": m["evaluation"]}
