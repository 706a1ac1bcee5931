"""Plain text inside Markdown: user-entered text is escaped so it renders literally (no links,
emphasis or HTML)."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """Escape Markdown so ``text`` renders exactly as typed."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def humanize(value: object) -> str:
    """``self_employed`` -> ``self employed`` for category codes shown to people."""
    return str(value).replace("_", " ")
