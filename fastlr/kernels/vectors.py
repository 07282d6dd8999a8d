"""Numba CPU kernels for L-BFGS's work on its correction pairs: one pass each, parallel, deterministic.

L-BFGS (:mod:`fastlr._lbfgs`) keeps ``m`` pairs ``(s_i, y_i)`` of vectors as
long as the model (a million coefficients and more for sparse data), and
each iteration needs their inner products with two vectors and one linear
combination of them. Done as separate NumPy calls (a dot product or an
``axpy`` per pair) that is ``4 m`` single-threaded passes over ``m``-times the
model's size; scipy's L-BFGS-B, single-threaded too, took 38 ms per call at
2^20 coefficients, more than the sparse gradient itself. These kernels read
every stored pair once per call, in parallel (at 2^20 entries and 10 pairs,
168 MB: 6-8 ms each on a 2-core Zen 3):

* :func:`pair_dots`: ``s_i · a``, ``y_i · a``, ``s_i · b``, ``y_i · b`` for
  the listed pairs;
* :func:`combine`: ``-(gamma g + Σ p_i s_i + Σ q_i y_i)``.

Vectors are cut into chunks of :data:`CHUNK` entries (a constant, not the
thread count); each chunk's dot products go to its own row of partials,
added in chunk order. The results are bitwise identical for any number of
threads. Below :data:`PARALLEL_MIN` entries the same code runs without a
parallel region (compiled with ``parallel=False``: the same chunks, so the
same sums).
"""

import numpy as np
from numba import njit, prange

from .cpu import parallel_guard

#: Entries per chunk of a dot product's partial sums: fixed, so sums do not depend on threads.
CHUNK = 4096

#: Entries per chunk of :func:`combine` (its sums run along the pairs, not the entries: any
#: chunking gives the same bits); 8 KiB of float64, kept in L1 while the pairs stream past.
COMBINE_CHUNK = 1024

#: Vector length from which the kernels run in parallel (below, a parallel region costs more).
PARALLEL_MIN = 1 << 16

_OPTS = {"cache": True, "fastmath": {"reassoc", "contract"}, "error_model": "numpy"}


def _pair_dots(S, Y, rows, a, b):
    n = a.shape[0]
    q = rows.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    partial = np.zeros((n_chunks, 4, q))
    for c in prange(n_chunks):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        a_c = a[lo:hi]
        b_c = b[lo:hi]
        for r in range(q):
            # contiguous slices: the loop vectorises (indexing S[i, j] directly ran 2x slower)
            s_c = S[rows[r], lo:hi]
            y_c = Y[rows[r], lo:hi]
            sa = 0.0
            ya = 0.0
            sb = 0.0
            yb = 0.0
            for j in range(hi - lo):
                sa += s_c[j] * a_c[j]
                ya += y_c[j] * a_c[j]
                sb += s_c[j] * b_c[j]
                yb += y_c[j] * b_c[j]
            partial[c, 0, r] = sa
            partial[c, 1, r] = ya
            partial[c, 2, r] = sb
            partial[c, 3, r] = yb
    out = np.zeros((4, q))
    for c in range(n_chunks):
        for t in range(4):
            for r in range(q):
                out[t, r] += partial[c, t, r]
    return out


def _combine(S, Y, rows, g, gamma, p, q, out):
    n = g.shape[0]
    n_chunks = (n + COMBINE_CHUNK - 1) // COMBINE_CHUNK
    for c in prange(n_chunks):
        lo = c * COMBINE_CHUNK
        hi = min(lo + COMBINE_CHUNK, n)
        # summed in a chunk-local buffer that stays in L1 and cannot alias S or Y (in `out`
        # directly the loop did not vectorise: 3x slower)
        acc = np.empty(hi - lo)
        g_c = g[lo:hi]
        for j in range(hi - lo):
            acc[j] = gamma * g_c[j]
        for r in range(rows.shape[0]):
            s_c = S[rows[r], lo:hi]
            y_c = Y[rows[r], lo:hi]
            p_r = p[r]
            q_r = q[r]
            for j in range(hi - lo):
                acc[j] += p_r * s_c[j] + q_r * y_c[j]
        for j in range(hi - lo):
            out[lo + j] = -acc[j]


_combine_inline = njit(inline="always", **_OPTS)(_combine)


def _direction(S, Y, rows, SY, YY, gamma, g, Sg, Yg, out):
    # the compact representation's small system (q ≤ m pairs, oldest first):
    # r = R⁻¹ Sg,  p = R⁻ᵀ ((D + gamma YᵀY) r − gamma Yg),  out = −(gamma g + S p − gamma Y r)
    q = rows.shape[0]
    r = np.empty(q)
    for a in range(q - 1, -1, -1):  # back substitution with R[a, b] = s_a · y_b (a ≤ b)
        acc = Sg[a]
        for b in range(a + 1, q):
            acc -= SY[rows[a], rows[b]] * r[b]
        r[a] = acc / SY[rows[a], rows[a]]
    rhs = np.empty(q)
    for a in range(q):
        acc = SY[rows[a], rows[a]] * r[a] - gamma * Yg[a]
        for b in range(q):
            acc += gamma * YY[rows[a], rows[b]] * r[b]
        rhs[a] = acc
    p = np.empty(q)
    for a in range(q):  # forward substitution with Rᵀ
        acc = rhs[a]
        for b in range(a):
            acc -= SY[rows[b], rows[a]] * p[b]
        p[a] = acc / SY[rows[a], rows[a]]
    coef_y = np.empty(q)
    for a in range(q):
        coef_y[a] = -gamma * r[a]
    _combine_inline(S, Y, rows, g, gamma, p, coef_y, out)  # its prange: parallel or not as the caller


_pair_dots_par = njit(parallel=True, **_OPTS)(_pair_dots)
_pair_dots_ser = njit(**_OPTS)(_pair_dots)
_combine_par = njit(parallel=True, **_OPTS)(_combine)
_combine_ser = njit(**_OPTS)(_combine)
_direction_par = njit(parallel=True, **_OPTS)(_direction)
_direction_ser = njit(**_OPTS)(_direction)


def pair_dots(S, Y, rows, a, b):
    """Inner products of the stored pairs with two vectors, one pass over them.

    Parameters
    ----------
    S, Y : ndarray of shape (m, n), float64, C-contiguous
        The pairs' ``s`` and ``y`` vectors, one per row.
    rows : ndarray of shape (q,), int64
        The rows to use (other rows are never read).
    a, b : ndarray of shape (n,), float64

    Returns
    -------
    ndarray of shape (4, q), float64
        Rows ``S[rows] @ a``, ``Y[rows] @ a``, ``S[rows] @ b``, ``Y[rows] @ b``,
        summed in chunks of :data:`CHUNK` entries added in order.
    """
    kernel = _pair_dots_par if a.shape[0] >= PARALLEL_MIN else _pair_dots_ser
    with parallel_guard():
        return kernel(S, Y, rows, a, b)


def combine(S, Y, rows, g, gamma, p, q, out):
    """``out = -(gamma g + Σ_r p_r S[rows[r]] + Σ_r q_r Y[rows[r]])``, one pass over the pairs.

    Parameters
    ----------
    S, Y : ndarray of shape (m, n), float64, C-contiguous
    rows : ndarray of shape (q,), int64
    g : ndarray of shape (n,), float64
    gamma : float
    p, q : ndarray of shape (q,), float64
        Coefficients of the listed ``s`` and ``y`` rows.
    out : ndarray of shape (n,), float64
        Written in place (may not overlap ``g``, ``S`` or ``Y``).
    """
    kernel = _combine_par if g.shape[0] >= PARALLEL_MIN else _combine_ser
    with parallel_guard():
        kernel(S, Y, rows, g, float(gamma), p, q, out)
    return out


def lbfgs_direction(S, Y, rows, SY, YY, gamma, g, Sg, Yg, out):
    """``out = -H g``, L-BFGS's direction by the compact representation, in one call.

    Byrd, Nocedal & Schnabel (1994), Theorem 2.2, with ``H0 = gamma I``:
    ``H g = gamma g + S p - gamma Y r`` where ``r = R⁻¹ (Sᵀg)`` and
    ``p = R⁻ᵀ ((D + gamma YᵀY) r - gamma Yᵀg)``; ``R`` is the upper triangle
    of ``SᵀY`` over the pairs in ``rows`` (oldest first), ``D`` its diagonal.
    The triangular solves (at most ``m`` unknowns) run in the same compiled
    call as the pass of :func:`combine` (no Python or LAPACK call overhead:
    on a 31-coefficient problem those cost more than the rest of an iteration).

    Parameters
    ----------
    S, Y : ndarray of shape (m, n), float64
    rows : ndarray of shape (q,), int64
        The pairs, oldest first.
    SY, YY : ndarray of shape (m, m), float64
        ``SY[i, j] = s_i · y_j`` (read for ``i`` not newer than ``j``) and
        ``YY[i, j] = y_i · y_j``, indexed by buffer row.
    gamma : float
    g : ndarray of shape (n,), float64
    Sg, Yg : ndarray of shape (q,), float64
        ``s · g`` and ``y · g`` of the pairs in ``rows``' order.
    out : ndarray of shape (n,), float64

    Returns
    -------
    ndarray
        ``out``.
    """
    kernel = _direction_par if g.shape[0] >= PARALLEL_MIN else _direction_ser
    with parallel_guard():
        kernel(S, Y, rows, SY, YY, float(gamma), g, Sg, Yg, out)
    return out
