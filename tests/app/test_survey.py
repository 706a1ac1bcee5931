"""The monthly survey on the home page (AppTest): shown to the roles that decide while unanswered,
stored with its audit row, a clear message without a score, and never shown to other roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.decisioning.feedback import period_of
from backend.platform.db.tables_book import SurveyResponse

NPS_LABEL = "How likely are you to recommend the AI assistant to a colleague? (0 = not at all, 10 = extremely)"
SAT_LABEL = "How satisfied are you with it this month? (optional)"
THANKS = "Thank you: your survey answers for {period} are recorded."


def _answers(console):
    with console.services.db.read() as s:
        return list(s.execute(select(SurveyResponse)).scalars())


@pytest.mark.parametrize("role", ["loan_officer", "risk_manager"])
def test_survey_is_answered_once_a_month(console, role):
    at = console.logged_in(role)
    assert not at.exception
    period = period_of(console.services.clock.now())
    assert any(period in m.value for m in at.markdown), "the survey is not shown"
    console.by_label(at.radio, NPS_LABEL).set_value(9)
    console.by_label(at.radio, SAT_LABEL).set_value(4)
    hostile = "<script>alert(1)</script> **bold** =HYPERLINK(\"x\")"
    console.by_label(at.text_area, "Comment (optional)").input(hostile)
    console.by_label(at.button, "Send answers").click()
    at.run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == [THANKS.format(period=period)]
    assert not [r for r in at.radio if r.label == NPS_LABEL]  # the form is gone
    (row,) = _answers(console)
    assert (row.period, row.nps, row.satisfaction, row.comment) == (period, 9, 4, hostile)  # stored verbatim
    assert not any(hostile in m.value for m in at.markdown)  # the comment is never rendered back
    assert console.services.audit.recent(1)[0]["action"] == "survey_submitted"

    again = console.logged_in(role)  # a new session the same month: no survey
    assert not [r for r in again.radio if r.label == NPS_LABEL] and not again.success


def test_survey_needs_a_score(console):
    at = console.logged_in("loan_officer")
    console.by_label(at.button, "Send answers").click()
    at.run()
    assert [e.value for e in at.error] == ["Choose a score from 0 to 10 (or come back later)."]
    assert _answers(console) == []
    console.by_label(at.radio, NPS_LABEL).set_value(0)
    console.by_label(at.button, "Send answers").click()
    at.run()
    assert not at.error and _answers(console)[0].nps == 0 and _answers(console)[0].satisfaction is None


@pytest.mark.parametrize("role", ["product_lead", "ml_engineer", "admin"])
def test_roles_that_do_not_decide_see_no_survey(console, role):
    at = console.logged_in(role)
    assert not at.exception
    assert not [r for r in at.radio if r.label == NPS_LABEL]
    assert not [b for b in at.button if b.label == "Send answers"]
