"""Numba kernels for the compiled stump ensemble (see :class:`backend.models.compiled.StumpEnsemble`).

Layout: ``feature_index[u]`` is the column of the ``u``-th used feature; its sorted unique
thresholds are ``thresholds[threshold_offsets[u]:threshold_offsets[u + 1]]`` (``k_u`` values);
the interval of ``xf = float32(x)`` is the number of thresholds strictly below ``xf`` (sklearn
sends ``xf <= t`` left), and its row in ``table`` (shape ``(sum k_u + n_used, n_bags)``) is
``threshold_offsets[u] + u + interval``. ``table`` holds signed estimator weights per bag;
``bias`` the leaf-only stumps; ``weight_sum`` each bag's total estimator weight. The kernels
read ``table`` through :func:`compress_table`, which keeps per feature only the bags that use
it (with 10 bags of 50 stumps most features appear in a few bags only).

Batch kernels work on blocks of rows and search one feature for the whole block at a time:
the binary search then has the same trip count for every row (no mispredicted branches),
independent rows keep the CPU busy, and accumulators are bag-major (contiguous over rows).
Rows holding NaN or inf come back as NaN. Indices read from memory are cast to uint64 so
numba skips its negative-index wraparound (the arrays are validated before reaching here).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

__all__ = ["compress_table", "stump_batch", "stump_one", "stump_phi"]

_BLOCK = 64


def compress_table(table: np.ndarray, thr_off: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sparse layout of ``table``: per used feature, only the bags whose stumps read it.

    Returns ``(bag_off, bags, ctab, cbase)``: feature ``u`` touches bags
    ``bags[bag_off[u]:bag_off[u + 1]]`` (``nb_u`` of them) and interval ``i`` of it holds their
    values at ``ctab[cbase[u] + i * nb_u:][:nb_u]``. Skipped entries are exact zeros.
    """
    bag_off, bags, parts, cbase = [0], [], [], [0]
    for u in range(thr_off.shape[0] - 1):
        block = table[thr_off[u] + u : thr_off[u + 1] + u + 1]
        cols = np.flatnonzero(np.any(block != 0.0, axis=0))
        bags.extend(cols.tolist())
        bag_off.append(len(bags))
        parts.append(block[:, cols].ravel())
        cbase.append(cbase[-1] + parts[-1].size)
    ctab = np.concatenate(parts) if parts else np.zeros(0)
    return (
        np.asarray(bag_off, dtype=np.int64),
        np.asarray(bags, dtype=np.int64),
        ctab,
        np.asarray(cbase[:-1], dtype=np.int64),
    )


@njit(cache=True)
def _accumulate(x, feat, thr_off, thr, bag_off, bags, ctab, cbase, bias, acc, rows):
    """Single row: per-bag sums of signed stump weights; ``table`` rows used go to ``rows``."""
    bad = 0
    for j in range(x.shape[0]):
        bad += not (abs(x[j]) < np.inf)
    acc[:, 0] = bias
    for u in range(feat.shape[0]):
        xf = np.float64(np.float32(x[feat[u]]))
        base = thr_off[u]
        n = thr_off[u + 1] - base
        while n > 1:  # branchless lower bound: number of thresholds < xf
            half = n >> 1
            base += half * (thr[uint64(base + half)] < xf)
            n -= half
        idx = base + (thr[uint64(base)] < xf) - thr_off[u]
        rows[u] = thr_off[u] + u + idx
        b0 = bag_off[u]
        nbu = bag_off[u + 1] - b0
        s = cbase[u] + idx * nbu
        for q in range(nbu):
            acc[uint64(bags[b0 + q]), 0] += ctab[uint64(s + q)]
    return bad == 0


@njit(cache=True)
def _block_bad(X, lo, m, bad):
    for i in range(m):
        nf = 0
        for j in range(X.shape[1]):
            nf += not (abs(X[lo + i, j]) < np.inf)
        bad[i] = nf > 0


@njit(cache=True)
def _block_search(X, lo, m, u, f, thr_off, thr, xs, idx):
    """Interval of used feature ``u`` (column ``f``) for rows ``lo:lo + m``, searched together."""
    start = thr_off[u]
    for i in range(m):
        xs[i] = np.float64(np.float32(X[lo + i, f]))
        idx[i] = start
    n = thr_off[u + 1] - start
    while n > 1:  # same trip count for the whole block: branch-free lower bound
        half = n >> 1
        for i in range(m):
            idx[i] += half * (thr[uint64(idx[i] + half)] < xs[i])
        n -= half
    for i in range(m):
        idx[i] += (thr[uint64(idx[i])] < xs[i]) - start


@njit(cache=True)
def _finish(acc, i, wsum, members, row, store):
    """(mean bag probability, mean bag log-odds) of column ``i`` of ``acc`` (bags x rows).

    Same arithmetic as sklearn: a bag's decision is ``a = S / W`` and its probability the
    softmax of ``(-a, a)``; the ensemble averages the bag probabilities in bag order.
    """
    nb = acc.shape[0]
    psum = 0.0
    lsum = 0.0
    for b in range(nb):
        a = acc[b, i] / wsum[b]
        if a >= 0.0:
            p = 1.0 / (np.exp(-a - a) + 1.0)
        else:
            e = np.exp(a + a)
            p = e / (1.0 + e)
        psum += p
        lsum += a + a
        if store:
            members[row, b] = p
    return psum / nb, lsum / nb


@njit(cache=True)
def _score_block(
    X, lo, feat, thr_off, thr, bag_off, bags, ctab, cbase, bias, wsum, proba, margin, members, store
):
    """Score rows ``lo:lo + _BLOCK`` (bag-major accumulators: contiguous over rows)."""
    m = min(X.shape[0], lo + _BLOCK) - lo
    xs = np.empty(_BLOCK)
    idx = np.empty(_BLOCK, np.int64)
    bad = np.empty(_BLOCK, np.bool_)
    vals = np.empty(_BLOCK)
    acc = np.empty((bias.shape[0], _BLOCK))
    _block_bad(X, lo, m, bad)
    for b in range(bias.shape[0]):
        acc[b, :] = bias[b]
    for u in range(feat.shape[0]):
        _block_search(X, lo, m, u, feat[u], thr_off, thr, xs, idx)
        b0 = bag_off[u]
        nbu = bag_off[u + 1] - b0
        for q in range(nbu):
            start = cbase[u] + q
            for i in range(m):
                vals[i] = ctab[uint64(start + idx[i] * nbu)]
            row = acc[bags[b0 + q]]
            for i in range(m):
                row[i] += vals[i]
    for i in range(m):
        if bad[i]:
            proba[lo + i] = margin[lo + i] = np.nan
        else:
            proba[lo + i], margin[lo + i] = _finish(acc, i, wsum, members, lo + i, store)


@njit(cache=True, parallel=True)
def stump_batch(X, feat, thr_off, thr, bag_off, bags, ctab, cbase, bias, wsum, members, store):
    """``(proba, margin)`` per row; per-bag probabilities go to ``members`` if ``store``."""
    n = X.shape[0]
    proba = np.empty(n)
    margin = np.empty(n)
    for k in prange((n + _BLOCK - 1) // _BLOCK):
        _score_block(
            X,
            k * _BLOCK,
            feat,
            thr_off,
            thr,
            bag_off,
            bags,
            ctab,
            cbase,
            bias,
            wsum,
            proba,
            margin,
            members,
            store,
        )
    return proba, margin


@njit(cache=True, parallel=True)
def stump_phi(X, feat, thr_off, thr, h, bg):
    """``phi[i, j] = h_j(x_ij) - bg[j]`` for used features, 0 elsewhere (``h`` per table row)."""
    n = X.shape[0]
    phi = np.zeros((n, X.shape[1]))
    for k in prange((n + _BLOCK - 1) // _BLOCK):
        lo = k * _BLOCK
        m = min(n, lo + _BLOCK) - lo
        xs = np.empty(_BLOCK)
        idx = np.empty(_BLOCK, np.int64)
        bad = np.empty(_BLOCK, np.bool_)
        _block_bad(X, lo, m, bad)
        for u in range(feat.shape[0]):
            _block_search(X, lo, m, u, feat[u], thr_off, thr, xs, idx)
            f = feat[u]
            r0 = thr_off[u] + u
            for i in range(m):
                phi[lo + i, f] = h[uint64(r0 + idx[i])] - bg[f]
        for i in range(m):
            if bad[i]:
                phi[lo + i, :] = np.nan
    return phi


@njit(cache=True)
def stump_one(x, feat, thr_off, thr, bag_off, bags, ctab, cbase, bias, wsum, h, bg):
    """``(proba, margin, phi, member probabilities)`` of one row (NaN proba if not finite)."""
    members = np.empty((1, bias.shape[0]))
    acc = np.empty((bias.shape[0], 1))
    rows = np.empty(feat.shape[0], np.int64)
    phi = np.zeros(x.shape[0])
    if not _accumulate(x, feat, thr_off, thr, bag_off, bags, ctab, cbase, bias, acc, rows):
        return np.nan, np.nan, phi, members[0]
    proba, margin = _finish(acc, 0, wsum, members, 0, True)
    for u in range(feat.shape[0]):
        phi[feat[u]] = h[rows[u]] - bg[feat[u]]
    return proba, margin, phi, members[0]
