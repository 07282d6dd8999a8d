"""Does this CPU read memory while it computes? A probe of where prefetch hints must go.

Each 16-row block of a 1M x 64 float32 X is summed (a streaming read), then a dependent chain
of ``work`` multiply-adds runs that touches no memory (as the gradient kernels' exponentials
and loss do). Placements of the hints for the next block: none, all at once before the block
(``burst``), or one row per sixteenth of the chain (``spread``); ``in cache`` runs the same
loop over 4,096 rows that stay in cache, the time the block takes with no memory traffic.

On the 2-core AMD EPYC Zen 3 (2026-12-03, one thread, ns a row, two runs): read alone
13.2-13.4; with a chain of 192 steps a block none 22.1-22.7, burst 19.6-21.0, spread 18.1, in
cache 18.5-18.6; with 384 steps 33.7-34.2, 31.0-32.3, 28.6, 29.5-29.6. Without hints, or with all of them at once, the core's reads stall behind the
computation and the two times add up; spread over the computation, the reads are hidden
entirely. ``fastlr.kernels.cpu._prefetch_ahead`` places the kernels' hints accordingly.

Usage: ``python benchmarks/prefetch_overlap.py`` (machine idle).
"""
import time

import numba
import numpy as np
from numba import njit, prange

from fastlr.kernels._prefetch import prefetch_rows

_JIT = dict(cache=False, fastmath={"reassoc", "contract"}, error_model="numpy")
B = 16
PLACEMENTS = {"none": 0, "burst": 1, "spread": 2}


def make(work, placement):
    @njit(**_JIT)
    def rows(X, lo, hi, out):
        d = X.shape[1]
        s = 0.0
        c = 1.0
        for s0 in range(lo, hi, B):
            m = min(B, hi - s0)
            nxt = s0 + B
            if placement == 1:
                prefetch_rows(X, min(nxt, hi), min(nxt + m, hi))
            for r in range(m):
                t = 0.0
                for j in range(d):
                    t += X[s0 + r, j]
                s += t
            for r in range(m):
                if placement == 2:
                    prefetch_rows(X, min(nxt + r, hi), min(nxt + r + 1, hi))
                for _ in range(work // B):
                    c = c * 0.9999999 + 1e-9
        out[0] = s + c

    @njit(parallel=True, **_JIT)
    def run(X):
        n = X.shape[0]
        C = 2048
        nc = (n + C - 1) // C
        part = np.zeros((nc, 1))
        for i in prange(nc):
            rows(X, i * C, min(n, (i + 1) * C), part[i])
        return part.sum()
    return run


def per_row(f, X, repeat):
    f(X)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f(X)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)) / X.shape[0] * 1e9


def main():
    numba.set_num_threads(1)
    X = np.random.default_rng(0).standard_normal((1_000_000, 64)).astype(np.float32)
    small = X[:4096].copy()
    print(f"read alone: {per_row(make(0, 0), X, 9):.1f} ns a row (one thread)")
    for work in (192, 384):
        cells = [f"{name} {per_row(make(work, p), X, 9):.1f}" for name, p in PLACEMENTS.items()]
        cells.append(f"in cache {per_row(make(work, 0), small, 201):.1f}")
        print(f"chain of {work} steps a block: " + ", ".join(cells) + " ns a row")


if __name__ == "__main__":
    main()
