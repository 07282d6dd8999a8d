"""The CPU gradient kernels' per-row work, piece by piece, with X in cache (one thread).

``benchmarks/kernel_roofline.py`` compares the kernel with a read of X. When
the kernel falls short of the read, this says whether the per-row compute
alone is near the read's time per row (then compute and memory only partly
overlap, and the kernel cannot reach the read however well it prefetches):
it runs the block loop of :func:`fastlr.kernels.cpu._binary_rows` on a 1 MB X
(in L2) with only one of its pieces enabled (the scores ``x·w`` in float64,
``exp(-|z|)``, the loss and its derivative, the gradient sum ``Σ dz x``), then
with all of them, and prints nanoseconds per row on one thread. Compare with
the read: ``n_threads × read time / n`` per row and thread.

The softmax kernel (:func:`fastlr.kernels.cpu._softmax_rows`, k = 10) gets the
same treatment through the kernel's own inline pieces: the score tiles, the
per-sample part (row maxima, shift, exponentials, loss and derivative), the
gradient micro-kernel, and the flush of the block sums into the float64 partial.

The binary block loop below is a copy of the kernel's (unit weights, log loss,
without the rare path for overflowing scores), with each piece behind a flag;
keep it in step with ``fastlr/kernels/cpu.py``. Its pieces are not shared
with the kernel as inline helpers because that measured slower: moving the
binary loss loop or the score loop into ``inline="always"`` functions gave
bitwise the same gradients but took 3-16% longer per row on the Intel Xeon
(one thread, X in cache). The softmax kernel's per-sample step is an inline
helper since the eighth session (``_softmax_block_dz``, explicit vectors),
measured faster on the Zen 3 only.

Usage: ``python benchmarks/kernel_pieces.py`` (run with the machine idle).
"""

import time

import numpy as np
from numba import njit

from fastlr.kernels import cpu as K

B = K.BLOCK_ROWS
_JIT = dict(cache=False, fastmath={"reassoc", "contract"}, error_model="numpy")


def make(do_scores, do_exp, do_loss, do_grad):
    """The block loop of ``_binary_rows`` (log loss, unit weights) with the chosen pieces."""
    @njit(**_JIT)
    def f(X, y, w, b, reps):
        n, d = X.shape
        z = np.zeros(B)
        e = np.zeros(B)
        dz = np.zeros(B, X.dtype)
        acc_block = np.zeros(d, X.dtype)
        acc = np.zeros(d + 2)
        for _ in range(reps):
            for s0 in range(0, n, B):
                m = min(B, n - s0)
                if do_scores:
                    r = 0
                    while r + 2 <= m:
                        z0 = 0.0
                        z1 = 0.0
                        for j in range(d):
                            z0 += X[s0 + r, j] * w[j]
                            z1 += X[s0 + r + 1, j] * w[j]
                        z[r] = z0 + b
                        z[r + 1] = z1 + b
                        r += 2
                if do_exp:
                    K._exp_neg_abs(z, m, e)
                if do_loss:
                    for r in range(m):
                        loss, g = K._binary_loss_dz(0, z[r], e[r], np.float64(y[s0 + r]))
                        z[r] = loss
                        e[r] = g
                    for r in range(m):
                        dz[r] = e[r]
                    loss_sum = 0.0
                    dz_sum = 0.0
                    for r in range(m):
                        loss_sum += z[r]
                        dz_sum += e[r]
                    acc[d] += dz_sum
                    acc[d + 1] += loss_sum
                if do_grad:
                    K._add_weighted_rows(X, s0, m, dz, acc_block, 0, 0)
                    for j in range(d):
                        acc[j] += acc_block[j]
        return acc
    return f


def make_softmax(do_scores, do_per_sample, do_grad, do_flush):
    """The block loop of ``_softmax_rows`` (log loss, unit weights) with the chosen pieces.

    The pieces are the kernel's own inline functions: the scores (:func:`_block_scores`),
    the per-sample part (:func:`_softmax_block_dz`: row maxima, shift, exponentials, loss
    and derivative), the gradient block sum (:func:`_block_grad`) and the flush."""
    @njit(**_JIT)
    def f(X, y, W, b, reps):
        n, d = X.shape
        k = W.shape[0]
        scratch = K._softmax_scratch(k, d, X.dtype)
        Z, shifted, e, dz, G, per_row, p = scratch
        Z[:] = 0.0
        dz[:] = 0
        acc = np.zeros((k, d + 2))
        W64 = W.astype(np.float64)
        sw = np.empty(0)
        for _ in range(reps):
            pending = 0
            for s0 in range(0, n, B):
                m = min(B, n - s0)
                if do_scores:
                    K._block_scores(X, s0, m, W, b, Z, 0, 0)
                if do_per_sample:
                    K._softmax_block_dz(X, y, sw, s0, m, b, 0, acc, scratch, W64, 0, 0, 0)
                if do_grad:
                    K._block_grad(X, s0, m, dz, G, 0, 0)
                if do_flush:
                    pending += m
                    if pending >= K.FLUSH_ROWS or s0 + m >= n:
                        for c in range(k):
                            for j in range(d):
                                acc[c, j] += G[c, j]
                        G[:] = 0
                        pending = 0
        return acc
    return f


SOFTMAX_PIECES = (("scores", (1, 0, 0, 0)), ("per-sample", (0, 1, 0, 0)),
                  ("gradient", (0, 0, 1, 0)), ("flush", (0, 0, 0, 1)), ("all", (1, 1, 1, 1)))


def _per_row(f, args, n, reps):
    f(*args, 1)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f(*args, reps)
        times.append((time.perf_counter() - start) / reps / n * 1e9)
    return min(times)


PIECES = (("scores", (1, 0, 0, 0)), ("exp", (0, 1, 0, 0)), ("loss", (0, 0, 1, 0)),
          ("gradient", (0, 0, 0, 1)), ("all", (1, 1, 1, 1)))


def main():
    rng = np.random.default_rng(0)
    for d, dtype in ((64, "float32"), (64, "float64"), (784, "float32")):
        n = (1 << 20) // (d * np.dtype(dtype).itemsize)  # 1 MB of X: stays in L2
        X = rng.standard_normal((n, d)).astype(dtype)
        y = (rng.random(n) < 0.5).astype(np.int32)
        w = rng.standard_normal(d) * 0.1
        out = [f"{name} {_per_row(make(*flags), (X, y, w, 0.1), n, 50):.1f}" for name, flags in PIECES]
        print(f"binary d={d} {dtype}, ns per row on one thread (X in cache, best of 5): " + ", ".join(out))
    for d in (784, 64):
        k = 10
        n = (1 << 20) // (d * 4)
        X = rng.random((n, d), dtype=np.float32)
        y = rng.integers(0, k, n).astype(np.int32)
        W = (rng.standard_normal((k, d)) * 0.01).astype(np.float32)
        out = [f"{name} {_per_row(make_softmax(*flags), (X, y, W, np.zeros(k)), n, 30):.0f}"
               for name, flags in SOFTMAX_PIECES]
        print(f"softmax d={d} k={k} float32, ns per row on one thread (X in cache, best of 5): " + ", ".join(out))


if __name__ == "__main__":
    main()
