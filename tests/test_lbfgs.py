"""fastlr's L-BFGS (fastlr._lbfgs) and its pair kernels (fastlr.kernels.vectors).

References: NumPy float64 inner products and sums; the two-loop recursion
(Nocedal & Wright, *Numerical Optimization*, 2006, Algorithm 7.4) for the
direction; known minimisers (Rosenbrock's ones, a quadratic's solve) and
scipy's L-BFGS-B for whole runs.
"""

import zlib

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning

from fastlr import LogisticRegression, _lbfgs
from fastlr._lbfgs import (CONVERGED, LINE_SEARCH_FAILED, MAX_ITER, STOPPED, _Pairs,
                           minimize_lbfgs)
from fastlr.kernels import vectors

from reference import per_thread_count

EPS = np.finfo(np.float64).eps

# below and above the length where the kernels go parallel, neither a multiple of a chunk
LENGTHS = [1000, vectors.PARALLEL_MIN + 777]


def _pairs(n, m, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal((m, n)), rng


@pytest.mark.parametrize("n", LENGTHS)
def test_pair_dots_match_numpy(n):
    S, Y, rng = _pairs(n, 6, 0)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    rows = np.array([4, 0, 2], dtype=np.int64)  # any subset, any order
    got = vectors.pair_dots(S, Y, rows, a, b)
    want = np.stack([S[rows] @ a, Y[rows] @ a, S[rows] @ b, Y[rows] @ b])
    # a sum of n products rounds by at most ~n eps times the sum of their magnitudes
    bound = n * EPS * np.stack([np.abs(S[rows]) @ np.abs(a), np.abs(Y[rows]) @ np.abs(a),
                                np.abs(S[rows]) @ np.abs(b), np.abs(Y[rows]) @ np.abs(b)])
    assert got.shape == (4, 3)
    assert np.all(np.abs(got - want) <= bound)


@pytest.mark.parametrize("n", LENGTHS)
def test_combine_matches_numpy(n):
    S, Y, rng = _pairs(n, 5, 1)
    g = rng.standard_normal(n)
    rows = np.array([3, 1], dtype=np.int64)
    p, q = rng.standard_normal(2), rng.standard_normal(2)
    out = np.full(n, np.nan)
    vectors.combine(S, Y, rows, g, 0.7, p, q, out)
    want = -(0.7 * g + p @ S[rows] + q @ Y[rows])
    bound = 8 * EPS * (0.7 * np.abs(g) + np.abs(p) @ np.abs(S[rows]) + np.abs(q) @ np.abs(Y[rows]))
    assert np.all(np.abs(out - want) <= bound)


@pytest.mark.parametrize("n", LENGTHS)
def test_pair_kernels_bitwise_identical_for_any_thread_count(n):
    S, Y, rng = _pairs(n, 4, 2)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    rows = np.arange(4, dtype=np.int64)
    p, q = rng.standard_normal(4), rng.standard_normal(4)

    def run():
        out = np.empty(n)
        vectors.combine(S, Y, rows, a, 1.3, p, q, out)
        return vectors.pair_dots(S, Y, rows, a, b), out

    results = per_thread_count(run)
    for dots, out in results[1:]:
        np.testing.assert_array_equal(dots, results[0][0])
        np.testing.assert_array_equal(out, results[0][1])


def _two_loop(pairs_list, g):
    """-H g by the two-loop recursion, H0 = (s·y / y·y) I of the newest pair (float64 NumPy)."""
    q = g.copy()
    alphas = []
    for s, y in reversed(pairs_list):
        rho = 1.0 / (s @ y)
        alpha = rho * (s @ q)
        q -= alpha * y
        alphas.append(alpha)
    s, y = pairs_list[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), alpha in zip(pairs_list, reversed(alphas)):
        rho = 1.0 / (s @ y)
        beta = rho * (y @ r)
        r += s * (alpha - beta)
    return -r


def _push(pairs, s, y, g):
    """Store the pair (s, y) as minimize_lbfgs does; return (S·g, Y·g) of the kept pairs."""
    r = pairs.slot()
    pairs.S[r] = s
    pairs.Y[r] = y
    rows = pairs.order + ([r] if r not in pairs.order else [])
    dots = vectors.pair_dots(pairs.S, pairs.Y, np.asarray(rows, dtype=np.int64), pairs.Y[r], g)
    kept = pairs.accept(r, dots[:2], rows)
    idx = [rows.index(row) for row in pairs.order]
    return kept, dots[2, idx], dots[3, idx]


@pytest.mark.parametrize("n_pairs", [1, 3, 4, 9])  # fewer than m, m, and wrapped around twice
def test_compact_direction_equals_two_loop_recursion(n_pairs):
    n, m = 50, 4
    rng = np.random.default_rng(n_pairs)
    A = rng.standard_normal((n, n))
    H = A @ A.T / n + 0.5 * np.eye(n)  # s·y = s H s > 0: every pair is kept
    pairs = _Pairs(n, m)
    history = []
    g = rng.standard_normal(n)
    for _ in range(n_pairs):
        s = rng.standard_normal(n)
        y = H @ s
        g = rng.standard_normal(n)
        kept, Sg, Yg = _push(pairs, s, y, g)
        assert kept
        history.append((s, y))
    assert len(pairs.order) == min(n_pairs, m)
    got = pairs.direction(g, Sg, Yg, np.empty(n))
    want = _two_loop(history[-m:], g)
    # both are -H g for the same m pairs; the compact form's triangular solves round differently
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_pair_without_positive_curvature_is_skipped():
    n = 20
    rng = np.random.default_rng(3)
    pairs = _Pairs(n, 3)
    s = rng.standard_normal(n)
    assert _push(pairs, s, s, rng.standard_normal(n))[0]
    assert not _push(pairs, s, -s, rng.standard_normal(n))[0]  # s·y < 0
    assert len(pairs.order) == 1
    assert pairs.gamma == pytest.approx(1.0)


@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock_reaches_its_minimum(n):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    result = minimize_lbfgs(lambda x: (rosen(x), rosen_der(x)), x0, maxiter=2000)
    # ends where no step decreases f in float64 any more: at the minimiser x = 1 to rounding
    # (f ~ (x - 1)² near it, so |x - 1| ~ sqrt(eps) at worst)
    assert result.status in (CONVERGED, LINE_SEARCH_FAILED)
    np.testing.assert_allclose(result.x, np.ones(n), atol=1e-6)
    assert result.fun <= 1e-12


def test_quadratic_matches_solve_and_scipy_iterations():
    n = 60
    rng = np.random.default_rng(4)
    A = rng.standard_normal((n, n))
    H = A @ A.T / n + 0.1 * np.eye(n)
    c = rng.standard_normal(n)

    def fun(x):
        return 0.5 * x @ H @ x - c @ x, H @ x - c

    gtol = 1e-9
    result = minimize_lbfgs(fun, np.zeros(n), maxiter=1000,
                            callback=lambda x, f, g: np.abs(g).max() <= gtol)
    assert result.status == STOPPED
    x_star = np.linalg.solve(H, c)
    # |x - x*| ≤ |H⁻¹| |g| ≤ sqrt(n) gtol / λ_min
    bound = np.sqrt(n) * gtol / np.linalg.eigvalsh(H).min()
    assert np.abs(result.x - x_star).max() <= bound
    scipy_run = minimize(fun, np.zeros(n), jac=True, method="L-BFGS-B",
                         options={"gtol": gtol, "ftol": 0.0, "maxiter": 1000})
    # the same method (scipy's line search differs): iterations of the same order
    assert result.nit <= 2 * scipy_run.nit + 10


def test_statuses():
    def fun(x):
        return rosen(x), rosen_der(x)

    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    assert minimize_lbfgs(fun, x0, maxiter=3).status == MAX_ITER
    assert minimize_lbfgs(fun, x0, maxiter=3).nit == 3
    stopped = minimize_lbfgs(fun, x0, maxiter=100, callback=lambda x, f, g: True)
    assert (stopped.status, stopped.nit) == (STOPPED, 1)

    def raise_stop(x, f, g):
        raise StopIteration

    assert minimize_lbfgs(fun, x0, maxiter=100, callback=raise_stop).status == STOPPED
    loose = minimize_lbfgs(fun, x0, maxiter=1000, ftol=1e-2)
    assert loose.status == CONVERGED and "ftol" in loose.message and loose.nit < 100
    none = minimize_lbfgs(fun, x0, maxiter=0)
    assert none.nit == 0 and none.nfev == 1 and np.array_equal(none.x, x0)
    flat = minimize_lbfgs(lambda x: (0.0, np.zeros_like(x)), x0, maxiter=10)
    assert flat.status == CONVERGED and flat.nit == 0

    def wrong_sign(x):  # a gradient pointing uphill: no step along -g decreases f
        return rosen(x), -rosen_der(x)

    failed = minimize_lbfgs(wrong_sign, x0, maxiter=10)
    assert failed.status == LINE_SEARCH_FAILED and failed.nit == 0
    np.testing.assert_array_equal(failed.x, x0)


def test_logistic_objective_same_minimiser_as_scipy():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 8))
    y = (X @ rng.standard_normal(8) + 0.3 * rng.standard_normal(300) > 0).astype(float)
    alpha = 1e-2

    def fun(w):
        z = X @ w
        loss = np.logaddexp(0.0, z) - y * z
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        return loss.mean() + 0.5 * alpha * w @ w, X.T @ (p - y) / len(y) + alpha * w

    gtol = 1e-10
    ours = minimize_lbfgs(fun, np.zeros(8), maxiter=500,
                          callback=lambda w, f, g: np.abs(g).max() <= gtol)
    theirs = minimize(fun, np.zeros(8), jac=True, method="L-BFGS-B",
                      options={"gtol": gtol, "ftol": 0.0, "maxiter": 500})
    # a strongly convex objective (Hessian ≥ alpha I): |w - w*| ≤ |g| / alpha for each run
    assert ours.status == STOPPED
    assert np.abs(ours.x - theirs.x).max() <= 2 * np.sqrt(8) * gtol / alpha
    assert ours.nfev <= ours.nit + 10  # the unit step is accepted nearly always



@pytest.mark.parametrize("seed", [6, 7, 8])
def test_a_run_that_rounding_stalls_stops_and_says_so(seed):
    """Gradients with an error floor (1e-6 here, as float32 rounding gives): once the iterates
    sit on that floor, no step improves f or max |g| but by chance, and such records of a
    stationary noise get rarer (about one in k at the k-th step): the run must end far before
    maxiter, by the stall rule or by a failed line search."""
    rng = np.random.default_rng(seed)
    n = 20
    scale = np.linspace(1.0, 10.0, n)

    def fun(x):
        # noise that is a function of x (the same point gives the same value, as rounding
        # does), seeded by a checksum of its bytes (not hash(), which differs per process)
        noise = np.random.default_rng(zlib.crc32(x.tobytes()) + seed)
        f = 0.5 * np.sum(scale * x * x) * (1.0 + 1e-15 * noise.standard_normal())
        return f, scale * x + 1e-6 * noise.standard_normal(n)

    result = minimize_lbfgs(fun, rng.standard_normal(n), maxiter=10_000,
                            callback=lambda x, f, g: np.abs(g).max() <= 1e-12)
    assert (result.status, result.message) in {(CONVERGED, _lbfgs._STALLED.format(_lbfgs.MAX_STALL)),
                                               (LINE_SEARCH_FAILED, _lbfgs._NO_STEP)}
    assert result.nit < 2_000
    assert np.abs(result.x).max() < 1e-5  # it did get to the floor first


def test_fit_below_rounding_stops_early_with_a_warning():
    """tol far below what float64 sums resolve (raw breast cancer, float32 and float64 X): the
    fit ends long before max_iter, warns, and says why. (At tol=1e-14 the float64 fit, with
    100 correction pairs, does reach max |g| <= 1e-14; 1e-18 is below the rounding of a
    gradient component of features up to 4e3 on any CPU.)"""
    X, y = load_breast_cancer(return_X_y=True)
    for X_ in (X.astype(np.float32), X):
        with pytest.warns(ConvergenceWarning, match="stopped decreasing") as caught:
            model = LogisticRegression(solver="lbfgs", tol=1e-18, max_iter=20_000).fit(X_, y)
        assert model.n_iter_[0] < 5_000
        message = str(caught[0].message)
        assert "improved in" in message or "line search" in message
