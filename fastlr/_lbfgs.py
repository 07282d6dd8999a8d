"""Limited-memory BFGS for an unconstrained smooth objective, with its vector work in parallel kernels.

The method is L-BFGS (Nocedal, "Updating quasi-Newton matrices with limited
storage", *Math. Comp.* 35, 1980; Liu & Nocedal 1989), as scipy's L-BFGS-B
runs it on a problem without bounds: ``m`` correction pairs
``s_i = x_{i+1} - x_i``, ``y_i = ∇f(x_{i+1}) - ∇f(x_i)``, initial matrix
``H0 = gamma I`` with ``gamma = s·y / y·y`` of the newest pair, a pair skipped
when its curvature ``s·y`` is not above ``eps · y·y``, the first step of a run
(or after a reset) along ``-∇f`` of length 1 / ‖∇f‖, and after a failed line
search one restart from steepest descent before giving up. The direction
``-H ∇f`` comes from the compact representation of Byrd, Nocedal & Schnabel
("Representations of quasi-Newton matrices and their use in limited memory
methods", *Math. Prog.* 63, 1994, Theorem 2.2):

    H = gamma I + [S  gamma Y] [[R⁻ᵀ (D + gamma YᵀY) R⁻¹, -R⁻ᵀ], [-R⁻¹, 0]] [Sᵀ; Yᵀ]

(``R`` the upper triangle of ``SᵀY``, ``D`` its diagonal, pairs oldest
first), so that an iteration reads the pairs twice, in two parallel passes
(:mod:`fastlr.kernels.vectors`: the inner products ``Sᵀ[y, g]``, ``Yᵀ[y, g]``,
then the combination), instead of the ``4 m`` sequential passes of the
two-loop recursion. At a million coefficients scipy's L-BFGS-B spent 38 ms
per call, single-threaded, on the same pairs.

The step along the direction meets the strong Wolfe conditions or Hager and
Zhang's approximate ones (:func:`_acceptable`: near the minimum ``f``'s
decrease drowns in its rounding, the gradients' does not); the unit step is
tried first, then safeguarded secant steps on the slope (:func:`_line_search`).

Imports NumPy and :mod:`fastlr.kernels.vectors`.
"""

from dataclasses import dataclass

import numpy as np

from .kernels.vectors import lbfgs_direction, pair_dots

#: Correction pairs kept (scipy's and scikit-learn's default ``maxcor``).
MAXCOR = 10

#: Status codes of :class:`LbfgsResult` (scipy's numbering where it has one).
CONVERGED, MAX_ITER, LINE_SEARCH_FAILED, STOPPED = 0, 1, 2, 99

_FTOL = "the relative reduction of the objective fell below ftol"
_STALLED = ("neither the objective nor the gradient improved in {} iterations: the rounding of "
            "the objective and its gradient leaves no further progress")
_ZERO_GRADIENT = "the gradient is zero"
_MAX_ITER = "the number of iterations reached maxiter"
_NO_STEP = ("the line search found no step satisfying the Wolfe conditions, also along the "
            "steepest descent direction")
_NONFINITE = "the gradient is not finite"
_STOPPED = "stopped by the callback"


@dataclass
class LbfgsResult:
    """What :func:`minimize_lbfgs` returns.

    Attributes
    ----------
    x : ndarray of shape (n,), float64
        The last iterate (the starting point when no iteration was taken).
    fun : float
        ``f(x)``.
    jac : ndarray of shape (n,), float64
        ``∇f(x)``.
    nit : int
        Iterations taken (accepted steps).
    nfev : int
        Evaluations of ``fun``.
    status : int
        :data:`CONVERGED` (ftol met, a zero gradient, or no progress left), :data:`MAX_ITER`,
        :data:`LINE_SEARCH_FAILED` (no acceptable step, or a non-finite
        gradient) or :data:`STOPPED` (by the callback).
    message : str
    """

    x: np.ndarray
    fun: float
    jac: np.ndarray
    nit: int
    nfev: int
    status: int
    message: str


class _Pairs:
    """The ``m`` newest correction pairs in ring buffers, with their inner products."""

    def __init__(self, n, m):
        self.m = m
        self.S = np.zeros((m, n))
        self.Y = np.zeros((m, n))
        self.SY = np.zeros((m, m))  # SY[i, j] = s_i · y_j (buffer rows; only i older than j used)
        self.YY = np.zeros((m, m))
        self.order = []  # buffer rows, oldest first
        self.gamma = 1.0

    def reset(self):
        self.order = []

    def slot(self):
        """The buffer row the next pair goes to: a free one, else the oldest pair's."""
        used = set(self.order)
        for r in range(self.m):
            if r not in used:
                return r
        return self.order[0]

    def accept(self, r, dots_y, rows):
        """Keep the pair written to row ``r`` if its curvature allows (False: skipped).

        ``dots_y`` holds ``S[rows] · y_r`` and ``Y[rows] · y_r`` (rows 0 and 1),
        ``rows`` (a list) the kept pairs plus ``r``. A skipped pair that took the
        oldest pair's row leaves one pair fewer.
        """
        pos = {row: t for t, row in enumerate(rows)}
        sy = dots_y[0, pos[r]]
        yy = dots_y[1, pos[r]]
        if r in self.order:  # the oldest pair's row was overwritten: it is gone either way
            self.order.remove(r)
        if not (np.isfinite(sy) and np.isfinite(yy) and sy > np.finfo(float).eps * yy):
            return False
        for i in self.order + [r]:
            self.SY[i, r] = dots_y[0, pos[i]]
            self.YY[i, r] = self.YY[r, i] = dots_y[1, pos[i]]
        self.order.append(r)
        self.gamma = sy / yy
        return True

    def direction(self, g, Sg, Yg, out):
        """``out = -H g`` by the compact representation (``Sg``, ``Yg``: ``S·g``, ``Y·g`` in order)."""
        return lbfgs_direction(self.S, self.Y, np.asarray(self.order, dtype=np.int64), self.SY,
                               self.YY, self.gamma, g, Sg, Yg, out)


#: Wolfe constants: sufficient decrease ``c1`` and curvature ``c2`` (scipy's L-BFGS-B line
#: search's ``ftol`` and ``gtol``), and Hager & Zhang's ``delta`` for the approximate Wolfe test.
C1, C2, DELTA = 1e-3, 0.9, 0.1

#: Relative rise of ``f`` the approximate Wolfe test tolerates (rounding of a sum over many samples).
F_NOISE = 1e-10

#: Iterations without progress (``f`` below its lowest value so far, or ``max |g|`` below 0.99
#: of its lowest) after which a run stops. The approximate Wolfe test lets
#: L-BFGS go on where ``f`` no longer resolves its decrease but the gradient still falls (on a
#: 200-variable quadratic: from 3e-7, where scipy's L-BFGS-B stopped, to 1e-10); once rounding
#: has stopped the gradient as well (raw breast cancer in float32 at tol=1e-14: max |g| stuck at
#: 1e-6), steps still pass the test and the run would otherwise last until maxiter.
MAX_STALL = 20


class Stall:
    """The stall rule: counts iterations without progress (``f`` below its lowest value so far,
    or ``max |g|`` below 0.99 of its lowest), shared by L-BFGS (:data:`MAX_STALL`) and the
    Newton solvers (``fastlr.trainer.NEWTON_MAX_STALL``).

    Parameters
    ----------
    f : float
        The objective where the run starts.
    g_max : float
        Its ``max |g|``.
    patience : int
        Iterations in a row without progress after which :meth:`update` says stop.
    """

    def __init__(self, f, g_max, patience):
        self.f_best, self.g_best, self.count, self.patience = f, g_max, 0, patience

    def update(self, f, g_max):
        """Record one iteration; True once ``patience`` of them in a row made no progress."""
        if f < self.f_best or g_max < 0.99 * self.g_best:
            self.count = 0
        else:
            self.count += 1
        self.f_best, self.g_best = min(self.f_best, f), min(self.g_best, g_max)
        return self.count >= self.patience


def stalled_message(patience):
    """Why a run the stall rule ended stopped (the text of L-BFGS's result and of the warnings)."""
    return _STALLED.format(patience)


def _acceptable(f0, slope0, t, f, slope):
    """Whether the step ``t`` with value ``f`` and slope ``slope`` (along the direction) may be taken.

    The strong Wolfe conditions, or Hager & Zhang's approximate Wolfe
    conditions (*SIAM J. Optim.* 16, 2005, eq. 4.1) ``σ φ'(0) ≤ φ'(t) ≤
    (2δ - 1) φ'(0)`` with ``φ(t) ≤ φ(0) + F_NOISE |φ(0)|``: near a minimum the
    decrease of ``f`` falls below its rounding, and Armijo's test on ``f``
    fails for steps that do decrease it; the slope test is what Armijo's
    becomes on a quadratic, computed from gradients, which keep their
    accuracy there.
    """
    if not (np.isfinite(f) and np.isfinite(slope)):
        return False
    wolfe = f <= f0 + C1 * t * slope0 and abs(slope) <= C2 * abs(slope0)
    approximate = (C2 * slope0 <= slope <= (2.0 * DELTA - 1.0) * slope0
                   and f <= f0 + F_NOISE * abs(f0))
    return bool(wolfe or approximate)


def _line_search(evaluate, x, d, f0, g0, maxls):
    """``(t, x + t d, f, ∇f)`` for a step length ``t`` along ``d`` (a descent direction at ``x``)
    that is :func:`_acceptable`, or None.

    The unit step first (L-BFGS's natural step, taken on nearly every
    iteration). Then a bracketing search on the slope ``φ'(t) = ∇f(x + t d)·d``:
    a step whose slope turned positive, or whose ``f`` rose above Armijo's
    line and the rounding allowance, closes the bracket from the right; one
    still descending opens it further (4x) or closes it from the left. Each
    new trial is the secant zero of the slopes at the bracket's ends, kept a
    tenth of the bracket away from them (bisection when the right end's slope
    is not positive): Hager & Zhang's secant steps, safeguarded. Slopes are
    used rather than values of ``f`` because they stay accurate where the
    decrease of ``f`` is below its rounding. At most ``maxls`` evaluations.
    """
    slope0 = float(g0 @ d)
    lo, s_lo = 0.0, slope0
    hi = s_hi = None
    t = 1.0
    for _ in range(maxls):
        x_t = x + t * d
        with np.errstate(over="ignore", invalid="ignore"):
            f, g = evaluate(x_t)
            slope = float(g @ d)
        if _acceptable(f0, slope0, t, f, slope):
            return t, x_t, f, g
        too_far = (not (np.isfinite(f) and np.isfinite(slope)) or slope >= 0.0
                   or (f > f0 + C1 * t * slope0 and f > f0 + F_NOISE * abs(f0)))
        if too_far:
            hi, s_hi = t, slope
        else:
            lo, s_lo = t, slope
        if hi is None:
            t = 4.0 * t
            continue
        width = hi - lo
        if s_hi is not None and np.isfinite(s_hi) and s_hi > 0.0 and s_lo < 0.0:
            t = lo - s_lo * width / (s_hi - s_lo)
            t = min(max(t, lo + 0.1 * width), hi - 0.1 * width)
        else:
            t = lo + 0.5 * width
        if not width > 4.0 * np.finfo(float).eps * hi:
            break
    return None


def minimize_lbfgs(fun, x0, maxiter, ftol=0.0, maxls=50, maxcor=MAXCOR, callback=None):
    """Minimise ``fun`` from ``x0`` by L-BFGS (see the module docstring).

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, g)``: the objective (float) and its gradient (ndarray
        of shape (n,), float64) at ``x`` (ndarray of shape (n,), float64,
        not to be modified). Called once per trial point.
    x0 : ndarray of shape (n,)
    maxiter : int
        Most iterations (accepted steps).
    ftol : float
        Stop when ``(f_k - f_{k+1}) <= ftol · max(|f_k|, |f_{k+1}|, 1)``
        (scipy's ``factr · eps``); 0 turns the test off. Either way a run
        stops after :data:`MAX_STALL` iterations without progress
        (status :data:`CONVERGED`, a message that says so).
    maxls : int
        Most evaluations of one line search.
    maxcor : int
        Correction pairs kept.
    callback : callable, optional
        ``callback(x, f, g)`` after every iteration; a true return value (or
        ``StopIteration``) ends the run there (status :data:`STOPPED`).

    Returns
    -------
    LbfgsResult
    """
    x = np.array(x0, dtype=np.float64)
    n = x.shape[0]
    nfev = 0

    def evaluate(z):
        nonlocal nfev
        f_z, g_z = fun(z)
        nfev += 1
        return float(f_z), np.asarray(g_z, dtype=np.float64)

    f, g = evaluate(x)
    pairs = _Pairs(n, max(1, int(maxcor)))
    d = np.empty(n)
    Sg = Yg = None
    nit = 0
    status, message = MAX_ITER, _MAX_ITER
    stall = Stall(f, float(np.max(np.abs(g), initial=0.0)), MAX_STALL)
    while nit < maxiter:
        if pairs.order:
            pairs.direction(g, Sg, Yg, d)
            if not float(d @ g) < 0.0:  # rounding made it no descent direction: start afresh
                pairs.reset()
        if not pairs.order:
            norm = float(np.sqrt(g @ g))
            if norm == 0.0:
                status, message = CONVERGED, _ZERO_GRADIENT
                break
            if not np.isfinite(norm):
                status, message = LINE_SEARCH_FAILED, _NONFINITE
                break
            np.divide(g, -norm, out=d)  # steepest descent, unit step = 1 / ‖g‖ along -g
        step = _line_search(evaluate, x, d, f, g, maxls)
        if step is None:
            if pairs.order:
                pairs.reset()  # scipy's L-BFGS-B also retries once from steepest descent
                continue
            status, message = LINE_SEARCH_FAILED, _NO_STEP
            break
        t, x_new, f_new, g_new = step
        nit += 1
        r = pairs.slot()
        np.multiply(d, t, out=pairs.S[r])
        np.subtract(g_new, g, out=pairs.Y[r])
        rows = pairs.order + ([r] if r not in pairs.order else [])
        dots = pair_dots(pairs.S, pairs.Y, np.asarray(rows, dtype=np.int64), pairs.Y[r], g_new)
        pairs.accept(r, dots[:2], rows)
        if pairs.order:
            idx = [rows.index(row) for row in pairs.order]
            Sg, Yg = dots[2, idx], dots[3, idx]
        f_old = f
        x, f, g = x_new, f_new, g_new
        if callback is not None:
            try:
                stop = callback(x, f, g)
            except StopIteration:
                stop = True
            if stop:
                status, message = STOPPED, _STOPPED
                break
        if ftol > 0.0 and f_old - f <= ftol * max(abs(f_old), abs(f), 1.0):
            status, message = CONVERGED, _FTOL
            break
        if stall.update(f, float(np.max(np.abs(g), initial=0.0))):
            status, message = CONVERGED, stalled_message(MAX_STALL)
            break
    return LbfgsResult(x=x, fun=f, jac=g, nit=nit, nfev=nfev, status=status, message=message)
