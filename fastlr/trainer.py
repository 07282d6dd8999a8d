"""Solvers over the backend primitives: L-BFGS, Newton-CG, gradient descent, mini-batch SGD.

The trainer minimises the mean objective

    F(W, b) = (1 / S) Σ_i s_i loss(z_i, y_i) + (alpha / 2) ‖W‖²,     S = Σ_i s_i,

which is scikit-learn's ``C Σ s_i loss_i + ½‖W‖²`` divided by ``C S`` when
``alpha = 1 / (C S)``; the intercept is not penalised. The penalty term, its
gradient and the kernels' SGD step come from :mod:`fastlr._penalty`. It calls only
``backend.loss_grad``, ``backend.sgd_epoch`` and (Newton-CG)
``backend.hess_vec``, never asks which hardware it is on, and keeps the
coefficients in float64 on the host.
"""

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._lbfgs import CONVERGED, LINE_SEARCH_FAILED, MAX_ITER, Stall, minimize_lbfgs, stalled_message
from ._math import LOG
from ._memory import check_fit_memory, lbfgs_pairs
from ._penalty import as_penalty
from ._reparam import AffineReparametrization
from ._scale_hint import column_scales, scale_hint
from ._stacklevel import user_stacklevel
from ._validation import overflow_message
from .backends import SGDSchedule

SOLVERS = ("auto", "lbfgs", "newton-cholesky", "newton-cg", "gd", "sgd")

#: Fewest rows of X in newton-cholesky's Hessian: beyond twice as many, the Hessian is formed
#: from evenly spaced blocks of rows only (a sub-sampled Newton method, see train_newton_cholesky).
HESSIAN_ROWS = 65_536

#: Fewest rows whose column moments set L-BFGS's centred, scaled coordinates (:func:`_reparametrization`).
PRECONDITIONER_ROWS = 65_536

#: solver="auto" takes newton-cholesky when one Hessian pass costs at most this many
#: gradient passes in multiply-adds (:func:`resolve_solver`).
AUTO_HESSIAN_COST = 64

#: solver="auto" never forms a Hessian of more than this many rows and columns (k (d + 1)).
AUTO_HESSIAN_MAX = 2048
LEARNING_RATES = ("constant", "invscaling", "adaptive", "backtracking")

# Below this step size the adaptive schedule gives up, as scikit-learn's SGD does.
_MIN_ADAPTIVE_ETA = 1e-6


class DivergenceWarning(ConvergenceWarning):
    """The iterates stopped being finite: the learning rate is too large."""


class NonFiniteObjective(ValueError):
    """The objective or its gradient is not finite at the initial coefficients.

    With finite data and coefficients the loss is always exact (possibly +inf
    for a warm start), so it means NaN or inf in X: 0 · inf and 0 · NaN are NaN,
    and every element of X enters the gradient, or, with finite X, a gradient
    sum that overflowed float64 (features near 1e308). The estimator uses this
    to skip a separate pass over X looking for them.
    """


@dataclass
class TrainOptions:
    """Settings of a training run; see ``LogisticRegression`` for their meaning."""

    solver: str = "lbfgs"
    max_iter: int = 100
    tol: float | None = 1e-4
    learning_rate: str = "constant"
    eta0: float = 0.1
    power_t: float = 0.5
    batch_size: int = 256
    shuffle: bool | str = True
    n_iter_no_change: int = 5
    random_state: object = None
    verbose: int = 0
    callback: object = None


@dataclass(frozen=True)
class IterationInfo:
    """What ``callback(info)`` receives after each iteration (lbfgs, gd) or epoch (sgd).

    Attributes
    ----------
    iteration : int
        Iterations or epochs completed so far in this call (1, 2, ...).
    loss : float
        The mean penalised objective after it: the value appended to ``loss_curve_``.
    coef : ndarray of shape (k, d), float64
        A copy of the coefficients after it (the callback may keep it).
    intercept : ndarray of shape (k,), float64
        A copy of the intercepts after it.
    solver : str
    """

    iteration: int
    loss: float
    coef: np.ndarray
    intercept: np.ndarray
    solver: str


def _call_back(options, iteration, loss, W, b):
    """Run ``options.callback``; True when it asks to stop (returned a true value).

    Exceptions raised by the callback (KeyboardInterrupt included) propagate.
    """
    if options.callback is None:
        return False
    info = IterationInfo(int(iteration), float(loss), np.array(W, dtype=np.float64),
                         np.array(b, dtype=np.float64), options.solver)
    return bool(options.callback(info))


@dataclass
class TrainResult:
    """Fitted coefficients and how the run went.

    Attributes
    ----------
    coef : ndarray of shape (k, d), float64
    intercept : ndarray of shape (k,), float64
    n_iter : int
        Iterations (lbfgs, gd) or epochs (sgd) run.
    stopped : bool
        The callback asked to stop (returned a true value).
    loss_curve : list of float
        Objective F after each iteration or epoch (for sgd, the mean of the
        batch losses seen during the epoch plus the penalty at its end).
    converged : bool
    steps : int
        SGD updates taken in total (for the invscaling schedule of a next call).
    solver : str
        The solver that ran (``"auto"`` resolved by :func:`resolve_solver`).
    """

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    converged: bool = False
    steps: int = 0
    stopped: bool = False
    solver: str = ""


def _same_vector(a, b):
    """``np.array_equal(a, b)`` for flat float vectors, rejecting most different pairs after
    looking at every 997th entry (a full compare of a million coefficients costs 1-3 ms)."""
    if np.shape(a) != np.shape(b):
        return False
    return bool(np.array_equal(a[::997], b[::997]) and np.array_equal(a, b))


class Objective:
    """F(θ) and ∇F(θ) of the mean penalised objective over a flat parameter vector.

    ``θ`` is ``W.ravel()`` followed by ``b`` when the intercept is fitted.

    Parameters
    ----------
    backend : Backend
    data : object returned by ``backend.put``
    loss_id : int
    n_outputs : int
        ``k``: 1 for a binary model, the number of classes for a softmax one.
    alpha : float or penalty object
        The L2 strength, or a penalty from :mod:`fastlr._penalty` (value,
        gradient and Hessian-vector product of the coefficients' penalty).
    fit_intercept : bool
    """

    def __init__(self, backend, data, loss_id, n_outputs, alpha, fit_intercept):
        self.backend = backend
        self.data = data
        self.loss_id = loss_id
        self.shape = (n_outputs, data.n_features)
        self.penalty = as_penalty(alpha)
        self.alpha = self.penalty.alpha
        self.fit_intercept = fit_intercept
        self._last = None  # (theta, value, grad): solvers often ask again for the start point
        self._last_hess = None  # (theta, value, grad, Hessian) of the last loss_grad_hess

    def pack(self, W, b):
        """Flat float64 parameter vector from W (k, d) and b (k,)."""
        parts = [np.asarray(W, dtype=np.float64).ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(b, dtype=np.float64))
        return np.concatenate(parts)

    def unpack(self, theta):
        """(W (k, d), b (k,)) views/copies of the flat vector ``theta``."""
        k, d = self.shape
        W = theta[: k * d].reshape(k, d)
        b = theta[k * d:] if self.fit_intercept else np.zeros(k)
        return W, b

    def __call__(self, theta):
        """``(F(θ), ∇F(θ))``, the last point's result again when ``θ`` is that point."""
        if self._last is not None and _same_vector(theta, self._last[0]):
            return self._last[1], self._last[2].copy()
        value, grad = self.evaluate(theta)
        self._last = (np.array(theta, copy=True), value, grad.copy())
        return value, grad

    def _primitive(self, name, solver, what):
        """The backend's optional primitive ``name``; NotImplementedError naming ``solver`` without it."""
        primitive = getattr(self.backend, name, None)
        if primitive is None:
            raise NotImplementedError(
                f"solver={solver!r} needs {what}, which the "
                f"{getattr(self.backend, 'name', type(self.backend).__name__)!r} backend does "
                "not implement yet; use solver='lbfgs' there, or backend='cpu'")
        return primitive

    def hess_vec(self, theta, v):
        """∇²F(θ) v: one ``backend.hess_vec`` pass over the data (log loss only).

        Raises
        ------
        NotImplementedError
            If the backend has no ``hess_vec`` primitive.
        """
        hess_vec = self._primitive("hess_vec", "newton-cg", "Hessian-vector products")
        W, b = self.unpack(theta)
        V, vb = self.unpack(v)
        hv = hess_vec(self.data, W, b, self.loss_id, V, vb)
        S = self.data.weight_sum
        out_W = hv[:, :-1] / S + self.penalty.hess_vec(V)
        if self.fit_intercept:
            return np.concatenate([out_W.ravel(), hv[:, -1] / S])
        return out_W.ravel()

    def loss_grad_hess(self, theta, hessian_rows=None):
        """``(F(θ), ∇F(θ), ∇²F(θ))`` from one ``backend.loss_grad_hess`` pass (log loss only).

        The Hessian, shape (p, p) for θ of size p, is the mean over the rows
        the backend took (at least ``hessian_rows``; all when None) plus the
        penalty's; ``F`` and ``∇F`` are exact, over all rows, and cached as
        by ``__call__``.

        Raises
        ------
        NotImplementedError
            If the backend has no ``loss_grad_hess`` primitive.
        """
        primitive = self._primitive("loss_grad_hess", "newton-cholesky", "the Hessian")
        if self._last_hess is not None and _same_vector(theta, self._last_hess[0]):
            _, value, grad, H = self._last_hess
            return value, grad.copy(), H
        W, b = self.unpack(theta)
        loss_sum, grad_sum, hess_sum, hess_weight = primitive(self.data, W, b, self.loss_id, hessian_rows)
        k, d = self.shape
        value, grad = self._finish(W, loss_sum, grad_sum)
        self._last = (np.array(theta, copy=True), value, grad.copy())
        # (k, d + 1, k, d + 1) -> θ's order: W.ravel() (index c d + j), then b (k d + c)
        order = np.arange(k * (d + 1)).reshape(k, d + 1)
        order = np.concatenate([order[:, :d].ravel()] + ([order[:, d]] if self.fit_intercept else []))
        flat = hess_sum.reshape(k * (d + 1), k * (d + 1))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            H = flat[np.ix_(order, order)] / hess_weight
        H[np.arange(k * d), np.arange(k * d)] += self.penalty.hess_diag(W.shape).ravel()
        self._last_hess = (self._last[0], value, grad.copy(), H)
        return value, grad, H

    def hess_diag(self, theta):
        """The diagonal of ∇²F(θ), flat as θ, from ``backend.hess_diag``; None without it.

        Newton-CG's Jacobi preconditioner. A backend without ``hess_diag``, or
        whose ``hess_diag`` returns None for this data, gets plain CG.
        """
        hess_diag = getattr(self.backend, "hess_diag", None)
        if hess_diag is None:
            return None
        W, b = self.unpack(theta)
        diag = hess_diag(self.data, W, b, self.loss_id)
        if diag is None:
            return None
        S = self.data.weight_sum
        out_W = diag[:, :-1] / S + self.penalty.hess_diag(W.shape)
        if self.fit_intercept:
            return np.concatenate([out_W.ravel(), diag[:, -1] / S])
        return out_W.ravel()

    def evaluate(self, theta):
        """``(F(θ), ∇F(θ))`` from one ``backend.loss_grad`` pass, without the cache of ``__call__``
        (for a caller that keeps its own: two copies and a compare of θ's size saved)."""
        W, b = self.unpack(theta)
        loss_sum, grad_sum = self.backend.loss_grad(self.data, W, b, self.loss_id)
        return self._finish(W, loss_sum, grad_sum)

    def _finish(self, W, loss_sum, grad_sum):
        """``(F, ∇F)`` from a backend's loss and gradient sums at coefficients ``W``."""
        S = self.data.weight_sum
        k, d = self.shape
        grad = np.empty(k * d + (k if self.fit_intercept else 0))
        grad_W = grad[: k * d].reshape(k, d)
        # a diverging step can overflow here; the solvers check for non-finite values
        with np.errstate(over="ignore", invalid="ignore"):
            value = loss_sum / S + self.penalty.value(W)
            np.divide(grad_sum[:, :-1], S, out=grad_W)
            grad_W += self.penalty.grad(W)
        if self.fit_intercept:
            grad[k * d:] = grad_sum[:, -1] / S
        return value, grad


def _feature_scale_hint(data, fit_intercept):
    """A sentence about badly scaled features, or the generic advice (only on failure).

    Reads at most :data:`fastlr._scale_hint.SAMPLE_ROWS` evenly spaced rows of
    X (NumPy or scipy.sparse on the host): it is a hint in a warning, and must
    not cost more than the iterations it comments on. Data not on the host (a
    GPU, a Dask cluster) gets the generic advice only.
    """
    X = getattr(data, "X", None)
    if not (isinstance(X, np.ndarray) or sp.issparse(X)) or X.shape[0] == 0:
        return scale_hint(None, fit_intercept)
    return scale_hint(column_scales(X), fit_intercept)


def _warn_not_converged(solver, reason, grad_max, tol, data, fit_intercept, advice):
    """ConvergenceWarning for a solver that returned with ``max|∇F| ≤ tol`` unmet."""
    warnings.warn(
        f"{solver} failed to converge: {reason}. The largest gradient component "
        f"of the mean objective is {grad_max:.3g}, above tol={tol:g}; the coefficients are "
        f"those of the last iterate. {advice}{_feature_scale_hint(data, fit_intercept)}",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )


def _warn_max_iter(solver, max_iter, data=None, fit_intercept=True, what="iterations"):
    warnings.warn(
        f"{solver} failed to converge in max_iter={max_iter} {what}; increase max_iter "
        f"or loosen tol.{_feature_scale_hint(data, fit_intercept)}",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )


def _holds_nonfinite(data):
    """Whether host X (NumPy, or CSR's stored values) holds NaN or inf: one pass, only after a
    SGD step became non-finite. SGD finds NaN/inf in X that way (every row enters a step in the
    first epoch, and a non-finite x_ij makes its step non-finite) instead of a separate pass over X
    before every fit. Data elsewhere (a GPU, a Dask cluster) was checked when it was placed."""
    X = getattr(data, "X", None)
    if sp.issparse(X):
        X = X.data
    if not isinstance(X, np.ndarray):
        return False
    return not bool(np.isfinite(X).all())


def _warn_diverged(where, eta):
    warnings.warn(
        f"training diverged at {where} (the iterates became infinite or NaN) with "
        f"learning rate {eta:.3g}; kept the last finite coefficients. "
        "Lower eta0, scale the data or use solver='lbfgs'.",
        DivergenceWarning,
        stacklevel=user_stacklevel(),
    )


def _report(verbose, what, i, value):
    if verbose:
        print(f"[fastlr] {what} {i}: objective {value:.10g}", flush=True)


def _reparametrization(objective):
    """The centred, scaled coordinates of :mod:`fastlr._reparam` for this objective, or None.

    One ``backend.column_moments`` pass over a sample of at least
    :data:`PRECONDITIONER_ROWS` rows of X (evenly spaced blocks; all rows up to twice
    that); None on a backend without that primitive (L-BFGS then runs on the
    coefficients themselves). Any centre and positive scales leave the objective
    and its minimiser unchanged, so the sample's moments serve as well as all
    rows' and save most of a pass over X (26 ms of a 1M x 64 float32 fit's 11
    gradients of 29 ms each on the Xeon).
    """
    moments = getattr(objective.backend, "column_moments", None)
    if moments is None:
        return None
    mean, var = moments(objective.data, PRECONDITIONER_ROWS)
    return AffineReparametrization.from_moments(
        mean, var, objective.alpha, objective.shape[0], objective.fit_intercept)


def _rounding_advice(objective):
    """The advice of a ConvergenceWarning for a run that rounding stopped."""
    precision = ("float32 (X is float32: the scores are rounded to it)"
                 if getattr(getattr(objective.data, "X", None), "dtype", None) == np.float32
                 else "float64")
    return (f"The objective cannot be decreased further in {precision}: tol may be below what "
            "its rounding allows (loosen it), or the problem is badly conditioned.")


#: Newton iterations in a row that lower neither F below its best value nor max |∇F| below
#: 0.99 times its best (:class:`fastlr._lbfgs.Stall`, L-BFGS's rule with a shorter
#: patience), after which a Newton solver stops: there the iterates sit on the
#: rounding floor of F and ∇F, where an accepted step changes them by noise only (float32
#: breast cancer at tol=1e-10 otherwise ran 946 iterations after converging to rounding at 9,
#: until a noisy gradient happened to fall below tol). A step that is not on that floor
#: lowers F (the Armijo condition), so the rule never stops a run that is still converging.
NEWTON_MAX_STALL = 5


def _warn_stalled(solver, grad_max, tol, objective):
    _warn_not_converged(
        solver, f"the objective stopped decreasing ({stalled_message(NEWTON_MAX_STALL)})",
        grad_max, tol, objective.data, objective.fit_intercept, _rounding_advice(objective))


def train_lbfgs(objective, theta0, options):
    """Minimise by L-BFGS (:mod:`fastlr._lbfgs`; gradient tolerance ``tol``, as scikit-learn).

    The method is scipy's L-BFGS-B on a problem without bounds, with up to
    100 correction pairs where they fit in 64 MiB (:func:`fastlr._memory.lbfgs_pairs`;
    scipy and scikit-learn keep 10), written in fastlr so that its work on the
    correction pairs runs in two parallel passes per iteration: at 2^20
    coefficients scipy's single-threaded routine took 38 ms per call, more
    than the sparse gradient (fit of the 200k-row CTR-like set, 2-core Zen 3:
    6.7 -> 4.3 s, the same 39 iterations).

    L-BFGS runs in centred, scaled coordinates (:mod:`fastlr._reparam`, from
    one ``backend.column_moments`` pass where the backend has it): the same
    objective and optimum, reached in far fewer iterations when the features'
    scales or means are far from 1 and 0 (raw breast cancer: 2,521 iterations
    in the coefficients themselves, 265 in these coordinates). Stops when
    ``max |∇F| ≤ tol`` for the gradient in the coefficients (tested after each
    iteration, in the callback: a gradient test in the solver would see the
    gradient in the new coordinates). The solver's other stopping test, a
    relative reduction of F below ``ftol``, is off when ``tol`` is given: it
    stopped badly scaled problems after a couple of iterations with a large
    gradient. Any return with the gradient test unmet — max_iter, a failed
    line search, a stalled objective — warns ``ConvergenceWarning`` naming
    the reason and the gradient reached (not a stop asked for by the
    callback, nor ``tol=None``, which means "no tolerance": run max_iter, or
    until an iteration lowers F by no more than 64 eps relatively).

    Returns ``(theta, n_iter, loss_curve, converged, stopped_by_callback)``.
    """
    curve = []
    tol = 0.0 if options.tol is None else options.tol
    # no iteration to run: no pass over X for coordinates that would not be used
    reparam = _reparametrization(objective) if options.max_iter > 0 else None
    if reparam is None:
        to_theta, grad_u, u0 = (lambda u: u), (lambda g: g), theta0
    else:
        to_theta, grad_u, u0 = reparam.to_theta, reparam.grad_u, reparam.to_u(theta0)
    last = []  # [u, θ, F, ∇F in θ] of the latest evaluation

    def evaluate(u):
        """``(θ, F, ∇_θ F)`` at ``u``: the solver evaluates each iterate, then the callback and
        the end of the run ask for the same point again (a vector compare, not a pass over X)."""
        if not last or not _same_vector(u, last[0]):
            theta = to_theta(u)
            # the first point is the one train() evaluated: the objective's cache has it
            value, grad = (objective if not last else objective.evaluate)(theta)
            last[:] = [np.array(u, copy=True), theta, value, grad]
        return last[1], last[2], last[3]

    def fun(u):
        _, value, grad = evaluate(u)
        return value, grad_u(grad)

    if options.tol is not None:
        # tested where L-BFGS starts (θ0 up to the rounding of the map), so that the solver's
        # first evaluation there is the cached one, also for a warm start
        _, _, grad0 = evaluate(u0)
        if np.size(grad0) == 0 or np.max(np.abs(grad0)) <= tol:
            return theta0, 0, curve, True, False
    stopped = False

    def record(u, value, _grad_u):
        nonlocal stopped
        theta, _, grad = evaluate(u)  # the iterate's own evaluation
        curve.append(float(value))
        _report(options.verbose, "iteration", len(curve), curve[-1])
        if options.callback is not None:
            W, b = objective.unpack(theta)
            if _call_back(options, len(curve), curve[-1], W, b):
                stopped = True
                return True  # the run ends at this iterate
        return options.tol is not None and np.max(np.abs(grad)) <= tol  # converged

    ftol = 64 * np.finfo(float).eps if options.tol is None else 0.0
    result = minimize_lbfgs(fun, u0, options.max_iter, ftol=ftol, maxls=50,
                            maxcor=lbfgs_pairs(u0.size), callback=record)
    # no iteration taken (max_iter=0): the starting model itself, not its round trip through u
    if result.nit == 0:
        theta = theta0
        _, grad = objective(theta)
    else:
        theta, _, grad = evaluate(result.x)
    grad_max = float(np.max(np.abs(grad))) if np.size(grad) else 0.0
    converged = options.tol is not None and grad_max <= tol
    if options.tol is not None and not converged and not stopped:
        if result.status == MAX_ITER:
            reason = f"it reached max_iter={options.max_iter} iterations"
            advice = "Increase max_iter, or loosen tol."
        elif result.status in (LINE_SEARCH_FAILED, CONVERGED):
            reason = f"the objective stopped decreasing ({result.message})"
            advice = _rounding_advice(objective)
        else:
            reason = f"L-BFGS ended with status {result.status} ({result.message})"
            advice = "Loosen tol or increase max_iter."
        _warn_not_converged("lbfgs", reason, grad_max, tol, objective.data,
                            objective.fit_intercept, advice)
    return theta, int(result.nit), curve, converged, stopped


def _truncated_cg(hess_vec, grad, tol, max_inner, diag=None):
    """Approximately solve ``H p = -grad`` by (preconditioned) conjugate gradients.

    Nocedal & Wright, *Numerical Optimization* (2006), Algorithms 5.3 and 7.1:
    with ``diag`` (the Hessian's diagonal) CG runs on the Jacobi-preconditioned
    system, ``M = diag(H)``, which removes the features' scales from CG's
    convergence (the preconditioned iterates minimise the same quadratic; only
    the path changes). Stops when ``‖H p + grad‖₁ ≤ tol``, after
    ``max_inner`` products, or on non-positive curvature (then the last
    iterate, or ``-grad`` on the first step). Returns ``(p, n_products)``.
    """
    inv_m = np.ones_like(grad)
    if diag is not None:
        # entries ≤ 0 or non-finite (a diagonal can only be ≥ 0; guard rounding) get no scaling
        usable = np.isfinite(diag) & (diag > 0.0)
        inv_m[usable] = 1.0 / diag[usable]
    p = np.zeros_like(grad)
    r = -grad
    y = r * inv_m
    d = y.copy()
    ry = float(r @ y)
    for i in range(max_inner):
        if np.sum(np.abs(r)) <= tol:
            return p, i
        Hd = hess_vec(d)
        curv = float(d @ Hd)
        if not curv > 0.0:
            return (-grad if i == 0 else p), i + 1
        a = ry / curv
        p += a * d
        r -= a * Hd
        y = r * inv_m
        ry_new = float(r @ y)
        d = y + (ry_new / ry) * d
        ry = ry_new
    return p, max_inner


def train_newton_cg(objective, theta0, options):
    """Line-search Newton-CG (truncated Newton): few passes on ill-conditioned problems.

    Each iteration solves the Newton system ``∇²F(θ) p = -∇F(θ)`` inexactly by
    conjugate gradients, each CG step one Hessian-vector product (one pass
    over X through ``backend.hess_vec``; the Hessian is never formed),
    preconditioned by the Hessian's diagonal where the backend offers it (one
    ``backend.hess_diag`` pass per Newton iteration; sparse X on cpu and
    numpy), to the
    forcing tolerance ``min(0.5, √‖g‖₁) ‖g‖₁`` — Nocedal & Wright, *Numerical
    Optimization* (2006), Algorithm 7.1, the rule scikit-learn's
    ``newton-cg`` uses — then backtracks from the full step ``p`` until the
    Armijo condition ``F(θ + t p) ≤ F(θ) + 10⁻⁴ t gᵀp`` holds (each trial one
    loss/gradient pass). Stops when ``max |∇F| ≤ tol``, as L-BFGS.

    Returns ``(theta, n_iter, loss_curve, converged, stopped_by_callback)``, as
    :func:`train_lbfgs`.
    """
    theta = theta0
    value, grad = objective(theta)
    curve = []
    tol = 0.0 if options.tol is None else options.tol
    hess_vec = lambda v: objective.hess_vec(theta, v)  # noqa: E731 (theta read at call time)
    max_inner = max(10, min(200, theta.size))
    stall = Stall(value, float(np.max(np.abs(grad), initial=0.0)), NEWTON_MAX_STALL)
    for it in range(options.max_iter):
        if np.max(np.abs(grad)) <= tol:
            return theta, it, curve, True, False
        g1 = float(np.sum(np.abs(grad)))
        p, _ = _truncated_cg(hess_vec, grad, min(0.5, np.sqrt(g1)) * g1, max_inner,
                             objective.hess_diag(theta))
        slope = float(grad @ p)
        if not slope < 0.0:  # CG gave no descent direction (rounding): steepest descent
            p = -grad
            slope = -float(grad @ grad)
        step = 1.0
        while True:
            trial = theta + step * p
            new_value, new_grad = objective(trial)
            if np.isfinite(new_value) and new_value <= value + 1e-4 * step * slope:
                break
            step *= 0.5
            if step * np.max(np.abs(p)) <= np.finfo(float).eps * (1.0 + np.max(np.abs(theta))):
                # no representable decrease is left along p: at the optimum to rounding
                grad_max = float(np.max(np.abs(grad)))
                converged = grad_max <= tol
                if not converged and options.tol is not None:
                    _warn_not_converged(
                        "newton-cg", "the line search found no decrease along the Newton direction",
                        grad_max, tol, objective.data, objective.fit_intercept,
                        _rounding_advice(objective))
                return theta, it, curve, converged, False
        theta, value, grad = trial, new_value, new_grad
        curve.append(float(value))
        _report(options.verbose, "iteration", it + 1, value)
        if options.callback is not None and _call_back(options, it + 1, value, *objective.unpack(theta)):
            return theta, it + 1, curve, False, True
        grad_max = float(np.max(np.abs(grad), initial=0.0))
        if grad_max > tol and stall.update(value, grad_max):
            if options.tol is not None:
                _warn_stalled("newton-cg", grad_max, tol, objective)
            return theta, it + 1, curve, False, False
    if np.max(np.abs(grad)) <= tol:
        return theta, options.max_iter, curve, True, False
    if options.tol is not None:
        _warn_max_iter("newton-cg", options.max_iter, objective.data, objective.fit_intercept)
    return theta, options.max_iter, curve, False, False


def _newton_direction(H, grad, n_outputs, n_features, fit_intercept, penalised):
    """``p = -H⁻¹ g`` by Cholesky; the minimum-norm least-squares solution when H is singular.

    The softmax loss does not change when the same constant is added to every
    class's intercept, nor, for each feature j, to every class's ``W[c, j]``:
    along ``u = (1, ..., 1)/√k`` over the classes H is zero there and so is g
    (``Σ_c dz_c = 0`` for every sample), unless the penalty holds that
    direction (the coefficients, when ``penalised``). Adding ``λ u uᵀ`` to
    each such group (λ the mean of its diagonal) makes H positive definite
    without changing the solution orthogonal to u, which is the minimum-norm
    Newton step: the iterates keep ``Σ_c W[c] = 0`` from the zero start, the
    coefficients scikit-learn returns without a penalty. If H is still not
    positive definite (rounding, an unpenalised binary model on separable
    data): ``scipy.linalg.lstsq``.

    Parameters
    ----------
    H : ndarray of shape (p, p), float64
        In θ's order: ``W.ravel()`` (index ``c d + j``), then the intercepts.
    grad : ndarray of shape (p,)
    n_outputs, n_features : int
        ``k``, ``d``.
    fit_intercept, penalised : bool
    """
    H = np.array(H, copy=True)
    k, d = n_outputs, n_features
    if k > 1:
        groups = [] if penalised else [np.arange(k) * d + j for j in range(d)]
        if fit_intercept:
            groups.append(k * d + np.arange(k))
        for g in groups:
            lam = float(np.mean(H[g, g]))
            if lam > 0.0:
                H[np.ix_(g, g)] += lam / k
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            factor = scipy.linalg.cho_factor(H, check_finite=True)
            p = scipy.linalg.cho_solve(factor, -grad)
        if np.all(np.isfinite(p)):
            return p
    except (np.linalg.LinAlgError, ValueError):
        pass
    p = scipy.linalg.lstsq(H, -grad, check_finite=False)[0]
    return p if np.all(np.isfinite(p)) else -grad


def train_newton_cholesky(objective, theta0, options):
    """Minimise by Newton's method with the full Hessian, solved by Cholesky (log loss only).

    The method of scikit-learn's ``newton-cholesky``: each iteration forms the
    gradient and the Hessian ``∇²F`` (``p × p`` for ``p = k (d + 1)``
    coefficients) in one pass over X (``backend.loss_grad_hess``), solves
    ``∇²F p = -∇F`` by Cholesky (:func:`_newton_direction`), and backtracks
    from the full step until ``F(θ + t p) ≤ F(θ) + 10⁻⁴ t ∇Fᵀp`` (Armijo;
    also accepted: a step that leaves F within 1e-12 relatively, below the
    rounding of its sum, and lowers ``max |∇F|``). The full step's trial point
    is evaluated with its Hessian; a shorter step costs a gradient pass and,
    once accepted, a Hessian pass. Stops when ``max |∇F| ≤ tol``, as L-BFGS.

    Beyond ``2 · HESSIAN_ROWS`` rows the Hessian is the mean over evenly
    spaced blocks of at least :data:`HESSIAN_ROWS` rows (a sub-sampled
    Hessian: Byrd, Chin, Neveitt & Nocedal, *SIAM J. Optim.* 21, 2011;
    Roosta-Khorasani & Mahoney, *Math. Program.* 174, 2019), while the
    gradient and F are always over all rows: the iteration stops at the same
    optimum and the same ``tol``; a Hessian approximate to ~1/√rows costs
    at most a few more (linear rather than quadratic) iterations near the
    end. On 1M × 64 float32 (tol 1e-6) the full Hessian took 5 iterations at
    ~125 ms each, the sub-sampled one (67,584 rows) 6 at ~30 ms each.

    Returns ``(theta, n_iter, loss_curve, converged, stopped_by_callback)``, as
    :func:`train_lbfgs`.
    """
    k, d = objective.shape
    theta = theta0
    value, grad, hess = objective.loss_grad_hess(theta, HESSIAN_ROWS)
    curve = []
    tol = 0.0 if options.tol is None else options.tol
    stall = Stall(value, float(np.max(np.abs(grad), initial=0.0)), NEWTON_MAX_STALL)
    for it in range(options.max_iter):
        grad_max = float(np.max(np.abs(grad), initial=0.0))
        if grad_max <= tol:
            return theta, it, curve, True, False
        p = _newton_direction(hess, grad, k, d, objective.fit_intercept, objective.alpha > 0)
        slope = float(grad @ p)
        if not slope < 0.0:  # no descent direction (rounding): steepest descent
            p = -grad
            slope = -float(grad @ grad)
        step = 1.0
        while True:
            trial = theta + step * p
            if step == 1.0:
                new_value, new_grad, new_hess = objective.loss_grad_hess(trial, HESSIAN_ROWS)
            else:
                (new_value, new_grad), new_hess = objective(trial), None
            if np.isfinite(new_value) and (
                    new_value <= value + 1e-4 * step * slope
                    or (new_value <= value + 1e-12 * abs(value)
                        and np.max(np.abs(new_grad)) < grad_max)):
                break
            step *= 0.5
            if step * np.max(np.abs(p)) <= np.finfo(float).eps * (1.0 + np.max(np.abs(theta))):
                # no representable decrease is left along p: at the optimum to rounding
                converged = grad_max <= tol
                if not converged and options.tol is not None:
                    _warn_not_converged(
                        "newton-cholesky", "the line search found no decrease along the Newton "
                        "direction", grad_max, tol, objective.data, objective.fit_intercept,
                        _rounding_advice(objective))
                return theta, it, curve, converged, False
        if new_hess is None:
            _, _, new_hess = objective.loss_grad_hess(trial, HESSIAN_ROWS)
        theta, value, grad, hess = trial, new_value, new_grad, new_hess
        curve.append(float(value))
        _report(options.verbose, "iteration", it + 1, value)
        if options.callback is not None and _call_back(options, it + 1, value, *objective.unpack(theta)):
            return theta, it + 1, curve, False, True
        new_grad_max = float(np.max(np.abs(grad), initial=0.0))
        if new_grad_max > tol and stall.update(value, new_grad_max):
            if options.tol is not None:
                _warn_stalled("newton-cholesky", new_grad_max, tol, objective)
            return theta, it + 1, curve, False, False
    if np.max(np.abs(grad), initial=0.0) <= tol:
        return theta, options.max_iter, curve, True, False
    if options.tol is not None:
        _warn_max_iter("newton-cholesky", options.max_iter, objective.data, objective.fit_intercept)
    return theta, options.max_iter, curve, False, False


def resolve_solver(solver, backend, data, loss_id, n_outputs):
    """The solver ``solver="auto"`` runs: ``"newton-cholesky"`` where a Hessian is cheap, else ``"lbfgs"``.

    newton-cholesky when the loss is the log loss, X is dense, the backend
    forms Hessians (``loss_grad_hess``: cpu, numpy), ``k (d + 1) ≤``
    :data:`AUTO_HESSIAN_MAX`, and one Hessian pass costs at most
    :data:`AUTO_HESSIAN_COST` gradient passes in multiply-adds:
    ``rows_H · k (k + 1)/2 · (d + 1)² ≤ 64 · n · k (d + 1)``, with ``rows_H``
    the Hessian's rows (``min(n, 2 · HESSIAN_ROWS)``). Newton then needs 5-10
    passes where L-BFGS needs 10-400 (breast cancer, iris, 20k × 20, 1M × 64
    binary, 10M × 8); digits (k = 10, d = 64: 357 gradient passes per
    Hessian), 100k × 1000 and Fashion-MNIST get L-BFGS. Any other ``solver``
    is returned as it is.

    Parameters
    ----------
    solver : str
    backend : Backend
    data : object returned by ``backend.put``
    loss_id : int
    n_outputs : int
        ``k``.

    Returns
    -------
    str
    """
    if solver != "auto":
        return solver
    X = getattr(data, "X", None)
    n, d = data.n_samples, data.n_features
    k = int(n_outputs)
    if (loss_id != LOG or getattr(backend, "loss_grad_hess", None) is None or X is None
            or sp.issparse(X) or n == 0 or k * (d + 1) > AUTO_HESSIAN_MAX):
        return "lbfgs"
    rows_h = min(n, 2 * HESSIAN_ROWS)
    return ("newton-cholesky" if rows_h * (k + 1) / 2 * (d + 1) <= AUTO_HESSIAN_COST * n
            else "lbfgs")


class NoImprovement:
    """scikit-learn's SGD stopping rule: ``n`` epochs without improving the best loss by ``tol``.

    Used by the trainer's SGD loop and by ``fastlr train --chunk-rows``'s streamed epochs.
    """

    def __init__(self, tol, patience):
        self.tol = tol
        self.patience = patience
        self.best = np.inf
        self.count = 0

    def update(self, value):
        """Record a loss; True when ``patience`` updates in a row missed the bar."""
        if self.tol is None:
            return False
        self.count = self.count + 1 if value > self.best - self.tol else 0
        self.best = min(self.best, value)
        if self.count >= self.patience:
            self.count = 0
            return True
        return False


def _next_eta(options, eta, step, stalled):
    """Learning rate for the next step; None means the adaptive schedule is exhausted."""
    if options.learning_rate == "invscaling":
        return options.eta0 / (step + 1.0) ** options.power_t
    if options.learning_rate == "adaptive" and stalled:
        eta /= 5.0
        return eta if eta >= _MIN_ADAPTIVE_ETA else None
    return eta


def train_gd(objective, theta0, options):
    """Full-batch gradient descent: ``θ ← θ − η ∇F(θ)``.

    With ``learning_rate="constant"`` every step is exactly the seed's
    ``w ← w − eta0 · (mean gradient + penalty gradient)``. ``"backtracking"``
    starts each step from twice the last accepted η and halves it until the
    Armijo condition ``F(θ − η g) ≤ F(θ) − η/2 ‖g‖²`` holds. Stops when
    ``max |∇F| ≤ tol``.

    Returns ``(theta, n_iter, loss_curve, converged, stopped_by_callback)``, as
    :func:`train_lbfgs`.
    """
    theta = theta0
    value, grad = objective(theta)
    curve = []
    eta = options.eta0
    no_gain = NoImprovement(options.tol, options.n_iter_no_change)
    tol = -1.0 if options.tol is None else options.tol

    def stop_short(n_iter, reason, advice):
        """Return with the gradient test unmet: warn (unless tol=None) and say not converged."""
        grad_max = float(np.max(np.abs(grad)))
        if options.tol is not None and grad_max <= tol:
            return theta, n_iter, curve, True, False
        if options.tol is not None:
            _warn_not_converged("gd", reason, grad_max, tol, objective.data,
                                objective.fit_intercept, advice)
        return theta, n_iter, curve, False, False

    for it in range(options.max_iter):
        if np.max(np.abs(grad)) <= tol:
            return theta, it, curve, True, False
        if options.learning_rate == "backtracking":
            g2 = float(np.dot(grad, grad))
            while True:
                trial = theta - eta * grad
                new_value, new_grad = objective(trial)
                if new_value <= value - 0.5 * eta * g2:
                    break
                eta *= 0.5
                if eta * np.sqrt(g2) <= np.finfo(float).eps * (1.0 + np.linalg.norm(theta)):
                    return stop_short(
                        it, "the backtracking line search found no step that decreases the "
                            "objective in float64",
                        "tol may be below what the objective's rounding allows (loosen it), or the "
                        "problem is badly conditioned (try solver='lbfgs').")
        else:
            trial = theta - eta * grad
            new_value, new_grad = objective(trial)
        if not (np.isfinite(new_value) and np.all(np.isfinite(trial))):
            _warn_diverged(f"iteration {it + 1}", eta)
            return theta, it, curve, False, False
        theta, value, grad = trial, new_value, new_grad
        curve.append(float(value))
        _report(options.verbose, "iteration", it + 1, value)
        if options.callback is not None and _call_back(options, it + 1, value, *objective.unpack(theta)):
            return theta, it + 1, curve, False, True
        if options.learning_rate == "backtracking":
            eta *= 2.0
        else:
            eta = _next_eta(options, eta, it + 1, no_gain.update(value))
            if eta is None:
                return stop_short(
                    it + 1, f"the adaptive learning rate fell below {_MIN_ADAPTIVE_ETA:g} "
                            "with the loss no longer improving by tol",
                    "Use learning_rate='backtracking' or solver='lbfgs'.")
    if np.max(np.abs(grad)) <= tol:
        return theta, options.max_iter, curve, True, False
    return stop_short(options.max_iter, f"it reached max_iter={options.max_iter} iterations",
                      "Increase max_iter, raise eta0 (or use learning_rate='backtracking'), or "
                      "loosen tol.")


def train_sgd(backend, data, loss_id, W, b, alpha, fit_intercept, options, step0=0, max_epochs=None,
              history=()):
    """Mini-batch SGD, one compiled call per epoch, updating ``W`` and ``b`` in place.

    Parameters
    ----------
    backend, data, loss_id : see :class:`Objective`
    W : ndarray of shape (k, d), float64
    b : ndarray of shape (k,), float64
    alpha : float or penalty object
        L2 strength (see :class:`Objective`); the kernels take the SGD step
        of :func:`fastlr._penalty.build_penalty` with it.
    fit_intercept : bool
    options : TrainOptions
        ``shuffle=True`` visits the batches (runs of ``batch_size`` consecutive
        rows) in a new random order each epoch, which keeps memory access
        sequential; ``shuffle="rows"`` draws a new permutation of the rows each
        epoch (slower: rows are gathered); ``False`` keeps the data order.
    step0 : int
        SGD steps taken before (``partial_fit`` continues the schedule).
    max_epochs : int, optional
        Defaults to ``options.max_iter``.
    history : sequence of float
        Epoch losses of a run being resumed (``W``, ``b`` and ``step0`` are
        where it stopped): their random draws, stopping-rule and adaptive-rate
        state are replayed, so the resumed run continues exactly as if it had
        never stopped. Epoch counts and the returned curve include them.

    Returns
    -------
    n_epochs, loss_curve, converged, steps, stopped_by_callback

    Raises
    ------
    fastlr._memory.ModelTooLarge
        When the coefficients and SGD's state for ``W``'s shape would not fit
        in the memory available (checked before any work).
    """
    check_fit_memory(W.shape[1], W.shape[0], "sgd")
    penalty = as_penalty(alpha)
    n = data.n_samples
    n_batches = -(-n // options.batch_size)
    rng = check_random_state(options.random_state)
    max_epochs = options.max_iter if max_epochs is None else max_epochs
    no_gain = NoImprovement(options.tol, options.n_iter_no_change)
    eta = options.eta0
    power_t = options.power_t if options.learning_rate == "invscaling" else 0.0
    curve = []
    step = step0
    for value in history:  # replay the epochs already run: the same draws, the same state
        if options.shuffle:
            rng.permutation(n_batches)
        if options.shuffle == "rows":
            rng.permutation(n)
        curve.append(float(value))
        if no_gain.update(value) and options.learning_rate == "adaptive":
            eta /= 5.0
    for epoch in range(len(curve), max_epochs):
        batch_order = rng.permutation(n_batches) if options.shuffle else np.arange(n_batches)
        rows = rng.permutation(n) if options.shuffle == "rows" else None
        schedule = SGDSchedule(penalty.alpha, fit_intercept, eta, power_t, step, options.batch_size)
        loss_sum, n_steps = backend.sgd_epoch(data, W, b, loss_id, schedule, batch_order, rows)
        step += n_steps
        if n_steps < n_batches:
            if _holds_nonfinite(data):  # not divergence: NaN/inf in X (never checked up front)
                raise NonFiniteObjective(
                    "a SGD step became non-finite: X contains NaN or infinity")
            _warn_diverged(f"epoch {epoch + 1}, batch {n_steps + 1}", eta)
            return epoch, curve, False, step, False
        value = loss_sum / data.weight_sum + penalty.value(W, sq_norm=float(np.sum(W * W)))
        curve.append(value)
        _report(options.verbose, "epoch", epoch + 1, value)
        if options.callback is not None and _call_back(options, epoch + 1, value, W, b):
            return epoch + 1, curve, False, step, True
        stalled = no_gain.update(value)
        if stalled and options.learning_rate != "adaptive":
            return epoch + 1, curve, True, step, False
        if options.learning_rate == "adaptive" and stalled:
            eta /= 5.0
            if eta < _MIN_ADAPTIVE_ETA:
                return epoch + 1, curve, True, step, False
    return max_epochs, curve, False, step, False


def _check_sgd_progress(backend, data, loss_id, W0, b0, alpha, fit_intercept, curve, options):
    """After SGD stopped on its no-improvement rule: True, or warn and return False.

    The rule is met as well when the loss stalls at a value far *above* that of
    the starting coefficients (steps too large for the data's scale: the
    iterates jump around a huge loss). That is no convergence: warn when the
    best epoch loss exceeds ``max(2 F0, F0 + 1)``, ``F0`` the objective at the
    start (one extra pass over the data, only here).
    """
    loss_sum, _ = backend.loss_grad(data, W0, b0, loss_id)
    start = float(loss_sum) / data.weight_sum + as_penalty(alpha).value(
        W0, sq_norm=float(np.sum(W0 * W0)))
    best = min(curve)
    if not best > max(2.0 * start, start + 1.0):
        return True
    warnings.warn(
        f"sgd failed to converge: its epoch loss stopped improving by tol for "
        f"n_iter_no_change={options.n_iter_no_change} epochs, but at {best:.3g}, far above the "
        f"objective of the starting coefficients ({start:.3g}): the steps are too large for the "
        f"data. Lower eta0, or use learning_rate='invscaling' or solver='lbfgs'."
        f"{_feature_scale_hint(data, fit_intercept)}",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )
    return False


def train(backend, data, loss_id, n_outputs, alpha, fit_intercept, options, coef_init=None,
          intercept_init=None, sgd_resume=None):
    """Fit with ``options.solver``; the single entry point the estimator uses.

    ``options.callback``, if set, is called as ``callback(info)`` with an
    :class:`IterationInfo` after every iteration (lbfgs, gd) or epoch (sgd);
    a true return value ends training there, without a ConvergenceWarning
    (``TrainResult.stopped``). Exceptions it raises propagate, as do
    KeyboardInterrupt and every other exception: the trainer holds no state
    of its own, so the caller decides what an interrupted run leaves behind.

    Parameters
    ----------
    backend : Backend
    data : object returned by ``backend.put``
    loss_id : int
    n_outputs : int
    alpha : float or penalty object
        L2 strength of the mean objective (``1 / (C S)``, or 0 without penalty),
        or a penalty of :mod:`fastlr._penalty` (:func:`fastlr._penalty.as_penalty`).
    fit_intercept : bool
    options : TrainOptions
    coef_init : ndarray of shape (k, d), optional
    intercept_init : ndarray of shape (k,), optional
    sgd_resume : tuple (steps, epoch_losses), optional
        sgd only: continue a run stopped after ``len(epoch_losses)`` epochs and
        ``steps`` updates, from ``coef_init``/``intercept_init`` (its
        coefficients then), exactly as the uninterrupted run (see
        :func:`train_sgd` ``history``); ``fastlr train --resume`` uses it.

    Returns
    -------
    TrainResult

    Raises
    ------
    fastlr._memory.ModelTooLarge
        When the model's coefficients and the solver's state would not fit in
        the memory available (a width from a stray column index), before
        anything is allocated.
    NonFiniteObjective
        When the objective is not finite at the starting point.
    """
    k, d = n_outputs, data.n_features
    solver = resolve_solver(options.solver, backend, data, loss_id, k)
    if solver != options.solver:
        options = replace(options, solver=solver)
    check_fit_memory(d, k, options.solver)
    W = np.zeros((k, d)) if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = np.zeros(k) if intercept_init is None or not fit_intercept else np.array(
        intercept_init, dtype=np.float64)
    if options.solver == "sgd":
        W0, b0 = W.copy(), b.copy()
        step0, history = (0, ()) if sgd_resume is None else sgd_resume
        n_epochs, curve, converged, steps, stopped = train_sgd(
            backend, data, loss_id, W, b, alpha, fit_intercept, options, step0=step0,
            history=history)
        if not (converged or stopped) and n_epochs == options.max_iter and options.tol is not None:
            _warn_max_iter("sgd", options.max_iter, data, fit_intercept, what="epochs")
        elif converged and curve and options.tol is not None:
            converged = _check_sgd_progress(backend, data, loss_id, W0, b0, alpha, fit_intercept,
                                            curve, options)
        return TrainResult(W, b, n_epochs, curve, converged, steps, stopped, options.solver)
    if options.solver in ("newton-cg", "newton-cholesky") and loss_id != LOG:
        raise ValueError(f"solver={options.solver!r} needs a convex loss: use loss='log_loss', or "
                         "solver='lbfgs' for loss='prob_squared'")
    objective = Objective(backend, data, loss_id, k, alpha, fit_intercept)
    theta0 = objective.pack(W, b)
    if options.solver == "newton-cholesky" and options.max_iter > 0:
        # the first pass forms the Hessian too (cached: the solver's first request costs nothing)
        objective.loss_grad_hess(theta0, HESSIAN_ROWS)
    value, grad = objective(theta0)  # cached: the solver's first request costs nothing
    if not (np.isfinite(value) and np.all(np.isfinite(grad))):
        raise NonFiniteObjective(overflow_message(
            backend, getattr(data.X, "dtype", np.float64),
            "the objective or its gradient is not finite at the initial coefficients"))
    if options.max_iter == 0:  # the starting model, as scikit-learn returns it (n_iter_ == [0])
        converged = options.tol is not None and np.max(np.abs(grad), initial=0.0) <= options.tol
        if not converged:
            _warn_max_iter(options.solver, 0)
        return TrainResult(W, b, 0, [], converged, solver=options.solver)
    solve = {"lbfgs": train_lbfgs, "newton-cg": train_newton_cg,
             "newton-cholesky": train_newton_cholesky}.get(options.solver, train_gd)
    theta, n_iter, curve, converged, stopped = solve(objective, theta0, options)
    W, b = objective.unpack(np.array(theta))
    return TrainResult(W.copy(), np.array(b, dtype=np.float64), n_iter, curve, converged,
                       stopped=stopped, solver=options.solver)
