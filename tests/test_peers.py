"""fastlr.peers: every peer solves fastlr's objective; the objective is right."""

import numpy as np
import pytest
from sklearn.metrics import log_loss

from fastlr import LogisticRegression
from fastlr import peers
from fastlr.bench import make_problem
from fastlr.peers import (
    PEER_NAMES, PeerResult, PeerUnavailable, available_peers, fit_peer, objective,
)

AVAILABLE = set(available_peers())

#: Full-batch solvers run to tol=1e-8: their coefficients must match fastlr-lbfgs's to this
#: relative error (max |Δcoef| / max |coef|). torch's LBFGS also stops when the objective
#: changes by less than 1e-9 (its default tolerance_change), which ends it a little earlier.
COEF_RTOL = {
    "fastlr-auto": 1e-4,
    "fastlr-newton-cholesky": 1e-4,
    "fastlr-newton-cg": 1e-4,
    "fastlr-gd": 1e-4,
    "sklearn-lbfgs": 1e-4,
    "sklearn-newton-cholesky": 1e-4,
    "sklearnex-lbfgs": 1e-4,
    "torch-lbfgs": 3e-4,
    "glum": 1e-4,
}
#: Stochastic solvers: only their objective, within this relative gap after 20 epochs.
OBJECTIVE_RTOL = {"fastlr-sgd": 0.03, "sklearn-sgd": 0.03, "torch-sgd": 0.03}

N, D = 2000, 5


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "3-classes"])
def problem(request):
    k = request.param
    X, y = make_problem(N, D, classes=k, dtype="float64", seed=3)
    reference = fit_peer("fastlr-lbfgs", X, y, tol=1e-8, max_iter=1000)
    return k, X, y, reference


def _require(name):
    if name not in AVAILABLE:
        pytest.skip(f"{name}: library not installed")


@pytest.fixture
def torch_one_thread(request):
    """torch on one thread while a torch peer runs in these tests.

    The 20 epochs of 32-row batches are 1,260 tiny steps; with torch's default
    OpenMP pool (one thread per core) each step waits on a barrier, which takes
    seconds to a minute on a busy 2-core machine. One thread gives the same
    result in a tenth of a second.
    """
    if not request.node.callspec.params["name"].startswith("torch-") \
            or "torch-sgd" not in AVAILABLE:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", [name for name in PEER_NAMES if name != "fastlr-lbfgs"])
def test_peer_solves_the_same_objective(name, problem, torch_one_thread):
    _require(name)
    k, X, y, reference = problem
    if name in ("sklearn-sgd", "glum") and k > 2:
        with pytest.raises(ValueError, match="binary only"):
            fit_peer(name, X, y)
        return
    result = fit_peer(name, X, y, tol=1e-8, max_iter=1000, epochs=20, batch_size=32)
    rows = 1 if k == 2 else k
    assert isinstance(result, PeerResult) and result.name == name
    assert result.coef.shape == (rows, D) and result.coef.dtype == np.float64
    assert result.intercept.shape == (rows,) and result.intercept.dtype == np.float64
    assert result.runtime > 0 and result.n_iter >= 1
    best = objective(X, y, reference.coef, reference.intercept)
    got = objective(X, y, result.coef, result.intercept)
    if name in COEF_RTOL:
        scale = np.max(np.abs(reference.coef))
        assert np.max(np.abs(result.coef - reference.coef)) <= COEF_RTOL[name] * scale
        assert np.max(np.abs(result.intercept - reference.intercept)) <= COEF_RTOL[name] * scale
        assert got == pytest.approx(best, rel=1e-7)
    else:
        assert result.n_iter == 20  # epochs
        assert best * (1 - 1e-9) <= got <= best * (1 + OBJECTIVE_RTOL[name])


def test_fastlr_lbfgs_reference_matches_the_estimator(problem):
    k, X, y, reference = problem
    model = LogisticRegression(solver="lbfgs", tol=1e-8, max_iter=1000).fit(X, y)
    np.testing.assert_array_equal(reference.coef, model.coef_)
    np.testing.assert_array_equal(reference.intercept, model.intercept_)
    assert reference.n_iter == model.n_iter_


@pytest.mark.parametrize("C", [1.0, 0.05], ids=["C=1", "C=0.05"])
def test_objective_equals_fastlr_loss_curve(problem, C):
    k, X, y, _ = problem
    model = LogisticRegression(C=C, tol=1e-6).fit(X, y)
    expected = model.loss_curve_[-1] * C * len(y)
    assert objective(X, y, model.coef_, model.intercept_, C) == pytest.approx(expected, rel=1e-10)


def test_objective_against_sklearn_log_loss(problem):
    k, X, y, reference = problem
    W, b = reference.coef, reference.intercept
    Z = X @ W.T + b
    if k == 2:
        proba = 1 / (1 + np.exp(-Z[:, 0]))
        proba = np.column_stack([1 - proba, proba])
    else:
        proba = np.exp(Z - Z.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
    expected = 2.0 * log_loss(y, proba, normalize=False) + 0.5 * np.sum(W * W)
    assert objective(X, y, W, b, C=2.0) == pytest.approx(expected, rel=1e-10)


def test_objective_float32_and_chunks():
    X, y = make_problem(3000, 4, dtype="float32", seed=1)
    coef, intercept = np.array([[0.3, -0.2, 0.1, 0.5]]), np.array([0.2])
    whole = objective(X.astype(np.float64), y, coef, intercept)
    assert objective(X, y, coef, intercept, chunk=7) == pytest.approx(whole, rel=1e-12)
    assert objective(X, y, coef[0], 0.2) == pytest.approx(whole, rel=1e-12)


def test_peer_names_and_availability():
    assert PEER_NAMES == ("fastlr-auto", "fastlr-lbfgs", "fastlr-newton-cholesky", "fastlr-newton-cg",
                          "fastlr-gd", "fastlr-sgd", "sklearn-lbfgs",
                          "sklearn-newton-cholesky", "sklearn-sgd", "sklearnex-lbfgs",
                          "torch-lbfgs", "torch-sgd", "glum")
    peers = available_peers()
    assert peers == [name for name in PEER_NAMES if name in peers]
    assert {"fastlr-lbfgs", "fastlr-newton-cg", "fastlr-gd", "fastlr-sgd", "sklearn-lbfgs",
            "sklearn-newton-cholesky", "sklearn-sgd"} <= set(peers)


def test_missing_library_raises_peer_unavailable(monkeypatch):
    # The torch peers import a module that does not exist, as if torch were not installed.
    monkeypatch.setitem(peers._LIBRARY, "torch", "fastlr_test_no_such_module")
    assert issubclass(PeerUnavailable, ImportError)
    assert "torch-lbfgs" not in available_peers()
    X, y = make_problem(100, 3, seed=0)
    with pytest.raises(PeerUnavailable, match="torch"):
        fit_peer("torch-sgd", X, y)


@pytest.mark.parametrize("y, message", [
    (np.zeros(100, dtype=np.int64), "k >= 2 classes"),
    (np.arange(100) % 3 + 1, "0..k-1"),
    (np.ones(100) * 0.5, "integer class codes"),
    (np.zeros(99, dtype=np.int64), "100 entries"),
], ids=["one-class", "codes-from-1", "float-labels", "wrong-length"])
def test_bad_labels(y, message):
    X, _ = make_problem(100, 3, seed=0)
    with pytest.raises(ValueError, match=message):
        fit_peer("sklearn-lbfgs", X, y)


def test_unknown_peer():
    X, y = make_problem(100, 3, seed=0)
    with pytest.raises(ValueError, match="unknown peer 'sklearn-saga'"):
        fit_peer("sklearn-saga", X, y)
