"""validate_many (the batch path of scoring) gives exactly what validate_application gives, row by row."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from backend.domain.features import FEATURES
from backend.domain.validation import ApplicationInvalid, validate_application, validate_many
from backend.training.synthetic import generate

COLUMNS = [f.name for f in FEATURES]
KINDS = {f.name: f.kind for f in FEATURES}
IGNORE = ("sex", "age_band", "race_ethnicity", "application_id", "applicant_id", "applied_at", "default", "pd_true",
          "bureau_key_factors")  # carried beside the features (the notice), never one of them


def _rows(n: int = 400) -> list[dict]:
    df = generate(n, seed=5)
    values = df.to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return [dict(zip(df.columns, r, strict=True)) for r in values]


def _one(rows: list[dict]) -> list[dict]:
    return [validate_application(r, columns=COLUMNS, kinds=KINDS, ignore_extra=IGNORE) for r in rows]


def _many(rows: list[dict]) -> list[dict]:
    return validate_many(rows, columns=COLUMNS, kinds=KINDS, ignore_extra=IGNORE)


def test_same_values_and_types_as_one_at_a_time():
    rows = _rows()
    many, one = _many(rows), _one(rows)
    assert many == one
    assert [[type(v) for v in r.values()] for r in many] == [[type(v) for v in r.values()] for r in one]


@pytest.mark.parametrize("field,value", [
    ("loan_amount", -5.0), ("loan_amount", None), ("loan_amount", math.nan), ("loan_amount", True),
    ("loan_amount", "12000"), ("num_inquiries_6m", 1.5), ("home_ownership", "castle"), ("home_ownership", " "),
    ("surprise", 1), ("sex", "F"),
])
def test_a_bad_row_raises_what_one_at_a_time_raises(field, value):
    rows = _rows(100)
    bad = dict(rows[37])
    bad[field] = value
    rows[37] = bad
    try:
        expected = _one(rows)
    except ApplicationInvalid as exc:
        with pytest.raises(ApplicationInvalid) as got:
            _many(rows)
        assert str(got.value) == str(exc)
    else:  # accepted one at a time (e.g. a protected attribute passed through): accepted in a batch too
        assert _many(rows) == expected
