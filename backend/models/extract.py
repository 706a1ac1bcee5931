"""Read fitted scikit-learn / imbalanced-learn ensembles into flat numeric arrays (offline only).

The arrays produced here are the storage format of :mod:`backend.models.compiled`; the
runtime never imports this module's estimator-facing code paths, nor unpickles anything.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

__all__ = ["stump_arrays", "forest_arrays"]


def _classifier_of(bag):
    """The AdaBoost at the end of an imblearn bag (``Pipeline([sampler, classifier])``)."""
    return bag.steps[-1][1] if hasattr(bag, "steps") else bag


def _predicts_one(tree, classes: np.ndarray) -> np.ndarray:
    """Per node: +1.0 if the tree predicts ``classes[1]`` there, else -1.0 (argmax ties -> class 0)."""
    if len(tree.classes_) != 2 or not np.array_equal(tree.classes_, classes):
        raise ValueError("every stump must be a binary classifier with the AdaBoost's classes")
    value = tree.tree_.value[:, 0, :]
    return np.where(value[:, 1] > value[:, 0], 1.0, -1.0)


def stump_arrays(model, *, kind: np.ndarray, version: int) -> dict[str, np.ndarray]:
    """Tabulate a fitted ``EasyEnsembleClassifier`` of SAMME AdaBoost stumps.

    For each used feature ``j`` the sorted union of its stump thresholds ``t_1 < ... < t_k``
    splits the float32 line into ``k + 1`` intervals (interval ``i`` holds the values with
    exactly ``i`` thresholds below them; ``x <= t`` goes left as in sklearn). ``table`` holds,
    per interval and bag, the sum over that bag's stumps on ``j`` of ``+w`` (stump predicts
    class 1) or ``-w``; leaf-only stumps go to ``bias``. Zero-weight estimators are skipped
    and early-stopped bags use their fitted estimators only, as sklearn does.

    Raises
    ------
    ValueError
        If the model is not binary, a bag is not AdaBoost, or an estimator is deeper than a stump.
    """
    if len(model.classes_) != 2:
        raise ValueError("only binary classifiers can be compiled")
    if len(model.estimators_) != model.n_estimators:
        raise ValueError("EasyEnsemble must have n_estimators fitted bags")
    n_bags = len(model.estimators_)
    stumps: dict[int, list[tuple[float, int, float, float]]] = defaultdict(list)
    bias = np.zeros(n_bags)
    weight_sum = np.zeros(n_bags)
    for b, (bag, feats) in enumerate(zip(model.estimators_, model.estimators_features_, strict=True)):
        ada = _classifier_of(bag)
        if not hasattr(ada, "estimator_weights_") or not np.array_equal(ada.classes_, np.arange(2)):
            raise ValueError(f"bag {b} is not a binary AdaBoostClassifier")
        weights = np.asarray(ada.estimator_weights_, dtype=np.float64)
        weight_sum[b] = weights.sum()
        if not weight_sum[b] > 0:
            raise ValueError(f"bag {b} has no positive estimator weight")
        for est, w in zip(ada.estimators_, weights, strict=False):
            if w == 0.0:
                continue
            tree, sign = est.tree_, _predicts_one(est, ada.classes_)
            if tree.node_count == 1:
                bias[b] += sign[0] * w
                continue
            left, right = tree.children_left[0], tree.children_right[0]
            if tree.node_count != 3 or tree.children_left[left] != -1 or tree.children_left[right] != -1:
                raise ValueError(f"bag {b} holds a tree deeper than a stump")
            f = int(feats[tree.feature[0]])
            stumps[f].append((float(tree.threshold[0]), b, sign[left] * w, sign[right] * w))
    used = sorted(stumps)
    thresholds, offsets, tables = [], [0], []
    for f in used:
        t = np.unique([s[0] for s in stumps[f]])
        part = np.zeros((t.size + 1, n_bags))
        for thr, b, left_val, right_val in stumps[f]:
            pos = int(np.searchsorted(t, thr))  # interval i goes left iff i <= pos
            part[: pos + 1, b] += left_val
            part[pos + 1 :, b] += right_val
        thresholds.append(t)
        offsets.append(offsets[-1] + t.size)
        tables.append(part)
    return {
        "kind": kind,
        "format_version": np.array(version, dtype=np.int64),
        "n_features": np.array(model.n_features_in_, dtype=np.int64),
        "feature_index": np.asarray(used, dtype=np.int64),
        "threshold_offsets": np.asarray(offsets, dtype=np.int64),
        "thresholds": np.concatenate(thresholds) if used else np.zeros(0),
        "table": np.vstack(tables) if used else np.zeros((0, n_bags)),
        "bias": bias,
        "weight_sum": weight_sum,
    }


def forest_arrays(model, *, kind: np.ndarray, version: int) -> dict[str, np.ndarray]:
    """Concatenate the node arrays of a fitted forest of binary ``DecisionTreeClassifier``.

    ``value`` is the class-1 fraction of each node as ``DecisionTreeClassifier.predict_proba``
    returns it (sklearn >= 1.4 stores fractions; older count-valued trees are normalised),
    ``cover`` is ``weighted_n_node_samples``; child indices stay local to their tree.
    """
    if len(model.classes_) != 2:
        raise ValueError("only binary classifiers can be compiled")
    keys = ("children_left", "children_right", "feature", "threshold", "value", "cover")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    sizes = []
    for est in model.estimators_:
        tree = est.tree_
        if tree.n_outputs != 1 or tree.value.shape[2] != 2:
            raise ValueError("every tree must be a single-output binary classifier")
        value = tree.value[:, 0, :].astype(np.float64)
        total = value.sum(axis=1)
        if not np.allclose(total, 1.0):
            value = value / np.where(total == 0.0, 1.0, total)[:, None]
        parts["children_left"].append(tree.children_left.astype(np.int64))
        parts["children_right"].append(tree.children_right.astype(np.int64))
        leaf = tree.children_left == -1
        parts["feature"].append(np.where(leaf, -1, tree.feature).astype(np.int64))
        parts["threshold"].append(np.where(leaf, 0.0, tree.threshold).astype(np.float64))
        parts["value"].append(value[:, 1].copy())
        parts["cover"].append(tree.weighted_n_node_samples.astype(np.float64))
        sizes.append(tree.node_count)
    out = {
        "kind": kind,
        "format_version": np.array(version, dtype=np.int64),
        "n_features": np.array(model.n_features_in_, dtype=np.int64),
        "tree_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
    }
    out.update({k: np.concatenate(v) for k, v in parts.items()})
    return out
