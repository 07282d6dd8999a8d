"""The estimator's input adapter for Dask collections (dask arrays, DataFrames, Series).

Holds: :class:`DaskInput` (the adapter protocol of :mod:`fastlr._inputs`): the
checks on a dask array's metadata, ``classes_`` and per-class counts from one
small ``da.unique`` compute, labels encoded and weights formed lazily per
partition, the ``dask`` backend from the registry, and lazy prediction (one
task per row block). Blocks may be NumPy arrays or scipy.sparse matrices
(made CSR on the workers by :func:`_prepare_block`; never densified). The one trainer then drives the Dask backend as any other.
May import: NumPy, scikit-learn, :mod:`fastlr._labels`, :mod:`fastlr._validation`,
:mod:`fastlr.backends` (the registry, and the dask helpers of ``dask_cluster``),
and dask (lazily: this module imports without dask). Never the trainer or the
estimator.
"""

import contextlib
import copy

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._labels import check_classes, per_class_weights
from ._validation import output_dtype
from .backends import backend_class, get_backend
from .backends.dask_cluster import _modules


def _prepare_block(X, dtype):
    """A block of X as a C-contiguous float32/float64 array, or a CSR matrix of that dtype
    when the block is scipy.sparse (CSC/COO converted; no copy when it already is one)."""
    if sp.issparse(X):
        X = X.tocsr()
        return X if X.dtype == dtype else X.astype(dtype)
    return np.ascontiguousarray(X, dtype=dtype)


def _is_sparse_array(X):
    """Whether the dask array's blocks are scipy.sparse matrices (from its ``_meta``)."""
    return sp.issparse(getattr(X, "_meta", None))


def _encode_block(y, classes):
    """Labels to int32 codes 0..k-1 of ``classes`` (classes_ was computed from this y)."""
    return np.searchsorted(classes, np.asarray(y).ravel()).astype(np.int32)


def _class_weight_block(codes, per_class):
    return per_class[codes]


def _predict_block(X, model, method, empty):
    """``model.<method>`` of one row block; ``empty`` (the result for no rows, from
    :func:`predict`) for an empty block, which the estimator's validation refuses as
    scikit-learn's does."""
    if X.shape[0] == 0:
        return empty
    return getattr(model, method)(X if sp.issparse(X) else np.asarray(X))


def _optimized(frame):
    """The dask DataFrame or Series with its expression optimised (dask-expr), else as it is.

    ``to_dask_array(lengths=True)`` on a column of ``dd.read_parquet(...)`` compares the row
    counts of the optimised read, which merges partitions when few columns are read, with the
    partition count of the unoptimised expression, and raises "The number of items in 'lengths'
    does not match the number of partitions" (dask 2026.8; dask/dask issue 12411). Optimising
    first makes the two the same.
    """
    optimize = getattr(frame, "optimize", None)
    return optimize() if callable(optimize) else frame


def _as_dask_array(X, what="X"):
    """A dask array from a dask array or dask DataFrame (row lengths computed), and column names."""
    _, da, _ = _modules()
    names = None
    if hasattr(X, "to_dask_array") and hasattr(X, "columns"):  # dask DataFrame
        cols = list(X.columns)
        if cols and all(isinstance(c, str) for c in cols):
            names = np.asarray(cols, dtype=object)
        X = _optimized(X).to_dask_array(lengths=True)
    elif hasattr(X, "to_dask_array"):  # dask Series
        X = _optimized(X).to_dask_array(lengths=True)
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
    if _is_sparse_array(X):  # CSR blocks, whatever sparse format they came in
        X = X.map_blocks(_prepare_block, dtype, dtype=dtype,
                         meta=sp.csr_matrix((0, 0), dtype=dtype))
    elif dtype != X.dtype:
        X = X.map_blocks(_prepare_block, dtype, dtype=dtype)
    return X


def predict(model, X, method):
    """``model.<method>(X)`` as a lazy dask array, one task per row block of X."""
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
    values = output_dtype(X)  # scores and probabilities: float32 for float32 X
    if method == "predict" or (method == "decision_function" and k == 2):
        empty = np.empty(0, dtype=model.classes_.dtype if method == "predict" else values)
        return X.map_blocks(_predict_block, snapshot, method, empty, dtype=empty.dtype,
                            drop_axis=1, meta=empty)
    empty = np.empty((0, k), dtype=values)
    return X.map_blocks(_predict_block, snapshot, method, empty, dtype=values,
                        chunks=(X.chunks[0], (k,)), meta=empty)


class DaskInput:
    """Dask collections: rows partitioned over a dask.distributed cluster (see the module docstring).

    One instance per call: ``labels`` keeps the class counts for ``weights``,
    ``validate`` X's row chunks.
    """

    def validate(self, est, X, y="no_validation", *, reset=True, ensure_all_finite=True):
        """Checks on the metadata only (the values are checked per partition by ``put``)."""
        dask, da, _ = _modules()
        if not dask.is_dask_collection(X):
            X = da.from_array(np.asarray(X))
        X, names = _as_dask_array(X)
        X = _check_X(X, None if reset else est.n_features_in_)
        self.rows, self.n = X.chunks[0], X.shape[0]
        if reset:
            est.n_features_in_ = X.shape[1]
            if names is not None:
                est.feature_names_in_ = names
            elif hasattr(est, "feature_names_in_"):
                del est.feature_names_in_
        if isinstance(y, str) and y == "no_validation":
            return X
        return X, _as_row_vector(y, self.rows, self.n, "y")

    def labels(self, y, classes=None, known=None, partial=False):
        """``classes_`` from one small ``da.unique`` compute; codes formed lazily per partition."""
        dask, da, _ = _modules()
        classes, self.counts = dask.compute(*da.unique(y, return_counts=True))
        check_classification_targets(classes)
        check_classes(classes)
        return classes, y.map_blocks(_encode_block, classes, dtype=np.int32)

    def weights(self, class_weight, classes, codes, sample_weight, X):
        """Sample times class weights as a lazy dask array, or None (unit weights)."""
        dask, da, _ = _modules()
        weights = None
        if sample_weight is not None:
            if np.ndim(sample_weight) == 0 and not dask.is_dask_collection(sample_weight):
                sample_weight = np.full(self.n, float(sample_weight))
            weights = _as_row_vector(sample_weight, self.rows, self.n, "sample_weight").astype(np.float64)
        if class_weight is None:
            return weights
        weighted_counts = None
        if weights is not None and isinstance(class_weight, str) and class_weight == "balanced":
            # balanced weights count each class's sample weights (one small compute)
            (weighted_counts,) = dask.compute(da.bincount(codes, weights=weights, minlength=len(classes)))
        per_class = per_class_weights(class_weight, classes, self.counts, weighted_counts)
        cwv = codes.map_blocks(_class_weight_block, per_class, dtype=np.float64)
        return cwv if weights is None else cwv * weights

    def backend(self, name, X):
        """The ``dask`` backend; ``name`` is the backend run on each partition ("auto" for a distributed one)."""
        partition = "auto" if name == "auto" or backend_class(name).distributed else name
        return get_backend("dask", partition=partition)

    def threads(self):
        return contextlib.nullcontext()  # the kernels run on the workers

    def check_partial_fit(self):
        raise TypeError(
            "partial_fit does not take dask collections: it would compute them into this "
            "process's memory. Use fit (which trains on the dask cluster), or call partial_fit "
            "on one block at a time (e.g. for block in X.to_delayed(): ...compute()).")

    def predict(self, est, X, method):
        """A lazy dask array, one task per row block."""
        return predict(est, X, method)
