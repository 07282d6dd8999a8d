"""Checks of user input, done once at the public boundary; inner code trusts its inputs.

May import: NumPy, scikit-learn, :mod:`fastlr._math` (loss names); numba.cuda lazily.
"""

import numbers
import warnings

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight

from ._math import DEPRECATED_LOSS_NAMES, LOSS_IDS

FLOAT_DTYPES = (np.float64, np.float32)


def output_dtype(X):
    """dtype of the scores and probabilities predicted for ``X``: float32 for float32 X
    (dense, sparse, dask or device), float64 otherwise, as scikit-learn returns them."""
    return np.dtype(np.float32) if getattr(X, "dtype", None) == np.float32 else np.dtype(np.float64)


def check_loss(loss, stacklevel=3):
    """Return the kernel id of ``loss`` ("log_loss" or "prob_squared").

    The earlier names ``"log"`` and ``"squared"`` still work and warn
    ``FutureWarning`` (``stacklevel``: the caller's caller, i.e. user code).
    """
    if isinstance(loss, str) and loss in DEPRECATED_LOSS_NAMES:
        new = DEPRECATED_LOSS_NAMES[loss]
        warnings.warn(f"loss={loss!r} was renamed {new!r} (scikit-learn's spelling"
                      f"{'' if new == 'log_loss' else '; not to be confused with squared_error'}); "
                      f"{loss!r} will be removed in a future version", FutureWarning,
                      stacklevel=stacklevel)
        loss = new
    try:
        return LOSS_IDS[loss]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown loss {loss!r}; expected one of {', '.join(map(repr, LOSS_IDS))}"
        ) from None


def check_choice(name, value, choices):
    """Raise ValueError naming ``name`` unless ``value`` is one of ``choices``."""
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")


def check_number(name, value, *, low=None, low_open=False, integer=False, allow_none=False,
                 allow_inf=False):
    """Validate a scalar parameter and return it.

    Parameters
    ----------
    name : str
    value : object
    low : float, optional
        Smallest allowed value.
    low_open : bool
        If True, ``value`` must be strictly greater than ``low``.
    integer : bool
        Require an integer (bool is rejected).
    allow_none : bool
    allow_inf : bool
        Accept ``+inf`` (``C=np.inf``: no penalty).
    """
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a real number'}, got {value!r}")
    if not np.isfinite(value) and not (allow_inf and value == np.inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    return value


def check_device_features(X, *, input_name="X"):
    """Check a GPU array (``__cuda_array_interface__``) without copying or reading it.

    It must be 2-D, non-empty, float32 or float64 and C-contiguous; NaN/inf in
    it are found later, from a non-finite loss.
    """
    interface = X.__cuda_array_interface__
    shape = tuple(interface["shape"])
    dtype = np.dtype(interface["typestr"])
    if len(shape) != 2:
        raise ValueError(f"Expected a 2-D GPU array for {input_name}, got shape {shape}")
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{input_name} has shape {shape}; at least 1 sample and 1 feature are required")
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"GPU array {input_name} must be float32 or float64 (no copy is made "
                         f"on the device), got {dtype}")
    strides = interface.get("strides")
    if strides is not None and tuple(strides) != (shape[1] * dtype.itemsize, dtype.itemsize):
        raise ValueError(f"GPU array {input_name} must be C-contiguous (row-major); got strides "
                         f"{tuple(strides)}: make a contiguous copy on the device first")
    return X


def to_host(a):
    """A GPU array's contents as a NumPy array (for small ones: labels, weights); others as they are."""
    if hasattr(a, "__cuda_array_interface__"):
        from numba import cuda
        return cuda.as_cuda_array(a).copy_to_host()
    return a


def check_features(X, *, input_name="X", ensure_all_finite=True):
    """X as a C-contiguous float32/float64 2-D array, non-empty (and finite, by default).

    float32 and float64 C-contiguous arrays pass through without a copy; any
    other dtype is converted to float64. ``ensure_all_finite=False`` skips the
    pass over X that looks for NaN/inf, for callers that detect them afterwards
    from a non-finite result (see :func:`fastlr.loss_grad`). GPU arrays (CuPy,
    torch CUDA tensors) stay on the device: see :func:`check_device_features`.
    """
    if hasattr(X, "__cuda_array_interface__"):
        return check_device_features(X, input_name=input_name)
    return check_array(
        X, dtype=FLOAT_DTYPES, order="C", ensure_2d=True, allow_nd=False,
        ensure_min_samples=1, ensure_min_features=1, input_name=input_name,
        ensure_all_finite=ensure_all_finite,
    )


def check_sample_weight(sample_weight, X):
    """Sample weights as float64 (n,), non-negative, finite, with a positive sum; None stays None."""
    if sample_weight is None:
        return None
    # scikit-learn's check also rejects weights that are all zero.
    return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)


def overflow_message(backend, dtype, what):
    """Why a loss or gradient from finite X and coefficients is not finite, and what to do.

    ``backend.arithmetic_in_input_dtype`` (a capability flag; absent means
    False) says whether the backend forms scores and sums in X's own precision
    (the cuda kernels) rather than rescaling overflowing scores and summing in
    float64 (cpu, numpy); ``what`` names the quantity that failed.
    """
    in_input = getattr(backend, "arithmetic_in_input_dtype", False)
    precision = np.dtype(dtype) if in_input else np.dtype(np.float64)
    limit = f"{float(np.finfo(precision).max):.2g}"
    message = (f"{what}: with finite X and coefficients, a score x·w or a sum over the samples "
               f"overflowed {precision.name} (|values| beyond {limit})")
    if in_input and precision != np.float64:
        message += (f"; the {backend.name} backend computes in X's precision, while "
                    "backend='cpu' rescales such scores and sums in float64")
    return message + "; scale X"

