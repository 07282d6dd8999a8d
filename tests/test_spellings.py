"""scikit-learn's current spellings and attribute types (issue 16, issue 12 item 6).

References are scikit-learn itself (its ``C=np.inf`` / ``penalty=None`` fits, its
``n_iter_`` type) and fastlr's own fits under the old spellings, which must give the
same model bit for bit.
"""

import inspect
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.preprocessing import StandardScaler

import fastlr
from fastlr import LogisticRegression
from fastlr.model_file import load_model, save_model
from reference import FitPoint

import _cli_runner

X, Y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)[:200]
Y = Y[:200]
Y3 = np.arange(200) % 3


def _quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", UserWarning)
        return model.fit(*args, **kwargs)


@pytest.mark.parametrize("old, new", [("log", "log_loss"), ("squared", "prob_squared")])
def test_old_loss_names_warn_and_give_the_same_model(old, new):
    current = _quiet_fit(LogisticRegression(loss=new), X, Y)
    with pytest.warns(FutureWarning, match=f"loss='{old}' was renamed '{new}'"):
        legacy = LogisticRegression(loss=old).fit(X, Y)
    np.testing.assert_array_equal(legacy.coef_, current.coef_)
    with pytest.warns(FutureWarning, match=f"'{new}'"):
        old_value = fastlr.loss_grad(X, Y, current.coef_, current.intercept_, loss=old)
    new_value = fastlr.loss_grad(X, Y, current.coef_, current.intercept_, loss=new)
    assert old_value[0] == new_value[0]


def test_squared_error_is_not_a_loss_name():
    with pytest.raises(ValueError, match="unknown loss 'squared_error'"):
        LogisticRegression(loss="squared_error").fit(X, Y)


def test_one_default_backend_and_loss_everywhere():
    est = inspect.signature(LogisticRegression).parameters
    fun = inspect.signature(fastlr.loss_grad).parameters
    assert fun["backend"].default == est["backend"].default == "auto"
    assert fun["loss"].default == est["loss"].default == "log_loss"


@pytest.mark.parametrize("y", [Y, Y3], ids=["binary", "multinomial"])
def test_C_inf_is_no_penalty_as_in_sklearn(y):
    model = _quiet_fit(LogisticRegression(C=np.inf, tol=1e-10, max_iter=2000), X[:60], y[:60])
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        legacy = LogisticRegression(penalty=None, tol=1e-10, max_iter=2000).fit(X[:60], y[:60])
    np.testing.assert_array_equal(model.coef_, legacy.coef_)
    # scikit-learn's unpenalised fit: 60 rows, 30 features, separable, so F has no minimiser
    # and the coefficients are ill-determined (they grow until F ≈ 1e-10); the probabilities
    # are not. Each sample's loss −log p_y ≥ 1 − p_y ≥ max_c |p_c − [c = y]|, so on the
    # training rows max |p_a − p_b| ≤ n (F_a + F_b), F the unpenalised mean log-loss
    # (float64 reference), whatever the CPU and wherever each solver stopped.
    ref = SklearnLogisticRegression(C=np.inf, tol=1e-10, max_iter=10000).fit(X[:60], y[:60])
    F = [FitPoint(X[:60], y[:60], m.coef_, m.intercept_, C=np.inf, classes=m.classes_).value
         for m in (model, ref)]
    assert max(F) * 60 <= 1e-3, F  # both fits are close to the separating limit
    np.testing.assert_allclose(model.predict_proba(X[:60]), ref.predict_proba(X[:60]), rtol=0,
                               atol=60 * sum(F) + 1e-12)


def test_penalty_is_deprecated_and_None_says_C_is_ignored():
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        LogisticRegression(penalty="l2").fit(X, Y)
    with pytest.warns(UserWarning, match="penalty=None will ignore the C"), \
            pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        ignored = LogisticRegression(penalty=None, C=0.01, max_iter=500).fit(X, Y)
    unpenalised = _quiet_fit(LogisticRegression(C=np.inf, max_iter=500), X, Y)
    np.testing.assert_array_equal(ignored.coef_, unpenalised.coef_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # default C: nothing is ignored
        with pytest.warns(FutureWarning):
            LogisticRegression(penalty=None, max_iter=500).fit(X, Y)


def test_l1_ratio_zero_only():
    base = _quiet_fit(LogisticRegression(), X, Y)
    np.testing.assert_array_equal(_quiet_fit(LogisticRegression(l1_ratio=0.0), X, Y).coef_, base.coef_)
    with pytest.warns(FutureWarning, match="'l1_ratio=None' was deprecated"):
        none = LogisticRegression(l1_ratio=None).fit(X, Y)
    np.testing.assert_array_equal(none.coef_, base.coef_)
    for params in ({"l1_ratio": 1.0}, {"l1_ratio": 0.3}):
        with pytest.raises(ValueError, match="L1 and elastic-net penalties are not implemented"):
            LogisticRegression(**params).fit(X, Y)
    for penalty in ("l1", "elasticnet"):
        with pytest.raises(ValueError, match="not implemented"), pytest.warns(FutureWarning):
            LogisticRegression(penalty=penalty).fit(X, Y)
    assert not hasattr(LogisticRegression(l1_ratio=0.5), "coef_")


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
def test_n_iter_is_an_int32_array_of_shape_1_like_sklearn(solver, tmp_path):
    ref = SklearnLogisticRegression().fit(X, Y).n_iter_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(solver=solver, max_iter=7, random_state=0).fit(X, Y)
    assert isinstance(model.n_iter_, np.ndarray)
    assert model.n_iter_.shape == ref.shape == (1,) and model.n_iter_.dtype == ref.dtype
    assert model.n_iter_[0] == len(model.loss_curve_) <= 7
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz").n_iter_
    assert loaded.shape == (1,) and loaded.dtype == np.int32 and loaded[0] == model.n_iter_[0]
    chunked = LogisticRegression().partial_fit(X, Y, classes=[0, 1])
    assert chunked.n_iter_.shape == (1,) and chunked.n_iter_[0] == 1


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
@pytest.mark.parametrize("y", [Y, Y3], ids=["binary", "multinomial"])
def test_max_iter_zero_returns_the_starting_model(solver, y):
    with pytest.warns(ConvergenceWarning):
        model = LogisticRegression(solver=solver, max_iter=0).fit(X, y)
    k = 1 if len(np.unique(y)) == 2 else 3
    np.testing.assert_array_equal(model.coef_, np.zeros((k, X.shape[1])))
    np.testing.assert_array_equal(model.intercept_, np.zeros(k))
    assert model.n_iter_.tolist() == [0] and model.loss_curve_ == []
    np.testing.assert_array_equal(model.predict_proba(X), np.full((len(y), len(np.unique(y))),
                                                                  1.0 / len(np.unique(y))))
    # warm start: max_iter=0 keeps the previous solution exactly
    warm = LogisticRegression(solver=solver, warm_start=True, random_state=0, tol=None, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, y)
        before = warm.coef_.copy(), warm.intercept_.copy()
        warm.set_params(max_iter=0).fit(X, y)
    np.testing.assert_array_equal(warm.coef_, before[0])
    np.testing.assert_array_equal(warm.intercept_, before[1])


def test_old_model_files_load_in_todays_spelling(tmp_path):
    """A file whose params hold loss='log' / penalty=None (what older fastlr wrote)."""
    for old, new in (({"loss": "log", "penalty": None}, {"loss": "log_loss", "C": np.inf}),
                     ({"loss": "squared", "penalty": "l2", "C": 0.5},
                      {"loss": "prob_squared", "penalty": "deprecated", "C": 0.5})):
        model = _quiet_fit(LogisticRegression(max_iter=300, C=old.get("C", 1.0)), X, Y)
        model.set_params(**old)  # as an older fastlr stored them
        save_model(model, tmp_path / "old.npz")
        loaded = load_model(tmp_path / "old.npz")
        params = loaded.get_params()
        for key, value in new.items():
            assert params[key] == value, key
        np.testing.assert_array_equal(loaded.coef_, model.coef_)
        _quiet_fit(loaded, X, Y)  # refitting it warns about nothing


def test_float32_X_gives_float64_coef_by_design():
    model = _quiet_fit(LogisticRegression(), X.astype(np.float32), Y)
    assert model.coef_.dtype == model.intercept_.dtype == np.float64
    assert "float64 also for float32 X" in " ".join(LogisticRegression.__doc__.split())


def test_cli_accepts_old_and_new_loss_names_and_penalty_none(tmp_path):
    """`fastlr train --loss log` is `--loss log_loss`; `--penalty none` trains with C=np.inf."""
    np.savez(tmp_path / "d.npz", X=X, y=Y)
    models = {}
    for name, extra in (("new", ["--loss", "log_loss"]), ("old", ["--loss", "log"]),
                        ("none", ["--penalty", "none", "--epochs", "300"]),
                        ("none-C", ["--penalty", "none", "--C", "5", "--epochs", "300"])):
        out = tmp_path / f"{name}.npz"
        result = _cli_runner.run_cli("train", tmp_path / "d.npz", "--out", out, "--progress", "none",
                                     "--val-fraction", "0", *extra, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "FutureWarning" not in result.stderr and "deprecated" not in result.stderr
        # --C beside --penalty none is ignored, and said so (as the estimator warns)
        assert ("--penalty none ignores --C 5" in result.stderr) == (name == "none-C")
        models[name] = load_model(out)
    assert models["old"].loss == models["new"].loss == "log_loss"
    np.testing.assert_array_equal(models["old"].coef_, models["new"].coef_)
    assert models["none"].C == models["none-C"].C == np.inf
    np.testing.assert_array_equal(models["none"].coef_, models["none-C"].coef_)
    ref = _quiet_fit(LogisticRegression(C=np.inf, max_iter=300), X, Y)
    np.testing.assert_allclose(models["none"].predict_proba(X), ref.predict_proba(X), atol=1e-6)
