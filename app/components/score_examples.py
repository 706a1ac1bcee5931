"""The score page's example picker and the arm line: which arm an application falls in and why
(:mod:`backend.scoring.examples`), before scoring (for the inputs as they are) and after."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.components.text import humanize, plain
from backend.domain import Actor
from backend.rollout import OfficerInfo, assign
from backend.scoring import Example, arm_sentence, example_applications

REC_WORDS = {"approve": "approve", "deny": "deny", "manual_review": "manual review"}


@st.cache_data(ttl=300, show_spinner="Preparing example applicants…")
def _examples(_scoring: Any, username: str, role: str, senior: bool, phase_version: int) -> list[Example]:
    return example_applications(_scoring, Actor(username, role, senior=senior))


def _label(i: int, e: Example) -> str:
    where = (f"AI arm · {REC_WORDS.get(e.recommendation or '', '')}" if e.arm == "ai" else
             "control arm" if e.arm == "control" else "outside the phase")
    r = e.raw
    return (f"Example {i + 1}: [{where}] ${r['loan_amount']:,.0f} {humanize(r['loan_purpose'])}, "
            f"income ${r['annual_income']:,.0f}")


def pick_example(scoring: Any, user: Any) -> tuple[int, dict[str, Any]]:
    """The example selectbox (AI-arm cases of each recommendation first); returns (index, raw values)."""
    phase = scoring.phase_at(scoring.clock.now())
    examples = _examples(scoring, user.username, user.role, bool(user.senior), phase.version)
    choice = st.selectbox("Start from a simulated example applicant (edit any value below)", range(len(examples)),
                          format_func=lambda i: _label(i, examples[i]), key="score_example")
    st.caption(":material/science: Example applicants are simulated by the synthetic generator; they are not real "
               "people. The arm in brackets is where each would fall for you under the phase in force.")
    return int(choice), examples[choice].raw


def arm_note(scoring: Any, user: Any, applicant_id: str | None, loan_amount: float | None) -> None:
    """Which arm the application as entered falls in for this officer, and why."""
    phase = scoring.phase_at(scoring.clock.now())
    if not applicant_id:
        st.caption("Arm: set by the applicant id (an application without one gets a random id, so a random arm).")
        return
    a = assign(phase, applicant_id=str(applicant_id), loan_amount=float(loan_amount or 0.0),
               officer=OfficerInfo(user.username, user.role, bool(user.senior)))
    st.info(plain(arm_sentence(phase, a.arm, a.reason)), icon=":material/alt_route:")
