"""Jobs shared by the soak tests (tests/test_soak.py) and their child processes.

``run_job(i)`` fits job ``i`` — a mix of solvers, losses, dtypes and class
counts on small fixed data — and returns the arrays that must be bitwise
identical however the job is run (serially, in threads, in processes, under
any Numba threading layer). Run as a script it is the threading-layer soak:
``python tests/_soak_jobs.py THREADS FITS_PER_THREAD``.
"""

import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CONFIGS = [
    dict(solver="lbfgs"),
    dict(solver="lbfgs", loss="prob_squared"),
    dict(solver="gd", learning_rate="backtracking", eta0=1.0, max_iter=30),
    dict(solver="gd", loss="prob_squared", eta0=0.5, max_iter=20, tol=None),
    dict(solver="sgd", max_iter=3, tol=None, random_state=0),
    dict(solver="sgd", loss="prob_squared", shuffle="rows", batch_size=64, max_iter=2, tol=None, random_state=1),
]
_DATA = {}


def dataset(i):
    """Dataset ``i % 4``: 2 or 3 classes, float32 or float64, 2,500-4,000 rows (over one chunk)."""
    i %= 4
    if i not in _DATA:
        rng = np.random.default_rng(i)
        X = rng.standard_normal((2500 + 500 * i, 6)).astype(np.float32 if i % 2 else np.float64)
        y = rng.integers(0, 2 + i // 2, len(X))
        X[:, 0] += y
        _DATA[i] = (X, y)
    return _DATA[i]


def run_job(i):
    """Fit job ``i``; return (coef_, intercept_, loss_curve_, predict_proba of 40 rows)."""
    from fastlr import LogisticRegression

    X, y = dataset(i // len(CONFIGS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(**CONFIGS[i % len(CONFIGS)]).fit(X, y)
    return model.coef_, model.intercept_, np.array(model.loss_curve_), model.predict_proba(X[:40])


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def run_jobs_in_threads(n_threads, fits_per_thread):
    """Each thread fits ``fits_per_thread`` jobs; compare with the same jobs run serially."""
    jobs = list(range(n_threads * fits_per_thread))
    serial = [run_job(i) for i in jobs]
    with ThreadPoolExecutor(n_threads) as pool:
        threaded = list(pool.map(run_job, jobs))
    return sum(not same(a, b) for a, b in zip(serial, threaded))


if __name__ == "__main__":
    import numba

    try:
        from fastlr.kernels import cpu
        cpu._touch_threads(4)
        layer = numba.threading_layer()
    except ValueError as exc:  # the requested layer cannot be loaded here
        print(f"cannot load: {exc}")
        sys.exit(3)
    n_threads, fits = int(sys.argv[1]), int(sys.argv[2])
    mismatches = run_jobs_in_threads(n_threads, fits)
    print(f"layer {layer} mismatches {mismatches} pid {os.getpid()}")
    sys.exit(1 if mismatches else 0)
