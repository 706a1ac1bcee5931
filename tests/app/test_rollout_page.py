"""Rollout page (product lead proposes, risk manager approves, others refused) and the console in
shadow mode: the officer's score page, decision page and applications list show no model output,
and a manual denial's notice carries only the officer's reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.components.decision import REC_TEXT, RISK_TEXT
from app.guard import NOT_ALLOWED, OPEN_DECISION_KEY, USER_KEY
from backend.domain import Actor
from backend.training.synthetic import generate

PAGES = Path(__file__).resolve().parents[2] / "pages"
RATIONALE = "Shadow first: measure agreement before anyone sees the AI"
TEXT_KINDS = {"Markdown", "Text", "Caption", "Alert", "Metric", "Title", "Header", "Subheader", "Success", "Info",
              "Warning", "Error", "Code", "ChatMessage"}
OFFICER_REASON = "Verified monthly obligations exceed what the stated salary can carry."


def _page(console, role: str, page: str) -> AppTest:
    at = console.logged_in(role)
    at.switch_page(str(PAGES / page)).run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    """Everything the page writes as text (markdown, text, captions, alerts, metrics)."""
    out = []
    for e in console_leaves(at):
        if type(e).__name__ in TEXT_KINDS or e.type in ("markdown", "text", "alert", "metric", "caption"):
            for attr in ("value", "body", "label"):
                v = getattr(e, attr, None)
                if isinstance(v, str):
                    out.append(v)
    return "\n".join(out)


def console_leaves(at: AppTest) -> list:
    from streamlit.testing.v1.element_tree import Block

    return [n for part in (at.main, at.sidebar) for n in part if not isinstance(n, Block)]


def _shadow(console) -> None:
    svc = console.services
    lead, manager = (svc.users.get(console.users[r]) for r in ("product_lead", "risk_manager"))
    svc.rollout.propose(lead, phase="shadow", ai_share=0.0, loan_amount_cap=25_000.0, confidence_threshold=0.7,
                        rationale=RATIONALE)
    svc.rollout.approve(1, manager)


@pytest.fixture
def ready(console, trained_registry):
    console.install_model(trained_registry)
    return console


# -- the rollout page -----------------------------------------------------------------------------------
def test_product_lead_proposes_and_risk_manager_approves(console):
    at = _page(console, "product_lead", "rollout.py")
    assert "In force: Full production" in _texts(at)
    assert any("only to applications made after" in i.value for i in at.info)
    next(s for s in at.selectbox if s.label == "Phase").set_value("pilot")
    next(n for n in at.number_input if n.label.startswith("AI share")).set_value(0.1)
    next(c for c in at.checkbox if c.label == "Senior officers only").check()
    next(c for c in at.checkbox if c.label == "Decision Q&A").uncheck()
    next(b for b in at.button if b.label == "Propose").click().run()
    assert [e.value for e in at.error] == ["The rationale: write at least 10 characters so the decision can be "
                                           "followed later."]  # the service's message, nothing written
    assert console.services.rollout.history() == []
    next(t for t in at.text_area if t.label.startswith("Rationale")).input("<b>Pilot</b> per the plan =SUM(A1)")
    next(b for b in at.button if b.label == "Propose").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Version 1 proposed" in s.value for s in at.success)
    assert not [b for b in at.button if b.label == "Approve"]  # a product lead cannot approve
    assert any(b.label == "Withdraw" for b in at.button)  # but may withdraw their own proposal
    assert any(t.value == "<b>Pilot</b> per the plan =SUM(A1)" for t in at.text)  # verbatim, as plain text

    mgr = _page(console, "risk_manager", "rollout.py")
    assert not [b for b in mgr.button if b.label == "Propose"]  # a risk manager cannot propose
    diff = mgr.dataframe[1].value  # history first, then the proposal's diff against the phase in force
    assert {"Phase", "AI share", "Eligible"} <= set(diff["setting"])
    next(b for b in mgr.button if b.label == "Reject").click().run()
    assert any("at least 10 characters" in e.value for e in mgr.error)
    next(b for b in mgr.button if b.label == "Approve").click().run()
    assert not mgr.exception and any("Version 1 approved" in s.value for s in mgr.success)
    assert "In force: Pilot (version 1)" in _texts(mgr)
    console.services.rollout.invalidate()
    active = console.services.rollout.active()
    assert (active.version, active.phase, active.ai_share, active.senior_only, active.enabled("qa")) == (
        1, "pilot", 0.1, True, False)
    actions = [row["action"] for row in console.services.audit.recent(50) if row["action"].startswith("rollout_")]
    assert actions == ["rollout_approved", "rollout_proposed"]  # one audit row per step


def test_rollout_page_refuses_a_loan_officer(console):
    at = console.logged_in("loan_officer")
    assert (PAGES / "rollout.py").resolve() not in console.registered_scripts(at)  # not in the menu
    page = AppTest.from_file(str(PAGES / "rollout.py"), default_timeout=30)  # and refused when run directly
    page.session_state[USER_KEY] = console.services.users.get(console.users["loan_officer"])
    page.run()
    assert [e.value for e in page.error] == [NOT_ALLOWED]
    assert not page.button and not page.dataframe


# -- shadow mode in the console ---------------------------------------------------------------------------
def _score_as_officer(console):
    svc = console.services
    info = svc.users.get(console.users["loan_officer"])
    df = generate(300, seed=33).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    rows = df.where(df.notna(), None).to_dict("records")
    preview = svc.scoring.score_many(rows, submitter=Actor(info.username, info.role, info.id), persist=False)
    deny = next(i for i, r in enumerate(preview) if r.recommendation == "deny")  # the richest card to hide
    return svc.scoring.score(rows[deny], submitter=Actor(info.username, info.role, info.id, senior=info.senior))


def _assert_no_model_output(text: str, result, *, decided: bool = False) -> None:  # noqa: ANN001
    assert "Recommendation" not in text and "recommend" not in text.lower()
    assert f"{result.pd:.1%}" not in text and "Probability of default" not in text
    if not decided:  # once the officer has denied it, "Deny" is their own outcome on the page
        assert REC_TEXT[result.recommendation][0] not in text
    assert not any(label in text for label in RISK_TEXT.values())
    assert not any(r["text"] in text for r in result.reasons)
    assert "What drove the score" not in text and "Principal reasons" not in text


def test_decision_page_in_shadow_mode_shows_no_model_output_to_the_officer(ready):
    _shadow(ready)
    result = _score_as_officer(ready)
    assert (result.arm, result.phase, result.ai_visible) == ("control", "shadow", False)
    at = ready.logged_in("loan_officer")
    at.session_state[OPEN_DECISION_KEY] = result.prediction_id
    at.switch_page(str(PAGES / "decision.py")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = _texts(at)
    assert "in shadow mode: decide it without the AI" in text and "Loan amount requested" in text
    _assert_no_model_output(text, result)
    assert not at.metric and not at.get("plotly_chart")
    decision = next(r for r in at.radio if r.label == "Decision")
    assert decision.value is None  # no suggested outcome

    decision.set_value("deny")
    next(b for b in at.button if b.label == "Record decision").click().run()
    assert any("principal reason" in e.value for e in at.error)  # a denial needs its reason
    next(m for m in at.multiselect if m.label.startswith("Reasons for the notice")).set_value(["other"])
    next(t for t in at.text_input if t.label.startswith("Other, specify")).input(OFFICER_REASON)
    next(t for t in at.text_area if t.label.startswith("Internal note")).input("Internal: call the branch, "
                                                                                  "do not print this note")
    next(b for b in at.button if b.label == "Record decision").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value == "Decision recorded: Deny." for s in at.success)
    text = _texts(at)
    _assert_no_model_output(text, result, decided=True)
    notice = " ".join(" ".join(t.value.split()) for t in at.text)
    assert "Equal Credit Opportunity Act" in notice and OFFICER_REASON in notice
    letter = next(t.value for t in at.text if "Equal Credit Opportunity Act" in " ".join(t.value.split()))
    assert "do not print this note" not in letter  # the officer's internal note never reaches the consumer
    assert len(at.get("download_button")) == 1
    view = ready.services.decisions.current(result.application_id,
                                            actor=ready.services.users.get(ready.users["loan_officer"]))
    assert (view.outcome, view.is_override, view.status) == ("deny", False, "final")
    assert view.decision_seconds is not None

    mgr = ready.logged_in("risk_manager")  # a manager sees the model, with the banner
    mgr.session_state[OPEN_DECISION_KEY] = result.prediction_id
    mgr.switch_page(str(PAGES / "decision.py")).run()
    assert not mgr.exception
    assert any("Hidden from the officer" in w.value for w in mgr.warning)
    assert f"{result.pd:.1%}" in _texts(mgr)


def test_score_page_and_applications_list_in_shadow_mode(ready):
    _shadow(ready)
    at = _page(ready, "loan_officer", "score.py")
    next(b for b in at.button if b.label == "Score").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(i.value == "Recorded. This application is in shadow mode: decide it without the AI." for i in at.info)
    assert not at.metric and not at.get("plotly_chart")
    assert "Recommendation" not in _texts(at) and "Probability of default" not in _texts(at)
    assert any(b.label == "Open the application to decide it" for b in at.button)

    lst = _page(ready, "loan_officer", "decisions.py")
    df = lst.dataframe[0].value
    assert list(df["arm"]) == ["Shadow"]
    assert (df["PD"] == "").all() and (df["recommendation"] == "").all()  # blank, never "None"
    mgr = _page(ready, "risk_manager", "decisions.py")
    df = mgr.dataframe[0].value
    assert list(df["arm"]) == ["Shadow"] and (df["PD"] != "").all()  # managers see the hidden figures
