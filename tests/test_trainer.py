"""Solvers: the seed's gradient descent, SGD epochs against the reference backend, stopping."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastlr import DivergenceWarning, LogisticRegression
from fastlr._math import LOG, SQUARED
from fastlr.backends import CPUBackend, NumpyBackend, SGDSchedule
from fastlr.trainer import Objective, TrainOptions, train
from reference import FitPoint, assert_fits_agree, seed_gradient_descent


def binary_data(n=200, d=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    w = rng.standard_normal(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w)))).astype(int)
    return X, y


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_constant_gd_reproduces_the_seed_numbers(backend):
    X, y = binary_data(60, 3)
    W_seed, b_seed = seed_gradient_descent(X, y, lr=0.5, n_iter=25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(loss="prob_squared", C=np.inf, solver="gd", learning_rate="constant",
                                   eta0=0.5, max_iter=25, tol=0.0, backend=backend).fit(X, y)
    assert model.n_iter_ == 25
    np.testing.assert_allclose(model.coef_[0], W_seed, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_[0], b_seed, rtol=1e-12)


def test_gd_step_includes_the_penalty_gradient_exactly():
    X, y = binary_data(80, 4)
    C, eta = 0.5, 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(solver="gd", eta0=eta, max_iter=1, tol=0.0, C=C).fit(X, y)
    # one step from zero: w1 = -eta (mean gradient at 0) ; the penalty gradient at 0 is 0
    r = 0.5 - y
    np.testing.assert_allclose(model.coef_[0], -eta * (X.T @ r) / len(y), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model2 = LogisticRegression(solver="gd", eta0=eta, max_iter=2, tol=0.0, C=C).fit(X, y)
    w1, b1 = model.coef_[0], model.intercept_[0]
    p = 1 / (1 + np.exp(-(X @ w1 + b1)))
    grad = X.T @ (p - y) / len(y) + w1 / (C * len(y))
    np.testing.assert_allclose(model2.coef_[0], w1 - eta * grad, rtol=1e-12)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss_id", [LOG, SQUARED], ids=["log", "squared"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("gather", [False, True], ids=["contiguous", "gathered"])
def test_sgd_epoch_matches_numpy_backend(k, loss_id, weighted, gather):
    rng = np.random.default_rng(1)
    n, d = 1003, 6
    X = rng.standard_normal((n, d))
    y = rng.integers(0, max(k, 2), n).astype(np.int32)
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    batch_size = 64
    order = rng.permutation(-(-n // batch_size))
    rows = rng.permutation(n) if gather else None
    schedule = SGDSchedule(alpha=1e-3, fit_intercept=True, eta0=0.2, power_t=0.5, step0=3,
                           batch_size=batch_size)
    results = []
    for backend in (CPUBackend(), NumpyBackend()):
        data = backend.put(X, y, sw)
        W, b = np.zeros((k, d)), np.zeros(k)
        loss_sum, steps = backend.sgd_epoch(data, W, b, loss_id, schedule, order, rows)
        results.append((loss_sum, steps, W, b))
    (l1, s1, W1, b1), (l2, s2, W2, b2) = results
    assert s1 == s2 == len(order)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    np.testing.assert_allclose(W1, W2, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(b1, b2, rtol=1e-10, atol=1e-13)


def test_sgd_converges_to_the_lbfgs_objective():
    X, y = binary_data(4000, 5, seed=2)
    exact = LogisticRegression(tol=1e-10).fit(X, y)
    sgd = LogisticRegression(solver="sgd", learning_rate="invscaling", eta0=0.5, max_iter=60,
                             tol=None, batch_size=32, random_state=0).fit(X, y)
    assert sgd.loss_curve_[-1] == pytest.approx(exact.loss_curve_[-1], rel=2e-3)
    np.testing.assert_allclose(sgd.coef_, exact.coef_, rtol=0.05, atol=0.02)


def test_sgd_is_reproducible_with_random_state():
    X, y = binary_data(1000, 4, seed=3)
    a = LogisticRegression(solver="sgd", max_iter=5, tol=None, random_state=7).fit(X, y)
    b = LogisticRegression(solver="sgd", max_iter=5, tol=None, random_state=7).fit(X, y)
    c = LogisticRegression(solver="sgd", max_iter=5, tol=None, random_state=8).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_partial_fit_on_all_data_equals_one_sgd_epoch_of_fit():
    X, y = binary_data(500, 4, seed=4)
    params = dict(solver="sgd", batch_size=50, eta0=0.3, random_state=3, tol=None)
    fitted = LogisticRegression(max_iter=1, **params).fit(X, y)
    streamed = LogisticRegression(**params).partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(fitted.coef_, streamed.coef_)
    np.testing.assert_array_equal(fitted.intercept_, streamed.intercept_)


def test_partial_fit_over_chunks_approaches_the_full_fit():
    X, y = binary_data(6000, 4, seed=5)
    exact = LogisticRegression(C=np.inf, tol=1e-10).fit(X, y)
    model = LogisticRegression(C=np.inf, eta0=0.2, batch_size=20, random_state=0)
    for epoch in range(8):
        for start in range(0, len(y), 1000):
            model.partial_fit(X[start:start + 1000], y[start:start + 1000], classes=[0, 1])
    np.testing.assert_allclose(model.coef_, exact.coef_, rtol=0.1, atol=0.05)
    assert model.t_ == 8 * 6 * 50


@pytest.mark.parametrize("solver", ["gd", "sgd"])
def test_divergence_warns_and_keeps_last_finite_coefficients(solver):
    X, y = binary_data(300, 3, seed=6)
    X = X * 1e150  # a step of eta0 * gradient overflows quickly
    with pytest.warns(DivergenceWarning, match="diverged"):
        model = LogisticRegression(solver=solver, C=1e-300, eta0=1e10, max_iter=50,
                                   loss="prob_squared", random_state=0).fit(X, y)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))


def test_max_iter_reached_warns():
    X, y = binary_data(300, 3, seed=7)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        LogisticRegression(max_iter=2, tol=1e-12).fit(X, y)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive", "backtracking"])
def test_gd_schedules_decrease_the_objective(learning_rate):
    X, y = binary_data(400, 4, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(solver="gd", learning_rate=learning_rate, eta0=1.0, max_iter=40).fit(X, y)
    curve = np.array(model.loss_curve_)
    assert curve[-1] < curve[0]
    if learning_rate == "backtracking":
        assert np.all(np.diff(curve) <= 0)  # Armijo: every accepted step decreases F


def test_lbfgs_loss_curve_is_the_objective_it_reports():
    X, y = binary_data(500, 4, seed=9)
    model = LogisticRegression(C=0.7).fit(X, y)
    backend = CPUBackend()
    objective = Objective(backend, backend.put(X, y.astype(np.int32)), LOG, 1,
                          1 / (0.7 * len(y)), True)
    value, _ = objective(objective.pack(model.coef_, model.intercept_))
    assert model.loss_curve_[-1] == pytest.approx(value, rel=1e-12)
    assert len(model.loss_curve_) == model.n_iter_


def test_trainer_is_the_same_for_every_backend():
    X, y = binary_data(700, 5, seed=10)
    results = []
    for backend in (CPUBackend(), NumpyBackend()):
        data = backend.put(X, y.astype(np.int32))
        results.append(train(backend, data, LOG, 1, 1e-3, True, TrainOptions(tol=1e-8)))
    # both stop at max|∇F| ≤ 1e-8 (checked on the float64 reference gradient); F is strongly
    # convex, so each is within ‖∇F‖₂ / μ of the optimum and F − F* ≤ ‖∇F‖₂² / (2μ), whatever
    # the CPU and summation order (tests/reference.py: fit_gap_bound)
    C = 1 / (1e-3 * len(y))  # alpha = 1 / (C n)
    pa, pb = assert_fits_agree((results[0].coef, results[0].intercept),
                               (results[1].coef, results[1].intercept), X, y, C=C, tol=1e-8, tol_b=1e-8)
    assert isinstance(pa, FitPoint)
    # F − F* ≤ ‖∇F‖² / (2μ) ≈ 1e-14 here: the reported objectives agree far below 1e-12
    assert abs(results[0].loss_curve[-1] - results[1].loss_curve[-1]) <= 1e-12


# -- a solver that stops short always says so ----------------------------------------------------

def _timestamp_like(n=2000, seed=0, offset=1.7e9):
    """A standard-normal column next to a Unix-timestamp-like one (offset + noise)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.standard_normal(n), offset + rng.standard_normal(n) * 1e3])
    y = (X[:, 0] + 0.5 * rng.standard_normal(n) > 0).astype(int)
    return X, y


def _gradient(model, X, y, C=1.0, backend=None):
    """∇F of the mean objective at the fitted model (packed), by ``backend`` (the NumPy reference)."""
    backend = NumpyBackend() if backend is None else backend
    codes = np.searchsorted(model.classes_, y).astype(np.int32)
    k = model.coef_.shape[0]
    objective = Objective(backend, backend.put(np.asarray(X, dtype=np.float64), codes), LOG, k,
                          1 / (C * len(y)), True)
    return objective(objective.pack(model.coef_, model.intercept_))[1]


def _max_gradient(model, X, y, C=1.0):
    """max |∇F| of the mean objective at the fitted model, from the NumPy reference backend."""
    return np.max(np.abs(_gradient(model, X, y, C)))


@pytest.mark.parametrize("X, y", [
    ([[1e150, 0], [-1e150, 0], [2e150, 1], [-2e150, 1]], [1, 0, 1, 0]),
    ([[3e120, 1], [-1e120, 1], [2e120, 0], [-5e120, 0], [1e120, 1]], [1, 0, 1, 0, 0]),
], ids=["1e150", "3e120"])
@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
def test_huge_features_warn_naming_solver_reason_gradient_and_scaling(X, y, solver):
    with pytest.warns(ConvergenceWarning) as record:
        LogisticRegression(solver=solver, random_state=0).fit(np.array(X), np.array(y))
    message = " ".join(str(w.message) for w in record if issubclass(w.category, ConvergenceWarning))
    assert f"{solver} failed to converge" in message  # scikit-learn's wording
    assert "scales differ by orders of magnitude" in message and "StandardScaler" in message
    if solver != "sgd":
        assert "gradient component" in message


def test_scale_hint_reads_sparse_data_as_the_dense_reference():
    """The hint's column scales are NumPy's max|x| per column, for dense and sparse X alike
    (sparse X got the generic advice only), and a badly scaled sparse fit names the spread."""
    import scipy.sparse as sp

    from fastlr._scale_hint import column_scales

    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 6)) * np.logspace(-2, 3, 6)
    X[rng.random(X.shape) < 0.5] = 0.0
    expected = np.abs(X).max(axis=0)
    for form in (np.asarray, sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        np.testing.assert_array_equal(column_scales(form(X)), expected)
    np.testing.assert_array_equal(column_scales(sp.csr_matrix(X), max_rows=100), np.abs(X[::3]).max(axis=0))
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(ConvergenceWarning, match="scales differ by orders of magnitude") as record:
        LogisticRegression(solver="gd", max_iter=3).fit(sp.csr_matrix(X), y)
    message = " ".join(str(w.message) for w in record)
    assert f"to {expected.max():.3g}" in message


@pytest.mark.parametrize("offset", [1.7e9, 3e7])
@pytest.mark.parametrize("kwargs", [{}, {"tol": 1e-10}, {"solver": "gd"},
                                    {"solver": "gd", "learning_rate": "backtracking"},
                                    {"solver": "sgd", "random_state": 0}],
                         ids=["lbfgs", "lbfgs-tol1e-10", "gd", "gd-backtracking", "sgd"])
def test_badly_scaled_column_never_stops_silently(kwargs, offset):
    X, y = _timestamp_like(offset=offset, seed=int(offset) % 7)
    tol = kwargs.get("tol", 1e-4)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegression(**kwargs).fit(X, y)
    messages = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    if kwargs.get("solver", "lbfgs") == "lbfgs" and not messages:
        # Whether L-BFGS gets through such a column at tol depends on the rounding of its
        # sums, i.e. on the CPU's vector width (it does with NUMBA_CPU_NAME=generic at 3e7, not
        # with AVX-512; on a Zen 3 it did at 1.7e9). Silence is right only if the solver's own
        # gradient (the cpu kernel's, deterministic on this machine) met tol, and that gradient
        # is a float64 evaluation of the true one: it agrees with the NumPy reference within
        # their rounding bounds. Those are large here: the score's rounding (~eps · |w_j x_ij|)
        # is multiplied by x_ij ≈ 1.7e9 in the gradient (1e-4 at 1.7e9 on the Zen 3, for a
        # converged model), so the reference's own max |∇F| may exceed tol.
        from reference import float64_gradient_bound

        # n x d = 2000 x 2 is below PARALLEL_MIN_WORK: newton-cholesky's gradient, lbfgs's and
        # this evaluation all come from the same serial gradient kernel, so this is bitwise
        # the gradient the solver tested against tol
        own = _gradient(model, X, y, backend=CPUBackend())
        assert np.max(np.abs(own)) <= tol * (1 + 1e-12)
        bound_w, bound_b = float64_gradient_bound(X, model.coef_, model.intercept_)
        bound = 2 * np.append(np.ravel(bound_w), bound_b)
        np.testing.assert_array_less(np.abs(own - _gradient(model, X, y)), bound)
        return
    assert any("scales differ by orders of magnitude" in m for m in messages), messages
    if kwargs.get("solver", "lbfgs") != "sgd":
        assert _max_gradient(model, X, y) > tol
    # scaled, the same data converges without a warning
    from sklearn.preprocessing import StandardScaler
    Xs = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        opts = {**kwargs, "max_iter": 2000} if kwargs.get("solver") == "gd" else kwargs
        if kwargs.get("solver") == "gd" and "learning_rate" not in kwargs:
            opts["eta0"] = 2.0
        LogisticRegression(**opts).fit(Xs, y)


@pytest.mark.parametrize("tol", [1e-4, 1e-7])
@pytest.mark.parametrize("seed, k", [(11, 2), (12, 2), (13, 4)])
def test_lbfgs_honours_tol_whenever_it_does_not_warn(tol, seed, k):
    """No ConvergenceWarning means max|∇F| ≤ tol, checked on the float64 reference objective."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((600, 6)) * rng.uniform(0.5, 3, 6)
    y = np.argmax(X @ rng.standard_normal((6, k)) + rng.gumbel(size=(600, k)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(tol=tol, C=0.5).fit(X, y)
    # the CPU kernel and the reference differ by float64 rounding of sums of 600 terms
    assert _max_gradient(model, X, y, C=0.5) <= tol * (1 + 1e-6) + 1e-12


def test_gd_that_runs_out_of_adaptive_steps_warns_unless_converged():
    X, y = _timestamp_like(n=500, seed=3)
    with pytest.warns(ConvergenceWarning, match="adaptive learning rate|max_iter"):
        LogisticRegression(solver="gd", learning_rate="adaptive", max_iter=500).fit(X, y)


def test_tol_none_runs_max_iter_without_a_warning():
    X, y = binary_data(200, 3, seed=14)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for solver in ("lbfgs", "gd", "sgd"):
            model = LogisticRegression(solver=solver, tol=None, max_iter=7, random_state=0).fit(X, y)
            assert model.n_iter_ <= 7


@pytest.mark.parametrize("shuffle, learning_rate", [(True, "constant"), ("rows", "invscaling"),
                                                     (True, "adaptive")])
@pytest.mark.parametrize("stop_after", [1, 4])
def test_sgd_resumed_from_its_history_equals_the_uninterrupted_run(shuffle, learning_rate, stop_after):
    """train_sgd(history=...) replays draws and stopping state: resume is bit for bit."""
    from fastlr.trainer import train_sgd
    X, y = binary_data(900, 4, seed=15)
    backend = CPUBackend()
    data = backend.put(X, y.astype(np.int32))
    options = TrainOptions(solver="sgd", max_iter=40, tol=1e-3, learning_rate=learning_rate, eta0=0.2,
                           batch_size=64, shuffle=shuffle, random_state=9, n_iter_no_change=3)
    W, b = np.zeros((1, 4)), np.zeros(1)
    straight = train_sgd(backend, data, LOG, W, b, 1e-3, True, options)
    W1, b1 = np.zeros((1, 4)), np.zeros(1)
    first = train_sgd(backend, data, LOG, W1, b1, 1e-3, True, options, max_epochs=stop_after)
    resumed = train_sgd(backend, data, LOG, W1, b1, 1e-3, True, options, step0=first[3],
                        history=first[1])
    assert straight[0] > stop_after  # the straight run went on past the interruption
    np.testing.assert_array_equal(W1, W)
    np.testing.assert_array_equal(b1, b)
    assert resumed[:4] == straight[:4]  # epochs, loss curve, converged, steps


def test_fit_warnings_name_the_users_line():
    """ConvergenceWarning and DivergenceWarning point at the call that fitted, not into fastlr."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)) * [1.0, 1e3, 1e-3, 1.0]
    y = (X[:, 0] > 0).astype(int)
    for kwargs, data, category in (({"max_iter": 2}, X, ConvergenceWarning),
                                   ({"solver": "sgd", "max_iter": 2}, X, ConvergenceWarning),
                                   ({"solver": "sgd", "eta0": 1e30}, X * 1e200, DivergenceWarning)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            LogisticRegression(**kwargs).fit(data, y)
        ours = [w for w in caught if issubclass(w.category, category)]
        assert ours, kwargs
        assert all(w.filename == __file__ for w in ours), [(w.filename, w.lineno) for w in ours]
