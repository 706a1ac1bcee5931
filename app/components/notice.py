"""The adverse action notice on the decision page, and the C-1 reasons an officer picks for a denial.

A notice is offered only after a final denial (``notice_outcome``); its reasons are the model's when
the officer accepted a deny recommendation, else the reasons the officer picked from form C-1 (free
text only through "Other, specify"). The bureau's key factors come from the application.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Any

import streamlit as st

from backend.domain import FORM_C1, OTHER_SPECIFIED, printed_reason

PICKABLE = {k: v for k, v in {**FORM_C1, **OTHER_SPECIFIED}.items() if k != "other"}
OTHER = "other"


def reason_words(key: str) -> str:
    """A picked notice reason as the notice prints it."""
    return key[len("other:"):] if key.startswith("other:") else printed_reason(PICKABLE.get(key, key))


def notice_reason_picker(key: str) -> list[str] | None:
    """Inside a form: up to four C-1 reasons, and "Other, specify" with the reason in words.
    Returns the picked keys (``other:<text>`` for the specified one), or None when none was picked."""
    options = [*PICKABLE, OTHER]
    picked = st.multiselect("Reasons for the notice (a denial only; 1 to 4, from the notice's list)",
                            options, max_selections=4, key=f"{key}_notice_reasons",
                            format_func=lambda k: "Other, specify…" if k == OTHER else printed_reason(PICKABLE[k]))
    other = st.text_input("Other, specify (printed on the notice only when “Other, specify…” is picked)",
                          max_chars=200, key=f"{key}_notice_other")
    out = [k if k != OTHER else f"other:{other}" for k in picked]
    return out or None


def notice_tab(record: Any, current: Any, *, model_reasons_apply: bool, key_factors: Any, settings: Any) -> None:
    """The notice of ``current`` (the application's decision): the model's reasons when
    ``model_reasons_apply`` (the officer accepted a deny recommendation), else the officer's picks."""
    from backend.decisioning import notice_outcome

    outcome, why = notice_outcome(current)
    if outcome is None:
        st.info(why)
        return
    picked = list(current.notice_reasons or ())
    if not picked and not model_reasons_apply:
        st.warning("This denial has no notice reasons recorded from the notice's list, so no notice is prepared "
                   "(the officer's own explanation is an internal note and is never printed).")
        return
    letter_panel(record, outcome, picked or None, settings, key_factors)


def letter_panel(record: Any, outcome: str, human_reasons: list[str] | None, settings: Any, key_factors: Any) -> None:
    from backend.decisioning import NoticeNotRequired, build_notice, render_pdf, render_text

    try:
        notice = build_notice(record, applicant_name=None, decision_outcome=outcome, human_reasons=human_reasons,
                              settings=settings, today=date.today(), bureau_key_factors=key_factors)
    except (NoticeNotRequired, ValueError) as exc:
        st.info(str(exc))
        return
    st.text(render_text(notice))
    # the PDF is made when the button is clicked (~0.5 s of font work), not on every open of a denied decision
    st.download_button("Download the notice (PDF)", partial(render_pdf, notice), mime="application/pdf",
                       file_name=f"adverse-action-{(record.application_id or 'notice')[:8]}.pdf",
                       key=f"letter_pdf_{record.prediction_id}")
