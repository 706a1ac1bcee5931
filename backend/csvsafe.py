"""CSV export that spreadsheets cannot execute: cells starting with = + - @ (or tab/CR) are
prefixed with a single quote (OWASP's CSV-injection advice). Numbers are left as numbers."""

from __future__ import annotations

from typing import Any

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        return "'" + value
    return value


def safe_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: safe_cell(v) for k, v in row.items()}
