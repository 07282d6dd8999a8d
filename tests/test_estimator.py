"""LogisticRegression against scikit-learn, and scikit-learn's own estimator checks."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastlr import LogisticRegression, loss_grad
from reference import assert_fits_agree


def standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("loader", [load_breast_cancer, load_digits], ids=["breast_cancer", "digits"])
@pytest.mark.parametrize("C", [0.1, 1.0], ids=["C=0.1", "C=1"])
def test_coefficients_match_sklearn(loader, C, backend):
    X, y = standardised(loader)
    ref = SklearnLogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    # tol=1e-8 is reachable in float64 on these problems (1e-10 is below their rounding floor)
    model = LogisticRegression(C=C, tol=1e-8, max_iter=10000, backend=backend).fit(X, y)
    # fastlr's own gradient test holds against the float64 reference, and the two fits are
    # as close as their gradients and the objective's strong convexity allow (any CPU)
    assert_fits_agree(model, ref, X, y, tol=1e-8, tol_b=1e-7)
    # |Δp| ≤ |Δz|/4 ≤ (‖x‖ + 1)‖Δθ‖/4: probabilities agree far below 1e-5 when the above holds
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(model.classes_, ref.classes_)


def test_no_penalty_and_sample_weights_match_sklearn():
    X, y = standardised(load_breast_cancer)
    X = X[:, :5]
    sw = np.random.default_rng(0).uniform(0.2, 3, len(y))
    ref = SklearnLogisticRegression(C=0.3, tol=1e-10, max_iter=10000).fit(X, y, sample_weight=sw)
    model = LogisticRegression(C=0.3, tol=1e-9).fit(X, y, sample_weight=sw)
    assert_fits_agree(model, ref, X, y, sample_weight=sw, tol=1e-9, tol_b=1e-8)
    # no penalty: these 5 features do not separate the classes, so F is still strongly convex
    ref = SklearnLogisticRegression(C=np.inf, tol=1e-10, max_iter=10000).fit(X, y)
    model = LogisticRegression(C=np.inf, tol=1e-9).fit(X, y)
    assert_fits_agree(model, ref, X, y, C=np.inf, tol=1e-9, tol_b=1e-8)


def test_class_weight_equals_sample_weight():
    X, y = standardised(load_digits)
    weights = {c: 1.0 + c for c in range(10)}
    sw = np.array([weights[c] for c in y])
    a = LogisticRegression(class_weight=weights, tol=1e-8, max_iter=1000).fit(X, y)
    b = LogisticRegression(tol=1e-8, max_iter=1000).fit(X, y, sample_weight=sw)
    # the same weights reach the same kernels: the same arithmetic on one machine, any CPU
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    assert_fits_agree(a, b, X, y, sample_weight=sw, tol=1e-8, tol_b=1e-8)
    X, y = X[:300], y[:300]
    ref = SklearnLogisticRegression(class_weight="balanced", tol=1e-10, max_iter=10000).fit(X, y)
    model = LogisticRegression(class_weight="balanced", tol=1e-8, max_iter=1000).fit(X, y)
    balanced = compute_sample_weight("balanced", y)
    assert_fits_agree(model, ref, X, y, sample_weight=balanced, tol=1e-8, tol_b=1e-7)


def test_string_labels_and_methods_are_consistent():
    X, y = standardised(load_digits)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    labels = names[y]
    model = LogisticRegression().fit(X, labels)
    assert set(model.classes_) == set(names)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, rtol=1e-10)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(proba, axis=1)])
    assert model.score(X, labels) > 0.95
    assert model.decision_function(X).shape == (len(y), 10)


def test_binary_predict_log_proba_is_finite_for_huge_scores():
    X = np.array([[-1.0], [1.0]] * 5)
    y = np.array([0, 1] * 5)
    model = LogisticRegression(C=np.inf, max_iter=5).fit(X, y)
    model.coef_ = np.array([[1e4]])
    log_proba = model.predict_log_proba(np.array([[1.0], [-1.0]]))
    assert np.all(np.isfinite(log_proba))
    np.testing.assert_allclose(log_proba, [[-1e4, 0.0], [0.0, -1e4]])


def test_float32_input_reaches_the_float64_objective():
    """float32 X is fitted in float32 precision (scores x·w in float32): the same optimum, to
    what float32 rounding of the scores allows."""
    X, y = standardised(load_breast_cancer)
    a = LogisticRegression(tol=1e-8).fit(X, y)
    X32 = X.astype(np.float32)
    # tol=1e-5: the float32 scores make F noisy at ~1e-7 relative, below which L-BFGS's line
    # search cannot go; fastlr's own gradient must still meet it up to that rounding
    b = LogisticRegression(tol=1e-5).fit(X32, y)
    # the float32 problem (X rounded to float32) is what b minimised: its float64 gradient
    # there is ≤ tol + the score rounding bound, and the two optima differ by ‖X − X32‖ effects
    assert_fits_agree(b, LogisticRegression(tol=1e-8).fit(X32.astype(np.float64), y), X32, y, tol=1e-5)

    def objective(model):
        mean_loss = loss_grad(X, y, model.coef_, model.intercept_)[0]
        return mean_loss + np.sum(model.coef_ ** 2) / (2 * len(y))

    # F(b) − F* ≤ ‖∇F(b)‖² / (2μ) (≈ 1e-9 here) plus the change of the data by float32 rounding
    assert objective(b) == pytest.approx(objective(a), rel=1e-6)


@pytest.mark.parametrize("k", [2, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float32_X_gets_float32_scores_and_probabilities(k, sparse):
    """As in scikit-learn, float32 X gets float32 scores and probabilities (and labels of the
    classes' dtype); fastlr computes them in float64 from its float64 coef_ and rounds once, so
    they are the float64 results for the same (float32) values of X, rounded to float32."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression as SKLogisticRegression

    rng = np.random.default_rng(5)
    X32 = rng.standard_normal((400, 6)).astype(np.float32)
    y = rng.integers(0, k, 400)
    model = LogisticRegression().fit(X32, y)
    X64 = X32.astype(np.float64)  # the same values
    if sparse:
        X32, X64 = sp.csr_matrix(X32), sp.csr_matrix(X64)
    reference = SKLogisticRegression().fit(X32, y)
    for method in ("decision_function", "predict_proba", "predict_log_proba"):
        got = getattr(model, method)(X32)
        assert got.dtype == np.float32 == getattr(reference, method)(X32).dtype, method
        want = getattr(model, method)(X64)
        assert want.dtype == np.float64
        # float32 rounding of the float64 result (2^-24 relative), and the scores of the two
        # dtypes' kernels summed in other orders (a few float64 ulps of |x|·|w|)
        np.testing.assert_allclose(got, want, rtol=2 ** -23, atol=1e-12, err_msg=method)
    np.testing.assert_array_equal(model.predict(X32), model.predict(X64))


def test_warm_start_continues_from_previous_solution():
    X, y = standardised(load_breast_cancer)
    model = LogisticRegression(warm_start=True, tol=1e-8, max_iter=1000).fit(X, y)
    first = model.n_iter_
    model.fit(X, y)
    assert model.n_iter_ < first / 3


def test_squared_loss_fits_separable_data():
    X, y = standardised(load_breast_cancer)
    model = LogisticRegression(loss="prob_squared", max_iter=500).fit(X, y)
    assert model.score(X, y) > 0.97


def test_pickle_round_trip_predicts_identically():
    X, y = standardised(load_digits)
    model = LogisticRegression(max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_proba(X), model.predict_proba(X))


def test_backend_auto_is_reported():
    X, y = standardised(load_breast_cancer)
    assert LogisticRegression().fit(X, y).backend_ == "cpu"


@parametrize_with_checks([
    LogisticRegression(),
    LogisticRegression(solver="sgd", learning_rate="adaptive", random_state=0, max_iter=200),
    LogisticRegression(solver="gd", learning_rate="backtracking", eta0=1.0, max_iter=500),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("labels", [
    np.array([0, 1, 2], dtype=np.int64),   # 0..k-1 in the codes' dtype: the codes are returned
    np.array([0, 1], dtype=np.int64),
    np.array([0, 1, 2], dtype=np.int32),   # other dtypes and values: gathered from classes_
    np.array([1, 2, 3], dtype=np.int64),
    np.array([-1, 0, 1], dtype=np.int64),
    np.array([0.0, 1.0, 2.0]),
    np.array([False, True]),
    np.array(["a", "b", "c"]),
])
def test_predict_labels_are_classes_of_the_largest_score(labels):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 4))
    y = labels[rng.integers(0, len(labels), 300)]
    model = LogisticRegression().fit(X, y)
    got = model.predict(X)
    scores = model.decision_function(X)
    codes = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
    expected = model.classes_[codes]
    assert got.dtype == model.classes_.dtype == labels.dtype
    np.testing.assert_array_equal(got, expected)
    got[0] = got[1]  # the returned array is the caller's own: writing it leaves the model intact
    np.testing.assert_array_equal(model.classes_, np.unique(y))


@pytest.mark.parametrize("d2, k2", [(3, 2), (5, 3)], ids=["fewer-features", "more-classes"])
def test_warm_start_from_another_shape_is_an_error_as_in_sklearn(d2, k2):
    """scikit-learn raises ValueError when warm_start's previous coef_ does not fit the new X/y;
    fastlr did the same fit from zeros without a word."""
    from sklearn.linear_model import LogisticRegression as SkLR

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 5)), np.arange(60) % 2
    X2, y2 = rng.standard_normal((60, d2)), np.arange(60) % k2
    for Est in (LogisticRegression, SkLR):
        model = Est(warm_start=True).fit(X, y)
        with pytest.raises(ValueError):
            model.fit(X2, y2)
    model = LogisticRegression(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match=r"warm_start=True: the previous coef_ has shape \(1, 5\)"):
        model.fit(X2, y2)
