"""The ``cpu`` backend: Numba kernels on the host CPU, one parallel pass over X per gradient.

Holds: :class:`CPUBackend`, the serial compilations of the dense kernels and
:data:`PARALLEL_MIN_WORK` (below it the kernels run serially).
May import: :mod:`fastlr.kernels` (cpu, cpu_hessian, cpu_sparse), :mod:`fastlr.backends._protocol`,
:mod:`fastlr.backends._hessian_numpy`.
"""

import types

import numpy as np
import scipy.sparse as sp
from numba import njit

from ..kernels import cpu, cpu_hessian, cpu_sparse
from ._hessian_numpy import hessian_stride, log_loss_hessian
from ._protocol import EMPTY_I64 as _EMPTY_I64
from ._protocol import check_hess_loss as _check_hess_loss
from ._protocol import host_data as _host_data


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
    # `cache` is not among a dispatcher's targetoptions: without it here the copies were compiled
    # anew in every process (a first small fit took 4 s; found by the new-user check)
    return njit(cache=True, **options)(copy)


_binary_loss_grad_serial = _serial(cpu.binary_loss_grad)
_multinomial_loss_grad_serial = _serial(cpu.multinomial_loss_grad)
_multinomial_loss_grad_blas_serial = _serial(cpu.multinomial_loss_grad_blas)
_decision_function_serial = _serial(cpu.decision_function)
_predict_labels_serial = _serial(cpu.predict_labels)
_column_moments_serial = _serial(cpu.column_moments)

#: Below this many multiply-adds per pass (rows × features × outputs) the CPU
#: kernels run serially. Measured with benchmarks/parallel_threshold.py on the
#: 2-core AMD EPYC (benchmarks/results/parallel-threshold-2core-*.json): idle,
#: the serial kernel won at every size up to 131k (1.1-2.2x), parallel first won
#: at 164k (binary, d = 20: 1.3x); with another process keeping one core busy,
#: parallel never won (0.93-0.98 of serial's speed from 164k up).
PARALLEL_MIN_WORK = 150_000


def softmax_blas_pays(features):
    """Whether the softmax gradient should take BLAS block products on a CPU with ``features``.

    The two dense softmax kernels compute the same gradient (to rounding):
    :func:`~fastlr.kernels.cpu.multinomial_loss_grad` with register tiles (2 x 4 for the
    scores, 4 x 4 for the gradient) that LLVM vectorises, and
    :func:`~fastlr.kernels.cpu.multinomial_loss_grad_blas` with two BLAS products per block of
    rows. Which is faster depends on the CPU. Measured side by side in one
    process, with the BLAS pools at one thread as in a fit (``benchmarks/softmax_kernels.py``):

    * Intel Xeon (Emerald Rapids, AVX-512): BLAS 23% faster at d = 784, k = 10 and 16% at
      d = 64, k = 10. OpenBLAS runs 512-bit kernels there, LLVM's code for the tiles 256-bit.
    * AMD EPYC (Zen 3, AVX2): the tiles faster at every shape tried, by 1.17-1.60x (60k x 784,
      k = 10: 43.8 against 69.9 ms; 1M x 64, k = 10: 143 against 167 ms).

    So: the tiles where Numba compiles AVX2 with FMA and no AVX-512, BLAS elsewhere (AVX-512,
    and targets without AVX2, where OpenBLAS's own run-time dispatch does better than the
    tiles' SSE2 code). The choice is fixed per machine, so results stay bitwise reproducible
    run to run there.

    Parameters
    ----------
    features : set of str
        LLVM feature names, e.g. ``{"avx2", "fma", "avx512f"}``
        (:func:`numba_target_features`).

    Returns
    -------
    bool
    """
    return not ({"avx2", "fma"} <= features and "avx512f" not in features)


def numba_target_features():
    """The CPU features Numba compiles for (a set of LLVM feature names).

    ``NUMBA_CPU_FEATURES`` when set (its ``+feature`` entries); an empty set when
    ``NUMBA_CPU_NAME`` names a CPU other than the host (e.g. ``generic``: no feature is
    assumed); otherwise the host's, from LLVM (``llvmlite.binding.get_host_cpu_features``).
    """
    from numba.core import config

    if config.CPU_FEATURES:
        return {f[1:] for f in config.CPU_FEATURES.split(",") if f.startswith("+")}
    if config.CPU_NAME not in (None, "", "host"):
        return set()
    from llvmlite import binding

    try:
        return {name for name, on in binding.get_host_cpu_features().items() if on}
    except RuntimeError:  # LLVM could not read them on this host
        return set()


#: The cpu backend's softmax gradient for k >= ``SOFTMAX_BLAS_MIN_CLASSES``: BLAS block
#: products (True) or register tiles (False) on this machine (:func:`softmax_blas_pays`).
SOFTMAX_BLAS = softmax_blas_pays(numba_target_features())


def softmax_uses_blas(k):
    """Whether the cpu backend's dense softmax gradient for ``k`` classes takes BLAS block
    products (:data:`SOFTMAX_BLAS` and ``k >= SOFTMAX_BLAS_MIN_CLASSES``) or the register tiles."""
    return SOFTMAX_BLAS and k >= cpu.SOFTMAX_BLAS_MIN_CLASSES


def _read_only(X):
    """Dense ``X`` as a read-only array: itself if it is one, else a read-only view (no copy).

    Numba compiles a kernel once per argument type, and a read-only array (the memory map
    ``fastlr train`` reads a .npy file through) is another type than a writable one: the
    command line and the estimator compiled every kernel twice, 7-35 s each time in a new
    environment. The kernels never write X, so all dense X reaches them read-only.
    Measured on the Zen 3 (2 threads, 15 interleaved calls): the same results bit for bit
    and the same speed (read-only / writable 0.99-1.01 at 1M x 64 and 60k x 784 x 10).
    """
    if sp.issparse(X) or not X.flags.writeable:
        return X
    view = X.view()
    view.flags.writeable = False
    return view


def _parallel(X, k):
    return X.shape[0] * X.shape[1] * k >= PARALLEL_MIN_WORK


class CPUBackend:
    """Numba kernels on the host CPU: one parallel pass over X per gradient.

    Dense X runs :mod:`fastlr.kernels.cpu`, CSR X :mod:`fastlr.kernels.cpu_sparse`.
    """

    name = "cpu"
    accepts_sparse = True
    accepts_device_arrays = False
    has_hess_vec = True
    distributed = False

    def put(self, X, y, sample_weight=None):
        return _host_data(_read_only(X), y, sample_weight)

    def loss_grad(self, data, W, b, loss_id):
        if sp.issparse(data.X):
            return self._sparse_loss_grad(data, W, b, loss_id)
        blas = softmax_uses_blas(W.shape[0])
        if not _parallel(data.X, W.shape[0]):
            return self._loss_grad(data, W, b, loss_id, _binary_loss_grad_serial,
                                   _multinomial_loss_grad_blas_serial if blas else _multinomial_loss_grad_serial)
        with cpu.parallel_guard():
            return self._loss_grad(data, W, b, loss_id, cpu.binary_loss_grad,
                                   cpu.multinomial_loss_grad_blas if blas else cpu.multinomial_loss_grad)

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
        X = _read_only(X)
        if not _parallel(X, W.shape[0]):
            return _decision_function_serial(X, W, b)
        with cpu.parallel_guard():
            return cpu.decision_function(X, W, b)

    def predict_labels(self, X, W, b, labels):
        """``(labels[code] (n,), all scores finite)`` for dense X in one pass; None for sparse X."""
        if sp.issparse(X):
            return None
        X = _read_only(X)
        if not _parallel(X, W.shape[0]):
            return _predict_labels_serial(X, W, b, labels)
        with cpu.parallel_guard():
            return cpu.predict_labels(X, W, b, labels)

    def hess_vec(self, data, W, b, loss_id, V, vb):
        _check_hess_loss(loss_id)
        if sp.issparse(data.X):
            X = data.X
            with cpu.parallel_guard():
                return cpu_sparse.log_loss_hess_vec(X.data, X.indices, X.indptr, X.shape[1],
                                                    data.sample_weight, W, b, V, vb)
        with cpu.parallel_guard():
            return cpu.log_loss_hess_vec(data.X, data.sample_weight, W, b, V, vb)

    def loss_grad_hess(self, data, W, b, loss_id, hessian_rows=None):
        """Loss, gradient, and the Hessian over a row sub-sample, in one pass over X.

        Dense X: :func:`fastlr.kernels.cpu_hessian.binary_loss_grad_hess` or
        ``multinomial_loss_grad_hess``, every
        ``stride``-th chunk in the Hessian
        (:func:`fastlr.backends._hessian_numpy.hessian_stride`). CSR X, and
        dense X below :data:`PARALLEL_MIN_WORK`: the gradient kernel, then
        NumPy's / scipy's products for the Hessian (float64).
        """
        _check_hess_loss(loss_id)
        X = data.X
        stride = hessian_stride(data.n_samples, hessian_rows, cpu.CHUNK_ROWS)
        if sp.issparse(X) or not _parallel(X, W.shape[0]):
            # small dense X (below PARALLEL_MIN_WORK) too: the serial gradient kernel and a
            # float64 NumPy Hessian (microseconds at breast-cancer size) instead of a serial
            # compilation of the fused kernel, which took a new user's first fit from 11 to 24 s
            loss, grad = self.loss_grad(data, W, b, loss_id)
            if not (np.isfinite(loss) and np.isfinite(grad).all()):
                # NaN/inf in X (or an overflow): the caller raises on the non-finite gradient;
                # NumPy's products over X would only warn ("invalid value encountered in matmul")
                k, d = W.shape
                return loss, grad, np.full((k, d + 1, k, d + 1), np.nan), float("nan")
            hess, hess_weight = log_loss_hessian(X, data.sample_weight, W, b, stride, cpu.CHUNK_ROWS)
            return loss, grad, hess, hess_weight
        binary = W.shape[0] == 1
        with cpu.parallel_guard():
            kernel = cpu_hessian.binary_loss_grad_hess if binary else cpu_hessian.multinomial_loss_grad_hess
            return kernel(X, data.y, data.sample_weight, W, b, stride)

    def column_moments(self, data, sample_rows=None):
        """Weighted column means and variances; dense X over every ``stride``-th chunk of rows
        (:func:`fastlr.backends._hessian_numpy.hessian_stride` for ``sample_rows``), CSR X over all."""
        X = data.X
        if sp.issparse(X):
            with cpu.parallel_guard():
                return cpu_sparse.column_moments(X.data, X.indices, X.indptr, X.shape[1],
                                                 data.sample_weight)
        stride = hessian_stride(data.n_samples, sample_rows, cpu.CHUNK_ROWS)
        if not _parallel(X, 1):
            return _column_moments_serial(X, data.sample_weight, stride)
        with cpu.parallel_guard():
            return cpu.column_moments(X, data.sample_weight, stride)

    def hess_diag(self, data, W, b, loss_id):
        """The Hessian's diagonal for sparse X (Jacobi preconditioner); None for dense X.

        Sparse columns' frequencies span orders of magnitude, and so does the
        diagonal: Newton-CG on the CTR set of ``fastlr bench --sparse`` (200k
        rows) took 7.3 s with it against 19.7 s without. On dense problems it
        measured no gain (raw breast cancer 273 against 188 Hessian products,
        Fashion-MNIST 23.7 against 18.3 s), so dense X gets plain CG.
        """
        _check_hess_loss(loss_id)
        X = data.X
        if not sp.issparse(X):
            return None
        with cpu.parallel_guard():
            return cpu_sparse.log_loss_hess_diag(X.data, X.indices, X.indptr, X.shape[1],
                                                 data.sample_weight, W, b)

