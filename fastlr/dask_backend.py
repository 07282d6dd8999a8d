"""Distributed training on Dask: fastlr's own kernels on every partition, the trainer on the client.

``LogisticRegression.fit`` routes here when X (or y, or sample_weight) is a
Dask collection. The pieces:

* :func:`fit` — the estimator's dask path: checks on the array metadata,
  ``classes_`` from one small ``da.unique`` compute, labels encoded and
  weights formed lazily per partition, then the unchanged
  :func:`fastlr.trainer.train` over a :class:`DaskBackend`.
* :class:`DaskBackend` — the Backend protocol of :mod:`fastlr.backends` over
  a ``dask.distributed`` cluster:

  ``put``
      persists the (X, y, w) blocks on the workers once (``client.persist``;
      the backend keeps one future per block) and, in the same pass, checks
      each partition (X finite, weights finite and ≥ 0) and sums its weights.
  ``loss_grad``
      sends ``W, b`` (a few hundred bytes) with one task per partition; each
      task runs the per-partition backend (``"auto"``: fastlr's Numba CPU
      kernel) on the block where it lives and returns the (loss_sum,
      grad_sum) partial; the partials are added by a tree with a fixed
      grouping (:data:`TREE_FAN_IN` at a time, in partition order), so the
      sum is deterministic for a given partitioning, and only the total comes
      back: the inner nodes run as tasks on the workers, the root (at most
      ``TREE_FAN_IN`` partials) on the client. Data never moves; per evaluation
      ``W, b`` go out and at most ``TREE_FAN_IN`` (k, d + 1) partials come back.
  ``sgd_epoch``
      SGD over partitions, see below.
  ``decision_function``
      lazy ``map_blocks`` on a dask array (``predict`` and friends too).

SGD over partitions
-------------------
An epoch visits the partitions one after the other: the coefficients travel
to the worker holding the partition (task to task, never through the
client), one compiled SGD pass runs over that partition's batches (runs of
``batch_size`` consecutive rows counted from the partition's first row, so a
batch never straddles two partitions), and the updated coefficients go on to
the next partition. The step counter and learning-rate schedule continue
across partitions and epochs, and each step's gradient is scaled by the mean
sample weight of the *whole* data set, exactly as on one machine. The order
comes from the trainer's usual per-epoch batch permutation (drawn from
``random_state``): partitions are visited in the order in which that
permutation first reaches a batch starting in them, and a partition's batches
in the order in which the permutation lists them (``shuffle=False``: data
order). Hence, when every partition but the last holds a multiple of
``batch_size`` rows, an epoch equals the single-machine epoch whose batch
order is the trainer's permutation stably grouped by partition (the tests
check this bit for bit), and with ``shuffle=False`` it equals the
single-machine epoch. ``shuffle="rows"`` permutes rows within each partition
(the trainer's row permutation restricted to the partition), which sends each
partition 8 bytes per row per epoch; ``shuffle=True`` sends only batch indices.
The epoch is sequential by nature: one partition computes at a time.

Faults
------
Blocks are persisted from the collection's task graph, so when a worker dies
the scheduler recomputes the blocks it held from that graph and re-runs the
tasks that were running there; the kernels are deterministic, so the fit then
finishes with the same model it would have produced anyway. If the work
cannot be recovered (the data was scattered without a graph, a task kept
killing workers: ``KilledWorker``, the cluster went away) the fit raises
:class:`DaskFitError` and leaves the estimator unfitted (or as it was); it
never returns a model built from partial sums.

The per-partition backend is a name resolved on the worker (``backend=`` of
the estimator: ``"auto"``/``"dask"`` mean ``"auto"``, ``"cpu"``, ``"numpy"``),
which is the hook for GPU workers: once :func:`fastlr.backends.get_backend`
knows ``"cuda"``, ``backend="cuda"`` (or ``"auto"`` resolving to it on a GPU
worker) runs the GPU kernel on each partition. Not exercised here: the
development machine has no GPU.

dask is imported lazily: this module imports (and a model fitted on dask data
predicts on NumPy arrays) without dask installed.
"""

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from ._class_weight import per_class_weights
from .backends import HostData, get_backend

#: Partials added per node of the reduction tree (fixed, so the order of the sum is too).
#: The root (at most this many partials) is added on the client: one hop less than a
#: root task on a worker, for the same bytes.
TREE_FAN_IN = 8

_EMPTY_F64 = np.empty(0, dtype=np.float64)

_INSTALL_HINT = "pip install 'fastlr[dask]' (dask[array,dataframe,distributed])"


class DaskFitError(RuntimeError):
    """The Dask cluster lost work that the fit needs and could not recover it.

    Raised instead of returning a model: a worker died and its blocks could not
    be recomputed (data scattered without a task graph), a task kept killing
    workers (``KilledWorker``), or the connection to the cluster failed. The
    estimator keeps its previous state.
    """


def _modules():
    """(dask, dask.array, distributed), or ImportError naming the extra."""
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError as exc:
        raise ImportError(f"training on dask collections needs dask.distributed: {_INSTALL_HINT}") from exc
    return dask, da, distributed


def _fault_types():
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    return (KilledWorker, CancelledError, CommClosedError, OSError, TimeoutError)


def _result(future, client=None):
    """``future.result()`` (or ``client.gather(futures)`` of a list), with losses of the
    cluster turned into :class:`DaskFitError`."""
    try:
        return client.gather(future) if isinstance(future, list) else future.result()
    except _fault_types() as exc:
        raise DaskFitError(
            f"the Dask cluster lost work the fit needs and could not recover it "
            f"({type(exc).__name__}: {exc}); no model was fitted. Persisted blocks are "
            "recomputed from their task graph when a worker dies; data scattered without "
            "one cannot be."
        ) from exc


# -- worker side -----------------------------------------------------------------------------
# Module-level functions: tasks pickle them by reference, so workers import fastlr.

def _use_worker_threads():
    """Let the Numba kernels use as many threads as the Dask worker has (not every core).

    Dask runs ``nthreads`` tasks per worker at once; a kernel that also used every
    core of the machine would oversubscribe it ``n_workers`` times over.
    """
    try:
        import numba
        from distributed import get_worker

        threads = get_worker().state.nthreads
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except (ImportError, ValueError, AttributeError):
        pass


def _prepare_block(X, dtype):
    """A block of X as a C-contiguous float32/float64 array (no copy when it is one)."""
    return np.ascontiguousarray(X, dtype=dtype)


def _encode_block(y, classes):
    """Labels to int32 codes 0..k-1 of ``classes`` (classes_ was computed from this y)."""
    return np.searchsorted(classes, np.asarray(y).ravel()).astype(np.int32)


def _class_weight_block(codes, per_class):
    return per_class[codes]


def _block_summary(X, w):
    """(rows, X all finite, weight sum, weights finite and ≥ 0) of one partition."""
    rows = X.shape[0]
    finite = bool(np.isfinite(X).all()) if X.size else True
    if w is None:
        return rows, finite, float(rows), True
    ok = bool(np.isfinite(w).all() and (w >= 0).all())
    return rows, finite, float(np.sum(w)), ok


def _host(X, y, w, weight_sum=0.0):
    return HostData(X, y, _EMPTY_F64 if w is None else w, weight_sum)


def _block_loss_grad(X, y, w, W, b, loss_id, kernel):
    """(loss_sum, grad_sum (k, d + 1)) of one partition, by the per-partition backend."""
    _use_worker_threads()
    loss_sum, grad_sum = get_backend(kernel).loss_grad(_host(X, y, w), W, b, loss_id)
    return float(loss_sum), np.array(grad_sum, dtype=np.float64)


def _add_partials(*parts):
    """Sum of (loss_sum, grad_sum) partials, added left to right."""
    loss_sum, grad_sum = parts[0][0], parts[0][1].copy()
    for loss, grad in parts[1:]:
        loss_sum += loss
        grad_sum += grad
    return loss_sum, grad_sum


def _block_sgd(X, y, w, state, loss_id, kernel, schedule, batch_order, rows, mean_weight):
    """Continue an SGD epoch on this partition; ``state`` = (W, b, loss_sum, steps, diverged)."""
    W, b, loss_total, steps, diverged = state
    if diverged:
        return state
    _use_worker_threads()
    W, b = W.copy(), b.copy()
    data = _host(X, y, w, mean_weight * X.shape[0])  # weight_sum / n_samples = the global mean
    schedule = dataclasses.replace(schedule, step0=schedule.step0 + steps)
    loss_sum, n_steps = get_backend(kernel).sgd_epoch(data, W, b, loss_id, schedule, batch_order, rows)
    return W, b, loss_total + float(loss_sum), steps + int(n_steps), n_steps < len(batch_order)


def _predict_block(X, model, method):
    return getattr(model, method)(np.asarray(X))


# -- the backend ---------------------------------------------------------------------------

@dataclass
class DaskData:
    """Training data persisted on the workers: one future per (X, y, w) block.

    Attributes
    ----------
    blocks : list of (Future, Future, Future or None)
        X (n_p, d), y codes (n_p,) int32 and weights (n_p,) float64 of partition p.
    sizes : ndarray of shape (n_partitions,), int64
    offsets : ndarray of shape (n_partitions,), int64
        First row of each partition.
    n_samples, n_features : int
    weight_sum : float
    client : distributed.Client
    collections : list
        The persisted dask arrays (holding them keeps the blocks alive).
    """

    blocks: list
    sizes: np.ndarray
    offsets: np.ndarray
    n_samples: int
    n_features: int
    weight_sum: float
    client: object
    collections: list

    @property
    def n_partitions(self):
        return len(self.blocks)


class DaskBackend:
    """Backend protocol over a ``dask.distributed`` cluster (see the module docstring).

    Parameters
    ----------
    kernel : str, default="auto"
        Backend run on each partition, resolved on the worker by
        :func:`fastlr.backends.get_backend` ("auto", "cpu", "numpy"; a GPU
        backend's name on GPU workers).
    client : distributed.Client, optional
        Defaults to the current client (``distributed.get_client()``).
    """

    name = "dask"

    def __init__(self, kernel="auto", client=None):
        self.kernel = kernel
        self.client = client

    def _client(self):
        if self.client is not None:
            return self.client
        _, _, distributed = _modules()
        try:
            return distributed.get_client()
        except ValueError:
            raise ValueError(
                "fitting on dask collections needs a dask.distributed Client: create one "
                "first (e.g. `from distributed import Client; client = Client()`), or pass "
                "NumPy arrays (X.compute())"
            ) from None

    # -- put ---------------------------------------------------------------------------

    def put(self, X, y, sample_weight=None):
        """Persist the blocks on the workers and check them, in one pass.

        Parameters
        ----------
        X : dask array of shape (n, d), float32/float64, one chunk across columns
        y : dask array of shape (n,), int32 codes, chunked like X's rows
        sample_weight : dask array of shape (n,), float64, or None

        Returns
        -------
        DaskData

        Raises
        ------
        ValueError
            NaN or infinity in X, negative or non-finite weights, weights that sum to 0.
        """
        dask, _, distributed = _modules()
        if not dask.is_dask_collection(X):
            raise ValueError(
                "backend='dask' trains on dask collections (dask.array / dask.dataframe); "
                "got a NumPy X: pass a dask array, or use backend='auto'"
            )
        client = self._client()
        arrays = [X, y] + ([] if sample_weight is None else [sample_weight])
        persisted = client.persist(arrays)
        futures = {f.key: f for f in distributed.futures_of(persisted)}
        x_keys = [row[0] for row in persisted[0].__dask_keys__()]
        y_keys = persisted[1].__dask_keys__()
        w_keys = persisted[2].__dask_keys__() if sample_weight is not None else [None] * len(x_keys)
        blocks = [(futures[xk], futures[yk], futures.get(wk)) for xk, yk, wk in zip(x_keys, y_keys, w_keys)]
        summaries = [client.submit(_block_summary, xf, wf, pure=False) for xf, _, wf in blocks]
        summaries = _result(summaries, client)
        sizes = np.array([s[0] for s in summaries], dtype=np.int64)
        for p, (_, finite, _, weights_ok) in enumerate(summaries):
            if not finite:
                raise ValueError(f"Input X contains NaN or infinity (partition {p} of {len(blocks)}).")
            if not weights_ok:
                raise ValueError(
                    f"sample_weight contains negative, NaN or infinite values (partition {p} of {len(blocks)}).")
        weight_sum = float(sum(s[2] for s in summaries))
        if not weight_sum > 0:
            raise ValueError("sample_weight must not sum to zero (all samples would be ignored).")
        keep = sizes > 0  # empty partitions (a filtered DataFrame, say) take no part
        blocks = [blk for blk, kept in zip(blocks, keep) if kept]
        sizes = sizes[keep]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return DaskData(blocks, sizes, offsets, int(sizes.sum()), int(X.shape[1]), weight_sum,
                        client, persisted)

    # -- full gradient -------------------------------------------------------------------

    def loss_grad(self, data, W, b, loss_id):
        """(loss_sum, grad_sum (k, d + 1)) over all partitions, summed by a fixed tree."""
        client = data.client
        W = np.ascontiguousarray(W, dtype=np.float64)
        b = np.ascontiguousarray(b, dtype=np.float64)
        level = [client.submit(_block_loss_grad, xf, yf, wf, W, b, loss_id, self.kernel, pure=False)
                 for xf, yf, wf in data.blocks]
        while len(level) > TREE_FAN_IN:  # inner levels of the tree run on the workers
            level = [group[0] if len(group) == 1 else client.submit(_add_partials, *group, pure=False)
                     for group in (level[i:i + TREE_FAN_IN] for i in range(0, len(level), TREE_FAN_IN))]
        return _add_partials(*_result(level, client))  # the root: on the client, in order

    # -- SGD -----------------------------------------------------------------------------

    def partition_schedule(self, data, batch_size, batch_order, rows=None):
        """The partition visits of one epoch: a list of (partition, local batch order, local rows).

        See "SGD over partitions" in the module docstring.
        """
        offsets, sizes = data.offsets, data.sizes
        starts = np.asarray(batch_order, dtype=np.int64) * batch_size
        part = np.searchsorted(offsets, starts, side="right") - 1
        _, first = np.unique(part, return_index=True)
        order = list(part[np.sort(first)])
        seen = set(order)
        order += [p for p in range(len(sizes)) if p not in seen]  # partitions < batch_size rows
        if rows is not None:  # the trainer's row permutation, split by partition, order kept
            rows = np.asarray(rows, dtype=np.int64)
            by_part = np.argsort(np.searchsorted(offsets, rows, side="right") - 1, kind="stable")
            row_groups = np.split(rows[by_part], np.cumsum(sizes)[:-1])
        visits = []
        for p in order:
            n_local = -(-int(sizes[p]) // batch_size)
            local = (starts[part == p] - offsets[p]) // batch_size
            missing = np.setdiff1d(np.arange(n_local), local)
            local_order = np.concatenate([local, missing]).astype(np.int64)
            local_rows = None if rows is None else row_groups[p] - offsets[p]
            visits.append((int(p), local_order, local_rows))
        return visits

    def sgd_epoch(self, data, W, b, loss_id, schedule, batch_order, rows=None):
        """One epoch of SGD over the partitions in turn, updating ``W`` and ``b`` in place.

        Returns (loss_sum, n_steps); after a divergence ``n_steps`` is below
        ``len(batch_order)`` (as the trainer expects) and W, b are the last finite values.
        """
        client = data.client
        state = (np.array(W, dtype=np.float64), np.array(b, dtype=np.float64), 0.0, 0, False)
        mean_weight = data.weight_sum / data.n_samples
        for p, local_order, local_rows in self.partition_schedule(data, schedule.batch_size,
                                                                    batch_order, rows):
            xf, yf, wf = data.blocks[p]
            state = client.submit(_block_sgd, xf, yf, wf, state, loss_id, self.kernel, schedule,
                                  local_order, local_rows, mean_weight, pure=False)
        W_new, b_new, loss_sum, steps, diverged = _result(state)
        W[:] = W_new
        b[:] = b_new
        if diverged:
            steps = min(steps, len(batch_order) - 1)
        return loss_sum, steps

    # -- prediction ----------------------------------------------------------------------

    def decision_function(self, X, W, b):
        """Scores (n, k): lazily per block for a dask array, by the per-partition backend otherwise."""
        dask_mod = _loaded_dask()
        if dask_mod is not None and dask_mod.is_dask_collection(X):
            return X.map_blocks(_block_scores, W, b, self.kernel, dtype=np.float64,
                                chunks=(X.chunks[0], (W.shape[0],)))
        return get_backend(self.kernel).decision_function(X, W, b)


def _block_scores(X, W, b, kernel):
    return get_backend(kernel).decision_function(np.ascontiguousarray(X), W, b)


def _loaded_dask():
    import sys

    return sys.modules.get("dask")


# -- the estimator's dask path ----------------------------------------------------------------

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

    backend = DaskBackend(kernel)
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
