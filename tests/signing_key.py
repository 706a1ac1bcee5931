"""One model signing key for the whole test run (a fresh one per run, never a key in the repository).

Registries trained once and copied into each test's data dir verify there, in this process, in the
pytest-xdist workers (the controller sets it before they start; they inherit its environment) and in the
CLI and console subprocesses the tests start. Test modules import it from here: a test module cannot
``from conftest import`` (another folder's conftest.py may own that name in the process)."""

from __future__ import annotations

import os


def _run_signing_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from backend.models.signing import private_to_b64

    return os.environ.setdefault("CREDITRISK_MODEL__SIGNING_KEY", private_to_b64(Ed25519PrivateKey.generate()))


SESSION_SIGNING_KEY = _run_signing_key()
