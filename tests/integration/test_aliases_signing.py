"""``aliases.json`` is signed like the versions: a champion swapped by hand, a status or canary edited, a file
copied from another registry name, a signature made by another key, garbage or an unsigned file is refused
before anything it names is trusted, and `creditrisk models verify` says so in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from backend.cli import app
from backend.models.aliases_file import SIG_KEY, save_aliases
from backend.models.registry import Registry, RegistryError
from backend.models.signing import ModelKeys
from backend.models.signing_admin import adopt_unsigned

runner = CliRunner()


@pytest.fixture
def registry(model_registry: Path, tmp_path: Path) -> Registry:
    shutil.copytree(model_registry, tmp_path / "reg" / "models")
    return Registry(tmp_path / "reg" / "models", name="creditrisk")


def _env(reg: Registry) -> dict[str, str]:
    return {"CREDITRISK_MODEL__REGISTRY_DIR": str(reg.root), "CREDITRISK_DATA_DIR": str(reg.root.parent / "var")}


def _doc(reg: Registry) -> dict:
    return json.loads((reg.path / "aliases.json").read_text())


def _write(reg: Registry, doc: dict | bytes) -> None:
    (reg.path / "aliases.json").write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())


def _edit_status(d: dict) -> None:
    d["status"] = {k: "retired" for k in d["status"]}


def _start_canary(d: dict) -> None:
    d["canary"] = {"version": d["champion"], "share": 100}


TAMPERING = {
    "champion swapped": lambda d: d.update(champion="v29990101-000000000-aaaaaa"),
    "status edited": _edit_status,
    "canary injected": _start_canary,
    "history rewritten": lambda d: d.update(champion_history=[*d["champion_history"], "v19990101-000000000-bbbbbb"]),
    "event appended": lambda d: d["events"].append({"action": "promote", "version": "x"}),
    "signature stripped": lambda d: d.pop(SIG_KEY),
    "signature garbage": lambda d: d.update({SIG_KEY: {"format": "creditrisk-aliases-signature/1", "alg": "Ed25519",
                                                       "kid": "x", "signature": "!!!"}}),
    "signature a string": lambda d: d.update({SIG_KEY: "trust me"}),
    "other registry name": lambda d: d[SIG_KEY].update(name="other"),
}


def test_the_registry_writes_a_signed_aliases_file(registry):
    doc = _doc(registry)
    assert doc[SIG_KEY]["format"] == "creditrisk-aliases-signature/1" and doc[SIG_KEY]["kid"] == registry.keys.active_kid
    assert registry.aliases()["champion"] == doc["champion"] and SIG_KEY not in registry.aliases()


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampered_aliases_are_refused_and_verify_says_so_in_one_line(registry, name):
    doc = _doc(registry)
    TAMPERING[name](doc)
    _write(registry, doc)
    with pytest.raises(RegistryError, match="aliases.json"):
        registry.aliases()
    with pytest.raises(RegistryError):
        registry.load("champion")
    res = runner.invoke(app, ["models", "verify"], env=_env(registry))
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("aliases.json: ") and "refusing to trust it" in res.stderr or "malformed" in res.stderr


@pytest.mark.parametrize("garbage", [b"", b"\x00garbage", b"[]", b"null", b'{"champion": 5}', b"[" * 100_000,
                                     b"\xff\xfe{}", b'{"champion": "v1"}'])
def test_garbage_aliases_are_one_line(registry, garbage):
    _write(registry, garbage)
    res = runner.invoke(app, ["models", "verify", "--all"], env=_env(registry))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "aliases.json" in res.stderr


def test_a_file_signed_by_another_key_is_refused(registry):
    attacker = ModelKeys.of(Ed25519PrivateKey.generate())
    doc = registry.aliases()
    doc["champion"] = doc["champion_history"][0] if doc["champion_history"] else doc["champion"]
    save_aliases(registry.path / "aliases.json", name="creditrisk", keys=attacker, doc=doc)
    with pytest.raises(RegistryError, match="not one of this deployment's verification keys"):
        registry.aliases()


def test_a_verify_only_process_reads_it(registry):
    only_public = ModelKeys.of(None, *registry.keys.verifiers.values())
    assert Registry(registry.root, name="creditrisk", keys=only_public).load("champion").ready


def test_sign_unsigned_adopts_a_well_formed_unsigned_file_only(registry):
    doc = _doc(registry)
    doc.pop(SIG_KEY)
    _write(registry, doc)
    with pytest.raises(RegistryError, match="is not signed"):
        registry.aliases()
    assert adopt_unsigned(registry)["aliases"] == "signed"
    assert registry.aliases()["champion"] == doc["champion"]
    assert adopt_unsigned(registry)["aliases"] == "already signed"
    _write(registry, b'{"champion": ["not", "a", "version"]}')
    res = runner.invoke(app, ["models", "sign-unsigned"], env=_env(registry))
    assert res.exit_code == 1 and "aliases.json" in res.stderr and "Traceback" not in res.output


def test_promotion_keeps_it_signed(registry):
    from backend.models import canary

    before = _doc(registry)[SIG_KEY]["signature"]
    with registry._locked():
        doc = registry.aliases()
        registry._event(doc, "note", doc["champion"])
        registry._save_aliases(doc)
    assert _doc(registry)[SIG_KEY]["signature"] != before and registry.aliases()["events"][-1]["action"] == "note"
    assert canary  # the canary module writes through the same _save_aliases
