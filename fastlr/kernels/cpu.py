"""Numba CPU kernels: loss and gradient in one pass over X, one SGD epoch, scores.

Design notes:

* One fused pass per row: the score ``z`` is computed from the row while it
  is in L1 cache, then ``dz · x`` is accumulated from the same row. X is read
  from memory exactly once per gradient.
* Rows are split into chunks of :data:`CHUNK_ROWS` rows, a constant that does
  not depend on the thread count. Each chunk accumulates into its own row of
  a partial-sum array (``prange`` over chunks: no shared ``grad[j] +=`` race),
  and the partials are added serially in chunk order. The result is therefore
  bitwise identical for any number of threads, run after run.
* Precision: X is read as it is (float32 X is never copied). The binary
  model's scores ``x · w`` are float64 (so that its objective on float32 X is
  resolved to float64 rounding: see :func:`_binary_rows`); the softmax
  model's scores (flop-bound at large k·d) and the partial sums over a block
  of rows are formed in X's dtype (the coefficients rounded to it), so
  float32 X keeps float32's vector width there (with k >= 8 classes on CPUs
  where BLAS pays, both are BLAS products per block of rows,
  :func:`_softmax_rows_blas`; ``fastlr.backends.cpu.SOFTMAX_BLAS``), and so
  are the softmax's shifted scores ``z_c - max z`` and their exponentials
  (:func:`_exp_neg_abs_f32` for float32 X); the loss, ``dz`` and every sum
  across blocks and chunks are float64. A row whose
  score overflowed its precision is formed again in float64 with
  power-of-two rescaling (exact losses for finite input).
* While a block is computed on from cache, the next block's rows are
  prefetched (:mod:`fastlr.kernels._prefetch`), so memory stays busy.
* ``fastmath`` allows only re-association and contraction (so the dot
  product vectorises); NaN/inf semantics stay IEEE.
"""

import math
import threading
from contextlib import nullcontext

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._math import LOG, SQUARED, build_math
from .._penalty import build_penalty
from ._bits import exponent_and_mantissa, pow2_from_shifted
from ._prefetch import prefetch_rows
from . import _simd

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
_sgd_update = build_penalty(njit(inline="always", error_model="numpy"), np.float64).sgd_update

# exp(x) for -708 <= x <= 0 as 2^k · p(t): Cody–Waite reduction t = x - k ln 2
# (|t| <= ln2 / 2) and the Taylor polynomial of e^t to degree 13 (error < 1e-17).
# 2^k is built from its bit pattern, so the loop has no call and vectorises;
# libm's scalar exp made the whole gradient twice as slow.
# The integer k reaches 2^k's bit pattern without a float-to-int64 conversion,
# which has no packed form before AVX-512 (LLVM made four scalar conversions
# per vector of four): k + 1.5 · 2^52 is exact and its low mantissa bits are k
# in two's complement, so (those bits + 1023) << 52 are 2^k's bits, integer
# operations that AVX2 has for 4 lanes. Same k, same result bit for bit;
# exp of a block of 16 values went from 6.2 to 4.7 ns each on a Zen 3 core.
# k stays a float (np.floor: math.floor returns an int64, and with it LLVM made
# the scalar conversions again), and 2^k is formed in registers
# (fastlr.kernels._bits.pow2_from_shifted) in the same loop. Blocks of 16 in
# benchmarks/kernel_pieces.py, one Zen 3 core: 3.5 -> 2.8 -> 2.0 ns a value.
_ROUND_SHIFT = 6755399441055744.0
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634
# 1 / n!, written out in the Horner chain: a loop over a tuple does not vectorise.
_F2, _F3, _F4, _F5, _F6, _F7, _F8, _F9, _F10, _F11, _F12, _F13 = (
    1.0 / math.factorial(n) for n in range(2, 14))


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exp_neg_abs_f64(z, m, e):
    """``e[r] = exp(-|z[r]|)`` for ``r < m`` (0 for ``|z| > 708``).

    One loop: 2^k is formed from its bits in registers (:func:`~fastlr.kernels._bits.
    pow2_from_shifted`) instead of a store to a scratch array, a second loop over it as
    integers and a third to multiply (blocks of 16, one Zen 3 core: 2.8 -> 2.0 ns a value).
    """
    for r in range(m):
        x = max(-abs(z[r]), -708.0)
        k = np.floor(x * _LOG2E + 0.5)  # an integer in a float, -1021 <= k <= 0
        t = x - k * _LN2_HI - k * _LN2_LO
        # 1 + t + t²/2 + t³ R(t): R (degree 10) by Estrin's scheme, a chain of four
        # multiply-adds after t², t⁴, t⁸, then Horner's last three steps, which set the
        # accuracy as before (Horner alone: a chain of thirteen)
        t2 = t * t
        t4 = t2 * t2
        t8 = t4 * t4
        a0 = _F4 * t + _F3
        a1 = _F6 * t + _F5
        a2 = _F8 * t + _F7
        a3 = _F10 * t + _F9
        a4 = _F12 * t + _F11
        b0 = a1 * t2 + a0
        b1 = a3 * t2 + a2
        b2 = _F13 * t2 + a4
        c0 = b1 * t4 + b0
        p = b2 * t8 + c0
        p = p * t + _F2
        p = p * t + 1.0
        p = p * t + 1.0
        scale = pow2_from_shifted(k + _ROUND_SHIFT)  # 2^k from its bits, in registers
        # beyond the clamp the exact value underflows: 0 (and exp(-inf) = 0)
        e[r] = 0.0 if abs(z[r]) > 708.0 else p * scale


# The same in float32 for the softmax of float32 X, whose scores are float32
# dot products already (the coefficients rounded to float32): 2^k · p(t) with
# Cody–Waite's two-part ln 2 for float32 and Cephes' expf polynomial (degree 7,
# relative error about 1 ulp, 1.2e-7, on |t| <= ln 2 / 2), eight lanes per AVX2
# vector instead of four and half the polynomial. The rounding of the scores
# themselves is larger: |z| · 2^-24 per product over d terms. 0 below -87
# (exp(-87) = 1.6e-38, near float32's smallest normal), where a float64 result
# would be a few times 1e-38 next to the row's largest term, exp(0) = 1.
_ROUND_SHIFT_F32 = np.float32(12582912.0)  # 1.5 · 2^23
_LN2_HI_F32 = np.float32(0.693359375)
_LN2_LO_F32 = np.float32(-2.12194440e-4)
_LOG2E_F32 = np.float32(1.44269504088896341)
_HALF_F32 = np.float32(0.5)
_ONE_F32 = np.float32(1.0)
_CLAMP_F32 = np.float32(87.0)
_ZERO_F32 = np.float32(0.0)
_E0_F32, _E1_F32, _E2_F32, _E3_F32, _E4_F32, _E5_F32 = (np.float32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
    1.6666665459e-1, 5.0000001201e-1))


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exp_neg_abs_f32(z, m, e):
    """float32 ``e[r] = exp(-|z[r]|)`` for ``r < m`` (0 for ``|z| > 87``).

    ``z`` and ``e`` float32.
    """
    for r in range(m):
        x = max(-abs(z[r]), -_CLAMP_F32)
        k = np.floor(x * _LOG2E_F32 + _HALF_F32)  # an integer, -126 <= k <= 0
        t = (x - k * _LN2_HI_F32) - k * _LN2_LO_F32
        p = _E0_F32 * t + _E1_F32
        p = p * t + _E2_F32
        p = p * t + _E3_F32
        p = p * t + _E4_F32
        p = p * t + _E5_F32
        p = (p * (t * t) + t) + _ONE_F32
        scale = pow2_from_shifted(k + _ROUND_SHIFT_F32)  # 2^k from its bits, in registers
        e[r] = _ZERO_F32 if abs(z[r]) > _CLAMP_F32 else p * scale


def _exp_neg_abs_impl(z, m, e):
    """Typing stub: :func:`_exp_neg_abs_f32` for float32 ``e``, else :func:`_exp_neg_abs_f64`."""
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(_exp_neg_abs_impl, inline="always")
def _exp_neg_abs_overload(z, m, e):
    if isinstance(e, types.Array) and e.dtype == types.float32:
        return lambda z, m, e: _exp_neg_abs_f32(z, m, e)
    return lambda z, m, e: _exp_neg_abs_f64(z, m, e)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exp_neg_abs(z, m, e):
    """``e[r] = exp(-|z[r]|)`` for ``r < m`` in ``e``'s dtype (float32 or float64)."""
    _exp_neg_abs_impl(z, m, e)


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
def _block_scratch(d, dtype, kept_rows=0):
    """Scratch arrays for :func:`_binary_rows`: z, e, dz, acc_block, and ``e_rows``, where
    :func:`_binary_rows` leaves ``exp(-|z|)`` of each of ``kept_rows`` rows (none: length 0)."""
    return (np.empty(BLOCK_ROWS), np.empty(BLOCK_ROWS), np.empty(BLOCK_ROWS, dtype), np.empty(d, dtype),
            np.empty(kept_rows))


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _add_weighted_rows(X, s0, m, g, out, ahead, stop):
    """``out[:] = Σ_r g[r] · X[s0 + r]`` over ``r < m``, summed in a fixed order.

    Four rows per sweep of ``out``: one load and one store of ``out[j]`` per
    four multiply-adds (a sweep per row was bound by those loads and stores).
    Before each sweep, row ``ahead + t`` (t-th sweep, below ``stop``) is
    prefetched (:func:`_prefetch_ahead`).
    """
    out[:] = 0
    r = 0
    while r + 4 <= m:
        ahead = _prefetch_ahead(X, ahead, 1, stop)
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


@njit(inline="always")
def _prefetch_ahead(X, row, count, stop):
    """Prefetch rows ``row:row + count`` of X (those below ``stop``); return ``row + count``.

    The dense kernels ask for the next block's rows a few at a time over every
    step of the current block: one row per pair of scores, two after the
    exponentials, two after the loss, one per four-row sweep of the gradient
    sum (16 rows for a block of 16; ``benchmarks/prefetch_overlap.py``). Hints for a block's worth of lines issued
    at once, or over the score loop only, left the memory bus idle while the
    exponentials, the loss and the gradient sums computed from cache.
    """
    prefetch_rows(X, row, min(row + count, stop))  # nothing once row >= stop
    return row + count


@njit(**_JIT)
def _binary_rows(X, y, sample_weight, start, stop, w, b, loss_id, acc, scratch, ew):
    """Add the weighted sums of rows ``start:stop`` of a binary model into ``acc``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), int32
    sample_weight : ndarray of shape (n,) or (0,)
    start, stop : int
    w : ndarray of shape (d,), float64
        Scores are float64 dot products, also for float32 X (whose values are
        exact in float64); everything after them (loss, derivative, partial
        sums) is float64, except the ``BLOCK_ROWS``-row partial of ``dz · x``,
        kept in X's dtype. With float32 scores (the coefficients rounded to
        float32) a step of L-BFGS's line search below float32's resolution of
        ``w`` left the objective unchanged or changed it by rounding noise
        only: at tol 1e-6 on 1M x 64 float32 the line searches took 28
        evaluations for 15 iterations, against 16 for 14 with float64 scores,
        which cost 2-5% more per gradient at d <= 256 and 20% at d = 784
        (Zen 3, AVX2).
    b : float
    loss_id : int
    acc : ndarray of shape (d + 2,), float64
        Receives Σ s dz x_j (columns < d), Σ s dz (column d), Σ s loss (column d + 1).
    scratch : tuple from :func:`_block_scratch`
        If its ``e_rows`` is not empty, ``e_rows[i - start]`` receives ``exp(-|z_i|)`` of
        every row (for the Hessian of :mod:`fastlr.kernels.cpu_hessian`, which then needs
        neither the scores nor their exponentials again).
    ew : int
        :func:`_max_abs_exponent` of ``w``: a score that overflowed is formed
        again by :func:`_scaled_score`, so finite X and w never give NaN.
    """
    z, e, dz, acc_block, e_rows = scratch
    keep = e_rows.shape[0] > 0
    d = X.shape[1]
    weighted = sample_weight.shape[0] > 0
    for s0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - s0)
        # Scores two rows at a time (each w[j] loaded once for both), then the odd row.
        # The sums start at zero and run over all of d (from the j = 0 product, d - 1
        # terms left a scalar remainder of up to 15 iterations per row pair at d = 64).
        # The next block's rows are asked for over the whole of this one (_prefetch_ahead):
        # first a row per score pair, then after the exponentials, after the loss and in the
        # gradient sweeps. Hints for the next block issued at once after the scores (a burst
        # of up to 16 x 784 x 4 / 64 = 784 line requests, more than the core's miss queues
        # hold) were slower on the Xeon, 2 threads, kernel/read, burst -> a row pair per score
        # pair: 1M x 64 f64 64-67% -> 76-77%, 250k x 256 f32 64-77% -> 92-93%, 60k x 784 f32
        # 69-74% -> 83-85% (README, Performance). With hints in the score loop only, memory
        # idled while the exponentials, loss and gradient computed from cache; spread over
        # every step, Zen 3, 2 threads (binary_prefetch_variants.py, 'cur' -> 'spread'):
        # 1M x 64 f32 13.2 -> 12.2 ms, f64 23.1 -> 17.4, 250k x 256 f32 10.9 -> 9.1,
        # 60k x 784 f32 9.0 -> 7.5.
        ahead = s0 + m  # the next block's rows, asked for a few at a time over this one
        r = 0
        while r + 2 <= m:
            ahead = _prefetch_ahead(X, ahead, 1, stop)
            z0 = 0.0
            z1 = 0.0
            for j in range(d):
                z0 += X[s0 + r, j] * w[j]
                z1 += X[s0 + r + 1, j] * w[j]
            z[r] = z0 + b
            z[r + 1] = z1 + b
            r += 2
        if r < m:
            zr = 0.0
            for j in range(d):
                zr += X[s0 + r, j] * w[j]
            z[r] = zr + b
        for r in range(m):  # the rare path: a score beyond X's precision (or float64)
            if not math.isfinite(z[r]):
                ex = _row_exponent(X, s0 + r)
                z[r] = math.ldexp(_scaled_score(X, s0 + r, w, b, ex, ew), ex + ew)
        _exp_neg_abs(z, m, e)
        if keep:
            for r in range(m):
                e_rows[s0 - start + r] = e[r]
        ahead = _prefetch_ahead(X, ahead, 2, stop)
        # Per-row values first (z <- loss, e <- dz), sums in a separate loop: a loop
        # that both stores and reduces gets a runtime alias check from LLVM, and
        # which path it takes (vector or scalar, two summation orders) would then
        # depend on where the scratch arrays happen to lie in memory. The loss loop
        # stores to two arrays only, the weights and the copy into X's dtype come
        # after: with a third store (and the weights' load) LLVM needed more alias
        # checks than it inserts and left the loop scalar, two scalar divisions per
        # row (measured on a Zen 3 AVX2 core: 1M x 8 gradient 17.6 -> 13.0 ms,
        # bitwise the same result: the operations per element are unchanged).
        # One loop per loss, each with its loss_id a constant: with the id a variable,
        # both losses were computed and one selected, 4% of the 1M x 64 float32 gradient.
        if loss_id == LOG:
            for r in range(m):
                loss, g = _binary_loss_dz(LOG, z[r], e[r], np.float64(y[s0 + r]))
                z[r] = loss
                e[r] = g
        else:
            for r in range(m):
                loss, g = _binary_loss_dz(SQUARED, z[r], e[r], np.float64(y[s0 + r]))
                z[r] = loss
                e[r] = g
        ahead = _prefetch_ahead(X, ahead, 2, stop)
        if weighted:
            for r in range(m):
                z[r] *= sample_weight[s0 + r]
                e[r] *= sample_weight[s0 + r]
        for r in range(m):
            dz[r] = e[r]
        loss_sum = 0.0
        dz_sum = 0.0
        for r in range(m):
            loss_sum += z[r]
            dz_sum += e[r]
        acc[d] += dz_sum
        acc[d + 1] += loss_sum
        _add_weighted_rows(X, s0, m, dz, acc_block, ahead, stop)
        for j in range(d):
            acc[j] += acc_block[j]


# ---------------------------------------------------------------------------
# Multinomial micro-kernels: a register tile of rows x classes per sweep over
# the columns, so that each load of X and of W feeds several multiply-adds,
# instead of one load of W per multiply-add in a per-class dot product: the
# scores in tiles of 2 rows x 4 classes, the gradient from the cached rows in
# tiles of 4 rows x 4 classes (whose 16 per-row factors are broadcast once).

#: Classes of one register tile, and rows of one gradient tile.
TILE = 4

#: Rows of one score tile (:func:`_scores_tile`).
SCORE_TILE_ROWS = 2

#: Rows whose gradient terms are summed in X's dtype before being added to the
#: float64 partial of the chunk (a multiple of BLOCK_ROWS).
FLUSH_ROWS = 64

#: Rows of one block of the softmax gradient (:func:`_softmax_rows`): one BLAS product for their
#: scores, one for their gradient, summed in X's dtype, then added to the float64 partial.
SOFTMAX_BLOCK_ROWS = FLUSH_ROWS


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _scores_tile(X, i, W, c, Z, r):
    """``Z[c + q, r + a] = X[i + a] · W[c + q]`` for a < 2, q < 4 (X's precision).

    Two rows by four classes: eight vector accumulators, the two rows' vectors
    and one class's at a time fit AVX2's sixteen registers. The 4 x 4 tile
    (sixteen accumulators) spilled to the stack on AVX2 (18 spill stores in the
    block loop, 6 with this tile). ``benchmarks/score_tiles.py`` (one Zen 3
    core, X in cache, k = 10 float32, medians of 15 interleaved runs, two
    runs): d = 64 40.5 -> 36.3 and 49.5 -> 48.7 ns a row, d = 784 393 -> 325
    and 336 -> 256. The sums start from zero and run over every ``j``:
    starting them from the products at ``j = 0`` left ``d - 1`` terms, so a
    vector remainder of scalar multiply-adds per tile.
    """
    d = X.shape[1]
    zero = X.dtype.type(0)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    for j in range(d):
        x0 = X[i, j]
        x1 = X[i + 1, j]
        w0 = W[c, j]
        w1 = W[c + 1, j]
        w2 = W[c + 2, j]
        w3 = W[c + 3, j]
        s00 += x0 * w0
        s01 += x0 * w1
        s02 += x0 * w2
        s03 += x0 * w3
        s10 += x1 * w0
        s11 += x1 * w1
        s12 += x1 * w2
        s13 += x1 * w3
    Z[c, r] = s00
    Z[c + 1, r] = s01
    Z[c + 2, r] = s02
    Z[c + 3, r] = s03
    Z[c, r + 1] = s10
    Z[c + 1, r + 1] = s11
    Z[c + 2, r + 1] = s12
    Z[c + 3, r + 1] = s13


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _scores_pair(X, i, W, c, Z, r):
    """``Z[c + q, r + a] = X[i + a] · W[c + q]`` for a, q < 2: the classes after the 4-class tiles."""
    zero = X.dtype.type(0)
    s00 = s01 = s10 = s11 = zero
    for j in range(X.shape[1]):
        x0 = X[i, j]
        x1 = X[i + 1, j]
        w0 = W[c, j]
        w1 = W[c + 1, j]
        s00 += x0 * w0
        s01 += x0 * w1
        s10 += x1 * w0
        s11 += x1 * w1
    Z[c, r] = s00
    Z[c + 1, r] = s01
    Z[c, r + 1] = s10
    Z[c + 1, r + 1] = s11


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _scores_rows2(X, i, w, Z, r, c):
    """``Z[c, r + a] = X[i + a] · w`` for a < 2: one class, two rows."""
    zero = X.dtype.type(0)
    s0 = s1 = zero
    for j in range(X.shape[1]):
        s0 += X[i, j] * w[j]
        s1 += X[i + 1, j] * w[j]
    Z[c, r] = s0
    Z[c, r + 1] = s1


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _block_scores(X, s0, m, W, b, Z, ahead, stop):
    """``Z[c, r] = X[s0 + r] · W[c] + b[c]`` for r < m, all classes: 2 x 4 tiles, then the edges.

    ``Z`` is class-major (k, rows), so that the steps after it (the row maxima, the
    exponentials, the loss) run over a class's rows as vectors.

    Prefetches row ``ahead + t`` (below ``stop``) before the t-th pair of rows
    and returns the next row to ask for (:func:`_prefetch_ahead`).
    """
    k = W.shape[0]
    d = X.shape[1]
    m2 = m - m % SCORE_TILE_ROWS
    k4 = k - k % TILE
    for r in range(0, m2, SCORE_TILE_ROWS):
        ahead = _prefetch_ahead(X, ahead, 1, stop)
        for c in range(0, k4, TILE):
            _scores_tile(X, s0 + r, W, c, Z, r)
        c = k4
        while c + 2 <= k:
            _scores_pair(X, s0 + r, W, c, Z, r)
            c += 2
        if c < k:
            _scores_rows2(X, s0 + r, W[c], Z, r, c)
    for r in range(m2, m):
        for c in range(k):
            s = X.dtype.type(0)
            for j in range(d):
                s += X[s0 + r, j] * W[c, j]
            Z[c, r] = s
    for c in range(k):
        for r in range(m):
            Z[c, r] += b[c]
    return ahead


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _grad_pair(X, s0, m, dz, G, c, jb):
    """``G[c + q, jb:jb + 4L] += Σ_r dz[c + q, r] X[s0 + r, jb:jb + 4L]`` for q < 2 (L lanes).

    Eight vector sums in registers over the ``m`` rows of the block (each row's
    four vectors of X feed both classes), added to ``G`` once at the end.
    """
    L = _simd.lanes_of(X)
    z = _simd.zeros_like(_simd.load(X, s0, jb))
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = z
    for r in range(m):
        g = _simd.splat(dz[c, r])
        h = _simd.splat(dz[c + 1, r])
        x0 = _simd.load(X, s0 + r, jb)
        x1 = _simd.load(X, s0 + r, jb + L)
        x2 = _simd.load(X, s0 + r, jb + 2 * L)
        x3 = _simd.load(X, s0 + r, jb + 3 * L)
        a0 = _simd.fma(g, x0, a0)
        a1 = _simd.fma(g, x1, a1)
        a2 = _simd.fma(g, x2, a2)
        a3 = _simd.fma(g, x3, a3)
        b0 = _simd.fma(h, x0, b0)
        b1 = _simd.fma(h, x1, b1)
        b2 = _simd.fma(h, x2, b2)
        b3 = _simd.fma(h, x3, b3)
    _simd.add_to(G, c, jb, a0)
    _simd.add_to(G, c, jb + L, a1)
    _simd.add_to(G, c, jb + 2 * L, a2)
    _simd.add_to(G, c, jb + 3 * L, a3)
    _simd.add_to(G, c + 1, jb, b0)
    _simd.add_to(G, c + 1, jb + L, b1)
    _simd.add_to(G, c + 1, jb + 2 * L, b2)
    _simd.add_to(G, c + 1, jb + 3 * L, b3)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _grad_one(X, s0, m, dz, G, c, jb):
    """``G[c, jb:jb + 4L] += Σ_r dz[c, r] X[s0 + r, jb:jb + 4L]``: the class after the pairs."""
    L = _simd.lanes_of(X)
    z = _simd.zeros_like(_simd.load(X, s0, jb))
    a0 = a1 = a2 = a3 = z
    for r in range(m):
        g = _simd.splat(dz[c, r])
        a0 = _simd.fma(g, _simd.load(X, s0 + r, jb), a0)
        a1 = _simd.fma(g, _simd.load(X, s0 + r, jb + L), a1)
        a2 = _simd.fma(g, _simd.load(X, s0 + r, jb + 2 * L), a2)
        a3 = _simd.fma(g, _simd.load(X, s0 + r, jb + 3 * L), a3)
    _simd.add_to(G, c, jb, a0)
    _simd.add_to(G, c, jb + L, a1)
    _simd.add_to(G, c, jb + 2 * L, a2)
    _simd.add_to(G, c, jb + 3 * L, a3)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _block_grad(X, s0, m, dz, G, ahead, stop):
    """``G[c] += Σ_r dz[c, r] X[s0 + r]`` for r < m, all classes, in a fixed order.

    The micro-kernel of a matrix product ``dz X_b``: for each strip of four
    vectors of columns (32 float32 or 16 float64 columns) and each pair of
    classes, eight vector sums stay in registers (:mod:`fastlr.kernels._simd`)
    while the block's rows are broadcast-multiplied into them, and are added to
    ``G`` once per block. Each element of ``G`` is the sum over ``r`` in row
    order, then added to ``G``: the same for any thread count.

    Before that, the class tiles were vectorised by LLVM over the columns with
    ``G`` in memory: a load and a store of ``G[c, j]`` per four multiply-adds
    (one Zen 3 core, X in cache, k = 10 float32: 26 ns a row at d = 64, now 16;
    float64 35 -> 25; benchmarks/results/simd-grad-2core-zen3.txt).

    Prefetches four rows from ``ahead`` (below ``stop``), spread over the strips,
    and returns the next row to ask for (:func:`_prefetch_ahead`).
    """
    k = G.shape[0]
    d = X.shape[1]
    L = _simd.lanes_of(X)
    T = 4 * L
    strips = d // T
    k2 = k - k % 2
    asked = 0
    for t in range(strips):
        want = (t + 1) * GRAD_PREFETCH_ROWS // strips
        ahead = _prefetch_ahead(X, ahead, want - asked, stop)
        asked = want
        jb = t * T
        for c in range(0, k2, 2):
            _grad_pair(X, s0, m, dz, G, c, jb)
        if k2 < k:
            _grad_one(X, s0, m, dz, G, k2, jb)
    ahead = _prefetch_ahead(X, ahead, GRAD_PREFETCH_ROWS - asked, stop)
    dL = d - d % L
    for jb in range(strips * T, dL, L):
        for c in range(k):
            a = _simd.zeros_like(_simd.load(X, s0, jb))
            for r in range(m):
                a = _simd.fma(_simd.splat(dz[c, r]), _simd.load(X, s0 + r, jb), a)
            _simd.add_to(G, c, jb, a)
    for j in range(dL, d):
        for c in range(k):
            s = X.dtype.type(0)
            for r in range(m):
                s += dz[c, r] * X[s0 + r, j]
            G[c, j] += s
    return ahead


#: Rows of the next block that :func:`_block_grad` asks for (after one per score pair, two after
#: the exponentials and two after the loss: the whole next block of 16).
GRAD_PREFETCH_ROWS = 4


@njit(inline="always")
def _softmax_scratch(k, d, dtype):
    """Scratch arrays for :func:`_softmax_rows` (blocks of SOFTMAX_BLOCK_ROWS rows) and the
    Hessian-vector kernel (blocks of BLOCK_ROWS): Z, shifted, e, dz, acc_block, per_row, p.

    ``Z`` (k, rows) holds the float64 scores class-major. ``shifted`` (``z_c - max z``) and
    its exponentials ``e`` are in X's dtype, class-major with the block's row count as the
    stride (``shifted[c * m + r]``), so that one vectorised sweep covers the block.
    ``per_row`` (4, rows), float64: the row maxima, the label's shifted score (a row's rare
    path forms it in float64 beyond float32's range: finite losses up to 1.8e308 for
    float32 X), the sums of the exponentials (then their reciprocals), the sample weights.
    ``p`` (k,), float64: one row's values for the per-row path of the squared loss."""
    rows = max(BLOCK_ROWS, SOFTMAX_BLOCK_ROWS)
    n = rows * k
    return (np.empty((k, rows)), np.empty(n, dtype), np.empty(n, dtype),
            np.empty((k, rows), dtype), np.empty((k, d), dtype), np.empty((4, rows)), np.empty(k))


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _log_at_least_one(t):
    """``log(t)`` for a float64 ``1 <= t < 2^1024`` (a sum of exponentials whose largest is 1).

    ``t = m · 2^e`` from its bits (:func:`~fastlr.kernels._bits.exponent_and_mantissa`), then
    ``e ln 2 + log1p(m - 1)`` with ``1 <= m < 2`` by the shared series ``log1p_unit``
    (:mod:`fastlr._math`): branch-free, so a loop over a block's rows vectorises, where
    ``math.log`` is a call per row. NaN gives NaN (``t - t``).
    """
    e, mant = exponent_and_mantissa(t)
    return e * _LN2 + _log1p_unit(mant - 1.0) + (t - t)


_LN2 = math.log(2.0)
_log1p_unit = _M.log1p_unit


@njit(inline="always")
def _block_weights(sample_weight, s0, m, s):
    """``s[r]`` = the weight of row ``s0 + r`` (1 when unweighted) for ``r < m``."""
    if sample_weight.shape[0] > 0:
        for r in range(m):
            s[r] = sample_weight[s0 + r]
    else:
        for r in range(m):
            s[r] = 1.0


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _add_class_sums(dz, m, acc, d):
    """``acc[c, d] += Σ_{r < m} dz[c, r]`` for every class (the intercepts' sums: column
    ``d`` of the gradient's ``(k, d + 2)`` or the Hessian-vector product's ``(k, d + 1)``)."""
    for c in range(dz.shape[0]):
        t = 0.0
        for r in range(m):
            t += dz[c, r]
        acc[c, d] += t


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _block_shift(Z, m, shifted, z_max):
    """``z_max[r] = max_c Z[c, r]`` and ``shifted[c * m + r] = Z[c, r] - z_max[r]`` (X's dtype)
    for ``r < m``: four rows at a time as float64 vectors, then the last ``m % 4``.

    Returns ``Σ_{c, r} Z[c, r]``, summed in the same vector loop: finite when every score of
    the block is finite (a sum of finite scores that overflows is a false alarm, which only
    costs :func:`_softmax_block_dz` a look at each row's scores). Before, a scalar loop of
    ``math.isfinite`` over the k scores of every row took 5 of the 29 ns a row of the
    per-sample step at d = 64, k = 10 (one Zen 3 core, X in cache; 24 ns a row with the sum).
    """
    k = Z.shape[0]
    m4 = m - m % 4
    chk = _simd.zeros_like(_simd.wide4(z_max, 0))
    for q in range(0, m4, 4):
        zm = _simd.wide4_2d(Z, 0, q)
        chk = chk + zm
        for c in range(1, k):
            zc = _simd.wide4_2d(Z, c, q)
            zm = _simd.vmax(zm, zc)
            chk = chk + zc
        for c in range(k):
            _simd.store4(shifted, c * m + q, _simd.wide4_2d(Z, c, q) - zm)
        _simd.store4(z_max, q, zm)
    check = _simd.hsum(chk)
    for r in range(m4, m):
        zm = Z[0, r]
        check += zm
        for c in range(1, k):
            zm = max(zm, Z[c, r])
            check += Z[c, r]
        for c in range(k):
            shifted[c * m + r] = Z[c, r] - zm
        z_max[r] = zm
    return check


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _softmax_block_dz(X, y, sample_weight, s0, m, b, loss_id, acc, scratch, W64, ew, ahead, stop):
    """The per-sample part of a block of the softmax kernels, from its scores.

    From ``Z[c, r]`` (class-major, the rows ``s0:s0 + m``): the row maxima, the shifted
    scores, the rare path of a row whose score overflowed, all ``exp(z_c - max z)`` in one
    vectorised sweep (:func:`_exp_neg_abs`, X's dtype), then the loss and its derivative.
    Writes ``dz[c, r] = s_r ∂loss_r/∂z_c`` in X's dtype and adds ``Σ_r dz[c, r]`` to
    ``acc[c, d]`` and ``Σ_r s_r loss_r`` to ``acc[0, d + 1]``.

    Rows go four at a time as float64 vectors (:mod:`fastlr.kernels._simd`), class by
    class: the maxima, the shifted scores, the sums of the exponentials, their logarithms
    (:func:`_log_at_least_one`), ``p_c = e_c / Σ e`` and ``dz_c = s (p_c - [c = y])``: the
    formulas of ``softmax_loss_dz_from_exp`` (:mod:`fastlr._math`, shared with the GPU
    kernels) across rows; the last ``m % 4`` rows, and the squared loss, call the shared
    function a row at a time. A row at a time for every row (``math.log`` a call per row)
    took 33 ns a row at k = 10 on a Zen 3 core; LLVM's own vectorisation of the
    class-major loops, 38 (the loops over 16 rows were unrolled and left scalar: it
    cannot tell that the scratch arrays do not overlap).

    Prefetches two rows from ``ahead`` after the exponentials and two after the loss
    (below ``stop``) and returns the next row to ask for (:func:`_prefetch_ahead`).
    """
    Z, shifted, e, dz, _, per_row, p = scratch
    d = X.shape[1]
    k = Z.shape[0]
    z_max = per_row[0]
    zy = per_row[1]
    inv = per_row[2]
    s = per_row[3]
    m4 = m - m % 4
    all_finite = math.isfinite(_block_shift(Z, m, shifted, z_max))
    for r in range(m):
        zy[r] = Z[y[s0 + r], r] - z_max[r]
    for r in range(0 if all_finite else m):  # the rare path: a score beyond X's precision
        finite = True
        for c in range(k):
            finite &= math.isfinite(Z[c, r])
        if not finite:
            ex = _row_exponent(X, s0 + r)
            for c in range(k):
                Z[c, r] = _scaled_score(X, s0 + r, W64[c], b[c], ex, ew)
            zm = Z[0, r]
            for c in range(1, k):
                zm = max(zm, Z[c, r])
            for c in range(k):
                shifted[c * m + r] = math.ldexp(Z[c, r] - zm, ex + ew)
            zy[r] = math.ldexp(Z[y[s0 + r], r] - zm, ex + ew)
    _exp_neg_abs(shifted, k * m, e)  # shifted <= 0, so exp(-|t|) = exp(t)
    ahead = _prefetch_ahead(X, ahead, 2, stop)
    _block_weights(sample_weight, s0, m, s)
    loss_sum = 0.0
    tail = m4
    if loss_id == LOG:
        loss_v = _simd.zeros_like(_simd.wide4(s, 0))  # (not s * 0: lanes past m hold garbage, inf * 0 = NaN)
        for q in range(0, m4, 4):
            total = _simd.wide4(e, q)
            for c in range(1, k):
                total = total + _simd.wide4(e, c * m + q)
            sq = _simd.wide4(s, q)
            loss_v = loss_v + sq * (_log_at_least_one(total) - _simd.wide4(zy, q))
            iq = 1.0 / total
            _simd.store4(inv, q, iq)
            for c in range(k):
                _simd.store4_2d(dz, c, q, sq * (_simd.wide4(e, c * m + q) * iq))
        loss_sum = _simd.hsum(loss_v)
        for r in range(m4):  # the label's class: p_y - 1
            yr = y[s0 + r]
            dz[yr, r] = s[r] * (e[yr * m + r] * inv[r] - 1.0)
    else:
        tail = 0
    for r in range(tail, m):
        for c in range(k):
            p[c] = e[c * m + r]
        loss_sum += s[r] * _softmax_loss_dz_from_exp(loss_id, zy[r], p, y[s0 + r], p)
        for c in range(k):
            dz[c, r] = s[r] * p[c]
    _add_class_sums(dz, m, acc, d)
    acc[0, d + 1] += loss_sum
    return _prefetch_ahead(X, ahead, 2, stop)


@njit(**_JIT)
def _softmax_rows(X, y, sample_weight, start, stop, W, b, loss_id, acc, scratch, W64, ew):
    """Add the weighted sums of rows ``start:stop`` of a softmax model into ``acc``.

    The same blocking as :func:`_binary_rows`: scores of ``BLOCK_ROWS`` rows
    for all classes in 2-row x 4-class register tiles (:func:`_block_scores`),
    then all their ``exp(z_c - max z)`` in one vectorised sweep (in X's dtype,
    like the scores: float32 X gets :func:`_exp_neg_abs_f32`, eight lanes per
    AVX2 vector), then the per-sample loss and derivative (float64), then
    ``dz_c · x`` for all classes from the
    cached rows (:func:`_block_grad`), summed in X's dtype over
    :data:`FLUSH_ROWS` rows and then added to the float64 partial ``acc``.

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
    Z, shifted, e, dz, G, per_row, p = scratch
    d = X.shape[1]
    k = W.shape[0]
    G[:] = 0
    pending = 0
    for s0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - s0)
        # The next block's rows are asked for over this whole block, as in _binary_rows.
        ahead = _block_scores(X, s0, m, W, b, Z, s0 + m, stop)
        ahead = _softmax_block_dz(X, y, sample_weight, s0, m, b, loss_id, acc, scratch, W64, ew,
                                  ahead, stop)
        _block_grad(X, s0, m, dz, G, ahead, stop)
        pending += m
        if pending >= FLUSH_ROWS or s0 + m >= stop:
            for cls in range(k):
                for j in range(d):
                    acc[cls, j] += G[cls, j]
            G[:] = 0
            pending = 0


@njit(**_JIT)
def _softmax_rows_blas(X, y, sample_weight, start, stop, W, b, loss_id, acc, scratch, W64, ew):
    """:func:`_softmax_rows` with two BLAS products per block (:func:`multinomial_loss_grad_blas`).

    Rows go in blocks of :data:`SOFTMAX_BLOCK_ROWS`: the block's scores
    ``X_b Wᵀ`` are one BLAS product (Numba's ``np.dot``, in X's dtype; the
    BLAS pools run one thread while fastlr's kernels run), then all their
    ``exp(z_c - max z)`` in one vectorised sweep, then the per-sample loss
    and derivative, then the block's gradient ``dz X_b`` as a second product
    from the cached rows, added to the float64 partial ``acc``. On the Xeon
    (d = 784, k = 10, float32) these two skinny products ran at 16 and 38
    GMAC/s per thread against 20-30 for fastlr's 4 x 4 register tiles: the Fashion-MNIST
    gradient 45 -> 36 ms in a prototype. OpenBLAS splits a product over its
    output, never its inner sum, so the result is the same for any thread count.

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
    Z, shifted, e, dz, G, per_row, p = scratch
    d = X.shape[1]
    k = W.shape[0]
    WT = W.T
    for s0 in range(start, stop, SOFTMAX_BLOCK_ROWS):
        m = min(SOFTMAX_BLOCK_ROWS, stop - s0)
        Xb = X[s0:s0 + m]
        Zb = np.dot(Xb, WT)
        for cls in range(k):
            for r in range(m):
                Z[cls, r] = Zb[r, cls] + b[cls]
        _softmax_block_dz(X, y, sample_weight, s0, m, b, loss_id, acc, scratch, W64, ew, stop, stop)
        Gb = np.dot(np.ascontiguousarray(dz[:, :m]), Xb)
        for cls in range(k):
            for j in range(d):
                acc[cls, j] += Gb[cls, j]


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
    ew = _max_abs_exponent(w.reshape(1, -1))
    partial = np.zeros((n_chunks, d + 2))
    for c in prange(n_chunks):
        _binary_rows(X, y, sample_weight, c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n),
                     w, b, loss_id, partial[c], _block_scratch(d, X.dtype), ew)
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


#: Classes from which the cpu backend takes :func:`multinomial_loss_grad_blas` on CPUs where
#: BLAS pays (``fastlr.backends.cpu.SOFTMAX_BLAS``; measured on the AVX-512 Xeon: BLAS 23% faster
#: at d = 784, k = 10 and 16% at d = 64, k = 10; 39% slower at d = 64, k = 3).
SOFTMAX_BLAS_MIN_CLASSES = 8


@njit(parallel=True, **_JIT)
def multinomial_loss_grad_blas(X, y, sample_weight, W, b, loss_id):
    """:func:`multinomial_loss_grad` with BLAS block products (:func:`_softmax_rows_blas`).

    For k >= :data:`SOFTMAX_BLAS_MIN_CLASSES` (the cpu backend chooses).

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
        _softmax_rows_blas(X, y, sample_weight, c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n),
                      W_x, b, loss_id, partial[c], _softmax_scratch(k, d, X.dtype), W, ew)
    total = np.zeros((k, d + 2))
    for c in range(n_chunks):
        total += partial[c]
    return total


# ---------------------------------------------------------------------------
# Hessian-vector products of the log loss (Newton-CG): the same blocking as the
# gradient kernels, with the per-sample factor from _math.py in place of the
# loss derivative. The scores of the direction are formed beside the model's
# scores from the same cached rows, so a product costs one pass over X.

_binary_hess_dz = _M.binary_hess_dz


@njit(**_JIT)
def _binary_hv_rows(X, sample_weight, start, stop, w, b, v, vb, acc, scratch):
    """Add ``Σ s σ'(z) (v·x + vb) [x, 1]`` over rows ``start:stop`` into ``acc`` (d + 1,)."""
    z, e, dz, acc_block, _ = scratch
    u = np.empty(BLOCK_ROWS)
    d = X.shape[1]
    weighted = sample_weight.shape[0] > 0
    for s0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - s0)
        ahead = s0 + m  # spread over the block as in _binary_rows
        for r in range(m):
            if r % 2 == 0:
                ahead = _prefetch_ahead(X, ahead, 1, stop)
            zr = X[s0 + r, 0] * w[0]
            ur = X[s0 + r, 0] * v[0]
            for j in range(1, d):
                zr += X[s0 + r, j] * w[j]
                ur += X[s0 + r, j] * v[j]
            z[r] = zr + b
            u[r] = ur + vb
        _exp_neg_abs(z, m, e)
        ahead = _prefetch_ahead(X, ahead, 2, stop)
        for r in range(m):  # one store, weights after: vectorises (see _binary_rows)
            e[r] = _binary_hess_dz(z[r], e[r], u[r])
        ahead = _prefetch_ahead(X, ahead, 2, stop)
        if weighted:
            for r in range(m):
                e[r] *= sample_weight[s0 + r]
        for r in range(m):
            dz[r] = e[r]
        g_sum = 0.0
        for r in range(m):
            g_sum += e[r]
        acc[d] += g_sum
        _add_weighted_rows(X, s0, m, dz, acc_block, ahead, stop)
        for j in range(d):
            acc[j] += acc_block[j]


@njit(**_JIT)
def _softmax_hv_rows(X, sample_weight, start, stop, W, b, V, vb, acc, scratch):
    """Add ``Σ s (diag p - p pᵀ)(V x + vb) ⊗ [x, 1]`` over rows ``start:stop`` into ``acc`` (k, d + 1)."""
    Z, shifted, e, dz, G, per_row, _ = scratch
    d = X.shape[1]
    k = W.shape[0]
    U = np.empty((k, BLOCK_ROWS))
    z_max = per_row[0]
    s = per_row[3]
    G[:] = 0
    pending = 0
    for s0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - s0)
        # The next block's rows over this whole block, as in _softmax_rows (none in V's scores).
        ahead = _block_scores(X, s0, m, W, b, Z, s0 + m, stop)
        _block_scores(X, s0, m, V, vb, U, ahead, ahead)
        # Class-major, four rows at a time as float64 vectors (as in _softmax_block_dz):
        # p = softmax(z), then p_c (u_c - p·u), the formula of softmax_hess_dz_from_exp
        # (fastlr._math), with p·u = (Σ e_c u_c) / Σ e_c as there. The form Σ (e_c / Σ e) u_c
        # rounds differently and cost newton-cg's convergence on 2 of 32 ill-conditioned
        # problems (tests/test_newton.py's data, seeds 11-26) where this form and the
        # per-row function before it converged on all.
        _block_shift(Z, m, shifted, z_max)
        _exp_neg_abs(shifted, k * m, e)
        ahead = _prefetch_ahead(X, ahead, 2, stop)
        _block_weights(sample_weight, s0, m, s)
        m4 = m - m % 4
        for q in range(0, m4, 4):
            total = _simd.wide4(e, q)
            eu = total * _simd.wide4_2d(U, 0, q)
            for c in range(1, k):
                ec = _simd.wide4(e, c * m + q)
                total = total + ec
                eu = eu + ec * _simd.wide4_2d(U, c, q)
            iq = 1.0 / total
            pu = eu * iq
            sq = _simd.wide4(s, q)
            for c in range(k):
                pc = _simd.wide4(e, c * m + q) * iq
                _simd.store4_2d(dz, c, q, sq * (pc * (_simd.wide4_2d(U, c, q) - pu)))
        for r in range(m4, m):
            total_r = 0.0
            eu_r = 0.0
            for c in range(k):
                total_r += e[c * m + r]
                eu_r += e[c * m + r] * U[c, r]
            inv_r = 1.0 / total_r
            pu_r = eu_r * inv_r
            for c in range(k):
                dz[c, r] = s[r] * (e[c * m + r] * inv_r * (U[c, r] - pu_r))
        _add_class_sums(dz, m, acc, d)
        ahead = _prefetch_ahead(X, ahead, 2, stop)
        _block_grad(X, s0, m, dz, G, ahead, stop)
        pending += m
        if pending >= FLUSH_ROWS or s0 + m >= stop:
            for cls in range(k):
                for j in range(d):
                    acc[cls, j] += G[cls, j]
            G[:] = 0
            pending = 0


@njit(parallel=True, **_JIT)
def log_loss_hess_vec(X, sample_weight, W, b, V, vb):
    """Weighted sum of log-loss Hessian-vector products, one pass over X.

    For each sample the Hessian of its loss in the parameters ``(W, b)`` is
    ``[x, 1][x, 1]ᵀ ⊗ ∇²_z loss``, with ``∇²_z loss = σ(z)(1 - σ(z))`` for a
    binary model (``k == 1``) and ``diag(p) - p pᵀ``, ``p = softmax(z)``, for a
    softmax one. The labels do not enter.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    sample_weight : ndarray of shape (n,) or (0,), float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64
    V : ndarray of shape (k, d), float64
        The direction's coefficient part.
    vb : ndarray of shape (k,), float64
        The direction's intercept part.

    Returns
    -------
    ndarray of shape (k, d + 1), float64
        ``Σ_i s_i (∇²_z loss_i)(V x_i + vb) ⊗ [x_i, 1]``: columns ``j < d`` for
        the coefficients, column ``d`` for the intercepts (sums, not means).
        Chunked and summed in a fixed order, as :func:`binary_loss_grad`.
    """
    n, d = X.shape
    k = W.shape[0]
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    W_x = W.astype(X.dtype)
    V_x = V.astype(X.dtype)
    partial = np.zeros((n_chunks, k, d + 1))
    for c in prange(n_chunks):
        lo = c * CHUNK_ROWS
        hi = min((c + 1) * CHUNK_ROWS, n)
        if k == 1:
            _binary_hv_rows(X, sample_weight, lo, hi, W_x[0], b[0], V_x[0], vb[0], partial[c, 0],
                            _block_scratch(d, X.dtype))
        else:
            _softmax_hv_rows(X, sample_weight, lo, hi, W_x, b, V_x, vb, partial[c],
                             _softmax_scratch(k, d, X.dtype))
    total = np.zeros((k, d + 1))
    for c in range(n_chunks):
        total += partial[c]
    return total


@njit(parallel=True, **_JIT)
def column_moments(X, sample_weight, stride):
    """Weighted column means and variances of X, one pass, float64.

    Over every ``stride``-th chunk of :data:`CHUNK_ROWS` rows (``stride`` 1:
    all rows). Each chunk sums ``x - K`` and ``(x - K)²``
    shifted by its first row ``K`` (so that large offsets such as timestamps
    do not cancel), and the chunks are merged in chunk order by the pairwise
    update of Chan, Golub & LeVeque (1979, "Updating formulae and a pairwise
    algorithm for computing sample variances"), in coordinates shifted by the
    first row: bitwise thread-count independent.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    sample_weight : ndarray of shape (n,) or (0,), float64; empty = unit weights
    stride : int, >= 1
        Chunks 0, stride, 2 stride, ... are read.

    Returns
    -------
    mean, var : ndarray of shape (d,), float64
        ``Σ s x / S`` and ``Σ s (x - mean)² / S`` per column over the rows
        read (the population variance; ``S = Σ s``).
    """
    n, d = X.shape
    n_chunks = (n + CHUNK_ROWS * stride - 1) // (CHUNK_ROWS * stride)
    weighted = sample_weight.shape[0] > 0
    w_c = np.zeros(n_chunks)
    shift = np.zeros((n_chunks, d))  # K: the chunk's first row
    mean_c = np.zeros((n_chunks, d))  # the chunk's mean minus K
    m2_c = np.zeros((n_chunks, d))
    for c in prange(n_chunks):
        lo = c * stride * CHUNK_ROWS
        hi = min(lo + CHUNK_ROWS, n)
        K = shift[c]
        s1 = mean_c[c]
        s2 = m2_c[c]
        for j in range(d):
            K[j] = np.float64(X[lo, j])
        wsum = 0.0
        for i in range(lo, hi):
            s_i = sample_weight[i] if weighted else 1.0
            wsum += s_i
            for j in range(d):
                t = np.float64(X[i, j]) - K[j]
                s1[j] += s_i * t
                s2[j] += s_i * t * t
        w_c[c] = wsum
        for j in range(d):
            m = s1[j] / wsum if wsum > 0.0 else 0.0
            s2[j] = max(s2[j] - m * s1[j], 0.0)
            s1[j] = m
    # Merge in chunk order, in coordinates shifted by the first chunk's K: a chunk's mean is
    # (K_c - K_0) + mean_c, differences of data values and small shifted means, so offsets
    # far above the spread (timestamps) never enter a difference of two large numbers.
    mean = mean_c[0].copy()  # minus K_0
    m2 = m2_c[0].copy()
    w = w_c[0]
    for c in range(1, n_chunks):
        w_b = w_c[c]
        total = w + w_b
        if w_b > 0.0:
            for j in range(d):
                delta = ((shift[c, j] - shift[0, j]) + mean_c[c, j]) - mean[j]
                mean[j] += delta * (w_b / total)
                m2[j] += m2_c[c, j] + delta * delta * (w * w_b / total)
        w = total
    mean += shift[0]
    var = m2 / w if w > 0.0 else m2 * 0.0
    return mean, var


@njit(**_JIT)
def sgd_epoch(X, y, sample_weight, rows, batch_order, batch_size, W, b, loss_id,
              alpha, fit_intercept, eta0, power_t, step0, mean_weight):
    """One epoch of mini-batch SGD, updating ``W`` and ``b`` in place.

    Each batch takes the step ``W -= eta_t (g / (m_b · mean_weight) + alpha W)``
    (:func:`fastlr._penalty.build_penalty` ``sgd_update``)
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
        ew = _max_abs_exponent(W)
        # Scores as in the full-gradient kernels: float64 for the binary model,
        # X's precision (the coefficients rounded to it) for the softmax model.
        if k == 1:
            _binary_rows(Xb, yb, swb, lo, hi, W[0], b[0], loss_id, acc[0], scratch, ew)
        else:
            W_x[:] = W
            _softmax_rows(Xb, yb, swb, lo, hi, W_x, b, loss_id, acc, softmax_scratch, W, ew)
        loss_sum = acc[0, d + 1]
        eta = eta0 / (step0 + step + 1.0) ** power_t
        scale = 1.0 / ((stop - start) * mean_weight)
        W_prev[:] = W
        b_prev[:] = b
        finite = np.isfinite(loss_sum)
        for cls in range(k):
            for j in range(d):
                W[cls, j] = _sgd_update(W[cls, j], scale * acc[cls, j], eta, alpha)
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


@njit(inline="always")
def _row_score(X, i, w, b_c):
    """``b_c + X[i] · w`` in float64, summed from the first column on (the scores of
    :func:`decision_function` and :func:`predict_labels`)."""
    s = b_c
    for j in range(X.shape[1]):
        s += X[i, j] * w[j]
    return s


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
    n = X.shape[0]
    k = W.shape[0]
    out = np.empty((n, k))
    for i in prange(n):
        for cls in range(k):
            out[i, cls] = _row_score(X, i, W[cls], b[cls])
    return out


@njit(parallel=True, **_JIT)
def predict_labels(X, W, b, labels):
    """Class labels of the rows of X without keeping their scores: ``predict`` in one pass.

    The scores are those of :func:`decision_function` (float64, the same
    order of operations); a row's class code is ``z > 0`` for a binary model
    (``k == 1``) and the first index of the largest score otherwise (as
    ``np.argmax``), and the row's output is ``labels[code]``: the class labels
    themselves when they are numbers (written by this pass instead of a gather
    over n values afterwards), or ``arange(n_classes)`` for the codes. Returns
    ``(out, finite)``: whether every score was finite; when it is False the
    caller recomputes the scores to treat NaN/inf as ``decision_function`` does.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64
    labels : ndarray of shape (max(k, 2),), int32 or int64
        The output of each class code.

    Returns
    -------
    out : ndarray of shape (n,), labels' dtype
    finite : bool
    """
    n = X.shape[0]
    k = W.shape[0]
    out = np.empty(n, labels.dtype)
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    bad = np.zeros(n_chunks, np.bool_)
    for c in prange(n_chunks):
        for i in range(c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n)):
            best = 0
            best_s = 0.0
            for cls in range(k):
                s = _row_score(X, i, W[cls], b[cls])
                if not math.isfinite(s):
                    bad[c] = True
                if cls == 0 or s > best_s:
                    best = cls
                    best_s = s
            out[i] = labels[(1 if best_s > 0.0 else 0) if k == 1 else best]
    return out, not bad.any()


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
