"""L-BFGS's change of variables (fastlr._reparam) and the column moments it is built from."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer

from fastlr import LogisticRegression
from fastlr._reparam import AffineReparametrization
from fastlr.backends import CPUBackend, NumpyBackend
from fastlr.backends._hessian_numpy import hessian_stride
from fastlr.kernels.cpu import CHUNK_ROWS
from fastlr.trainer import Objective
from reference import assert_fits_agree, per_thread_count, sum_bound


def _weighted_moments(X, w):
    """Two-pass float64 reference on X shifted by its first row (exact differences of nearby
    values): Σ w x / Σ w and Σ w (x - mean)² / Σ w."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if w is None else w
    D = X - X[0]
    mean = (w @ D) / w.sum()
    return mean + X[0], (w @ (D - mean) ** 2) / w.sum()


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("n", [5, 3 * CHUNK_ROWS + 11], ids=["one-chunk", "several-chunks"])
def test_cpu_column_moments_match_the_two_pass_formula(n, dtype, weighted):
    rng = np.random.default_rng(0)
    # offsets far above the spread (timestamps): a one-pass Σx² − (Σx)² would lose them all
    X = (rng.standard_normal((n, 6)) * [1.0, 1e-3, 1e3, 1.0, 1.0, 0.0]
         + [0.0, 1.7e9, 3.0, -5.0, 1e-8, 2.0]).astype(dtype)
    w = rng.uniform(0.1, 3.0, n) if weighted else None
    want_mean, want_var = _weighted_moments(X, w)
    for backend in (CPUBackend(), NumpyBackend()):
        mean, var = backend.column_moments(backend.put(X, np.zeros(n, np.int32), w))
        # sums of n values of size ~std: rounding ~1e-16 · std · sqrt(n) around a mean near 0
        np.testing.assert_allclose(mean, want_mean, rtol=1e-12, atol=1e-13 * np.sqrt(want_var).max())
        # the variance of column 1 is (1e-3 / 1.7e9)² relative to its mean²: the shifted
        # sums keep ~1e-16 · 1.7e9 / 1e-3 of it, i.e. about 1e-6 relative error at worst
        np.testing.assert_allclose(var, want_var, rtol=1e-6, atol=1e-20)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_column_moments_over_a_row_sample_are_those_of_the_sampled_blocks(weighted):
    """sample_rows: every stride-th block of CHUNK_ROWS rows (hessian_stride), the same rows on
    both backends, against the two-pass formula over exactly those rows."""
    rng = np.random.default_rng(3)
    n = 9 * CHUNK_ROWS + 100  # 10 blocks
    X = rng.standard_normal((n, 5)) * [1.0, 2.0, 0.1, 5.0, 1.0] + np.arange(n)[:, None] / n
    w = rng.uniform(0.1, 3.0, n) if weighted else None
    stride = hessian_stride(n, 3 * CHUNK_ROWS, CHUNK_ROWS)
    assert stride == 3  # blocks 0, 3, 6, 9: the row trend makes a wrong block visible
    rows = (np.arange(n) // CHUNK_ROWS) % stride == 0
    want_mean, want_var = _weighted_moments(X[rows], None if w is None else w[rows])
    for backend in (CPUBackend(), NumpyBackend()):
        data = backend.put(X, np.zeros(n, np.int32), w)
        mean, var = backend.column_moments(data, 3 * CHUNK_ROWS)
        # two float64 means of the same rows, summed in different orders (Higham's gamma_n)
        assert np.all(np.abs(mean - want_mean) <= 2 * sum_bound(np.abs(X).max(axis=0), n))
        np.testing.assert_allclose(var, want_var, rtol=1e-10)
        # fewer than twice the blocks wanted: every row
        full = _weighted_moments(X, w)
        assert np.all(np.abs(backend.column_moments(data, 6 * CHUNK_ROWS)[0] - full[0])
                      <= 2 * sum_bound(np.abs(X).max(axis=0), n))


def test_cpu_column_moments_bitwise_identical_for_one_and_two_threads():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40 * CHUNK_ROWS + 3, 50)) * 3 + 1
    data = CPUBackend().put(X, np.zeros(len(X), np.int32), rng.uniform(0.5, 2.0, len(X)))
    results = per_thread_count(lambda: CPUBackend().column_moments(data))
    for mean, var in results[1:]:
        np.testing.assert_array_equal(mean, results[0][0])
        np.testing.assert_array_equal(var, results[0][1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_sparse_column_moments_match_the_dense_ones(weighted, dtype):
    rng = np.random.default_rng(2)
    X = sp.random(5000, 30, density=0.1, format="csr", random_state=3, dtype=dtype)
    w = rng.uniform(0.1, 3.0, 5000) if weighted else None
    want_mean, want_var = _weighted_moments(X.toarray(), w)
    for backend in (CPUBackend(), NumpyBackend()):
        mean, var = backend.column_moments(backend.put(X, np.zeros(5000, np.int32), w))
        np.testing.assert_allclose(mean, want_mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(var, want_var, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_reparametrization_is_invertible_and_its_gradient_is_the_chain_rule(k, fit_intercept):
    rng = np.random.default_rng(4)
    n, d = 300, 5
    X = rng.standard_normal((n, d)) * [1e-2, 1.0, 10.0, 1e3, 1.0] + [0.0, 5.0, -3.0, 1e4, 0.0]
    y = rng.integers(0, max(k, 2), n).astype(np.int32)
    backend = NumpyBackend()
    data = backend.put(X, y, None)
    objective = Objective(backend, data, 0, k, 1e-3, fit_intercept)
    mean, var = backend.column_moments(data)
    T = AffineReparametrization.from_moments(mean, var, 1e-3, k, fit_intercept)
    theta = rng.standard_normal(k * d + (k if fit_intercept else 0)) * 1e-3
    np.testing.assert_allclose(T.to_theta(T.to_u(theta)), theta, rtol=1e-12, atol=1e-15)
    u = T.to_u(theta)
    g_u = T.grad_u(objective(T.to_theta(u))[1])
    eps = 1e-6
    fd = np.array([(objective(T.to_theta(u + eps * e))[0] - objective(T.to_theta(u - eps * e))[0])
                   / (2 * eps) for e in np.eye(u.size)])
    # central differences of F(T u): error O(eps² F''') + rounding O(1e-16 |F| / eps)
    np.testing.assert_allclose(g_u, fd, rtol=1e-6, atol=1e-8)


def test_lbfgs_reaches_the_same_optimum_in_far_fewer_iterations_on_raw_features(monkeypatch):
    """Raw breast cancer (scales 1e-3 .. 4e3): the objective is unchanged, only the path.

    Both runs keep scipy's 10 correction pairs, so that the count measures the change of
    variables alone (with 100 pairs, fastlr's default here, measured 91 against 205)."""
    import fastlr.trainer as trainer
    monkeypatch.setattr(trainer, "lbfgs_pairs", lambda n_params: 10)
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=10_000).fit(X, y)
    # the coefficients themselves (no change of variables): the numpy backend without moments
    plain = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=10_000, backend="numpy")
    original = NumpyBackend.column_moments
    try:
        del NumpyBackend.column_moments
        plain.fit(X, y)
    finally:
        NumpyBackend.column_moments = original
    assert_fits_agree(model, plain, X, y, tol=1e-6, tol_b=1e-6)
    assert int(model.n_iter_[0]) * 4 < int(plain.n_iter_[0])


def test_longer_lbfgs_memory_takes_fewer_iterations_to_the_same_optimum(monkeypatch):
    """fastlr keeps up to 100 correction pairs (fastlr._memory.lbfgs_pairs), scipy 10: on raw
    breast cancer (31 variables) the longer memory reaches the same optimum in far fewer
    iterations (measured: 87 against 384 at tol=1e-4; the bound leaves room for rounding
    changing the path on other CPUs)."""
    import fastlr.trainer as trainer
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=10_000).fit(X, y)
    monkeypatch.setattr(trainer, "lbfgs_pairs", lambda n_params: 10)
    short = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=10_000).fit(X, y)
    assert_fits_agree(model, short, X, y, tol=1e-6, tol_b=1e-6)
    assert int(model.n_iter_[0]) * 2 < int(short.n_iter_[0])
