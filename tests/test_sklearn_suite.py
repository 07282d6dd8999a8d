"""scikit-learn's own ``LogisticRegression`` tests, run against fastlr.

The INSTALLED ``sklearn/linear_model/tests/test_logistic.py`` (shipped in
scikit-learn's wheel) is imported at test time; nothing of it is copied here,
and no conftest or plugin is involved:

* each of its ``test_*`` functions is placed in this module's namespace as a
  thin wrapper (``functools.wraps``, so pytest sees the same signature) with a
  copy of its marks (``parametrize``, ``filterwarnings``, ``skipif``), in which
  parametrize values that are scikit-learn's ``LogisticRegression`` /
  ``LogisticRegressionCV`` classes are replaced by this module's stand-ins;
  pytest collects them as this module's tests, with their usual ids;
* an autouse fixture points the imported module's global names
  ``LogisticRegression``, ``LogisticRegressionCV`` and its private helpers at
  the stand-ins for the duration of each test (``monkeypatch``), and marks the
  known failures ``xfail(strict=True)`` (:data:`XFAIL`);
* :class:`LogisticRegression` here is a thin subclass of
  ``fastlr.LogisticRegression`` with scikit-learn's constructor; it only maps
  solver names and skips what fastlr does not claim;
* ``global_random_seed`` (a fixture of scikit-learn's conftest) is provided with
  scikit-learn's default value, 42.

If the file is absent (scikit-learn installed without its tests) or cannot be
imported (its layout changed), a single test skips with a message saying so.

So the pass count is a running measure of drop-in compatibility: a feature
fastlr gains lifts a skip below, a bug fixed removes an expected failure.

Mapping (scikit-learn → fastlr)
-------------------------------
=====================  ===============================================================
scikit-learn           fastlr
=====================  ===============================================================
solver="lbfgs"         solver="lbfgs" (same algorithm, same gtol = tol, same objective)
solver=               solver="newton-cholesky" (the same method: Newton's method with the
"newton-cholesky"      full Hessian solved by Cholesky)
solver="newton-cg",    solver="lbfgs": the same strictly convex L2 objective, so the
"sag", "saga"          same optimum; only the path to it differs (tests of
                       solver-specific iteration counts or messages are xfail below)
C, l1_ratio=0,         passed through (fastlr accepts scikit-learn's spellings: C=np.inf
penalty, tol,          is no penalty, ``penalty`` is deprecated as in scikit-learn 1.8)
max_iter, verbose,
warm_start,
class_weight,
fit_intercept,
random_state
=====================  ===============================================================

Skipped (the adapter calls ``pytest.skip`` when a test asks for it; one reason each)
--------------------------------------------------------------------------------------
=====================================  ===========================================================
what the test asks for                 reason
=====================================  ===========================================================
solver="liblinear"                     liblinear's dual coordinate descent penalises the intercept
                                       and is one-vs-rest: no fastlr equivalent
dual=True                              the dual formulation (liblinear) is not implemented
intercept_scaling != 1                 liblinear-only (penalised intercept)
l1_ratio > 0, penalty "l1"/            L1 and elastic-net penalties are not implemented
"elasticnet"
LogisticRegressionCV                   fastlr provides no cross-validated estimator
``_logistic_regression_path``,         scikit-learn private helpers, nothing of fastlr
``_log_reg_scoring_path``,
``_predict_proba_lr``
scipy.sparse X                         sparse input not supported yet (issue 14); lifted
                                       automatically once fastlr fits a CSR matrix
                                       (:data:`ACCEPTS_SPARSE` is probed at import)
array API namespaces                   fastlr takes NumPy (and CUDA arrays), not array-API inputs
scikit-learn callbacks                 scikit-learn's experimental callback API; fastlr has its
                                       own ``callback`` parameter
n_jobs set                             no such fastlr parameter (it has no effect in scikit-learn
                                       since 1.8 either, and is deprecated there)
=====================================  ===========================================================

Expected failures
-----------------
:data:`XFAIL` lists the remaining failures with a one-line justification each;
they are ``xfail(strict=True)``, so a test that starts passing fails the run
until it is removed from the list: the list can only shrink.
"""

import functools
import importlib
import re
import warnings

import numpy as np
import pytest
import scipy.sparse

import fastlr

SKLEARN_MODULE = "sklearn.linear_model.tests.test_logistic"

try:
    with warnings.catch_warnings():  # its own marks (thread_unsafe) are registered by its conftest
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        skl = importlib.import_module(SKLEARN_MODULE)
    _IMPORT_ERROR = None
except Exception as exc:  # noqa: BLE001 - absent file (ImportError) or changed layout
    skl = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

# -- what fastlr supports -------------------------------------------------------------------

SOLVER_MAP = {"lbfgs": "lbfgs", "newton-cg": "lbfgs", "newton-cholesky": "newton-cholesky",
              "sag": "lbfgs", "saga": "lbfgs"}


def _accepts_sparse():
    """Whether fastlr fits a scipy.sparse CSR matrix (issue 14): lifts the sparse skip."""
    X = scipy.sparse.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fastlr.LogisticRegression(max_iter=2).fit(X, [0, 1, 1, 0])
    except (TypeError, ValueError):
        return False
    return True


SKIP_REASONS = {
    "liblinear": "solver='liblinear' (dual CD, penalised intercept, one-vs-rest): no fastlr equivalent",
    "dual": "dual=True: the dual formulation (liblinear) is not implemented",
    "intercept_scaling": "intercept_scaling: liblinear-only (penalised intercept)",
    "l1": "L1 / elastic-net penalty (l1_ratio > 0) is not implemented",
    "cv": "LogisticRegressionCV: fastlr provides no cross-validated estimator",
    "private": "scikit-learn private helper (_logistic_regression_path, _log_reg_scoring_path, "
               "_predict_proba_lr)",
    "sparse": "scipy.sparse input is not supported yet (issue 14)",
    "array_api": "array API inputs: fastlr takes NumPy arrays (and CUDA arrays), not array-API namespaces",
    "callbacks": "scikit-learn's experimental callback API (fastlr has its own callback parameter)",
    "n_jobs": "n_jobs: no such fastlr parameter (no effect in scikit-learn since 1.8, deprecated there)",
}


def _skip(key):
    pytest.skip(SKIP_REASONS[key])


class LogisticRegression(fastlr.LogisticRegression):
    """fastlr's estimator behind scikit-learn's constructor (what test_logistic.py calls).

    Only names are translated: scikit-learn's solvers map to fastlr's lbfgs
    (:data:`SOLVER_MAP`); every other parameter is fastlr's own of the same
    name and meaning. Asking for something fastlr does not claim skips the
    running test (:data:`SKIP_REASONS`).
    """

    # fastlr parameters scikit-learn does not have: their defaults, as class attributes
    loss = "log_loss"
    backend = "auto"
    learning_rate = "constant"
    eta0 = 0.1
    power_t = 0.5
    batch_size = 256
    shuffle = True
    n_iter_no_change = 5
    callback = None

    def __init__(self, penalty="deprecated", *, C=1.0, l1_ratio=0.0, dual=False, tol=1e-4,
                 fit_intercept=True, intercept_scaling=1, class_weight=None, random_state=None,
                 solver="lbfgs", max_iter=100, verbose=0, warm_start=False, n_jobs=None):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.dual = dual
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs

    def _check_supported(self, X):
        if self.solver == "liblinear":
            _skip("liblinear")
        if self.dual:
            _skip("dual")
        if self.intercept_scaling != 1:
            _skip("intercept_scaling")
        if self.penalty in ("l1", "elasticnet") or (
                isinstance(self.l1_ratio, (int, float)) and self.l1_ratio > 0):
            _skip("l1")
        if self.n_jobs is not None:
            _skip("n_jobs")
        if scipy.sparse.issparse(X) and not ACCEPTS_SPARSE:
            _skip("sparse")

    def fit(self, X, y, sample_weight=None):
        self._check_supported(X)
        sk_solver = self.solver
        self.solver = SOLVER_MAP.get(sk_solver, sk_solver)
        try:
            return super().fit(X, y, sample_weight=sample_weight)
        finally:
            self.solver = sk_solver

    def set_callbacks(self, *args, **kwargs):
        _skip("callbacks")

    def _predict_proba_lr(self, X):
        _skip("private")


class LogisticRegressionCV:
    """Stand-in for scikit-learn's LogisticRegressionCV: constructing it skips the test."""

    def __new__(cls, *args, **kwargs):
        _skip("cv")


def _unsupported(key):
    """A stand-in for a scikit-learn function fastlr does not provide: calling it skips the test."""
    def stand_in(*args, **kwargs):
        _skip(key)
    return stand_in


ACCEPTS_SPARSE = _accepts_sparse() if skl is not None else False

# -- expected failures --------------------------------------------------------------------------
# (regex on the test id, one-line justification). xfail(strict=True): a test that starts to
# pass fails the run until its line is deleted, so this list can only shrink.

XFAIL = [
    (r"^test_newton_cholesky_fallback_to_lbfgs$",
     "solver-specific: counts newton-cholesky's own iterations before its lbfgs fallback "
     "(n_iter_ == max_iter - 1); fastlr's newton-cholesky has no lbfgs fallback (a singular "
     "Hessian is solved by least squares)"),
    (r"^test_max_iter\[(newton-cg|newton-cholesky|sag|saga)-",
     "solver-specific: the expected warning text is that of a solver mapped to lbfgs"),
    (r"^test_warm_start_newton_solver\[.*-(newton-cg|sag|saga)\]$",
     "solver-specific: a Newton step keeps no history, so 2 iterations == 1 + 1 warm-started; "
     "lbfgs restarts its curvature memory"),
    (r"^test_dtype_match\[", "coef_ stays float64 for float32 X by design (see fastlr.LogisticRegression)"),
    (r"^test_large_sparse_matrix\[.*-(sag|saga)\]$",
     "solver-specific: scikit-learn's sag/saga refuse int64 sparse indices; fastlr (lbfgs) takes them"),
    (r"^test_sparsify\[", "sparsify()/densify() not provided: sparse coef_ needs sparse support (issue 14)"),
]


# -- collecting scikit-learn's tests ------------------------------------------------------------

_SUBSTITUTES = {}


def _substitute(value):
    """A parametrize value with scikit-learn's estimator classes replaced by the stand-ins."""
    if isinstance(value, type) and value in _SUBSTITUTES:
        return _SUBSTITUTES[value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_substitute(v) for v in value)
    if isinstance(value, list):
        return [_substitute(v) for v in value]
    if type(value).__name__ == "ParameterSet":  # pytest.param(...)
        return pytest.param(*(_substitute(v) for v in value.values), marks=value.marks, id=value.id)
    return value


def _as_fastlr_test(func):
    """``func`` (a scikit-learn test) with its parametrize values pointing at fastlr.

    The wrapper keeps the signature (pytest follows ``__wrapped__``) and a copy
    of the marks; scikit-learn's function object is not modified.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    marks = []
    for mark in getattr(func, "pytestmark", []):
        if mark.name == "parametrize" and len(mark.args) >= 2:
            args = (mark.args[0], _substitute(mark.args[1])) + tuple(mark.args[2:])
            mark = pytest.mark.parametrize(*args, **mark.kwargs).mark
        marks.append(mark)
    wrapper.pytestmark = marks
    wrapper.__module__ = __name__
    return wrapper


if skl is None:
    def test_sklearn_suite_available():
        pytest.skip(f"scikit-learn's {SKLEARN_MODULE} cannot be imported ({_IMPORT_ERROR}); "
                    "install scikit-learn with its tests (the PyPI wheel ships them)")
else:
    _SUBSTITUTES = {getattr(skl, "LogisticRegression", None): LogisticRegression,
                    getattr(skl, "LogisticRegressionCV", None): LogisticRegressionCV}
    _marks = getattr(skl, "pytestmark", [])
    pytestmark = list(_marks) if isinstance(_marks, (list, tuple)) else [_marks]
    for _name, _obj in list(vars(skl).items()):
        if _name.startswith("test_") and callable(_obj):
            globals()[_name] = _as_fastlr_test(_obj)
    if not any(n.startswith("test_") for n in vars(skl)):
        def test_sklearn_suite_available():
            pytest.skip(f"{SKLEARN_MODULE} holds no test functions: its layout changed")

    @pytest.fixture
    def global_random_seed():
        """scikit-learn's conftest fixture, with its default seed (42)."""
        return 42

    @pytest.fixture(autouse=True)
    def _fastlr_in_place_of_sklearn(request, monkeypatch):
        name = request.node.name
        if "array_api" in request.node.originalname:
            _skip("array_api")
        monkeypatch.setattr(skl, "LogisticRegression", LogisticRegression)
        monkeypatch.setattr(skl, "LogisticRegressionCV", LogisticRegressionCV)
        for helper in ("_logistic_regression_path", "_log_reg_scoring_path"):
            monkeypatch.setattr(skl, helper, _unsupported("private"), raising=False)
        for pattern, reason in XFAIL:
            if re.search(pattern, name):
                request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
                break
