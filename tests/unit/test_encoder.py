"""FeatureEncoder: kinds, missing values, categories, JSON spec and the runtime record path."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from backend.models.encoder import MISSING_KEY, MSG_MISSING_COLUMNS, MSG_NOT_FITTED, FeatureEncoder
from backend.models.encoder_values import MSG_NOT_BINARY, MSG_NOT_NUMBER, category_key, infer_kind


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def _frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    income = rng.lognormal(10, 0.5, n)
    income[rng.random(n) < 0.1] = np.nan
    delinq = np.where(y == 1, rng.integers(1, 30, n), rng.integers(1, 60, n)).astype(float)
    delinq[(y == 0) & (rng.random(n) < 0.7)] = np.nan  # missing = never delinquent: informative
    frame = pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(18, 80, n),
            "records": rng.choice(["yes", "no", "YES", " no "], n),
            "flag": rng.integers(0, 2, n),
            "is_owner": rng.random(n) < 0.5,
            "home": rng.choice(["rent", "owner", "parents", None], n, p=[0.4, 0.4, 0.15, 0.05]),
            "months_since_delinq": delinq,
        }
    )
    return frame, y


def test_inferred_kinds():
    frame, y = _frame()
    enc = FeatureEncoder().fit(frame, y)
    assert enc.kinds_ == {
        "income": "numeric",
        "age": "integer",
        "records": "binary",
        "flag": "binary",
        "is_owner": "binary",
        "home": "categorical",
        "months_since_delinq": "integer",
    }
    assert infer_kind(pd.Series(["1.5", "2", None])) == "numeric"
    assert infer_kind(pd.Series(["individual", "joint"])) == "categorical"


def test_one_float_column_per_feature_without_nan():
    frame, y = _frame()
    X = FeatureEncoder().fit(frame, y).transform(frame)
    assert X.shape == (len(frame), frame.shape[1])
    assert X.dtype == np.float64
    assert np.isfinite(X).all()


def test_binary_tokens_and_booleans():
    frame, y = _frame()
    enc = FeatureEncoder().fit(frame, y)
    X = enc.transform(frame)
    j = enc.columns_.index("records")
    expected = frame["records"].str.strip().str.lower().eq("yes").astype(float)
    np.testing.assert_array_equal(X[:, j], expected)
    np.testing.assert_array_equal(X[:, enc.columns_.index("is_owner")], frame["is_owner"].astype(float))


def test_missing_policy_is_learned_per_column():
    frame, y = _frame()
    enc = FeatureEncoder().fit(frame, y)
    assert enc.missing_policy_["months_since_delinq"] == "sentinel"  # missingness predicts the target
    assert enc.missing_policy_["income"] == "median"  # missing at random
    assert enc.fill_values_["income"] == pytest.approx(np.nanmedian(frame["income"]))
    assert enc.fill_values_["months_since_delinq"] < enc.min_["months_since_delinq"]
    assert FeatureEncoder(missing="median").fit(frame, y).missing_policy_["months_since_delinq"] == "median"
    assert set(FeatureEncoder().fit(frame).missing_policy_.values()) == {"median"}  # no y: median


def test_categories_ordered_by_target_rate_and_unknown_code():
    frame = pd.DataFrame({"c": ["a"] * 10 + ["b"] * 10 + ["c"] * 10})
    y = np.array([1] * 9 + [0] + [0] * 10 + [1] * 5 + [0] * 5)
    enc = FeatureEncoder().fit(frame, y)
    assert enc.categories_["c"] == ["b", "c", "a"]  # rates 0.0, 0.5, 0.9
    X = enc.transform(pd.DataFrame({"c": ["a", "b", "c", "zzz", None]}))
    np.testing.assert_array_equal(X[:, 0], [2, 0, 1, 3, 3])  # unknown and unseen-missing -> 3
    lexical = FeatureEncoder().fit(frame)
    assert lexical.categories_["c"] == ["a", "b", "c"]


def test_missing_category_seen_in_training_has_its_own_code():
    frame, y = _frame()
    enc = FeatureEncoder().fit(frame, y)
    assert MISSING_KEY in enc.categories_["home"]
    code = enc.categories_["home"].index(MISSING_KEY)
    out = enc.transform(pd.DataFrame({**{c: frame[c].iloc[:2] for c in frame}, "home": [None, ""]}))
    assert list(out[:, enc.columns_.index("home")]) == [code, code]


def test_min_frequency_collapses_rare_categories_into_unknown():
    frame = pd.DataFrame({"c": ["a"] * 20 + ["b"] * 20 + ["rare"] * 2})
    enc = FeatureEncoder(min_frequency=5).fit(frame)
    assert enc.categories_["c"] == ["a", "b"]
    assert enc.transform(pd.DataFrame({"c": ["rare"]}))[0, 0] == 2


def test_category_keys_agree_across_types():
    assert category_key(1) == category_key(1.0) == category_key("1") == category_key(np.int64(1)) == "1"
    assert category_key(" x ") == "x"
    assert category_key(float("nan")) is None and category_key("  ") is None and category_key(None) is None


def test_clip_to_training_range():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    enc = FeatureEncoder(clip=True).fit(frame)
    np.testing.assert_array_equal(
        enc.transform(pd.DataFrame({"x": [-5.0, 2.5, 99.0]}))[:, 0], [1.0, 2.5, 3.0]
    )
    assert enc.encode_one({"x": 99})[0] == 3.0
    assert FeatureEncoder().fit(frame).transform(pd.DataFrame({"x": [99.0]}))[0, 0] == 99.0


def test_infinite_values_are_treated_as_missing():
    enc = FeatureEncoder(missing="median").fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    assert enc.transform(pd.DataFrame({"x": [np.inf]}))[0, 0] == 2.0
    assert enc.encode_one({"x": float("-inf")})[0] == 2.0


def test_spec_json_round_trip_gives_identical_output():
    frame, y = _frame()
    enc = FeatureEncoder(clip=True).fit(frame, y)
    spec = json.loads(json.dumps(enc.to_dict(), allow_nan=False))
    again = FeatureEncoder.from_dict(spec)
    np.testing.assert_array_equal(enc.transform(frame), again.transform(frame))
    assert again.to_dict() == enc.to_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_records_single_rows_and_frames_agree_exactly(seed):
    frame, y = _frame(300, seed)
    enc = FeatureEncoder.from_dict(FeatureEncoder().fit(frame, y).to_dict())
    expected = enc.transform(frame)
    records = frame.to_dict("records")
    np.testing.assert_array_equal(enc.transform_records(records), expected)
    np.testing.assert_array_equal(enc.transform_records(frame), expected)
    np.testing.assert_array_equal(np.vstack([enc.encode_one(r) for r in records]), expected)
    np.testing.assert_array_equal(enc.transform_records(records[0]), expected[0])
    # the same values given as strings (as a JSON API might send them)
    as_text = [
        {k: (str(v) if isinstance(v, int | float) and v == v else v) for k, v in r.items()} for r in records
    ]
    np.testing.assert_array_equal(np.vstack([enc.encode_one(r) for r in as_text]), expected)


def test_missing_columns_are_named():
    frame, y = _frame()
    enc = FeatureEncoder().fit(frame, y)
    with pytest.raises(ValueError, match=_exact(MSG_MISSING_COLUMNS.format(names="income, home"))):
        enc.transform(frame.drop(columns=["income", "home"]))
    record = frame.iloc[0].to_dict()
    del record["age"]
    with pytest.raises(ValueError, match=_exact(MSG_MISSING_COLUMNS.format(names="age"))):
        enc.encode_one(record)
    with pytest.raises(ValueError, match=_exact(MSG_MISSING_COLUMNS.format(names="age"))):
        enc.transform_records([record])
    with pytest.raises(ValueError, match=_exact(MSG_MISSING_COLUMNS.format(names="nope"))):
        FeatureEncoder(columns=["nope"]).fit(frame)


def test_bad_values_raise_clear_errors():
    frame, y = _frame()
    enc = FeatureEncoder().fit(frame, y)
    record = frame.iloc[0].to_dict()
    with pytest.raises(ValueError, match=_exact(MSG_NOT_NUMBER.format(column="income", value="lots"))):
        enc.encode_one({**record, "income": "lots"})
    with pytest.raises(ValueError, match=_exact(MSG_NOT_BINARY.format(column="records", value="maybe"))):
        enc.encode_one({**record, "records": "maybe"})
    with pytest.raises(ValueError, match=_exact(MSG_NOT_BINARY.format(column="flag", value=2))):
        enc.transform(frame.assign(flag=2))
    with pytest.raises(ValueError, match=_exact(MSG_NOT_BINARY.format(column="flag", value=2))):
        enc.encode_one({**record, "flag": 2})
    with pytest.raises(ValueError, match=_exact(MSG_NOT_FITTED)):
        FeatureEncoder().transform(frame)
    with pytest.raises(TypeError):
        enc.transform(frame.to_numpy())


def test_estimator_contract_and_pipeline():
    frame, y = _frame()
    enc = FeatureEncoder(columns=["income", "home"], clip=True)
    assert clone(enc).get_params() == enc.get_params()
    assert not hasattr(enc, "columns_")  # __init__ only stores parameters
    pipe = Pipeline([("encode", enc), ("model", LogisticRegression())]).fit(frame, y)
    assert pipe.predict_proba(frame).shape == (len(frame), 2)
    assert list(pipe.named_steps["encode"].get_feature_names_out()) == ["income", "home"]


SHAPES = {  # issue 19: a kind of column with one member or none made the fitted encoder unpicklable
    "numeric only, no string column": {"income": [1.5, 2.0, None, 4.0, 5.5, 6.0], "age": [20, 30, 40, 50, 60, 70]},
    "one numeric, no categorical": {"income": [1.5, 2.0, None, 4.0, 5.5, 6.0]},
    "yes/no only": {"owner": ["yes", "no", "no", "yes", None, "yes"]},
    "exactly one categorical": {"income": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "home": ["a", "b", "a", "c", None, "b"]},
    "categorical only": {"home": ["a", "b", "a", "c", None, "b"]},
    "two categoricals, one numeric": {"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "home": list("abacab"),
                                      "city": list("xyzxyz")},
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("via", ["pickle", "joblib", "clone-then-fit"])
def test_fitted_encoder_pickles_for_every_mix_of_kinds(shape, via, tmp_path):
    import pickle

    import joblib

    frame = pd.DataFrame(SHAPES[shape])
    y = np.array([0, 1, 0, 1, 1, 0])
    enc = FeatureEncoder().fit(frame, y)
    record = {c: frame[c].iloc[1] for c in frame.columns}
    before = enc.encode_one(record)  # the fast path built its getters before pickling
    if via == "pickle":
        back = pickle.loads(pickle.dumps(enc))
    elif via == "joblib":
        joblib.dump(Pipeline([("encode", enc), ("model", LogisticRegression())]).fit(frame, y), tmp_path / "p.joblib")
        back = joblib.load(tmp_path / "p.joblib").named_steps["encode"]
    else:
        back = pickle.loads(pickle.dumps(clone(enc).fit(frame, y)))
    assert "_fast" not in back.__getstate__()  # derived tables are rebuilt, never pickled
    np.testing.assert_array_equal(back.encode_one(record), before)
    np.testing.assert_array_equal(back.transform(frame), enc.transform(frame))
    assert back.to_dict() == enc.to_dict()
