"""Numba kernels for flattened decision-tree forests: prediction and path-dependent TreeSHAP.

A forest is stored as concatenated scikit-learn node arrays with per-tree offsets
(``tree_offsets[t]`` is the first node of tree ``t``; child indices are local to the tree,
``-1`` marks a leaf). Predictions replicate scikit-learn exactly: features are rounded to
float32 and compared as ``float32(x) <= threshold``; tree outputs are summed in tree order
and divided by the number of trees.

Attributions are path-dependent TreeSHAP (Lundberg et al. 2018, Algorithm 2), evaluated
leaf by leaf over precomputed root-to-leaf paths in which repeated features are merged
(as GPUTreeShap does): for each leaf and each distinct feature on its path we keep the
product of cover ratios (the "zero fraction") and the interval ``(lo, hi]`` that ``x`` must
fall into for the path to be followed (the "one fraction" is then 0 or 1). Extending the
merged path and unwinding each feature gives the same values as the recursive algorithm.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange, uint64

_BLOCK = 32

__all__ = [
    "LeafPaths",
    "build_leaf_paths",
    "build_lockstep",
    "check_forest",
    "forest_batch",
    "forest_one",
    "forest_shap_batch",
]


class LeafPaths(NamedTuple):
    """Merged root-to-leaf paths of every leaf of a forest (derived, never stored).

    Attributes
    ----------
    offsets : ndarray of int64, shape (n_leaves + 1,)
        Path elements of leaf ``l`` are ``offsets[l]:offsets[l + 1]``.
    feature, zero, lo, hi : ndarray, shape (n_elements,)
        Feature index, product of cover ratios, and the interval ``(lo, hi]`` of ``float32(x)``.
    value : ndarray of float64, shape (n_leaves,)
        Leaf output (class-1 fraction).
    base : float
        Cover-weighted mean leaf value, averaged over trees (the expected value of TreeSHAP).
    max_depth : int
        Largest number of distinct features on any path.
    """

    offsets: np.ndarray
    feature: np.ndarray
    zero: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    value: np.ndarray
    base: float
    max_depth: int


def build_leaf_paths(
    tree_offsets: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    value: np.ndarray,
    cover: np.ndarray,
) -> LeafPaths:
    """Enumerate the merged root-to-leaf paths of all trees (arrays assumed validated).

    Leaves whose value is exactly zero contribute nothing to TreeSHAP and are skipped, except
    that they still count in ``base``.

    Returns
    -------
    LeafPaths
    """
    offsets, feats, zeros, los, his, values = [0], [], [], [], [], []
    base = 0.0
    n_trees = len(tree_offsets) - 1
    for t in range(n_trees):
        o = int(tree_offsets[t])
        tree_base = 0.0
        stack: list[tuple[int, dict[int, tuple[float, float, float]]]] = [(0, {})]
        while stack:
            node, path = stack.pop()
            g = o + node
            if left[g] == -1:
                tree_base += value[g] * (cover[g] / cover[o])
                if value[g] != 0.0:
                    for f, (z, lo, hi) in path.items():
                        feats.append(f)
                        zeros.append(z)
                        los.append(lo)
                        his.append(hi)
                    values.append(value[g])
                    offsets.append(len(feats))
                continue
            f, thr = int(feature[g]), float(threshold[g])
            z0, lo0, hi0 = path.get(f, (1.0, -np.inf, np.inf))
            for child, is_left in ((int(left[g]), True), (int(right[g]), False)):
                child_path = dict(path)
                z = z0 * (cover[o + child] / cover[g])
                child_path[f] = (z, lo0, min(hi0, thr)) if is_left else (z, max(lo0, thr), hi0)
                stack.append((child, child_path))
        base += tree_base
    off = np.asarray(offsets, dtype=np.int64)
    return LeafPaths(
        offsets=off,
        feature=np.asarray(feats, dtype=np.int64),
        zero=np.asarray(zeros, dtype=np.float64),
        lo=np.asarray(los, dtype=np.float64),
        hi=np.asarray(his, dtype=np.float64),
        value=np.asarray(values, dtype=np.float64),
        base=base / max(n_trees, 1),
        max_depth=int(np.diff(off).max(initial=0)),
    )


def build_lockstep(tree_offsets, left, right, feature, threshold) -> tuple[np.ndarray, ...]:
    """Derived arrays for batch prediction: ``(roots, depth, left, right, feature, threshold)``.

    Child indices become global and leaves point to themselves with threshold ``+inf``, so a
    row can take exactly ``depth[t]`` (the tree's height) branch-free steps in tree ``t``.
    """
    n = left.shape[0]
    start = np.repeat(tree_offsets[:-1], np.diff(tree_offsets))
    leaf = left == -1
    nodes = np.arange(n)
    gl = np.where(leaf, nodes, left + start)
    gr = np.where(leaf, nodes, right + start)
    gf = np.where(leaf, 0, feature)
    gt = np.where(leaf, np.inf, threshold)
    level = np.zeros(n, dtype=np.int64)
    for g in np.flatnonzero(~leaf):  # children come after their parent
        level[gl[g]] = level[gr[g]] = level[g] + 1
    depth = np.maximum.reduceat(level, tree_offsets[:-1])
    return tree_offsets[:-1].copy(), depth.astype(np.int64), gl, gr, gf, gt


@njit(cache=True)
def _round_row(x, x32):
    """Store float32-rounded ``x`` in ``x32``; return False if ``x`` holds NaN or inf."""
    chk = 0.0
    for j in range(x.shape[0]):
        chk += x[j] - x[j]
        x32[j] = np.float64(np.float32(x[j]))
    return chk == chk


@njit(cache=True)
def _tree_value(x32, o, left, right, feature, threshold, value):
    node = o
    while left[node] != -1:
        if x32[feature[node]] <= threshold[node]:
            node = o + left[node]
        else:
            node = o + right[node]
    return value[node]


@njit(cache=True)
def _predict_row(x32, tree_offsets, left, right, feature, threshold, value, members, i, store):
    n_trees = tree_offsets.shape[0] - 1
    total = 0.0
    for t in range(n_trees):
        v = _tree_value(x32, tree_offsets[t], left, right, feature, threshold, value)
        total += v
        if store:
            members[i, t] = v
    return total / n_trees


@njit(cache=True)
def _unwound_sum(pw, zero, one, d):
    total = 0.0
    if one != 0.0:
        nxt = pw[d]
        for i in range(d - 1, -1, -1):
            tmp = nxt * (d + 1) / ((i + 1) * one)
            total += tmp
            nxt = pw[i] - tmp * zero * ((d - i) / (d + 1))
    elif zero != 0.0:
        for i in range(d - 1, -1, -1):
            total += (pw[i] / zero) / ((d - i) / (d + 1))
    return total


@njit(cache=True)
def _shap_row(x32, offsets, pfeat, pzero, plo, phi_, pvalue, scale, out, pw, zz, oo):
    """Add the TreeSHAP values of one float32-rounded row to ``out`` (length n_features)."""
    for leaf in range(pvalue.shape[0]):
        s = offsets[leaf]
        d = offsets[leaf + 1] - s
        if d == 0:
            continue
        pw[0] = 1.0
        for m in range(1, d + 1):
            e = s + m - 1
            z = pzero[e]
            xf = x32[pfeat[e]]
            o = 1.0 if (plo[e] < xf and xf <= phi_[e]) else 0.0
            zz[m] = z
            oo[m] = o
            pw[m] = 0.0
            for i in range(m - 1, -1, -1):
                pw[i + 1] += o * pw[i] * (i + 1) / (m + 1)
                pw[i] = z * pw[i] * (m - i) / (m + 1)
        v = pvalue[leaf] * scale
        for m in range(1, d + 1):
            w = _unwound_sum(pw, zz[m], oo[m], d)
            out[pfeat[s + m - 1]] += w * (oo[m] - zz[m]) * v


@njit(cache=True)
def _forest_block(X, lo, roots, depth, gl, gr, gf, gt, value, proba, members, store):
    """Rows ``lo:lo + _BLOCK`` walk each tree in lockstep (independent loads overlap)."""
    m = min(X.shape[0], lo + _BLOCK) - lo
    x32 = np.empty((_BLOCK, X.shape[1]))
    ok = np.empty(_BLOCK, np.bool_)
    node = np.empty(_BLOCK, np.int64)
    total = np.zeros(_BLOCK)
    for i in range(m):
        ok[i] = _round_row(X[lo + i], x32[i])
    for t in range(roots.shape[0]):
        node[:] = roots[t]
        for _ in range(depth[t]):
            for i in range(m):
                nd = uint64(node[i])
                node[i] = gl[nd] if x32[i, uint64(gf[nd])] <= gt[nd] else gr[nd]
        for i in range(m):
            v = value[uint64(node[i])]
            total[i] += v
            if store:
                members[lo + i, t] = v
    for i in range(m):
        proba[lo + i] = total[i] / roots.shape[0] if ok[i] else np.nan


@njit(cache=True, parallel=True)
def forest_batch(X, roots, depth, gl, gr, gf, gt, value, members, store):
    """Mean class-1 probability per row (NaN for rows with non-finite values).

    Takes the :func:`build_lockstep` arrays; tree outputs are summed in tree order, as sklearn does.
    """
    n = X.shape[0]
    proba = np.empty(n)
    for k in prange((n + _BLOCK - 1) // _BLOCK):
        _forest_block(X, k * _BLOCK, roots, depth, gl, gr, gf, gt, value, proba, members, store)
    return proba


@njit(cache=True, parallel=True)
def forest_shap_batch(X, offsets, pfeat, pzero, plo, phi_, pvalue, scale, max_depth):
    """TreeSHAP matrix (n, n_features); rows with non-finite values are NaN."""
    n, p = X.shape
    phi = np.zeros((n, p))
    for i in prange(n):
        x32 = np.empty(p)
        pw = np.empty(max_depth + 1)
        zz = np.empty(max_depth + 1)
        oo = np.empty(max_depth + 1)
        if _round_row(X[i], x32):
            _shap_row(x32, offsets, pfeat, pzero, plo, phi_, pvalue, scale, phi[i], pw, zz, oo)
        else:
            phi[i, :] = np.nan
    return phi


@njit(cache=True)
def forest_one(
    x,
    tree_offsets,
    left,
    right,
    feature,
    threshold,
    value,
    offsets,
    pfeat,
    pzero,
    plo,
    phi_,
    pvalue,
    max_depth,
):
    """Single row: (proba, finite flag, phi, per-tree probabilities)."""
    n_trees = tree_offsets.shape[0] - 1
    members = np.empty((1, n_trees))
    phi = np.zeros(x.shape[0])
    x32 = np.empty(x.shape[0])
    if not _round_row(x, x32):
        return np.nan, False, phi, members[0]
    proba = _predict_row(x32, tree_offsets, left, right, feature, threshold, value, members, 0, True)
    pw = np.empty(max_depth + 1)
    zz = np.empty(max_depth + 1)
    oo = np.empty(max_depth + 1)
    _shap_row(x32, offsets, pfeat, pzero, plo, phi_, pvalue, 1.0 / n_trees, phi, pw, zz, oo)
    return proba, True, phi, members[0]


def check_forest(n_features, tree_offsets, left, right, feature, threshold, value, cover) -> str | None:
    """Describe the first structural problem of flat forest arrays, or return None if sound.

    Guarantees what the kernels rely on (no bounds checks there): every child index points
    forward inside its own tree, every non-root node has exactly one parent, split features
    are valid column indices, thresholds finite, values in [0, 1] and covers positive.
    """
    n = left.shape[0]
    if any(a.shape != (n,) for a in (right, feature, threshold, value, cover)):
        return "node arrays must all have the same length"
    sizes = np.diff(tree_offsets)
    if tree_offsets.shape[0] < 2 or tree_offsets[0] != 0 or tree_offsets[-1] != n or np.any(sizes < 1):
        return "tree_offsets must start at 0, grow by >= 1 and end at the node count"
    start = np.repeat(tree_offsets[:-1], sizes)
    size = np.repeat(sizes, sizes)
    local = np.arange(n) - start
    inner = left != -1
    if np.any(inner != (right != -1)):
        return "a node must have both children or none"
    for child in (left[inner], right[inner]):
        if np.any(child <= local[inner]) or np.any(child >= size[inner]):
            return "children must point forward inside their tree"
    parents = np.concatenate([left[inner] + start[inner], right[inner] + start[inner]])
    if parents.size != n - sizes.size or np.unique(parents).size != parents.size:
        return "every non-root node must have exactly one parent"
    f = feature[inner]
    if np.any(f < 0) or np.any(f >= n_features) or not np.isfinite(threshold[inner]).all():
        return "split features must lie in [0, n_features) with finite thresholds"
    if not (np.all((value >= 0) & (value <= 1)) and np.all(cover > 0) and np.isfinite(cover).all()):
        return "value must lie in [0, 1] and cover must be positive and finite"
    return None
