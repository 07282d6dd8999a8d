"""Helpers shared by the Dask suite (``bench_dask.py``) and ``benchmarks/dask_compare.py``.

Nothing here is a benchmark. dask, distributed and dask-ml are imported inside the
functions, so this module imports without them.

Same objective
--------------
dask-glm (behind ``dask_ml.linear_model.LogisticRegression``) minimises
``Σ_i loss_i + (1/C) ½‖β‖²`` and, with ``fit_intercept=True``, appends a column of
ones to X whose coefficient is part of β, so it penalises the intercept; fastlr (like
scikit-learn) minimises ``C Σ_i loss_i + ½‖w‖²`` with the intercept unpenalised. Both
are therefore fitted with ``fit_intercept=False`` (the labels come from a model
without intercept), where the two objectives are the same up to the factor C, and
every solution is scored by the same NumPy code, ``fastlr.peers.objective``. Their
stopping rules are matched too: fastlr stops when the largest gradient component of
the *mean* objective ``F / (C n)`` is ≤ ``tol``, dask-glm (scipy's ``pgtol``) when
that of ``F / C`` is, so dask-ml gets ``tol × n``.

Bytes moved
-----------
:func:`install_byte_counter` wraps ``distributed.comm.tcp.TCP.write`` (which returns
the bytes it wrote) in the process it runs in; run in this process (where a
LocalCluster's client, scheduler and nannies live) and, by ``client.run``, in every
worker, :func:`cluster_bytes` is every byte written to a TCP socket by the cluster:
worker↔worker, worker↔scheduler and client↔scheduler traffic, heartbeats included.
:class:`EvalBytes` reads it around each loss-and-gradient evaluation (fastlr's
``DaskBackend.loss_grad``; dask-glm's closure handed to scipy), less the traffic of
the reading itself.
"""

import os
import sys
import time

import numpy as np

#: Inverse L2 strength of every fit.
C = 1.0


def _pickle_by_value():
    """Send this module's functions to workers by value: workers cannot import the suites."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def install_byte_counter():
    """Count the bytes of every TCP write made by distributed in this process."""
    import distributed.comm.tcp as tcp

    if getattr(tcp.TCP, "_fastlr_counted", False):
        return True
    original = tcp.TCP.write

    async def write(self, msg, serializers=None, on_error="message"):
        n = await original(self, msg, serializers=serializers, on_error=on_error)
        tcp._fastlr_bytes_written += n
        return n

    tcp._fastlr_bytes_written = 0
    tcp.TCP.write = write
    tcp.TCP._fastlr_counted = True
    return True


def bytes_written():
    import distributed.comm.tcp as tcp

    return getattr(tcp, "_fastlr_bytes_written", 0)


def cluster_bytes(client):
    """Bytes written to TCP sockets so far by this process and every worker."""
    _pickle_by_value()
    return bytes_written() + sum(client.run(bytes_written).values())


def local_cluster(n_workers, memory_limit="4GiB"):
    """A LocalCluster of ``n_workers`` one-thread worker processes that import what we import."""
    import distributed

    _pickle_by_value()
    return distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        memory_limit=memory_limit, env={"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})


def make_data(n, d, chunks, seed=0):
    """A binary problem as lazy dask arrays, generated block by block where it is computed.

    float64 X (n, d) of standard normals in ``chunks`` row blocks; ``y = [x·w* + ε > 0]``
    with logistic noise, no intercept. Deterministic: the same data on any cluster.
    """
    import dask.array as da

    rows = -(-n // chunks)
    rng = da.random.default_rng(seed)
    X = rng.standard_normal((n, d), chunks=(rows, d))
    w = 2.0 * np.random.default_rng(seed).standard_normal(d) / np.sqrt(d)
    y = (X @ w + rng.logistic(size=n, chunks=rows) > 0).astype(np.int64)
    return X, y


def reference_objective(X, y):
    """F* = the objective of a tight single-machine fit (scikit-learn lbfgs, tol 1e-10)."""
    from sklearn.linear_model import LogisticRegression

    from fastlr.peers import objective

    model = LogisticRegression(C=C, tol=1e-10, max_iter=1000, fit_intercept=False).fit(X, y)
    return objective(X, y, model.coef_, 0.0, C)


class EvalBytes:
    """Wraps a loss-and-gradient function to count the cluster's TCP bytes during each call.

    The counter is read (by ``client.run``) just before and just after each call; the
    traffic of one bare reading pair, measured by :meth:`calibrate`, is subtracted.
    """

    def __init__(self, client):
        self.client = client
        self.per_call = []
        self.overhead = 0.0

    def calibrate(self, repeat=5):
        deltas = []
        for _ in range(repeat):
            b0 = cluster_bytes(self.client)
            deltas.append(cluster_bytes(self.client) - b0)
        self.overhead = float(np.median(deltas))

    def wrap(self, func):
        def counted(*args, **kwargs):
            b0 = cluster_bytes(self.client)
            out = func(*args, **kwargs)
            self.per_call.append(cluster_bytes(self.client) - b0 - self.overhead)
            return out

        return counted

    @property
    def median(self):
        return float(np.median(self.per_call)) if self.per_call else float("nan")


def fit_fastlr(X, y, tol, counter=None):
    """fastlr on the dask arrays: (seconds, coef (d,), iterations, loss_grad evaluations).

    ``counter`` (an :class:`EvalBytes`): count the bytes of every evaluation too
    (which slows the fit: time it without).
    """
    import fastlr
    from fastlr.backends import DaskBackend

    calls = [0]
    original = DaskBackend.loss_grad
    inner = original if counter is None else counter.wrap(original)

    def counted(self, *args):
        calls[0] += 1
        return inner(self, *args)

    DaskBackend.loss_grad = counted
    try:
        model = fastlr.LogisticRegression(C=C, tol=tol, max_iter=1000, fit_intercept=False)
        start = time.perf_counter()
        model.fit(X, y)
        runtime = time.perf_counter() - start
    finally:
        DaskBackend.loss_grad = original
    return runtime, model.coef_.ravel(), int(np.max(model.n_iter_)), calls[0]


def fit_daskml(X, y, tol, counter=None):
    """dask-ml's lbfgs, same objective and stopping rule: (seconds, coef, iterations, evaluations).

    dask-glm hands its loss-and-gradient closure to scipy's ``fmin_l_bfgs_b``, which is
    wrapped here to read scipy's counts (and, with ``counter``, to count bytes per call).
    """
    import dask_glm.algorithms as algorithms
    from dask_ml.linear_model import LogisticRegression

    info = {}
    original = algorithms.fmin_l_bfgs_b

    def recorded(func, *args, **kwargs):
        out = original(func if counter is None else counter.wrap(func), *args, **kwargs)
        info.update(out[2])
        return out

    algorithms.fmin_l_bfgs_b = recorded
    try:
        model = LogisticRegression(C=C, solver="lbfgs", tol=tol * X.shape[0], max_iter=1000,
                                   fit_intercept=False)
        start = time.perf_counter()
        model.fit(X, y)
        runtime = time.perf_counter() - start
    finally:
        algorithms.fmin_l_bfgs_b = original
    return runtime, np.asarray(model.coef_).ravel(), int(info.get("nit", -1)), int(info.get("funcalls", -1))


FITTERS = {"fastlr-dask": fit_fastlr, "dask-ml": fit_daskml}


def payload_bytes_per_eval(n_partitions, d, k=1, fan_in=None):
    """fastlr's own payload per loss_grad: W, b to every partition; partials up the tree.

    Counts array bytes only (8 per float64), not the task messages around them.
    """
    from fastlr.backends.dask_cluster import TREE_FAN_IN

    fan_in = fan_in or TREE_FAN_IN
    out = n_partitions * 8 * k * (d + 1)
    partial = 8 * (k * (d + 1) + 1)
    level, back = n_partitions, 0
    while level > fan_in:  # inner tree nodes: partials travel to the node's worker (at most)
        back += level * partial
        level = -(-level // fan_in)
    return out, back + level * partial
