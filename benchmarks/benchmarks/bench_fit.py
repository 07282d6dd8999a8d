"""``LogisticRegression.fit``: time, memory and how close each solver gets.

Suites
------
FitBinary
    A 1M x 64 float32 binary problem (``n_samples`` is a parameter; 20 000
    under ``FASTLR_BENCH_SMALL=1``).
FitMultinomial
    A 100 000 x 64 float32 10-class problem (softmax model).

Both are parametrised by ``solver``: fastlr's ``lbfgs``, ``gd`` and ``sgd``
(options in :data:`SOLVER_OPTIONS`) and, as peers on the same data, run
through :func:`fastlr.peers.fit_peer` with its defaults (``C=1``,
``max_iter=100``, ``tol=1e-4``): scikit-learn's ``LogisticRegression`` with
lbfgs and with newton-cholesky, scikit-learn-intelex's lbfgs and PyTorch's
``torch.optim.LBFGS`` on the CPU. A peer whose library is not installed
(:class:`fastlr.peers.PeerUnavailable`) is skipped ("n/a"). Every model
minimises the same objective, ``C Σ loss_i + ½‖W‖²`` with ``C = 1``;
``track_objective_gap`` reports ``(F - F*) / |F*|`` against a tight
scikit-learn solution ``F*`` (``tol=1e-10``, ``max_iter=1000``, float64)
computed once per run in ``setup_cache``, with both objectives evaluated by
the same NumPy code (:func:`common.objective`).
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

import fastlr
from fastlr.peers import PeerUnavailable, fit_peer

from .common import N_BINARY, N_MULTINOMIAL, make_problem, objective, relative_gap

#: fastlr solver settings. lbfgs and sgd use fastlr's defaults (sgd seeded);
#: gd uses the Armijo line search, as full-batch gradient descent with the
#: default constant step 0.1 does not get near the optimum in 100 iterations.
SOLVER_OPTIONS = {
    "lbfgs": {"solver": "lbfgs"},
    "gd": {"solver": "gd", "learning_rate": "backtracking", "eta0": 1.0},
    "sgd": {"solver": "sgd", "random_state": 0},
}
#: Peers, by their :data:`fastlr.peers.PEER_NAMES` name, fitted by ``fit_peer``.
PEERS = ["sklearn-lbfgs", "sklearn-newton-cholesky", "sklearnex-lbfgs", "torch-lbfgs"]
SOLVERS = list(SOLVER_OPTIONS) + PEERS

#: The tight reference fit: scikit-learn's lbfgs run to (near) machine precision.
REFERENCE_OPTIONS = {"tol": 1e-10, "max_iter": 1000}

#: Largest relative objective gap a peer may leave on the check slice (default
#: tolerances): far above a converged solver's (~1e-7), far below what solving a
#: different objective gives (another C, a missing or penalised intercept).
PEER_CHECK_GAP = 1e-3


def _quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return model.fit(X, y)


def _fitter(solver):
    """A function ``(X, y) -> (coef (k, d), intercept (k,), n_iter)`` fitting ``solver``.

    fastlr's solvers run ``fastlr.LogisticRegression``; peers run
    ``fastlr.peers.fit_peer`` (which raises PeerUnavailable when the peer's
    library is missing).
    """
    if solver in SOLVER_OPTIONS:
        def fit(X, y):
            model = _quiet_fit(fastlr.LogisticRegression(**SOLVER_OPTIONS[solver]), X, y)
            return model.coef_, model.intercept_, int(np.max(model.n_iter_))
        return fit
    if solver in PEERS:
        def fit(X, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", FutureWarning)
                result = fit_peer(solver, X, y)
            return np.atleast_2d(result.coef), np.ravel(result.intercept), int(
                np.max(result.n_iter))
        return fit
    raise ValueError(f"unknown solver {solver!r}")


def _references(kind, sizes):
    """{n: tight scikit-learn solution and its objective} for each problem size."""
    out = {}
    for n in sizes:
        X, y = make_problem(kind, n)
        ref = _quiet_fit(SklearnLogisticRegression(**REFERENCE_OPTIONS), X.astype(np.float64), y)
        F_ref = objective(X, y, ref.coef_, ref.intercept_)
        # The optimum the gaps are measured from beats scikit-learn's default fit.
        default = _quiet_fit(SklearnLogisticRegression(), X, y)
        F_default = objective(X, y, default.coef_, default.intercept_)
        assert F_ref <= F_default * (1 + 1e-12), (F_ref, F_default)
        out[n] = {"coef": ref.coef_.copy(), "intercept": ref.intercept_.copy(), "objective": F_ref}
    return out


# Parameter sets whose correctness check and warm-up already ran in this process.
_READY = set()


def _slice_reference(X, y):
    """Tight scikit-learn fit on a slice: (coef, intercept, objective)."""
    sk = _quiet_fit(SklearnLogisticRegression(**REFERENCE_OPTIONS), X.astype(np.float64), y)
    return sk.coef_, sk.intercept_, objective(X, y, sk.coef_, sk.intercept_)


def _check_fastlr(kind, X, y):
    """Before anything is timed: fastlr is right on this problem.

    * ``loss_grad``'s CPU backend agrees with the NumPy reference on a slice;
    * fastlr's lbfgs reaches scikit-learn's optimum on a slice, and its
      ``loss_curve_`` ends at that objective divided by ``C n``.
    """
    m = min(4096, X.shape[0])
    Xs, ys = X[:m], y[:m]
    k = 1 if kind == "binary" else int(y.max()) + 1
    rng = np.random.default_rng(2)
    coef = rng.standard_normal(X.shape[1]) if k == 1 else rng.standard_normal((k, X.shape[1]))
    coef /= np.sqrt(X.shape[1])
    got = fastlr.loss_grad(Xs, ys, coef, 0.1, backend="cpu")
    ref = fastlr.loss_grad(Xs, ys, coef, 0.1, backend="numpy")
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    fast = _quiet_fit(fastlr.LogisticRegression(tol=1e-8, max_iter=500), Xs, ys)
    _, _, F_sk = _slice_reference(Xs, ys)
    F_fast = objective(Xs, ys, fast.coef_, fast.intercept_)
    assert abs(relative_gap(F_fast, F_sk)) < 1e-6, (F_fast, F_sk)
    # loss_curve_ is the mean objective F / (C n).
    np.testing.assert_allclose(fast.loss_curve_[-1], F_fast / m, rtol=1e-6)


def _check_peer(solver, fit, kind, X, y):
    """Before a peer is timed: it solves the same problem as fastlr, on a slice.

    Its coefficients have the model's shape and are finite, and its objective
    is within :data:`PEER_CHECK_GAP` of the tight reference. The first call
    also warms the peer up (imports, thread pools). A missing library: skip.
    """
    m = min(4096, X.shape[0])
    Xs, ys = X[:m], y[:m]
    try:
        coef, intercept, n_iter = fit(Xs, ys)
    except PeerUnavailable as exc:
        raise NotImplementedError(f"{solver} unavailable: {exc}") from None
    k = 1 if kind == "binary" else int(y.max()) + 1
    assert coef.shape == (k, X.shape[1]) and intercept.shape == (k,), (coef.shape,
                                                                       intercept.shape)
    assert np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept)) and n_iter >= 1
    F_ref = _slice_reference(Xs, ys)[2]
    gap = relative_gap(objective(Xs, ys, coef, intercept), F_ref)
    assert -1e-8 < gap < PEER_CHECK_GAP, (solver, gap)


class _FitSuite:
    """Shared body of FitBinary and FitMultinomial; ``kind`` names the problem."""

    kind = None
    param_names = ["n_samples", "solver"]
    timeout = 900

    def setup(self, refs, n, solver):
        self.X, self.y = make_problem(self.kind, n)
        self.ref = refs[n]
        self.fit = _fitter(solver)
        key = (self.kind, n, solver)
        if key not in _READY:
            if (self.kind, n) not in _READY:
                _check_fastlr(self.kind, self.X, self.y)
                _READY.add((self.kind, n))
            if solver in PEERS:
                # NotImplementedError (skip) when the peer's library is missing.
                _check_peer(solver, self.fit, self.kind, self.X, self.y)
            # Warm-up (JIT compile or load from Numba's cache; a peer's imports) on a slice.
            self.fit(self.X[:2048], self.y[:2048])
            _READY.add(key)

    def time_fit(self, refs, n, solver):
        self.fit(self.X, self.y)

    def peakmem_fit(self, refs, n, solver):
        self.fit(self.X, self.y)

    def track_objective_gap(self, refs, n, solver):
        """(F - F*) / |F*|, F = C Σ loss + ½‖W‖² of the fitted model, F* the tight reference."""
        coef, intercept, _ = self.fit(self.X, self.y)
        return relative_gap(objective(self.X, self.y, coef, intercept), self.ref["objective"])

    track_objective_gap.unit = "relative gap"

    def track_n_iter(self, refs, n, solver):
        """Iterations (lbfgs, gd, newton-cholesky) or epochs (sgd) the fit ran."""
        return self.fit(self.X, self.y)[2]

    track_n_iter.unit = "iterations"


class FitBinary(_FitSuite):
    """Binary logistic regression, 64 standardised float32 features."""

    kind = "binary"
    params = [[N_BINARY], SOLVERS]

    def setup_cache(self):
        return _references("binary", self.params[0])

    setup_cache.timeout = 1200


class FitMultinomial(_FitSuite):
    """10-class softmax regression, 64 standardised float32 features."""

    kind = "multinomial"
    params = [[N_MULTINOMIAL], SOLVERS]

    def setup_cache(self):
        return _references("multinomial", self.params[0])

    setup_cache.timeout = 1200


_PEAK_MEMORY_CODE = """
import sys, warnings
import numpy as np
import fastlr

def peak_rss():
    # VmHWM, not ru_maxrss: getrusage carries the parent's peak across fork + exec.
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024

path, solver = sys.argv[1], sys.argv[2]
y = np.load(path + ".y.npy")
fastlr.LogisticRegression(solver=solver, max_iter=2).fit(
    np.ones((64, 64), np.float32), np.arange(64) % 2)  # JIT cache loaded before measuring
before = peak_rss()
X = np.load(path)  # read straight into one float32 array: no temporaries
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fastlr.LogisticRegression(solver=solver).fit(X, y)
after = peak_rss()
print((after - before) / X.nbytes)
"""


class FitPeakMemory:
    """Peak resident memory that ``fit`` adds, as a multiple of ``X.nbytes`` (float32 X).

    Measured in a fresh interpreter that loads X from a ``.npy`` file written in
    ``setup``: its peak RSS after loading X and fitting, minus its peak before X
    was loaded, divided by X's size. 1.0 means the fit needed nothing beyond X
    itself (plus y); a hidden float64 copy of X would add 2.0.
    """

    params = [[N_BINARY], ["lbfgs", "sgd"]]
    param_names = ["n_samples", "solver"]
    timeout = 600

    def setup(self, n, solver):
        import sys
        import tempfile

        if not sys.platform.startswith("linux"):
            raise NotImplementedError("reads /proc/self/status")

        self.tmp = tempfile.TemporaryDirectory()
        self.path = f"{self.tmp.name}/X.npy"
        X, y = make_problem("binary", n)
        np.save(self.path, X)
        np.save(self.path + ".y.npy", y)

    def teardown(self, n, solver):
        self.tmp.cleanup()

    def track_peak_memory_over_X(self, n, solver):
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-c", _PEAK_MEMORY_CODE, self.path, solver],
                             capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    track_peak_memory_over_X.unit = "x X.nbytes"
