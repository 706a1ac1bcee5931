"""The audit page in the console: filters, paging caption, payload view, export (one audit row per
download), retention figures, and who may open it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.compliance.audit import EXPORTED
from backend.compliance.audit_queries import AuditFilter, AuditRepository
from backend.domain import Actor
from backend.domain.csvsafe import DANGEROUS_PREFIXES

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "audit.py")
NASTY = "=HYPERLINK(\"http://evil\",\"x\") <script>alert(1)</script> **bold** [link](http://x)"


def _open(console, role: str = "risk_manager") -> AppTest:
    at = console.logged_in(role)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("role", ["risk_manager", "admin"])
def test_risk_manager_and_admin_see_the_page(console, role):
    at = _open(console, role)
    assert [t.value for t in at.title] == ["Audit trail"]
    assert at.dataframe
    assert any(c.startswith("Showing rows 1–") and "matching (newest first)" in c for c in _captions(at)), _captions(at)
    assert any("Retention: 2,557 days" in c and "0 rows are past retention" in c for c in _captions(at))
    assert [b.label for b in at.main.button] == ["Prepare CSV export", "Verify the hash chain"]


def test_loan_officer_is_refused(console):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[USER_KEY] = Actor(console.users["loan_officer"], "loan_officer", uuid.uuid4(), "Officer")
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [NOT_ALLOWED]
    assert not at.dataframe and not at.download_button and not at.title


def test_filters_by_action_user_entity_and_date(console):
    svc = console.services
    svc.audit.record(actor="someone", role="admin", action="note", entity_type="decision", entity_id="d-42",
                     payload={"text": NASTY})
    at = _open(console)
    console.by_label(at.selectbox, "Action").select("note")
    _rerun(at)
    df = at.dataframe[0].value
    assert df["action"].tolist() == ["note"] and df["entity_id"].tolist() == ["d-42"]
    assert "Showing rows 1–1 of 1 matching (newest first)." in _captions(at)

    console.by_label(at.selectbox, "Action").select("(any)")
    console.by_label(at.text_input, "User (actor, exact username)").input("riskmanager")
    _rerun(at)
    df = at.dataframe[0].value
    assert set(df["actor"]) == {"riskmanager"} and "session_started" in set(df["action"])

    console.by_label(at.text_input, "User (actor, exact username)").input("")
    console.by_label(at.selectbox, "Entity type").select("decision")
    console.by_label(at.text_input, "Entity id").input("d-42")
    _rerun(at)
    assert at.dataframe[0].value["entity_id"].tolist() == ["d-42"]

    console.by_label(at.text_input, "Entity id").input("d-43")  # type AND id
    _rerun(at)
    assert not at.dataframe and [i.value for i in at.info] == ["No audit rows match."]

    console.by_label(at.selectbox, "Entity type").select("(any)")
    console.by_label(at.text_input, "Entity id").input("")
    console.by_label(at.text_input, "…or type an action").input("login_succeeded")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    console.by_label(at.date_input, "From (UTC)").set_value(tomorrow)
    _rerun(at)
    assert not at.dataframe
    console.by_label(at.date_input, "From (UTC)").set_value(tomorrow - timedelta(days=2))
    _rerun(at)
    assert set(at.dataframe[0].value["action"]) == {"login_succeeded"}


def test_payload_is_shown_as_plain_text(console):
    console.services.audit.record(actor="someone", role="admin", action="note", entity_type="decision",
                                  entity_id="d-1", payload={"text": NASTY})
    at = _open(console)
    head = console.services.audit.search(AuditFilter(action="note"), limit=1).rows[0]
    console.by_label(at.selectbox, "Show the full row (seq)").select(head["seq"])
    _rerun(at)
    assert any(json.dumps(NASTY) in t.value for t in at.text), [t.value for t in at.text]
    assert any(head["row_hash"] in t.value for t in at.text)
    # user text never reaches Markdown (where links, bold or HTML would be interpreted)
    assert not any("evil" in m.value for m in at.markdown)


def test_export_download_writes_one_audit_row(console):
    console.services.audit.record(actor="=cmd|' /C calc'!A0", role="admin", action="note", entity_type="decision",
                                  entity_id="@x", payload={"text": NASTY})
    at = _open(console)
    assert not at.download_button  # nothing leaves before the export is prepared
    console.by_label(at.button, "Prepare CSV export").click()
    _rerun(at)
    assert len(at.download_button) == 1 and at.download_button[0].label == "Download CSV"
    export = at.session_state["audit_export"]
    rows = list(csv.DictReader(io.StringIO(export.data.decode("utf-8"), newline="")))
    assert len(rows) == export.rows == console.services.audit.count()
    assert not any(c.startswith(DANGEROUS_PREFIXES) for r in rows for c in r.values())
    assert not console.services.audit.search(AuditFilter(action=EXPORTED), limit=5).rows  # preparing is not exporting

    before = console.services.audit.count()
    at.download_button[0].click()
    _rerun(at)
    assert console.services.audit.count() == before + 1  # only the export's row (a rerun adds none)
    recorded = console.services.audit.search(AuditFilter(action=EXPORTED), limit=5).rows
    assert len(recorded) == 1
    assert recorded[0]["actor"] == "riskmanager" and recorded[0]["payload"]["rows"] == export.rows
    assert recorded[0]["entity_id"] == export.sha256
    assert "Export recorded in the audit trail (audit_exported)." in [s.value for s in at.success]
    _rerun(at)
    assert console.services.audit.count() == before + 1

    # changing the filters withdraws the prepared file
    console.by_label(at.text_input, "User (actor, exact username)").input("admin")
    _rerun(at)
    assert not at.download_button
    assert "The filters changed: prepare the export again." in _captions(at)


def test_retention_figures(console):
    """A row dated 3000 days ago, written after today's rows: older than the cutoff, but an archive
    only ever takes the unbroken start of the chain, so it is not yet archivable."""
    with console.services.db.transaction() as s:
        AuditRepository(s).append(actor="old", role="admin", action="login_succeeded", entity_type="user",
                                  entity_id="1", at=datetime.now(UTC) - timedelta(days=3000))
    at = _open(console)
    caption = next(c for c in _captions(at) if c.startswith("Retention: 2,557 days"))
    assert "0 rows are past retention" in caption and "1 rows in all are older than the cutoff" in caption


def test_verify_button_still_works(console):
    at = _open(console)
    console.by_label(at.button, "Verify the hash chain").click()
    _rerun(at)
    assert any(s.value.startswith("Chain intact") for s in at.success)
