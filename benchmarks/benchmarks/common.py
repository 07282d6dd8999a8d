"""Shared helpers of the fastlr asv suites: sizes, deterministic data, objectives.

Nothing in this module is a benchmark (asv skips names that start with ``_``
and never finds a ``time_``/``track_`` attribute here).

Sizes
-----
``FASTLR_BENCH_SMALL=1`` (any value but ``""`` and ``"0"``) switches every
suite to tiny problems (20 000 rows), drops the 1M-row cases and shrinks
the ``loss_grad`` shape grid to one 20 000 x 64 shape, so that
``asv run --quick`` finishes in a couple of minutes on a laptop or in CI.
The variable must be set for the whole ``asv`` command: asv discovers the
parameters in one process and runs them in others, and both must agree.
"""

import functools
import os
import time

import numpy as np

# scikit-learn's L2 logistic objective C Σ loss_i + ½‖W‖² in plain NumPy (independent of
# fastlr's kernels): the one yardstick for fastlr and every peer, shared with `fastlr bench`.
from fastlr.peers import objective  # noqa: F401  (re-exported to the suites)

#: True when the suites should use tiny problems (CI, smoke tests).
SMALL = os.environ.get("FASTLR_BENCH_SMALL", "").strip() not in ("", "0")


def pick(default, small):
    """``small`` under ``FASTLR_BENCH_SMALL=1``, ``default`` otherwise."""
    return small if SMALL else default


#: Rows of the large binary problem (bench_fit, bench_sgd).
N_BINARY = pick(1_000_000, 20_000)
#: Features of the binary and multinomial problems.
N_FEATURES = 64
#: Rows and classes of the multinomial problem (bench_fit).
N_MULTINOMIAL = pick(100_000, 20_000)
N_CLASSES = 10

#: The ``loss_grad`` shape grid (bench_loss_grad, bench_gpu): every n x d pair, less
#: those whose X exceeds :data:`MAX_X_BYTES`. FASTLR_BENCH_SMALL=1: one tiny shape.
GRID_N_SAMPLES = pick([10_000, 100_000, 1_000_000, 10_000_000], [20_000])
GRID_N_FEATURES = pick([8, 64, 256, 1024], [64])

#: Largest X (bytes) a grid point may need: 2 GiB. With the cached data (two problems
#: at most), a float64 copy made by the NumPy reference backend and BLAS temporaries,
#: a grid point then stays well inside a 24 GB machine. Override with
#: ``FASTLR_BENCH_MAX_X_BYTES`` (e.g. on a bigger machine or a GPU with more memory).
MAX_X_BYTES = int(float(os.environ.get("FASTLR_BENCH_MAX_X_BYTES", "") or 2 * 2**30))


def skip_if_too_large(n, d, dtype):
    """Raise NotImplementedError (asv: skipped, "n/a") if an (n, d) X of ``dtype`` is too big.

    Call it first thing in ``setup``, before any data is made.
    """
    nbytes = n * d * np.dtype(dtype).itemsize
    if nbytes > MAX_X_BYTES:
        raise NotImplementedError(
            f"X of {n} x {d} {dtype} is {nbytes / 2**30:.1f} GiB, over the "
            f"{MAX_X_BYTES / 2**30:.1f} GiB limit (FASTLR_BENCH_MAX_X_BYTES)"
        )


# -- data ---------------------------------------------------------------------------------

def _standard_features(rng, n, d, dtype, chunk=1 << 18):
    """(n, d) C-contiguous features of ``dtype``, each column exactly standardised.

    Correlated (a random mixing of independent normals) so that the problem
    is not trivially conditioned, then centred and scaled column by column.
    """
    mix = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    X = np.empty((n, d), dtype=dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        X[start:stop] = rng.standard_normal((stop - start, d)) @ mix
    X64_mean = np.zeros(d)
    X64_sq = np.zeros(d)
    for start in range(0, n, chunk):
        block = X[start:start + chunk].astype(np.float64)
        X64_mean += block.sum(axis=0)
        X64_sq += np.einsum("ij,ij->j", block, block)
    mean = X64_mean / n
    std = np.sqrt(np.maximum(X64_sq / n - mean * mean, 1e-12))
    for start in range(0, n, chunk):
        block = X[start:start + chunk]
        block -= mean.astype(dtype)
        block /= std.astype(dtype)
    return X


def _scores(X, W, b, chunk=1 << 18):
    """``X @ W.T + b`` in float64, a chunk at a time (no float64 copy of all of X)."""
    out = np.empty((X.shape[0], W.shape[0]))
    for start in range(0, X.shape[0], chunk):
        out[start:start + chunk] = X[start:start + chunk].astype(np.float64) @ W.T + b
    return out


@functools.lru_cache(maxsize=2)
def make_binary(n, d, dtype="float32", seed=0):
    """A deterministic, non-separable binary problem.

    ``y = [x·w* + b* + ε > 0]`` with logistic noise ``ε`` (so ``P(y=1|x) =
    σ(x·w* + b*)`` exactly: the logistic model is well specified and the
    classes overlap) and standardised, correlated features.

    The result is cached per process (asv re-runs ``setup`` before every
    sample); do not modify the returned arrays.

    Returns
    -------
    X : ndarray of shape (n, d), ``dtype``, C-contiguous
    y : ndarray of shape (n,), int32 in {0, 1}
    """
    rng = np.random.default_rng(seed)
    X = _standard_features(rng, n, d, np.dtype(dtype))
    w = 2.0 * rng.standard_normal((1, d)) / np.sqrt(d)
    z = _scores(X, w, np.array([0.3]))[:, 0]
    y = (z + rng.logistic(size=n) > 0).astype(np.int32)
    return X, y


@functools.lru_cache(maxsize=2)
def make_multinomial(n, d, k, dtype="float32", seed=0):
    """A deterministic, non-separable ``k``-class problem.

    ``y = argmax_c (x·w*_c + b*_c + g_c)`` with Gumbel noise ``g``, i.e. a
    draw from the softmax model. Cached like :func:`make_binary`.

    Returns
    -------
    X : ndarray of shape (n, d), ``dtype``, C-contiguous
    y : ndarray of shape (n,), int32 in 0..k-1
    """
    rng = np.random.default_rng(seed)
    X = _standard_features(rng, n, d, np.dtype(dtype))
    W = 1.5 * rng.standard_normal((k, d)) / np.sqrt(d)
    b = 0.3 * rng.standard_normal(k)
    Z = _scores(X, W, b)
    Z += rng.gumbel(size=Z.shape)
    y = np.argmax(Z, axis=1).astype(np.int32)
    return X, y


def make_problem(kind, n, dtype="float32", seed=0):
    """``make_binary`` (kind "binary") or ``make_multinomial`` (kind "multinomial")."""
    if kind == "binary":
        return make_binary(n, N_FEATURES, dtype, seed)
    if kind == "multinomial":
        return make_multinomial(n, N_FEATURES, N_CLASSES, dtype, seed)
    raise ValueError(f"unknown problem kind {kind!r}")


# -- objective gap ----------------------------------------------------------------------

def relative_gap(value, reference):
    """``(value - reference) / |reference|``."""
    return (value - reference) / abs(reference)


# -- timing inside track_* ----------------------------------------------------------------

def median_time(func, repeat=5, warmup=1):
    """Median wall time of ``func()`` over ``repeat`` calls (after ``warmup`` calls)."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
