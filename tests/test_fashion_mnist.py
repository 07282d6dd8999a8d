"""The Fashion-MNIST paper's baseline, reproduced on the real files (skipped without them).

Xiao, Rasul, Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for Benchmarking
Machine Learning Algorithms", arXiv:1708.07747, Table 3: scikit-learn's
``LogisticRegression`` reaches about 0.84 test accuracy (0.842 at its best setting,
C = 1). The files come from Debian's ``dataset-fashion-mnist`` package
(``.ci/run`` installs it when it can) or a directory named by ``FASTLR_FASHION_MNIST``.

Two checks, about 30 s on 2 cores:

* accuracy: fastlr's multinomial model with scikit-learn's defaults (C = 1, lbfgs,
  max_iter = 100: the paper's setting), trained on all 60,000 images, scores
  ≥ 0.84 on the 10,000 test images;
* the same objective as scikit-learn: reaching the optimum of the full problem takes
  ~640 L-BFGS iterations (over a minute per library here), so the optimum is compared
  on the first 6,000 training images (real data, same C; ~330 iterations). There
  fastlr converges to ``tol``; an independent float64 NumPy gradient of
  scikit-learn's objective confirms the point is stationary; scikit-learn's own
  solver started from that point finds nothing to improve; and scikit-learn's own
  fit from zero ends at the same objective value.
"""

import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

from fastlr import LogisticRegression
from fastlr.demo_images import DEBIAN_DIR, ENV_VAR
from fastlr.io import DataFileError, load_mnist
from fastlr.peers import objective

DATA = os.environ.get(ENV_VAR) or DEBIAN_DIR
TOL = 1e-4
SUBSET = 6000


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_mnist(DATA, "train") + load_mnist(DATA, "test")
    except DataFileError as exc:
        pytest.skip(f"Fashion-MNIST not available ({exc}); install it with `apt-get install "
                    f"dataset-fashion-mnist` (Debian) or set {ENV_VAR}=DIR: the paper-baseline test is skipped")


def mean_objective(X, y, coef, intercept, C=1.0):
    """scikit-learn's objective divided by C n (its lbfgs minimises exactly this), float64 NumPy."""
    return objective(X, y, coef, intercept, C=C) / (C * len(y))


def reference_gradient(X, y, coef, intercept, C=1.0):
    """Gradient of :func:`mean_objective` in float64 NumPy: ((P − T)ᵀX + W/C) / n and mean(P − T)."""
    W = np.asarray(coef, dtype=np.float64)
    Z = np.asarray(X, dtype=np.float64) @ W.T + np.asarray(intercept, dtype=np.float64)
    Z -= Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(len(y)), y] -= 1.0
    n = len(y)
    return (P.T @ X + W / C) / n, P.sum(axis=0) / n


def test_paper_baseline_test_accuracy(fashion):
    X, y, X_test, y_test = fashion
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    model = LogisticRegression()  # C=1, lbfgs, max_iter=100: scikit-learn's defaults, the paper's setting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 100 iterations stop short of tol here
        model.fit(X, y)
    assert model.coef_.shape == (10, 784)
    accuracy = model.score(X_test, y_test)
    assert accuracy >= 0.84, f"test accuracy {accuracy:.4f} below the paper's 0.84"


def test_same_optimum_as_sklearn(fashion):
    X, y = fashion[0][:SUBSET], fashion[1][:SUBSET]
    assert np.unique(y).size == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # fastlr must reach tol
        model = LogisticRegression(tol=TOL, max_iter=2000).fit(X, y)
    F_fastlr = mean_objective(X, y, model.coef_, model.intercept_)

    # 1. stationary for scikit-learn's objective, by an independent float64 gradient. fastlr
    # stopped on its own float32-data gradient (max |g| ≤ tol); the float64 evaluation of
    # the same point differs by float32 rounding, orders of magnitude below tol: 2·tol leaves
    # room for that and nothing else.
    g_coef, g_intercept = reference_gradient(X, y, model.coef_, model.intercept_)
    assert max(np.abs(g_coef).max(), np.abs(g_intercept).max()) <= 2 * TOL

    # 2. scikit-learn's lbfgs, started at fastlr's solution, finds nothing to improve: it
    # checks its own gradient there against tol, and any steps it still takes from a point
    # that stationary can lower the objective only by a sliver (allowed: relative tol).
    # A fastlr objective that differed from scikit-learn's (penalty scale, loss) would send it
    # far away: at this C the penalty alone is several percent of the objective.
    warm = SklearnLogisticRegression(C=1.0, tol=TOL, max_iter=2000, warm_start=True)
    warm.coef_ = np.array(model.coef_, dtype=np.float64)
    warm.intercept_ = np.array(model.intercept_, dtype=np.float64)
    warm.fit(X, y)
    F_warm = mean_objective(X, y, warm.coef_, warm.intercept_)
    assert F_fastlr - F_warm <= TOL * F_fastlr, (F_fastlr, F_warm, warm.n_iter_)
    penalty = float(np.sum(np.asarray(model.coef_, dtype=np.float64) ** 2)) / (2 * len(y))
    assert penalty > 100 * TOL * F_fastlr  # so check 2 would see a wrong penalty

    # 3. scikit-learn's own fit from zero ends at the same objective value. Both solvers stop
    # at max |gradient| ≤ tol, not at the exact optimum, so their values differ by a
    # suboptimality of that order (measured ~1e-4 relative with tol 1e-4): allowed 10·tol.
    reference = SklearnLogisticRegression(C=1.0, tol=TOL, max_iter=2000).fit(X, y)
    F_sklearn = mean_objective(X, y, reference.coef_, reference.intercept_)
    assert abs(F_fastlr - F_sklearn) <= 10 * TOL * F_sklearn, (F_fastlr, F_sklearn)
