"""Small numba kernels for the single-application path (encoding tail and reason selection).

Each replaces several numpy calls on ~100-element arrays, where call overhead, not arithmetic,
dominated (measured: encoding 24 µs -> see bench/service.py; reason selection 15 µs -> ~2 µs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def finish_numeric(x, bin_idx, fill, lo, hi, clip, out, num_pos):  # pragma: no cover - compiled
    """Check binaries, impute non-finite values, clip, scatter into ``out``. Returns False when a
    binary column holds something other than 0, 1 or missing (the caller then raises)."""
    for i in range(bin_idx.shape[0]):
        b = x[bin_idx[i]]
        if b == b and b != 0.0 and b != 1.0:
            return False
    for i in range(x.shape[0]):
        v = x[i]
        if not np.isfinite(v):
            v = fill[i]
        elif clip:
            v = min(max(v, lo[i]), hi[i])
        out[num_pos[i]] = v
    return True


@njit(cache=True)
def select_reasons(phi, code_idx, allowed, n_codes, k, per_reason):  # pragma: no cover - compiled
    """Top ``k`` reason codes by summed positive contribution, each with its top features.

    Returns ``(codes, weights, features)``; unused slots hold -1 (codes/features) and 0 (weights).
    Ties break towards the lower code index, like a stable sort.
    """
    weights = np.zeros(n_codes)
    for j in range(phi.shape[0]):
        if phi[j] > 0.0 and allowed[j]:
            weights[code_idx[j]] += phi[j]
    codes = np.full(k, -1, dtype=np.int64)
    tops = np.zeros(k)
    feats = np.full((k, per_reason), -1, dtype=np.int64)
    used = np.zeros(n_codes, dtype=np.bool_)
    for r in range(k):
        best, best_w = -1, 0.0
        for c in range(n_codes):
            if not used[c] and weights[c] > best_w:
                best, best_w = c, weights[c]
        if best < 0:
            break
        used[best] = True
        codes[r], tops[r] = best, best_w
        taken = np.zeros(phi.shape[0], dtype=np.bool_)
        for f in range(per_reason):
            bj, bv = -1, 0.0
            for j in range(phi.shape[0]):
                if not taken[j] and allowed[j] and code_idx[j] == best and phi[j] > bv:
                    bj, bv = j, phi[j]
            if bj < 0:
                break
            taken[bj] = True
            feats[r, f] = bj
    return codes, tops, feats


@njit(cache=True)
def select_reasons_batch(phi, code_idx, allowed, n_codes, k, per_reason):  # pragma: no cover - compiled
    """:func:`select_reasons` for every row of ``phi`` (n, p): ``(codes (n, k), weights (n, k), features
    (n, k, per_reason))``, the same choices and ties. One pass over a row keeps each code's weight and its
    ``per_reason`` largest features (ties: the lower column first, as the repeated scans pick them).
    Single-threaded, nothing allocated per row: a batch file is scored chunk by chunk."""
    n, p = phi.shape
    codes = np.full((n, k), -1, dtype=np.int64)
    tops = np.zeros((n, k))
    feats = np.full((n, k, per_reason), -1, dtype=np.int64)
    weights = np.zeros(n_codes)
    used = np.zeros(n_codes, dtype=np.bool_)
    best_j = np.full((n_codes, per_reason), -1, dtype=np.int64)
    best_v = np.zeros((n_codes, per_reason))
    for i in range(n):
        weights[:] = 0.0
        used[:] = False
        best_j[:, :] = -1
        best_v[:, :] = 0.0
        for j in range(p):
            v = phi[i, j]
            if v > 0.0 and allowed[j]:
                c = code_idx[j]
                weights[c] += v
                s = 0
                while s < per_reason and best_j[c, s] >= 0 and best_v[c, s] >= v:
                    s += 1
                if s < per_reason:
                    for t in range(per_reason - 1, s, -1):
                        best_j[c, t], best_v[c, t] = best_j[c, t - 1], best_v[c, t - 1]
                    best_j[c, s], best_v[c, s] = j, v
        for r in range(k):
            best, best_w = -1, 0.0
            for c in range(n_codes):
                if not used[c] and weights[c] > best_w:
                    best, best_w = c, weights[c]
            if best < 0:
                break
            used[best] = True
            codes[i, r], tops[i, r] = best, best_w
            for f in range(per_reason):
                feats[i, r, f] = best_j[best, f]
    return codes, tops, feats
