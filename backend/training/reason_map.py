"""The reason map a lender gives with a file (``creditrisk train --reasons FILE``): which adverse-action
reason each of its columns stands for.

A YAML or JSON mapping ``column: reason``; a reason is a key of ``backend.domain.REASONS`` (e.g.
``excessive_obligations``, ``delinquent_obligations``) or a statement of the lender's own, printed in
the "Other, specify" box of the notice. Columns the map does not name keep the documented default of
:mod:`backend.models.reasons` (``Other, specify: <column name>``). The map is stored with the version
(``manifest.data.reason_codes``), so every scoring path gives the same reasons.

Example (``reasons.yaml``)::

    dir: excessive_obligations        # debt-to-income ratio
    pbcr: collection_or_judgment      # public bad credit record
    lvr: insufficient_collateral
    uria: Unemployment rate in the applicant's industry
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

MSG_MAP_FILE = "invalid reason map {path}: {reason}"
MAX_STATEMENT = 120  # characters of a free-text reason (it is printed on a notice)


def load_reason_map(source: str | Path | Mapping[str, Any] | None, *, columns: Sequence[str],
                    protected: Sequence[str] = ()) -> dict[str, str]:
    """The reason map from a file or a mapping, checked against the file's columns; ``{}`` when none.

    Raises ``DatasetError`` (one line) for an unreadable file, a column the data does not have, a
    protected column (never a reason) or a value that is not a short text."""
    from backend.training.dataset import DatasetError

    if source is None:
        return {}
    where = "<mapping>" if isinstance(source, Mapping) else str(source)
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    else:
        try:
            doc = yaml.safe_load(Path(source).read_text())
        except FileNotFoundError:
            raise DatasetError(MSG_MAP_FILE.format(path=where, reason="file not found")) from None
        except yaml.YAMLError as exc:
            raise DatasetError(MSG_MAP_FILE.format(path=where, reason=f"not valid YAML or JSON ({type(exc).__name__})"
                                                   )) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(MSG_MAP_FILE.format(path=where, reason=type(exc).__name__)) from None
    if not isinstance(doc, dict) or not doc:
        raise DatasetError(MSG_MAP_FILE.format(path=where, reason="expected a non-empty mapping column: reason"))
    out: dict[str, str] = {}
    known, barred = set(columns), set(protected)
    for column, reason in doc.items():
        name = str(column)
        if name not in known:
            raise DatasetError(MSG_MAP_FILE.format(path=where, reason=f"{name!r} is not a column of the data"))
        if name in barred:
            raise DatasetError(MSG_MAP_FILE.format(
                path=where, reason=f"{name!r} is protected: it is never a model input, so never a reason"))
        text = " ".join(str(reason).split()) if isinstance(reason, str) else ""
        if not text or len(text) > MAX_STATEMENT:
            raise DatasetError(MSG_MAP_FILE.format(
                path=where, reason=f"the reason of {name!r} must be a text of 1 to {MAX_STATEMENT} characters"))
        out[name] = text
    return out
