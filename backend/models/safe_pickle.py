"""Unpickling ``reference.joblib`` with an allow-list: a second wall behind the signature.

The file holds the fitted scikit-learn / imbalanced-learn pipelines; no code-free format covers them with
what is installed, so it stays a pickle. It is only read after its signature and SHA-256 verified
(:mod:`backend.models.artifacts`), and then through this unpickler, which resolves only:

* classes defined in ``sklearn``, ``imblearn`` or ``backend.models`` (a class, never a function, and defined
  there, not merely imported there: ``subprocess.Popen`` imported into an sklearn module is refused);
* numpy's array and scalar reconstruction (``ndarray``, ``dtype``, ``_reconstruct``, ``scalar``, numpy scalar
  types) and joblib's ``NumpyArrayWrapper`` (raw array bytes; joblib 1.6 routes an object array's nested
  pickle through this same ``find_class``);
* ``collections.OrderedDict``, ``builtins.slice``, ``operator.itemgetter`` and ``copyreg._reconstructor``.

Anything else (``builtins.exec``, ``os.system``, ``posix.system``, sklearn *functions* ...) raises
:class:`UnsafePickle` before it can be called. Only uncompressed joblib files are read (what registration
writes).
"""

from __future__ import annotations

import io
from typing import Any

ALLOWED = frozenset({
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("collections", "OrderedDict"), ("builtins", "slice"), ("operator", "itemgetter"),
    ("copyreg", "_reconstructor"), ("builtins", "object"),
})
CLASS_PACKAGES = ("sklearn", "imblearn", "backend.models")
MSG_REFUSED = "refusing to unpickle {module}.{name}: not on the allow-list of reference.joblib"


class UnsafePickle(ValueError):
    """The pickle names something outside the allow-list (or is not a plain joblib file)."""


def _in_packages(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in CLASS_PACKAGES)


def restricted_load(data: bytes) -> Any:
    """The object of a joblib file's bytes, resolving only allow-listed globals."""
    import numpy as np
    from joblib.numpy_pickle import NumpyUnpickler

    class _Restricted(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in ALLOWED:
                return super().find_class(module, name)
            if module == "numpy" or _in_packages(module):
                try:
                    obj = super().find_class(module, name)
                except (ImportError, AttributeError):
                    obj = None
                if module == "numpy" and isinstance(obj, type) and issubclass(obj, np.generic):
                    return obj
                if isinstance(obj, type) and _in_packages(str(getattr(obj, "__module__", ""))):
                    return obj
            raise UnsafePickle(MSG_REFUSED.format(module=module[:80], name=name[:80]))

    if not data.startswith(b"\x80"):
        raise UnsafePickle("reference.joblib is not an uncompressed pickle")
    unpickler = _Restricted("", io.BytesIO(data), True)
    obj = unpickler.load()
    if unpickler.compat_mode:
        raise UnsafePickle("reference.joblib uses joblib's pre-0.10 format (companion files)")
    return obj
