"""Numba CPU kernels: loss and gradient in one pass over X, one SGD epoch, scores.

Design notes (see DESIGN.md §3):

* One fused pass per row: the score ``z`` is computed from the row while it
  is in L1 cache, then ``dz · x`` is accumulated from the same row. X is read
  from memory exactly once per gradient.
* Rows are split into chunks of :data:`CHUNK_ROWS` rows, a constant that does
  not depend on the thread count. Each chunk accumulates into its own row of
  a partial-sum array (``prange`` over chunks: no shared ``grad[j] +=`` race),
  and the partials are added serially in chunk order. The result is therefore
  bitwise identical for any number of threads, run after run.
* All arithmetic is float64, whatever X's dtype: float32 X is read as it is
  (no copy) and converted in registers; a memory-bound loop pays nothing for it.
* ``fastmath`` allows only re-association and contraction (so the dot
  product vectorises); NaN/inf semantics stay IEEE.
"""

import math
import threading
from contextlib import nullcontext

import numba
import numpy as np
from numba import njit, prange

from .._math import build_math

#: Rows per partial sum. Fixed, so summation order never depends on the thread count.
CHUNK_ROWS = 2048

#: Rows whose scores are computed together, so that the exp / log of the loss
#: run as one vectorised loop; the block's rows are then still in L1 cache
#: when ``dz · x`` is accumulated from them.
BLOCK_ROWS = 16

_FASTMATH = {"reassoc", "contract"}

# error_model="numpy": a float division by zero gives inf as in NumPy instead of
# raising, which removes the check per division that stops LLVM vectorising.
_JIT = {"cache": True, "fastmath": _FASTMATH, "error_model": "numpy"}

_M = build_math(njit(inline="always", error_model="numpy"), np.float64)
_binary_loss_dz = _M.binary_loss_dz
_softmax_loss_dz_from_exp = _M.softmax_loss_dz_from_exp

# exp(x) for -708 <= x <= 0 as 2^k · p(t): Cody–Waite reduction t = x - k ln 2
# (|t| <= ln2 / 2) and the Taylor polynomial of e^t to degree 13 (error < 1e-17).
# 2^k is built from its bit pattern, so the loop has no call and vectorises;
# libm's scalar exp made the whole gradient twice as slow.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634
# 1 / n!, written out in the Horner chain: a loop over a tuple does not vectorise.
_F2, _F3, _F4, _F5, _F6, _F7, _F8, _F9, _F10, _F11, _F12, _F13 = (
    1.0 / math.factorial(n) for n in range(2, 14))


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exp_neg_abs(z, m, e, bits):
    """``e[r] = exp(-|z[r]|)`` for ``r < m`` (0 for ``|z| > 708``); ``bits``: int64 scratch of len(e)."""
    scale = bits.view(np.float64)
    for r in range(m):
        x = max(-abs(z[r]), -708.0)
        k = math.floor(x * _LOG2E + 0.5)
        t = x - k * _LN2_HI - k * _LN2_LO
        p = _F13 * t + _F12
        p = p * t + _F11
        p = p * t + _F10
        p = p * t + _F9
        p = p * t + _F8
        p = p * t + _F7
        p = p * t + _F6
        p = p * t + _F5
        p = p * t + _F4
        p = p * t + _F3
        p = p * t + _F2
        p = p * t + 1.0
        p = p * t + 1.0
        bits[r] = (np.int64(k) + 1023) << 52
        e[r] = p
    for r in range(m):  # beyond the clamp the exact value underflows: 0 (and exp(-inf) = 0)
        e[r] = 0.0 if abs(z[r]) > 708.0 else e[r] * scale[r]


@njit(inline="always")
def _exponent(m):
    """``e`` with ``m < 2**e`` for ``m > 0`` (``frexp``), 0 for ``m == 0``."""
    return math.frexp(m)[1] if m > 0.0 else 0


@njit(**_JIT)
def _max_abs_exponent(W):
    """Binary exponent bounding every ``|W[c, j]|`` (for :func:`_scaled_score`)."""
    m = 0.0
    for c in range(W.shape[0]):
        for j in range(W.shape[1]):
            m = max(m, abs(W[c, j]))
    return _exponent(m)


@njit(**_JIT)
def _row_exponent(X, i):
    m = 0.0
    for j in range(X.shape[1]):
        m = max(m, abs(np.float64(X[i, j])))
    return _exponent(m)


@njit(**_JIT)
def _scaled_score(X, i, w, b, ex, ew):
    """``(x_i·w + b) · 2**-(ex + ew)`` in float64, with no overflow.

    ``2**ex`` and ``2**ew`` bound ``|x_i|`` and ``|w|``, so every scaled product
    is at most 1 in magnitude. The rare path of the kernels, taken for a row
    whose score overflowed X's precision (or float64): the scores of finite X
    and w are then formed as if the exponent range were unbounded, and
    ``ldexp`` of the result rounds to ±inf only when the true score is beyond
    the float64 range. Terms this drops by underflow are below 2**-1074 of the
    largest one, far inside the dot product's own rounding error.
    """
    s = 0.0
    for j in range(X.shape[1]):
        s += math.ldexp(np.float64(X[i, j]), -ex) * math.ldexp(w[j], -ew)
    return s + math.ldexp(b, -(ex + ew))


@njit(inline="always")
def _block_scratch(d, dtype):
    """Scratch arrays for :func:`_binary_rows`: z, e, bits, dz, acc_block."""
    return (np.empty(BLOCK_ROWS), np.empty(BLOCK_ROWS), np.empty(BLOCK_ROWS, np.int64),
            np.empty(BLOCK_ROWS, dtype), np.empty(d, dtype))


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _add_weighted_rows(X, s0, m, g, out):
    """``out[:] = Σ_r g[r] · X[s0 + r]`` over ``r < m``, summed in a fixed order.

    Four rows per sweep of ``out``: one load and one store of ``out[j]`` per
    four multiply-adds (a sweep per row was bound by those loads and stores).
    """
    out[:] = 0
    r = 0
    while r + 4 <= m:
        g0 = g[r]
        g1 = g[r + 1]
        g2 = g[r + 2]
        g3 = g[r + 3]
        for j in range(X.shape[1]):
            out[j] += (g0 * X[s0 + r, j] + g1 * X[s0 + r + 1, j]) + (
                g2 * X[s0 + r + 2, j] + g3 * X[s0 + r + 3, j])
        r += 4
    while r < m:
        for j in range(X.shape[1]):
            out[j] += g[r] * X[s0 + r, j]
        r += 1


@njit(**_JIT)
def _binary_rows(X, y, sample_weight, start, stop, w, b, loss_id, acc, scratch, w64, ew):
    """Add the weighted sums of rows ``start:stop`` of a binary model into ``acc``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), int32
    sample_weight : ndarray of shape (n,) or (0,)
    start, stop : int
    w : ndarray of shape (d,), dtype of X
        Scores are dot products in X's precision; everything after the dot
        product (loss, derivative, partial sums) is float64, except the
        ``BLOCK_ROWS``-row partial of ``dz · x``, kept in X's dtype.
    b : float
    loss_id : int
    acc : ndarray of shape (d + 2,), float64
        Receives Σ s dz x_j (columns < d), Σ s dz (column d), Σ s loss (column d + 1).
    scratch : tuple from :func:`_block_scratch`
    w64 : ndarray of shape (d,), float64
        ``w`` before rounding to X's dtype: a score that overflowed is formed
        again from it by :func:`_scaled_score`, so finite X and w never give NaN.
    ew : int
        :func:`_max_abs_exponent` of ``w64``.
    """
    z, e, bits, dz, acc_block = scratch
    d = X.shape[1]
    weighted = sample_weight.shape[0] > 0
    for s0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - s0)
        # Scores two rows at a time (each w[j] loaded once for both), then the odd row.
        r = 0
        while r + 2 <= m:
            z0 = X[s0 + r, 0] * w[0]
            z1 = X[s0 + r + 1, 0] * w[0]
            for j in range(1, d):
                z0 += X[s0 + r, j] * w[j]
                z1 += X[s0 + r + 1, j] * w[j]
            z[r] = z0 + b
            z[r + 1] = z1 + b
            r += 2
        if r < m:
            zr = X[s0 + r, 0] * w[0]
            for j in range(1, d):
                zr += X[s0 + r, j] * w[j]
            z[r] = zr + b
        for r in range(m):  # the rare path: a score beyond X's precision (or float64)
            if not math.isfinite(z[r]):
                ex = _row_exponent(X, s0 + r)
                z[r] = math.ldexp(_scaled_score(X, s0 + r, w64, b, ex, ew), ex + ew)
        _exp_neg_abs(z, m, e, bits)
        # Per-row values first (z <- loss, e <- dz), sums in a separate loop: a loop
        # that both stores and reduces gets a runtime alias check from LLVM, and
        # which path it takes (vector or scalar, two summation orders) would then
        # depend on where the scratch arrays happen to lie in memory.
        for r in range(m):
            loss, g = _binary_loss_dz(loss_id, z[r], e[r], np.float64(y[s0 + r]))
            if weighted:
                loss *= sample_weight[s0 + r]
                g *= sample_weight[s0 + r]
            z[r] = loss
            e[r] = g
            dz[r] = g
        loss_sum = 0.0
        dz_sum = 0.0
        for r in range(m):
            loss_sum += z[r]
            dz_sum += e[r]
        acc[d] += dz_sum
        acc[d + 1] += loss_sum
        _add_weighted_rows(X, s0, m, dz, acc_block)
        for j in range(d):
            acc[j] += acc_block[j]


@njit(inline="always")
def _softmax_scratch(k, d, dtype):
    """Scratch arrays for :func:`_softmax_rows`: Z, shifted, e, bits, dz, acc_block."""
    n = BLOCK_ROWS * k
    return (np.empty((BLOCK_ROWS, k)), np.empty(n), np.empty(n), np.empty(n, np.int64),
            np.empty((k, BLOCK_ROWS), dtype), np.empty(d, dtype))


@njit(**_JIT)
def _softmax_rows(X, y, sample_weight, start, stop, W, b, loss_id, acc, scratch, W64, ew):
    """Add the weighted sums of rows ``start:stop`` of a softmax model into ``acc``.

    The same blocking as :func:`_binary_rows`: scores of ``BLOCK_ROWS`` rows,
    then all their ``exp(z_c - max z)`` in one vectorised sweep, then the
    per-sample loss and derivative, then ``dz_c · x`` from the cached rows.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), int32 in 0..k-1
    sample_weight : ndarray of shape (n,) or (0,)
    start, stop : int
    W : ndarray of shape (k, d), dtype of X
    b : ndarray of shape (k,), float64
    loss_id : int
    acc : ndarray of shape (k, d + 2), float64
        Receives Σ s dz_c x_j, Σ s dz_c, and the loss sum in ``acc[0, d + 1]``.
    scratch : tuple from :func:`_softmax_scratch`
    W64 : ndarray of shape (k, d), float64
        ``W`` before rounding to X's dtype: a row with a score that overflowed
        gets its shifted scores ``z_c - max z`` from :func:`_scaled_score`
        (exact up to rounding, possibly -inf, never NaN).
    ew : int
        :func:`_max_abs_exponent` of ``W64``.
    """
    Z, shifted, e, bits, dz, acc_block = scratch
    d = X.shape[1]
    k = W.shape[0]
    weighted = sample_weight.shape[0] > 0
    for s0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - s0)
        for r in range(m):
            for cls in range(k):
                s = X[s0 + r, 0] * W[cls, 0]
                for j in range(1, d):
                    s += X[s0 + r, j] * W[cls, j]
                Z[r, cls] = s + b[cls]
        for r in range(m):
            z_max = Z[r, 0]
            for cls in range(1, k):
                z_max = max(z_max, Z[r, cls])
            for cls in range(k):
                shifted[r * k + cls] = Z[r, cls] - z_max
        for r in range(m):  # the rare path: a score beyond X's precision (or float64)
            finite = True
            for cls in range(k):
                finite &= math.isfinite(Z[r, cls])
            if not finite:
                ex = _row_exponent(X, s0 + r)
                for cls in range(k):
                    Z[r, cls] = _scaled_score(X, s0 + r, W64[cls], b[cls], ex, ew)
                z_max = Z[r, 0]
                for cls in range(1, k):
                    z_max = max(z_max, Z[r, cls])
                for cls in range(k):
                    shifted[r * k + cls] = math.ldexp(Z[r, cls] - z_max, ex + ew)
        _exp_neg_abs(shifted, m * k, e, bits)  # shifted <= 0, so exp(-|t|) = exp(t)
        loss_sum = 0.0
        for r in range(m):
            row = e[r * k:(r + 1) * k]
            loss = _softmax_loss_dz_from_exp(loss_id, shifted[r * k + y[s0 + r]], row, y[s0 + r], row)
            s_i = sample_weight[s0 + r] if weighted else 1.0
            loss_sum += s_i * loss
            for cls in range(k):
                g = s_i * row[cls]
                dz[cls, r] = g
                acc[cls, d] += g
        acc[0, d + 1] += loss_sum
        for cls in range(k):
            _add_weighted_rows(X, s0, m, dz[cls], acc_block)
            for j in range(d):
                acc[cls, j] += acc_block[j]


@njit(parallel=True, **_JIT)
def binary_loss_grad(X, y, sample_weight, w, b, loss_id):
    """Weighted loss sum and gradient sum of a binary model, one pass over X.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    y : ndarray of shape (n,), int32 in {0, 1}
    sample_weight : ndarray of shape (n,) or (0,), float64
        An empty array means unit weights.
    w : ndarray of shape (d,), float64
    b : float
    loss_id : int

    Returns
    -------
    ndarray of shape (d + 2,), float64
        ``[Σ s dz x_0, ..., Σ s dz x_{d-1}, Σ s dz, Σ s loss]`` (sums, not means).
    """
    n, d = X.shape
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    w_x = w.astype(X.dtype)
    ew = _max_abs_exponent(w.reshape(1, -1))
    partial = np.zeros((n_chunks, d + 2))
    for c in prange(n_chunks):
        _binary_rows(X, y, sample_weight, c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n),
                     w_x, b, loss_id, partial[c], _block_scratch(d, X.dtype), w, ew)
    total = np.zeros(d + 2)
    for c in range(n_chunks):
        total += partial[c]
    return total


@njit(parallel=True, **_JIT)
def multinomial_loss_grad(X, y, sample_weight, W, b, loss_id):
    """Weighted loss sum and gradient sum of a softmax model, one pass over X.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    y : ndarray of shape (n,), int32 in 0..k-1
    sample_weight : ndarray of shape (n,) or (0,), float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64
    loss_id : int

    Returns
    -------
    ndarray of shape (k, d + 2), float64
        Column ``j < d`` holds Σ s dz_c x_j, column ``d`` Σ s dz_c, and
        element ``[0, d + 1]`` the weighted loss sum.
    """
    n, d = X.shape
    k = W.shape[0]
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    W_x = W.astype(X.dtype)
    ew = _max_abs_exponent(W)
    partial = np.zeros((n_chunks, k, d + 2))
    for c in prange(n_chunks):
        _softmax_rows(X, y, sample_weight, c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n),
                      W_x, b, loss_id, partial[c], _softmax_scratch(k, d, X.dtype), W, ew)
    total = np.zeros((k, d + 2))
    for c in range(n_chunks):
        total += partial[c]
    return total


@njit(**_JIT)
def sgd_epoch(X, y, sample_weight, rows, batch_order, batch_size, W, b, loss_id,
              alpha, fit_intercept, eta0, power_t, step0, mean_weight):
    """One epoch of mini-batch SGD, updating ``W`` and ``b`` in place.

    Each batch takes the step ``W -= eta_t (g / (m_b · mean_weight) + alpha W)``
    (and ``b -= eta_t g_b / (m_b · mean_weight)``), where ``g`` is the batch's
    weighted gradient sum and ``m_b`` its number of rows: the averaged gradient
    of the seed, an unbiased estimate of the full mean gradient when samples
    are weighted. ``eta_t = eta0 / t**power_t`` with ``t = step0 + 1, 2, ...``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), int32
    sample_weight : ndarray of shape (n,) or (0,), float64
    rows : ndarray of shape (n,) or (0,), int64
        Row permutation: batches are gathered through it into a contiguous
        buffer. Empty: batches are runs of consecutive rows, read in place.
    batch_order : ndarray of shape (n_batches,), int64
        The order in which batches (of consecutive positions) are visited.
    batch_size : int
    W : ndarray of shape (k, d), float64, updated in place
    b : ndarray of shape (k,), float64, updated in place
    loss_id : int
    alpha : float
        L2 penalty strength of the mean objective (0 for none).
    fit_intercept : bool
    eta0, power_t : float
    step0 : int
        Steps taken before this epoch (for the invscaling schedule).
    mean_weight : float
        Mean sample weight over the whole data set (1 when unweighted).

    Returns
    -------
    loss_sum : float
        Weighted sum of per-sample losses, each taken at the coefficients
        in force when its batch was visited.
    n_steps : int
        Steps taken; fewer than ``len(batch_order)`` if the iterate diverged,
        in which case ``W`` and ``b`` hold the last finite values.
    """
    n, d = X.shape
    k = W.shape[0]
    weighted = sample_weight.shape[0] > 0
    gathered = rows.shape[0] > 0
    X_batch = np.empty((batch_size if gathered else 0, d), X.dtype)
    y_batch = np.empty(batch_size if gathered else 0, y.dtype)
    sw_batch = np.empty(batch_size if gathered and weighted else 0)
    acc = np.empty((k, d + 2))
    scratch = _block_scratch(d, X.dtype)
    softmax_scratch = _softmax_scratch(k, d, X.dtype)
    W_x = np.empty((k, d), X.dtype)
    W_prev = np.empty((k, d))
    b_prev = np.empty(k)
    loss_total = 0.0
    for step in range(batch_order.shape[0]):
        start = batch_order[step] * batch_size
        stop = min(start + batch_size, n)
        Xb, yb, swb, lo, hi = X, y, sample_weight, start, stop
        if gathered:
            for r in range(stop - start):
                X_batch[r] = X[rows[start + r]]
                y_batch[r] = y[rows[start + r]]
                if weighted:
                    sw_batch[r] = sample_weight[rows[start + r]]
            Xb, yb, swb, lo, hi = X_batch, y_batch, sw_batch, 0, stop - start
        acc[:] = 0.0
        W_x[:] = W  # scores in X's precision, as in the full-gradient kernels
        ew = _max_abs_exponent(W)
        if k == 1:
            _binary_rows(Xb, yb, swb, lo, hi, W_x[0], b[0], loss_id, acc[0], scratch, W[0], ew)
        else:
            _softmax_rows(Xb, yb, swb, lo, hi, W_x, b, loss_id, acc, softmax_scratch, W, ew)
        loss_sum = acc[0, d + 1]
        eta = eta0 / (step0 + step + 1.0) ** power_t
        scale = 1.0 / ((stop - start) * mean_weight)
        W_prev[:] = W
        b_prev[:] = b
        finite = np.isfinite(loss_sum)
        for cls in range(k):
            for j in range(d):
                W[cls, j] -= eta * (scale * acc[cls, j] + alpha * W[cls, j])
                finite &= np.isfinite(W[cls, j])
            if fit_intercept:
                b[cls] -= eta * scale * acc[cls, d]
                finite &= np.isfinite(b[cls])
        if not finite:
            W[:] = W_prev
            b[:] = b_prev
            return loss_total, step
        loss_total += loss_sum
    return loss_total, batch_order.shape[0]


@njit(parallel=True, **_JIT)
def decision_function(X, W, b):
    """Raw scores ``X @ W.T + b`` in float64 without copying X.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    n, d = X.shape
    k = W.shape[0]
    out = np.empty((n, k))
    for i in prange(n):
        for cls in range(k):
            s = b[cls]
            for j in range(d):
                s += X[i, j] * W[cls, j]
            out[i, cls] = s
    return out


@njit(parallel=True, fastmath=True, cache=True)
def read_sum(X):
    """Sum of all elements of a C-contiguous 2-D X: one parallel read of X, nothing else.

    The read-bandwidth floor that a one-pass kernel such as ``binary_loss_grad``
    is measured against (``fastlr bench`` and the asv suites): a gradient over
    X cannot take less time than this. Rows are split into chunks of
    :data:`CHUNK_ROWS`, as in the gradient kernels; ``prange`` hands the chunks
    to threads, each sums into its own float64 partial, and the partials are
    added at the end. Indexed as 2-D rows, which LLVM vectorises (a loop over
    ``X.reshape(-1)`` did not, and ran 5x slower: a compute-bound "ceiling").
    ``fastmath`` lets the sum re-associate, so the last bits of the result
    are not meaningful; only the time is.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous

    Returns
    -------
    float
    """
    n, d = X.shape
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    partial = np.zeros(n_chunks)
    for c in prange(n_chunks):
        s = 0.0
        for i in range(c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n)):
            for j in range(d):
                s += X[i, j]
        partial[c] = s
    return partial.sum()


@njit(parallel=True, cache=True)
def _touch_threads(n):
    total = 0.0
    for i in prange(n):
        total += i
    return total


_lock = threading.Lock()
_needs_lock = None


def parallel_guard():
    """A context manager to hold while a parallel kernel runs.

    Numba's ``workqueue`` threading layer aborts the process when parallel
    kernels are entered from two Python threads at once; ``tbb`` and ``omp``
    do not. Which layer Numba loads is only known after the first parallel
    call, so that call is made once here under the lock. With workqueue every
    kernel call is serialised; with the others this returns a no-op context.
    """
    global _needs_lock
    if _needs_lock is None:
        with _lock:
            if _needs_lock is None:
                _touch_threads(4)
                _needs_lock = numba.threading_layer() == "workqueue"
    return _lock if _needs_lock else nullcontext()
