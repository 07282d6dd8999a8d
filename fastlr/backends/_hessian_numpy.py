"""The log loss's full Hessian in float64 NumPy/scipy, for dense or CSR X.

Holds: :func:`hessian_stride`, :func:`block_sample`, :func:`log_loss_hessian`.
May import: NumPy, scipy (no kernels, no backend): the ``numpy`` backend's
Hessian, and the ``cpu`` backend's for CSR X.
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax

#: Rows per block of the row sub-sample (the CPU kernels' chunk size, so that both
#: backends take the same rows).
BLOCK_ROWS = 2048


def hessian_stride(n, hessian_rows, block_rows=BLOCK_ROWS):
    """Every how many blocks of ``block_rows`` rows a Hessian of at least ``hessian_rows`` rows takes.

    Parameters
    ----------
    n : int
        Rows of X.
    hessian_rows : int or None
        Fewest rows wanted (None: all).
    block_rows : int

    Returns
    -------
    int
        ``max(1, n_blocks // ceil(hessian_rows / block_rows))``: 1 (all rows)
        unless X has at least twice as many blocks as the Hessian needs.
    """
    if hessian_rows is None:
        return 1
    n_blocks = -(-int(n) // block_rows)
    wanted = max(1, -(-int(hessian_rows) // block_rows))
    return max(1, n_blocks // wanted)


def block_sample(n, stride, block_rows=BLOCK_ROWS):
    """Row indices of every ``stride``-th block of ``block_rows`` rows, or None for all ``n`` rows.

    The rows :func:`hessian_stride` chooses, as the cpu kernels read them (blocks 0, stride,
    2 stride, ...): the numpy backend's Hessian and column moments take the same ones.

    Returns
    -------
    ndarray of shape (n_sampled,), int, or None when the blocks cover every row
    """
    starts = np.arange(0, n, block_rows)[::max(1, int(stride))]
    if len(starts) * block_rows >= n:
        return None
    return np.concatenate([np.arange(t, min(t + block_rows, n)) for t in starts])


def log_loss_hessian(X, sample_weight, W, b, stride=1, block_rows=BLOCK_ROWS):
    """``Σ s ∇²_z loss ⊗ x̃ x̃ᵀ`` (``x̃ = [x, 1]``) over every ``stride``-th block of rows, float64.

    Parameters
    ----------
    X : ndarray of shape (n, d), or scipy.sparse CSR matrix
    sample_weight : ndarray of shape (n,) or (0,), float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64
    stride : int
        Blocks of ``block_rows`` rows taken: 0, stride, 2 stride, ...
    block_rows : int

    Returns
    -------
    hess : ndarray of shape (k, d + 1, k, d + 1), float64
        ``∇²_z loss = σ'(z)`` for k = 1, ``diag(p) - p pᵀ`` otherwise.
    hess_weight : float
        ``Σ s`` over the rows taken.
    """
    n, d = X.shape
    k = W.shape[0]
    rows = block_sample(n, stride, block_rows)
    if rows is None:  # every row: no copy of X
        Xr = X
        s = sample_weight if sample_weight.shape[0] else np.ones(n)
    else:
        Xr = X[rows]
        s = sample_weight[rows] if sample_weight.shape[0] else np.ones(len(rows))
    X64 = Xr.astype(np.float64) if sp.issparse(Xr) else np.asarray(Xr, dtype=np.float64)
    Z = np.asarray(X64 @ W.T) + b
    hess = np.zeros((k, d + 1, k, d + 1))
    if k == 1:
        # σ(z) σ(-z) = σ'(z): scipy's expit neither overflows nor warns at large |z|, and
        # σ(-z) is exact where 1 - σ(z) would round to 0
        blocks = {(0, 0): s * expit(Z[:, 0]) * expit(-Z[:, 0])}
    else:
        P = softmax(Z, axis=1)
        blocks = {(c, c2): s * P[:, c] * ((c == c2) - P[:, c2]) for c in range(k) for c2 in range(c, k)}
    for (c, c2), v in blocks.items():
        block = np.empty((d + 1, d + 1))
        if sp.issparse(X64):
            Xv = X64.multiply(v[:, None]).tocsr()
            block[:d, :d] = (Xv.T @ X64).toarray()
            col = np.asarray(Xv.sum(axis=0)).ravel()
        else:
            Xv = X64 * v[:, None]
            block[:d, :d] = Xv.T @ X64
            col = Xv.sum(axis=0)
        block[:d, d] = col
        block[d, :d] = col
        block[d, d] = v.sum()
        hess[c, :, c2, :] = block
        hess[c2, :, c, :] = block.T
    flat = hess.reshape(k * (d + 1), k * (d + 1))
    flat[:] = 0.5 * (flat + flat.T)  # the products may round the two triangles differently
    return hess, float(s.sum())
