"""Sparse (CSR) input: kernels against the numpy reference on scipy's sparse products,
the dense kernels on the densified matrix, the seed's loop and finite differences;
bitwise results for any thread count; lazily scaled SGD against the dense SGD;
validation of malformed CSR; the estimator end to end without densifying."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastlr
from fastlr.backends import SGDSchedule, CPUBackend, NumpyBackend, for_input
from fastlr.kernels import cpu_sparse
from reference import (assert_fits_agree, fit_gap_bound, float32_sum_bound, per_thread_count,
                       seed_loss_grad, sum_bound)

LOSSES = ["log_loss", "prob_squared"]
DTYPES = [np.float32, np.float64]
INDEX_DTYPES = [np.int32, np.int64]


def make_csr(n, d, nnz_per_row, dtype=np.float64, index_dtype=np.int32, seed=0, *,
             unsorted=True, explicit_zeros=True, duplicates=False, cls=sp.csr_matrix):
    """A random CSR matrix with (by default) shuffled indices within rows and some stored zeros."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 2 * nnz_per_row + 1, n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index_dtype)
    indices = np.empty(indptr[-1], dtype=index_dtype)
    for i in range(n):
        row = rng.choice(d, size=min(counts[i], d), replace=duplicates and counts[i] > 1)
        if len(row) < counts[i]:  # more non-zeros asked than columns: repeat columns
            row = rng.integers(0, d, counts[i])
        if not unsorted:
            row = np.sort(row)
        indices[indptr[i]:indptr[i + 1]] = row
    data = rng.standard_normal(indptr[-1])
    if explicit_zeros and len(data):
        data[rng.random(len(data)) < 0.05] = 0.0
    X = cls((data.astype(dtype), indices, indptr), shape=(n, d))
    X.indices, X.indptr = indices, indptr  # scipy would narrow int64 indices that fit in int32
    assert X.indices.dtype == index_dtype and X.dtype == dtype
    return X


def make_targets(n, d, k, weighted, seed=0):
    rng = np.random.default_rng(seed + 100)
    if k == 1:
        y, coef, intercept = rng.integers(0, 2, n), rng.standard_normal(d) * 0.5, 0.3
    else:
        y, coef, intercept = rng.integers(0, k, n), rng.standard_normal((k, d)) * 0.5, rng.standard_normal(k) * 0.1
    sw = rng.uniform(0.1, 3.0, n) if weighted else None
    return y, coef, intercept, sw


def assert_same(a, b, rtol):
    np.testing.assert_allclose(a[0], b[0], rtol=rtol)
    scale = max(np.max(np.abs(b[1])), 1e-300)
    np.testing.assert_allclose(a[1], b[1], rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(a[2], b[2], rtol=rtol, atol=rtol * scale)


# ---- kernels -------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=["int32", "int64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_cpu_matches_numpy_reference_and_dense_kernel(loss, k, dtype, index_dtype, weighted):
    X = make_csr(3000, 200, 6, dtype, index_dtype, seed=1)
    y, coef, intercept, sw = make_targets(3000, 200, k, weighted)
    assert cpu_sparse.n_blocks(X.nnz, 200) > 1  # several partial sums are combined
    cpu = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="cpu")
    ref = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="numpy")
    # both compute in float64 from the same (float32 or float64) stored values
    assert_same(cpu, ref, 1e-11)
    assert np.shape(cpu[1]) == np.shape(coef)
    dense = fastlr.loss_grad(X.toarray(), y, coef, intercept, loss=loss, sample_weight=sw, backend="cpu")
    # the dense kernel forms x·w in X's precision: float32 rounding of scores ~1e-7 relative
    assert_same(cpu, dense, 1e-5 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_matches_the_seed_loop(loss, k):
    X = make_csr(40, 7, 3, seed=2, duplicates=True)
    y, coef, intercept, sw = make_targets(40, 7, k, True, seed=2)
    got = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="cpu")
    ref = seed_loss_grad(X.toarray(), y, coef, intercept, loss=loss, sample_weight=sw)
    assert_same(got, ref, 1e-12)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_matches_finite_differences(loss, k):
    X = make_csr(60, 9, 3, seed=3)
    y, coef, intercept, sw = make_targets(60, 9, k, True, seed=3)
    intercept = np.atleast_1d(np.asarray(intercept, dtype=float))
    theta = np.concatenate([np.ravel(coef), intercept])

    def f(t):
        c = t[:-len(intercept)].reshape(np.shape(coef))
        b = t[-len(intercept):]
        return fastlr.loss_grad(X, y, c, b if k > 1 else float(b[0]), loss=loss, sample_weight=sw)

    _, g_coef, g_b = f(theta)
    grad = np.concatenate([np.ravel(g_coef), np.atleast_1d(g_b)])
    h = 1e-6
    fd = np.array([(f(theta + h * e)[0] - f(theta - h * e)[0]) / (2 * h) for e in np.eye(len(theta))])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_storage_variants_give_the_same_result():
    """Unsorted indices, explicit zeros and repeated columns mean what scipy says they mean."""
    X = make_csr(500, 30, 5, seed=4, unsorted=True, explicit_zeros=True, duplicates=True)
    y, coef, intercept, _ = make_targets(500, 30, 1, False, seed=4)
    canonical = X.copy()
    canonical.sum_duplicates()  # sorted, duplicates summed, still has no zeros removed
    canonical.eliminate_zeros()
    assert canonical.nnz < X.nnz
    a = fastlr.loss_grad(X, y, coef, intercept)
    b = fastlr.loss_grad(canonical, y, coef, intercept)
    assert_same(a, b, 1e-12)


@pytest.mark.parametrize("k", [1, 5], ids=["binary", "multinomial"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_bitwise_identical_for_one_and_two_threads(dtype, k):
    X = make_csr(20000, 300, 8, dtype, seed=5)
    y, coef, intercept, sw = make_targets(20000, 300, k, True, seed=5)
    assert cpu_sparse.n_blocks(X.nnz, 300) == cpu_sparse.MAX_BLOCKS
    results = per_thread_count(lambda: fastlr.loss_grad(X, y, coef, intercept, sample_weight=sw))
    for other in results[1:]:
        assert other[0] == results[0][0]
        np.testing.assert_array_equal(other[1], results[0][1])
        np.testing.assert_array_equal(other[2], results[0][2])


def test_partial_sums_are_bounded_and_balanced():
    """At most MAX_BLOCKS partials, whatever n; fewer when nnz is small next to d; nnz-balanced."""
    assert cpu_sparse.n_blocks(10**9, 2**20) == cpu_sparse.MAX_BLOCKS
    assert cpu_sparse.n_blocks(1000, 2**20) == 1
    assert cpu_sparse.n_blocks(0, 5) == 1
    # a power of two (splits evenly over 2^j threads), and fewer for wider k·d partials
    for nnz in (10**4, 10**5, 3 * 10**5, 10**6, 7 * 10**6):
        for d, k in ((1000, 1), (1000, 20), (100_000, 1), (100_000, 20)):
            blocks = cpu_sparse.n_blocks(nnz, d, k)
            assert blocks & (blocks - 1) == 0 and 1 <= blocks <= cpu_sparse.MAX_BLOCKS
            assert blocks == 1 or nnz // blocks >= 2 * (d + 2)  # a block's work beats its partial
            # partials hold at most nnz / 2 floats, or there are two of them
            assert blocks <= 2 or nnz // blocks >= 2 * k * (d + 2)
    assert cpu_sparse.n_blocks(7 * 10**6, 100_000, 20) < cpu_sparse.n_blocks(7 * 10**6, 100_000, 1)
    # many classes on a wide matrix still get two blocks (both sweeps on two threads) ...
    assert cpu_sparse.n_blocks(7 * 10**6, 100_000, 20) == 2
    # ... but not when the non-zeros are too few for even one more partial's bookkeeping
    assert cpu_sparse.n_blocks(300_000, 100_000, 20) == 1
    X = make_csr(10000, 50, 10, seed=6)
    bounds = cpu_sparse.block_bounds(X.indptr, 8)
    assert bounds[0] == 0 and bounds[-1] == X.shape[0] and np.all(np.diff(bounds) >= 0)
    per_block = np.diff(X.indptr[bounds])
    assert per_block.max() - per_block.min() <= 2 * 20  # within two rows of a perfect split


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_decision_function_matches_scipy(k):
    X = make_csr(700, 40, 5, np.float32, np.int64, seed=7)
    W = np.random.default_rng(7).standard_normal((k, 40))
    b = np.arange(k, dtype=float)
    got = CPUBackend().decision_function(X, W, b)
    np.testing.assert_allclose(got, X.astype(np.float64) @ W.T + b, rtol=1e-12, atol=1e-12)


# ---- SGD with lazy scaling -----------------------------------------------------------------

def _run_epoch(backend, X, y, sw, W, b, loss_id, schedule, order, rows):
    data = backend.put(X, y.astype(np.int32), sw)
    return backend.sgd_epoch(data, W, b, loss_id, schedule, order, rows)


@pytest.mark.parametrize("shuffle_rows", [False, True], ids=["batches", "rows"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_sgd_epoch_matches_dense_sgd(loss, k, weighted, shuffle_rows):
    X = make_csr(1000, 60, 5, seed=8)
    y, coef, intercept, sw = make_targets(1000, 60, k, weighted, seed=8)
    rng = np.random.default_rng(8)
    kk = 1 if k == 1 else k
    W0 = rng.standard_normal((kk, 60)) * 0.1
    b0 = rng.standard_normal(kk) * 0.1
    schedule = SGDSchedule(alpha=0.01, fit_intercept=True, eta0=0.5, power_t=0.5, step0=3, batch_size=32)
    order = rng.permutation(-(-1000 // 32))
    rows = rng.permutation(1000) if shuffle_rows else None
    loss_id = fastlr._math.LOSS_IDS[loss]
    Ws, bs = W0.copy(), b0.copy()
    Wd, bd = W0.copy(), b0.copy()
    ls, ns = _run_epoch(CPUBackend(), X, y, sw, Ws, bs, loss_id, schedule, order, rows)
    ld, nd = _run_epoch(CPUBackend(), X.toarray(), y, sw, Wd, bd, loss_id, schedule, order, rows)
    assert ns == nd == len(order)
    np.testing.assert_allclose(ls, ld, rtol=1e-10)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bs, bd, rtol=1e-9, atol=1e-12)
    # and the numpy reference on scipy's sparse rows
    Wn, bn = W0.copy(), b0.copy()
    ln, nn = _run_epoch(NumpyBackend(), X, y, sw, Wn, bn, loss_id, schedule, order, rows)
    np.testing.assert_allclose(Ws, Wn, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ls, ln, rtol=1e-10)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_sgd_epoch_with_coefficients_beyond_cache_matches_numpy_reference(k):
    """Wide enough that the epoch prefetches the next row's coefficients (a hint: same steps)."""
    d = cpu_sparse.SGD_PREFETCH_MIN_BYTES // (8 * k) + 1000
    assert k * d * 8 > cpu_sparse.SGD_PREFETCH_MIN_BYTES
    X = make_csr(300, d, 6, seed=10)
    y, _, _, sw = make_targets(300, d, k, True, seed=10)
    rng = np.random.default_rng(10)
    W0 = rng.standard_normal((k, d)) * 0.1
    b0 = rng.standard_normal(k) * 0.1
    schedule = SGDSchedule(alpha=0.01, fit_intercept=True, eta0=0.5, power_t=0.5, step0=0, batch_size=16)
    order = rng.permutation(-(-300 // 16))
    rows = rng.permutation(300)
    Ws, bs = W0.copy(), b0.copy()
    Wn, bn = W0.copy(), b0.copy()
    ls, ns = _run_epoch(CPUBackend(), X, y, sw, Ws, bs, 0, schedule, order, rows)
    ln, nn = _run_epoch(NumpyBackend(), X, y, sw, Wn, bn, 0, schedule, order, rows)
    assert ns == nn == len(order)
    np.testing.assert_allclose(ls, ln, rtol=1e-10)
    np.testing.assert_allclose(Ws, Wn, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bs, bn, rtol=1e-9, atol=1e-12)


def test_sgd_scale_renormalisation_matches_dense():
    """Strong shrinkage drives wscale below WSCALE_MIN many times within the epoch."""
    X = make_csr(400, 20, 4, seed=9)
    y, _, _, _ = make_targets(400, 20, 1, False, seed=9)
    W0 = np.ones((1, 20))
    schedule = SGDSchedule(alpha=1.9, fit_intercept=False, eta0=0.5, power_t=0.0, step0=0, batch_size=8)
    order = np.arange(50)
    Ws, Wd = W0.copy(), W0.copy()
    bs, bd = np.zeros(1), np.zeros(1)
    _run_epoch(CPUBackend(), X, y, None, Ws, bs, 0, schedule, order, None)
    _run_epoch(CPUBackend(), X.toarray(), y, None, Wd, bd, 0, schedule, order, None)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_sgd_divergence_stops_and_keeps_last_finite_coefficients(k):
    X = make_csr(300, 10, 4, seed=10) * 1e150
    y, _, _, _ = make_targets(300, 10, k, False, seed=10)
    kk = 1 if k == 1 else k
    schedule = SGDSchedule(alpha=0.0, fit_intercept=True, eta0=1e150, power_t=0.0, step0=0, batch_size=10)
    order = np.arange(30)
    Ws, bs = np.zeros((kk, 10)), np.zeros(kk)
    _, ns = _run_epoch(CPUBackend(), X, y, None, Ws, bs, 0, schedule, order, None)
    Wd, bd = np.zeros((kk, 10)), np.zeros(kk)
    _, nd = _run_epoch(CPUBackend(), X.toarray(), y, None, Wd, bd, 0, schedule, order, None)
    assert ns < len(order) and ns == nd
    assert np.all(np.isfinite(Ws)) and np.all(np.isfinite(bs))
    np.testing.assert_allclose(Ws, Wd, rtol=1e-9)
    np.testing.assert_allclose(bs, bd, rtol=1e-9)


# ---- validation ----------------------------------------------------------------------------

def _broken(what):
    X = make_csr(6, 4, 2, seed=11, explicit_zeros=False)
    data, indices, indptr = X.data.copy(), X.indices.copy(), X.indptr.copy()
    if what == "nan":
        data[1] = np.nan
    elif what == "inf":
        data[0] = -np.inf
    elif what == "negative index":
        indices[2] = -1
    elif what == "index too large":
        indices[0] = 4
    elif what == "indptr not monotone":
        indptr[3], indptr[4] = indptr[4] + 1, indptr[4]
    elif what == "indptr end":
        indptr[-1] -= 1
    bad = sp.csr_matrix(X.shape)
    bad.data, bad.indices, bad.indptr = data, indices, indptr  # bypass scipy's constructor checks
    return bad


BROKEN = {
    "nan": "NaN or infinity", "inf": "NaN or infinity", "negative index": "negative column index",
    "index too large": "out of range", "indptr not monotone": "not monotone", "indptr end": "indptr ends at",
}


@pytest.mark.parametrize("what", list(BROKEN))
def test_malformed_csr_is_a_clear_value_error(what):
    bad = _broken(what)
    y = np.array([0, 1] * 3)
    with pytest.raises(ValueError, match=BROKEN[what]):
        fastlr.loss_grad(bad, y, np.zeros(4))
    with pytest.raises(ValueError, match=BROKEN[what]):
        fastlr.LogisticRegression(backend="cpu").fit(bad, y)
    model = fastlr.LogisticRegression(backend="cpu").fit(np.eye(6, 4), y)
    with pytest.raises(ValueError, match=BROKEN[what]):
        model.predict(bad)


@pytest.mark.parametrize("what, position", [("nan", 1), ("inf", 0), ("negative index", 2),
                                            ("index too large", 0)])
def test_malformed_csr_error_names_the_row_and_column(what, position):
    bad = _broken(what)
    row = np.repeat(np.arange(bad.shape[0]), np.diff(bad.indptr))[position]  # entry -> row
    expected = (f"row {row}, column {bad.indices[position]}" if what in ("nan", "inf")
                else f"index {bad.indices[position]} in row {row}")
    with pytest.raises(ValueError, match=expected):
        fastlr.LogisticRegression(backend="cpu").fit(bad, np.array([0, 1] * 3))


def test_other_sparse_formats_and_classes_are_accepted():
    X = make_csr(200, 12, 3, seed=12)
    y = np.random.default_rng(12).integers(0, 2, 200)
    ref = fastlr.LogisticRegression(backend="cpu").fit(X, y).coef_
    for other in (sp.csr_array(X), X.tocsc(), X.tocoo(), sp.coo_array(X), X.todok()):
        np.testing.assert_allclose(fastlr.LogisticRegression(backend="cpu").fit(other, y).coef_, ref,
                                   rtol=1e-10, atol=1e-12)


def test_feature_count_mismatch_at_predict():
    X = make_csr(50, 8, 3, seed=13)
    y = np.arange(50) % 2
    model = fastlr.LogisticRegression(backend="cpu").fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(make_csr(5, 9, 3, seed=14))


def test_backend_without_sparse_support_refuses_once():
    class NoSparse:
        name = "gpu-like"

    X = make_csr(5, 3, 2, seed=15)
    with pytest.raises(ValueError, match="does not accept sparse X"):
        for_input(NoSparse(), X, "gpu-like")
    assert isinstance(for_input(NoSparse(), X, "auto"), CPUBackend)
    dense = X.toarray()
    backend = NoSparse()
    assert for_input(backend, dense, "gpu-like") is backend
    from fastlr.backends.cuda import CUDABackend
    assert CUDABackend.accepts_sparse is False


def test_cuda_backend_refuses_sparse_fit():
    X = make_csr(20, 3, 2, seed=16)
    y = np.arange(20) % 2
    try:
        est = fastlr.LogisticRegression(backend="cuda")
        with pytest.raises(ValueError, match="'cuda' backend does not accept sparse X"):
            est.fit(X, y)
    except ImportError:  # pragma: no cover - numba-cuda missing
        pytest.skip("numba-cuda not installed")
    with pytest.raises(ValueError, match="does not accept sparse X"):
        fastlr.loss_grad(X, y, np.zeros(3), backend="cuda")


# ---- the estimator end to end --------------------------------------------------------------

@pytest.fixture
def no_densify(monkeypatch):
    """Fail if anything converts a scipy.sparse matrix to a dense array."""
    def refuse(*args, **kwargs):
        raise AssertionError("X was densified")
    for name in ("toarray", "todense"):
        monkeypatch.setattr(sp._base._spbase, name, refuse)
    monkeypatch.setattr(sp._base._spbase, "__array__", refuse, raising=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_estimator_on_csr_matches_dense(n_classes, dtype):
    X = make_csr(600, 25, 4, dtype, seed=17)
    Xd = X.toarray()
    rng = np.random.default_rng(17)
    y = np.array(["a", "b", "c"])[rng.integers(0, n_classes, 600)]
    sw = rng.uniform(0.5, 2.0, 600)
    # the dense kernel's float32 scores make F noisy at ~1e-7 relative: L-BFGS's line search
    # stalls with max|∇F| of a few 1e-6 (measured 2e-6 to 5e-6), so float32 asks what it can reach
    tol = 2e-5 if dtype == np.float32 else 1e-8
    dense = fastlr.LogisticRegression(backend="cpu", tol=tol, max_iter=500).fit(Xd, y, sample_weight=sw)
    sparse = fastlr.LogisticRegression(backend="cpu", tol=tol, max_iter=500).fit(X, y, sample_weight=sw)
    # two fits of one F (the float32 dense one with float32 scores): as close as their float64
    # reference gradients and F's strong convexity allow, on any CPU
    pa, pb = assert_fits_agree(sparse, dense, X, y, sample_weight=sw, tol=tol, tol_b=tol)
    # so every score differs by at most ‖(x_i, 1)‖₂ ‖Δθ‖₂, plus the scores' own rounding
    # (float32 in the dense kernel: float32_sum_bound; float64 in the sparse one)
    row_norm = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel() + 1).max()
    abs_scores = np.abs(Xd.astype(np.float64)) @ np.abs(dense.coef_).T + np.abs(dense.intercept_)
    rounding = (float32_sum_bound if dtype == np.float32 else sum_bound)(abs_scores, Xd.shape[1] + 2).max()
    gap_z = 2 * row_norm * fit_gap_bound([pa, pb]) + 2 * rounding
    # |Δ decision| ≤ gap_z, |Δp| ≤ gap_z / 2, |Δ log p| ≤ 2 gap_z (softmax/sigmoid Lipschitz)
    for method, atol in (("decision_function", gap_z), ("predict_proba", gap_z),
                         ("predict_log_proba", 2 * gap_z)):
        np.testing.assert_allclose(getattr(sparse, method)(X), getattr(dense, method)(Xd), rtol=0, atol=atol)
    # one model, CSR vs dense rows: the same coefficients, scores rounded differently only
    for method, atol in (("decision_function", 2 * rounding), ("predict_proba", 2 * rounding),
                         ("predict_log_proba", 4 * rounding)):
        np.testing.assert_allclose(getattr(dense, method)(X), getattr(dense, method)(Xd), rtol=0, atol=atol)
    np.testing.assert_array_equal(dense.predict(X), dense.predict(Xd))
    assert sparse.score(X, y) == pytest.approx(dense.score(Xd, y), abs=2 / 600)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
def test_fit_predict_never_densify(no_densify, solver):
    X = make_csr(300, 15, 4, seed=18)
    y = np.arange(300) % 3
    model = fastlr.LogisticRegression(backend="cpu", solver=solver, max_iter=5, tol=None,
                                      random_state=0).fit(X, y)
    model.partial_fit(X, y)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        assert getattr(model, method)(X).shape[0] == 300
    assert 0 <= model.score(X, y) <= 1
    fastlr.loss_grad(X, y, model.coef_, model.intercept_)


def test_numpy_backend_fits_csr_like_cpu():
    X = make_csr(400, 20, 4, seed=19)
    y = np.arange(400) % 2
    a = fastlr.LogisticRegression(backend="cpu", tol=1e-8).fit(X, y)
    b = fastlr.LogisticRegression(backend="numpy", tol=1e-8).fit(X, y)
    assert_fits_agree(a, b, X, y, tol=1e-8, tol_b=1e-8)


@pytest.mark.parametrize("shuffle", [False, True, "rows"])
def test_partial_fit_across_chunks_matches_dense(shuffle):
    X = make_csr(900, 30, 5, seed=20)
    y = np.random.default_rng(20).integers(0, 3, 900)
    kw = dict(backend="cpu", batch_size=16, shuffle=shuffle, random_state=0, learning_rate="invscaling")
    sparse, dense = fastlr.LogisticRegression(**kw), fastlr.LogisticRegression(**kw)
    for start in range(0, 900, 300):
        sparse.partial_fit(X[start:start + 300], y[start:start + 300], classes=[0, 1, 2])
        dense.partial_fit(X[start:start + 300].toarray(), y[start:start + 300], classes=[0, 1, 2])
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-9, atol=1e-12)
    assert sparse.t_ == dense.t_
