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


def plain_lines(text: object) -> str:
    """Escaped Markdown that keeps line breaks and ``- `` bullets of generated text (nothing else)."""
    out = []
    for line in str(text).splitlines():
        stripped = line.strip()
        out.append("- " + plain(stripped[2:]) if stripped.startswith("- ") else plain(stripped))
    return "\n".join(out).replace("\n- ", "\n\n- ", 1) if out else ""
