"""What signed model versions cost: the Ed25519 check against a whole version load, in one run.

Run: ``.venv/bin/python bench/signing.py [--rows 4000] [--n 20]``

Trains a small version into a temporary registry (signed with a throw-away key made under it), then times the signature check
alone, ``Registry.load`` (signature + every SHA-256 + parsing JSON and arrays) and ``Registry.verify``
(the same, as ``creditrisk models verify`` runs it). Ratio = time / the signature check.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    from backend.models import Registry
    from backend.training.train import train_and_register

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        os.environ.pop("CREDITRISK_MODEL__SIGNING_KEY", None)
        os.environ["CREDITRISK_DATA_DIR"] = str(Path(tmp) / "var")  # a throw-away key is made there
        report = train_and_register(None, rows=args.rows, seed=3, registry_root=root, name="creditrisk", cv_folds=2,
                                    n_boost=20, n_trees=30)
        version = report["version"]
        reg = Registry(root, name="creditrisk")  # the key train_and_register signed with
        folder = root / "creditrisk" / version
        raw, sig = (folder / "checksums.json").read_bytes(), (folder / "signature.json").read_bytes()
        rows = [("signature check (Ed25519)", per_call(lambda: reg.keys.verify("creditrisk", version, raw, sig),
                                                       args.n * 50)),
                ("Registry.load", per_call(lambda: reg.load(version), args.n)),
                ("Registry.verify", per_call(lambda: reg.verify(version), args.n))]
    base = rows[0][1]
    print(f"{'case':<28} {'ms per call':>12} {'ratio':>8}")
    for name, seconds in rows:
        print(f"{name:<28} {seconds * 1e3:>12.3f} {seconds / base:>7.0f}x")


if __name__ == "__main__":
    main()
