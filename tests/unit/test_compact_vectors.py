"""Catalogue vectors (headers 3 and 4 of backend/platform/db/compact.py, migration 0020): a features or
attributions dict keyed by exactly the frozen catalogue names is stored without its keys and reads back as the
same dict, bit for bit and in order; anything that is not exactly such a dict takes the general header."""

from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.domain.features import FEATURE_NAMES, FEATURES
from backend.platform.db import compact

NAMES_V1_SHA256 = "5193de6494cf95d2d496e019128fda87b4c5b183d9e36c9d4f1fcb269d5886bb"


def _bits(value: object) -> object:
    """A value with every float replaced by its 8 bytes (so -0.0 != 0.0), types kept."""
    if isinstance(value, dict):
        return [(k, _bits(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_bits(v) for v in value]
    if type(value) is float:  # (any NaN: JSON text, like every header before, holds no NaN payload or sign)
        return ("nan",) if math.isnan(value) else ("f", struct.pack("<d", value))
    return (type(value).__name__, value)


def _same(a: object, b: object) -> bool:
    return _bits(a) == _bits(b)


def _attributions(seed: int, nonzero: int = 20) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    phi = np.zeros(len(FEATURE_NAMES))
    idx = rng.choice(len(FEATURE_NAMES), nonzero, replace=False)
    phi[idx] = rng.normal(0, 0.05, nonzero) * rng.choice([1, 1e-3, 1e-6, 1e-9], nonzero)
    return dict(zip(FEATURE_NAMES, np.round(phi, 8).tolist(), strict=True))  # as the scoring service rounds


def _features(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {}
    for i, f in enumerate(FEATURES):
        r = rng.random()
        out[f.name] = (None if r < 0.05 else "full_time" if f.kind == "categorical" else int(rng.integers(0, 99))
                       if r < 0.5 else round(float(rng.normal(1e4, 5e3)), 2) if r < 0.75 else float(rng.random()) * i)
    return out


def test_the_names_are_frozen_and_are_the_catalogue():
    """Stored vectors depend on the file's bytes; a changed catalogue needs a new file and headers, never an edit
    (until then its rows take the general header, which this test makes a deliberate choice)."""
    raw = (compact.Path(compact.__file__).with_name("vector_v1.names")).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == NAMES_V1_SHA256
    assert compact.vector_names() == FEATURE_NAMES and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(0 < h < 0x09 and h not in compact.HEADERS for h in compact.VECTORS)


@pytest.mark.parametrize("seed", range(6))
def test_scored_attributions_are_integers_of_the_non_zero_values(seed):
    value = _attributions(seed)
    raw = compact.dumps(value)
    assert raw[0] == compact.VECTOR_FIXED and len(raw) < 110, len(raw)
    back = compact.loads(raw)
    assert _same(back, value) and list(back) == list(FEATURE_NAMES)
    assert _same(json.loads(compact.json_text(raw)), value)


def test_negative_zero_tiny_and_large_values_keep_their_bits():
    value = dict.fromkeys(FEATURE_NAMES, 0.0)
    value.update({FEATURE_NAMES[0]: -0.0, FEATURE_NAMES[1]: 1e-08, FEATURE_NAMES[2]: -1e-08,
                  FEATURE_NAMES[3]: 12345.67891234, FEATURE_NAMES[93]: -0.3})
    raw = compact.dumps(value)
    assert raw[0] == compact.VECTOR_FIXED
    back = compact.loads(raw)
    assert _same(back, value) and math.copysign(1.0, back[FEATURE_NAMES[0]]) == -1.0


@pytest.mark.parametrize("odd", [0.1 + 0.2, 5e-324, 1 / 3, 1e15, 1.7976931348623157e308, math.nan, math.inf,
                                 -math.inf, 1e-11])
def test_a_float_with_more_decimals_or_none_at_all_takes_the_list_header(odd):
    value = dict.fromkeys(FEATURE_NAMES, 0.0)
    value[FEATURE_NAMES[5]] = odd
    raw = compact.dumps(value)
    assert raw[0] == (compact.VECTOR_LIST if math.isfinite(odd) else compact.VECTOR_TEXT)
    assert _same(compact.loads(raw), value)
    text = compact.json_text(raw)
    assert _same(json.loads(text), value)  # NaN and infinity as the standard library writes them


@pytest.mark.parametrize("odd", [0, 1, True, False, None, "0.0", 2**64, -(2**70), [0.5], {"a": 0.5}, "\ud800x",
                                 "Ηome \u202e", "a\x00b", "\U0001f4b8"])
def test_other_types_in_a_catalogue_dict_read_back_as_themselves(odd):
    """An integer 0 is not 0.0, True is not 1.0: header 4 takes floats only; the list keeps any JSON."""
    value = _attributions(1)
    value[FEATURE_NAMES[7]] = odd
    raw = compact.dumps(value)
    # (the standard library writes an integer past 64 bits and a lone surrogate, and reads them: header 5)
    assert raw[0] == (compact.VECTOR_TEXT if odd in (2**64, -(2**70), "\ud800x") else compact.VECTOR_LIST)
    back = compact.loads(raw)
    assert _same(back, value)
    assert _same(json.loads(compact.json_text(raw)), value)


@pytest.mark.parametrize("seed", range(4))
def test_a_features_row_is_its_values_only(seed):
    value = _features(seed)
    raw, general = compact.dumps(value), compact.dumps(value, vectors=False)
    assert raw[0] == compact.VECTOR_LIST and general[0] == compact.CURRENT
    assert len(raw) < len(general) * 0.8, (len(raw), len(general))
    assert _same(compact.loads(raw), value) and _same(compact.loads(general), value)


class _Subclass(dict):
    pass


@pytest.mark.parametrize("change", ["reordered", "missing", "extra", "renamed", "look-alike", "subclass"])
def test_anything_but_the_exact_catalogue_keys_takes_the_general_header(change):
    value = _attributions(2)
    names = list(value)
    if change == "reordered":
        value = dict(zip([names[1], names[0], *names[2:]], [value[names[1]], value[names[0]], *list(value.values())[2:]],
                         strict=True))
    elif change == "missing":
        del value[names[-1]]
    elif change == "extra":
        value["zzz"] = 0.0
    elif change == "renamed":
        value = {(k.upper() if i == 3 else k): v for i, (k, v) in enumerate(value.items())}
    elif change == "look-alike":  # a Cyrillic "о" in one name
        value = {(k.replace("o", "\u043e", 1) if i == 9 else k): v for i, (k, v) in enumerate(value.items())}
    else:
        value = _Subclass(value)
    raw = compact.dumps(value)
    assert raw[0] == compact.CURRENT
    back = compact.loads(raw)
    assert _same(back, dict(value)) and list(back) == list(value)


def test_corrupt_vectors_fail_loudly():
    good = compact.dumps(_attributions(3))
    width = (len(FEATURE_NAMES) + 7) // 8
    past_names = bytes((compact.VECTOR_FIXED, 8)) + (1 << (len(FEATURE_NAMES) + 1)).to_bytes(width, "little") + b"\x02"
    for bad in (good[:-1], good + b"\x00", good[:1], good[:2] + good[2:5],
                bytes((compact.VECTOR_FIXED, 7)) + good[2:], past_names,
                good[:-1] + bytes((good[-1] | 0x80,))):
        with pytest.raises(compact.CompactJSONError, match="corrupt"):
            compact.loads(bad)
    listed = compact.dumps(_features(0))
    short = compact.dumps([1, 2, 3])  # a list of the wrong length under header 3
    for bad in (listed[:-4], bytes((compact.VECTOR_LIST,)) + short[1:], listed + b"\x01"):
        with pytest.raises(compact.CompactJSONError, match="corrupt"):
            compact.loads(bad)


_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                          st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON_SCALARS, min_size=len(FEATURE_NAMES), max_size=len(FEATURE_NAMES)))
def test_any_values_round_trip(values):
    value = dict(zip(FEATURE_NAMES, values, strict=True))
    raw = compact.dumps(value)
    assert raw[0] in compact.VECTORS
    assert _same(compact.loads(raw), value)
    assert _same(json.loads(compact.json_text(raw)), value)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.just(-0.0), st.floats(min_value=-1e6, max_value=1e6).map(
    lambda x: round(x, 8)), st.integers(-10**9, 10**9).map(lambda n: n / 10**10)),
    min_size=len(FEATURE_NAMES), max_size=len(FEATURE_NAMES)))
def test_rounded_floats_take_the_fixed_header_and_keep_their_bits(values):
    value = dict(zip(FEATURE_NAMES, values, strict=True))
    raw = compact.dumps(value)
    assert raw[0] == compact.VECTOR_FIXED
    assert _same(compact.loads(raw), value)
