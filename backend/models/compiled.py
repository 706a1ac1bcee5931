# numba's Dispatcher stubs declare ``__call__`` without parameters; calling kernels is fine.
# mypy: disable-error-code="call-arg"
"""Fitted imbalanced-learn ensembles compiled to flat numpy arrays and scored with numba.

Two compiled forms exist, each round-tripping through :meth:`to_arrays` / :meth:`from_arrays`
(plain numeric arrays, ``np.savez``-able, loadable with ``allow_pickle=False``):

* :class:`StumpEnsemble` for ``EasyEnsembleClassifier`` (bags of SAMME AdaBoost stumps);
* :class:`ForestEnsemble` for ``BalancedRandomForestClassifier``.

Both reproduce ``model.predict_proba(X)[:, 1]`` to floating-point rounding (about 1e-16):
inputs are rounded to float32 and compared as ``float32(x) <= threshold`` like scikit-learn's
trees. Inputs must be finite (imputation happens upstream); NaN or inf raise ``ValueError``.
scikit-learn and imbalanced-learn are imported only by :func:`compile_estimator`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backend.models import treeshap
from backend.models.stump_kernels import compress_table, stump_batch, stump_one, stump_phi

__all__ = ["StumpEnsemble", "ForestEnsemble", "compile_estimator", "from_arrays", "INVALID_ARRAYS"]

FORMAT_VERSION = 1
INVALID_ARRAYS = "invalid compiled model arrays"
NO_BACKGROUND = "set_background() must be called before computing attributions"
NON_FINITE = "input contains NaN or infinite values"


def _check_X(X: np.ndarray, n_features: int) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"expected X of shape (n, {n_features}), got {X.shape}")
    return X


def _check_x(x: np.ndarray, n_features: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.shape != (n_features,):
        raise ValueError(f"expected x of shape ({n_features},), got {x.shape}")
    return x


def _finite_or_raise(values: np.ndarray) -> None:
    if np.isnan(values).any():
        raise ValueError(NON_FINITE)


def _invalid(msg: str) -> ValueError:
    return ValueError(f"{INVALID_ARRAYS}: {msg}")


def _get(arrays: Mapping[str, np.ndarray], key: str, dtype: type, ndim: int) -> np.ndarray:
    if key not in arrays:
        raise _invalid(f"missing array {key!r}")
    a = np.asarray(arrays[key])
    if a.dtype != np.dtype(dtype) or a.ndim != ndim:
        raise _invalid(f"{key!r} must be {ndim}-d {np.dtype(dtype).name}, got {a.ndim}-d {a.dtype}")
    return np.ascontiguousarray(a) if ndim else a


def _kind_array(kind: str) -> np.ndarray:
    return np.frombuffer(kind.encode("ascii"), dtype=np.uint8).copy()


def _header(arrays: Mapping[str, np.ndarray], kind: str) -> int:
    """Check kind and format version; return n_features."""
    if read_kind(arrays) != kind:
        raise _invalid(f"kind is {read_kind(arrays)!r}, expected {kind!r}")
    if int(_get(arrays, "format_version", np.int64, 0)) != FORMAT_VERSION:
        raise _invalid(f"unsupported format_version (this code reads {FORMAT_VERSION})")
    n_features = int(_get(arrays, "n_features", np.int64, 0))
    if n_features < 1:
        raise _invalid("n_features must be positive")
    return n_features


def _header_arrays(kind: str, n_features: int) -> dict[str, np.ndarray]:
    return {
        "kind": _kind_array(kind),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "n_features": np.array(n_features, dtype=np.int64),
    }


def read_kind(arrays: Mapping[str, np.ndarray]) -> str:
    """Decode the ``kind`` array (ASCII codes as uint8) of a compiled model."""
    return bytes(_get(arrays, "kind", np.uint8, 1)).decode("ascii", errors="replace")


# --------------------------------------------------------------------------- stump ensemble
class StumpEnsemble:
    """Compiled ``EasyEnsembleClassifier`` whose bags are SAMME AdaBoost ensembles of stumps.

    Bag ``b`` has a log-odds ``L_b(x) = 2 * S_b(x) / W_b`` where ``S_b`` is the sum of
    ``+w_t`` (stump predicts class 1) or ``-w_t`` (class 0) and ``W_b`` the sum of the bag's
    estimator weights; its probability is ``sigmoid(L_b)`` (sklearn's binary SAMME
    ``predict_proba``), and ``predict_proba(x) = mean_b sigmoid(L_b(x))`` (bagging average).

    Additive space: ``margin(x) = mean_b L_b(x) = c + sum_j h_j(x_j)``, because each stump
    reads one feature, so ``h_j`` is piecewise constant on the intervals between the sorted
    union of feature ``j``'s thresholds. ``sigmoid(margin)`` is not ``predict_proba`` (the
    mean of sigmoids differs from the sigmoid of the mean log-odds) but both increase with
    every bag's log-odds and coincide when the bags agree. Attributions are the exact
    interventional SHAP values of ``margin`` against a background set:
    ``phi_j(x) = h_j(x_j) - mean_bg h_j(bg_j)`` and ``base = c + sum_j mean_bg h_j(bg_j)``
    (the background mean of ``margin``), so ``base + phi.sum() == margin(x)``. Features no
    stump uses get ``phi_j = 0``.
    """

    kind = "easy_ensemble"
    _KEYS = ("feature_index", "threshold_offsets", "thresholds", "table", "bias", "weight_sum")

    def __init__(self, n_features: int, background_h_mean: np.ndarray | None = None, **arrays) -> None:
        self.n_features = int(n_features)
        self._a = arrays
        table, thr_off, wsum = arrays["table"], arrays["threshold_offsets"], arrays["weight_sum"]
        search = (arrays["feature_index"], thr_off, arrays["thresholds"])
        self._k = (*search, *compress_table(table, thr_off), arrays["bias"], wsum)  # kernel arguments
        self._h = (2.0 * arrays["table"] / wsum).mean(axis=1)  # h_j per interval row (margin units)
        self._c = float((2.0 * arrays["bias"] / wsum).mean())
        self._bg = background_h_mean

    @property
    def n_members(self) -> int:
        """Number of bags."""
        return int(self._a["bias"].shape[0])

    @classmethod
    def from_estimator(cls, model) -> StumpEnsemble:
        """Compile a fitted ``EasyEnsembleClassifier`` (bags: Pipeline ending in AdaBoost of stumps)."""
        from backend.models.extract import stump_arrays  # sklearn-facing, offline only

        return cls.from_arrays(stump_arrays(model, kind=_kind_array(cls.kind), version=FORMAT_VERSION))

    def set_background(self, X_background: np.ndarray) -> None:
        """Store the background means ``mean_bg h_j(bg_j)`` (shape ``(n_features,)``)."""
        Xb = _check_X(X_background, self.n_features)
        if Xb.shape[0] == 0:
            raise ValueError("background must contain at least one row")
        raw = stump_phi(Xb, *self._k[:3], self._h, np.zeros(self.n_features))
        _finite_or_raise(raw)
        self._bg = raw.mean(axis=0)

    def _require_bg(self) -> np.ndarray:
        if self._bg is None:
            raise RuntimeError(NO_BACKGROUND)
        return self._bg

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numeric arrays describing the model (plus ``background_h_mean`` if set)."""
        out = _header_arrays(self.kind, self.n_features)
        out.update({k: self._a[k].copy() for k in self._KEYS})
        if self._bg is not None:
            out["background_h_mean"] = self._bg.copy()
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> StumpEnsemble:
        """Rebuild from :meth:`to_arrays` output; raise ``ValueError`` on any inconsistency."""
        p = _header(arrays, cls.kind)
        a = {k: _get(arrays, k, np.int64, 1) for k in cls._KEYS[:2]}
        a.update({k: _get(arrays, k, np.float64, 2 if k == "table" else 1) for k in cls._KEYS[2:]})
        feat, off, thr, table, bias, wsum = (a[k] for k in cls._KEYS)
        nu, nb = feat.shape[0], bias.shape[0]
        if nu and (feat[0] < 0 or feat[-1] >= p or np.any(np.diff(feat) <= 0)):
            raise _invalid("feature_index must be strictly increasing within [0, n_features)")
        if off.shape != (nu + 1,) or off[0] != 0 or off[-1] != thr.shape[0] or np.any(np.diff(off) < 1):
            raise _invalid("threshold_offsets must start at 0, grow by >= 1 and end at len(thresholds)")
        rising = (np.diff(thr) > 0) | np.isin(np.arange(1, thr.size), off)
        if not (np.isfinite(thr).all() and rising.all()):
            raise _invalid("thresholds must be finite and strictly increasing within each feature")
        if nb < 1 or wsum.shape != (nb,) or table.shape != (thr.shape[0] + nu, nb):
            raise _invalid(
                "table must be (len(thresholds) + len(feature_index), n_bags) and bias, weight_sum "
                f"(n_bags,); got {table.shape}, {bias.shape}, {wsum.shape}"
            )
        if not (np.isfinite(table).all() and np.isfinite(bias).all() and np.isfinite(wsum).all()):
            raise _invalid("table, bias and weight_sum must be finite")
        if np.any(wsum <= 0):
            raise _invalid("weight_sum must be positive")
        bg = None
        if "background_h_mean" in arrays:
            bg = _get(arrays, "background_h_mean", np.float64, 1)
            if bg.shape != (p,) or not np.isfinite(bg).all():
                raise _invalid(f"background_h_mean must be finite of shape ({p},)")
        return cls(p, bg, **a)

    def _batch(self, X: np.ndarray, store: bool):
        X = _check_X(X, self.n_features)
        members = np.empty((X.shape[0] if store else 0, self.n_members))
        proba, margin = stump_batch(X, *self._k, members, store)
        _finite_or_raise(proba)
        return proba, margin, members

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) per row, shape ``(n,)``."""
        return self._batch(X, False)[0]

    def member_probas(self, X: np.ndarray) -> np.ndarray:
        """Per-bag P(class 1), shape ``(n, n_bags)``."""
        return self._batch(X, True)[2]

    def proba_and_members(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_proba` and :meth:`member_probas` in one kernel call (batch files)."""
        proba, _, members = self._batch(X, True)
        return proba, members

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Mean over bags of each bag's log-odds, shape ``(n,)`` (see class docstring)."""
        return self._batch(X, False)[1]

    def attributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interventional SHAP of :meth:`margin`: ``(phi (n, p), base (n,))``."""
        bg = self._require_bg()
        X = _check_X(X, self.n_features)
        phi = stump_phi(X, *self._k[:3], self._h, bg)
        _finite_or_raise(phi)
        return phi, np.full(X.shape[0], self._c + float(bg.sum()))

    def score_one(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """``(proba, margin, phi (p,), member_probas (n_bags,))`` for one row, in one numba call."""
        bg = self._require_bg()
        proba, margin, phi, members = stump_one(_check_x(x, self.n_features), *self._k, self._h, bg)
        if proba != proba:
            raise ValueError(NON_FINITE)
        return proba, margin, phi, members


# --------------------------------------------------------------------------- forest
class ForestEnsemble:
    """Compiled ``BalancedRandomForestClassifier`` (any forest of binary ``DecisionTreeClassifier``).

    ``predict_proba`` is the mean over trees of the leaf class-1 fraction. The additive space
    is the probability itself: ``margin(x) == predict_proba(x)``, and attributions are
    path-dependent TreeSHAP using node covers (``weighted_n_node_samples``), so
    ``base + phi.sum() == predict_proba(x)`` with ``base`` the cover-weighted mean leaf value.
    No background is needed; :meth:`set_background` only checks its shape.
    """

    kind = "balanced_random_forest"
    _KEYS = ("tree_offsets", "children_left", "children_right", "feature", "threshold", "value", "cover")

    def __init__(self, n_features: int, **arrays: np.ndarray) -> None:
        self.n_features = int(n_features)
        self._a = arrays
        self._tree = tuple(arrays[k] for k in self._KEYS[:6])  # single-row traversal
        self._lockstep = (*treeshap.build_lockstep(*self._tree[:5]), arrays["value"])  # batch traversal
        self._paths = treeshap.build_leaf_paths(*(arrays[k] for k in self._KEYS))

    @property
    def n_members(self) -> int:
        """Number of trees."""
        return int(self._a["tree_offsets"].shape[0] - 1)

    @classmethod
    def from_estimator(cls, model) -> ForestEnsemble:
        """Compile a fitted forest whose ``estimators_`` are binary ``DecisionTreeClassifier``."""
        from backend.models.extract import forest_arrays

        return cls.from_arrays(forest_arrays(model, kind=_kind_array(cls.kind), version=FORMAT_VERSION))

    def set_background(self, X_background: np.ndarray) -> None:
        """Accepted for interface symmetry; path-dependent TreeSHAP uses node covers instead."""
        _check_X(X_background, self.n_features)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numeric arrays describing the forest."""
        out = _header_arrays(self.kind, self.n_features)
        out.update({k: self._a[k].copy() for k in self._KEYS})
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ForestEnsemble:
        """Rebuild from :meth:`to_arrays` output; raise ``ValueError`` on any inconsistency."""
        p = _header(arrays, cls.kind)
        a = {k: _get(arrays, k, np.int64, 1) for k in cls._KEYS[:4]}
        a.update({k: _get(arrays, k, np.float64, 1) for k in cls._KEYS[4:]})
        problem = treeshap.check_forest(p, *(a[k] for k in cls._KEYS))
        if problem:
            raise _invalid(problem)
        return cls(p, **a)

    def _batch(self, X: np.ndarray, store: bool):
        X = _check_X(X, self.n_features)
        members = np.empty((X.shape[0] if store else 0, self.n_members))
        proba = treeshap.forest_batch(X, *self._lockstep, members, store)
        _finite_or_raise(proba)
        return proba, members

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) per row, shape ``(n,)``."""
        return self._batch(X, False)[0]

    def member_probas(self, X: np.ndarray) -> np.ndarray:
        """Per-tree P(class 1), shape ``(n, n_trees)``."""
        return self._batch(X, True)[1]

    def proba_and_members(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_proba` and :meth:`member_probas` in one kernel call (batch files)."""
        return self._batch(X, True)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The additive space of the forest is the probability itself."""
        return self.predict_proba(X)

    def attributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Path-dependent TreeSHAP of the probability: ``(phi (n, p), base (n,))``."""
        X = _check_X(X, self.n_features)
        pp = self._paths
        phi = treeshap.forest_shap_batch(
            X, pp.offsets, pp.feature, pp.zero, pp.lo, pp.hi, pp.value, 1.0 / self.n_members, pp.max_depth
        )
        _finite_or_raise(phi)
        return phi, np.full(X.shape[0], pp.base)

    def score_one(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """``(proba, margin == proba, phi (p,), per-tree probabilities)`` in one numba call."""
        pp = self._paths
        proba, ok, phi, members = treeshap.forest_one(
            _check_x(x, self.n_features),
            *self._tree,
            pp.offsets,
            pp.feature,
            pp.zero,
            pp.lo,
            pp.hi,
            pp.value,
            pp.max_depth,
        )
        if not ok:
            raise ValueError(NON_FINITE)
        return proba, proba, phi, members


_KINDS: dict[str, type[StumpEnsemble] | type[ForestEnsemble]] = {
    StumpEnsemble.kind: StumpEnsemble,
    ForestEnsemble.kind: ForestEnsemble,
}


def compile_estimator(model) -> StumpEnsemble | ForestEnsemble:
    """Compile a fitted ``EasyEnsembleClassifier`` or ``BalancedRandomForestClassifier``."""
    if hasattr(model, "estimators_features_"):
        return StumpEnsemble.from_estimator(model)
    if hasattr(model, "estimators_") and all(hasattr(e, "tree_") for e in model.estimators_):
        return ForestEnsemble.from_estimator(model)
    raise TypeError(
        f"cannot compile {type(model).__name__}: expected a fitted EasyEnsemble or balanced forest"
    )


def from_arrays(arrays: Mapping[str, np.ndarray]) -> StumpEnsemble | ForestEnsemble:
    """Rebuild a compiled model, dispatching on its stored ``kind``."""
    kind = read_kind(arrays)
    if kind not in _KINDS:
        raise _invalid(f"unknown kind {kind!r}")
    return _KINDS[kind].from_arrays(arrays)
