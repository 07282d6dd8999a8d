"""fastlr on Dask: real dask.distributed LocalClusters with worker processes, no mocks.

Every fit is compared with the single-machine fit on the same data (NumPy arrays).
Worker processes import the same fastlr as this process: the fixtures put its
parent directory on the workers' PYTHONPATH (harmless when fastlr is pip-installed).
"""

import os
import pathlib
import signal
import time

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import fastlr  # noqa: E402
from fastlr import LogisticRegression  # noqa: E402
from fastlr.backends import CPUBackend, SGDSchedule  # noqa: E402
from fastlr.backends import DaskBackend, DaskFitError  # noqa: E402
from fastlr._math import LOG  # noqa: E402
from reference import assert_fits_agree  # noqa: E402

FASTLR_PARENT = str(pathlib.Path(fastlr.__file__).resolve().parent.parent)


def _worker_env():
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": FASTLR_PARENT + (os.pathsep + path if path else "")}


def _cluster(n_workers=2, **kwargs):
    return distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        env=_worker_env(), **kwargs)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        yield c


def make_data(n=8000, d=8, k=2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((k, d))
    Z = X @ W.T + rng.gumbel(size=(n, k))
    y = np.argmax(Z, axis=1)
    return X, y


def chunked(X, y, rows=2000, w=None):
    out = [da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)]
    if w is not None:
        out.append(da.from_array(w, chunks=rows))
    return out


def assert_same_model(model, ref, rtol=1e-6):
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_array_equal(model.classes_, ref.classes_)


def assert_same_fit(model, ref, X, y, tol, sample_weight=None):
    """Two L-BFGS fits of one problem to ``max|∇F| ≤ tol``: each meets tol on the float64
    reference gradient, and they agree to what their gradients and F's strong convexity allow
    (tests/reference.py), whatever the summation order of the CPU or the partitioning."""
    np.testing.assert_array_equal(model.classes_, ref.classes_)
    assert_fits_agree(model, ref, X, y, sample_weight=sample_weight, tol=tol, tol_b=tol)


# -- fit equals the single-machine fit ------------------------------------------------------

@pytest.mark.parametrize("k", [2, 4], ids=["binary", "multinomial"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_lbfgs_equals_single_machine(client, k, weighted):
    X, y = make_data(k=k, seed=k)
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y)) if weighted else None
    ref = LogisticRegression(C=0.5, tol=1e-8, solver="lbfgs").fit(X, y, sample_weight=w)
    parts = chunked(X, y, w=w)
    model = LogisticRegression(C=0.5, tol=1e-8, solver="lbfgs").fit(*parts[:2], sample_weight=parts[2] if weighted else None)
    assert model.backend_ == "dask"
    # float64 partial sums in another order: both stop at max|grad F| <= 1e-8, F strongly
    # convex, so each is within ‖∇F‖ / μ of the optimum
    assert_same_fit(model, ref, X, y, 1e-8, sample_weight=w)
    # the sums differ in the last bits only: the L-BFGS paths agree until the stopping test
    assert abs(model.n_iter_ - ref.n_iter_) <= 1


def test_float32_uneven_and_empty_chunks_numpy_labels_class_weight(client):
    X, y = make_data(n=7001, k=3, seed=3, dtype=np.float32)
    labels = np.array(["cat", "dog", "emu"])[y]
    # tol: what float32 scores let L-BFGS reach (below ~5e-6 its line search stalls on the
    # float32 rounding of F, at a point that depends on the summation order)
    tol = 2e-5
    ref = LogisticRegression(tol=tol, class_weight="balanced").fit(X, labels)
    Xd = da.from_array(X, chunks=((3000, 1, 0, 2500, 1500), (4, 4)))  # uneven, empty; 2 column chunks
    model = LogisticRegression(tol=tol, class_weight="balanced").fit(Xd, labels)
    # float32 scores: the partitions' sums differ from the single-machine sums by float32
    # rounding, in an order that depends on the CPU's vector width, so the two fits are not
    # bit-equal on every machine. Both stop at max|grad F| <= tol and F is strongly convex
    # (μ ≥ alpha = 1/n), so each is within ||grad|| / μ of the optimum; their objectives agree
    # to about ||grad||^2 / μ (checked by assert_fits_agree on the float64 reference F).
    assert_same_fit(model, ref, X, labels, tol, sample_weight=compute_sample_weight("balanced", y))
    assert model.classes_.tolist() == ["cat", "dog", "emu"]
    # float32 X: float32 probabilities, declared lazily and computed, as on one machine; the
    # empty chunk gives no rows (its block raised scikit-learn's "0 sample(s)" error before)
    for method in ("predict_proba", "predict_log_proba", "decision_function", "predict"):
        lazy = getattr(model, method)(Xd)
        local = getattr(model, method)(X)
        assert lazy.dtype == local.dtype == (labels.dtype if method == "predict" else np.float32)
        computed = lazy.compute()
        assert computed.dtype == local.dtype and computed.shape == local.shape
        if method == "predict":
            np.testing.assert_array_equal(computed, local)
        else:
            # the blocks' scores may come from the serial kernel, summed in another order on
            # some CPU: float64 rounding of at most ~d·eps·Σ|x_j w_j| (~1e-14 here, an absolute
            # bound that matters for a score near 0), then one float32 rounding (2^-24 each)
            np.testing.assert_allclose(computed, local, rtol=2 ** -22, atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gd_and_numpy_kernel_equal_single_machine(client):
    X, y = make_data(seed=5)
    Xd, yd = chunked(X, y)
    opts = dict(solver="gd", learning_rate="constant", eta0=0.5, max_iter=15, tol=None)
    ref = LogisticRegression(**opts).fit(X, y)
    assert_same_model(LogisticRegression(**opts).fit(Xd, yd), ref, rtol=1e-10)
    # backend= names the per-partition kernel: the NumPy reference on every worker
    model = LogisticRegression(backend="numpy", tol=1e-8).fit(Xd, yd)
    assert_same_fit(model, LogisticRegression(tol=1e-8).fit(X, y), X, y, 1e-8)


@pytest.mark.parametrize("rows, parts", [(1500, 6), (390, 21)], ids=["root-only", "two-level-tree"])
def test_loss_grad_sums_match_cpu_backend(client, rows, parts):
    X, y = make_data(k=3, seed=7)
    Xd, yd = chunked(X, y, rows=rows)
    backend = DaskBackend()
    data = backend.put(Xd, yd.astype(np.int32))
    assert data.n_partitions == parts and data.n_samples == len(y)
    W, b = np.random.default_rng(0).standard_normal((3, 8)), np.array([0.1, -0.2, 0.3])
    loss, grad = backend.loss_grad(data, W, b, LOG)
    ref_loss, ref_grad = CPUBackend().loss_grad(CPUBackend().put(X, y.astype(np.int32)), W, b, LOG)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-9)
    # deterministic: the same partitioning gives the same bits every time
    loss2, grad2 = backend.loss_grad(data, W, b, LOG)
    assert loss2 == loss and np.array_equal(grad2, grad)


# -- dask arrays of scipy.sparse CSR blocks ------------------------------------------------------

def make_sparse(n=8000, d=40, k=2, seed=0, density=0.1, fmt="csr", dtype=np.float64):
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    X.data = rng.standard_normal(X.nnz)
    W = rng.standard_normal((k, d))
    y = np.argmax(np.asarray(X @ W.T) + rng.gumbel(size=(n, k)), axis=1)
    return X.asformat(fmt).astype(dtype), y


def sparse_chunked(X, y, rows=2000):
    return da.from_array(X, chunks=(rows, X.shape[1]), asarray=False), da.from_array(y, chunks=rows)


@pytest.mark.parametrize("k", [2, 3], ids=["binary", "multinomial"])
def test_csr_blocks_lbfgs_equals_single_machine(client, k):
    import scipy.sparse as sp
    X, y = make_sparse(k=k, seed=20 + k)
    Xd, yd = sparse_chunked(X, y)
    assert sp.issparse(Xd._meta)
    ref = LogisticRegression(C=0.5, tol=1e-8).fit(X, y)
    model = LogisticRegression(C=0.5, tol=1e-8).fit(Xd, yd)
    assert model.backend_ == "dask"
    # as for dense blocks: both stop at max|grad F| <= 1e-8, F is 1/(C n)-strongly convex
    assert_same_model(model, ref, rtol=1e-4)
    # the blocks the workers hold are CSR, never densified
    data = DaskBackend().put(Xd.map_blocks(lambda b: b, dtype=Xd.dtype, meta=Xd._meta),
                             yd.astype(np.int32))
    kinds = data.client.gather([data.client.submit(sp.isspmatrix_csr, xf) for xf, _, _ in data.blocks])
    assert all(kinds) and len(kinds) == 4


def test_csr_blocks_sgd_unshuffled_equals_single_machine(client):
    X, y = make_sparse(seed=31)
    Xd, yd = sparse_chunked(X, y)
    opts = dict(solver="sgd", batch_size=250, shuffle=False, max_iter=3, tol=None, eta0=0.05)
    ref = LogisticRegression(**opts).fit(X, y)
    model = LogisticRegression(**opts).fit(Xd, yd)
    # The same lazily scaled sparse SGD kernel over the same batches, one partition after the
    # other; but each partition starts from W = wscale * V written back (one rounding per
    # coefficient, 12 times in 3 epochs x 4 partitions) where one machine keeps wscale running:
    # not bit for bit, a few ulps (SGD with a small constant step does not amplify them).
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-12, atol=1e-15)
    assert model.t_ == ref.t_


def test_csr_blocks_predict_lazily_like_single_machine(client):
    X, y = make_sparse(k=3, seed=41)
    Xd, yd = sparse_chunked(X, y)
    model = LogisticRegression(tol=1e-8).fit(X, y)
    proba = model.predict_proba(Xd)
    assert isinstance(proba, da.Array)
    # row by row the same scores (each row's dot product does not depend on the blocking)
    np.testing.assert_array_equal(proba.compute(), model.predict_proba(X))
    np.testing.assert_array_equal(model.predict(Xd).compute(), model.predict(X))


def test_csc_and_float32_blocks_are_converted_to_csr(client):
    X, y = make_sparse(seed=51, dtype=np.float32)
    csr = LogisticRegression(tol=2e-5).fit(*sparse_chunked(X, y))
    csc = LogisticRegression(tol=2e-5).fit(*sparse_chunked(X.tocsc(), y))
    # CSC blocks become the same CSR blocks on the workers: the same arithmetic, the same model
    np.testing.assert_array_equal(csc.coef_, csr.coef_)
    assert csr.coef_.dtype == np.float64


def test_csr_blocks_bad_values_are_named(client):
    X, y = make_sparse(seed=61)
    X.data[123] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        LogisticRegression().fit(*sparse_chunked(X, y))


# -- SGD over partitions ------------------------------------------------------------------------

def test_sgd_unshuffled_equals_single_machine(client):
    X, y = make_data(seed=11)
    Xd, yd = chunked(X, y, rows=2000)
    opts = dict(solver="sgd", batch_size=250, shuffle=False, max_iter=3, tol=None, eta0=0.05)
    ref = LogisticRegression(**opts).fit(X, y)
    model = LogisticRegression(**opts).fit(Xd, yd)
    np.testing.assert_array_equal(model.coef_, ref.coef_)
    np.testing.assert_array_equal(model.intercept_, ref.intercept_)
    assert model.t_ == ref.t_ == 3 * 32


@pytest.mark.parametrize("k", [2, 3], ids=["binary", "multinomial"])
def test_sgd_shuffled_equals_reference_epochs(client, k):
    """Each epoch = the single-machine epoch over the trainer's batch permutation grouped by partition."""
    X, y = make_data(k=k, seed=13)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    rows, bs, epochs, C = 2000, 250, 3, 2.0
    Xd, yd, wd = chunked(X, y, rows=rows, w=w)
    model = LogisticRegression(solver="sgd", batch_size=bs, max_iter=epochs, tol=None, C=C,
                               eta0=0.05, learning_rate="invscaling", power_t=0.25,
                               random_state=0).fit(Xd, yd, sample_weight=wd)
    # reference: CPUBackend.sgd_epoch on the concatenated data, batch order regrouped
    cpu = CPUBackend()
    data = cpu.put(X, y.astype(np.int32), w)
    kk = 1 if k == 2 else k
    W, b = np.zeros((kk, X.shape[1])), np.zeros(kk)
    rng = np.random.RandomState(0)
    n_batches, step = len(y) // bs, 0
    for _ in range(epochs):
        order = rng.permutation(n_batches)
        part = order * bs // rows
        first_seen = {p: i for i, p in reversed(list(enumerate(part)))}
        grouped = order[np.argsort([first_seen[p] for p in part], kind="stable")]
        schedule = SGDSchedule(1.0 / (C * w.sum()), True, 0.05, 0.25, step, bs)
        _, n_steps = cpu.sgd_epoch(data, W, b, LOG, schedule, grouped)
        step += n_steps
    np.testing.assert_array_equal(model.coef_, W)
    np.testing.assert_array_equal(model.intercept_, b)
    assert model.t_ == step


def test_sgd_rows_shuffle_ragged_and_empty_partitions_run(client):
    X, y = make_data(n=5003, seed=17)
    Xd = da.from_array(X, chunks=((1700, 0, 1700, 1603), (8,)))
    for shuffle in (True, "rows"):
        model = LogisticRegression(solver="sgd", shuffle=shuffle, max_iter=5, tol=None,
                                   random_state=1).fit(Xd, y)
        assert model.t_ == 5 * sum(-(-c // 256) for c in Xd.chunks[0])
        assert model.score(X, y) > 0.8


# -- prediction, DataFrames, errors ---------------------------------------------------------

def test_predict_is_lazy_and_equals_single_machine(client):
    X, y = make_data(k=3, seed=19)
    model = LogisticRegression().fit(*chunked(X, y))
    # the same model's in-process predictions: the same coefficients, scores summed in
    # float64 in another order, so they agree to float64 rounding. (Comparing with a second,
    # in-process fit at the default tol=1e-4 would compare two different stopping points.)
    ref = model
    Xd = da.from_array(X, chunks=(3000, 8))
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        out = getattr(model, method)(Xd)
        assert isinstance(out, da.Array), method
        assert out.chunks[0] == Xd.chunks[0]
        np.testing.assert_allclose(out.compute(), getattr(ref, method)(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.predict(Xd).compute(), ref.predict(X))
    assert_same_fit(LogisticRegression(tol=1e-8).fit(*chunked(X, y)), LogisticRegression(tol=1e-8).fit(X, y),
                    X, y, 1e-8)
    # a later fit does not change an earlier lazy result
    lazy = model.predict_proba(Xd)
    before = lazy.compute()
    model.fit(*chunked(X[:, ::-1].copy(), y))
    np.testing.assert_array_equal(lazy.compute(), before)
    # NumPy input after a dask fit: the ordinary in-process path
    np.testing.assert_allclose(model.predict_proba(X[:, ::-1]), before, rtol=1e-6, atol=1e-8)


def test_dask_dataframe_input(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = make_data(seed=23)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["label"] = np.where(y == 1, "yes", "no")
    ddf = dd.from_pandas(frame, npartitions=3)
    ref = LogisticRegression(tol=1e-8).fit(frame.drop(columns="label"), frame["label"])
    model = LogisticRegression(tol=1e-8).fit(ddf.drop(columns="label"), ddf["label"])
    assert_same_fit(model, ref, X, frame["label"].to_numpy(), 1e-8)
    assert list(model.feature_names_in_) == list(ref.feature_names_in_)
    pred = model.predict(ddf.drop(columns="label"))
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), ref.predict(frame.drop(columns="label")))


def test_dask_dataframe_from_parquet(client, tmp_path):
    """The README's example: a DataFrame read from parquet files, its label column alone.

    dask's optimiser reads the one label column in fewer partitions than the whole frame
    (dask issue 12411: to_dask_array(lengths=True) on it raised before fastlr optimised it)."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = make_data(n=8000, seed=29)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["label"] = y
    for i in range(4):
        frame.iloc[i * 2000:(i + 1) * 2000].to_parquet(tmp_path / f"part{i}.parquet")
    ddf = dd.read_parquet(str(tmp_path / "*.parquet"))
    ref = LogisticRegression(tol=1e-8).fit(frame.drop(columns="label"), frame["label"])
    model = LogisticRegression(tol=1e-8).fit(ddf.drop(columns="label"), ddf["label"])
    assert model.backend_ == "dask"
    assert_same_fit(model, ref, X, y, 1e-8)
    np.testing.assert_allclose(model.predict_proba(ddf.drop(columns="label")).compute(),
                               ref.predict_proba(frame.drop(columns="label")), rtol=1e-6, atol=1e-8)


def test_bad_input_errors(client):
    X, y = make_data(n=4000, seed=29)
    X_nan = X.copy()
    X_nan[3100, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        LogisticRegression().fit(*chunked(X_nan, y))
    with pytest.raises(ValueError, match="NaN or infinity"):
        LogisticRegression(solver="sgd").fit(*chunked(X_nan, y))
    with pytest.raises(ValueError, match="sample_weight"):
        LogisticRegression().fit(*chunked(X, y), sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(*chunked(X, np.zeros(len(y), dtype=int)))
    with pytest.raises(ValueError, match="4000 rows"):
        LogisticRegression().fit(chunked(X, y)[0], y[:-1])
    with pytest.raises(ValueError, match="2D"):
        LogisticRegression().fit(da.from_array(X[:, 0], chunks=1000), y)
    model = LogisticRegression().fit(*chunked(X, y))
    with pytest.raises(ValueError, match="features"):
        model.predict(da.from_array(X[:, :3], chunks=1000))
    with pytest.raises(ValueError, match="dask collections"):  # backend="dask" with NumPy X
        LogisticRegression(backend="dask").fit(X, y)


# -- faults: a worker killed in the middle of a fit ---------------------------------------------

def _kill_on_call(monkeypatch, client, call):
    """Make the ``call``-th DaskBackend.loss_grad kill the worker holding the first block, then run."""
    original = DaskBackend.loss_grad
    calls, killed = [0], []

    def loss_grad(self, data, W, b, loss_id):
        calls[0] += 1
        if calls[0] == call:
            holders = client.who_has([data.blocks[0][0]])[data.blocks[0][0].key]
            pids = client.run(os.getpid, workers=list(holders))
            for addr, pid in pids.items():  # SIGKILL, as the kernel's OOM killer would
                os.kill(pid, signal.SIGKILL)
                killed.append(addr)
            time.sleep(0.2)
        return original(self, data, W, b, loss_id)

    monkeypatch.setattr(DaskBackend, "loss_grad", loss_grad)
    return killed


@pytest.fixture(scope="module")
def fault_client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.slow
def test_worker_killed_mid_fit_recomputes_and_finishes(fault_client, monkeypatch):
    X, y = make_data(k=3, seed=31)
    ref = LogisticRegression(tol=1e-8).fit(X, y)
    killed = _kill_on_call(monkeypatch, fault_client, call=3)
    model = LogisticRegression(tol=1e-8).fit(*chunked(X, y))  # blocks have a graph: recomputed
    assert killed, "no worker was killed"
    assert_same_fit(model, ref, X, y, 1e-8)
    fault_client.wait_for_workers(2, timeout=60)


@pytest.mark.slow
def test_worker_killed_mid_fit_without_lineage_raises(fault_client, monkeypatch):
    """Scattered blocks have no task graph: losing them is a DaskFitError, never a wrong model."""
    X, y = make_data(seed=37)
    fault_client.wait_for_workers(2, timeout=60)
    workers = list(fault_client.scheduler_info()["workers"])
    blocks = [fault_client.scatter(X[i:i + 2000], workers=[workers[i // 2000 % 2]]) for i in range(0, 8000, 2000)]
    Xd = da.concatenate([da.from_delayed(f, shape=(2000, 8), dtype=X.dtype) for f in blocks])
    model = LogisticRegression(tol=1e-8)
    killed = _kill_on_call(monkeypatch, fault_client, call=3)
    with pytest.raises(DaskFitError, match="lost work"):
        model.fit(Xd, da.from_array(y, chunks=2000))
    assert killed
    assert not hasattr(model, "coef_")
    fault_client.wait_for_workers(2, timeout=60)


# -- data larger than a worker's memory limit -----------------------------------------------------

@pytest.mark.slow
def test_fit_on_data_larger_than_worker_memory_spills_to_disk():
    """A 1-worker cluster with a 64 MiB limit fits 96 MB of X: blocks live on disk between passes.

    The data are generated on the worker, block by block (dask's seeded random arrays),
    as data too large for the client would be read from storage.
    """
    n, d, rows = 150_000, 80, 10_000  # X: 96 MB of float64
    limit = 64 * 2**20
    # spill by managed memory only (target 0.5 of the limit); never pause or kill for RSS,
    # which the worker's own imports (numba, scipy, sklearn) already exceed at this limit
    config = {"distributed.worker.memory.target": 0.5, "distributed.worker.memory.spill": False,
              "distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": False}
    with dask.config.set(config), _cluster(n_workers=1, memory_limit=limit) as cluster, \
            distributed.Client(cluster) as client:
        rng = da.random.default_rng(41)
        Xd = rng.standard_normal((n, d), chunks=(rows, d))
        w = np.random.default_rng(0).standard_normal(d) / np.sqrt(d)
        yd = (Xd @ w + rng.logistic(size=n, chunks=rows) > 0).astype(np.int64)
        Xd, yd = client.persist([Xd, yd])
        distributed.wait([Xd, yd])
        model = LogisticRegression(tol=1e-6).fit(Xd, yd)
        stats = client.run(lambda dask_worker: (
            dask_worker.memory_manager.memory_limit,
            dask_worker.data.spilled_total.disk,
            dict(dask_worker.data.cumulative_metrics)))
        X, y = dask.compute(Xd, yd)
    (mem_limit, spilled, metrics), = stats.values()
    assert mem_limit == limit and X.nbytes > limit
    assert spilled > X.nbytes // 2
    assert metrics[("disk-read", "bytes")] > model.n_iter_[0] * X.nbytes // 2  # every pass read from disk
    assert_same_fit(model, LogisticRegression(tol=1e-6).fit(X, y), X, y, 1e-6)


def test_balanced_class_weight_counts_sample_weights_on_dask_too(client):
    X, y = make_data(n=3000, k=3, seed=31)
    w = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    ref = LogisticRegression(tol=1e-8, class_weight="balanced").fit(X, y, sample_weight=w)
    Xd, yd, wd = chunked(X, y, rows=1000, w=w)
    model = LogisticRegression(tol=1e-8, class_weight="balanced").fit(Xd, yd, sample_weight=wd)
    balanced = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=w)
    assert_same_fit(model, ref, X, y, 1e-8, sample_weight=balanced[y] * w)
    with pytest.raises(ValueError, match="match no class"):
        LogisticRegression(class_weight={0: 1.0, 7: 2.0}).fit(Xd, yd)


def test_partial_fit_refuses_dask_collections(client):
    X, y = make_data(n=400, seed=32)
    Xd, yd = chunked(X, y, rows=100)
    model = LogisticRegression()
    with pytest.raises(TypeError, match="partial_fit does not take dask"):
        model.partial_fit(Xd, yd, classes=[0, 1])
    assert not hasattr(model, "coef_")
