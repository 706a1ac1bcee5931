"""Compiled ensembles (backend.models.compiled) against scikit-learn / imbalanced-learn and shap."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from imblearn.ensemble import BalancedRandomForestClassifier, EasyEnsembleClassifier
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier

from backend.models.compiled import (
    INVALID_ARRAYS,
    NO_BACKGROUND,
    NON_FINITE,
    ForestEnsemble,
    StumpEnsemble,
    compile_estimator,
    from_arrays,
)

P = 93
FIDELITY = 1e-9


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=6000,
        n_features=P,
        n_informative=12,
        n_redundant=8,
        weights=[0.95],
        random_state=7,
    )
    return X[:5000], y[:5000], X[5000:]


@pytest.fixture(scope="module")
def easy(data):
    X, y, _ = data
    return EasyEnsembleClassifier(n_estimators=10, random_state=0, n_jobs=1).fit(X, y)


@pytest.fixture(scope="module")
def forest(data):
    X, y, _ = data
    return BalancedRandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1).fit(X, y)


@pytest.fixture(scope="module")
def stumps(easy, data):
    compiled = compile_estimator(easy)
    compiled.set_background(data[0][:100])
    return compiled


@pytest.fixture(scope="module")
def trees(forest):
    return compile_estimator(forest)


def _roundtrip(model):
    buf = io.BytesIO()
    np.savez(buf, **model.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        return from_arrays(npz)


def _bag_decisions(easy, X):
    """Reference per-bag log-odds: sklearn's AdaBoost decision_function on the bag's columns."""
    return np.column_stack(
        [bag[-1].decision_function(X[:, f]) for bag, f in zip(easy.estimators_, easy.estimators_features_)]
    )


# ------------------------------------------------------------------------------- fidelity
def test_stump_batch_matches_sklearn(easy, stumps, data):
    X_test = data[2]
    reference = easy.predict_proba(X_test)[:, 1]
    assert isinstance(stumps, StumpEnsemble) and stumps.n_features == P
    assert np.abs(stumps.predict_proba(X_test) - reference).max() <= FIDELITY
    members = stumps.member_probas(X_test)
    expected = np.column_stack(
        [b.predict_proba(X_test[:, f])[:, 1] for b, f in zip(easy.estimators_, easy.estimators_features_)]
    )
    assert members.shape == (len(X_test), 10)
    assert np.abs(members - expected).max() <= FIDELITY
    margin = _bag_decisions(easy, X_test).mean(axis=1)
    assert np.abs(stumps.margin(X_test) - margin).max() <= FIDELITY


def test_stump_single_row_matches_batch(easy, stumps, data):
    X_test = data[2][:200]
    reference = easy.predict_proba(X_test)[:, 1]
    phi_b, base_b = stumps.attributions(X_test)
    margin_b = stumps.margin(X_test)
    members_b = stumps.member_probas(X_test)
    for i, x in enumerate(X_test):
        proba, margin, phi, members = stumps.score_one(x)
        assert abs(proba - reference[i]) <= FIDELITY
        assert margin == pytest.approx(margin_b[i], abs=1e-12)
        np.testing.assert_allclose(phi, phi_b[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(members, members_b[i], rtol=0, atol=1e-12)
        assert base_b[i] + phi.sum() == pytest.approx(margin, abs=FIDELITY)


def test_forest_matches_sklearn(forest, trees, data):
    X_test = data[2]
    reference = forest.predict_proba(X_test)[:, 1]
    assert isinstance(trees, ForestEnsemble)
    assert np.abs(trees.predict_proba(X_test) - reference).max() <= FIDELITY
    np.testing.assert_array_equal(trees.margin(X_test), trees.predict_proba(X_test))
    members = np.column_stack([t.predict_proba(X_test)[:, 1] for t in forest.estimators_])
    assert np.abs(trees.member_probas(X_test) - members).max() <= FIDELITY
    for i in range(0, len(X_test), 50):
        proba, margin, phi, tree_probas = trees.score_one(X_test[i])
        assert abs(proba - reference[i]) <= FIDELITY and margin == proba
        assert np.abs(tree_probas - members[i]).max() <= FIDELITY


def test_float32_rounding_at_thresholds(easy, stumps, data):
    """Values just around a stored threshold fall on the same side as in sklearn."""
    arrays = stumps.to_arrays()
    X = np.repeat(data[2][:1], 6, axis=0)
    j = int(arrays["feature_index"][0])
    t = arrays["thresholds"][0]
    X[:, j] = [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), float(np.float32(t)), t + 1e-9, t - 1e-9]
    assert np.abs(stumps.predict_proba(X) - easy.predict_proba(X)[:, 1]).max() <= FIDELITY


# ------------------------------------------------------------------------------- arrays
@pytest.mark.parametrize("name", ["stumps", "trees"])
def test_round_trip_through_npz(name, request, data):
    model = request.getfixturevalue(name)
    arrays = model.to_arrays()
    assert all(a.dtype != object and np.issubdtype(a.dtype, np.number) for a in arrays.values())
    loaded = _roundtrip(model)
    assert type(loaded) is type(model) and loaded.kind == model.kind
    X_test = data[2][:300]
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    phi, base = loaded.attributions(X_test[:20])
    phi0, base0 = model.attributions(X_test[:20])
    np.testing.assert_array_equal(phi, phi0)
    np.testing.assert_array_equal(base, base0)


def _stump_corruptions():
    def set_(key, value):
        return lambda a: a.__setitem__(key, value(a))

    return {
        "missing table": lambda a: a.pop("table"),
        "float32 thresholds": set_("thresholds", lambda a: a["thresholds"].astype(np.float32)),
        "table rows": set_("table", lambda a: a["table"][:-1]),
        "bag count": set_("bias", lambda a: np.append(a["bias"], 0.0)),
        "feature out of range": set_("feature_index", lambda a: a["feature_index"] + P),
        "unsorted thresholds": set_("thresholds", lambda a: a["thresholds"][::-1].copy()),
        "offsets": set_("threshold_offsets", lambda a: a["threshold_offsets"] + 1),
        "nan table": set_("table", lambda a: np.where(a["table"] == a["table"][0, 0], np.nan, a["table"])),
        "weight sum": set_("weight_sum", lambda a: -a["weight_sum"]),
        "background shape": set_("background_h_mean", lambda a: a["background_h_mean"][:-1]),
        "format version": set_("format_version", lambda a: np.array(99, dtype=np.int64)),
        "n_features": set_("n_features", lambda a: np.array(0, dtype=np.int64)),
    }


def _forest_corruptions():
    def set_(key, value):
        return lambda a: a.__setitem__(key, value(a))

    def cycle(a):
        left = a["children_left"].copy()
        left[np.flatnonzero(left != -1)[3]] = 0
        return left

    return {
        "missing cover": lambda a: a.pop("cover"),
        "int32 children": set_("children_left", lambda a: a["children_left"].astype(np.int32)),
        "child points back": set_("children_left", cycle),
        "child outside tree": set_(
            "children_right", lambda a: np.where(a["children_right"] > 0, a["children_right"] + 10**6, -1)
        ),
        "half leaf": set_(
            "children_right",
            lambda a: np.where(np.arange(a["children_right"].size) == 0, -1, a["children_right"]),
        ),
        "feature out of range": set_("feature", lambda a: np.where(a["feature"] >= 0, a["feature"] + P, -1)),
        "value above one": set_("value", lambda a: a["value"] + 2.0),
        "zero cover": set_("cover", lambda a: a["cover"] * 0.0),
        "offsets": set_("tree_offsets", lambda a: a["tree_offsets"][:-1]),
        "lengths": set_("threshold", lambda a: a["threshold"][:-1]),
    }


@pytest.mark.parametrize("case", sorted(_stump_corruptions()))
def test_stump_from_arrays_rejects_corruption(stumps, case):
    arrays = stumps.to_arrays()
    _stump_corruptions()[case](arrays)
    with pytest.raises(ValueError, match=INVALID_ARRAYS):
        from_arrays(arrays)


@pytest.mark.parametrize("case", sorted(_forest_corruptions()))
def test_forest_from_arrays_rejects_corruption(trees, case):
    arrays = trees.to_arrays()
    _forest_corruptions()[case](arrays)
    with pytest.raises(ValueError, match=INVALID_ARRAYS):
        from_arrays(arrays)


def test_kind_mismatch_and_unknown_kind(stumps, trees):
    with pytest.raises(ValueError, match=INVALID_ARRAYS):
        ForestEnsemble.from_arrays(stumps.to_arrays())
    with pytest.raises(ValueError, match=INVALID_ARRAYS):
        StumpEnsemble.from_arrays(trees.to_arrays())
    arrays = stumps.to_arrays()
    arrays["kind"] = np.frombuffer(b"pickle", dtype=np.uint8).copy()
    with pytest.raises(ValueError, match=INVALID_ARRAYS):
        from_arrays(arrays)


def test_bad_inputs(stumps, trees, data):
    X = data[2][:5].copy()
    X[3, 50] = np.nan
    for model in (stumps, trees):
        with pytest.raises(ValueError, match=NON_FINITE):
            model.predict_proba(X)
        with pytest.raises(ValueError, match=NON_FINITE):
            model.score_one(np.where(np.arange(P) == 7, np.inf, X[0]))
        with pytest.raises(ValueError):
            model.predict_proba(X[:, :-1])
    fresh = from_arrays({k: v for k, v in stumps.to_arrays().items() if k != "background_h_mean"})
    with pytest.raises(RuntimeError, match=re.escape(NO_BACKGROUND)):
        fresh.attributions(X[:2])


# ------------------------------------------------------------------------------- attributions
def test_stump_attributions_are_additive(stumps, data):
    X_test = data[2]
    phi, base = stumps.attributions(X_test)
    assert phi.shape == (len(X_test), P) and base.shape == (len(X_test),)
    assert np.abs(base + phi.sum(axis=1) - stumps.margin(X_test)).max() <= FIDELITY
    unused = np.setdiff1d(np.arange(P), stumps.to_arrays()["feature_index"])
    assert unused.size > 0 and np.all(phi[:, unused] == 0.0)
    assert base[0] == pytest.approx(stumps.margin(data[0][:100]).mean(), abs=FIDELITY)


def test_stump_attributions_match_shap_permutation(stumps, data):
    shap = pytest.importorskip("shap")
    background = data[0][:100]
    masker = shap.maskers.Independent(background, max_samples=100)
    explainer = shap.explainers.Permutation(stumps.margin, masker)
    rows = data[2][:4]
    explanation = explainer(rows, max_evals=2 * P + 1, silent=True)
    phi, base = stumps.attributions(rows)
    assert np.abs(explanation.values - phi).max() <= 1e-6
    assert np.abs(explanation.base_values - base).max() <= 1e-6


def test_forest_treeshap_matches_shap(forest, trees, data):
    shap = pytest.importorskip("shap")
    rows = data[2][:25]
    explainer = shap.TreeExplainer(forest, feature_perturbation="tree_path_dependent")
    expected = np.asarray(explainer.shap_values(rows))[..., 1]
    phi, base = trees.attributions(rows)
    assert np.abs(phi - expected).max() <= 1e-6
    assert np.abs(base - np.atleast_1d(explainer.expected_value)[-1]).max() <= 1e-6
    assert np.abs(base + phi.sum(axis=1) - trees.predict_proba(rows)).max() <= FIDELITY
    _, _, phi_one, _ = trees.score_one(rows[3])
    assert np.abs(phi_one - phi[3]).max() <= 1e-12


# ------------------------------------------------------------------------------- edge cases
def test_early_stopped_bags_match_sklearn():
    """A perfectly separating feature stops every AdaBoost after one stump (other weights zero)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 6))
    y = (X[:, 2] > 1.2).astype(int)
    model = EasyEnsembleClassifier(n_estimators=4, random_state=1, n_jobs=1).fit(X, y)
    assert all(len(bag[-1].estimators_) < 50 for bag in model.estimators_)
    compiled = compile_estimator(model)
    X_test = rng.normal(size=(500, 6))
    assert np.abs(compiled.predict_proba(X_test) - model.predict_proba(X_test)[:, 1]).max() <= FIDELITY


def test_surgery_edge_cases_match_sklearn(data):
    """Truncated and zero-weight estimators, leaf-only stumps and permuted bag features."""
    X, y, X_test = data
    model = EasyEnsembleClassifier(n_estimators=4, random_state=5, n_jobs=1).fit(X[:1500], y[:1500])
    ada0, ada1, ada2 = (model.estimators_[b][-1] for b in range(3))
    ada0.estimators_ = ada0.estimators_[:7]
    ada0.estimator_weights_[7:] = 0.0
    ada1.estimator_weights_[[0, 4, 9]] = 0.0
    leaf = DecisionTreeClassifier(max_depth=1).fit(
        np.zeros((20, P)), np.r_[np.ones(15), np.zeros(5)].astype(int)
    )
    assert leaf.tree_.node_count == 1
    ada2.estimators_[3] = leaf
    model.estimators_features_[3] = np.random.default_rng(0).permutation(P)
    compiled = compile_estimator(model)
    assert np.abs(compiled.predict_proba(X_test) - model.predict_proba(X_test)[:, 1]).max() <= FIDELITY
    margin = _bag_decisions(model, X_test).mean(axis=1)
    assert np.abs(compiled.margin(X_test) - margin).max() <= FIDELITY


def test_compile_rejects_deeper_trees(data):
    X, y, _ = data
    deep = EasyEnsembleClassifier(
        n_estimators=2, estimator=_adaboost(DecisionTreeClassifier(max_depth=2)), random_state=0, n_jobs=1
    ).fit(X[:800], y[:800])
    with pytest.raises(ValueError, match="deeper than a stump"):
        compile_estimator(deep)
    with pytest.raises(TypeError):
        compile_estimator(DecisionTreeClassifier())


def _adaboost(tree):
    from sklearn.ensemble import AdaBoostClassifier

    return AdaBoostClassifier(estimator=tree, n_estimators=5)
