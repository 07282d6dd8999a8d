"""Median time of the cpu backend's softmax gradient kernel at two k = 10 float32 shapes.

For comparing two checkouts of fastlr process by process, alternating (the README's figures
of the fourth to sixth sessions were taken so)::

    for i in 1 2 3 4 5 6; do for t in OLD NEW; do
        echo "$t $(PYTHONPATH=$t python benchmarks/softmax_ab.py 11)"; done; done

Prints one JSON line: shape -> milliseconds (median of ``argv[1]`` calls after one warm-up).
The kernel is the one the backend runs on this CPU (``softmax_uses_blas``); the problems are
``softmax_kernels.problem``'s, the same data as that script's first two shapes.

``benchmarks/kernel_ab.py`` compares two checkouts in one process instead (the other
checkout's package imported under another name), pair by pair: on a VM whose speed drifts,
that shows changes of a few percent that separate processes cannot.
"""

import json
import sys
import time

import numpy as np

from fastlr._math import LOG
from fastlr.backends.cpu import softmax_uses_blas
from fastlr.kernels import cpu

from softmax_kernels import problem  # benchmarks/ is on sys.path when run as a script

SHAPES = [(1_000_000, 64, 10, "float32"), (60_000, 784, 10, "float32")]


def main(repeat):
    rng = np.random.default_rng(0)
    out = {}
    for n, d, k, dt in SHAPES:
        X, y, W, b, sw = problem(rng, n, d, k, dt)
        f = cpu.multinomial_loss_grad_blas if softmax_uses_blas(k) else cpu.multinomial_loss_grad
        f(X, y, sw, W, b, LOG)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            f(X, y, sw, W, b, LOG)
            times.append(time.perf_counter() - start)
        out[f"{n}x{d}k{k}{dt}"] = float(np.median(times)) * 1e3
    print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
