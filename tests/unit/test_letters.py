"""Adverse action notices: Regulation B elements, FCRA score block, reasons, injection, PDF."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from backend.container.settings import Settings
from backend.decisioning.letters import (
    AWAITING_APPROVAL,
    ECOA_NOTICE,
    FCRA_REPORT_USED,
    FCRA_SCORE_USED,
    HUMAN_REASONS_REQUIRED,
    MAX_NAME_CHARS,
    NO_DECISION_YET,
    NO_KEY_FACTORS,
    NOT_FINAL,
    NOTICE_NOT_REQUIRED,
    RETURNED,
    NoticeNotRequired,
    build_notice,
    clean_text,
    notice_outcome,
    render_text,
)
from backend.decisioning.letters_pdf import render_pdf
from backend.domain import KEY_FACTORS
from backend.domain.reason_codes import OTHER_PREFIX, REASONS, printed_reason
from backend.platform.pdf import find_font, to_latin1
from backend.scoring import ScoreResult

TODAY = date(2026, 3, 5)
HAS_TTF = find_font() is not None
FONTS = ["ttf", "core"]


def _reason(code: str, *features: str) -> dict:
    return {"code": code, "text": REASONS[code], "weight": 0.1,
            "features": [{"name": f, "description": f, "value": 1, "contribution": 0.1} for f in features]}


REASONS_5 = [
    _reason("delinquent_obligations", "num_delinquencies_2y"),
    _reason("excessive_obligations", "debt_to_income"),
    _reason("other_credit_score", "credit_score"),
    _reason("other_revolving_utilization", "revolving_utilization"),
    _reason("recent_inquiries", "num_inquiries_6m"),
]


def record(*, score: int | None = 612, recommendation: str = "deny", reasons: list | None = None) -> dict:
    features: dict = {"loan_amount": 15000.0, "annual_income": 52000.0,
                      "sex": "female", "race_ethnicity": "hispanic", "age_band": "65+"}
    if score is not None:
        features["credit_score"] = score
    return {"recommendation": recommendation, "application_id": "APP-000123",
            "reasons": REASONS_5[:4] if reasons is None else reasons, "features": features}


def configured() -> Settings:
    return Settings(_env_file=None, organization_name="Acme Savings Bank",
                    organization_address="1 Ledger Way, Columbus, OH 43004",
                    letters={"agency_name": "FDIC Consumer Response Center",
                             "agency_address": "1100 Walnut Street, Box #11, Kansas City, MO 64106",
                             "bureau_name": "Sample Bureau LLC", "bureau_address": "PO Box 1, Atlanta, GA 30374",
                             "bureau_phone": "1-800-000-0000"})


def notice(rec: dict | None = None, **kw):
    args = {"applicant_name": "Jane Q. Doe", "decision_outcome": "deny", "human_reasons": None,
            "settings": configured(), "today": TODAY}
    args.update(kw)
    return build_notice(record() if rec is None else rec, **args)


def flat(text: str) -> str:
    return " ".join(text.split())


def pdf_text(data: bytes) -> str:
    return flat("\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages))


def pdf_bytes(n, font: str) -> bytes:
    if font == "ttf" and not HAS_TTF:
        pytest.skip("no DejaVu/Liberation TrueType font on this machine")
    return render_pdf(n, font_candidates=None if font == "ttf" else ())


def rendered(n, how: str) -> str:
    return flat(render_text(n)) if how == "text" else pdf_text(pdf_bytes(n, how))


# -- required elements ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["text", *FONTS])
def test_every_required_element_is_in_the_letter(how):
    n = notice()
    out = rendered(n, how)
    ecoa = ECOA_NOTICE.format(agency="FDIC Consumer Response Center, 1100 Walnut Street, Box #11, "
                                     "Kansas City, MO 64106")
    expected = ["Your application has been denied", "a loan of $15,000", "Acme Savings Bank",
                "1 Ledger Way, Columbus, OH 43004", ecoa,  # creditor; 1002.9(b)(1) with the agency
                "STATEMENT OF SPECIFIC PRINCIPAL REASONS" if how == "text" else "Statement of specific principal reasons",
                *(f"{i}. {printed_reason(r['text'])}" for i, r in enumerate(REASONS_5[:4], start=1)),
                FCRA_REPORT_USED, FCRA_SCORE_USED, "Your credit score: 612", "March 5, 2026",
                "Scores range from a low of 300 to a high of 850",
                "Key factors that adversely affected your credit score",
                "Sample Bureau LLC, PO Box 1, Atlanta, GA 30374", "1-800-000-0000",
                "Dear Jane Q. Doe:", "Application reference: APP-000123"]
    for item in expected:
        assert flat(item) in out, item
    assert "SPECIMEN" not in out


def test_ecoa_notice_is_regulation_b_text_word_for_word():
    assert ECOA_NOTICE.startswith("The Federal Equal Credit Opportunity Act prohibits creditors from "
                                  "discriminating against credit applicants on the basis of race, color, "
                                  "religion, national origin, sex, marital status, age (provided the applicant "
                                  "has the capacity to enter into a binding contract); because all or part of "
                                  "the applicant's income derives from any public assistance program; or "
                                  "because the applicant has in good faith exercised any right under the "
                                  "Consumer Credit Protection Act. The Federal agency that administers "
                                  "compliance with this law concerning this creditor is {agency}.")


def test_example_settings_mark_the_letter_as_specimen():
    n = notice(settings=Settings(_env_file=None))
    assert n.is_specimen and "agency_name" in n.specimen_fields and "bureau_phone" in n.specimen_fields
    assert render_text(n).startswith("SPECIMEN")
    assert not notice().is_specimen


def test_letter_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CREDITRISK_LETTERS__AGENCY_NAME", "Office of the Comptroller of the Currency")
    monkeypatch.setenv("CREDITRISK_LETTERS__BUREAU_PHONE", "1-888-000-1111")
    n = notice(settings=Settings(_env_file=None))
    assert "Office of the Comptroller of the Currency" in n.ecoa_notice
    assert n.credit_score is not None and n.credit_score.bureau_phone == "1-888-000-1111"


# -- reasons ----------------------------------------------------------------------------------------
def test_reasons_are_the_decisions_codes_in_order_at_most_four():
    n = notice(record(reasons=REASONS_5))
    assert n.reason_codes == tuple(r["code"] for r in REASONS_5[:4])
    assert n.reasons == tuple(printed_reason(REASONS[r["code"]]) for r in REASONS_5[:4])
    assert n.reasons_source == "model"
    two = notice(record(reasons=REASONS_5[1:3]))
    assert two.reason_codes == ("excessive_obligations", "other_credit_score")
    assert "3. " not in render_text(two).split("YOUR CREDIT SCORE")[0]


def test_reasons_come_from_a_score_result_too():
    res = ScoreResult(model_name="m", model_version="1", model_role="primary", engine="compiled", pd=0.4,
                      raw_score=0.4, risk_class="high", confidence=0.9, recommendation="deny",
                      policy_reasons=[], reasons=REASONS_5[:3], attributions={}, base_value=0.0, margin=0.0,
                      member_spread=0.0, features={"credit_score": 580, "loan_amount": 9000},
                      application_id="A-9")
    n = notice(res)
    assert n.reason_codes == tuple(r["code"] for r in REASONS_5[:3])
    assert n.credit_score is not None and n.credit_score.score == 580
    assert n.application_id == "A-9"


def test_officer_reasons_override_the_model():
    n = notice(record(recommendation="approve"),
               human_reasons=["unverified_income", "other:Applicant could not document 12 months of rent"])
    assert n.reasons_source == "officer"
    assert n.reasons == (REASONS["unverified_income"], "Applicant could not document 12 months of rent")
    assert n.reason_codes == ("unverified_income", "other")
    text = render_text(n)
    assert REASONS["delinquent_obligations"] not in text.split("YOUR CREDIT SCORE")[0]
    # also when the officer agrees with the model but records their own reasons
    assert notice(human_reasons=["bankruptcy"]).reasons == (REASONS["bankruptcy"],)


@pytest.mark.parametrize("reasons, message", [
    (["bankruptcy"] * 5, "at most 4"),
    ([], "at least one"),
    (["other:\x00\x1b\u200b  \n"], "empty"),
    (["other:Applicant is too old for a 30-year term"], "prohibited basis"),
    (["other:denied because of her marital status"], "prohibited basis"),
    # free text reaches the consumer only through "Other, specify": an officer's note is refused
    (["Applicant could not document 12 months of rent"], "not a reason of the notice's list"),
    (["Customer was rude on the phone, do not lend"], "not a reason of the notice's list"),
    (["other"], "not a reason of the notice's list"),  # the bare box, with nothing specified
    ([" Bankruptcy "], "not a reason of the notice's list"),  # a label, not a key
])
def test_bad_officer_reasons_are_refused(reasons, message):
    with pytest.raises(ValueError, match=message):
        notice(human_reasons=reasons)


def test_officer_decision_that_differs_needs_officer_reasons():
    for rec in (record(recommendation="approve"), record(recommendation="manual_review")):
        with pytest.raises(ValueError) as exc:
            notice(rec)
        assert str(exc.value) == HUMAN_REASONS_REQUIRED.format(outcome="deny",
                                                               recommendation=rec["recommendation"])


def test_approval_needs_no_notice_and_pending_review_is_not_final():
    with pytest.raises(NoticeNotRequired) as exc:
        notice(decision_outcome="approve")
    assert str(exc.value) == NOTICE_NOT_REQUIRED.format(outcome="approve")
    with pytest.raises(NoticeNotRequired) as exc:
        notice(decision_outcome="manual_review")
    assert str(exc.value) == NOT_FINAL.format(outcome="manual_review")
    with pytest.raises(ValueError, match="unknown decision outcome"):
        notice(decision_outcome="counteroffer")


# -- FCRA credit score block ------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["text", *FONTS])
def test_score_block_only_when_a_bureau_score_was_used(how):
    n = notice(record(score=None))
    assert n.credit_score is None
    out = rendered(n, how)
    for absent in ("consumer reporting agency", "Your credit score", "Sample Bureau", "300 to a high"):
        assert absent not in out
    assert "Acme Savings Bank" in out and "FDIC Consumer Response Center" in out


def test_key_factors_are_the_bureaus_codes_never_the_models_reasons():
    cs = notice(record(reasons=REASONS_5), bureau_key_factors=["10", "08", "84", "14"]).credit_score
    assert cs is not None
    assert cs.key_factors == (KEY_FACTORS["10"], KEY_FACTORS["08"], KEY_FACTORS["14"], KEY_FACTORS["84"])
    assert not set(cs.key_factors) & set(REASONS.values())  # never a model reason
    assert cs.score_date == TODAY
    assert notice(bureau_key_factors="1;2").credit_score.key_factors == (KEY_FACTORS["01"], KEY_FACTORS["02"])
    assert notice(score_date=date(2026, 2, 1)).credit_score.score_date == date(2026, 2, 1)


@pytest.mark.parametrize("sent", [None, [], "", " ; ", float("nan")])
def test_no_key_factors_sent_says_so(sent):
    n = notice(record(reasons=REASONS_5), bureau_key_factors=sent)
    assert n.credit_score is not None and n.credit_score.key_factors == ()
    out = flat(render_text(n))
    assert NO_KEY_FACTORS in out
    for r in REASONS_5:  # the model's reasons never stand in for the bureau's
        assert out.count(printed_reason(r["text"])) <= 1


@pytest.mark.parametrize("bad", ["99", "10;XX", ["01", "02", "03", "05", "07"], {"01": 1}, "01; <script>"])
def test_unknown_or_too_many_key_factors_are_refused(bad):
    with pytest.raises(ValueError, match="bureau_key_factors"):
        notice(bureau_key_factors=bad)


def test_other_specify_reasons_print_as_the_reason_itself():
    n = notice(record(reasons=REASONS_5[2:]))
    assert n.reasons[0] == "Credit bureau score (the key factors that affected it are listed in this notice)"
    assert n.reasons[1] == "Proportion of balances to credit limits on revolving accounts is too high"
    text = render_text(n)
    assert OTHER_PREFIX.strip() not in text
    custom = [{"code": "other:branch_tenure", "text": OTHER_PREFIX + "branch tenure", "features": []}]
    assert notice(record(reasons=custom)).reasons == ("branch tenure",)


@pytest.mark.parametrize("current, outcome, why", [
    (None, None, NO_DECISION_YET),
    ({"status": "pending_approval", "outcome": "approve"}, None, AWAITING_APPROVAL),
    ({"status": "pending_approval", "outcome": "deny"}, None, AWAITING_APPROVAL),
    ({"status": "final", "outcome": "approve"}, None, "an approval"),
    ({"status": "final", "outcome": "manual_review"}, None, "manual review"),
    ({"status": "rejected", "outcome": "approve"}, None, RETURNED),
    ({"status": "final", "outcome": "deny"}, "deny", ""),
])
def test_a_notice_follows_the_final_decision_only(current, outcome, why):
    got, message = notice_outcome(current)
    assert got == outcome and why in message


@pytest.mark.parametrize("how", ["text", *FONTS])
def test_protected_attributes_never_appear(how):
    out = rendered(notice(), how).lower()
    for value in ("female", "hispanic", "65+", "race_ethnicity", "age_band"):
        assert value not in out


# -- user text: injection and odd input --------------------------------------------------------------
INJECTION = {
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "markdown": "**Approved** [click](javascript:alert(1)) ![i](http://evil/x.png) # Heading",
    "control": "Jane\x00\x07\x1b[2J\x1b[31mRED\x7f\u202eevil\u200b Doe",
    "forged_lines": "Jane\r\n1. Your application is approved\nTotally legit",
    "pdf_syntax": "Jane) Tj ET BT /F1 99 Tf (pwned) Tj ET BT ( \\ \\\\ (",
    "long": "A" * 12_000,
    "long_words": ("Supercalifragilistic" * 40 + " ") * 20,
    "non_latin": "Ζωή Ωμέγα Жанна 王小明 محمد Łukasiewicz Zoë 😀",
    "formula": "=HYPERLINK(\"http://evil\",\"x\")",
}


@pytest.mark.parametrize("kind", sorted(INJECTION))
@pytest.mark.parametrize("font", FONTS)
def test_user_text_renders_inert(kind, font):
    payload = INJECTION[kind]
    n = notice(record(recommendation="approve"), applicant_name=payload,
               human_reasons=[f"other:Officer note: {payload}"])
    assert len(n.applicant_name) <= MAX_NAME_CHARS
    text = render_text(n)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u200b\u202e]", text)
    dear = [line for line in text.splitlines() if line.startswith("Dear ")]
    assert len(dear) == 1 and "approved" not in text.split("NOTICE OF ACTION TAKEN")[1].split("STATEMENT")[0]
    data = pdf_bytes(n, font)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    for active in (b"/JavaScript", b"/JS", b"/URI", b"/Annots", b"/Launch", b"/AA", b"/SubmitForm", b"/AcroForm"):
        assert active not in data, active
    # fpdf2's catalog opens page 1 at page width: a destination array, never an action dictionary
    assert re.findall(rb"/OpenAction\s*(.)", data) in ([], [b"["])
    reader = PdfReader(io.BytesIO(data))
    assert 1 <= len(reader.pages) <= 12
    out = pdf_text(data)
    assert flat(ECOA_NOTICE.split(";")[0]) in out  # the letter itself is intact after the payload
    if kind in ("html", "markdown", "formula"):
        assert flat(payload) in out  # printed literally, not interpreted
    if kind == "pdf_syntax":
        assert "pwned" in out and "Jane) Tj ET" in out


def test_clean_text():
    assert clean_text("  a\nb\t\x00c\u202e d  ", limit=50) == "a b c d"
    assert clean_text("x" * 30, limit=10) == "xxxxxxx..."
    assert clean_text("Zoe\u0308", limit=10) == "Zoë"  # NFC


def test_fonts_embedded_when_present_and_core_fallback_otherwise(tmp_path):
    assert find_font(((tmp_path / "no.ttf", tmp_path / "nob.ttf"),)) is None
    n = notice(applicant_name="Жанна Łukasiewicz Zoë 王")
    core = render_pdf(n, font_candidates=((tmp_path / "missing.ttf", tmp_path / "missing-bold.ttf"),))
    assert b"/Helvetica" in core and b"/FontFile2" not in core
    assert "Dear ????? Lukasiewicz Zoë ?:" in pdf_text(core)
    assert to_latin1("“quoted” – Ł…") == '"quoted" - L...'
    if not HAS_TTF:
        pytest.skip("no TrueType font on this machine: only the fallback is tested")
    ttf = render_pdf(n)
    assert b"/FontFile2" in ttf
    assert "Dear Жанна Łukasiewicz Zoë ?:" in pdf_text(ttf)  # no CJK glyph in DejaVu → replaced


def test_pdf_page_renders_to_png(tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_pdf(notice()))
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "p")],
                   check=True, capture_output=True, timeout=60)
    pngs = sorted(Path(tmp_path).glob("p*.png"))
    assert pngs and pngs[0].stat().st_size > 5_000
