"""Backends: where the data lives and which kernels compute on it.

A backend offers four primitives and nothing else; the trainer and the
estimator work only through them, so they never ask what hardware they run on.

``put(X, y, sample_weight) -> data``
    Place validated arrays where the kernels want them (once per fit).
``loss_grad(data, W, b, loss_id) -> (loss_sum, grad_sum)``
    Weighted *sums* over the data set (sums combine across partitions and
    devices; the trainer divides by ``data.weight_sum``).
``sgd_epoch(data, W, b, loss_id, schedule, batch_order, rows) -> (loss_sum, n_steps)``
    One epoch of mini-batch SGD, updating ``W`` and ``b`` in place.
``decision_function(X, W, b) -> scores``

A backend whose ``accepts_sparse`` is true also takes X as a scipy.sparse CSR
matrix (checked by :func:`fastlr._sparse.check_csr`) in ``put`` and
``decision_function``; :func:`for_input` refuses sparse X for the others.
and, optionally (the Newton-CG solver needs it; backends without it say so):

``hess_vec(data, W, b, loss_id, V, vb) -> hv_sum``
    Weighted *sum* over the data set of the log loss's Hessian at ``(W, b)``
    times the direction ``(V, vb)``, shape (k, d + 1), one pass over X.

Throughout, ``W`` has shape (k, d) and ``b`` shape (k,), float64: ``k == 1``
is the binary (sigmoid) model, ``k >= 2`` the multinomial (softmax) one.
``grad_sum`` has shape (k, d + 1): the coefficient columns, then the intercept.
"""

import types
from dataclasses import dataclass

import numpy as np
from numba import njit
import scipy.sparse as sp
from scipy.special import expit, logsumexp

from ._math import LOG
from ._penalty import L2_NUMPY
from .kernels import cpu, cpu_sparse

_EMPTY_F64 = np.empty(0, dtype=np.float64)
_EMPTY_I64 = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class HostData:
    """Validated training data in host memory.

    Attributes
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous; or a
        scipy.sparse CSR matrix of that shape (float32/float64 values,
        int32/int64 indices), for backends with ``accepts_sparse``
    y : ndarray of shape (n,), int32, labels 0..k-1 (0 or 1 when binary)
    sample_weight : ndarray of shape (n,) or (0,), float64; empty = unit weights
    weight_sum : float
        Sum of the sample weights (``n`` when unweighted).
    """

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray
    weight_sum: float

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


@dataclass(frozen=True)
class SGDSchedule:
    """What one SGD epoch needs besides the data and the coefficients.

    ``eta_t = eta0 / t**power_t`` at global step ``t = step0 + 1, 2, ...``;
    ``alpha`` is the L2 strength of the mean objective.
    """

    alpha: float
    fit_intercept: bool
    eta0: float
    power_t: float
    step0: int
    batch_size: int


def _serial(kernel):
    """The same Numba kernel compiled without ``parallel``: ``prange`` runs as ``range``.

    Same chunking and summation order, so the result is bitwise that of the
    parallel kernel; but no parallel region is entered, which for a small
    problem costs more than the work (waking a worker that must wait for a busy
    core costs a scheduler time slice). A copy of the Python function under its
    own name, so that Numba's on-disk cache keeps the two compilations apart.
    """
    f = kernel.py_func
    copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial",
                              f.__defaults__, f.__closure__)
    copy.__qualname__ = f.__qualname__ + "_serial"
    copy.__doc__ = f.__doc__
    options = {key: value for key, value in kernel.targetoptions.items() if key not in ("parallel", "nopython")}
    return njit(**options)(copy)


_binary_loss_grad_serial = _serial(cpu.binary_loss_grad)
_multinomial_loss_grad_serial = _serial(cpu.multinomial_loss_grad)
_decision_function_serial = _serial(cpu.decision_function)

#: Below this many multiply-adds per pass (rows × features × outputs) the CPU
#: kernels run serially. Measured with benchmarks/parallel_threshold.py on the
#: 2-core AMD EPYC (benchmarks/results/parallel-threshold-2core-*.json): idle,
#: the serial kernel won at every size up to 131k (1.1-2.2x), parallel first won
#: at 164k (binary, d = 20: 1.3x); with another process keeping one core busy,
#: parallel never won (0.93-0.98 of serial's speed from 164k up).
PARALLEL_MIN_WORK = 150_000


def _parallel(X, k):
    return X.shape[0] * X.shape[1] * k >= PARALLEL_MIN_WORK


def _host_data(X, y, sample_weight):
    if sample_weight is None:
        return HostData(X, y, _EMPTY_F64, float(X.shape[0]))
    return HostData(X, y, sample_weight, float(sample_weight.sum()))


class CPUBackend:
    """Numba kernels on the host CPU: one parallel pass over X per gradient.

    Dense X runs :mod:`fastlr.kernels.cpu`, CSR X :mod:`fastlr.kernels.cpu_sparse`.
    """

    name = "cpu"
    accepts_sparse = True

    def put(self, X, y, sample_weight=None):
        return _host_data(X, y, sample_weight)

    def loss_grad(self, data, W, b, loss_id):
        if sp.issparse(data.X):
            return self._sparse_loss_grad(data, W, b, loss_id)
        if not _parallel(data.X, W.shape[0]):
            return self._loss_grad(data, W, b, loss_id, _binary_loss_grad_serial,
                                   _multinomial_loss_grad_serial)
        with cpu.parallel_guard():
            return self._loss_grad(data, W, b, loss_id, cpu.binary_loss_grad,
                                   cpu.multinomial_loss_grad)

    @staticmethod
    def _loss_grad(data, W, b, loss_id, binary, multinomial):
        if W.shape[0] == 1:
            out = binary(data.X, data.y, data.sample_weight, W[0], b[0], loss_id)
            return out[-1], out[:-1].reshape(1, -1)
        out = multinomial(data.X, data.y, data.sample_weight, W, b, loss_id)
        return out[0, -1], out[:, :-1]

    @staticmethod
    def _sparse_loss_grad(data, W, b, loss_id):
        X = data.X
        csr = (X.data, X.indices, X.indptr, X.shape[1], data.y, data.sample_weight)
        with cpu.parallel_guard():
            if W.shape[0] == 1:
                out = cpu_sparse.binary_loss_grad(*csr, W[0], b[0], loss_id)
                return out[-1], out[:-1].reshape(1, -1)
            out = cpu_sparse.multinomial_loss_grad(*csr, W, b, loss_id)
        return out[0, -1], out[:, :-1]

    def sgd_epoch(self, data, W, b, loss_id, schedule, batch_order, rows=None):
        if sp.issparse(data.X):
            X = data.X
            return cpu_sparse.sgd_epoch(
                X.data, X.indices, X.indptr, data.y, data.sample_weight,
                _EMPTY_I64 if rows is None else rows,
                batch_order, schedule.batch_size, W, b, loss_id,
                schedule.alpha, schedule.fit_intercept, schedule.eta0, schedule.power_t,
                schedule.step0, data.weight_sum / data.n_samples,
            )
        return cpu.sgd_epoch(
            data.X, data.y, data.sample_weight,
            _EMPTY_I64 if rows is None else rows,
            batch_order, schedule.batch_size, W, b, loss_id,
            schedule.alpha, schedule.fit_intercept, schedule.eta0, schedule.power_t,
            schedule.step0, data.weight_sum / data.n_samples,
        )

    def decision_function(self, X, W, b):
        if sp.issparse(X):
            with cpu.parallel_guard():
                return cpu_sparse.decision_function(X.data, X.indices, X.indptr, W, b)
        if not _parallel(X, W.shape[0]):
            return _decision_function_serial(X, W, b)
        with cpu.parallel_guard():
            return cpu.decision_function(X, W, b)

    def hess_vec(self, data, W, b, loss_id, V, vb):
        if sp.issparse(data.X):
            # No one-pass CSR Hessian kernel yet: scipy's sparse products (two passes
            # over the non-zeros, as the numpy reference), never densified.
            return NumpyBackend.hess_vec(NumpyBackend(), data, W, b, loss_id, V, vb)
        _check_hess_loss(loss_id)
        with cpu.parallel_guard():
            return cpu.log_loss_hess_vec(data.X, data.sample_weight, W, b, V, vb)


class NumpyBackend:
    """Vectorised NumPy in float64: the reference every other backend is tested against.

    It computes ``X @ W.T`` and then ``dz.T @ X`` (two passes over X, and a
    float64 copy of float32 X): clear rather than fast. A CSR X goes through
    scipy's sparse products (``X @ W.T``, ``X.T @ dz``), never densified.
    """

    name = "numpy"
    accepts_sparse = True

    @staticmethod
    def _float64(X):
        return X.astype(np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)

    def put(self, X, y, sample_weight=None):
        return _host_data(X, y, sample_weight)

    @staticmethod
    def _scores(X64, W, b):
        """Scores (n, k) for binary models; shifted scores ``z_c - max_c z`` for softmax ones.

        Finite X and W never give NaN: rows whose scores overflowed are formed
        again with X's row and W scaled by powers of two (each product at most
        1), and the result scaled back with ``ldexp``, which rounds to ±inf only
        when the true value is beyond the float64 range (as in the CPU kernels).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            Z = np.asarray(X64 @ W.T) + b
        bad = ~np.all(np.isfinite(Z), axis=1)
        if W.shape[0] > 1:
            with np.errstate(invalid="ignore"):  # inf - inf in the rows fixed below
                Z = Z - Z.max(axis=1, keepdims=True)
        if np.any(bad):
            ew = np.frexp(np.max(np.abs(W)))[1]
            ex = np.frexp(np.max(np.abs(X64[bad]), axis=1))[1]
            scaled = (np.ldexp(X64[bad], -ex[:, None]) @ np.ldexp(W, -ew).T
                      + np.ldexp(b[None, :], -(ex + ew)[:, None]))
            if W.shape[0] > 1:
                scaled -= scaled.max(axis=1, keepdims=True)
            with np.errstate(over="ignore"):
                Z[bad] = np.ldexp(scaled, (ex + ew)[:, None])
        return Z

    @staticmethod
    def _loss_dz(Z, y, loss_id):
        """Per-sample losses (n,) and d loss / d z (n, k) for scores Z (n, k) from :meth:`_scores`."""
        if Z.shape[1] == 1:
            z = Z[:, 0]
            p = expit(z)
            if loss_id == LOG:
                # log(1 + e^z) - y z = log(1 + e^{(1 - 2y) z}): exact for z = ±inf, never NaN
                return np.logaddexp(0.0, (1.0 - 2.0 * y) * z), (p - y)[:, None]
            r = p - y
            return 0.5 * r * r, (r * p * (1.0 - p))[:, None]
        lse = logsumexp(Z, axis=1)  # Z is shifted: max 0, entries ≤ 0, possibly -inf
        P = np.exp(Z - lse[:, None])
        onehot = np.zeros_like(P)
        onehot[np.arange(len(y)), y] = 1.0
        if loss_id == LOG:
            return lse - Z[np.arange(len(y)), y], P - onehot
        R = P - onehot
        inner = np.sum(R * P, axis=1)
        return 0.5 * np.sum(R * R, axis=1), P * (R - inner[:, None])

    def _sums(self, X, y, sample_weight, W, b, loss_id):
        X64 = self._float64(X)
        loss, D = self._loss_dz(self._scores(X64, W, b), y, loss_id)
        if sample_weight.shape[0]:
            loss = loss * sample_weight
            D = D * sample_weight[:, None]
        grad = np.empty((W.shape[0], W.shape[1] + 1))
        grad[:, :-1] = np.asarray(X64.T @ D).T
        grad[:, -1] = D.sum(axis=0)
        return loss.sum(), grad

    def loss_grad(self, data, W, b, loss_id):
        return self._sums(data.X, data.y, data.sample_weight, W, b, loss_id)

    def sgd_epoch(self, data, W, b, loss_id, schedule, batch_order, rows=None):
        n = data.n_samples
        mean_weight = data.weight_sum / n
        positions = np.arange(n) if rows is None else rows
        loss_total = 0.0
        for step, batch in enumerate(batch_order):
            idx = positions[batch * schedule.batch_size:(batch + 1) * schedule.batch_size]
            sw = data.sample_weight[idx] if data.sample_weight.shape[0] else _EMPTY_F64
            loss_sum, grad = self._sums(data.X[idx], data.y[idx], sw, W, b, loss_id)
            eta = schedule.eta0 / (schedule.step0 + step + 1.0) ** schedule.power_t
            scale = 1.0 / (len(idx) * mean_weight)
            W_new = L2_NUMPY.sgd_update(W, scale * grad[:, :-1], eta, schedule.alpha)
            b_new = b - eta * scale * grad[:, -1] if schedule.fit_intercept else b
            if not (np.isfinite(loss_sum) and np.isfinite(W_new).all() and np.isfinite(b_new).all()):
                return loss_total, step
            W[:] = W_new
            b[:] = b_new
            loss_total += loss_sum
        return loss_total, len(batch_order)

    def decision_function(self, X, W, b):
        return np.asarray(self._float64(X) @ W.T) + b

    def hess_vec(self, data, W, b, loss_id, V, vb):
        _check_hess_loss(loss_id)
        X64 = self._float64(data.X)
        Z = np.asarray(X64 @ W.T) + b
        U = np.asarray(X64 @ V.T) + vb
        if W.shape[0] == 1:
            p = expit(Z)
            D = p * (1.0 - p) * U
        else:
            P = np.exp(Z - logsumexp(Z, axis=1)[:, None])
            D = P * (U - np.sum(P * U, axis=1)[:, None])
        if data.sample_weight.shape[0]:
            D = D * data.sample_weight[:, None]
        out = np.empty((W.shape[0], W.shape[1] + 1))
        out[:, :-1] = (X64.T @ D).T
        out[:, -1] = D.sum(axis=0)
        return out


def _check_hess_loss(loss_id):
    if loss_id != LOG:
        raise ValueError("Hessian-vector products (solver='newton-cg') are implemented for "
                         "loss='log_loss' only; the loss='prob_squared' is not convex: use solver='lbfgs'")


def _cuda_backend():
    from .backend_cuda import CUDABackend
    return CUDABackend()


_BACKENDS = {"cpu": CPUBackend, "cuda": _cuda_backend, "numpy": NumpyBackend}

#: Names accepted by ``backend=`` ("auto" picks the fastest usable one; "dask":
#: fastlr.dask_backend, for dask collections, needs the optional fastlr[dask]).
BACKEND_NAMES = ("auto",) + tuple(_BACKENDS) + ("dask",)

_auto_choice = None


def auto_backend():
    """``(name, reason)``: the backend ``"auto"`` stands for here, and why.

    The GPU when numba-cuda finds a usable device, the CPU otherwise. Decided
    once per process (asking the driver costs a few hundred milliseconds).
    """
    global _auto_choice
    if _auto_choice is None:
        from .backend_cuda import usable
        ok, detail = usable()
        _auto_choice = ("cuda", f"GPU found: {detail}") if ok else ("cpu", f"no usable GPU: {detail}")
    return _auto_choice


def for_input(backend, X, requested="auto"):
    """The backend to use for ``X``: ``backend``, or the CPU for sparse X under "auto".

    The one place where the ``accepts_sparse`` capability flag is checked
    (``fit``, ``partial_fit``, :func:`fastlr.loss_grad`).

    Raises
    ------
    ValueError
        If X is scipy.sparse and ``backend`` (asked for by name) cannot take it.
    """
    if not sp.issparse(X) or getattr(backend, "accepts_sparse", False):
        return backend
    if requested == "auto":
        return CPUBackend()
    raise ValueError(
        f"the {backend.name!r} backend does not accept sparse X (scipy.sparse); use "
        "backend='cpu' or 'numpy', or pass a dense array")


def get_backend(name):
    """Return the backend called ``name`` ("auto", "cpu", "cuda", "numpy" or "dask").

    Raises
    ------
    ValueError
        If ``name`` is not a known backend.
    ImportError
        For "cuda" without the numba-cuda package.
    """
    if name == "auto":
        name = auto_backend()[0]
    if name == "dask":  # optional; its module imports dask only when it trains
        from .dask_backend import DaskBackend
        return DaskBackend()
    try:
        factory = _BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown backend {name!r}; expected one of {', '.join(map(repr, BACKEND_NAMES))}"
        ) from None
    return factory()
