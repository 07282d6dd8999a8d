"""solver="newton-cholesky" and solver="auto": the fused loss/gradient/Hessian kernel against float64
NumPy and finite differences, and the fits against scikit-learn's solver of that name."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLR
from sklearn.preprocessing import StandardScaler

import fastlr.trainer as trainer
from fastlr import LogisticRegression
from fastlr._memory import (
    MAX_SMALL_HESSIAN_GROUPS, NEWTON_CHOLESKY_HESSIANS, SMALL_HESSIAN_PARTIALS_BYTES, fit_state_bytes,
    hessian_groups,
)
from fastlr.backends import CPUBackend, NumpyBackend
from fastlr.backends._hessian_numpy import hessian_stride, log_loss_hessian
from fastlr.backends._protocol import host_data
from fastlr.kernels import cpu_hessian
from fastlr.kernels.cpu import CHUNK_ROWS
from fastlr.trainer import Objective, resolve_solver
from reference import assert_cpu_matches_reference, assert_fits_agree, per_thread_count, sum_bound


def _problem(n, d, k, dtype, weighted, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, max(k, 2), n).astype(np.int32)
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    W = rng.standard_normal((k, d)) * 0.4
    b = rng.standard_normal(k) * 0.2
    return X, y, sw, W, b


def _reference_hessian(X, sw, W, b, rows):
    """Σ s ∇²_z loss ⊗ x̃ x̃ᵀ over ``rows``, float64, from the definition: each sample's k × k
    ``∇²_z loss`` (``σ(1 - σ)``, or ``diag(p) - p pᵀ``) Kronecker its ``x̃ x̃ᵀ``, summed by einsum."""
    rows = np.asarray(list(rows))
    Xt = np.hstack([X[rows].astype(np.float64), np.ones((len(rows), 1))])
    s = np.ones(len(rows)) if sw is None else sw[rows]
    Z = X[rows].astype(np.float64) @ W.T + b
    if W.shape[0] == 1:
        p = 1.0 / (1.0 + np.exp(-Z))
        A = (p * (1.0 - p))[:, :, None]  # (n, 1, 1)
    else:
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        A = np.einsum("ia,ab->iab", P, np.eye(W.shape[0])) - np.einsum("ia,ib->iab", P, P)
    H = np.einsum("i,iab,ij,il->ajbl", s, A, Xt, Xt, optimize=True)
    k, d1 = W.shape[0], Xt.shape[1]
    return H.reshape(k * d1, k * d1)


def _hessian_bound(H_ref, X):
    """Rounding allowed for each entry: float32 X sums up to CHUNK_ROWS products in float32
    (``m eps |terms|``, with Σ|terms| ≤ sqrt(H_jj H_ll) by Cauchy–Schwarz on PSD blocks), plus
    the float32 rounding of the scaled rows; float64 X: the same in float64."""
    eps = np.finfo(X.dtype).eps
    diag = np.abs(np.diag(H_ref))
    return (CHUNK_ROWS + 8) * eps * np.sqrt(np.outer(diag, diag)) + 1e-300


def _assert_sums_match_float64(loss, grad, data, X, sw, W, b):
    """A backend's (loss sum, gradient sums) against the float64 NumPy backend, within the
    kernels' rounding bound (tests/reference.py :func:`assert_cpu_matches_reference`)."""
    loss_ref, grad_ref = NumpyBackend().loss_grad(data, W, b, 0)
    S = len(X) if sw is None else sw.sum()
    assert_cpu_matches_reference((loss / S, grad[:, :-1] / S, grad[:, -1] / S),
                                 (loss_ref / S, grad_ref[:, :-1] / S, grad_ref[:, -1] / S),
                                 X, W, b, sw)

@pytest.mark.parametrize("k", [1, 3], ids=["binary", "softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("backend", [CPUBackend(), NumpyBackend()], ids=["cpu", "numpy"])
@pytest.mark.parametrize("n", [300, 20_000], ids=["small", "parallel"])
def test_hessian_matches_the_per_sample_definition(k, dtype, weighted, backend, n):
    # the cpu backend: n = 20,000 (160k multiply-adds per pass) runs the parallel fused kernel,
    # n = 300 the serial gradient kernel with a NumPy Hessian
    X, y, sw, W, b = _problem(n, 8, k, dtype, weighted)
    data = host_data(X, y, sw)
    loss, grad, hess, hess_weight = backend.loss_grad_hess(data, W, b, 0, None)
    H_ref = _reference_hessian(X, sw, W, b, range(len(X)))
    H = hess.reshape(H_ref.shape)
    assert np.all(np.abs(H - H_ref) <= _hessian_bound(H_ref, X))
    np.testing.assert_array_equal(H, H.T)
    S = len(X) if sw is None else sw.sum()
    assert abs(hess_weight - S) <= 2 * sum_bound(S, len(X))  # two float64 sums, any order
    # the loss and gradient: those of float64 NumPy, within the kernels' rounding (the fused
    # kernel uses the gradient kernel's row kernels, but another CPU may vectorise them apart)
    _assert_sums_match_float64(loss, grad, data, X, sw, W, b)


def test_fused_kernels_call_the_row_kernels_with_the_gradients_types():
    """The fused kernels pass the loss id as an int64, as the gradient kernels do, so that the
    row kernels' compilation for the gradient serves them; a literal ``0`` had Numba compile
    each row kernel again for the type ``Literal[int](0)`` (8-11 s per dtype, every new
    environment)."""
    from numba import njit, types

    from fastlr.kernels import cpu

    for k in (1, 3):
        X, y, sw, W, b = _problem(300, 5, k, np.float64, False)
        kernel = cpu_hessian.binary_loss_grad_hess if k == 1 else cpu_hessian.multinomial_loss_grad_hess
        # compiled afresh (serial, not cached): a kernel loaded from Numba's disk cache types
        # none of its callees, so the row kernels' dispatchers would show no signature at all;
        # compiling the same Python function types its calls as the cached kernel's did
        njit(kernel.py_func)(X, y, np.zeros(0), W, b, 1)
    for rows in (cpu._binary_rows, cpu._softmax_rows):
        assert rows.signatures
        for signature in rows.signatures:
            assert not any(isinstance(t, types.Literal) for t in signature), (rows, signature)


@pytest.mark.parametrize("k", [1, 4], ids=["binary", "softmax"])
def test_hessian_over_a_row_subsample_takes_evenly_spaced_blocks(k):
    X, y, sw, W, b = _problem(9 * CHUNK_ROWS + 100, 10, k, np.float64, True, seed=1)  # parallel
    data = host_data(X, y, sw)
    stride = hessian_stride(len(X), 3 * CHUNK_ROWS, CHUNK_ROWS)
    assert stride == 3  # 10 blocks, 3 wanted: blocks 0, 3, 6, 9
    rows = np.concatenate([np.arange(s * CHUNK_ROWS, min((s + 1) * CHUNK_ROWS, len(X)))
                           for s in range(0, 10, stride)])
    H_ref = _reference_hessian(X, sw, W, b, rows)
    for backend in (CPUBackend(), NumpyBackend()):
        loss, grad, hess, hess_weight = backend.loss_grad_hess(data, W, b, 0, 3 * CHUNK_ROWS)
        assert np.all(np.abs(hess.reshape(H_ref.shape) - H_ref) <= _hessian_bound(H_ref, X))
        assert abs(hess_weight - sw[rows].sum()) <= 2 * sum_bound(sw[rows].sum(), len(rows))
        # the loss and gradient are still over every row
        _assert_sums_match_float64(loss, grad, data, X, sw, W, b)


def test_hessian_is_the_derivative_of_the_gradient():
    """Central differences of the mean objective's gradient (an independent check of the
    Objective's ordering of θ, its scaling and the penalty's diagonal)."""
    X, y, sw, W, b = _problem(300, 4, 3, np.float64, True, seed=2)
    data = host_data(X, y, sw)
    obj = Objective(NumpyBackend(), data, 0, 3, 0.05, True)
    theta = obj.pack(W, b)
    _, _, H = obj.loss_grad_hess(theta)
    h = 1e-6
    fd = np.empty_like(H)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        fd[:, i] = (obj.evaluate(theta + e)[1] - obj.evaluate(theta - e)[1]) / (2 * h)
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "softmax"])
def test_kernel_is_bitwise_identical_for_any_thread_count(k):
    X, y, sw, W, b = _problem(20 * CHUNK_ROWS + 7, 9, k, np.float32, True, seed=3)
    sw_arr = sw.astype(np.float64)

    kernel = cpu_hessian.binary_loss_grad_hess if k == 1 else cpu_hessian.multinomial_loss_grad_hess

    def run():
        return kernel(X, y, sw_arr, W, b, 1)

    results = per_thread_count(run)
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


def test_binary_fit_matches_scikit_learn_newton_cholesky():
    X, y = load_breast_cancer(return_X_y=True)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    ours = LogisticRegression(solver="newton-cholesky", tol=1e-8, max_iter=100).fit(X, y, sample_weight=sw)
    ref = SkLR(solver="newton-cholesky", tol=1e-10, max_iter=1000).fit(X, y, sample_weight=sw)
    assert_fits_agree(ours, ref, X, y, sample_weight=sw, tol=1e-8)
    assert ours.n_iter_[0] <= 20  # raw features: lbfgs with 10 pairs needs hundreds


def test_multinomial_fit_matches_scikit_learn_and_float32_stays_close():
    X, y = load_iris(return_X_y=True)
    ours = LogisticRegression(solver="newton-cholesky", tol=1e-8).fit(X, y)
    ref = SkLR(solver="lbfgs", tol=1e-10, max_iter=10_000).fit(X, y)
    assert_fits_agree(ours, ref, X, y, tol=1e-8)
    ours32 = LogisticRegression(solver="newton-cholesky", tol=1e-6).fit(X.astype(np.float32), y)
    assert_fits_agree(ours32, ref, X.astype(np.float32), y, tol=1e-6)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sparse_and_dense_x_give_the_same_model(fit_intercept):
    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(axis=0)
    X[X < 0.3] = 0.0
    dense = LogisticRegression(solver="newton-cholesky", tol=1e-8, fit_intercept=fit_intercept).fit(X, y)
    sparse = LogisticRegression(solver="newton-cholesky", tol=1e-8,
                                fit_intercept=fit_intercept).fit(sp.csr_matrix(X), y)
    assert_fits_agree(dense, sparse, X, y, tol=1e-8, tol_b=1e-8, fit_intercept=fit_intercept)


def test_unpenalised_separable_data_does_not_break_the_solve():
    """C=inf on separable data: the Hessian becomes singular as |w| grows (no optimum); the
    solver must keep lowering the objective until its gradient is below tol, never raising a
    LinAlgError or producing NaN."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression(solver="newton-cholesky", C=np.inf, max_iter=100).fit(X, y)
    assert np.all(np.isfinite(model.coef_)) and model.coef_[0, 0] > 5
    np.testing.assert_array_equal(model.predict(X), y)
    # the mean log loss's gradient at the result, in float64 NumPy
    p = 1.0 / (1.0 + np.exp(-(X @ model.coef_[0] + model.intercept_[0])))
    assert np.max(np.abs(np.append(X.T @ (p - y), np.sum(p - y)) / len(y))) <= 1e-4


def test_sub_sampled_hessian_reaches_the_same_optimum(monkeypatch):
    """Beyond 2 HESSIAN_ROWS rows the Hessian comes from a row sub-sample; the gradient, and so
    the stopping test and the optimum, stay exact (HESSIAN_ROWS lowered to keep the test small)."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40_000, 8)) * np.geomspace(0.1, 10, 8)
    y = (X @ rng.standard_normal(8) + rng.logistic(size=len(X)) > 0).astype(int)
    full = LogisticRegression(solver="newton-cholesky", tol=1e-9).fit(X, y)
    monkeypatch.setattr(trainer, "HESSIAN_ROWS", 4 * CHUNK_ROWS)  # 4 of 20 blocks
    sub = LogisticRegression(solver="newton-cholesky", tol=1e-9).fit(X, y)
    assert_fits_agree(full, sub, X, y, tol=1e-9, tol_b=1e-9)
    assert sub.n_iter_[0] <= 2 * full.n_iter_[0]


def test_stops_short_with_a_warning_naming_the_solver():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="newton-cholesky failed to converge"):
        model = LogisticRegression(solver="newton-cholesky", max_iter=1).fit(X, y)
    assert model.n_iter_[0] == 1


@pytest.mark.parametrize("solver", ["newton-cholesky", "newton-cg"])
def test_tol_below_float32_rounding_stops_at_the_floor_and_says_so(solver):
    """float32 standardised breast cancer at tol=1e-10: Newton reaches float32's rounding floor
    of the gradient (~3e-10 here) in about ten iterations; after that an accepted step only
    moves the iterate by noise. The run must stop there with a ConvergenceWarning (it once
    wandered 946 iterations until a noisy gradient fell below tol, and said nothing), and its
    coefficients must be those of the float64 optimum to what float32 scores allow."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # float64 does reach tol
        n64 = LogisticRegression(solver=solver, tol=1e-10, max_iter=1000).fit(X, y).n_iter_[0]
    with pytest.warns(ConvergenceWarning, match=f"{solver} failed to converge") as caught:
        ours = LogisticRegression(solver=solver, tol=1e-10, max_iter=10_000).fit(X32, y)
    assert "float32" in str(caught[0].message)
    # the features are standardised: no advice to scale them
    assert "StandardScaler" not in str(caught[0].message)
    # on the floor, only a record low of the noise (F or max |∇F|) resets the stall count, and
    # records of a stationary noise get rarer: a few patience spans past float64's count
    assert ours.n_iter_[0] <= n64 + 4 * trainer.NEWTON_MAX_STALL
    ref = SkLR(solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
    assert_fits_agree(ours, ref, X32, y, tol=1e-10)


def test_binary_hessian_weights_are_exact_and_quiet_at_large_scores():
    """The binary Hessian's weight σ'(z) = σ(z) σ(-z) at scores far beyond float64's exp range
    (±800: no overflow warning, weight 0 to underflow) and at z = ±35 (where 1 - σ(z) would lose
    all but three digits), against e^{-|z|} / (1 + e^{-|z|})², float64."""
    z = np.array([-800.0, -35.0, -1.0, 0.0, 2.0, 35.0, 800.0])
    X = z[:, None]
    W, b = np.ones((1, 1)), np.zeros(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hess, weight = log_loss_hessian(X, np.zeros(0), W, b)
    e = np.exp(-np.abs(z))
    v = e / (1.0 + e) ** 2
    expected = np.array([[np.sum(v * z * z), np.sum(v * z)], [np.sum(v * z), np.sum(v)]])
    np.testing.assert_allclose(hess.reshape(2, 2), expected, rtol=1e-14, atol=0)
    assert weight == len(z)
    # the z = 35 row alone, whose weight the old 1 - σ(z) rounded by ~1e-3 relatively
    h35, _ = log_loss_hessian(X[5:6], np.zeros(0), W, b)
    np.testing.assert_allclose(h35.reshape(2, 2)[1, 1], v[5], rtol=1e-14)


def test_prob_squared_is_refused_with_a_clear_error():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match="newton-cholesky.*convex loss"):
        LogisticRegression(solver="newton-cholesky", loss="prob_squared").fit(X, y)


def test_auto_picks_newton_cholesky_only_where_a_hessian_is_cheap():
    cpu = CPUBackend()

    def pick(X, k, loss_id=0, backend=cpu):
        y = np.zeros(X.shape[0], dtype=np.int32)
        return resolve_solver("auto", backend, host_data(X, y, None), loss_id, k)

    Xb, _ = load_breast_cancer(return_X_y=True)
    Xd, _ = load_digits(return_X_y=True)
    Xi, _ = load_iris(return_X_y=True)
    assert pick(Xb, 1) == "newton-cholesky"  # 31 coefficients
    assert pick(Xi, 3) == "newton-cholesky"  # 3 x 5
    assert pick(Xd, 10) == "lbfgs"  # 10 x 65: a Hessian pass costs 357 gradient passes
    assert pick(np.zeros((1000, 200)), 1) == "lbfgs"  # all rows in the Hessian, 201 columns
    assert pick(Xb, 1, loss_id=1) == "lbfgs"  # prob_squared: not convex
    assert pick(sp.csr_matrix(Xb), 1) == "lbfgs"

    class NoHessian:
        name = "gpu-like"

    assert pick(Xb, 1, backend=NoHessian()) == "lbfgs"
    assert resolve_solver("sgd", cpu, None, 0, 1) == "sgd"  # explicit choices pass through


def test_default_fit_is_newton_cholesky_on_a_small_binary_problem():
    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = LogisticRegression(tol=1e-8).fit(X, y)
    explicit = LogisticRegression(solver="newton-cholesky", tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(default.coef_, explicit.coef_)
    assert default.n_iter_[0] == explicit.n_iter_[0]


@pytest.mark.parametrize("n_params", [5, 21, 65, 300, 651, 7850])
@pytest.mark.parametrize("n", [1, 2048, 20_000, 1_000_000])
def test_memory_estimate_counts_the_kernel_partials(n, n_params):
    """The kernels keep at most hessian_groups(p) partial Hessians, which the memory estimate
    counts; small Hessians get a group per chunk where there are few chunks (10 chunks of a
    20k-row X: 10 groups, shared 5 and 5 by two threads, not 5 groups of 2 chunks)."""
    n_chunks, per_group, n_groups = cpu_hessian._groups(n, n_params)
    assert n_groups <= hessian_groups(n_params)
    assert per_group * n_groups >= n_chunks > per_group * (n_groups - 1)
    assert fit_state_bytes(n_params - 1, 1, "newton-cholesky") - fit_state_bytes(
        n_params - 1, 1, "newton-cg") == 8 * (hessian_groups(n_params) + NEWTON_CHOLESKY_HESSIANS) * n_params ** 2
    if 8 * n_params ** 2 * n_chunks <= SMALL_HESSIAN_PARTIALS_BYTES and n_chunks <= MAX_SMALL_HESSIAN_GROUPS:
        assert n_groups == n_chunks


def test_solver_attribute_says_what_auto_ran():
    X, y = load_breast_cancer(return_X_y=True)
    assert LogisticRegression().fit(X, y).solver_ == "newton-cholesky"
    Xd, yd = load_digits(return_X_y=True)
    assert LogisticRegression(max_iter=5).fit(Xd / 16, yd).solver_ == "lbfgs"
    assert LogisticRegression(solver="gd", max_iter=2).fit(X / X.max(0), y).solver_ == "gd"
    assert LogisticRegression().partial_fit(X, y, classes=[0, 1]).solver_ == "sgd"


def test_a_backend_without_hessians_says_so():
    class GradientOnly:
        name = "gradient-only"

    X, y = load_breast_cancer(return_X_y=True)
    obj = Objective(GradientOnly(), host_data(X, y.astype(np.int32), None), 0, 1, 0.1, True)
    with pytest.raises(NotImplementedError, match="newton-cholesky.*'gradient-only' backend"):
        obj.loss_grad_hess(np.zeros(31))
