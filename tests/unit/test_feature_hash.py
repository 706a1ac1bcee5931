"""The features hash (backend/scoring/result.py) is the blake2b of ``repr(tuple(clean.items()))``: the text
stored hashes in audit payloads were made from. Its faster form must give the same text for any dict."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.scoring.result import feature_hash


def _reference(clean: dict[Any, Any]) -> str:
    return hashlib.blake2b(repr(tuple(clean.items())).encode(), digest_size=20).hexdigest()


class Loud(str):
    def __repr__(self) -> str:  # a str subclass equal to a plain key with another repr
        return "Loud(" + super().__repr__() + ")"


AWKWARD = [
    {}, {"a": 1}, {"a": None}, {1: 2}, {True: 2}, {1.0: 2}, {Loud("a"): 1}, {"a": 1, Loud("b"): 2},
    {"{}": "{}"}, {"{0}": "{!r}", "}{": "{{"}, {"a": "}"}, {"it's": 'say "x"'}, {"ﬁ": "ﬁ", "é": "e\u0301"},
    {"a": float("nan"), "b": float("inf"), "c": -0.0, "d": 1e16, "e": 1e-7, "f": 10**30},
    {"loan_amount": 25_000.0, "home_ownership": "RENT", "dti": 0.1 + 0.2},
]


def test_awkward_dicts_hash_as_before() -> None:
    for clean in AWKWARD:
        assert feature_hash(clean) == _reference(clean), clean
    # the cache of key orders does not mix up keys that are equal but print differently
    assert feature_hash({1: 2}) != feature_hash({True: 2}) != feature_hash({1.0: 2})
    assert feature_hash({"a": 1}) != feature_hash({Loud("a"): 1})


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.floats(allow_nan=False)), SCALARS,
                       max_size=12))
def test_any_dict_hashes_as_before(clean: dict[Any, Any]) -> None:
    assert feature_hash(clean) == _reference(clean)


def test_the_catalogue_row_hashes_as_before() -> None:
    from backend.domain.features import FEATURE_NAMES

    row = {name: (i * 1.37 if i % 3 else (None if i % 2 else f"v{i}")) for i, name in enumerate(FEATURE_NAMES)}
    assert feature_hash(row) == _reference(row)
    row[FEATURE_NAMES[0]] = math.pi
    assert feature_hash(row) == _reference(row)
