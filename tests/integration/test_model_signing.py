"""Attacks on the model registry, written as the attacker: someone who can write the registry folder
(``models/``) but not the deployment's secret store.

Each attack first shows its payload works when nothing checks it (so a pass is not a test that could not
fail), then that the registry, the model provider, the scoring service and ``creditrisk models verify``
refuse it, naming the version.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import stat
from pathlib import Path

import joblib
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from backend.cli import app
from backend.domain import Actor
from backend.models import ModelKeys, ModelUnavailable, Registry, RegistryError
from backend.models.artifacts import ArtifactIntegrityError, load_compiled
from backend.models.signing import SIGNATURE, private_to_b64, public_raw
from backend.models.signing_admin import adopt_unsigned, rotate_key
from backend.training.synthetic import generate

OFFICER = Actor("olivia", "loan_officer")
runner = CliRunner()


# -- the attacker's tools ---------------------------------------------------------------------------
def _recompute_checksums(folder: Path) -> None:
    """What an attacker does after editing a file: make checksums.json agree again."""
    sums = json.loads((folder / "checksums.json").read_text())
    for file in sums:
        if (folder / file).is_file():
            sums[file] = hashlib.sha256((folder / file).read_bytes()).hexdigest()
    (folder / "checksums.json").write_text(json.dumps(sums, indent=2))


def _approve_everyone(folder: Path) -> None:
    """Rewrite primary.npz so every applicant gets the lowest raw score (PD at the floor)."""
    with np.load(folder / "primary.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["table"] = np.full_like(arrays["table"], -50.0)
    arrays["bias"] = np.full_like(arrays["bias"], -50.0)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (folder / "primary.npz").write_bytes(buf.getvalue())
    _recompute_checksums(folder)


class _Payload:
    """A pickle that runs code when loaded: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _malicious_reference(folder: Path, marker: Path) -> None:
    joblib.dump({"primary": _Payload(marker)}, folder / "reference.joblib")
    _recompute_checksums(folder)


def _apps(n=3, seed=11):
    df = generate(n, seed=seed).drop(columns=["default", "pd_true"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")


@pytest.fixture
def registry(model_registry: Path, tmp_path: Path) -> Registry:
    shutil.copytree(model_registry, tmp_path / "attack" / "models")
    return Registry(tmp_path / "attack" / "models", name="creditrisk")


def _champion_folder(reg: Registry) -> tuple[str, Path]:
    version = reg.resolve("champion")
    return version, reg.path / version


# -- 1. weights altered to approve everyone, checksums recomputed -------------------------------------
def test_weights_altered_to_approve_everyone_are_refused(registry):
    version, folder = _champion_folder(registry)
    _approve_everyone(folder)
    # the payload works: the altered arrays parse and score every applicant at the PD floor
    forged = load_compiled((folder / "primary.npz").read_bytes(), "primary.npz", "creditrisk", version)
    assert forged.predict_proba(np.zeros((1, forged.n_features))).max() < 1e-10
    errors = registry.verify(version)  # every checksum agrees now, but the signature does not
    assert set(errors) == {SIGNATURE} and version in errors[SIGNATURE]
    with pytest.raises(ArtifactIntegrityError, match=f"{version} failed its signature check"):
        registry.load(version, allow_partial=True)
    res = runner.invoke(app, ["models", "verify", "champion"], env=_cli_env(registry))  # said "intact" before
    assert res.exit_code == 1 and "does not match checksums.json" in res.stderr and "intact" not in res.output


def test_altered_weights_are_never_served(scoring_services):
    reg = scoring_services.models.registry()
    version, folder = _champion_folder(reg)
    _approve_everyone(folder)
    scoring_services.models.invalidate()
    with pytest.raises(ModelUnavailable, match=f"{version}.*signature"):
        scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER)


def test_attackers_own_key_is_refused(registry):
    """Re-signing the forged version with a key of the attacker's: a valid Ed25519 signature, wrong key."""
    version, folder = _champion_folder(registry)
    _approve_everyone(folder)
    attacker = ModelKeys.of(Ed25519PrivateKey.generate())
    (folder / SIGNATURE).write_bytes(attacker.sign("creditrisk", version, (folder / "checksums.json").read_bytes()))
    # the payload works for whoever trusts the attacker's key: the forged champion approves at the PD floor
    # (it also trusts the deployment's key, which signed aliases.json)
    trusting = Registry(registry.root, name="creditrisk",
                        keys=ModelKeys.of(attacker.signer, *registry.keys.verifiers.values()))
    model = trusting.load(version)
    assert float(model.calibrate(float(model.primary.predict_proba(np.zeros((1, model.primary.n_features)))[0]))) \
        <= 1.01e-4
    with pytest.raises(ArtifactIntegrityError, match=r"signed by key [0-9a-f]{16}, which is not one of"):
        registry.load(version)
    res = runner.invoke(app, ["models", "verify", version], env=_cli_env(registry))
    assert res.exit_code == 1 and "signature" in res.stderr and "Traceback" not in res.output


def test_unsigned_and_transplanted_versions_are_refused(registry, model_registry):
    version, folder = _champion_folder(registry)
    sig = (folder / SIGNATURE).read_bytes()
    (folder / SIGNATURE).unlink()
    with pytest.raises(ArtifactIntegrityError, match=f"creditrisk/{version} is not signed"):
        registry.load(version)
    # a genuine signature of this version, replayed onto a copy of it under another version id
    (folder / SIGNATURE).write_bytes(sig)
    shutil.copytree(folder, registry.path / "v29990101-000000000-aaaaaa")
    with pytest.raises(ArtifactIntegrityError, match=f"signed as creditrisk/{version}"):
        registry.load("v29990101-000000000-aaaaaa")
    assert not registry.verify(version)  # the original is untouched and verifies


# -- 2. a malicious pickle with a recomputed checksum never executes -----------------------------------
def test_malicious_reference_pickle_never_runs(registry, tmp_path, scoring_services):
    probe = tmp_path / "probe-marker"
    joblib.load(io.BytesIO(_pickled(_Payload(probe))))  # the payload works when unpickled unchecked
    assert probe.exists()

    marker = tmp_path / "marker"
    version, folder = _champion_folder(registry)
    _malicious_reference(folder, marker)
    assert registry.verify(version).keys() == {SIGNATURE}
    with pytest.raises(ArtifactIntegrityError):
        registry.load(version).reference()
    res = runner.invoke(app, ["models", "verify", "--all"], env=_cli_env(registry))
    assert res.exit_code == 1
    # the same file in the registry the scoring service serves, asked for the reference engine
    svc_reg = scoring_services.models.registry()
    svc_version, svc_folder = _champion_folder(svc_reg)
    _malicious_reference(svc_folder, marker)
    scoring_services.models.invalidate()
    with pytest.raises(ModelUnavailable, match=svc_version):
        scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER, engine="reference")
    assert not marker.exists()


def test_a_pickle_signed_by_the_real_key_still_cannot_run_code(registry, tmp_path):
    """Defence in depth: a compromised build signs the malicious file. The allow-list unpickler refuses it."""
    marker = tmp_path / "marker"
    version, folder = _champion_folder(registry)
    _malicious_reference(folder, marker)
    (folder / SIGNATURE).write_bytes(registry.keys.sign("creditrisk", version, (folder / "checksums.json").read_bytes()))
    model = registry.load(version)  # the runtime model needs no pickle: it loads
    with pytest.raises(ArtifactIntegrityError, match=r"refusing to unpickle builtins\.exec"):
        model.reference()
    assert not marker.exists()


GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "__import__"),
           ("subprocess", "Popen"), ("sklearn.utils._testing", "CalledProcessError"),  # imported into sklearn
           ("sklearn.utils", "all_estimators"), ("sklearn.utils", "check_array"),  # sklearn functions, not classes
           ("joblib", "load"), ("numpy", "load"), ("numpy.lib.npyio", "load"), ("pickle", "loads"),
           ("backend.models.signing_admin", "rotate_key"), ("shutil", "rmtree"), ("sklearn.nope", "X")]


@pytest.mark.parametrize(("module", "name"), GLOBALS)
def test_the_allow_list_refuses_every_callable_outside_it(module, name, tmp_path):
    from backend.models.safe_pickle import UnsafePickle, restricted_load

    marker = tmp_path / "marker"
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(X" + len(str(marker)).to_bytes(4, "little") \
        + str(marker).encode() + b"tR."
    with pytest.raises(UnsafePickle, match="refusing to unpickle"):
        restricted_load(payload)
    assert not marker.exists()


def test_the_allow_list_reads_the_real_pipelines(registry):
    from backend.models.safe_pickle import restricted_load

    version, folder = _champion_folder(registry)
    pipelines = restricted_load((folder / "reference.joblib").read_bytes())
    plain = joblib.load(folder / "reference.joblib")
    X = registry.holdout(version).head(50)
    for role in ("primary", "fallback", "baseline"):
        np.testing.assert_array_equal(pipelines[role].predict_proba(X), plain[role].predict_proba(X))


def _pickled(obj) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


# -- 3. garbage files: `models verify` answers with one line and a non-zero exit ----------------------
def _cli_env(reg: Registry) -> dict[str, str]:
    return {"CREDITRISK_MODEL__REGISTRY_DIR": str(reg.root), "CREDITRISK_DATA_DIR": str(reg.root.parent / "var")}


def _garbage(kind: str, target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    if kind == "dir":
        target.mkdir()
    elif kind == "missing":
        pass
    elif kind == "fifo":  # reading it would wait for a writer forever
        os.mkfifo(target)
    elif kind == "dev-zero":  # reading it would never end
        target.symlink_to("/dev/zero")
    elif kind == "symlink-loop":
        target.symlink_to(target)
    else:
        target.write_bytes(GARBAGE[kind])


GARBAGE = {
    "binary": bytes(range(256)) * 4,
    "empty": b"",
    "not-utf8": b"\xff\xfe\x00{",
    "truncated-json": b'{"champion": "v2',
    "json-list": b"[1, 2, 3]",
    "json-null": b"null",
    "json-string": b'"champion"',
    "wrong-types": b'{"champion": 5, "status": [], "events": {}, "canary": "x", "champion_history": 3}',
    "huge-number": b'{"champion": 1e999999}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
}
KINDS = [*GARBAGE, "dir", "missing", "fifo", "dev-zero", "symlink-loop"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("file", ["aliases.json", "manifest.json", "checksums.json", "signature.json",
                                  "primary.npz", "fallback.npz", "reference.joblib", "holdout.parquet"])
def test_verify_survives_any_garbage_file(registry, file, kind):
    version, folder = _champion_folder(registry)
    target = registry.path / file if file == "aliases.json" else folder / file
    _garbage(kind, target)
    if file not in ("aliases.json", "checksums.json", "signature.json"):
        _recompute_checksums(folder)  # the attacker makes the checksums agree (the signature still won't)
    ref = version if file != "aliases.json" else "champion"
    res = runner.invoke(app, ["models", "verify", ref], env=_cli_env(registry))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    if file == "aliases.json" and kind == "missing":
        assert res.exit_code == 2 and "no champion" in res.stderr  # a fresh registry, said plainly
        return
    assert res.exit_code in (1, 2), res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert version in lines[0] or "aliases.json" in lines[0] or "error:" in lines[0]


def test_signed_but_truncated_arrays_are_caught_by_verify(registry):
    """A version the signer itself wrote broken (truncated npz, signed): verify parses, not only hashes."""
    version, folder = _champion_folder(registry)
    data = (folder / "fallback.npz").read_bytes()
    (folder / "fallback.npz").write_bytes(data[: len(data) // 2])
    _recompute_checksums(folder)
    (folder / SIGNATURE).write_bytes(registry.keys.sign("creditrisk", version, (folder / "checksums.json").read_bytes()))
    errors = registry.verify(version)
    assert list(errors) == ["fallback.npz"] and "corrupt" in errors["fallback.npz"]
    res = runner.invoke(app, ["models", "verify", version], env=_cli_env(registry))
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1


def test_garbage_aliases_are_a_clear_error_for_serving(scoring_services):
    reg = scoring_services.models.registry()
    (reg.path / "aliases.json").write_bytes(b"\x00garbage")
    scoring_services.models.invalidate()
    with pytest.raises(ModelUnavailable, match="aliases.json is unreadable or malformed"):
        scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER)
    with pytest.raises(RegistryError, match="aliases.json"):
        reg.list()
    (reg.path / "aliases.json").write_bytes(GARBAGE["deep"])  # json.loads raises RecursionError, not ValueError
    scoring_services.models.invalidate()
    with pytest.raises(ModelUnavailable, match="aliases.json is unreadable or malformed"):
        scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER)


# -- keys: rotation, the dev key file, verification-only processes -------------------------------------
def test_rotate_key_resigns_every_version_and_retires_the_old_key(registry, tmp_path):
    old = registry.keys
    versions = registry.versions()
    saved: list[str] = []
    new = Ed25519PrivateKey.generate()
    res = rotate_key(registry, new, save_keys=lambda keys: saved.append(keys.to_json()))
    assert res["versions"] == versions and res["previous"] == old.active_kid != res["kid"]
    # transitional file: new key active, the old one still verifies; final file: the new key only
    assert len(json.loads(saved[0])["keys"]) == 2 and len(json.loads(saved[1])["keys"]) == 1
    assert all(not registry.verify(v) for v in versions)
    # the old key no longer vouches for them (nor for aliases.json, re-signed with them: checked first)
    with pytest.raises(RegistryError, match="not one of"):
        Registry(registry.root, name="creditrisk", keys=old).load(versions[0])
    only_public = ModelKeys.of(None, new.public_key())  # a serving process: verification key only
    assert Registry(registry.root, name="creditrisk", keys=only_public).load("champion").ready


def test_rotation_refuses_to_launder_a_tampered_version(registry):
    version, folder = _champion_folder(registry)
    _approve_everyone(folder)
    before = (folder / SIGNATURE).read_bytes()
    with pytest.raises(RegistryError, match=f"refusing to rotate.*{version}"):
        rotate_key(registry, Ed25519PrivateKey.generate())
    assert (folder / SIGNATURE).read_bytes() == before


def test_rotate_key_command_with_the_dev_key_file(registry, tmp_path, monkeypatch):
    """No key in the environment: the key file under data_dir is made on first use (mode 0600) and the
    command rewrites it; versions signed with it verify before and after."""
    monkeypatch.delenv("CREDITRISK_MODEL__SIGNING_KEY")
    env = {**_cli_env(registry), "CREDITRISK_MODEL__SIGNING_KEY": ""}
    key_file = Path(env["CREDITRISK_DATA_DIR"]) / "secrets" / "model_signing.json"
    res = runner.invoke(app, ["models", "verify", "champion"], env=env)
    assert res.exit_code == 1 and "not one of" in res.stderr  # signed with the session key, not this one
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.setenv("CREDITRISK_DATA_DIR", env["CREDITRISK_DATA_DIR"])
    dev = Registry(registry.root, name="creditrisk")
    versions = dev.versions()
    for v in versions:  # as written before signing existed; the operator trusts this copy and adopts it
        (dev.path / v / SIGNATURE).unlink()
    unsigned = {k: v for k, v in json.loads((dev.path / "aliases.json").read_text()).items() if k != "_signature"}
    (dev.path / "aliases.json").write_text(json.dumps(unsigned))
    adopted = adopt_unsigned(dev)
    assert adopted["signed"] == versions and adopted["aliases"] == "signed"
    first = json.loads(key_file.read_text())["active"]
    res = runner.invoke(app, ["models", "rotate-key"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(key_file.read_text())["active"] != first and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert runner.invoke(app, ["models", "verify", "--all"], env=env).exit_code == 0


def test_rotate_key_with_an_environment_key_needs_the_new_key(registry, tmp_path):
    env = _cli_env(registry)
    res = runner.invoke(app, ["models", "rotate-key"], env=env)
    assert res.exit_code == 2 and "--new-key-file" in res.stderr
    new = Ed25519PrivateKey.generate()
    (tmp_path / "new.key").write_text(private_to_b64(new))
    res = runner.invoke(app, ["models", "rotate-key", "--new-key-file", str(tmp_path / "new.key")], env=env)
    assert res.exit_code == 0, res.output
    public = base64.b64encode(public_raw(new.public_key())).decode()
    assert f"CREDITRISK_MODEL__VERIFY_KEYS={public}" in res.output
    res = runner.invoke(app, ["models", "verify", "--all"],
                        env={**env, "CREDITRISK_MODEL__SIGNING_KEY": "", "CREDITRISK_MODEL__VERIFY_KEYS": public,
                             "CREDITRISK_ENV": "production", "CREDITRISK_AUTH__COOKIE_KEY": "k" * 40})
    assert res.exit_code == 0, res.output


def test_production_without_a_key_refuses_and_registering_needs_the_private_key(registry, monkeypatch):
    public = registry_public(registry)
    monkeypatch.delenv("CREDITRISK_MODEL__SIGNING_KEY")
    res = runner.invoke(app, ["models", "verify"], env={**_cli_env(registry), "CREDITRISK_ENV": "production",
                                                         "CREDITRISK_AUTH__COOKIE_KEY": "k" * 40})
    assert res.exit_code == 2 and "must be set in production" in res.stderr
    verify_only = Registry(registry.root, name="creditrisk", keys=ModelKeys.of(None, public))
    with pytest.raises(RegistryError, match="no model signing key"):
        verify_only.register(object())


def registry_public(reg: Registry):
    from backend.models.signing import private_from_b64

    return private_from_b64(os.environ["CREDITRISK_MODEL__SIGNING_KEY"]).public_key()


@pytest.mark.parametrize("command", [["models", "list"], ["models", "canary", "status"], ["models", "show"],
                                     ["models", "verify", "--all"]])
def test_registry_commands_with_garbage_aliases_answer_one_line(cli_env, model_registry, command, wide_cli_tables):
    shutil.copytree(model_registry, cli_env / "models")
    (cli_env / "models" / "creditrisk" / "aliases.json").write_bytes(b'{"champion": ["not", "a", "version"]}')
    res = runner.invoke(app, ["db", "migrate"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, command)
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert "aliases.json is unreadable or malformed (champion is malformed)" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_fresh_clone_signs_the_demo_champion_with_its_own_key(cli_env, monkeypatch):
    """`make run` on a fresh clone: no key anywhere; the demo path trains, registers and promotes; the key is
    made once under var/secrets (0600), and the console's services, built from settings, verify the version."""
    from backend.container import build_services
    from backend.container.settings import load_settings
    from backend.models import ModelSettings
    from backend.training.pipeline import ensure_champion

    monkeypatch.delenv("CREDITRISK_MODEL__SIGNING_KEY")
    ensure_champion(ModelSettings(registry_dir=cli_env / "models"), rows=1500, seed=4, echo=lambda *a, **k: None)
    key_file = cli_env / "var" / "secrets" / "model_signing.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert runner.invoke(app, ["models", "verify", "--all"]).exit_code == 0
    svc = build_services(load_settings(), migrate=True)
    res = svc.scoring.score(_apps(1)[0], submitter=OFFICER, persist=False)
    assert res.model_version == Registry(cli_env / "models").resolve("champion") and res.model_role == "primary"


def _second_version(reg: Registry) -> str:
    """A second genuine version: a copy of the champion under its own id (manifest, checksums, signature)."""
    first = reg.resolve("champion")
    second = "v29990101-000000000-bbbbbb"
    shutil.copytree(reg.path / first, reg.path / second)
    folder = reg.path / second
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": second}))
    _recompute_checksums(folder)
    (folder / SIGNATURE).write_bytes(reg.keys.sign("creditrisk", second, (folder / "checksums.json").read_bytes()))
    assert not reg.verify(second)
    return second


def test_a_rotation_that_crashes_midway_leaves_every_version_verifiable(registry, monkeypatch):
    import backend.models.signing_admin as admin

    _second_version(registry)
    saved: list[ModelKeys] = []
    real_write, calls = admin.write_atomic, []

    def crash_on_second(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(admin, "write_atomic", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        rotate_key(registry, Ed25519PrivateKey.generate(), save_keys=saved.append)
    monkeypatch.setattr(admin, "write_atomic", real_write)
    assert len(saved) == 1  # only the transitional key file was written: new key active, old one verifying
    on_disk = Registry(registry.root, name="creditrisk", keys=saved[0])
    assert all(not on_disk.verify(v) for v in on_disk.versions())  # one under the new key, one under the old
    # running the rotation again (as the operator would) finishes it
    final = Ed25519PrivateKey.generate()
    rotate_key(on_disk, final, save_keys=saved.append)
    only_final = Registry(registry.root, name="creditrisk", keys=ModelKeys.of(None, final.public_key()))
    assert all(not only_final.verify(v) for v in only_final.versions())


def test_sign_unsigned_adopts_intact_versions_only(registry):
    """An upgrade from before signing: `models sign-unsigned` signs intact versions and refuses altered ones."""
    env = _cli_env(registry)
    first = registry.resolve("champion")
    second = _second_version(registry)
    for v in (first, second):
        (registry.path / v / SIGNATURE).unlink()
    _flip = bytearray((registry.path / second / "fallback.npz").read_bytes())
    _flip[100] ^= 1
    (registry.path / second / "fallback.npz").write_bytes(bytes(_flip))  # altered, checksums not recomputed
    res = runner.invoke(app, ["models", "verify", first], env=env)
    assert res.exit_code == 1 and "not signed" in res.stderr and "sign-unsigned" in res.stderr
    res = runner.invoke(app, ["models", "sign-unsigned"], env=env)
    assert res.exit_code == 1 and "signed 1 version(s); 0 already signed; 1 refused" in res.output
    assert f"not signed: {second}: " in res.stderr and "fallback.npz" in res.stderr
    assert not registry.verify(first) and not (registry.path / second / SIGNATURE).exists()
    res = runner.invoke(app, ["models", "sign-unsigned"], env=env)
    assert "0 version(s); 1 already signed; 1 refused" in res.output  # idempotent


@pytest.mark.parametrize("content", [None, b"", b"{}", b'{"active": "x", "keys": {"x": {"private": "!!"}}}',
                                     b'{"active": "x", "keys": []}', b"\xff\xfe", b"[]"])
def test_a_bad_key_file_is_one_line(registry, tmp_path, content):
    key_file = tmp_path / "keys.json"
    if content is not None:
        key_file.write_bytes(content)
    res = runner.invoke(app, ["models", "verify"], env={**_cli_env(registry), "CREDITRISK_MODEL__SIGNING_KEY": "",
                                                         "CREDITRISK_MODEL__SIGNING_KEY_FILE": str(key_file)})
    assert res.exit_code == 2 and "keys.json" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output
    assert "Traceback" not in res.output


def test_keys_without_settings_read_dotenv_as_the_settings_do(tmp_path, monkeypatch):
    """Training builds its Registry without settings: it must sign with the key the services verify with, also
    when that key sits in `.env`."""
    from backend.container.settings import load_settings
    from backend.models import keys_from_environment, model_keys

    key = Ed25519PrivateKey.generate()
    monkeypatch.delenv("CREDITRISK_MODEL__SIGNING_KEY")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"CREDITRISK_MODEL__SIGNING_KEY={private_to_b64(key)}\n")
    s = load_settings()
    assert keys_from_environment().active_kid == model_keys(s.model, data_dir=s.data_dir).active_kid \
        == ModelKeys.of(key).active_kid
    assert not (tmp_path / "var").exists()  # no dev key file was made
