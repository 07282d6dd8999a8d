"""The softmax scores' register tile: 2 rows x 4 classes (the kernel's) against 4 x 4 (before).

:func:`fastlr.kernels.cpu._block_scores` computes ``X_b Wᵀ`` for a 16-row block
in tiles of :data:`~fastlr.kernels.cpu.SCORE_TILE_ROWS` rows by 4 classes. The 4 x 4
tile it replaced is copied below (16 vector accumulators: on AVX2's 16 registers
LLVM spilled some of them to the stack). Both run here on the same 1 MB X (in L2),
one thread, interleaved 15 times; prints nanoseconds per row (best and median) at
d = 64 and d = 784, k = 10, float32, and the number of spill stores in each loop's
machine code. Usage: ``python benchmarks/score_tiles.py`` (machine idle).
"""

import re
import time

import numpy as np
from numba import njit

from fastlr.kernels import cpu as K

_F = dict(fastmath={"reassoc", "contract"}, error_model="numpy")


@njit(inline="always", **_F)
def _tile44(X, i, W, c, Z, r):
    zero = X.dtype.type(0)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for j in range(X.shape[1]):
        x0 = X[i, j]
        x1 = X[i + 1, j]
        x2 = X[i + 2, j]
        x3 = X[i + 3, j]
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
        s20 += x2 * w0
        s21 += x2 * w1
        s22 += x2 * w2
        s23 += x2 * w3
        s30 += x3 * w0
        s31 += x3 * w1
        s32 += x3 * w2
        s33 += x3 * w3
    Z[r, c] = s00
    Z[r, c + 1] = s01
    Z[r, c + 2] = s02
    Z[r, c + 3] = s03
    Z[r + 1, c] = s10
    Z[r + 1, c + 1] = s11
    Z[r + 1, c + 2] = s12
    Z[r + 1, c + 3] = s13
    Z[r + 2, c] = s20
    Z[r + 2, c + 1] = s21
    Z[r + 2, c + 2] = s22
    Z[r + 2, c + 3] = s23
    Z[r + 3, c] = s30
    Z[r + 3, c + 1] = s31
    Z[r + 3, c + 2] = s32
    Z[r + 3, c + 3] = s33


@njit(inline="always", **_F)
def _rows4(X, i, w, Z, r, c):
    zero = X.dtype.type(0)
    s0 = s1 = s2 = s3 = zero
    for j in range(X.shape[1]):
        s0 += X[i, j] * w[j]
        s1 += X[i + 1, j] * w[j]
        s2 += X[i + 2, j] * w[j]
        s3 += X[i + 3, j] * w[j]
    Z[r, c] = s0
    Z[r + 1, c] = s1
    Z[r + 2, c] = s2
    Z[r + 3, c] = s3


@njit(**_F)
def scores_4x4(X, W, Z, reps):
    """The scores of every 16-row block in 4 x 4 tiles (the kernel before, k % 4 classes one by one)."""
    k = W.shape[0]
    k4 = k - k % 4
    for _ in range(reps):
        for s0 in range(0, X.shape[0] - 15, 16):
            for r in range(0, 16, 4):
                for c in range(0, k4, 4):
                    _tile44(X, s0 + r, W, c, Z, r)
                for c in range(k4, k):
                    _rows4(X, s0 + r, W[c], Z, r, c)


@njit(**_F)
def scores_kernel(X, W, Z, reps):
    """The scores of every 16-row block as the kernel forms them now (:func:`_block_scores`)."""
    b = np.zeros(W.shape[0])
    for _ in range(reps):
        for s0 in range(0, X.shape[0] - 15, 16):
            K._block_scores(X, s0, 16, W, b, Z, 0, 0)


def _spills(f):
    asm = "\n".join(f.inspect_asm().values())
    return len(re.findall(r"vmovups\s+%ymm\d+, -?\d*\(%rsp\)", asm))


def main():
    rng = np.random.default_rng(0)
    k = 10
    for d in (64, 784):
        n = (1 << 20) // (4 * d)
        X = rng.random((n, d), dtype=np.float32)
        W = rng.standard_normal((k, d)).astype(np.float32)
        Z = {name: np.zeros((16, k)) for name in ("4x4", "kernel")}
        fs = (("4x4", scores_4x4), ("kernel", scores_kernel))
        reps = 200 if d < 200 else 20
        for name, f in fs:
            f(X, W, Z[name], 1)
        # both hold the last block's scores: within float32's worst-case dot-product bound
        last = X[(n - 16) // 16 * 16:][:16].astype(np.float64)
        ref = last @ W.T.astype(np.float64)
        bound = d * 2.0 ** -24 * (np.abs(last) @ np.abs(W.T.astype(np.float64)))
        for name in Z:
            assert np.all(np.abs(Z[name] - ref) <= bound), name
        times = {name: [] for name, _ in fs}
        for _ in range(15):
            for name, f in fs:
                start = time.perf_counter()
                f(X, W, Z[name], reps)
                times[name].append((time.perf_counter() - start) / reps / n * 1e9)
        out = [f"{name} {min(t):.1f} / {np.median(t):.1f} ns ({_spills(f)} spill stores)"
               for (name, t), (_, f) in zip(times.items(), fs)]
        print(f"scores d={d} k={k} float32, one thread, best / median of 15: " + "; ".join(out), flush=True)


if __name__ == "__main__":
    main()
