"""In-process A/B of the CPU gradient kernels of two source trees: this one (A) against another (B).

On a shared VM the speed of the machine drifts by tens of percent within minutes (on the 2-core
Zen 3 of the eighth and ninth sessions a parallel read of 1M x 64 float32 took 8 to 15 ms, and
``kernel_roofline.py`` gave 49 to 81 ms for the same softmax gradient in separate processes), so
before/after figures from separate processes cannot show a 10% change. This imports both trees'
kernels in one process (B's ``fastlr`` package copied to a temporary directory as ``fastlr_b``:
the package imports itself relatively), calls A and B alternately (A first on even rounds, B
first on odd ones) and reports the medians and the median of the per-pair ratios B/A with its
quartiles: the drift between two neighbouring calls is small. It also checks that both trees
give the same gradient (the largest difference relative to the largest gradient entry).

Usage::

    python benchmarks/kernel_ab.py PATH_OF_B_TREE [--shapes 0,1,2] [--rounds 11]

``PATH_OF_B_TREE`` is a checkout (a git worktree) holding ``fastlr/``. Shapes: 0 = 1M x 64
k=10, 1 = 60k x 784 k=10 (Fashion-MNIST's), 2 = 1M x 64 binary, 3 = 1M x 64 binary float64,
4 = 250k x 256 binary, 5 = 60k x 784 binary, 6 = 60k x 784 k=10 float64, 7 = 250k x 256
k=10, 8 = 500k x 64 k=10 float64, 9 = 100k x 100 k=3; all float32 unless named. Threads: Numba's default.
"""
import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np

SHAPES = [(1_000_000, 64, 10, "float32"), (60_000, 784, 10, "float32"), (1_000_000, 64, 1, "float32"),
          (1_000_000, 64, 1, "float64"), (250_000, 256, 1, "float32"), (60_000, 784, 1, "float32"),
          (60_000, 784, 10, "float64"), (250_000, 256, 10, "float32"), (500_000, 64, 10, "float64"),
          (100_000, 100, 3, "float32")]


def load_b(tree):
    """Copy ``tree/fastlr`` to a temporary directory as ``fastlr_b`` (no Numba cache files) and import its kernels."""
    root = tempfile.mkdtemp(prefix="fastlr-ab-")
    shutil.copytree(os.path.join(tree, "fastlr"), os.path.join(root, "fastlr_b"),
                    ignore=shutil.ignore_patterns("*.nbi", "*.nbc", "__pycache__"))
    sys.path.insert(0, root)
    return importlib.import_module("fastlr_b.kernels.cpu")


def flat(result):
    parts = result if isinstance(result, tuple) else (result,)
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", help="the B source tree (holding fastlr/)")
    parser.add_argument("--shapes", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    from fastlr._math import LOG
    from fastlr.kernels import cpu as A
    B = load_b(args.tree)
    rng = np.random.default_rng(0)
    for index in args.shapes.split(","):
        n, d, k, dtype = SHAPES[int(index)]
        X = rng.standard_normal((n, d)).astype(dtype)
        y = rng.integers(0, max(k, 2), n).astype(np.int32)
        W = rng.standard_normal((k, d)) / np.sqrt(d)
        b = np.zeros(k)
        none = np.empty(0)
        if k > 1:
            calls = [lambda K=K: K.multinomial_loss_grad(X, y, none, W, b, LOG) for K in (A, B)]
        else:
            calls = [lambda K=K: K.binary_loss_grad(X, y, none, W[0], 0.0, LOG) for K in (A, B)]
        ra, rb = (flat(call()) for call in calls)  # compiles both
        diff = np.max(np.abs(ra - rb)) / np.max(np.abs(ra))
        times = ([], [])
        ratios = []
        for r in range(args.rounds):
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                calls[i]()
                times[i].append(time.perf_counter() - start)
            ratios.append(times[1][-1] / times[0][-1])
        print(f"{n} x {d} k={k} {dtype}: A {np.median(times[0]) * 1e3:.2f} ms, B {np.median(times[1]) * 1e3:.2f} ms, "
              f"B/A per pair {np.median(ratios):.3f} [{np.percentile(ratios, 25):.3f}, {np.percentile(ratios, 75):.3f}], "
              f"largest difference {diff:.1e} of the largest entry", flush=True)


if __name__ == "__main__":
    main()
