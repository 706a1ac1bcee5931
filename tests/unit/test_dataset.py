"""Loading users' training files: kinds, dropped columns, protected attributes, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.training import dataset as ds
from backend.training.dataset import DatasetError, from_schema, from_synthetic, load_dataset, load_schema


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(n)],
            "row": np.arange(n),
            "Status": rng.choice(["good", "bad"], n, p=[0.7, 0.3]),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(8, 0.4, n)),
            "records": rng.choice(["yes", "no"], n),
            "flag": rng.integers(0, 2, n),
            "home": rng.choice(["rent", "owner", None], n),
            "constant": 7,
            "opened": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "note": [f"free text {i % 150}" for i in range(n)],
            "sex": rng.choice(["f", "m"], n),
            "age": rng.integers(18, 80, n),
        }
    )


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    return path


def _error(path, **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_kinds_drops_and_protected(csv):
    d = load_dataset(csv, target="Status", positive="bad", protected="sex, age")
    assert d.kinds == {"income": "numeric", "records": "binary", "flag": "binary", "home": "categorical"}
    assert d.dropped == {
        "loan_id": "ID-like (unique per row)",
        "row": "ID-like (unique per row)",
        "constant": "constant",
        "opened": "datetime",
        "note": "free text (150 distinct values)",
    }
    assert list(d.protected.columns) == ["sex", "age"]
    assert not {"sex", "age", "Status"} & set(d.features)
    raw = pd.read_csv(csv)
    np.testing.assert_array_equal(d.y, (raw["Status"] == "bad").astype(int))
    assert d.positive == ["bad"]
    assert len(d.sha256) == 64
    summary = d.summary()
    assert summary["rows"] == len(raw) and summary["protected"] == ["sex", "age"]


def test_exclude_and_kind_overrides(csv):
    d = load_dataset(csv, target="Status", positive="bad", exclude=["income"], kinds={"flag": "integer"})
    assert "income" not in d.features and d.dropped["income"] == "excluded"
    assert d.kinds["flag"] == "integer"


def test_positive_values_and_default_01_targets(tmp_path):
    frame = _frame()
    frame["grade"] = np.resize(["A", "B", "C", "D"], len(frame))
    d = load_dataset(frame, target="grade", positive=["C", "D"])
    np.testing.assert_array_equal(d.y, frame["grade"].isin(["C", "D"]).astype(int))
    assert load_dataset(frame, target="grade", positive="C,D").positive == ["C", "D"]
    frame["bad"] = (frame["Status"] == "bad").astype(int)
    np.testing.assert_array_equal(load_dataset(frame, target="bad").y, frame["bad"])
    frame["bad_bool"] = frame["Status"] == "bad"
    np.testing.assert_array_equal(load_dataset(frame, target="bad_bool").y, frame["bad"])
    frame["bad_float"] = frame["bad"].astype(float)
    np.testing.assert_array_equal(load_dataset(frame, target="bad_float", positive=1).y, frame["bad"])


def test_rows_without_target_are_dropped():
    frame = _frame()
    frame.loc[:9, "Status"] = None
    assert len(load_dataset(frame, target="Status", positive="bad").y) == len(frame) - 10


def test_missing_target(csv):
    columns = ", ".join(pd.read_csv(csv).columns)
    assert _error(csv, target="default") == ds.MSG_MISSING_TARGET.format(target="default", columns=columns)


def test_single_class(tmp_path):
    frame = _frame().assign(Status="good")
    msg = _error(frame, target="Status", positive="good")
    assert msg == ds.MSG_SINGLE_CLASS.format(target="Status", value="'good'")


def test_unknown_positive_lists_observed_values(csv):
    msg = _error(csv, target="Status", positive="Terrible")
    assert msg == ds.MSG_UNKNOWN_POSITIVE.format(positive="'Terrible'", target="Status", observed="'bad', 'good'")
    assert load_dataset(csv, target="Status", positive="BAD").positive == ["bad"]  # case is forgiven


def test_positive_needed_for_non_binary_target(csv):
    msg = _error(csv, target="Status")
    assert msg == ds.MSG_NEED_POSITIVE.format(target="Status", observed="'bad', 'good'")


@pytest.mark.parametrize("option", ["protected", "exclude"])
def test_unknown_columns(csv, option):
    columns = ", ".join(pd.read_csv(csv).columns)
    msg = _error(csv, target="Status", positive="bad", **{option: "sex,Gender,zip"})
    assert msg == ds.MSG_UNKNOWN_COLUMNS.format(option=option, names="Gender, zip", columns=columns)


def test_target_cannot_be_protected(csv):
    msg = _error(csv, target="Status", positive="bad", protected="Status")
    assert msg == ds.MSG_TARGET_REUSED.format(target="Status", option="protected")


def test_too_few_of_a_class():
    frame = _frame()
    frame["Status"] = "good"
    frame.loc[:2, "Status"] = "bad"
    msg = _error(frame, target="Status", positive="bad")
    assert msg == ds.MSG_TOO_FEW.format(target="Status", count=3, label=1, minimum=ds.MIN_CLASS_COUNT)


def test_no_usable_features():
    frame = _frame()[["loan_id", "Status", "constant"]]
    msg = _error(frame, target="Status", positive="bad")
    assert msg == ds.MSG_NO_FEATURES.format(dropped="loan_id (ID-like (unique per row)), constant (constant)")


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert _error(empty, target="x") == ds.MSG_EMPTY.format(path=empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,Status\n")
    assert _error(header_only, target="Status") == ds.MSG_EMPTY.format(path=header_only)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "data.parquet"
    bad.write_bytes(b"\x00\x01 definitely not parquet \xff" * 10)
    msg = _error(bad, target="x")
    assert msg.startswith(ds.MSG_UNREADABLE.format(path=bad, reason="")[:-1])
    gone = tmp_path / "nope.csv"
    assert _error(gone, target="x") == ds.MSG_NOT_FOUND.format(path=gone)
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"x")
    assert _error(other, target="x") == ds.MSG_FORMAT.format(suffix=".xlsx", path=other)


def test_parquet_and_dataframe_inputs(tmp_path):
    frame = _frame()
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    a = load_dataset(path, target="Status", positive="bad")
    b = load_dataset(frame, target="Status", positive="bad")
    assert a.kinds == b.kinds
    pd.testing.assert_frame_equal(a.X, b.X)


def test_yaml_schema(tmp_path):
    _frame().to_csv(tmp_path / "train.csv", index=False)
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "data: train.csv\ntarget: Status\npositive: bad\nprotected: [sex]\nexclude: [age]\nkinds: {flag: integer}\n"
    )
    d = from_schema(schema)
    assert (
        list(d.protected.columns) == ["sex"]
        and d.dropped["age"] == "excluded"
        and d.kinds["flag"] == "integer"
    )
    assert load_schema(schema)["data"] == tmp_path / "train.csv"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("target: Status\ncolour: blue\n", "unknown key(s) colour"),
        ("data: x.csv\n", "'target' (a column name) is required"),
        ("target: Status\nkinds: [a]\n", "'kinds' must map column names to kinds"),
        ("target: [unclosed\n", "ParserError"),
    ],
)
def test_bad_schema(tmp_path, text, reason):
    schema = tmp_path / "schema.yaml"
    schema.write_text(text)
    with pytest.raises(DatasetError, match=_exact(ds.MSG_SCHEMA.format(path=schema, reason=reason))):
        from_schema(schema)


def test_from_synthetic():
    from backend.domain.features import FEATURE_NAMES, PROTECTED
    from backend.training.synthetic import generate

    df = generate(300, seed=3)
    d = from_synthetic(df)
    assert d.features == list(FEATURE_NAMES)
    assert list(d.protected.columns) == list(PROTECTED)
    assert "pd_true" not in d.features and list(d.extras.columns) == ["pd_true"]
    np.testing.assert_array_equal(d.y, df["default"])
    with pytest.raises(DatasetError):
        from_synthetic(df.drop(columns=["default"]))
