"""PDF rendering of an adverse action notice with fpdf2.

A Unicode TrueType font (DejaVu Sans, else Liberation Sans) is embedded when one is installed;
characters it has no glyph for are replaced. Without one, the PDF core font Helvetica is used and
text is reduced to Latin-1 (accents dropped where needed, other characters replaced). Text is
written with ``multi_cell`` and markup off, so HTML or Markdown in a name or reason prints as the
characters typed; the document has no links, annotations, scripts or actions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF

from backend.decisioning.letters import AdverseActionNotice, notice_sections
from backend.platform.pdf import CORE_FAMILY, FONT_CANDIDATES, FONT_FAMILY, REPLACEMENT, find_font, to_latin1

BODY_SIZE = 10.0
HEADING_SIZE = 11.0
LINE_H = 4.8
_ITEM = re.compile(r"\d\. ")


class _LetterPDF(FPDF):
    def __init__(self, font: tuple[Path, Path] | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="Letter")
        self.set_margins(22, 16, 22)
        self.set_auto_page_break(auto=True, margin=20)
        if font is None:
            self.letter_family = CORE_FAMILY
            self._cmap: frozenset[int] | None = None
        else:
            self.add_font(FONT_FAMILY, "", str(font[0]))
            self.add_font(FONT_FAMILY, "B", str(font[1]))
            self.letter_family = FONT_FAMILY
            regular = getattr(self.fonts[FONT_FAMILY.lower()], "cmap", {})
            bold = getattr(self.fonts[FONT_FAMILY.lower() + "B"], "cmap", {})
            self._cmap = frozenset(regular) & frozenset(bold)  # code points both faces can draw

    def safe(self, text: str) -> str:
        if self._cmap is None:
            return to_latin1(text)
        cmap = self._cmap
        out: list[str] = []
        for ch in text:
            if ord(ch) in cmap:
                out.append(ch)
                continue
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and all(ord(c) in cmap for c in base) else REPLACEMENT)
        return "".join(out)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(self.letter_family, "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)

    def para(self, text: str, *, bold: bool = False, size: float = BODY_SIZE, indent: float = 0.0) -> None:
        self.set_font(self.letter_family, "B" if bold else "", size)
        self.set_x(self.l_margin + indent)
        self.multi_cell(self.epw - indent, LINE_H, self.safe(text), align="L", new_x="LMARGIN", new_y="NEXT",
                        markdown=False)


def render_pdf(notice: AdverseActionNotice, *,
               font_candidates: Sequence[tuple[Path, Path]] | None = None) -> bytes:
    """The notice as a PDF (US Letter). ``font_candidates``: TrueType (regular, bold) pairs to try,
    default :data:`FONT_CANDIDATES`; pass ``()`` to force the core-font fallback."""
    font = find_font(FONT_CANDIDATES if font_candidates is None else font_candidates)
    pdf = _LetterPDF(font)
    pdf.set_title("Notice of action taken and statement of reasons")
    pdf.set_creator("creditrisk")
    pdf.add_page()
    for heading, paragraphs in notice_sections(notice):
        if heading:
            pdf.ln(2.5)
            pdf.para(heading, bold=True, size=HEADING_SIZE)
            pdf.ln(0.8)
        for text in paragraphs:
            is_item = _ITEM.match(text) is not None
            is_specimen = notice.is_specimen and text.startswith("SPECIMEN")
            if is_specimen:
                pdf.set_text_color(170, 0, 0)
            pdf.para(text, bold=is_specimen, indent=5.0 if is_item else 0.0)
            pdf.set_text_color(0, 0, 0)
            if not is_item:
                pdf.ln(1.2)
    return bytes(pdf.output())
