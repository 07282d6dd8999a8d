"""The binary gradient kernel's per-row work, piece by piece, with X in cache (one thread).

``benchmarks/kernel_roofline.py`` compares the kernel with a read of X. When
the kernel falls short of the read, this says whether the per-row compute
alone is near the read's time per row (then compute and memory only partly
overlap, and the kernel cannot reach the read however well it prefetches):
it runs the block loop of :func:`fastlr.kernels.cpu._binary_rows` on a 1 MB X
(in L2) with only one of its pieces enabled (the scores ``x·w`` in float64,
``exp(-|z|)``, the loss and its derivative, the gradient sum ``Σ dz x``), then
with all of them, and prints nanoseconds per row on one thread. Compare with
the read: ``n_threads × read time / n`` per row and thread.

Usage: ``python benchmarks/binary_pieces.py`` (run with the machine idle).
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
        bits = np.zeros(B, np.int64)
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
                    K._exp_neg_abs(z, m, e, bits)
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
                    K._add_weighted_rows(X, s0, m, dz, acc_block)
                    for j in range(d):
                        acc[j] += acc_block[j]
        return acc
    return f


PIECES = (("scores", (1, 0, 0, 0)), ("exp", (0, 1, 0, 0)), ("loss", (0, 0, 1, 0)),
          ("gradient", (0, 0, 0, 1)), ("all", (1, 1, 1, 1)))


def main():
    rng = np.random.default_rng(0)
    for d, dtype in ((64, "float32"), (64, "float64"), (784, "float32")):
        n = (1 << 20) // (d * np.dtype(dtype).itemsize)  # 1 MB of X: stays in L2
        X = rng.standard_normal((n, d)).astype(dtype)
        y = (rng.random(n) < 0.5).astype(np.int32)
        w = rng.standard_normal(d) * 0.1
        out = []
        for name, flags in PIECES:
            f = make(*flags)
            f(X, y, w, 0.1, 1)
            reps = 50
            times = []
            for _ in range(5):
                start = time.perf_counter()
                f(X, y, w, 0.1, reps)
                times.append((time.perf_counter() - start) / reps / n * 1e9)
            out.append(f"{name} {min(times):.1f}")
        print(f"d={d} {dtype}, ns per row on one thread (X in cache, best of 5): " + ", ".join(out))


if __name__ == "__main__":
    main()
