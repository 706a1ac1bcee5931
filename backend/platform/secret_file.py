"""Writing a secret file (a key ring) safely: mode 0600 from the first byte, atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_secret_file(path: Path, text: str, *, replace: bool, prefix: str = ".secret-") -> bool:
    """Write ``text`` to ``path`` with mode 0600 atomically. ``replace=False``: only if no file exists yet
    (returns False when another process created it first, so concurrent workers agree on one file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic create-if-absent
            return True
        except FileExistsError:
            return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
