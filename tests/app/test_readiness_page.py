"""Production readiness page: the verdict and one row per checklist item, sign-offs by area from the page
(a risk manager signs compliance and records legal naming the counsel; a product lead signs product and
revokes), the exports; a loan officer is refused."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.components.text import plain
from app.guard import NOT_ALLOWED, USER_KEY
from backend.operations.signoffs import MSG_COUNSEL_REQUIRED

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "readiness.py")


def _page(console, role: str) -> AppTest:
    at = console.logged_in(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _button(at: AppTest, label: str):  # noqa: ANN202
    return next(b for b in at.button if b.label == label)


def test_risk_manager_signs_compliance_and_records_legal(console, trained_registry):
    console.install_model(trained_registry)
    at = _page(console, "risk_manager")
    assert [t.value for t in at.title] == ["Production readiness"] and not at.error
    assert [w.value for w in at.warning][0].startswith("Not ready for production: ")
    items = at.dataframe[0].value
    assert len(items) == 10 and (items["status"] == "RED (missing)").sum() >= 9  # no evidence, no sign-off yet
    assert items.set_index("item").loc["Sign-off: Legal", "refresh with"].endswith("--counsel NAME")
    area = next(s for s in at.selectbox if s.key == "readiness_area")
    assert area.options == ["Compliance", "Legal"]  # the areas a risk manager may sign
    champion = console.services.models.registry().aliases()["champion"]
    sign = f"Sign off for {champion}"

    area.set_value("legal")
    _button(at, sign).click().run()
    assert [e.value for e in at.error] == [MSG_COUNSEL_REQUIRED]  # counsel must be named; nothing written
    next(s for s in at.selectbox if s.key == "readiness_area").set_value("legal")
    next(t for t in at.text_input if t.key == "readiness_counsel").input("Jane Roe, Esq.")
    next(t for t in at.text_area if t.key == "readiness_note").input("<b>memo</b> =HYPERLINK(1)")
    _button(at, sign).click().run()
    assert not at.error and not at.exception
    assert [s.value for s in at.success] == [
        f"Legal signed off for {champion} by Jane Roe, Esq. (legal counsel, recorded by riskmanager)."]
    next(s for s in at.selectbox if s.key == "readiness_area").set_value("compliance")
    _button(at, sign).click().run()
    signoffs = at.dataframe[1].value
    assert sorted(signoffs["area"]) == ["Compliance", "Legal"]
    assert signoffs.set_index("area").loc["Legal", "note"] == "<b>memo</b> =HYPERLINK(1)"  # stored verbatim
    items = at.dataframe[0].value.set_index("item")
    assert items.loc["Sign-off: Legal", "status"] == "GREEN" and items.loc["Sign-off: Product (PM)", "status"] == \
        "RED (missing)"
    next(s for s in at.selectbox if s.key == "readiness_detail").set_value("signoff_legal").run()
    detail = [m.value for m in at.markdown if "Jane Roe" in m.value]
    assert detail == [plain(at.dataframe[0].value.set_index("item").loc["Sign-off: Legal", "evidence"])]
    assert "<b>memo</b>" not in detail[0]  # the note is escaped, shown as typed
    assert "creditrisk signoff add --area legal --user USERNAME --counsel NAME" in [c.value for c in at.code]
    assert [b.label for b in at.get("download_button")] == ["Export checklist (JSON)", "Export checklist (Markdown)"]
    exported = json.loads(_report_json(console))
    assert exported["champion"] == champion and len(exported["items"]) == 10


def _report_json(console) -> str:  # noqa: ANN001

    return console.services.readiness.evaluate().to_json()


def test_product_lead_signs_and_revokes(console, trained_registry):
    console.install_model(trained_registry)
    at = _page(console, "product_lead")
    assert next(s for s in at.selectbox if s.key == "readiness_area").options == ["Product (PM)"]
    assert not [t for t in at.text_input if t.key == "readiness_counsel"]  # no counsel field outside legal
    champion = console.services.models.registry().aliases()["champion"]
    _button(at, f"Sign off for {champion}").click().run()
    assert not at.error and at.dataframe[0].value.set_index("item").loc["Sign-off: Product (PM)", "status"] == "GREEN"
    next(t for t in at.text_input if t.key == "readiness_revoke_note").input("phase report changed")
    _button(at, "Revoke").click().run()
    assert not at.error and [s.value for s in at.success] == ["Product (PM) sign-off revoked."]
    assert at.dataframe[1].value["status"].str.startswith("revoked").all()
    revoked = console.services.audit.recent(1, entity_type="signoff")[0]
    assert (revoked["action"], revoked["actor"], revoked["payload"]["note"]) == (
        "signoff_revoked", "productlead", "phase report changed")


def test_admin_without_a_model_reads_the_checklist(console):
    at = _page(console, "admin")
    assert not at.error and len(at.dataframe[0].value) == 10
    assert "There is no champion model to sign off yet." in [c.value for c in at.caption]


def test_loan_officer_is_refused(console):
    page = AppTest.from_file(PAGE, default_timeout=30)
    page.session_state[USER_KEY] = console.services.users.get(console.users["loan_officer"])
    page.run()
    assert [e.value for e in page.error] == [NOT_ALLOWED]
    assert len(console.leaves(page)) == 1
