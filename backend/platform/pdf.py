"""Fonts for the PDFs the system writes (notices, the fairness report, the phase review) with fpdf2.

A Unicode TrueType font (DejaVu Sans, else Liberation Sans) is embedded when one is installed; without
one, the PDF core font Helvetica is used and text is reduced to Latin-1 by :func:`to_latin1`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

REPLACEMENT = "?"
FONT_FAMILY = "LetterSans"
CORE_FAMILY = "Helvetica"
#: (regular, bold) TrueType pairs tried in order.
FONT_CANDIDATES: tuple[tuple[Path, Path], ...] = (
    (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
     Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")),
    (Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
     Path("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf")),
)
#: Typographic characters outside Latin-1 with an ASCII stand-in for the core font.
_ASCII_STANDINS = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                   "\u2026": "...", "\u2022": "*", "\u20ac": "EUR", "\u0141": "L", "\u0142": "l",
                   "\u0110": "D", "\u0111": "d", "\u0152": "OE", "\u0153": "oe", "\u0131": "i"}


def find_font(candidates: Sequence[tuple[Path, Path]] = FONT_CANDIDATES) -> tuple[Path, Path] | None:
    """The first (regular, bold) pair whose files both exist, or ``None``."""
    for regular, bold in candidates:
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def to_latin1(text: str) -> str:
    """Text the core fonts can draw: Latin-1 kept, accents stripped from other letters, typographic
    punctuation replaced by ASCII, anything else by ``?``."""
    out: list[str] = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
        elif ch in _ASCII_STANDINS:
            out.append(_ASCII_STANDINS[ch])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and all(ord(c) < 256 for c in base) else REPLACEMENT)
    return "".join(out)
