"""The ``dask`` backend: fastlr's own kernels on every partition of a dask.distributed cluster.

Holds: :class:`DaskBackend`, :class:`DaskData`, :class:`DaskFitError` and the
functions its tasks run on the workers.
May import: NumPy, :mod:`fastlr.backends._protocol`, :mod:`fastlr.backends.cpu`
(the default per-partition backend), :mod:`fastlr.backends.numpy_ref` (column
moments where the per-partition backend has none), dask (lazily). Never the trainer, the
registry or the estimator: the one trainer drives this backend like any other,
from the client. Dask collections reach it through the estimator's dask input
adapter (:mod:`fastlr._dask_input`: metadata checks, ``classes_`` from one small
``da.unique`` compute, labels and weights formed lazily per partition).

:class:`DaskBackend` is the Backend protocol of :mod:`fastlr.backends._protocol`
over a ``dask.distributed`` cluster:

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
  ``column_moments``
      one task per partition, merged on the client in partition order
      (L-BFGS's change of variables, :mod:`fastlr._reparam`).
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

The per-partition backend is made on the worker by the ``partition`` factory
(from the registry: ``get_backend(name)`` with ``backend=`` of the estimator,
``"auto"``/``"dask"`` meaning ``"auto"``), which is the hook for GPU workers:
``backend="cuda"`` (or ``"auto"`` resolving to it on a GPU worker) runs the GPU
kernel on each partition. Not exercised here: the development machine has no GPU.

dask is imported lazily: this module imports (and a model fitted on dask data
predicts on NumPy arrays) without dask installed.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._sparse import check_csr
from ._protocol import EMPTY_F64 as _EMPTY_F64
from ._protocol import HostData
from .cpu import CPUBackend

#: Partials added per node of the reduction tree (fixed, so the order of the sum is too).
#: The root (at most this many partials) is added on the client: one hop less than a
#: root task on a worker, for the same bytes.
TREE_FAN_IN = 8


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


def _block_summary(X, w):
    """(rows, X all finite, weight sum, weights finite and ≥ 0) of one partition."""
    rows = X.shape[0]
    if sp.issparse(X):  # a CSR block (fastlr._dask_input made it one): structure, then values
        check_csr(X, ensure_all_finite=False)
        finite = bool(np.isfinite(X.data).all())
    else:
        finite = bool(np.isfinite(X).all()) if X.size else True
    if w is None:
        return rows, finite, float(rows), True
    ok = bool(np.isfinite(w).all() and (w >= 0).all())
    return rows, finite, float(np.sum(w)), ok


def _host(X, y, w, weight_sum=0.0):
    return HostData(X, y, _EMPTY_F64 if w is None else w, weight_sum)


def _block_loss_grad(X, y, w, W, b, loss_id, partition):
    """(loss_sum, grad_sum (k, d + 1)) of one partition, by the per-partition backend."""
    _use_worker_threads()
    loss_sum, grad_sum = partition().loss_grad(_host(X, y, w), W, b, loss_id)
    return float(loss_sum), np.array(grad_sum, dtype=np.float64)


def _block_moments(X, w, partition):
    """(weight sum, column means, column sums of squared deviations) of one partition."""
    _use_worker_threads()
    data = _host(X, None, w)
    weight_sum = float(X.shape[0]) if w is None else float(np.sum(w))
    moments = getattr(partition(), "column_moments", None)
    if moments is not None:
        mean, var = moments(data)
    else:  # a per-partition backend without the primitive: NumPy on the block
        from .numpy_ref import NumpyBackend
        mean, var = NumpyBackend().column_moments(data)
    return weight_sum, np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64) * weight_sum


def _add_partials(*parts):
    """Sum of (loss_sum, grad_sum) partials, added left to right."""
    loss_sum, grad_sum = parts[0][0], parts[0][1].copy()
    for loss, grad in parts[1:]:
        loss_sum += loss
        grad_sum += grad
    return loss_sum, grad_sum


def _block_sgd(X, y, w, state, loss_id, partition, schedule, batch_order, rows, mean_weight):
    """Continue an SGD epoch on this partition; ``state`` = (W, b, loss_sum, steps, diverged)."""
    W, b, loss_total, steps, diverged = state
    if diverged:
        return state
    _use_worker_threads()
    W, b = W.copy(), b.copy()
    data = _host(X, y, w, mean_weight * X.shape[0])  # weight_sum / n_samples = the global mean
    schedule = dataclasses.replace(schedule, step0=schedule.step0 + steps)
    loss_sum, n_steps = partition().sgd_epoch(data, W, b, loss_id, schedule, batch_order, rows)
    return W, b, loss_total + float(loss_sum), steps + int(n_steps), n_steps < len(batch_order)


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
    partition : callable, optional
        ``partition()`` returns the backend run on each partition; called on the
        worker (the registry passes ``functools.partial(get_backend, name)``, so
        "auto" is decided where the partition lives: a GPU worker's is cuda).
        Default: :class:`fastlr.backends.cpu.CPUBackend`.
    client : distributed.Client, optional
        Defaults to the current client (``distributed.get_client()``).
    """

    name = "dask"
    accepts_sparse = False
    accepts_device_arrays = False
    has_hess_vec = False
    distributed = True

    def __init__(self, partition=None, client=None):
        self.partition = CPUBackend if partition is None else partition
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
        level = [client.submit(_block_loss_grad, xf, yf, wf, W, b, loss_id, self.partition, pure=False)
                 for xf, yf, wf in data.blocks]
        while len(level) > TREE_FAN_IN:  # inner levels of the tree run on the workers
            level = [group[0] if len(group) == 1 else client.submit(_add_partials, *group, pure=False)
                     for group in (level[i:i + TREE_FAN_IN] for i in range(0, len(level), TREE_FAN_IN))]
        return _add_partials(*_result(level, client))  # the root: on the client, in order

    def column_moments(self, data, sample_rows=None):
        """Weighted column means and variances over all partitions (one task per partition).

        ``sample_rows`` is ignored: the partitions are read whole, in one round of tasks.

        The partitions' (weight, mean, squared deviations) are merged on the
        client in partition order by the pairwise update of Chan, Golub &
        LeVeque (1979), as the CPU kernel merges its row chunks.
        """
        client = data.client
        parts = _result([client.submit(_block_moments, xf, wf, self.partition, pure=False)
                         for xf, _, wf in data.blocks], client)
        weight, mean, m2 = parts[0][0], parts[0][1].copy(), parts[0][2].copy()
        for w_b, mean_b, m2_b in parts[1:]:
            total = weight + w_b
            if w_b > 0:
                delta = mean_b - mean
                mean += delta * (w_b / total)
                m2 += m2_b + delta * delta * (weight * w_b / total)
            weight = total
        return mean, m2 / weight if weight > 0 else m2 * 0.0

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
            state = client.submit(_block_sgd, xf, yf, wf, state, loss_id, self.partition, schedule,
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
            return X.map_blocks(_block_scores, W, b, self.partition, dtype=np.float64,
                                chunks=(X.chunks[0], (W.shape[0],)))
        return self.partition().decision_function(X, W, b)


def _block_scores(X, W, b, partition):
    return partition().decision_function(X if sp.issparse(X) else np.ascontiguousarray(X), W, b)


def _loaded_dask():
    import sys

    return sys.modules.get("dask")
