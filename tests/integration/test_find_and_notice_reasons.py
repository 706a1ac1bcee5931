"""Finding applications over the whole book (paged, by id or applicant) and the C-1 reasons an
officer records for a denial's notice; bureau key factors carried on the application."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from backend.decisioning.decisions import DecisionError
from backend.domain import Actor, ApplicationInvalid
from backend.platform.db.tables_book import Application, Decision, Prediction
from backend.training.synthetic import generate


def _apps(n, seed, **patch):
    df = generate(n, seed=seed).drop(columns=["default", "pd_true"]).astype(object)
    return [{**r, **patch} for r in df.where(df.notna(), None).to_dict("records")]


@pytest.fixture
def w(scoring_services):
    svc = scoring_services
    users = {name: svc.users.add(name, role=role)[0] for name, role in
             [("olivia", "loan_officer"), ("oscar", "loan_officer"), ("maria", "risk_manager")]}
    rows = _apps(130, 5)
    res = svc.scoring.score_many(rows, submitter=Actor("olivia", "loan_officer", users["olivia"].id))
    other = svc.scoring.score_many(_apps(3, 6), submitter=Actor("oscar", "loan_officer", users["oscar"].id))
    return SimpleNamespace(svc=svc, rows=rows, res=res, other=other, **users)


def test_pages_cover_the_whole_book_without_a_silent_cut(w):
    seen, page = [], 0
    while True:
        rows, total = w.svc.decisions.search(w.olivia, page=page, per_page=50)
        if not rows:
            break
        seen += [r.application_id for r in rows]
        page += 1
    assert total == 130 and len(seen) == 130 == len(set(seen))  # officers: their own only, all of them
    _, everyone = w.svc.decisions.search(w.maria, per_page=1)
    assert everyone == 133


def test_find_by_external_id_prefix_uuid_and_applicant(w):
    ext = w.rows[7]["application_id"]
    rows, total = w.svc.decisions.search(w.olivia, text=ext)
    assert total == 1 and rows[0].external_id == ext
    aid = w.res[9].application_id
    for text in (aid, aid[:8], aid.upper()[:8]):
        rows, _ = w.svc.decisions.search(w.olivia, text=text)
        assert aid in [r.application_id for r in rows], text
    applicant = w.rows[3]["applicant_id"]
    ids = w.svc.pii.find(applicant, actor=w.olivia)
    rows, total = w.svc.decisions.search(w.olivia, application_ids=ids)
    assert total >= 1 and w.res[3].application_id in [r.application_id for r in rows]


@pytest.mark.parametrize("text", ["%", "_", "\\", "' OR 1=1 --", "x" * 500, "  "])
def test_hostile_search_text_matches_nothing_or_everything_it_should(w, text):
    rows, total = w.svc.decisions.search(w.olivia, text=text)
    assert total in (0, 130)  # blank text is no filter; wildcards are literal
    if text.strip():
        assert total == 0


def test_an_officer_never_finds_another_officers_application(w):
    rows, total = w.svc.decisions.search(w.olivia, text=w.other[0].application_id)
    assert total == 0
    rows, total = w.svc.decisions.search(w.olivia, application_ids=[w.other[0].application_id])
    assert total == 0


def _deny_override_pid(w):
    pid = w.res[0].prediction_id
    with w.svc.db.transaction() as s:  # make it an approve recommendation: denying it is an override
        s.get(Prediction, uuid.UUID(pid)).recommendation = "approve"
    return pid


def test_a_denial_override_stores_c1_notice_reasons(w):
    pid = _deny_override_pid(w)
    view = w.svc.decisions.decide(pid, actor=w.olivia, outcome="deny", reason_code="fraud_suspected",
                                  reason_text="Identity documents do not match the bureau file at all.",
                                  idempotency_key=uuid.uuid4().hex,
                                  notice_reasons=["unverified_income", "other:  Could not verify   residence  "])
    assert view.notice_reasons == ("unverified_income", "other:Could not verify residence")
    with w.svc.db.read() as s:
        d = s.execute(select(Decision)).scalar_one()
    assert d.notice_reasons == ["unverified_income", "other:Could not verify residence"]


@pytest.mark.parametrize("reasons, message", [
    (["Identity mismatch"], "not on the notice's list"),
    (["other"], "not on the notice's list"),
    (["other:abc"], "5 to 200"),
    ([], "1 to 4"),
    (["bankruptcy", "bankruptcy", "no_credit_file", "collection_or_judgment", "recent_inquiries"], "1 to 4"),
])
def test_bad_notice_reasons_are_refused_and_nothing_is_stored(w, reasons, message):
    pid = _deny_override_pid(w)
    before = w.svc.audit.count()
    with pytest.raises(DecisionError, match=message):
        w.svc.decisions.decide(pid, actor=w.olivia, outcome="deny", reason_code="fraud_suspected",
                               reason_text="Identity documents do not match the bureau file at all.",
                               idempotency_key=uuid.uuid4().hex, notice_reasons=reasons)
    assert w.svc.audit.count() == before


def test_notice_reasons_only_with_a_denial(w):
    pid = w.res[1].prediction_id
    rec = w.res[1].recommendation
    with pytest.raises(DecisionError, match="only for a denial"):
        w.svc.decisions.decide(pid, actor=w.olivia, outcome="approve" if rec != "approve" else "manual_review",
                               idempotency_key=uuid.uuid4().hex, notice_reasons=["bankruptcy"])


def test_bureau_key_factors_are_stored_and_bad_codes_refused(w):
    u = w.olivia
    row = _apps(1, 77, bureau_key_factors="10;8;84")[0]
    r = w.svc.scoring.score(row, submitter=Actor(u.username, u.role, u.id))
    case = w.svc.workspace.case(r.prediction_id, actor=u)
    assert case.bureau_key_factors == ("10", "08", "84")
    with w.svc.db.read() as s:
        assert s.get(Application, uuid.UUID(r.application_id)).bureau_key_factors == ["10", "08", "84"]
    for bad in ("99", "10;<b>", ["01", "02", "03", "05", "07"]):
        with pytest.raises(ApplicationInvalid, match="bureau_key_factors"):
            w.svc.scoring.score({**row, "application_id": None, "bureau_key_factors": bad},
                                submitter=Actor(u.username, u.role, u.id))
