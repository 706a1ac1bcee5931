"""The phase review: tables shared by the page and the report, and the report as HTML and PDF.

The page and both report formats print the same rows (the table builders below), so the numbers
a lead sends are the numbers on the screen. HTML escapes every string; the PDF is written with
fpdf2's table and ``multi_cell`` with markup off, a Unicode font when one is installed (see
:mod:`backend.decisioning.letters_pdf`), no links or scripts.
"""

from __future__ import annotations

import html
from typing import Any

from fpdf import FPDF

from backend.analytics.experiments_model import (
    DEFINITIONS,
    METRICS,
    Check,
    Comparison,
    Overview,
    PhaseReport,
    fmt,
    fmt_ci,
)
from backend.platform.pdf import FONT_FAMILY, find_font, to_latin1
from backend.rollout import PHASE_LABELS

ARM_COLUMNS = ("agreement_rate", "override_rate", "approval_rate", "default_rate", "default_rate_to_date",
               "time_median_s", "time_p95_s", "adoption_rate", "helpful_rate", "latency_p95_s",
               "fact_check_fail_rate", "error_rate")
SIMULATED_NOTE = ("Simulated data: every figure in this report comes from the synthetic demo book "
                  "({n:,} simulated applications), not from real applicants.")
STATUS_MARK = {"ok": "OK", "info": "i", "wait": "WAIT", "block": "STOP"}


def _kind(metric: str) -> str:
    return METRICS.get(metric, ("", "rate"))[1]


# -- tables (the page shows them and offers them as CSV; the report prints them) ------------------
def arm_table(ov: Overview) -> list[dict[str, Any]]:
    """One row per phase and arm, each figure with its interval, formatted."""
    rows = []
    for a in ov.arms:
        row: dict[str, Any] = {"Phase": PHASE_LABELS.get(a.phase, a.phase), "Arm": a.label,
                               "Applications": a.counts["applications"], "Decided": a.counts["decided"]}
        for m in ARM_COLUMNS:
            f = a.figures.get(m)
            label = METRICS[m][0]
            row[label] = "" if f is None else fmt_ci(f, _kind(m))
            if m in ("default_rate", "default_rate_to_date") and f is not None:
                row[label] += f" [n={f.n:,}]"
        rows.append(row)
    return rows


def arm_figures_long(ov: Overview) -> list[dict[str, Any]]:
    """The same figures as numbers (for CSV): phase, arm, metric, value, low, high, n."""
    return [{"phase": a.phase, "arm": a.arm, "metric": m, "value": f.value, "low": f.low, "high": f.high, "n": f.n,
             "confidence": 1 - ov.alpha, "note": f.note}
            for a in ov.arms for m, f in a.figures.items()]


def checks_table(checks: list[Check]) -> list[dict[str, Any]]:
    return [{"Phase": PHASE_LABELS.get(c.phase, c.phase), "Kind": c.kind, "What": c.label,
             "Target": ("< " if c.direction == "max" else "> ") + fmt(c.target, "ratio" if c.metric == "fairness_ratio"
                                                                     else _kind(c.metric)),
             "Value (CI)": fmt_ci(c.figure, "ratio" if c.metric == "fairness_ratio" else _kind(c.metric)),
             "n": c.figure.n if c.figure else 0, "Verdict": c.verdict} for c in checks]


def survey_table(ov: Overview) -> list[dict[str, Any]]:
    return [{"Phase": PHASE_LABELS.get(s.phase, s.phase), "Answers": s.nps.n, "NPS (CI)": fmt_ci(s.nps, "nps"),
             "Officers with AI-arm cases": f"{fmt_ci(s.nps_ai_users, 'nps')} [n={s.nps_ai_users.n}]",
             "Other officers": f"{fmt_ci(s.nps_others, 'nps')} [n={s.nps_others.n}]"} for s in ov.surveys]


def comparison_table(cmp: Comparison) -> list[dict[str, Any]]:
    rows = [{"Metric": r.label, "AI": f"{fmt_ci(r.ai, 'rate')} [n={r.ai.n:,}]",
             "Control": f"{fmt_ci(r.control, 'rate')} [n={r.control.n:,}]",
             "AI - control": fmt_ci(r.diff, "pp", signed=True), "Relative risk": fmt_ci(r.ratio, "ratio"),
             "p (z-test)": "n/a" if r.p_value is None else f"{r.p_value:.3g}"} for r in cmp.rows]
    t = cmp.time
    if t is not None:
        rows.append({"Metric": "Time to decision (median; p95)",
                     "AI": f"{fmt(t.median_ai, 'seconds')}; {fmt(t.p95_ai, 'seconds')}",
                     "Control": f"{fmt(t.median_control, 'seconds')}; {fmt(t.p95_control, 'seconds')}",
                     "AI - control": fmt_ci(t.diff, "seconds", signed=True) + " (bootstrap)",
                     "Relative risk": f"P(AI longer) = {t.prob_ai_longer:.3f}",
                     "p (z-test)": f"{t.p_value:.3g} (Mann-Whitney)"})
    return rows


def sequence_table(cmp: Comparison, metric: str) -> list[dict[str, Any]]:
    """The confidence sequence look by look, in percentage points like the chart above it."""
    def pp(x: float | None) -> float | None:
        return None if x is None else round(100 * x, 2)

    return [{"week": p.week.isoformat(), "AI cases": p.n_ai, "control cases": p.n_control,
             "AI − control (pp)": pp(p.estimate), "sequence low (pp)": pp(p.low), "sequence high (pp)": pp(p.high)}
            for p in cmp.sequences.get(metric, [])]


def definitions(ov: Overview) -> list[tuple[str, str]]:
    out = []
    for key, text in DEFINITIONS.items():
        label = METRICS.get(key, ("Time to decision" if key == "time" else key, ""))[0]
        out.append((label, text.format(months=ov.maturity_months)))
    return out


def _header(rep: PhaseReport) -> list[str]:
    ov = rep.overview
    lines = [f"Generated {rep.generated_at:%Y-%m-%d %H:%M} UTC. Phase in force: "
             f"{PHASE_LABELS.get(ov.current_phase, ov.current_phase)}. Confidence level {1 - ov.alpha:.0%}."]
    if ov.outcomes_as_of is not None:
        lines.append(f"Outcomes observed as of {ov.outcomes_as_of:%Y-%m-%d}; loans decided before "
                     f"{ov.matured_before:%Y-%m-%d} count as matured ({ov.maturity_months} months)."
                     if ov.matured_before else "")
    else:
        lines.append("No outcome feed imported yet: default rates are not available.")
    if rep.simulated:
        lines.append(SIMULATED_NOTE.format(n=rep.simulated))
    return [x for x in lines if x]


# -- HTML -------------------------------------------------------------------------------------------
def _html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>No data.</em></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(rep: PhaseReport) -> str:
    """The phase review as one self-contained HTML page (no scripts, every string escaped)."""
    ov, e = rep.overview, html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Phase review</title><style>"
             "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:left}"
             ".sim{background:#fff3cd;padding:.5em}</style></head><body>",
             "<h1>Phase review: AI vs control by rollout phase</h1>"]
    for line in _header(rep):
        parts.append(f"<p{' class=sim' if line.startswith('Simulated') else ''}>{e(line)}</p>")
    parts.append("<h2>Should we advance?</h2>")
    for adv in rep.advice:
        parts.append(f"<h3>{e(adv.headline)}</h3><ul>")
        parts += [f"<li>[{STATUS_MARK.get(r.status, r.status)}] {e(r.text)}</li>" for r in adv.reasons]
        parts.append("</ul>")
        if adv.next_criteria:
            nxt = PHASE_LABELS.get(adv.next_phase or "", "")
            parts.append(f"<p>{e(nxt)} will be judged on: {e('; '.join(adv.next_criteria))}</p>")
    parts += ["<h2>Figures per phase and arm</h2>", _html_table(arm_table(ov)),
              "<h2>Success criteria and guardrails</h2>", _html_table(checks_table(ov.checks)),
              "<h2>Officer survey (NPS)</h2>", _html_table(survey_table(ov))]
    for cmp in rep.comparisons:
        parts += [f"<h2>AI vs control: {e(PHASE_LABELS.get(cmp.phase, cmp.phase))}</h2>", _html_table(comparison_table(cmp))]
    parts.append("<h2>Definitions and methods</h2><ul>")
    parts += [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in definitions(ov) + METHODS]
    parts.append("</ul></body></html>")
    return "".join(parts)


METHODS = [("Intervals", "Rates: Wilson score; AI - control: Newcombe hybrid score; relative risk: Katz log; "
                         "p-values: pooled two-proportion z-test; times: Mann-Whitney U and a percentile bootstrap of "
                         "the difference of medians; p95 latency: order-statistic interval."),
           ("Weekly looks", "The AI - control difference is followed with an always-valid confidence sequence "
                            "(Waudby-Smith et al. 2024): it may be read every week without inflating false positives."),
           ("Verdicts", "'met' only when the whole interval is on the right side of the target; 'likely met' when only "
                        "the point estimate is; 'not enough data' under 30 decisions.")]


# -- PDF --------------------------------------------------------------------------------------------
class _ReportPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(auto=True, margin=14)
        font = find_font()
        self.report_unicode = font is not None
        if font is not None:
            self.add_font(FONT_FAMILY, "", str(font[0]))
            self.add_font(FONT_FAMILY, "B", str(font[1]))
            self.report_family = FONT_FAMILY
        else:
            self.report_family = "Helvetica"

    def safe(self, text: str) -> str:
        return text if self.report_unicode else to_latin1(text)

    def para(self, text: str, *, size: float = 9, bold: bool = False) -> None:
        self.set_font(self.report_family, "B" if bold else "", size)
        self.multi_cell(self.epw, size * 0.5, self.safe(text), markdown=False, new_x="LMARGIN", new_y="NEXT")

    def grid(self, rows: list[dict[str, Any]], size: float = 6.5) -> None:
        if not rows:
            self.para("No data.")
            return
        self.set_font(self.report_family, "", size)
        with self.table(text_align="LEFT", markdown=False, line_height=size * 0.5, padding=0.6,
                        first_row_as_headings=True) as table:
            for r in [{c: c for c in rows[0]}, *rows]:
                line = table.row()
                for v in r.values():
                    line.cell(self.safe(str(v)))
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.report_family, "", 7)
        self.cell(0, 4, f"Phase review - page {self.page_no()}/{{nb}}", align="C")


def render_pdf(rep: PhaseReport) -> bytes:
    """The same report as a PDF (A4 landscape)."""
    ov = rep.overview
    pdf = _ReportPDF()
    pdf.set_title("Phase review: AI vs control")
    pdf.set_creator("creditrisk")
    pdf.add_page()
    pdf.para("Phase review: AI vs control by rollout phase", size=15, bold=True)
    for line in _header(rep):
        pdf.para(line, bold=line.startswith("Simulated"))
    pdf.ln(2)
    pdf.para("Should we advance?", size=12, bold=True)
    for adv in rep.advice:
        pdf.para(adv.headline, size=10, bold=True)
        for r in adv.reasons:
            pdf.para(f"[{STATUS_MARK.get(r.status, r.status)}] {r.text}", size=8)
        if adv.next_criteria:
            pdf.para(f"{PHASE_LABELS.get(adv.next_phase or '', '')} will be judged on: {'; '.join(adv.next_criteria)}",
                     size=8)
        pdf.ln(1)
    for title, rows in (("Figures per phase and arm", arm_table(ov)),
                        ("Success criteria and guardrails", checks_table(ov.checks)),
                        ("Officer survey (NPS)", survey_table(ov))):
        pdf.para(title, size=12, bold=True)
        pdf.grid(rows)
    for cmp in rep.comparisons:
        pdf.para(f"AI vs control: {PHASE_LABELS.get(cmp.phase, cmp.phase)}", size=12, bold=True)
        pdf.grid(comparison_table(cmp), size=7.5)
    pdf.para("Definitions and methods", size=12, bold=True)
    for k, v in definitions(ov) + METHODS:
        pdf.para(f"{k}: {v}", size=8)
    return bytes(pdf.output())
