"""Numba CPU kernels for CSR matrices: loss and gradient, Hessian-vector product, one SGD epoch, scores.

A CSR matrix is passed as its three arrays ``data`` (nnz,), ``indices``
(nnz,) and ``indptr`` (n + 1,), any of float32/float64 values and
int32/int64 indices; indices need not be sorted and explicit zeros are fine
(duplicate column indices within a row add up, as in scipy). The arrays are
validated once at the public boundary (:func:`fastlr._sparse.check_csr`);
these kernels trust them.

Design:

* **Two sweeps over each block of rows per gradient.** A sparse gradient is
  bound by its random accesses (a gather ``w[j]`` and a scatter into the
  partial per non-zero), not by streaming ``data``/``indices``. Fusing the
  gather and the scatter row by row makes them compete for cache: at
  d = 2^20 the two d-vectors (16 MB) no longer fit, and the fused kernel was
  2-3x slower on a 2-core EPYC (32 MB L3) than two sweeps, one gathering
  (``dz`` of every row of the block, kept in an (n, k) float64 buffer), one
  scattering. Sweeping in L2-sized chunks instead (so that the second sweep
  reads the non-zeros from cache) was slower again (same cache fight).
  Measured with ``fastlr bench --sparse``; the extra memory, ``8 n k``
  bytes, is below 0.3x the CSR's own bytes (12 bytes per float32 non-zero)
  whenever a row holds more than ``2.2 k`` non-zeros.
* **Bounded, thread-count-independent partial sums.** The rows are cut into
  a fixed number of blocks (:func:`n_blocks`: a power of two, at most
  :data:`MAX_BLOCKS`, fewer when the non-zeros are few compared with
  ``d`` or ``k · d``, never depending on the thread count) at boundaries that balance
  the non-zeros. Each block owns one ``k × (d + 2)`` float64 partial;
  ``prange`` runs the blocks and the partials are added in block order
  (parallel over runs of entries, the same order for every entry). Extra
  memory is therefore at most ``MAX_BLOCKS · k · (d + 2) · 8`` bytes (not one
  partial per 2,048-row chunk, which at a million columns would be
  gigabytes), and the result is bitwise identical for any number of threads.
* **Software prefetch** (:mod:`fastlr.kernels._prefetch`): the gather asks for
  the coefficient row, the scatter for the partial-sum row (for writing),
  :data:`PREFETCH_NNZ` stored values ahead, so that their cache misses
  overlap instead of queueing one at a time (a hint: no value changes).
* All arithmetic is float64; float32 values are converted in registers.
* SGD keeps ``W = wscale · V`` (Bottou's SGD, scikit-learn's
  ``WeightVector``): the L2 shrinkage of a step multiplies ``wscale``, and only
  the batch's columns of ``V`` are touched, so a step costs
  O(non-zeros in the batch · k), not O(k · d).
"""

import math

import numpy as np
from numba import njit, prange

from .._math import build_math
from .._penalty import build_penalty
from ._prefetch import prefetch_rows, prefetch_rows_for_write

#: The most row blocks (and so d-length partial sums) a gradient uses.
MAX_BLOCKS = 16

#: A block gets at least this many non-zeros (and at least ``2 (d + 2)``):
#: zeroing and adding a partial costs O(k · d), which must stay well below the
#: block's own O(k · nnz) work (see :func:`n_blocks`).
MIN_BLOCK_NNZ = 4096

#: Stored values ahead of the current one whose coefficient row (gather) or
#: partial-sum row (scatter) is prefetched. The random accesses of a sparse
#: gradient miss the cache once the coefficients and partials outgrow it; a
#: store that misses holds up the store queue until its line arrives, so the
#: scatter ran one miss at a time. Asking for the lines PREFETCH_NNZ values
#: ahead overlaps the misses: on a 2-core Zen 3 (32 MB L3) the text-20
#: gradient (100k rows x 100k columns, 20 classes) went from 804 to 377 ms,
#: bitwise the same; distances 16 to 64 measured alike.
PREFETCH_NNZ = 32

#: Coefficient bytes above which the sparse SGD epoch prefetches the next row's
#: coefficients while it scores a row (beyond a core's L2, where they miss).
#: A step is sequential and cheap, so on coefficients that stay in cache the
#: extra pass over the next row's indices costs more than it saves (text,
#: 100k columns, binary, 0.8 MB: 90 -> 105-170 ms per epoch, noisy), while at
#: 2^20 columns (ctr, 8 MB) the epoch went from 313-425 to 181-270 ms and
#: text with 20 classes (16 MB) from 511-578 to 272-292 ms (2-core Zen 3).
SGD_PREFETCH_MIN_BYTES = 2 * 1024 * 1024

#: ``|wscale|`` below which SGD folds the scale back into the coefficients.
WSCALE_MIN = 1e-9

_JIT = {"cache": True, "fastmath": {"reassoc", "contract"}, "error_model": "numpy"}

_M = build_math(njit(inline="always", error_model="numpy"), np.float64)
_binary_loss_dz = _M.binary_loss_dz
_softmax_loss_dz = _M.softmax_loss_dz
_binary_hess_dz = _M.binary_hess_dz
_softmax_hess_dz_from_exp = _M.softmax_hess_dz_from_exp
_shrink = build_penalty(njit(inline="always", error_model="numpy"), np.float64).shrink


@njit(cache=True)
def n_blocks(nnz, d, k=1):
    """Number of row blocks (partial sums) of a gradient: a power of two, 1 to :data:`MAX_BLOCKS`.

    The largest power of two at most ``min(MAX_BLOCKS, work, memory)``:

    * ``work = nnz // max(2 (d + 2), MIN_BLOCK_NNZ)``: a block's partial is
      zeroed and added once per gradient, ``k (d + 2)`` entries, against the
      block's own scatter of ``k`` products per non-zero; so a block gets at
      least twice as many non-zeros as the partial has columns, and the O(k d)
      bookkeeping stays below the O(k nnz) work whatever ``k``;
    * ``memory = max(2, nnz // (2 k (d + 2)))``: all partials together hold
      at most ``nnz / 2`` float64s, except that two blocks are always allowed
      (one extra partial), so that both sweeps run on two threads. With the
      earlier rule, ``nnz // (2 k (d + 2))`` alone, text-like data with 20
      classes (50k rows x 100k columns) got one block and ran on one thread:
      its gradient went from 330 to 232 ms on a 2-core Zen 3 with two blocks;
      more blocks (4: 231 ms, 16: 348 ms) only added partials to zero and add.

    A power of two splits evenly over 2, 4, 8 or 16 threads (3 blocks on 2
    threads leave one idle for a third of the time). Depends only on the
    matrix's shape and non-zero count, never on the threads.
    """
    work = nnz // max(2 * (d + 2), MIN_BLOCK_NNZ)
    memory = max(2, nnz // (2 * k * (d + 2)))
    target = max(1, min(MAX_BLOCKS, work, memory))
    blocks = 1
    while 2 * blocks <= target:
        blocks *= 2
    return blocks


@njit(cache=True)
def block_bounds(indptr, n_blk):
    """Row boundaries (n_blk + 1,) that split the non-zeros into ``n_blk`` near-equal runs."""
    n = indptr.shape[0] - 1
    nnz = indptr[n]
    bounds = np.empty(n_blk + 1, np.int64)
    bounds[0] = 0
    bounds[n_blk] = n
    for t in range(1, n_blk):
        target = (nnz * t) // n_blk
        bounds[t] = max(bounds[t - 1], np.searchsorted(indptr[:n + 1], target, side="left"))
        bounds[t] = min(bounds[t], n)
    return bounds


@njit(inline="always")
def _reduce_blocks(partial, out):
    """``out = partial[0] + partial[1] + ...``, added in block order for every entry.

    Parallel over runs of 4,096 entries; each entry's sum has the same order
    whatever the threads, so the result is bitwise thread-count independent.
    """
    n_blk, m = partial.shape
    for cc in prange((m + 4095) // 4096):
        lo = cc * 4096
        hi = min(lo + 4096, m)
        for j in range(lo, hi):
            out[j] = partial[0, j]
        for t in range(1, n_blk):
            for j in range(lo, hi):
                out[j] += partial[t, j]


@njit(inline="always")
def _block_partials(indptr, d, k, width):
    """``(bounds, partial)``: the row blocks of :func:`n_blocks` / :func:`block_bounds` for a
    ``k × d`` model, and an uninitialised (n_blocks, width) float64 array, one partial per block."""
    n = indptr.shape[0] - 1
    bounds = block_bounds(indptr, n_blocks(indptr[n], d, k))
    return bounds, np.empty((bounds.shape[0] - 1, width))


@njit(inline="always")
def _hint_read(indices, p, A):
    """Prefetch row ``indices[p + PREFETCH_NNZ]`` of ``A`` (clamped to the last stored value)."""
    ahead = indices[min(p + PREFETCH_NNZ, indices.shape[0] - 1)]
    prefetch_rows(A, ahead, ahead + 1)


@njit(inline="always")
def _hint_write(indices, p, A):
    """:func:`_hint_read` for a row about to be updated (fetched for writing)."""
    ahead = indices[min(p + PREFETCH_NNZ, indices.shape[0] - 1)]
    prefetch_rows_for_write(A, ahead, ahead + 1)


@njit(inline="always")
def _row_scores(data, indices, indptr, i, W_T, b, z):
    """``z[c] = x_i · W[c] + b[c]`` for row ``i`` (W given as its (d, k) transpose), float64;
    the products summed from the row's first stored value, the intercept added last."""
    k = z.shape[0]
    for c in range(k):
        z[c] = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        _hint_read(indices, p, W_T)
        j = indices[p]
        v = np.float64(data[p])
        for c in range(k):
            z[c] += v * W_T[j, c]
    for c in range(k):
        z[c] += b[c]


@njit(inline="always")
def _scatter_rows(data, indices, indptr, r0, r1, D, acc, squared):
    """``acc[j, c] += D[i, c] · x_ij`` (``x_ij²`` when ``squared``) for rows ``r0 ≤ i < r1``:
    the scatter sweep of the k-column kernels, rows and stored values in order."""
    k = D.shape[1]
    for i in range(r0, r1):
        for p in range(indptr[i], indptr[i + 1]):
            _hint_write(indices, p, acc)
            j = indices[p]
            v = np.float64(data[p])
            if squared:
                v = v * v
            for c in range(k):
                acc[j, c] += D[i, c] * v


@njit(parallel=True, **_JIT)
def binary_loss_grad(data, indices, indptr, n_features, y, sample_weight, w, b, loss_id):
    """Weighted loss sum and gradient sum of a binary model on a CSR matrix.

    Two sweeps over each block of rows: scores, losses and ``dz`` of every row
    first (random reads of ``w`` only), then the scatter ``dz_i x_ij`` into
    the block's partial (random writes only). Fusing both per row makes the
    random accesses hit ``w`` and the partial at once, a working set of two
    d-vectors that falls out of cache at d ~ 10^6 (3-4x slower on a 2-core
    EPYC with a 2^20-column CTR set than the two sweeps).

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d): float32/float64 values, int32/int64 indices.
    n_features : int
        ``d``.
    y : ndarray of shape (n,), int32 in {0, 1}
    sample_weight : ndarray of shape (n,) or (0,), float64; empty = unit weights
    w : ndarray of shape (d,), float64
    b : float
    loss_id : int

    Returns
    -------
    ndarray of shape (d + 2,), float64
        ``[Σ s dz x_0, ..., Σ s dz x_{d-1}, Σ s dz, Σ s loss]`` (sums, as
        :func:`fastlr.kernels.cpu.binary_loss_grad`).
    """
    d = n_features
    n = indptr.shape[0] - 1
    bounds, partial = _block_partials(indptr, d, 1, d + 2)
    dz = np.empty(n)
    weighted = sample_weight.shape[0] > 0
    for t in prange(partial.shape[0]):
        acc = partial[t]
        acc[:] = 0.0
        loss_sum = 0.0
        dz_sum = 0.0
        for i in range(bounds[t], bounds[t + 1]):
            z = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                _hint_read(indices, p, w)
                z += np.float64(data[p]) * w[indices[p]]
            z += b
            loss, g = _binary_loss_dz(loss_id, z, math.exp(-abs(z)), np.float64(y[i]))
            if weighted:
                loss *= sample_weight[i]
                g *= sample_weight[i]
            loss_sum += loss
            dz_sum += g
            dz[i] = g
        for i in range(bounds[t], bounds[t + 1]):
            g = dz[i]
            for p in range(indptr[i], indptr[i + 1]):
                _hint_write(indices, p, acc)
                acc[indices[p]] += g * np.float64(data[p])
        acc[d] += dz_sum
        acc[d + 1] += loss_sum
    total = np.empty(d + 2)
    _reduce_blocks(partial, total)
    return total


@njit(parallel=True, **_JIT)
def multinomial_loss_grad(data, indices, indptr, n_features, y, sample_weight, W, b, loss_id):
    """Weighted loss sum and gradient sum of a softmax model on a CSR matrix.

    The same two sweeps per block as :func:`binary_loss_grad`, with ``dZ``
    (n, k) between them.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d).
    n_features : int
    y : ndarray of shape (n,), int32 in 0..k-1
    sample_weight : ndarray of shape (n,) or (0,), float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64
    loss_id : int

    Returns
    -------
    ndarray of shape (k, d + 2), float64
        As :func:`fastlr.kernels.cpu.multinomial_loss_grad`: column ``j < d``
        Σ s dz_c x_j, column ``d`` Σ s dz_c, ``[0, d + 1]`` the loss sum.
    """
    d = n_features
    k = W.shape[0]
    n = indptr.shape[0] - 1
    W_T = np.ascontiguousarray(W.T)  # (d, k): a row's k weights of column j lie together
    bounds, partial = _block_partials(indptr, d, k, (d + 2) * k)
    dZ = np.empty((n, k))
    weighted = sample_weight.shape[0] > 0
    for t in prange(partial.shape[0]):
        flat = partial[t]
        flat[:] = 0.0
        acc = flat.reshape((d + 2, k))
        loss_sum = 0.0
        for i in range(bounds[t], bounds[t + 1]):
            z = dZ[i]
            _row_scores(data, indices, indptr, i, W_T, b, z)
            loss = _softmax_loss_dz(loss_id, z, y[i], z)  # z <- d loss / d z
            s_i = sample_weight[i] if weighted else 1.0
            loss_sum += s_i * loss
            for c in range(k):
                z[c] *= s_i
                acc[d, c] += z[c]
        _scatter_rows(data, indices, indptr, bounds[t], bounds[t + 1], dZ, acc, False)
        acc[d + 1, 0] += loss_sum
    total = np.empty((d + 2) * k)
    _reduce_blocks(partial, total)
    return np.ascontiguousarray(total.reshape((d + 2, k)).T)


@njit(parallel=True, **_JIT)
def log_loss_hess_vec(data, indices, indptr, n_features, sample_weight, W, b, V, vb):
    """Weighted sum of log-loss Hessian-vector products on a CSR matrix.

    The sparse twin of :func:`fastlr.kernels.cpu.log_loss_hess_vec`: per
    sample ``[x, 1][x, 1]ᵀ ⊗ ∇²_z loss`` applied to ``(V, vb)``, with
    ``∇²_z loss = σ(z)(1 - σ(z))`` (binary) or ``diag(p) - p pᵀ`` (softmax;
    per-sample math from :func:`fastlr._math.build_math`). The same blocks and
    two sweeps per block as :func:`binary_loss_grad` (gather ``z = W x + b``
    and ``u = V x + vb``, then scatter ``s ∇²_z loss u`` times ``x``), so the
    result is bitwise identical for any number of threads.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d).
    n_features : int
    sample_weight : ndarray of shape (n,) or (0,), float64
    W, V : ndarray of shape (k, d), float64
        The coefficients and the direction's coefficient part.
    b, vb : ndarray of shape (k,), float64
        The intercepts and the direction's intercept part.

    Returns
    -------
    ndarray of shape (k, d + 1), float64
        ``Σ_i s_i (∇²_z loss_i)(V x_i + vb) ⊗ [x_i, 1]`` (sums, not means).
    """
    d = n_features
    k = W.shape[0]
    n = indptr.shape[0] - 1
    W_T = np.ascontiguousarray(W.T)
    V_T = np.ascontiguousarray(V.T)
    bounds, partial = _block_partials(indptr, d, k, (d + 1) * k)
    D = np.empty((n, k))
    weighted = sample_weight.shape[0] > 0
    for t in prange(partial.shape[0]):
        flat = partial[t]
        flat[:] = 0.0
        acc = flat.reshape((d + 1, k))
        e = np.empty(k)
        u = np.empty(k)
        for i in range(bounds[t], bounds[t + 1]):
            s_i = sample_weight[i] if weighted else 1.0
            if k == 1:
                z = 0.0
                ui = 0.0
                for p in range(indptr[i], indptr[i + 1]):
                    _hint_read(indices, p, W_T)
                    _hint_read(indices, p, V_T)
                    j = indices[p]
                    v = np.float64(data[p])
                    z += v * W_T[j, 0]
                    ui += v * V_T[j, 0]
                z += b[0]
                h = s_i * _binary_hess_dz(z, math.exp(-abs(z)), ui + vb[0])
                D[i, 0] = h
                acc[d, 0] += h
            else:
                for c in range(k):
                    e[c] = b[c]
                    u[c] = vb[c]
                for p in range(indptr[i], indptr[i + 1]):
                    _hint_read(indices, p, W_T)
                    _hint_read(indices, p, V_T)
                    j = indices[p]
                    v = np.float64(data[p])
                    for c in range(k):
                        e[c] += v * W_T[j, c]
                        u[c] += v * V_T[j, c]
                z_max = e[0]
                for c in range(1, k):
                    z_max = max(z_max, e[c])
                for c in range(k):
                    e[c] = math.exp(e[c] - z_max)
                _softmax_hess_dz_from_exp(e, u, e)
                for c in range(k):
                    D[i, c] = s_i * e[c]
                    acc[d, c] += D[i, c]
        _scatter_rows(data, indices, indptr, bounds[t], bounds[t + 1], D, acc, False)
    total = np.empty((d + 1) * k)
    _reduce_blocks(partial, total)
    return np.ascontiguousarray(total.reshape((d + 1, k)).T)


@njit(parallel=True, **_JIT)
def log_loss_hess_diag(data, indices, indptr, n_features, sample_weight, W, b):
    """Diagonal of the weighted log-loss Hessian sum on a CSR matrix.

    Entry ``(c, j)`` is ``Σ_i s_i h_ic x_ij²`` and ``(c, d)`` is ``Σ_i s_i h_ic``,
    with ``h_ic = σ(z_i)(1 - σ(z_i))`` for a binary model and
    ``p_ic (1 - p_ic)``, ``p_i = softmax(z_i)``, for a softmax one: the
    diagonal of the Hessian :func:`log_loss_hess_vec` multiplies by, used as
    Newton-CG's Jacobi preconditioner. In the blocks and two sweeps of
    :func:`log_loss_hess_vec`; bitwise identical for any number of threads.
    A column repeated within a row contributes the sum of its values'
    squares, not the square of their sum (exact for canonical CSR; a
    preconditioner needs only a positive diagonal of the right scale).

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d).
    n_features : int
    sample_weight : ndarray of shape (n,) or (0,), float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64

    Returns
    -------
    ndarray of shape (k, d + 1), float64
    """
    d = n_features
    k = W.shape[0]
    n = indptr.shape[0] - 1
    W_T = np.ascontiguousarray(W.T)
    bounds, partial = _block_partials(indptr, d, k, (d + 1) * k)
    H = np.empty((n, k))
    weighted = sample_weight.shape[0] > 0
    for t in prange(partial.shape[0]):
        flat = partial[t]
        flat[:] = 0.0
        acc = flat.reshape((d + 1, k))
        for i in range(bounds[t], bounds[t + 1]):
            h = H[i]
            _row_scores(data, indices, indptr, i, W_T, b, h)
            if k == 1:
                h[0] = _binary_hess_dz(h[0], math.exp(-abs(h[0])), 1.0)
            else:
                z_max = h[0]
                for c in range(1, k):
                    z_max = max(z_max, h[c])
                total = 0.0
                for c in range(k):
                    h[c] = math.exp(h[c] - z_max)
                    total += h[c]
                for c in range(k):
                    q = h[c] / total
                    h[c] = q * (1.0 - q)
            s_i = sample_weight[i] if weighted else 1.0
            for c in range(k):
                h[c] *= s_i
                acc[d, c] += h[c]
        _scatter_rows(data, indices, indptr, bounds[t], bounds[t + 1], H, acc, True)
    total_sum = np.empty((d + 1) * k)
    _reduce_blocks(partial, total_sum)
    return np.ascontiguousarray(total_sum.reshape((d + 1, k)).T)


@njit(parallel=True, **_JIT)
def column_moments(data, indices, indptr, n_features, sample_weight):
    """Weighted column means and variances of a CSR matrix, one pass over the non-zeros.

    ``mean_j = Σ s x_ij / S`` and ``var_j = Σ s x_ij² / S − mean_j²`` (clipped at
    0; the zeros a column does not store count as zeros). Summed in the blocks
    of :func:`binary_loss_grad` (bitwise thread-count independent), float64.
    A column repeated within a row counts as its values' sum for the mean and
    as the sum of its values' squares for the second moment (exact for
    canonical CSR; the moments only scale L-BFGS's coordinates).

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d).
    n_features : int
    sample_weight : ndarray of shape (n,) or (0,), float64

    Returns
    -------
    mean, var : ndarray of shape (d,), float64
    """
    d = n_features
    bounds, partial = _block_partials(indptr, d, 2, 2 * d + 1)
    weighted = sample_weight.shape[0] > 0
    for t in prange(partial.shape[0]):
        acc = partial[t]
        acc[:] = 0.0
        wsum = 0.0
        for i in range(bounds[t], bounds[t + 1]):
            s_i = sample_weight[i] if weighted else 1.0
            wsum += s_i
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                v = np.float64(data[p])
                acc[2 * j] += s_i * v
                acc[2 * j + 1] += s_i * v * v
        acc[2 * d] = wsum
    total = np.empty(2 * d + 1)
    _reduce_blocks(partial, total)
    S = total[2 * d]
    mean = np.empty(d)
    var = np.empty(d)
    for j in range(d):
        mean[j] = total[2 * j] / S if S > 0.0 else 0.0
        var[j] = max(total[2 * j + 1] / S - mean[j] * mean[j], 0.0) if S > 0.0 else 0.0
    return mean, var


@njit(parallel=True, **_JIT)
def decision_function(data, indices, indptr, W, b):
    """Raw scores ``X @ W.T + b`` of a CSR X, float64.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d).
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    n = indptr.shape[0] - 1
    k = W.shape[0]
    W_T = np.ascontiguousarray(W.T)  # (d, k): one column's k weights together
    out = np.empty((n, k))
    for i in prange(n):
        _row_scores(data, indices, indptr, i, W_T, b, out[i])
    return out


#: A step writes without an undo record when ``max |V| + Σ |update|`` over the
#: batch's coefficients stays below this: no write can then overflow.
SAFE_MAGNITUDE = 1e300


@njit(**_JIT)
def sgd_epoch(data, indices, indptr, y, sample_weight, rows, batch_order, batch_size, W, b,
              loss_id, alpha, fit_intercept, eta0, power_t, step0, mean_weight):
    """One epoch of mini-batch SGD on a CSR matrix, updating ``W`` and ``b`` in place.

    The same steps as :func:`fastlr.kernels.cpu.sgd_epoch`,
    ``W ← (1 − eta_t alpha) W − eta_t g / (m_b · mean_weight)``, with ``W``
    held as ``wscale · V``: the shrinkage (:func:`fastlr._penalty.build_penalty`
    ``shrink``) multiplies ``wscale`` and the
    gradient (non-zero only in the batch's columns) updates ``V`` there, so a
    step costs O(non-zeros in the batch · k). When ``|wscale|`` falls below
    :data:`WSCALE_MIN` it is folded into ``V`` (an O(k d) step, rare). ``V``
    is a (d, k) copy of ``W.T``, so a column's coefficients lie together;
    ``W = wscale · V.T`` is written back at the end of the epoch.

    Divergence is detected per step, not per write. The epoch keeps an upper
    bound on ``max |V|`` (the largest ``|W|`` at the start, then grown by every
    step's ``|step| · max |dz| · Σ |x|``, ``Σ |x|`` over the batch's stored
    values, gathered while the scores are formed). A step whose loss,
    intercept and ``wscale`` are finite and whose grown bound stays below
    :data:`SAFE_MAGNITUDE` cannot make a coefficient non-finite, and writes
    straight away (NaN or inf in X makes the loss non-finite first). Only a
    step past the bound (a diverging run) records the values it overwrites
    and checks each, so that it can be undone.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X (n, d).
    y : ndarray of shape (n,), int32
    sample_weight : ndarray of shape (n,) or (0,), float64
    rows : ndarray of shape (n,) or (0,), int64
        Row permutation (rows are read through it in place: CSR rows need no
        gathering). Empty: batches are runs of consecutive rows.
    batch_order : ndarray of shape (n_batches,), int64
    batch_size : int
    W : ndarray of shape (k, d), float64, updated in place
    b : ndarray of shape (k,), float64, updated in place
    loss_id : int
    alpha, eta0, power_t : float
    fit_intercept : bool
    step0 : int
    mean_weight : float

    Returns
    -------
    loss_sum : float
    n_steps : int
        Fewer than ``len(batch_order)`` if a step made the loss, a touched
        coefficient, the intercept or ``wscale`` non-finite; that step is
        undone, so ``W`` and ``b`` hold the last finite values.
    """
    n = indptr.shape[0] - 1
    k, d = W.shape
    # V = W.T (d, k): a column's k coefficients lie together (one cache line for a few
    # classes instead of k lines d apart); copied in and out once per epoch, O(k d).
    V = np.ascontiguousarray(W.T)
    v1 = V.reshape(V.shape[0] * V.shape[1])  # V's storage, 1-d: V[j, 0] for k = 1
    weighted = sample_weight.shape[0] > 0
    permuted = rows.shape[0] > 0
    prefetch = V.size * 8 > SGD_PREFETCH_MIN_BYTES
    dz = np.empty((batch_size, k))
    z = np.empty(k)
    b_prev = np.empty(k)
    # Values overwritten by a step past the safe bound, so that it can be undone.
    undo = np.empty(16)
    v_bound = 0.0  # an upper bound on max |V|, grown by each step's largest possible change
    for c in range(k):
        for j in range(d):
            v_bound = max(v_bound, abs(V[j, c]))
    wscale = 1.0
    loss_total = 0.0
    n_done = batch_order.shape[0]
    for step in range(batch_order.shape[0]):
        start = batch_order[step] * batch_size
        stop = min(start + batch_size, n)
        m = stop - start
        loss_sum = 0.0
        x_abs = 0.0  # Σ |x| over the batch's stored values
        dz_max = 0.0
        # Scores and derivatives of the whole batch first, at the current coefficients.
        for r in range(m):
            i = rows[start + r] if permuted else start + r
            p0 = indptr[i]
            p1 = indptr[i + 1]
            if prefetch and r + 1 < m:  # the next row's coefficients stream in while this row is scored
                i_next = rows[start + r + 1] if permuted else start + r + 1
                for p in range(indptr[i_next], indptr[i_next + 1]):
                    prefetch_rows(V, indices[p], indices[p] + 1)
            s_i = sample_weight[i] if weighted else 1.0
            if k == 1:
                zi = 0.0
                for p in range(p0, p1):
                    v = np.float64(data[p])
                    zi += v * v1[indices[p]]
                    x_abs += abs(v)
                zi = wscale * zi + b[0]
                loss, g = _binary_loss_dz(loss_id, zi, math.exp(-abs(zi)), np.float64(y[i]))
                loss_sum += s_i * loss
                dz[r, 0] = s_i * g
                dz_max = max(dz_max, abs(dz[r, 0]))
            else:
                for c in range(k):
                    z[c] = 0.0
                for p in range(p0, p1):
                    j = indices[p]
                    v = np.float64(data[p])
                    x_abs += abs(v)
                    for c in range(k):
                        z[c] += v * V[j, c]
                for c in range(k):
                    z[c] = wscale * z[c] + b[c]
                loss = _softmax_loss_dz(loss_id, z, y[i], z)
                loss_sum += s_i * loss
                for c in range(k):
                    dz[r, c] = s_i * z[c]
                    dz_max = max(dz_max, abs(dz[r, c]))
        eta = eta0 / (step0 + step + 1.0) ** power_t
        scale = 1.0 / (m * mean_weight)
        wscale_prev = wscale
        wscale *= _shrink(eta, alpha)
        finite = np.isfinite(loss_sum) and np.isfinite(wscale) and wscale != 0.0
        b_prev[:] = b
        if fit_intercept:
            for c in range(k):
                g_b = 0.0
                for r in range(m):
                    g_b += dz[r, c]
                b[c] -= eta * scale * g_b
                finite = finite and np.isfinite(b[c])
        n_written = 0
        if finite:
            step_v = eta * scale / wscale
            growth = abs(step_v) * dz_max * x_abs  # bounds every |change| of V in this step
            safe = v_bound + growth < SAFE_MAGNITUDE  # False if NaN
            if safe:
                v_bound += growth
            if safe and k == 1:
                for r in range(m):
                    i = rows[start + r] if permuted else start + r
                    g = step_v * dz[r, 0]
                    for p in range(indptr[i], indptr[i + 1]):
                        v1[indices[p]] -= g * np.float64(data[p])
            elif safe:
                for r in range(m):
                    i = rows[start + r] if permuted else start + r
                    for p in range(indptr[i], indptr[i + 1]):
                        j = indices[p]
                        v = np.float64(data[p])
                        for c in range(k):
                            V[j, c] -= step_v * dz[r, c] * v
            else:
                for r in range(m):
                    i = rows[start + r] if permuted else start + r
                    for p in range(indptr[i], indptr[i + 1]):
                        j = indices[p]
                        v = np.float64(data[p])
                        for c in range(k):
                            if n_written == undo.shape[0]:
                                bigger = np.empty(2 * undo.shape[0])
                                bigger[:n_written] = undo
                                undo = bigger
                            undo[n_written] = V[j, c]
                            n_written += 1
                            V[j, c] -= step_v * dz[r, c] * v
                            finite = finite and np.isfinite(V[j, c])
        if not finite:
            # Undo in reverse order of the writes (a column may appear in several rows).
            for r in range(m - 1, -1, -1):
                i = rows[start + r] if permuted else start + r
                for p in range(indptr[i + 1] - 1, indptr[i] - 1, -1):
                    j = indices[p]
                    for c in range(k - 1, -1, -1):
                        if n_written > 0:
                            n_written -= 1
                            V[j, c] = undo[n_written]
            b[:] = b_prev
            wscale = wscale_prev
            n_done = step
            break
        loss_total += loss_sum
        if abs(wscale) < WSCALE_MIN:
            V *= wscale
            v_bound *= abs(wscale)
            wscale = 1.0
    for c in range(k):
        for j in range(d):
            W[c, j] = wscale * V[j, c]
    return loss_total, n_done


@njit(parallel=True, fastmath=True, cache=True)
def read_csr(data, indices):
    """Sum of ``data`` plus sum of ``indices``: one parallel read of a CSR matrix's non-zeros.

    The read-bandwidth floor a sparse gradient is measured against (the
    benchmarks): a gradient cannot take less time than reading ``data`` and
    ``indices`` once. ``fastmath``: the last bits of the result mean nothing.
    """
    nnz = data.shape[0]
    n_blk = 64
    partial = np.zeros(n_blk)
    for t in prange(n_blk):
        s = 0.0
        for p in range(nnz * t // n_blk, nnz * (t + 1) // n_blk):
            s += np.float64(data[p]) + np.float64(indices[p])
        partial[t] = s
    return partial.sum()
