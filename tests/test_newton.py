"""Newton-CG: Hessian-vector kernels against the NumPy reference and finite differences,
and fits against scikit-learn's objective on ill-conditioned data."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from fastlr import LogisticRegression
from fastlr.backends import CPUBackend, NumpyBackend
from fastlr.kernels.cpu import CHUNK_ROWS
from fastlr.trainer import Objective, TrainOptions, train
from fastlr._math import LOG
from reference import assert_fits_agree, per_thread_count

DTYPES = [np.float32, np.float64]


def make_direction(n, d, k, dtype, weighted, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, max(k, 2), n).astype(np.int32)
    sw = rng.uniform(0.1, 3.0, n) if weighted else None
    W = rng.standard_normal((k, d)) * 0.5
    b = rng.standard_normal(k) * 0.3
    V = rng.standard_normal((k, d))
    vb = rng.standard_normal(k)
    return X, y, sw, W, b, V, vb


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(1, 3), (7, 1), (2 * CHUNK_ROWS + 13, 6)], ids=lambda s: f"n={s[0]},d={s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 3, 6], ids=["binary", "k=3", "k=6"])
def test_cpu_hess_vec_matches_numpy_reference(k, dtype, shape, weighted):
    X, y, sw, W, b, V, vb = make_direction(*shape, k, dtype, weighted)
    cpu, ref = CPUBackend(), NumpyBackend()
    got = cpu.hess_vec(cpu.put(X, y, sw), W, b, LOG, V, vb)
    want = ref.hess_vec(ref.put(X, y, sw), W, b, LOG, V, vb)
    # float32 X: scores are formed in float32 (relative rounding ~1e-7 per score)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
def test_hess_vec_is_the_derivative_of_the_gradient(k):
    """Central differences of the reference gradient along (V, vb) give H·(V, vb)."""
    X, y, sw, W, b, V, vb = make_direction(300, 5, k, np.float64, True, seed=3)
    ref = NumpyBackend()
    data = ref.put(X, y, sw)
    eps = 1e-5
    g_plus = ref.loss_grad(data, W + eps * V, b + eps * vb, LOG)[1]
    g_minus = ref.loss_grad(data, W - eps * V, b - eps * vb, LOG)[1]
    fd = (g_plus - g_minus) / (2 * eps)
    for backend in (ref, CPUBackend()):
        hv = backend.hess_vec(backend.put(X, y, sw), W, b, LOG, V, vb)
        # central differences: error O(eps² · third derivative) plus rounding O(1e-16 / eps)
        np.testing.assert_allclose(hv, fd, rtol=1e-7, atol=1e-7 * np.abs(fd).max())


def test_objective_hess_vec_includes_the_penalty_and_the_intercept_layout():
    X, y, sw, W, b, V, vb = make_direction(200, 4, 3, np.float64, True, seed=4)
    ref = NumpyBackend()
    data = ref.put(X, y, sw)
    objective = Objective(ref, data, 0, 3, alpha=0.37, fit_intercept=True)
    theta, v = objective.pack(W, b), objective.pack(V, vb)
    eps = 1e-6
    fd = (objective(theta + eps * v)[1] - objective(theta - eps * v)[1]) / (2 * eps)
    np.testing.assert_allclose(objective.hess_vec(theta, v), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
def test_hess_vec_bitwise_identical_for_one_and_two_threads(k, dtype):
    X, y, sw, W, b, V, vb = make_direction(4 * CHUNK_ROWS + 9, 9, k, dtype, True, seed=5)
    cpu = CPUBackend()
    data = cpu.put(X, y, sw)
    results = per_thread_count(lambda: cpu.hess_vec(data, W, b, LOG, V, vb))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def make_sparse_direction(n, d, k, dtype, weighted, seed=0, nnz_per_row=5):
    """A CSR X (unsorted indices, a repeated column per row, explicit zeros) and a direction."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    _, y, sw, W, b, V, vb = make_direction(n, d, k, dtype, weighted, seed)
    cols = rng.integers(0, d, (n, nnz_per_row))
    cols[:, -1] = cols[:, 0]  # a repeated column: its values add up, as in scipy
    vals = rng.standard_normal((n, nnz_per_row)).astype(dtype)
    vals[::7, 1] = 0.0  # explicit zeros
    indptr = np.arange(0, n * nnz_per_row + 1, nnz_per_row)
    X = sp.csr_matrix((vals.ravel(), cols.ravel().astype(np.int32), indptr), shape=(n, d))
    return X, y, sw, W, b, V, vb


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
def test_sparse_hess_vec_matches_numpy_reference_and_dense_kernel(k, dtype, weighted):
    X, y, sw, W, b, V, vb = make_sparse_direction(5000, 40, k, dtype, weighted, seed=6)
    from fastlr.kernels import cpu_sparse
    assert cpu_sparse.n_blocks(X.nnz, 40, k) > 1  # several partial sums are combined
    cpu, ref = CPUBackend(), NumpyBackend()
    got = cpu.hess_vec(cpu.put(X, y, sw), W, b, LOG, V, vb)
    want = ref.hess_vec(ref.put(X, y, sw), W, b, LOG, V, vb)
    # both form every product in float64 from the same stored values: sums of 5000 terms
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * scale)
    dense = cpu.hess_vec(cpu.put(X.toarray(), y, sw), W, b, LOG, V, vb)
    # the dense kernel forms float32 scores in float32 (relative rounding ~1e-7 per score)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, dense, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
def test_sparse_hess_vec_is_the_derivative_of_the_gradient_and_thread_independent(k):
    X, y, sw, W, b, V, vb = make_sparse_direction(3000, 30, k, np.float64, True, seed=7)
    cpu = CPUBackend()
    data = cpu.put(X, y, sw)
    eps = 1e-5
    g_plus = cpu.loss_grad(data, W + eps * V, b + eps * vb, LOG)[1]
    g_minus = cpu.loss_grad(data, W - eps * V, b - eps * vb, LOG)[1]
    fd = (g_plus - g_minus) / (2 * eps)
    results = per_thread_count(lambda: cpu.hess_vec(data, W, b, LOG, V, vb))
    # central differences: error O(eps² · third derivative) plus rounding O(1e-16 · |g| / eps)
    np.testing.assert_allclose(results[0], fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def sklearn_objective(coef, intercept, X, y, C, sw):
    """scikit-learn's primal: C Σ s_i loss_i + ½ ‖coef‖² (float64)."""
    X = np.asarray(X, dtype=np.float64)
    Z = X @ coef.T + intercept
    if coef.shape[0] == 1:
        z = Z[:, 0]
        loss = np.logaddexp(0.0, z) - y * z
    else:
        loss = logsumexp(Z, axis=1) - Z[np.arange(len(y)), y]
    s = np.ones(len(y)) if sw is None else sw
    return C * np.sum(s * loss) + 0.5 * np.sum(coef ** 2)


def ill_conditioned(n, d, k, dtype, seed):
    """Features on scales 1e-2 .. 1e3 with large means, like raw breast-cancer.

    float32: scales 1e-1 .. 1e1, so that float32 scores (relative rounding
    ~1e-7 · Σ|x_j w_j|) still resolve the objective to the tolerance asserted.
    """
    rng = np.random.default_rng(seed)
    scales = np.logspace(-2, 3, d) if dtype == np.float64 else np.logspace(-1, 1, d)
    G = rng.standard_normal((n, d))
    X = (G + 3.0) * scales
    W_true = rng.standard_normal((max(k, 2), d))
    y = np.argmax(G @ W_true.T + rng.gumbel(size=(n, max(k, 2))), axis=1)
    return X.astype(dtype), y


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_newton_cg_reaches_sklearn_objective_on_ill_conditioned_data(backend, k, dtype, weighted):
    X, y = ill_conditioned(400, 6, k, dtype, seed=11)
    sw = np.random.default_rng(2).uniform(0.2, 2.0, len(y)) if weighted else None
    C = 10.0
    sk = SkLogisticRegression(C=C, solver="newton-cholesky", tol=1e-10, max_iter=1000).fit(
        X.astype(np.float64), y, sample_weight=sw)
    f_sk = sklearn_objective(sk.coef_, sk.intercept_, X, y, C, sw)
    tol = 1e-8 if dtype == np.float64 else 1e-5
    with warnings.catch_warnings():
        # converged: no ConvergenceWarning. The iteration count itself is not asserted beyond
        # max_iter: on features scaled 1e-2 .. 1e3 the truncated CG directions depend on the
        # rounding of the Hessian-vector products, and so on the CPU (48 iterations with
        # AVX-512 code, 63 with NUMBA_CPU_NAME=generic for the weighted multinomial case).
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(C=C, solver="newton-cg", backend=backend, tol=tol,
                                   max_iter=100).fit(X, y, sample_weight=sw)
    f = sklearn_objective(model.coef_, model.intercept_, X, y, C, sw)
    # tol bounds the mean gradient; the objective gap is O(tol² / curvature), far
    # below this: what remains is float32 rounding of the scores (relative ~1e-7·‖x‖‖w‖).
    rel = 1e-6 if dtype == np.float32 else 1e-9
    assert f <= f_sk * (1 + rel), (f, f_sk)
    assert int(np.ravel(model.n_iter_)[0]) < 100


def test_newton_cg_and_lbfgs_reach_one_optimum_on_ill_conditioned_data():
    """Both converge where features span 1e-2..1e3 (L-BFGS in its centred, scaled coordinates:
    8 iterations here, newton-cg 20) and agree to what their gradients allow."""
    X, y = ill_conditioned(500, 8, 1, np.float64, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        lbfgs = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=1000).fit(X, y)
        newton = LogisticRegression(solver="newton-cg", tol=1e-6, max_iter=60).fit(X, y)
    assert_fits_agree(newton, lbfgs, X, y, tol=1e-6, tol_b=1e-6)


def test_newton_cg_with_the_numpy_backend_matches_cpu():
    X, y = ill_conditioned(300, 5, 3, np.float64, seed=13)
    a = LogisticRegression(solver="newton-cg", backend="cpu", tol=1e-9).fit(X, y)
    b = LogisticRegression(solver="newton-cg", backend="numpy", tol=1e-9).fit(X, y)
    fa = sklearn_objective(a.coef_, a.intercept_, X, y, 1.0, None)
    fb = sklearn_objective(b.coef_, b.intercept_, X, y, 1.0, None)
    assert abs(fa - fb) <= 1e-9 * abs(fb)
    # and the coefficients: within (‖∇F_a‖ + ‖∇F_b‖) / μ of each other (tests/reference.py),
    # on any CPU. (Not also "each meets tol": with NUMBA_CPU_NAME=generic the cpu fit stops on a
    # failed line search at max|∇F| ≈ 5e-6, with a ConvergenceWarning; reported, issue 11.)
    assert_fits_agree(a, b, X, y)


def test_newton_cg_rejects_the_squared_loss():
    X, y = ill_conditioned(50, 3, 1, np.float64, seed=1)
    with pytest.raises(ValueError, match="loss='log_loss'"):
        LogisticRegression(solver="newton-cg", loss="prob_squared").fit(X, y)


def test_newton_cg_on_a_backend_without_hess_vec_says_so():
    class GradientOnly:
        name = "gradient-only"

        def __init__(self):
            self._inner = NumpyBackend()

        def put(self, X, y, sample_weight=None):
            return self._inner.put(X, y, sample_weight)

        def loss_grad(self, data, W, b, loss_id):
            return self._inner.loss_grad(data, W, b, loss_id)

    X, y = ill_conditioned(50, 3, 1, np.float64, seed=1)
    backend = GradientOnly()
    data = backend.put(X, y.astype(np.int32))
    with pytest.raises(NotImplementedError, match="gradient-only.*solver='lbfgs'"):
        train(backend, data, 0, 1, 1e-2, True, TrainOptions(solver="newton-cg"))


# ---- the Hessian's diagonal (Newton-CG's Jacobi preconditioner) ----------------------------

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_sparse_hess_diag_is_the_diagonal_of_the_hess_vec_operator(k, weighted):
    """e_jᵀ H e_j from the reference hess_vec, one unit direction at a time (canonical CSR)."""
    X, y, sw, W, b, _, _ = make_sparse_direction(2 * CHUNK_ROWS + 17, 6, k, np.float64, weighted, seed=8)
    X.sum_duplicates()
    ref = NumpyBackend()
    data = ref.put(X, y, sw)
    want = np.empty((k, 7))
    for c in range(k):
        for j in range(7):
            V, vb = np.zeros((k, 6)), np.zeros(k)
            if j < 6:
                V[c, j] = 1.0
            else:
                vb[c] = 1.0
            want[c, j] = ref.hess_vec(data, W, b, LOG, V, vb)[c, j]
    for backend in (ref, CPUBackend()):
        got = backend.hess_diag(backend.put(X, y, sw), W, b, LOG)
        # sums of ~4,000 float64 terms of one sign each, in different orders
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        # dense X: no preconditioner (plain CG measured as fast or faster there)
        assert backend.hess_diag(backend.put(X.toarray(), y, sw), W, b, LOG) is None


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sparse_hess_diag_bitwise_identical_for_one_and_two_threads(dtype):
    X, y, sw, W, b, _, _ = make_sparse_direction(4 * CHUNK_ROWS + 9, 9, 4, dtype, True, seed=9)
    cpu = CPUBackend()
    data = cpu.put(X, y, sw)
    results = per_thread_count(lambda: cpu.hess_diag(data, W, b, LOG))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_sparse_newton_cg_with_the_preconditioner_reaches_sklearn_objective():
    """CSR columns of very different frequencies: the Jacobi-preconditioned fit against scikit-learn."""
    import scipy.sparse as sp
    rng = np.random.default_rng(12)
    n, d = 3000, 400
    freq = 1.0 / np.arange(1, d + 1) ** 1.2  # Zipf-like column frequencies
    cols = rng.choice(d, size=(n, 12), p=freq / freq.sum())
    X = sp.csr_matrix((np.ones(n * 12), cols.ravel(), np.arange(0, n * 12 + 1, 12)), shape=(n, d))
    X.sum_duplicates()
    w_true = rng.standard_normal(d)
    y = (X @ w_true + rng.logistic(size=n) > 0).astype(int)
    sk = SkLogisticRegression(C=10.0, solver="newton-cholesky", tol=1e-10, max_iter=1000).fit(X.toarray(), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(C=10.0, solver="newton-cg", tol=1e-8, max_iter=100).fit(X, y)
    f_sk = sklearn_objective(sk.coef_, sk.intercept_, X.toarray(), y, 10.0, None)
    f = sklearn_objective(model.coef_, model.intercept_, X.toarray(), y, 10.0, None)
    # max|∇F| ≤ 1e-8 on the mean objective: the gap is O(tol² n / curvature), far below 1e-9 relative
    assert f <= f_sk * (1 + 1e-9), (f, f_sk)


def test_preconditioned_cg_solves_a_badly_scaled_system_in_fewer_products():
    """Jacobi PCG on H = S A S (A well conditioned, S spanning 1e-3..1e3) against plain CG."""
    from fastlr.trainer import _truncated_cg
    rng = np.random.default_rng(10)
    Q = rng.standard_normal((40, 40))
    A = Q @ Q.T / 40 + np.eye(40)
    S = np.diag(np.logspace(-3, 3, 40))
    H = S @ A @ S
    g = rng.standard_normal(40)
    exact = np.linalg.solve(H, -g)
    tol = 1e-10 * np.sum(np.abs(g))
    p_plain, n_plain = _truncated_cg(lambda v: H @ v, g, tol, 2000)
    p_pre, n_pre = _truncated_cg(lambda v: H @ v, g, tol, 2000, np.diag(H).copy())
    np.testing.assert_allclose(p_pre, exact, rtol=1e-6, atol=1e-6 * np.abs(exact).max())
    assert n_pre < n_plain / 3
