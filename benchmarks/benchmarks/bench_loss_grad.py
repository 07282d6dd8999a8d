"""``fastlr.loss_grad``: one pass over X, measured against the memory system.

Suites
------
LossGrad
    ``fastlr.loss_grad`` (binary model, log loss) for each backend, dtype and
    shape: the public call (validation included) and the backend primitive
    alone, their throughput in GB/s of X, and the public call's speed as a
    fraction of the machine's parallel read bandwidth (measured alongside,
    in the same process).
Baselines
    What the numbers above are judged by, per dtype and shape: a Numba
    parallel sum over X (``fastlr.kernels.cpu.read_sum``, which ``fastlr
    bench`` uses too) (the read-bandwidth ceiling for a one-pass kernel)
    and the plain NumPy two-pass gradient (``X @ w``, then ``X.T @ r``, in
    X's dtype) that fastlr's CPU backend must beat.

Both run on the same grid: ``n_samples`` in {1e4, 1e5, 1e6, 1e7} x
``n_features`` in {8, 64, 256, 1024} (:data:`common.GRID_N_SAMPLES`,
:data:`common.GRID_N_FEATURES`), per dtype. Grid points whose X would be
larger than 2 GiB (:data:`common.MAX_X_BYTES`) are skipped in ``setup``
(NotImplementedError, shown as "n/a"), so the whole grid runs on a 24 GB
machine; ``FASTLR_BENCH_SMALL=1`` leaves one 20 000 x 64 shape.
"""

import numpy as np
from scipy.special import expit

import fastlr
from fastlr.backends import get_backend
from fastlr.kernels.cpu import read_sum

from .common import (GRID_N_FEATURES, GRID_N_SAMPLES, SMALL, make_binary, median_time,
                     skip_if_too_large)
from fastlr._math import LOG

#: The shape grid. FASTLR_BENCH_SMALL=1: one tiny shape (X then sits in cache, so
#: GB/s figures are meaningless there: it only checks that the suite runs).
N_SAMPLES = GRID_N_SAMPLES
N_FEATURES = GRID_N_FEATURES
DTYPES = ["float32", "float64"]
BACKENDS = ["cpu", "numpy"]

#: Repeats of the timings taken inside ``track_*`` (their median is reported).
TRACK_REPEAT = 3 if SMALL else 7

def _numpy_two_pass(X, y_x, w_x):
    """Loss and gradient the textbook NumPy way, in X's dtype: two BLAS passes over X."""
    z = X @ w_x
    loss = np.sum(np.logaddexp(0, z) - y_x * z)
    r = expit(z)
    r -= y_x
    return loss, X.T @ r


def _coefficients(d):
    rng = np.random.default_rng(1)
    return rng.standard_normal(d) / np.sqrt(d), 0.1


def _check_cpu_against_numpy(X, y, coef, intercept):
    """The CPU backend agrees with the float64 NumPy reference on a slice of X."""
    m = min(4096, X.shape[0])
    got = fastlr.loss_grad(X[:m], y[:m], coef, intercept, backend="cpu")
    ref = fastlr.loss_grad(X[:m], y[:m], coef, intercept, backend="numpy")
    # float32 X: the CPU backend forms the dot products in float32.
    rtol, atol = (1e-5, 1e-6) if X.dtype == np.float32 else (1e-10, 1e-12)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# Parameter sets whose correctness check and warm-up already ran in this process
# (asv re-runs setup before every sample).
_READY = set()


class LossGrad:
    """``fastlr.loss_grad`` of a binary logistic model, per backend, dtype and (n, d)."""

    params = [BACKENDS, DTYPES, N_SAMPLES, N_FEATURES]
    param_names = ["backend", "dtype", "n_samples", "n_features"]
    timeout = 600

    def setup(self, backend, dtype, n, d):
        skip_if_too_large(n, d, dtype)
        self.X, self.y = make_binary(n, d, dtype)
        self.coef, self.intercept = _coefficients(d)
        self.backend = backend
        engine = get_backend(backend)
        self.engine = engine
        self.data = engine.put(self.X, self.y, None)
        self.W = self.coef.reshape(1, -1).copy()
        self.b = np.array([self.intercept])
        key = (backend, dtype, n, d)
        if key not in _READY:
            _check_cpu_against_numpy(self.X, self.y, self.coef, self.intercept)
            # JIT compile (or load from Numba's cache) and touch every page of X.
            read_sum(self.X)
            self._kernel()
            self._api()
            _READY.add(key)

    def _api(self):
        return fastlr.loss_grad(self.X, self.y, self.coef, self.intercept, backend=self.backend)

    def _kernel(self):
        return self.engine.loss_grad(self.data, self.W, self.b, LOG)

    def time_loss_grad(self, backend, dtype, n, d):
        """The public call: input validation, then one pass over X (cpu)."""
        self._api()

    def time_backend_loss_grad(self, backend, dtype, n, d):
        """The backend primitive alone (what the solvers call every iteration)."""
        self._kernel()

    def peakmem_loss_grad(self, backend, dtype, n, d):
        self._api()

    def track_gbps(self, backend, dtype, n, d):
        """X.nbytes / median time of the public call, in GB/s."""
        return self.X.nbytes / median_time(self._api, TRACK_REPEAT) / 1e9

    track_gbps.unit = "GB/s"

    def track_backend_gbps(self, backend, dtype, n, d):
        """X.nbytes / median time of the backend primitive, in GB/s."""
        return self.X.nbytes / median_time(self._kernel, TRACK_REPEAT) / 1e9

    track_backend_gbps.unit = "GB/s"

    def track_fraction_of_read_bandwidth(self, backend, dtype, n, d):
        """Time of a bare parallel read of X / time of the public call (1.0 = at the ceiling)."""
        read = median_time(lambda: read_sum(self.X), TRACK_REPEAT)
        return read / median_time(self._api, TRACK_REPEAT)

    track_fraction_of_read_bandwidth.unit = "fraction"


class Baselines:
    """Reference points for LossGrad on the same X: read bandwidth and NumPy two-pass."""

    params = [DTYPES, N_SAMPLES, N_FEATURES]
    param_names = ["dtype", "n_samples", "n_features"]
    timeout = 600

    def setup(self, dtype, n, d):
        skip_if_too_large(n, d, dtype)
        self.X, self.y = make_binary(n, d, dtype)
        coef, _ = _coefficients(d)
        self.w_x = coef.astype(dtype)
        self.y_x = self.y.astype(dtype)
        key = ("baselines", dtype, n, d)
        if key not in _READY:
            np.testing.assert_allclose(
                read_sum(self.X[:4096]), np.sum(self.X[:4096], dtype=np.float64),
                rtol=1e-9, atol=1e-6,
            )
            # The two-pass gradient is the same gradient fastlr computes.
            m = min(4096, n)
            _, grad = _numpy_two_pass(self.X[:m], self.y_x[:m], self.w_x)
            _, ref, _ = fastlr.loss_grad(self.X[:m], self.y[:m], coef, 0.0, backend="numpy")
            np.testing.assert_allclose(grad / m, ref, rtol=1e-3 if dtype == "float32" else 1e-9,
                                       atol=1e-5 if dtype == "float32" else 1e-12)
            read_sum(self.X)
            _READY.add(key)

    def time_read_bandwidth(self, dtype, n, d):
        """Numba parallel sum over X: the floor for any one-pass kernel."""
        read_sum(self.X)

    def time_numpy_two_pass(self, dtype, n, d):
        """``X @ w`` then ``X.T @ r`` in X's dtype (BLAS): the baseline to beat."""
        _numpy_two_pass(self.X, self.y_x, self.w_x)

    def track_read_gbps(self, dtype, n, d):
        """Parallel read bandwidth of this machine over X, in GB/s."""
        return self.X.nbytes / median_time(lambda: read_sum(self.X), TRACK_REPEAT) / 1e9

    track_read_gbps.unit = "GB/s"

    def track_numpy_two_pass_gbps(self, dtype, n, d):
        """X.nbytes / median time of the NumPy two-pass gradient, in GB/s."""
        return self.X.nbytes / median_time(
            lambda: _numpy_two_pass(self.X, self.y_x, self.w_x), TRACK_REPEAT) / 1e9

    track_numpy_two_pass_gbps.unit = "GB/s"
