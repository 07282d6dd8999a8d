"""Numba CPU kernel for solver="newton-cholesky": loss, gradient and the full Hessian in one pass.

The log loss's Hessian in the parameters ``(W, b)`` is

    H = Σ_i s_i ∇²_z loss_i ⊗ x̃_i x̃_iᵀ,    x̃_i = [x_i, 1],

with ``∇²_z loss = σ(z)(1 - σ(z))`` for the binary model and
``diag(p) - p pᵀ`` (``p = softmax(z)``) for the softmax one: a
``k (d + 1)`` square matrix, formed here for the Newton-Cholesky solver of
:mod:`fastlr.trainer` (the method of scikit-learn's ``newton-cholesky``),
which pays where ``k (d + 1)`` is small and the problem is badly
conditioned or needs a tight tolerance.

Design:

* Rows are taken in the chunks of :mod:`fastlr.kernels.cpu`
  (:data:`~fastlr.kernels.cpu.CHUNK_ROWS` rows). The loss and gradient of a
  chunk come from the same row kernels as ``binary_loss_grad`` /
  ``multinomial_loss_grad`` into a partial per chunk, summed in chunk order
  (the same sums; bitwise those of ``binary_loss_grad`` on this Xeon).
* The Hessian may be summed over every ``stride``-th chunk only (a
  sub-sampled Hessian, see :func:`fastlr.trainer.train_newton_cholesky`).
* The chunk's Hessian is a matrix product: its rows ``x̃_i`` are copied once
  (in X's dtype, while the chunk is in L2 cache after the gradient sweep),
  scaled by ``sqrt(s_i σ'(z_i))`` for the binary model, so that the chunk's
  Hessian is ``X̃ᵀ X̃`` — one BLAS ``gemm`` through Numba's ``np.dot``
  (float32 X: accumulated in float32 over the chunk's rows, then added to a
  float64 partial: a Newton step needs the Hessian only approximately, the
  gradient decides where the iteration stops). For the softmax model the
  blocks ``c ≤ c'`` are ``(X̃ ∘ w_cc')ᵀ X̃`` with ``w_cc' = s p_c (δ_cc' - p_c')``.
* The Hessian partials are per group of consecutive chunks (at most
  :func:`fastlr._memory.hessian_groups` groups: 8, or up to 64 for small Hessians, so
  that the threads share the chunks evenly; sizes fixed by the shapes alone) and added in
  group order: bitwise the same Hessian for any number of threads. BLAS runs
  single-threaded inside Numba's threads (fastlr limits the BLAS pools while
  its kernels run).
"""

import math

import numpy as np
from numba import njit, prange

from .._math import LOG
from .._memory import hessian_groups
from .cpu import (
    _JIT, CHUNK_ROWS, _binary_rows, _block_scratch, _max_abs_exponent,
    _softmax_rows, _softmax_scratch,
)

# The log loss's id as an int64, not a literal: a literal 0 in the call made Numba compile
# _binary_rows / _softmax_rows once more for the type Literal[int](0) (8-11 s per dtype),
# where the gradient kernels' compilation for int64 serves (a global NumPy integer is typed int64).
_LOG_ID = np.int64(LOG)

_hessian_groups = njit(inline="always")(hessian_groups)


@njit(**_JIT)
def _groups(n, n_params):
    """``(n_chunks, chunks_per_group, n_groups)`` for ``n`` rows and ``n_params`` squared
    partial Hessians (:func:`fastlr._memory.hessian_groups` of them at most): a function of
    the shapes only."""
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    max_groups = _hessian_groups(n_params)
    per_group = max(1, (n_chunks + max_groups - 1) // max_groups)
    return n_chunks, per_group, (n_chunks + per_group - 1) // per_group


@njit(**_JIT)
def _binary_chunk_hessian(X, sample_weight, lo, hi, H, e_rows):
    """Add ``Σ s σ'(z) x̃ x̃ᵀ`` over rows ``lo:hi`` into ``H`` (d + 1, d + 1), float64.

    ``e_rows[r]`` is ``exp(-|z|)`` of row ``lo + r``, as :func:`_binary_rows` left it
    while it formed the chunk's gradient (0 for ``|z|`` beyond float64: no curvature
    there), so the scores and exponentials are not computed a second time. The weights
    ``sqrt(s σ'(z))``, with ``σ'(z) = e / (1 + e)²``, are formed in ``e_rows`` (overwritten)
    in one vectorised sweep.
    """
    d = X.shape[1]
    m = hi - lo
    weighted = sample_weight.shape[0] > 0
    for r in range(m):
        q = 1.0 / (1.0 + e_rows[r])
        e_rows[r] = e_rows[r] * q * q
    if weighted:
        for r in range(m):
            e_rows[r] *= sample_weight[lo + r]
    for r in range(m):
        e_rows[r] = math.sqrt(e_rows[r])
    Xs = np.empty((m, d + 1), X.dtype)
    for r in range(m):
        root = X.dtype.type(e_rows[r])
        for j in range(d):
            Xs[r, j] = root * X[lo + r, j]
        Xs[r, d] = root
    H += np.dot(Xs.T, Xs)


@njit(**_JIT)
def _softmax_chunk_hessian(X, sample_weight, lo, hi, W, b, H):
    """Add ``Σ s (diag p - p pᵀ) ⊗ x̃ x̃ᵀ`` over rows ``lo:hi`` into ``H`` (k, d + 1, k, d + 1)."""
    d = X.shape[1]
    k = W.shape[0]
    m = hi - lo
    weighted = sample_weight.shape[0] > 0
    Xt = np.empty((m, d + 1), X.dtype)
    P = np.empty((m, k))
    for r in range(m):
        for j in range(d):
            Xt[r, j] = X[lo + r, j]
        Xt[r, d] = 1
        z_max = -np.inf
        for c in range(k):
            z = b[c]
            for j in range(d):
                z += X[lo + r, j] * W[c, j]
            P[r, c] = z
            z_max = max(z_max, z)
        total = 0.0
        for c in range(k):
            P[r, c] = math.exp(P[r, c] - z_max)
            total += P[r, c]
        for c in range(k):
            P[r, c] *= 1.0 / total
    Xw = np.empty((m, d + 1), X.dtype)
    for c in range(k):
        for c2 in range(c, k):
            for r in range(m):
                s = sample_weight[lo + r] if weighted else 1.0
                v = s * P[r, c] * ((1.0 if c == c2 else 0.0) - P[r, c2])
                vx = X.dtype.type(v)
                for j in range(d + 1):
                    Xw[r, j] = vx * Xt[r, j]
            H[c, :, c2, :] += np.dot(Xw.T, Xt)


@njit(**_JIT)
def _finish(partial_g, partial_h, partial_s, k, d):
    """Sum the chunk and group partials in order, mirror the blocks, average the triangles."""
    total = np.zeros((k, d + 2))
    for c in range(partial_g.shape[0]):
        total += partial_g[c]
    hess = np.zeros((k, d + 1, k, d + 1))
    for g in range(partial_h.shape[0]):
        hess += partial_h[g]
    for c in range(k):  # the softmax kernel wrote the blocks c <= c2: mirror them
        for c2 in range(c + 1, k):
            hess[c2, :, c, :] = hess[c, :, c2, :].T
    # a product X̃ᵀ(v X̃) may round its two triangles differently: average them
    p = k * (d + 1)
    flat = hess.reshape(p, p)
    for i in range(p):
        for j in range(i + 1, p):
            mean = 0.5 * (flat[i, j] + flat[j, i])
            flat[i, j] = mean
            flat[j, i] = mean
    hess_weight = 0.0
    for c in range(partial_s.shape[0]):
        hess_weight += partial_s[c]
    grad = np.empty((k, d + 1))
    grad[:, :d] = total[:, :d]
    grad[:, d] = total[:, d]
    return total[0, d + 1], grad, hess, hess_weight


@njit(parallel=True, **_JIT)
def binary_loss_grad_hess(X, y, sample_weight, W, b, stride):
    """Log-loss sum, gradient sum and Hessian sum of a binary model (k = 1), one pass over X.

    :func:`multinomial_loss_grad_hess` is the softmax model's (a kernel of its own, so that a
    binary fit compiles only the binary path).

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    y : ndarray of shape (n,), int32 in 0..k-1 ({0, 1} for k = 1)
    sample_weight : ndarray of shape (n,) or (0,), float64
        An empty array means unit weights.
    W : ndarray of shape (k, d), float64
        ``k == 1``: the binary (sigmoid) model.
    b : ndarray of shape (k,), float64
    stride : int, >= 1
        The Hessian is summed over every ``stride``-th chunk of
        :data:`~fastlr.kernels.cpu.CHUNK_ROWS` rows (chunks 0, stride,
        2 stride, ...); the loss and gradient over all rows. 1: all rows.

    Returns
    -------
    loss : float
        ``Σ s loss``.
    grad : ndarray of shape (k, d + 1), float64
        ``Σ s dz_c x̃`` (intercept last): the sums of ``binary_loss_grad``
        / ``multinomial_loss_grad``, from the same row kernels.
    hess : ndarray of shape (k, d + 1, k, d + 1), float64
        ``Σ s ∇²_z loss ⊗ x̃ x̃ᵀ`` over the Hessian's rows, symmetric.
    hess_weight : float
        ``Σ s`` over the Hessian's rows (their count for unit weights).
    """
    n, d = X.shape
    n_chunks, per_group, n_groups = _groups(n, d + 1)
    partial_g = np.zeros((n_chunks, 1, d + 2))
    partial_h = np.zeros((n_groups, 1, d + 1, 1, d + 1))
    partial_s = np.zeros(n_chunks)
    ew = _max_abs_exponent(W)
    weighted = sample_weight.shape[0] > 0
    for g in prange(n_groups):
        for c in range(g * per_group, min((g + 1) * per_group, n_chunks)):
            lo = c * CHUNK_ROWS
            hi = min(lo + CHUNK_ROWS, n)
            hessian_chunk = c % stride == 0
            # a chunk that adds to the Hessian keeps its rows' exp(-|z|) from the gradient sweep
            scratch = _block_scratch(d, X.dtype, hi - lo if hessian_chunk else 0)
            _binary_rows(X, y, sample_weight, lo, hi, W[0], b[0], _LOG_ID, partial_g[c, 0],
                         scratch, ew)
            if hessian_chunk:
                partial_s[c] = sample_weight[lo:hi].sum() if weighted else hi - lo
                _binary_chunk_hessian(X, sample_weight, lo, hi, partial_h[g, 0, :, 0, :], scratch[4])
    return _finish(partial_g, partial_h, partial_s, W.shape[0], d)


@njit(parallel=True, **_JIT)
def multinomial_loss_grad_hess(X, y, sample_weight, W, b, stride):
    """:func:`binary_loss_grad_hess` for a softmax model (k >= 2 classes, ``y`` in 0..k-1)."""
    n, d = X.shape
    k = W.shape[0]
    n_chunks, per_group, n_groups = _groups(n, k * (d + 1))
    partial_g = np.zeros((n_chunks, k, d + 2))
    partial_h = np.zeros((n_groups, k, d + 1, k, d + 1))
    partial_s = np.zeros(n_chunks)
    ew = _max_abs_exponent(W)
    W_x = W.astype(X.dtype)
    weighted = sample_weight.shape[0] > 0
    for g in prange(n_groups):
        for c in range(g * per_group, min((g + 1) * per_group, n_chunks)):
            lo = c * CHUNK_ROWS
            hi = min(lo + CHUNK_ROWS, n)
            _softmax_rows(X, y, sample_weight, lo, hi, W_x, b, _LOG_ID, partial_g[c],
                          _softmax_scratch(k, d, X.dtype), W, ew)
            if c % stride == 0:
                partial_s[c] = sample_weight[lo:hi].sum() if weighted else hi - lo
                _softmax_chunk_hessian(X, sample_weight, lo, hi, W, b, partial_h[g])
    return _finish(partial_g, partial_h, partial_s, k, d)
