"""GPU: fastlr's CUDA backend, and PyTorch on the same device as the peer.

Every suite here is skipped ("n/a": NotImplementedError in ``setup``) unless
both hold: Numba sees a CUDA GPU (``numba.cuda.is_available()``) and fastlr
has a ``"cuda"`` backend (``fastlr.backends.get_backend("cuda")``; until it
exists that raises ValueError, so today the whole module is skipped
everywhere). The module imports on any machine: nothing GPU-related is
imported at module level.

Data are made on the host, moved to the device in ``setup`` (untimed, as are
the correctness checks and the warm-up: JIT compile, cuBLAS handles, the
caching allocator); a timed call starts with X already on the device. GPU
work is asynchronous, so every ``time_*`` here ends by synchronising the
device (``numba.cuda.synchronize()`` for fastlr's kernels,
``torch.cuda.synchronize()`` for PyTorch's) and the time covers the work
itself, not only its launch.

Suites
------
GPULossGrad (dtype x n_samples x n_features)
    fastlr's CUDA backend ``loss_grad`` (binary, log loss) on the device
    copy of X: ``time_backend_loss_grad``, ``track_backend_gbps``
    (``X.nbytes`` / median time) and ``time_put`` (host-to-device transfer
    of X and y, what one fit pays once).
TorchCUDA (dtype x n_samples x n_features)
    The peer: the textbook two-pass gradient in PyTorch on the device,
    ``X @ w``, then ``X.T @ r`` in X's dtype (``time_two_pass``,
    ``track_two_pass_gbps``), and the device's read bandwidth over X
    (``X.sum()``: ``time_read_bandwidth``, ``track_read_gbps``), the floor
    of any one-pass kernel.
GPUFit (n_samples x solver)
    ``LogisticRegression(backend="cuda").fit`` on the 1M x 64 float32
    binary problem (host X; the fit moves it to the device), with its
    objective gap to fastlr's CPU fit checked in ``setup``.

The shape grid and its 2 GiB cap on X are those of ``bench_loss_grad``
(:data:`common.GRID_N_SAMPLES`, :data:`common.GRID_N_FEATURES`,
:func:`common.skip_if_too_large`).
"""

import numpy as np

from .common import (GRID_N_FEATURES, GRID_N_SAMPLES, N_BINARY, N_FEATURES, SMALL, make_binary,
                     median_time, objective, relative_gap, skip_if_too_large)
from fastlr._math import LOG

DTYPES = ["float32", "float64"]
TRACK_REPEAT = 3 if SMALL else 7

_READY = set()


def _cuda_backend():
    """fastlr's CUDA backend; NotImplementedError (asv: skip) without a GPU or the backend."""
    try:
        from numba import cuda
    except ImportError as exc:  # a Numba built without its CUDA target
        raise NotImplementedError(f"numba.cuda unavailable: {exc}") from None
    if not cuda.is_available():
        raise NotImplementedError("no CUDA GPU: numba.cuda.is_available() is False")
    from fastlr.backends import get_backend

    try:
        return get_backend("cuda")
    except ValueError as exc:
        raise NotImplementedError(f"fastlr has no cuda backend: {exc}") from None


def _numba_sync():
    from numba import cuda

    cuda.synchronize()


def _torch_cuda():
    """The ``torch`` module with a usable CUDA device; NotImplementedError (skip) otherwise."""
    try:
        import torch
    except ImportError as exc:
        raise NotImplementedError(f"PyTorch is not installed: {exc}") from None
    if not torch.cuda.is_available():
        raise NotImplementedError("PyTorch sees no CUDA device (CPU-only build?)")
    return torch


def _coefficients(d):
    rng = np.random.default_rng(1)
    return rng.standard_normal(d) / np.sqrt(d), 0.1


def _numpy_reference(X, y, coef, intercept):
    """fastlr's float64 NumPy backend: (loss_sum, grad_sum (1, d + 1)) on host arrays."""
    from fastlr.backends import NumpyBackend

    ref = NumpyBackend()
    return ref.loss_grad(ref.put(X, y, None), coef.reshape(1, -1), np.array([intercept]), LOG)


def _tolerances(dtype):
    return (1e-5, 1e-6) if dtype == "float32" else (1e-10, 1e-12)


class GPULossGrad:
    """fastlr's CUDA ``loss_grad`` on X already on the device, per dtype and (n, d)."""

    params = [DTYPES, GRID_N_SAMPLES, GRID_N_FEATURES]
    param_names = ["dtype", "n_samples", "n_features"]
    timeout = 600

    def setup(self, dtype, n, d):
        self.engine = _cuda_backend()
        skip_if_too_large(n, d, dtype)
        self.X, self.y = make_binary(n, d, dtype)
        coef, intercept = _coefficients(d)
        self.W = coef.reshape(1, -1).copy()
        self.b = np.array([intercept])
        self.data = self.engine.put(self.X, self.y, None)  # host -> device, untimed
        _numba_sync()
        key = ("loss_grad", dtype, n, d)
        if key not in _READY:
            # Correct before timed: the device sums match the float64 NumPy reference.
            m = min(4096, n)
            got = self.engine.loss_grad(self.engine.put(self.X[:m], self.y[:m], None),
                                        self.W, self.b, LOG)
            ref = _numpy_reference(self.X[:m], self.y[:m], coef, intercept)
            rtol, atol = _tolerances(dtype)
            for a, r in zip(got, ref):
                np.testing.assert_allclose(np.asarray(a), np.asarray(r), rtol=rtol,
                                           atol=atol * m)
            self._loss_grad()  # JIT compile (or cache load) at this shape and dtype
            _READY.add(key)

    def _loss_grad(self):
        out = self.engine.loss_grad(self.data, self.W, self.b, LOG)
        _numba_sync()
        return out

    def time_backend_loss_grad(self, dtype, n, d):
        """One gradient over X on the device (ends with ``numba.cuda.synchronize()``)."""
        self.engine.loss_grad(self.data, self.W, self.b, LOG)
        _numba_sync()

    def time_put(self, dtype, n, d):
        """Host-to-device copy of X and y (``backend.put``), once per fit."""
        self.engine.put(self.X, self.y, None)
        _numba_sync()

    def track_backend_gbps(self, dtype, n, d):
        """X.nbytes / median time of the device gradient, in GB/s."""
        return self.X.nbytes / median_time(self._loss_grad, TRACK_REPEAT) / 1e9

    track_backend_gbps.unit = "GB/s"


class TorchCUDA:
    """Peer: PyTorch's two-pass gradient and a read of X, on the same GPU and data."""

    params = [DTYPES, GRID_N_SAMPLES, GRID_N_FEATURES]
    param_names = ["dtype", "n_samples", "n_features"]
    timeout = 600

    def setup(self, dtype, n, d):
        _cuda_backend()  # the GPU suites run only where fastlr's CUDA backend does
        torch = _torch_cuda()
        skip_if_too_large(n, d, dtype)
        self.torch = torch
        X, y = make_binary(n, d, dtype)
        self.nbytes = X.nbytes
        coef, intercept = _coefficients(d)
        device = torch.device("cuda")
        # Host -> device in setup: the timed calls start with everything on the GPU.
        self.X = torch.from_numpy(X).to(device)
        self.y = torch.from_numpy(y.astype(dtype)).to(device)
        self.w = torch.from_numpy(coef.astype(dtype)).to(device)
        self.b = float(intercept)
        torch.cuda.synchronize()
        key = ("torch", dtype, n, d)
        if key not in _READY:
            m = min(4096, n)
            loss, grad_w, grad_b = self._two_pass(self.X[:m], self.y[:m])
            ref_loss, ref_grad = _numpy_reference(X[:m], y[:m], coef, intercept)
            rtol = 1e-4 if dtype == "float32" else 1e-10
            np.testing.assert_allclose(float(loss), ref_loss, rtol=rtol)
            got = np.append(grad_w.double().cpu().numpy(), float(grad_b))
            np.testing.assert_allclose(got, np.asarray(ref_grad).ravel(), rtol=rtol,
                                       atol=rtol * m)
            np.testing.assert_allclose(float(self.X[:m].double().sum()),
                                       np.sum(X[:m], dtype=np.float64), rtol=1e-9, atol=1e-6)
            self._time_two_pass()  # cuBLAS handles, allocator warm-up
            self._time_read()
            _READY.add(key)

    def _two_pass(self, X, y):
        """Loss sum and gradient sums, the textbook way: ``X @ w``, then ``X.T @ r``."""
        torch = self.torch
        z = X @ self.w + self.b
        loss = torch.sum(torch.nn.functional.softplus(z) - y * z)
        r = torch.sigmoid(z) - y
        return loss, X.T @ r, torch.sum(r)

    def _time_two_pass(self):
        self._two_pass(self.X, self.y)
        self.torch.cuda.synchronize()

    def _time_read(self):
        self.X.sum()
        self.torch.cuda.synchronize()

    def time_two_pass(self, dtype, n, d):
        """``X @ w``, then ``X.T @ r`` on the device (ends with ``torch.cuda.synchronize()``)."""
        self._two_pass(self.X, self.y)
        self.torch.cuda.synchronize()

    def time_read_bandwidth(self, dtype, n, d):
        """``X.sum()`` on the device: one read of X, the floor of a one-pass kernel."""
        self.X.sum()
        self.torch.cuda.synchronize()

    def track_two_pass_gbps(self, dtype, n, d):
        """X.nbytes / median time of the two-pass gradient, in GB/s."""
        return self.nbytes / median_time(self._time_two_pass, TRACK_REPEAT) / 1e9

    track_two_pass_gbps.unit = "GB/s"

    def track_read_gbps(self, dtype, n, d):
        """X.nbytes / median time of ``X.sum()``: the device's read bandwidth, in GB/s."""
        return self.nbytes / median_time(self._time_read, TRACK_REPEAT) / 1e9

    track_read_gbps.unit = "GB/s"


class GPUFit:
    """``LogisticRegression(backend="cuda").fit`` on the binary problem (host float32 X)."""

    params = [[N_BINARY], ["lbfgs", "sgd"]]
    param_names = ["n_samples", "solver"]
    timeout = 900

    def setup(self, n, solver):
        _cuda_backend()
        import fastlr

        self.fastlr = fastlr
        self.solver = solver
        self.X, self.y = make_binary(n, N_FEATURES, "float32")
        key = ("fit", n, solver)
        if key not in _READY:
            # Same objective as the CPU backend's fit, to the solvers' tolerance; this
            # also compiles (or loads) the CUDA kernels.
            m = min(20_000, n)
            gpu = self._fit(self.X[:m], self.y[:m])
            cpu = self._fit(self.X[:m], self.y[:m], backend="cpu")
            assert gpu.backend_ == "cuda", gpu.backend_
            F_gpu = objective(self.X[:m], self.y[:m], gpu.coef_, gpu.intercept_)
            F_cpu = objective(self.X[:m], self.y[:m], cpu.coef_, cpu.intercept_)
            # lbfgs: both stop at the optimum; sgd: same steps, different rounding.
            assert abs(relative_gap(F_gpu, F_cpu)) < (1e-5 if self.solver == "lbfgs" else 1e-3), \
                (F_gpu, F_cpu)
            _READY.add(key)

    def _fit(self, X, y, backend="cuda"):
        import warnings

        options = {"solver": self.solver}
        if self.solver == "sgd":
            options["random_state"] = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.fastlr.LogisticRegression(backend=backend, **options).fit(X, y)

    def time_fit(self, n, solver):
        """The whole fit, host X in, host ``coef_`` out (ends with a device synchronise)."""
        self._fit(self.X, self.y)
        _numba_sync()
