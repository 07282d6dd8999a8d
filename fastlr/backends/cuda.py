"""The ``cuda`` backend: X lives in GPU memory for the whole fit; kernels in ``kernels/cuda.py``.

Same protocol as the other backends (see :mod:`fastlr.backends._protocol`): ``put``
copies the data to the device once (or takes a CuPy array / torch CUDA
tensor as it is, through ``__cuda_array_interface__``); each ``loss_grad``
sends the coefficients (k × (d + 1) numbers) and brings back the loss and
gradient sums; ``sgd_epoch`` is one kernel launch per epoch.

Everything here imports ``numba.cuda`` (the numba-cuda package) lazily, so
``import fastlr`` works without it.

Holds: :class:`CUDABackend`, :class:`DeviceData`, :class:`DeviceMemoryError`,
:func:`usable` (is there a GPU "auto" may pick), :func:`is_device_array`.
May import: NumPy, :mod:`fastlr.kernels.cuda` (lazily, it needs numba-cuda) and
numba.cuda, and :mod:`fastlr.backends._protocol` (the shared data shape).
"""

from dataclasses import dataclass, field

import numpy as np

from ._protocol import DataShape

_GIB = 1024 ** 3


class DeviceMemoryError(MemoryError):
    """The data does not fit in the GPU's free memory."""


@dataclass(frozen=True)
class DeviceData(DataShape):
    """Training data resident on the GPU.

    Attributes
    ----------
    X : device array of shape (n, d), float32 or float64, C-contiguous
    y : device array of shape (n,), int32
    sample_weight : device array of shape (n,) or (0,), X's dtype
    weight_sum : float
    scratch : dict
        Partial-sum buffers, allocated on first use and reused every iteration.
    """

    X: object
    y: object
    sample_weight: object
    weight_sum: float
    scratch: dict = field(default_factory=dict, compare=False)


def _cuda():
    from numba import cuda
    return cuda


def usable():
    """``(True, device description)`` when a real GPU can run the kernels, else ``(False, why)``."""
    try:
        from numba import config
        cuda = _cuda()
    except ImportError as exc:
        return False, f"numba-cuda is not installed ({exc}); pip install 'fastlr[cuda]'"
    if config.ENABLE_CUDASIM:
        return False, "NUMBA_ENABLE_CUDASIM=1: only the CUDA simulator is loaded (for tests, slow)"
    try:
        if not cuda.is_available():
            return False, "no CUDA driver or GPU found"
        device = cuda.get_current_device()
    except Exception as exc:  # noqa: BLE001 - any driver failure means "not usable"
        return False, f"CUDA driver error: {' '.join(str(exc).split())[:160]}"
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    return True, f"{name} (compute capability {'.'.join(map(str, device.compute_capability))})"


def is_device_array(X):
    """True for arrays that live in GPU memory (CuPy, torch CUDA, numba device arrays)."""
    return hasattr(X, "__cuda_array_interface__")


def _free_bytes(cuda):
    try:
        return float(cuda.current_context().get_memory_info().free)
    except Exception:  # noqa: BLE001 - unknown: let the allocation decide
        return float("inf")


def _out_of_memory(what, needed, free):
    return DeviceMemoryError(
        f"the cuda backend needs {needed / _GIB:.2f} GiB of GPU memory for {what} but only "
        f"{free / _GIB:.2f} GiB are free: train on chunks with partial_fit (or a smaller "
        f"batch), use float32 data, or use backend='cpu'"
    )


def _is_oom(exc):
    text = str(exc)
    return "OUT_OF_MEMORY" in text or "out of memory" in text.lower()


class CUDABackend:
    """numba-cuda kernels on one GPU; X is copied there once per fit."""

    name = "cuda"
    accepts_sparse = False  # no CSR kernels on the GPU yet: fastlr.backends.for_input refuses
    accepts_device_arrays = True
    has_hess_vec = False
    distributed = False
    # Scores, losses and sums in X's dtype (float32 for float32 X), no rescaling of scores that
    # overflow it: the error for a non-finite result says so (fastlr._validation.overflow_message).
    arithmetic_in_input_dtype = True

    def __init__(self):
        """Raises ValueError, in one line, when no GPU can run the kernels (see :func:`usable`).

        Under ``NUMBA_ENABLE_CUDASIM=1`` (the tests' CUDA simulator) the backend is built
        without a device. Without this check, the first kernel launch raised numba's
        ``CudaSupportError``, seven lines about driver libraries.
        """
        self.cuda = _cuda()
        from numba import config
        if not config.ENABLE_CUDASIM:
            ok, detail = usable()
            if not ok:
                raise ValueError(f"backend='cuda': no usable GPU here ({detail}); use "
                                   "backend='cpu', or 'auto' to take the GPU only where there is one")

    # -- placement ------------------------------------------------------------------------

    def _to_device(self, array, what, extra_bytes=0):
        """``array`` on the device: device arrays as they are, host arrays copied once."""
        cuda = self.cuda
        if is_device_array(array):
            return cuda.as_cuda_array(array)  # no copy
        needed = array.nbytes + extra_bytes
        free = _free_bytes(cuda)
        if needed > free:
            raise _out_of_memory(what, needed, free)
        try:
            return cuda.to_device(np.ascontiguousarray(array))
        except Exception as exc:
            if _is_oom(exc):
                raise _out_of_memory(what, needed, _free_bytes(cuda)) from exc
            raise

    def put(self, X, y, sample_weight=None):
        """Copy (n, d) X, (n,) int32 y and optional (n,) weights to the device.

        Raises
        ------
        DeviceMemoryError
            If they do not fit in the GPU's free memory.
        """
        n, d = X.shape
        dtype = np.dtype(X.dtype)
        label_bytes = 4 * n + (0 if sample_weight is None else dtype.itemsize * n)
        shape = f"X ({n} × {d} {dtype.name})"
        X_dev = self._to_device(X, shape, extra_bytes=label_bytes)
        y_dev = self._to_device(np.asarray(y, dtype=np.int32), "the labels")
        if sample_weight is None:
            w_dev = self.cuda.device_array(0, dtype=dtype)
            weight_sum = float(n)
        else:
            w_dev = self._to_device(np.asarray(sample_weight, dtype=dtype), "the sample weights")
            weight_sum = float(np.sum(sample_weight, dtype=np.float64))
        return DeviceData(X_dev, y_dev, w_dev, weight_sum)

    # -- kernels --------------------------------------------------------------------------

    def _kernels(self, X, k):
        from ..kernels import cuda as kc
        return kc, kc.kernels(np.dtype(X.dtype), X.shape[1], k)

    def _coefficients(self, W, b, dtype, scratch=None):
        """W (k, d) and b (k,) on the device in X's dtype, in buffers kept in ``scratch``."""
        W_host = np.ascontiguousarray(W, dtype=dtype)
        b_host = np.ascontiguousarray(b, dtype=dtype)
        buffers = None if scratch is None else scratch.get(("coef", W.shape))
        if buffers is None:
            buffers = (self.cuda.to_device(W_host), self.cuda.to_device(b_host))
            if scratch is not None:
                scratch[("coef", W.shape)] = buffers
        else:
            buffers[0].copy_to_device(W_host)
            buffers[1].copy_to_device(b_host)
        return buffers

    def _empty_rows(self, data):
        rows = data.scratch.get("rows")
        if rows is None:
            rows = data.scratch["rows"] = self.cuda.device_array(0, dtype=np.int64)
        return rows

    def loss_grad(self, data, W, b, loss_id):
        X = data.X
        n = X.shape[0]
        k = W.shape[0]
        kc, K = self._kernels(X, k)
        n_blocks = -(-n // kc.ROWS_PER_BLOCK)
        P = data.scratch.get(("partials", k))
        if P is None:
            P = data.scratch[("partials", k)] = self.cuda.device_array(
                (n_blocks * K.groups, K.n_sums), dtype=X.dtype)
        W_dev, b_dev = self._coefficients(W, b, X.dtype, data.scratch)
        K.partials[n_blocks, kc.THREADS](X, data.y, data.sample_weight, self._empty_rows(data),
                                          0, n, kc.ROWS_PER_BLOCK, W_dev, b_dev, loss_id, P)
        sums = kc.sum_rows(P, data.scratch).copy_to_host()  # back: k (d + 1) + 1 numbers
        return sums[-1], sums[:-1].reshape(k, X.shape[1] + 1)

    def sgd_epoch(self, data, W, b, loss_id, schedule, batch_order, rows=None):
        cuda = self.cuda
        X = data.X
        k, d = W.shape
        real = np.dtype(X.dtype).type
        kc, K = self._kernels(X, k)
        W_dev, b_dev = self._coefficients(W, b, X.dtype)
        P = cuda.device_array((K.sgd_groups, K.n_sums), dtype=X.dtype)
        W_new = cuda.device_array((k, d + 1), dtype=X.dtype)
        result = cuda.device_array(2, dtype=X.dtype)
        rows_dev = self._empty_rows(data) if rows is None else cuda.to_device(np.asarray(rows, np.int64))
        K.sgd_epoch[1, kc.SGD_THREADS](
            X, data.y, data.sample_weight, rows_dev, cuda.to_device(np.asarray(batch_order, np.int64)),
            schedule.batch_size, W_dev, b_dev, loss_id, real(schedule.alpha),
            bool(schedule.fit_intercept), real(schedule.eta0), real(schedule.power_t),
            int(schedule.step0), real(data.weight_sum / data.n_samples), P, W_new, result,
        )
        loss_sum, n_steps = result.copy_to_host()
        W[:] = W_dev.copy_to_host()
        b[:] = b_dev.copy_to_host()
        return float(loss_sum), int(n_steps)

    def decision_function(self, X, W, b):
        cuda = self.cuda
        X_dev = self._to_device(X, f"X ({X.shape[0]} × {X.shape[1]} {np.dtype(X.dtype).name})")
        n = X_dev.shape[0]
        kc, K = self._kernels(X_dev, W.shape[0])
        W_dev, b_dev = self._coefficients(W, b, X_dev.dtype)
        out = cuda.device_array((n, W.shape[0]), dtype=X_dev.dtype)
        K.scores[-(-n // kc.ROWS_PER_BLOCK), kc.THREADS](X_dev, W_dev, b_dev, out)
        return out.copy_to_host().astype(np.float64)
