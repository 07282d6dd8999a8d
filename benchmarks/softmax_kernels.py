"""The two dense softmax gradient kernels side by side, in one process: which pays on this CPU.

``fastlr.kernels.cpu.multinomial_loss_grad`` (register tiles) and
``multinomial_loss_grad_blas`` (two BLAS products per block of rows) compute the
same gradient. The cpu backend takes BLAS for k >= ``SOFTMAX_BLAS_MIN_CLASSES``
where ``fastlr.backends.cpu.softmax_blas_pays`` says so (AVX-512, or no AVX2),
the tiles otherwise. This prints, per shape, the median time of a parallel read
of X and of each kernel (interleaved, so all three see the same machine state),
with the BLAS pools at one thread as during a fit, and which one the backend runs.

Usage: ``python benchmarks/softmax_kernels.py [--repeat 7] [--json FILE]`` (machine idle).
"""

import argparse
import json
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastlr._math import LOG
from fastlr.backends import cpu as backend
from fastlr.kernels import cpu

SHAPES = [  # (n, d, k, dtype)
    (60_000, 784, 10, "float32"),  # Fashion-MNIST
    (1_000_000, 64, 10, "float32"),
    (60_000, 784, 10, "float64"),
    (200_000, 64, 10, "float64"),
    (200_000, 64, 8, "float32"),
    (200_000, 256, 20, "float32"),
]


def problem(rng, n, d, k, dtype):
    """A softmax problem of n rows, d columns and k classes: X, y, W, b and empty weights."""
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, k, n).astype(np.int32)
    W = rng.standard_normal((k, d)) / np.sqrt(d)
    return X, y, W, np.zeros(k), np.empty(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()
    features = backend.numba_target_features()
    print(f"CPU features Numba compiles for: avx2={'avx2' in features}, fma={'fma' in features}, "
          f"avx512f={'avx512f' in features}; the backend runs "
          f"{'BLAS' if backend.SOFTMAX_BLAS else 'the tiles'} for k >= {cpu.SOFTMAX_BLAS_MIN_CLASSES}")
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(1, user_api="blas"):
        for n, d, k, dt in SHAPES:
            X, y, W, b, sw = problem(rng, n, d, k, dt)
            runs = {"read": lambda: cpu.read_sum(X),
                    "tiles": lambda: cpu.multinomial_loss_grad(X, y, sw, W, b, LOG),
                    "blas": lambda: cpu.multinomial_loss_grad_blas(X, y, sw, W, b, LOG)}
            for f in runs.values():
                f()
            times = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, f in runs.items():
                    t0 = time.perf_counter()
                    f()
                    times[name].append(time.perf_counter() - t0)
            ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
            row = dict(n=n, d=d, k=k, dtype=dt, read_ms=ms["read"], tiles_ms=ms["tiles"],
                       blas_ms=ms["blas"], blas_over_tiles=ms["blas"] / ms["tiles"])
            rows.append(row)
            print(f"{n:>9} x {d:<4} k={k:<2} {dt}: read {ms['read']:7.2f} ms  tiles {ms['tiles']:7.2f} ms"
                  f"  BLAS {ms['blas']:7.2f} ms  BLAS/tiles {row['blas_over_tiles']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=platform.processor() or platform.machine(),
                           features=sorted(features & {"avx2", "fma", "avx512f"}),
                           softmax_blas=backend.SOFTMAX_BLAS, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
