"""Fashion-MNIST (60k x 784, 10 classes, C=1): time to reach scikit-learn-intelex's objective.

scikit-learn-intelex's ``LogisticRegression(max_iter=100)`` is fitted first; its
objective ``C Σ loss + ½‖W‖²`` (float64) is the target. Then each fastlr solver
runs with a callback that stops it at the first iteration whose objective is at
least as low; the wall time of that ``fit`` (validation and label encoding
included) is reported beside the peer's, medians of ``--repeat`` runs, all in
this one process. Needs the files of the Debian package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist). Run under the exclusive lock.
"""

import argparse
import gzip
import os
import time
import warnings

import numpy as np
from scipy.special import logsumexp

from fastlr import LogisticRegression

DATA = "/usr/share/datasets/fashion-mnist"


def load(dtype):
    def read(name, offset):
        with gzip.open(os.path.join(DATA, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    X = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(dtype) / dtype(255)
    y = read("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return np.ascontiguousarray(X, dtype=dtype), y


def objective(coef, intercept, X, y, C):
    Z = X.astype(np.float64) @ coef.T + intercept
    return C * float(np.sum(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])) + 0.5 * float(np.sum(coef ** 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--solvers", default="newton-cg,lbfgs")
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--softmax-kernel", choices=("default", "tiles", "blas", "both"), default="default",
                    help="the cpu backend's softmax gradient: this CPU's default "
                         "(fastlr.backends.cpu.SOFTMAX_BLAS), the register tiles, BLAS block "
                         "products, or both, their runs interleaved")
    args = ap.parse_args()
    import fastlr.backends.cpu as cpu_backend
    default_path = "blas" if cpu_backend.SOFTMAX_BLAS else "tiles"
    paths = {"default": [default_path], "both": ["tiles", "blas"]}.get(args.softmax_kernel,
                                                                       [args.softmax_kernel])
    dtype = np.dtype(args.dtype).type
    X, y = load(dtype)
    C = 1.0
    n = len(y)
    from sklearnex.linear_model import LogisticRegression as ExLR
    times = []
    for _ in range(args.repeat):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            ex = ExLR(C=C, max_iter=100).fit(X, y)
            times.append(time.perf_counter() - t0)
    target = objective(ex.coef_, ex.intercept_, X, y, C)
    t_ex = float(np.median(times))
    print(f"sklearnex max_iter=100: {t_ex:.2f} s (median of {args.repeat}), objective {target:,.1f}", flush=True)
    for solver in args.solvers.split(","):
        LogisticRegression(C=C, solver=solver, max_iter=2).fit(X[:2000], y[:2000])  # JIT warm-up
        runs = {path: [] for path in paths}
        for _ in range(args.repeat):
            for path in paths:  # interleaved: every path sees the same machine state
                cpu_backend.SOFTMAX_BLAS = path == "blas"
                hist = []

                def stop(info):
                    hist.append((time.perf_counter(), info.loss * C * n))  # mean objective -> sklearn's
                    return info.loss * C * n <= target

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    m = LogisticRegression(C=C, solver=solver, max_iter=args.max_iter, tol=1e-12,
                                           callback=stop).fit(X, y)
                    t = time.perf_counter() - t0
                f = objective(m.coef_, m.intercept_, X, y, C)
                runs[path].append((t, f, len(hist)))
        for path in paths:
            t, f, it = sorted(runs[path])[len(runs[path]) // 2]
            reached = "reached" if f <= target * (1 + 1e-9) else "NOT reached"
            label = f"{path}{' (this CPU default)' if path == default_path else ''}"
            print(f"fastlr {solver:9} softmax {label}: {t:.2f} s to objective {f:,.1f} ({reached}) in "
                  f"{it} iterations; {t / t_ex:.2f} x sklearnex's time", flush=True)
        cpu_backend.SOFTMAX_BLAS = default_path == "blas"


if __name__ == "__main__":
    main()
