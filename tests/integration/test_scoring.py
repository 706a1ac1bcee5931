"""The scoring service end to end: validation, cache, compiled vs reference, fallback, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import func, select

from backend.domain import Actor
from backend.domain.features import PROTECTED
from backend.domain.reason_codes import REASONS
from backend.domain.validation import (
    MSG_FINITE,
    MSG_NUMBER,
    MSG_PROTECTED,
    MSG_REQUIRED,
    MSG_UNKNOWN,
    ApplicationInvalid,
)
from backend.models.provider import ModelUnavailable
from backend.models.registry import Registry
from backend.platform.db.tables_book import Application, Prediction
from backend.platform.db.tables_governance import AuditLog
from backend.training.synthetic import generate

OFFICER = Actor("olivia", "loan_officer")


def _apps(n=20, seed=11):
    df = generate(n, seed=seed).drop(columns=["default", "pd_true"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")


def _count(db, table):
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_score_persists_application_prediction_and_one_audit_row(scoring_services):
    svc = scoring_services
    app = _apps(1)[0]
    before = svc.audit.count()
    res = svc.scoring.score(app, submitter=OFFICER)
    assert 0.0 <= res.pd <= 1.0 and res.recommendation in ("approve", "deny", "manual_review")
    assert res.application_id and res.prediction_id and not res.cache_hit
    assert _count(svc.db, Application) == 1 and _count(svc.db, Prediction) == 1
    assert svc.audit.count() == before + 1
    with svc.db.read() as s:
        stored = s.get(Application, __import__("uuid").UUID(res.application_id))
        assert set(stored.protected) <= set(PROTECTED) and "sex" not in stored.features
    assert svc.audit.verify().ok


def test_reasons_are_reg_b_texts_from_positive_contributions(scoring_services):
    for res in scoring_services.scoring.score_many(_apps(30), submitter=OFFICER, persist=False):
        assert len(res.reasons) <= 4
        for r in res.reasons:
            assert r["text"] == REASONS[r["code"]]
            assert all(f["contribution"] > 0 and f["name"] not in PROTECTED for f in r["features"])
        weights = [r["weight"] for r in res.reasons]
        assert weights == sorted(weights, reverse=True)


def test_attributions_add_up_to_the_margin(scoring_services):
    for res in scoring_services.scoring.score_many(_apps(10), submitter=OFFICER, persist=False):
        assert math.isclose(res.base_value + sum(res.attributions.values()), res.margin, abs_tol=1e-5)


def test_cache_hit_on_second_score_and_same_answer(scoring_services):
    app = _apps(1)[0]
    a = scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    b = scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    assert not a.cache_hit and b.cache_hit
    assert a.pd == b.pd and a.reasons == b.reasons and a.recommendation == b.recommendation


def test_single_batch_and_reference_engines_agree(scoring_services):
    apps = _apps(25)
    batch = scoring_services.scoring.score_many(apps, submitter=OFFICER, persist=False)
    ref = scoring_services.scoring.score_many(apps, submitter=OFFICER, persist=False, engine="reference")
    single = [scoring_services.scoring.score(a, submitter=OFFICER, persist=False) for a in apps]
    for x, y, z in zip(batch, ref, single, strict=True):
        assert abs(x.raw_score - y.raw_score) <= 1e-9 and abs(x.raw_score - z.raw_score) <= 1e-9
        assert x.recommendation == y.recommendation == z.recommendation
        assert y.engine == "reference"


@pytest.mark.parametrize("patch,field,message", [
    ({"loan_amount": None}, "loan_amount", MSG_REQUIRED),
    ({"annual_income": float("nan")}, "annual_income", MSG_FINITE),
    ({"annual_income": float("inf")}, "annual_income", MSG_FINITE),
    ({"annual_income": "50000"}, "annual_income", MSG_NUMBER),
    ({"annual_income": True}, "annual_income", MSG_NUMBER),
    ({"sneaky": 1}, "sneaky", MSG_UNKNOWN),
])
def test_bad_input_names_the_field(scoring_services, patch, field, message):
    app = {**_apps(1)[0], **patch}
    with pytest.raises(ApplicationInvalid) as exc:
        scoring_services.scoring.score(app, submitter=OFFICER)
    assert any(e.field == field and e.message == message for e in exc.value.errors)
    assert _count(scoring_services.db, Application) == 0  # nothing half-written


def test_protected_attribute_in_features_is_stored_not_scored(scoring_services):
    app = _apps(1)[0]
    res = scoring_services.scoring.score(app, submitter=OFFICER)
    assert not set(PROTECTED) & set(res.attributions)
    model = scoring_services.models.get()
    with pytest.raises(ApplicationInvalid) as exc:  # passed to validation as a feature, it is refused
        scoring_services.scoring.validate({**{c: app.get(c) for c in model.columns}, "race": "x"}, model)
    assert exc.value.errors[0].message in (MSG_UNKNOWN, MSG_PROTECTED)


def test_out_of_range_and_unknown_category(scoring_services):
    app = {**_apps(1)[0], "credit_score": 9999, "home_ownership": "castle"}
    with pytest.raises(ApplicationInvalid) as exc:
        scoring_services.scoring.score(app, submitter=OFFICER)
    fields = {e.field for e in exc.value.errors}
    assert {"credit_score", "home_ownership"} <= fields
    assert "9999" not in str(exc.value) and "castle" not in str(exc.value)  # values are not echoed


def test_loan_over_cap_goes_to_manual_review(scoring_services):
    app = {**_apps(1)[0], "loan_amount": 40_000.0}
    res = scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    assert res.recommendation == "manual_review"
    assert any("cap" in why for why in res.policy_reasons)


def test_tampered_primary_falls_back_and_says_so(scoring_services):
    root = scoring_services.settings.model.registry_dir
    reg = Registry(root, name="creditrisk")
    version = reg.resolve("champion")
    path = root / "creditrisk" / version / "primary.npz"
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    scoring_services.models.invalidate()
    res = scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER)
    assert res.model_role == "fallback" and res.recommendation == "manual_review"
    assert "fallback model in use" in res.policy_reasons
    # the fallback's manual-review answer is not cached: once the primary is whole again, it scores
    path.write_bytes(original)
    scoring_services.models.invalidate()
    again = scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER, persist=False)
    assert (again.model_role, again.cache_hit) == ("primary", False)


def test_no_model_is_a_clear_error(scoring_services, tmp_path):
    scoring_services.models.settings = scoring_services.models.settings.model_copy(
        update={"registry_dir": tmp_path / "empty"})
    scoring_services.models.invalidate()
    with pytest.raises(ModelUnavailable, match="creditrisk train"):
        scoring_services.scoring.score(_apps(1)[0], submitter=OFFICER)


def test_rollback_purges_cache_and_serves_previous(scoring_services, model_registry):
    from backend.domain import Actor
    from backend.training.train import train_and_register

    root = scoring_services.settings.model.registry_dir
    first = Registry(root, name="creditrisk").resolve("champion")
    app = _apps(1)[0]
    scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    report = train_and_register(None, rows=3000, seed=4, registry_root=root, name="creditrisk",
                                cv_folds=2, n_boost=10, n_trees=20)
    admin = scoring_services.model_admin
    if not report["gates_passed"]:  # a failed gate: a risk manager's written override first (four-eyes)
        scoring_services.users.add("rita", role="risk_manager", password="correct horse battery staple")
        admin.override(scoring_services.users.get("rita"), report["version"],
                       reason="small test model; the fairness gate is not this test's subject")
    admin.promote(report["version"], Actor("mlops", "ml_engineer"))
    assert scoring_services.scoring.score(app, submitter=OFFICER, persist=False).model_version == report["version"]
    assert admin.rollback(Actor("mlops", "ml_engineer")) == first
    again = scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    assert again.model_version == first
    actions = [r["action"] for r in scoring_services.audit.recent(5)]
    assert "model_rolled_back" in actions and "model_promoted" in actions
    assert np.isfinite(again.pd)


def test_audit_rows_count_for_batch(scoring_services):
    before = _count(scoring_services.db, AuditLog)
    scoring_services.scoring.score_many(_apps(7), submitter=OFFICER)
    assert _count(scoring_services.db, AuditLog) == before + 7


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_redis_cache_serves_hits(scoring_services):
    import os
    import uuid

    from backend.platform.adapters.cache_redis import RedisCache

    url = os.environ.get("CREDITRISK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    cache = RedisCache(url, namespace=f"creditrisk-test:{uuid.uuid4().hex}:", socket_timeout=0.5,
                       connect_timeout=0.5)
    health = cache.health()
    if not health["ok"]:
        from tests.conftest import require

        require(False, f"Redis not reachable at {url}")
    scoring_services.scoring.cache = cache
    app = _apps(1)[0]
    first = scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    second = scoring_services.scoring.score(app, submitter=OFFICER, persist=False)
    assert not first.cache_hit and second.cache_hit and first.pd == second.pd
    assert cache.delete_prefix("") >= 1


def test_dead_redis_never_fails_scoring(scoring_services):
    from backend.platform.adapters.cache_redis import RedisCache

    scoring_services.scoring.cache = RedisCache(f"redis://127.0.0.1:{_free_port()}/0")
    app = _apps(1)[0]
    for _ in range(3):  # first call pays one short connect timeout, then the circuit is open
        res = scoring_services.scoring.score(app, submitter=OFFICER)
        assert not res.cache_hit and res.prediction_id
    assert _count(scoring_services.db, Prediction) == 3


def test_same_id_same_features_is_a_rescore_different_features_is_refused(scoring_services):
    from backend.scoring import ApplicationConflict

    app = _apps(1)[0]
    a = scoring_services.scoring.score(app, submitter=OFFICER)
    b = scoring_services.scoring.score(app, submitter=OFFICER)
    assert a.application_id == b.application_id and a.prediction_id != b.prediction_id
    assert _count(scoring_services.db, Application) == 1 and _count(scoring_services.db, Prediction) == 2
    assert scoring_services.audit.recent(1)[0]["action"] == "application_rescored"
    with pytest.raises(ApplicationConflict, match="already exists"):
        scoring_services.scoring.score({**app, "loan_amount": app["loan_amount"] + 1}, submitter=OFFICER)
    assert _count(scoring_services.db, Prediction) == 2
