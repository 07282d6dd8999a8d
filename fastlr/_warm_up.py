"""Load (or compile) fastlr's kernels before a timed fit: a three-iteration fit on a few rows.

Used by ``fastlr demo`` and ``fastlr train``, so that the times they print are
the fits' own, as the benchmarks' warm-up fits make them.
"""

import time
import warnings

import numpy as np

__all__ = ["warm_up"]


def warm_up(models, X, y, rows=200):
    """Fit a clone of each model for three iterations on a few rows; return the seconds it took.

    The first fit in a process loads fastlr's compiled kernels from Numba's disk cache
    (or, in a new environment, compiles them): done here, outside the timed fits, as the
    benchmarks do, so that a demo's "fit s" is the fit's own time. The rows are the first
    ``rows`` plus one of each class, so that every class count's kernels are loaded; when
    the whole of X is large enough for the cpu backend's parallel kernels
    (:data:`fastlr.backends.cpu.PARALLEL_MIN_WORK` multiply-adds per pass), enough rows to
    reach that size too, so that the parallel kernels the timed fit runs are the ones loaded
    (the few rows alone ran the serial ones, and the first timed fit on digits then compiled
    for 7.8 s).
    """
    from sklearn.base import clone

    from ._labels import n_outputs
    from .backends.cpu import PARALLEL_MIN_WORK, _parallel

    classes, first = np.unique(y, return_index=True)
    outputs = n_outputs(len(classes))
    if _parallel(X, outputs):
        rows = max(rows, -(-PARALLEL_MIN_WORK // max(1, X.shape[1] * outputs)))
    idx = np.union1d(np.arange(min(rows, len(y))), first)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in models:
            clone(model).set_params(max_iter=3).fit(X[idx], y[idx])
    return time.perf_counter() - start
