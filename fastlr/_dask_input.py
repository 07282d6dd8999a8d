"""The estimator's input adapter for Dask collections (dask arrays, DataFrames, Series).

Holds: the checks on a dask array's metadata, ``classes_`` and per-class
counts from one small ``da.unique`` compute, labels encoded and weights formed
lazily per partition, and lazy prediction (one task per row block).
May import: NumPy, scikit-learn, :mod:`fastlr._labels`, :mod:`fastlr._class_weight`,
:mod:`fastlr.backends` (the registry: the Dask backend), :mod:`fastlr.trainer`,
and dask (lazily: this module imports without dask).
"""

import copy

import numpy as np

from ._class_weight import per_class_weights
from .backends import get_backend
from .backends.dask_cluster import _modules

def _prepare_block(X, dtype):
    """A block of X as a C-contiguous float32/float64 array (no copy when it is one)."""
    return np.ascontiguousarray(X, dtype=dtype)


def _encode_block(y, classes):
    """Labels to int32 codes 0..k-1 of ``classes`` (classes_ was computed from this y)."""
    return np.searchsorted(classes, np.asarray(y).ravel()).astype(np.int32)


def _class_weight_block(codes, per_class):
    return per_class[codes]



def _predict_block(X, model, method):
    return getattr(model, method)(np.asarray(X))



def _as_dask_array(X, what="X"):
    """A dask array from a dask array or dask DataFrame (row lengths computed), and column names."""
    _, da, _ = _modules()
    names = None
    if hasattr(X, "to_dask_array") and hasattr(X, "columns"):  # dask DataFrame
        cols = list(X.columns)
        if cols and all(isinstance(c, str) for c in cols):
            names = np.asarray(cols, dtype=object)
        X = X.to_dask_array(lengths=True)
    elif hasattr(X, "to_dask_array"):  # dask Series
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        raise TypeError(f"{what} must be a dask array or dask DataFrame here, got {type(X).__name__}")
    if any(np.isnan(c) for chunks in X.chunks for c in chunks):
        X = X.compute_chunk_sizes()
    return X, names


def _as_row_vector(v, row_chunks, n, what):
    """``v`` (dask or array-like of shape (n,)) as a 1-D dask array chunked like X's rows."""
    dask, da, _ = _modules()
    if dask.is_dask_collection(v):
        v, _ = _as_dask_array(v, what)
    else:
        v = np.asarray(v)
        if v.ndim == 0 or v.shape[0] != n:
            raise ValueError(f"{what} has shape {v.shape} but X has {n} rows")
        v = da.from_array(v, chunks=(row_chunks,) + tuple((s,) for s in v.shape[1:]))
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise ValueError(f"{what} must be 1-D of shape (n_samples,), got shape {v.shape}")
    if v.shape[0] != n:
        raise ValueError(f"{what} has {v.shape[0]} entries but X has {n} rows")
    if v.chunks[0] != tuple(row_chunks):
        v = v.rechunk((row_chunks,))
    return v


def _check_X(X, n_features=None):
    """dtype/ndim/shape checks on the dask array's metadata; lazy cast; one column chunk."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a {X.ndim}D dask array of shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"Found array with shape {X.shape}; at least 1 sample and 1 feature are required")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but LogisticRegression is expecting "
                         f"{n_features} features as input.")
    dtype = X.dtype
    if dtype not in (np.float32, np.float64):
        if dtype.kind not in "biuf":
            raise ValueError(f"X must hold numbers; got dtype {dtype}")
        dtype = np.dtype(np.float64)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    if dtype != X.dtype:
        X = X.map_blocks(_prepare_block, dtype, dtype=dtype)
    return X


def fit(model, X, y, sample_weight=None):
    """``model.fit(X, y, sample_weight)`` for dask collections (see the module docstring)."""
    from sklearn.utils.multiclass import check_classification_targets

    from .trainer import train

    dask, da, _ = _modules()
    loss_id, _, options = model._check_params(model.solver)
    kernel = "auto" if model.backend in ("auto", "dask") else model.backend
    if not dask.is_dask_collection(X):
        X = da.from_array(np.asarray(X))
    X, names = _as_dask_array(X)
    X = _check_X(X)
    n, d = X.shape
    rows = X.chunks[0]
    y = _as_row_vector(y, rows, n, "y")
    classes, counts = dask.compute(*da.unique(y, return_counts=True))
    check_classification_targets(classes)
    if len(classes) < 2:
        raise ValueError(
            "LogisticRegression needs samples of at least 2 classes in the data; "
            f"got only one class: {classes.tolist()}")
    codes = y.map_blocks(_encode_block, classes, dtype=np.int32)
    weights = None
    if sample_weight is not None:
        if np.ndim(sample_weight) == 0 and not dask.is_dask_collection(sample_weight):
            sample_weight = np.full(n, float(sample_weight))
        weights = _as_row_vector(sample_weight, rows, n, "sample_weight").astype(np.float64)
    if model.class_weight is not None:
        weighted_counts = None
        if weights is not None and isinstance(model.class_weight, str) and model.class_weight == "balanced":
            # balanced weights count each class's sample weights (one small compute)
            (weighted_counts,) = dask.compute(da.bincount(codes, weights=weights, minlength=len(classes)))
        per_class = per_class_weights(model.class_weight, classes, counts, weighted_counts)
        cwv = codes.map_blocks(_class_weight_block, per_class, dtype=np.float64)
        weights = cwv if weights is None else cwv * weights

    backend = get_backend("dask", partition=kernel)
    data = backend.put(X, codes, weights)
    k = 1 if len(classes) == 2 else len(classes)
    warm = (model.warm_start and getattr(model, "coef_", None) is not None
            and model.coef_.shape == (k, d))
    result = train(backend, data, loss_id, k, model._alpha(data.weight_sum), model.fit_intercept,
                   options, coef_init=model.coef_ if warm else None,
                   intercept_init=model.intercept_ if warm else None)
    del data  # release the persisted blocks (keys the user holds elsewhere stay)
    model.classes_ = classes
    model.n_features_in_ = d
    if names is not None:
        model.feature_names_in_ = names
    elif hasattr(model, "feature_names_in_"):
        del model.feature_names_in_
    model._store(result.coef, result.intercept, backend)
    model.n_iter_ = np.array([result.n_iter], dtype=np.int32)
    model.loss_curve_ = list(result.loss_curve)
    model.t_ = result.steps
    return model


def predict(model, X, method):
    """``model.<method>(X)`` as a lazy dask array, one task per row block of X."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    X, names = _as_dask_array(X)
    fitted_names = getattr(model, "feature_names_in_", None)
    if names is not None and fitted_names is not None and not np.array_equal(names, fitted_names):
        raise ValueError("The feature names should match those that were passed during fit.")
    X = _check_X(X, model.n_features_in_)
    snapshot = copy.copy(model)  # later fits of `model` do not change this lazy result
    if fitted_names is not None:
        del snapshot.feature_names_in_  # blocks are plain arrays; names were checked above
    k = len(model.classes_)
    if method == "predict" or (method == "decision_function" and k == 2):
        dtype = model.classes_.dtype if method == "predict" else np.float64
        return X.map_blocks(_predict_block, snapshot, method, dtype=dtype, drop_axis=1,
                            meta=np.empty(0, dtype=dtype))
    return X.map_blocks(_predict_block, snapshot, method, dtype=np.float64,
                        chunks=(X.chunks[0], (k,)), meta=np.empty((0, 0)))
