"""One ``ast.parse`` at a time in the console's process.

CPython 3.11 keeps the AST converter's recursion depth in per-interpreter state, so two threads turning source
into AST objects at once can fail with ``SystemError: AST constructor recursion depth mismatch``
(python/cpython#106905; seen by pytest, Home Assistant and LangChain users in threaded programs). The console
has such threads: Streamlit compiles each page script with ``ast.parse`` (its "magic") while the
champion-preload thread (``app/services.py``) imports numpy modules whose import calls ``inspect.signature``,
which parses too. A CI run lost a page to it once (a page script that failed to compile: no title). Parsing
is rare and short, so a process-wide lock around ``ast.parse`` costs nothing measurable.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_LOCK = threading.RLock()
_parse = ast.parse


def _locked_parse(*args: Any, **kwargs: Any) -> Any:
    with _LOCK:
        return _parse(*args, **kwargs)


def install() -> None:
    """Make ``ast.parse`` take the lock (idempotent; callers look ``ast.parse`` up at call time)."""
    if ast.parse is not _locked_parse:
        ast.parse = _locked_parse  # type: ignore[assignment]
