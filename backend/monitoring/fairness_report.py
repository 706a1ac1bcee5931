"""The fairness tables (for the page and its CSV downloads) and the exportable report (HTML, PDF).

Everything here reads a stored snapshot's payload (see :mod:`backend.monitoring.fairness`); the
report's figures are formatted by the same functions in HTML and PDF, so the two documents show the
same numbers as the page. Text from the records (group names) is escaped in HTML and written
verbatim (markup off) in the PDF.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from fpdf import FPDF

from backend.monitoring.fairness import (
    BLIND_NOTE,
    ERROR_NOTE,
    NOT_PROVIDED_LABEL,
    REFERENCE_NOTE,
    SMALL_LABEL,
    THRESHOLD_LABEL,
    VIEWS,
    disparate_impact_of,
)
from backend.monitoring.fairness_metrics import ATTRIBUTES, STAGE_LABELS, STAGES, attribute_label, provided
from backend.monitoring.snapshot_queries import Snapshot
from backend.platform.pdf import FONT_CANDIDATES, find_font, to_latin1

SIMULATED_NOTE = ("Simulated data: {n:,} applications in this book are simulated (the synthetic demo history), "
                  "not real applicants.")
BELOW, ABOVE = "below the screening threshold", "at or above the screening threshold"


# -- formatting (one copy for page, HTML and PDF) ----------------------------------------------------------
def ratio(x: Any) -> str:
    return "—" if x is None or pd.isna(x) else f"{float(x):.3f}"


def pct(x: Any) -> str:
    return "—" if x is None or pd.isna(x) else f"{100 * float(x):.1f}%"


def interval(lo: Any, hi: Any, fmt: Any = ratio) -> str:
    return "—" if lo is None or hi is None or pd.isna(lo) or pd.isna(hi) else f"[{fmt(lo)}, {fmt(hi)}]"


def note(group: str, is_judged: bool, what: str = "") -> str:
    """Why a group is not judged: its answer was not provided, or it is too small."""
    if is_judged:
        return ""
    return NOT_PROVIDED_LABEL if not provided(group) else SMALL_LABEL + what


def frame(payload: dict[str, Any], table: str) -> pd.DataFrame:
    """One stored table of a snapshot payload as a DataFrame (empty when absent)."""
    return pd.DataFrame(payload.get(table) or {})


# -- tables -------------------------------------------------------------------------------------------------
def rates_table(payload: dict[str, Any], view: str, attribute: str) -> pd.DataFrame:
    """Selection rate and DI per group and stage (with intervals, sizes and the small-group mark)."""
    r = frame(payload, "rates")
    if r.empty:
        return r
    r = r[(r["view"] == view) & (r["attribute"] == attribute)]
    return pd.DataFrame({
        "stage": r["stage"].map(STAGE_LABELS), "group": r["group"], "applications": r["n"],
        "favourable": r["favourable"], "selection rate": r["rate"], "rate CI low": r["rate_lo"],
        "rate CI high": r["rate_hi"], "DI ratio": r["di"], "DI CI low": r["di_lo"], "DI CI high": r["di_hi"],
        "reference group": r["reference"],
        "note": [note(g, j) for g, j in zip(r["group"], r["judged"], strict=True)]}).reset_index(drop=True)


def stage_table(payload: dict[str, Any], view: str = "all", attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """Lowest DI per attribute and stage: where a disparity enters."""
    s = frame(payload, "stages")
    if s.empty:
        return s
    s = s[s["view"] == view]
    if attributes:
        s = s[s["attribute"].isin(attributes)]
    return pd.DataFrame({"attribute": s["attribute"].map(attribute_label), "stage": s["stage"].map(STAGE_LABELS),
                         "lowest DI": s["min_di"], "group": s["group"], "reference": s["reference"],
                         "CI low": s["ci_lo"], "CI high": s["ci_hi"], "groups judged": s["groups_judged"],
                         "not judged": s["groups_small"]}).reset_index(drop=True)


def errors_table(payload: dict[str, Any], attribute: str) -> pd.DataFrame:
    e = frame(payload, "errors")
    if e.empty:
        return e
    e = e[e["attribute"] == attribute]
    return pd.DataFrame({"stage": e["stage"].map(STAGE_LABELS), "group": e["group"], "funded, outcome known": e["n"],
                         "repaid": e["repaid"], "defaulted": e["defaulted"], "TPR": e["tpr"], "FPR": e["fpr"],
                         "note": [note(g, a and b, " (FPR)" if a else "")
                                  for g, a, b in zip(e["group"], e["judged_tpr"], e["judged_fpr"], strict=True)]}
                        ).reset_index(drop=True)


def gaps_table(payload: dict[str, Any]) -> pd.DataFrame:
    g = frame(payload, "error_gaps")
    if g.empty:
        return g
    return pd.DataFrame({"attribute": g["attribute"].map(attribute_label), "stage": g["stage"].map(STAGE_LABELS),
                         "TPR gap": g["tpr_gap"], "FPR gap": g["fpr_gap"],
                         "equalized-odds difference": g["equalized_odds_difference"]})


def defaults_table(payload: dict[str, Any], attribute: str | None = None) -> pd.DataFrame:
    d = frame(payload, "defaults")
    if d.empty:
        return d
    d = d[d["attribute"] == attribute] if attribute else d
    return pd.DataFrame({"attribute": d["attribute"].map(attribute_label), "group": d["group"],
                         "funded, outcome known": d["funded_known"], "defaults": d["defaults"],
                         "default rate": d["default_rate"],
                         "note": [note(g, j) for g, j in zip(d["group"], d["judged"], strict=True)]}
                        ).reset_index(drop=True)


def overrides_table(payload: dict[str, Any], attribute: str | None = None) -> pd.DataFrame:
    o = frame(payload, "overrides")
    if o.empty:
        return o
    o = o[o["attribute"] == attribute] if attribute else o
    return pd.DataFrame({"attribute": o["attribute"].map(attribute_label), "group": o["group"],
                         "AI-arm decisions": o["decisions"], "overrides": o["overrides"],
                         "override rate": o["override_rate"], "towards approval": o["to_approve"],
                         "towards caution": o["to_caution"],
                         "note": [note(g, j) for g, j in zip(o["group"], o["judged"], strict=True)]}
                        ).reset_index(drop=True)


def period_table(snapshots: Sequence[Snapshot], view: str = "all", attribute: str | None = None) -> pd.DataFrame:
    """Lowest DI per stage for each snapshot (phases or months), for one attribute or the three."""
    rows = []
    for snap in snapshots:
        s = frame(snap.payload, "stages")
        if s.empty:
            continue
        s = s[(s["view"] == view) & (s["attribute"] == attribute if attribute else s["attribute"].isin(ATTRIBUTES))]
        for r in s.itertuples(index=False):
            rows.append({"period": snap.period, "attribute": attribute_label(r.attribute), "stage": r.stage,
                         "stage label": STAGE_LABELS[r.stage], "lowest DI": r.min_di, "group": r.group,
                         "reference": r.reference, "CI low": r.ci_lo, "CI high": r.ci_hi})
    return pd.DataFrame(rows)


# -- the report ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class Report:
    title: str
    facts: list[tuple[str, str]]
    paragraphs: list[str]
    tables: list[Table] = field(default_factory=list)
    filename: str = "fairness-report"


def build_report(snap: Snapshot, *, phases: Sequence[Snapshot], generated_at: datetime,
                 simulated: int = 0) -> Report:
    """The report of one snapshot (a month or a phase), with the phase comparison."""
    p = snap.payload
    thr, mg = float(p.get("threshold", 0.8)), int(p.get("min_group", 0))
    pop = p.get("population", {})
    low = disparate_impact_of(snap)
    kind = "Rollout phase" if snap.granularity == "phase" else "Month"
    facts = [("Generated", f"{generated_at:%Y-%m-%d %H:%M} UTC"),
             ("Period", f"{kind} {snap.period}"),
             ("Data window", f"applications made {snap.window_start:%Y-%m-%d %H:%M} to {snap.window_end:%Y-%m-%d %H:%M} UTC"),
             ("Computed", f"{snap.computed_at:%Y-%m-%d %H:%M} UTC"),
             ("Threshold", f"{thr:.2f}: {THRESHOLD_LABEL}"),
             ("Smallest judged group", f"{mg} applications (smaller groups are shown, marked '{SMALL_LABEL}'; "
                                       f"'not provided' answers are shown, never judged)"),
             ("Confidence intervals", f"{int(100 * float(p.get('ci_level', 0.95)))}% percentile bootstrap, "
                                      f"{p.get('bootstrap_samples')} resamples within each group"),
             ("Decided applications", f"{pop.get('decided', 0):,} (AI arm {pop.get('ai', 0):,}; without the AI "
                                      f"{pop.get('blind', 0):,}); undecided {pop.get('undecided', 0) or 0:,}"),
             ("Funded loans with a recorded outcome", f"{pop.get('funded_known', 0):,}")]
    if low:
        verdict = BELOW if low.value < thr else ABOVE
        head = (f"Lowest disparate-impact ratio at the final decision: {ratio(low.value)} "
                f"({attribute_label(low.attribute)}: {low.group} vs {low.reference}, "
                f"{low.level:.0%} CI {interval(low.low, low.high)}), {verdict}.")
    else:
        head = "No group is large enough to judge in this period."
    paras = ([SIMULATED_NOTE.format(n=simulated)] if simulated else []) + [
        head, REFERENCE_NOTE.format(min_group=mg), BLIND_NOTE, ERROR_NOTE]
    tables = [_table("Lowest DI per stage (all decided applications): where a disparity enters",
                     stage_table(p, "all"), {"lowest DI": ratio, "CI low": ratio, "CI high": ratio})]
    for view in ("ai", "blind"):
        t = stage_table(p, view)
        if len(t):
            tables.append(_table(f"Lowest DI per stage: {VIEWS[view]}", t,
                                 {"lowest DI": ratio, "CI low": ratio, "CI high": ratio}))
    for a in ATTRIBUTES:
        r = rates_table(p, "all", a)
        if len(r):
            r = r.assign(**{"rate CI": [interval(lo, hi, pct) for lo, hi in zip(r["rate CI low"], r["rate CI high"],
                                                                                  strict=True)],
                            "DI CI": [interval(lo, hi) for lo, hi in zip(r["DI CI low"], r["DI CI high"], strict=True)]})
            r = r[["stage", "group", "applications", "selection rate", "rate CI", "DI ratio", "DI CI", "note"]]
            tables.append(_table(f"{attribute_label(a)}: selection rate and DI per stage", r,
                                 {"selection rate": pct, "DI ratio": ratio}))
    tables.append(_table("TPR/FPR gaps on funded loans with a recorded outcome", gaps_table(p),
                         {"TPR gap": ratio, "FPR gap": ratio, "equalized-odds difference": ratio}, note=ERROR_NOTE))
    tables.append(_table("Default rates among funded loans with a recorded outcome", defaults_table(p),
                         {"default rate": pct}))
    tables.append(_table("Override rates by group (AI arm; the officer's first decision)", overrides_table(p),
                         {"override rate": pct}))
    by_phase = period_table(phases, "all")
    if len(by_phase):
        wide = by_phase.pivot_table(index=["period", "attribute"], columns="stage", values="lowest DI",
                                    aggfunc="first").reindex(columns=list(STAGES)).reset_index()
        wide.columns = ["phase", "attribute", *(STAGE_LABELS[s] for s in STAGES)]
        tables.append(_table("By rollout phase: lowest DI per stage (all decided applications)", wide,
                             {STAGE_LABELS[s]: ratio for s in STAGES}))
    return Report(title=f"Fairness report: {kind.lower()} {snap.period}", facts=facts, paragraphs=paras,
                  tables=[t for t in tables if t.rows], filename=f"fairness-{snap.granularity}-{snap.period}")


def _table(title: str, df: pd.DataFrame, fmt: dict[str, Any], note: str = "") -> Table:
    if df is None or df.empty:
        return Table(title, [], [])
    out = df.copy()
    for col, f in fmt.items():
        if col in out:
            out[col] = [f(v) for v in out[col]]
    rows = [["" if v is None or (isinstance(v, float) and pd.isna(v)) else (f"{v:,}" if isinstance(v, int) else str(v))
             for v in row] for row in out.itertuples(index=False)]
    return Table(title, [str(c) for c in out.columns], rows, note)


def render_html(report: Report) -> str:
    """A self-contained HTML document (no scripts, no external resources; every value escaped)."""
    e = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>", f"<title>{e(report.title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 "
             "1.5em}td,th{border:1px solid #bbb;padding:3px 6px;font-size:12px;text-align:left}th{background:#eee}"
             "dt{font-weight:bold}dd{margin:0 0 .4em 1em}</style></head><body>", f"<h1>{e(report.title)}</h1><dl>"]
    parts += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in report.facts]
    parts.append("</dl>")
    parts += [f"<p>{e(x)}</p>" for x in report.paragraphs]
    for t in report.tables:
        parts.append(f"<h2>{e(t.title)}</h2><table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in t.columns)
                     + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in t.rows]
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


class _ReportPDF(FPDF):
    def __init__(self, font: Any) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(auto=True, margin=14)
        self.report_family = "Helvetica"
        if font is not None:
            self.add_font("ReportSans", "", str(font[0]))
            self.add_font("ReportSans", "B", str(font[1]))
            self.report_family = "ReportSans"
        self.unicode_font = font is not None

    def safe(self, text: str) -> str:
        return text if self.unicode_font else to_latin1(text)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.report_family, "", 7)
        self.cell(0, 4, f"Page {self.page_no()}/{{nb}}", align="C")

    def para(self, text: str, *, size: float = 9, bold: bool = False) -> None:
        self.set_font(self.report_family, "B" if bold else "", size)
        self.multi_cell(self.epw, 4.4, self.safe(text), new_x="LMARGIN", new_y="NEXT", markdown=False)


def render_pdf(report: Report, *, font_candidates: Sequence[tuple[Any, Any]] | None = None) -> bytes:
    """The report as a PDF (A4 landscape): the same facts, paragraphs and tables as the HTML."""
    pdf = _ReportPDF(find_font(FONT_CANDIDATES if font_candidates is None else font_candidates))
    pdf.set_title(report.title)
    pdf.set_creator("creditrisk")
    pdf.add_page()
    pdf.para(report.title, size=14, bold=True)
    pdf.ln(1)
    for k, v in report.facts:
        pdf.para(f"{k}: {v}")
    pdf.ln(1)
    for x in report.paragraphs:
        pdf.para(x)
        pdf.ln(0.8)
    for t in report.tables:
        pdf.ln(2)
        pdf.para(t.title, size=10, bold=True)
        pdf.set_font(pdf.report_family, "", 7)
        with pdf.table(text_align="LEFT", line_height=3.6, markdown=False, padding=0.8) as table:
            table.row([pdf.safe(c) for c in t.columns])
            for row in t.rows:
                table.row([pdf.safe(v) for v in row])
    return bytes(pdf.output())
