"""Every bad input gets a ValueError or TypeError that names the problem."""

import warnings

import numpy as np
import pytest

import fastlr
from fastlr import LogisticRegression

rng = np.random.default_rng(0)
X_OK = rng.standard_normal((20, 3))
Y_OK = np.array([0, 1] * 10)


def with_value(array, index, value):
    out = np.array(array, dtype=np.float64)
    out[index] = value
    return out


BAD_FIT_INPUTS = [
    ("nan-in-X", with_value(X_OK, (3, 1), np.nan), Y_OK, None, ValueError, "NaN"),
    ("inf-in-X", with_value(X_OK, (0, 0), np.inf), Y_OK, None, ValueError, "infinity"),
    ("nan-in-y", X_OK, with_value(Y_OK, 2, np.nan), None, ValueError, "NaN"),
    ("inf-in-y", X_OK, with_value(Y_OK, 2, np.inf), None, ValueError, "infinity|Unknown label"),
    ("nan-in-sample-weight", X_OK, Y_OK, with_value(np.ones(20), 4, np.nan), ValueError, "NaN"),
    ("negative-sample-weight", X_OK, Y_OK, with_value(np.ones(20), 4, -1), ValueError, "Negative values"),
    ("zero-sample-weights", X_OK, Y_OK, np.zeros(20), ValueError, "non-zero"),
    ("sample-weight-length", X_OK, Y_OK, np.ones(19), ValueError, "sample_weight"),
    ("length-mismatch", X_OK, Y_OK[:-1], None, ValueError, "inconsistent numbers of samples"),
    ("1-D-X", X_OK[:, 0], Y_OK, None, ValueError, "2D array"),
    ("3-D-X", X_OK.reshape(20, 3, 1), Y_OK, None, ValueError, "dim"),
    ("empty-X", np.empty((0, 3)), np.empty(0), None, ValueError, "0 sample"),
    ("no-features", np.empty((20, 0)), Y_OK, None, ValueError, "0 feature"),
    ("non-numeric-X", np.array([["a", "b", "c"]] * 20), Y_OK, None, ValueError, "convert|numeric"),
    ("single-class", X_OK, np.zeros(20), None, ValueError, "at least 2 classes"),
    ("continuous-y", X_OK, np.linspace(0, 1, 20), None, ValueError, "Unknown label type"),
]


@pytest.mark.parametrize("X, y, sw, error, match",
                         [case[1:] for case in BAD_FIT_INPUTS], ids=[case[0] for case in BAD_FIT_INPUTS])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_data_is_rejected_with_a_clear_message(method, X, y, sw, error, match):
    model = LogisticRegression()
    kwargs = {"classes": [0, 1]} if method == "partial_fit" and "single" not in match else {}
    if method == "partial_fit" and match == "at least 2 classes":
        kwargs = {"classes": [0]}
    with pytest.raises(error, match=match):
        getattr(model, method)(X, y, sample_weight=sw, **kwargs)


BAD_PARAMS = [
    ("C=0", {"C": 0}, ValueError, "C must be > 0"),
    ("C<0", {"C": -1.0}, ValueError, "C must be > 0"),
    ("C=nan", {"C": float("nan")}, ValueError, "C must be finite"),
    ("C-str", {"C": "big"}, TypeError, "C must be a real number"),
    ("tol<0", {"tol": -1e-3}, ValueError, "tol must be >= 0"),
    ("batch_size=0", {"batch_size": 0, "solver": "sgd"}, ValueError, "batch_size must be >= 1"),
    ("batch_size-float", {"batch_size": 2.5, "solver": "sgd"}, TypeError, "batch_size must be an integer"),
    ("eta0=0", {"eta0": 0.0, "solver": "gd"}, ValueError, "eta0 must be > 0"),
    ("eta0<0", {"eta0": -0.1, "solver": "sgd"}, ValueError, "eta0 must be > 0"),
    ("max_iter<0", {"max_iter": -1}, ValueError, "max_iter must be >= 0"),
    ("unknown-loss", {"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
    ("unknown-solver", {"solver": "newton"}, ValueError, "unknown solver 'newton'"),
    ("unknown-backend", {"backend": "tpu"}, ValueError, "unknown backend 'tpu'"),
    ("unknown-penalty", {"penalty": "l3"}, ValueError, "unknown penalty .l3."),
    ("l1-penalty", {"l1_ratio": 1.0}, ValueError, "L1 and elastic-net penalties are not implemented"),
    ("elastic-net", {"l1_ratio": 0.5}, ValueError, "L1 and elastic-net penalties are not implemented"),
    ("l1_ratio>1", {"l1_ratio": 1.5}, ValueError, "l1_ratio must be in"),
    ("C=-inf", {"C": -np.inf}, ValueError, "C must be finite"),
    ("unknown-learning-rate", {"learning_rate": "optimal"}, ValueError, "unknown learning_rate"),
    ("backtracking-with-lbfgs", {"learning_rate": "backtracking"}, ValueError, "solver='gd' only"),
    ("bad-shuffle", {"shuffle": "blocks", "solver": "sgd"}, ValueError, "shuffle must be"),
    ("bad-class-weight", {"class_weight": "auto"}, ValueError, "class_weight"),
    ("class-weight-list", {"class_weight": [1, 2]}, ValueError, "class_weight must be a dict"),
    ("class-weight-negative", {"class_weight": {0: -1.0}}, ValueError, "finite and >= 0"),
]


@pytest.mark.parametrize("params, error, match", [case[1:] for case in BAD_PARAMS],
                         ids=[case[0] for case in BAD_PARAMS])
def test_bad_parameters_are_rejected_at_fit(params, error, match):
    with pytest.raises(error, match=match):
        LogisticRegression(**params).fit(X_OK, Y_OK)


def test_partial_fit_needs_classes_first_and_consistent_labels():
    with pytest.raises(ValueError, match="classes must be given"):
        LogisticRegression().partial_fit(X_OK, Y_OK)
    model = LogisticRegression().partial_fit(X_OK, Y_OK, classes=[0, 1])
    with pytest.raises(ValueError, match="labels not in classes_"):
        model.partial_fit(X_OK, np.full(20, 2))
    with pytest.raises(ValueError, match="differ from classes_"):
        model.partial_fit(X_OK, Y_OK, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X_OK[:, :2], Y_OK)


def test_predict_rejects_wrong_width_and_nan():
    model = LogisticRegression().fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(X_OK[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(with_value(X_OK, (0, 0), np.nan))


BAD_LOSS_GRAD = [
    ("unknown-loss", dict(loss="hinge"), ValueError, "unknown loss"),
    ("unknown-backend", dict(backend="gpu"), ValueError, "unknown backend"),
    ("coef-width", dict(coef=np.zeros(4)), ValueError, "coef has 4 features"),
    ("coef-3d", dict(coef=np.zeros((1, 1, 3))), ValueError, "coef must be 1-D or 2-D"),
    ("labels-out-of-range", dict(y=np.full(20, 2)), ValueError, r"class codes in \{0, 1\}"),
    ("labels-fractional", dict(y=np.full(20, 0.5)), ValueError, "class codes"),
    ("labels-strings", dict(y=np.array(["a"] * 20)), TypeError, "integer class codes"),
    ("labels-length", dict(y=np.zeros(19, int)), ValueError, "y has 19 samples"),
    ("intercept-shape", dict(coef=np.zeros((3, 3)), intercept=np.zeros(2)), ValueError, "intercept"),
    ("intercept-nan", dict(intercept=np.nan), ValueError, "intercept"),
    ("coef-nan", dict(coef=np.array([0.0, np.nan, 0.0])), ValueError, "NaN"),
    ("X-nan", dict(X=with_value(X_OK, (1, 1), np.nan)), ValueError, "NaN"),
]


@pytest.mark.parametrize("overrides, error, match", [case[1:] for case in BAD_LOSS_GRAD],
                         ids=[case[0] for case in BAD_LOSS_GRAD])
def test_loss_grad_rejects_bad_input(overrides, error, match):
    args = dict(X=X_OK, y=Y_OK, coef=np.zeros(3), intercept=0.0)
    args.update(overrides)
    kwargs = {k: args.pop(k) for k in ("loss", "backend") if k in args}
    with pytest.raises(error, match=match):
        fastlr.loss_grad(args["X"], args["y"], args["coef"], args["intercept"], **kwargs)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("coef", ["zeros", "random", "multinomial"])
@pytest.mark.parametrize("loss", ["log_loss", "prob_squared"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_loss_grad_finds_non_finite_X_from_its_single_pass(value, coef, loss, dtype):
    """loss_grad skips the separate finiteness pass; every NaN/inf must still be reported."""
    rng = np.random.default_rng(0)
    n, d = 5000, 4
    W = {"zeros": np.zeros(d), "random": rng.standard_normal(d),
         "multinomial": rng.standard_normal((3, d))}[coef]
    y = rng.integers(0, 3 if coef == "multinomial" else 2, n)
    for row, col in [(0, 0), (n - 1, d - 1), (2500, 2)]:
        X = rng.standard_normal((n, d)).astype(dtype)
        X[row, col] = value
        for label in (0, 1):
            y[row] = label
            with pytest.raises(ValueError, match="NaN|infinity"):
                fastlr.loss_grad(X, y, W, 0.0, loss=loss)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("case", ["lbfgs", "gd", "sgd", "newton-cg", "newton-cholesky", "multinomial",
                                  "squared", "zero-weight-row", "warm-start", "float32"])
def test_fit_reports_non_finite_X_for_every_solver_and_start(case, value):
    """fit finds NaN/inf in X from the first gradient for lbfgs/gd: check every way in.

    Only the error, no RuntimeWarning before it: the default solver here (newton-cholesky)
    formed NumPy's Hessian from the bad X first ("invalid value encountered in matmul")."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 4))
    y = rng.integers(0, 3 if case == "multinomial" else 2, 300)
    solvers = ("lbfgs", "gd", "sgd", "newton-cg", "newton-cholesky")
    params = {"solver": case} if case in solvers else {}
    params.update({"squared": {"loss": "prob_squared"}, "warm-start": {"warm_start": True}}.get(case, {}))
    model = LogisticRegression(**params)
    if case == "warm-start":
        model.fit(X, y)
    sw = np.ones(300)
    bad_row = 123
    if case == "zero-weight-row":
        sw[bad_row] = 0.0
    if case == "float32":
        X = X.astype(np.float32)
    X[bad_row, 2] = value
    with warnings.catch_warnings(), pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        warnings.simplefilter("error", RuntimeWarning)
        model.fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_sgd_finds_nonfinite_x_without_a_pass_before_training(bad, call):
    """SGD no longer scans X before training: the first non-finite step finds NaN/inf (any row is
    in a step of the first epoch), and the error is still scikit-learn's, naming the value."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 4))
    y = (X[:, 0] > 0).astype(int)
    X[2718, 1] = bad
    model = fastlr.LogisticRegression(solver="sgd", batch_size=64)
    kwargs = {"classes": [0, 1]} if call == "partial_fit" else {}
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
        getattr(model, call)(X, y, **kwargs)
    assert not hasattr(model, "coef_")  # nothing half-fitted is left behind


def test_sgd_divergence_on_finite_x_is_still_a_warning():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 3)) * 1e150
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(fastlr.DivergenceWarning):
        fastlr.LogisticRegression(solver="sgd", eta0=1e10, learning_rate="constant",
                                  max_iter=3).fit(X, y)
