"""``loss_grad``: the low-level function for benchmark comparisons."""

import numbers

import numpy as np
from sklearn.utils import check_array, column_or_1d

from ._threads import fastlr_threads
from ._validation import check_features, check_loss, check_sample_weight, overflow_message, to_host
from ._sparse import check_sparse_features, issparse
from .backends import for_input, get_backend


def _check_labels(y, n_samples, n_classes):
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"))
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} samples but X has {n_samples}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must hold integer class codes, got dtype {y.dtype}")
    codes = y.astype(np.int32)
    if np.any(codes != y) or codes.min() < 0 or codes.max() >= max(n_classes, 2):
        allowed = "{0, 1}" if n_classes == 1 else f"0..{n_classes - 1}"
        raise ValueError(f"y must hold integer class codes in {allowed}")
    return codes


def loss_grad(X, y, coef, intercept=0.0, *, loss="log_loss", sample_weight=None, backend="auto"):
    """Mean loss and mean gradient of a logistic model, without penalty.

    ``loss = Σ s_i loss(z_i, y_i) / Σ s_i`` with ``z_i = x_i·coef + intercept``
    (``s_i = 1`` without sample weights); the gradients are those of this mean.
    The CPU backend reads X once, without copying a float32 or float64
    C-contiguous X; that pass also serves to detect NaN or inf in X (they make
    the result non-finite, and then ValueError is raised), so no separate pass
    over X checks it. Scores ``x·w`` are formed in X's precision, everything
    after them in float64.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        scipy.sparse CSR is used as it is (CSC/COO converted once), never
        densified; its stored values are checked for NaN/inf up front. Sparse
        X needs backend "cpu" or "numpy".
    y : array-like of shape (n_samples,)
        Integer codes: 0 or 1 for a binary model, 0..k-1 for a multinomial one.
    coef : array-like of shape (n_features,) or (k, n_features)
        1-D (or a single row, as scikit-learn's binary ``coef_``): binary
        sigmoid model. ``k >= 2`` rows: softmax over ``k`` classes.
    intercept : float or array-like of shape (k,), default=0.0
    loss : {"log_loss", "prob_squared"}, default="log_loss"
        See :class:`fastlr.LogisticRegression`; ``"log"`` and ``"squared"``
        still work with a FutureWarning.
    sample_weight : array-like of shape (n_samples,), optional
    backend : {"auto", "cpu", "cuda", "numpy"}, default="auto"
        The estimator's default: ``"auto"`` is the GPU when numba-cuda finds
        one, else the CPU. ``"cuda"`` also takes X as a GPU array (CuPy,
        torch CUDA tensor) without copying it.

    Returns
    -------
    loss : float
        Exact up to rounding for any finite X and coef: a score ``x·w`` beyond
        the float range (float32 X: beyond float32's) is formed again without
        overflow, so the loss is then its true value, possibly +inf, never NaN.
    grad_coef : ndarray with the shape of ``coef``, float64
        Entries are ±inf when a sum overflows float64.
    grad_intercept : float, or ndarray with the shape of ``intercept``

    Raises
    ------
    ValueError
        NaN or inf in X ("Input X contains NaN or infinity"), bad shapes or labels.
    FloatingPointError
        (CPU and NumPy backends) a gradient sum overflowed float64 with both
        signs and has no value: only for X and coef near 1e308.
    """
    loss_id = check_loss(loss)
    engine = get_backend(backend)
    # NaN/inf in X are found from the result instead of by a pass of their own,
    # so that the call reads X once: any of them makes the loss or gradient non-finite.
    if issparse(X):  # CSR (others converted once); structure and values checked in one pass
        X = check_sparse_features(X)
        engine = for_input(engine, X, backend)
    else:
        X = check_features(X, ensure_all_finite=False)
    if np.ndim(coef) not in (1, 2):
        raise ValueError(f"coef must be 1-D or 2-D, got shape {np.shape(coef)}")
    coef_in = check_array(coef, ensure_2d=False, dtype=np.float64, input_name="coef")
    W = np.ascontiguousarray(coef_in.reshape(1, -1) if coef_in.ndim == 1 else coef_in)
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"coef has {W.shape[1]} features but X has {X.shape[1]}")
    scalar_intercept = isinstance(intercept, numbers.Real) or np.ndim(intercept) == 0
    b = np.asarray(intercept, dtype=np.float64).reshape(-1)
    if scalar_intercept:
        b = np.repeat(b, W.shape[0])
    if b.shape != (W.shape[0],) or not np.all(np.isfinite(b)):
        raise ValueError(f"intercept must be a finite scalar or of shape ({W.shape[0]},)")
    codes = _check_labels(to_host(y), X.shape[0], W.shape[0])
    data = engine.put(X, codes, check_sample_weight(to_host(sample_weight), X))
    with fastlr_threads():
        loss_sum, grad_sum = engine.loss_grad(data, W, b, loss_id)
    if not (np.isfinite(loss_sum) and np.all(np.isfinite(grad_sum))) and not issparse(X):
        check_features(X)  # raises the usual "Input X contains NaN/infinity" error
        if hasattr(X, "__cuda_array_interface__"):  # not scanned on the host: say what it means
            raise ValueError("Input X contains NaN or infinity (the loss computed on the GPU "
                             "is not finite)")
        if np.isnan(loss_sum) or np.any(np.isnan(grad_sum)):
            raise FloatingPointError(overflow_message(
                engine, X.dtype, "the loss or gradient has no value (terms of +inf and -inf "
                "were added)"))
    S = data.weight_sum
    grad_coef = (grad_sum[:, :-1] / S).reshape(coef_in.shape)
    grad_intercept = grad_sum[:, -1] / S
    if scalar_intercept:
        grad_intercept = float(grad_intercept.sum()) if W.shape[0] == 1 else grad_intercept
    return float(loss_sum / S), grad_coef, grad_intercept
