"""The binary kernel's scores alone, with its prefetch, against a parallel read of X (a floor probe).

A copy of the score loop of :func:`fastlr.kernels.cpu._binary_rows` (two rows at a time, the next
block's rows hinted two per row pair) that sums the scores and does nothing else, in two forms:
``scores64`` sums in float64 as the kernel does, ``scoresX`` in X's dtype (the coefficients
rounded to it). If the scores alone run at the read's speed, the float64 scores are not what holds
the kernel below the read; the rest of the per-row work is. Timed interleaved with the read
(:func:`fastlr.kernels.cpu.read_sum`) and the kernel, medians of 15, Numba's default threads.

Usage: ``python benchmarks/binary_scores_floor.py N D DTYPE``, e.g. ``1000000 64 float32``.
"""
import sys
import time

import numpy as np
from numba import njit, prange

from fastlr._math import LOG
from fastlr.kernels import cpu as K
from fastlr.kernels._prefetch import prefetch_rows

_JIT = dict(cache=False, fastmath={"reassoc", "contract"}, error_model="numpy")
B = K.BLOCK_ROWS


def make(sum_in_x_dtype):
    @njit(**_JIT)
    def rows(X, start, stop, w, w_x, acc, z):
        d = X.shape[1]
        for s0 in range(start, stop, B):
            m = min(B, stop - s0)
            nxt = s0 + B
            r = 0
            while r + 2 <= m:
                a = min(nxt + r, stop)
                prefetch_rows(X, a, min(a + 2, stop))
                if sum_in_x_dtype:
                    z0 = X.dtype.type(0)
                    z1 = X.dtype.type(0)
                    for j in range(d):
                        z0 += X[s0 + r, j] * w_x[j]
                        z1 += X[s0 + r + 1, j] * w_x[j]
                else:
                    z0 = 0.0
                    z1 = 0.0
                    for j in range(d):
                        z0 += X[s0 + r, j] * w[j]
                        z1 += X[s0 + r + 1, j] * w[j]
                z[r] = z0
                z[r + 1] = z1
                r += 2
            s = 0.0
            for r in range(m):
                s += z[r]
            acc[0] += s

    @njit(parallel=True, **_JIT)
    def scores(X, w):
        n = X.shape[0]
        C = K.CHUNK_ROWS
        nc = (n + C - 1) // C
        part = np.zeros((nc, 1))
        w_x = w.astype(X.dtype)
        for c in prange(nc):
            rows(X, c * C, min((c + 1) * C, n), w, w_x, part[c], np.empty(B))
        return part.sum()
    return scores


def main():
    n, d, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, 2, n).astype(np.int32)
    w = rng.standard_normal(d) / np.sqrt(d)
    fs = {"scores64": make(False), "scoresX": make(True)}
    for f in fs.values():
        f(X, w)
    K.binary_loss_grad(X, y, np.empty(0), w, 0.0, LOG)
    K.read_sum(X)
    T = {name: [] for name in ["read", "kernel", *fs]}
    for _ in range(15):
        t = time.perf_counter(); K.read_sum(X); T["read"].append(time.perf_counter() - t)
        t = time.perf_counter(); K.binary_loss_grad(X, y, np.empty(0), w, 0.0, LOG)
        T["kernel"].append(time.perf_counter() - t)
        for name, f in fs.items():
            t = time.perf_counter(); f(X, w); T[name].append(time.perf_counter() - t)
    read = np.median(T["read"])
    for name, ts in T.items():
        print(f"{name:10s} {np.median(ts) * 1e3:7.2f} ms  {read / np.median(ts):5.0%} of read")


if __name__ == "__main__":
    main()
