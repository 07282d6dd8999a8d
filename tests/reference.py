"""Independent oracles: the seed's literal per-sample loops, in float64 Python.

Slow on purpose: one sample at a time, exactly as the seed's worked example
accumulates ``grad_w[j] += (ŷ − y) ŷ (1 − ŷ) x_j``. Use small shapes only.
"""

import math

import numba
import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def seed_loss_grad(X, y, coef, intercept, loss="log_loss", sample_weight=None):
    """Mean loss and mean gradients by the seed's per-sample loop.

    ``coef`` (d,) is the sigmoid neuron; ``coef`` (k, d) with k >= 2 the softmax one.
    Returns (loss, grad_coef like coef, grad_intercept like intercept).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if np.ndim(coef) == 1:
        grad_w = [0.0] * d
        grad_b = 0.0
        total = 0.0
        for i in range(n):
            z = intercept + sum(X[i][j] * coef[j] for j in range(d))
            yp = _sigmoid(z)
            if loss in ("log_loss", "log"):
                # log(1 + e^z) - y z, written the plain way, valid for moderate z
                total += sw[i] * (max(z, 0.0) + math.log1p(math.exp(-abs(z))) - y[i] * z)
                r = yp - y[i]
            else:
                total += sw[i] * 0.5 * (yp - y[i]) ** 2
                r = (yp - y[i]) * yp * (1 - yp)
            grad_b += sw[i] * r
            for j in range(d):
                grad_w[j] += sw[i] * r * X[i][j]
        m = sw.sum()
        return total / m, np.array(grad_w) / m, grad_b / m
    k = len(coef)
    grad_w = np.zeros((k, d))
    grad_b = np.zeros(k)
    total = 0.0
    for i in range(n):
        z = [intercept[c] + sum(X[i][j] * coef[c][j] for j in range(d)) for c in range(k)]
        zmax = max(z)
        expz = [math.exp(v - zmax) for v in z]
        p = [v / sum(expz) for v in expz]
        t = [1.0 if c == y[i] else 0.0 for c in range(k)]
        if loss in ("log_loss", "log"):
            total += sw[i] * -math.log(p[y[i]])
            r = [p[c] - t[c] for c in range(k)]
        else:
            total += sw[i] * 0.5 * sum((p[c] - t[c]) ** 2 for c in range(k))
            # d/dz_c of ½ Σ_a (p_a − t_a)² = Σ_a (p_a − t_a) p_a (δ_ac − p_c)
            r = [sum((p[a] - t[a]) * p[a] * ((a == c) - p[c]) for a in range(k)) for c in range(k)]
        for c in range(k):
            grad_b[c] += sw[i] * r[c]
            for j in range(d):
                grad_w[c][j] += sw[i] * r[c] * X[i][j]
    m = sw.sum()
    return total / m, grad_w / m, grad_b / m


def seed_gradient_descent(X, y, lr, n_iter):
    """The seed's training loop for the least-squares sigmoid neuron (no penalty).

    Returns the weights and bias after ``n_iter`` full-batch steps from zero.
    """
    X = np.asarray(X, dtype=np.float64)
    m, d = X.shape
    W = np.zeros(d)
    bias = 0.0
    for _ in range(n_iter):
        YP = [_sigmoid(bias + X[i] @ W) for i in range(m)]
        grad_bias = 0.0
        grad_w = np.zeros(d)
        for i in range(m):
            grad_bias += (YP[i] - y[i]) * YP[i] * (1 - YP[i])
            for j in range(d):
                grad_w[j] += (YP[i] - y[i]) * YP[i] * (1 - YP[i]) * X[i][j]
        W = W - grad_w * lr / m
        bias = bias - grad_bias * lr / m
    return W, bias


# -- tolerances that follow from the problem ---------------------------------------------------
#
# Results are not bitwise equal across CPUs: LLVM picks the SIMD width for the CPU it compiles
# on, which changes the order of every sum inside a chunk. The helpers below turn "how far
# apart may two results be" into a bound computed from the data, so the tests pass on any
# x86-64 or arm64 CPU and still fail when one result is wrong.

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23: float32 unit roundoff is EPS32 / 2
EPS64 = float(np.finfo(np.float64).eps)


def sum_bound(abs_sum, n_terms, dtype=np.float64):
    """Worst-case rounding error of a sum of ``n_terms`` terms, in any order.

    Higham, *Accuracy and Stability of Numerical Algorithms* (2nd ed.), eq. (4.4):
    ``|fl(Σ x_i) − Σ x_i| ≤ γ_{n−1} Σ |x_i|`` with ``γ_m = m u / (1 − m u)`` and ``u`` the unit
    roundoff of ``dtype``. ``abs_sum`` is ``Σ |x_i|`` (array or scalar); it holds for pairwise,
    blocked, SIMD-lane or sequential orders alike, which is why it is the right tolerance
    between two machines' sums.
    """
    u = float(np.finfo(dtype).eps) / 2
    m = max(int(n_terms) - 1, 1)
    return m * u / (1 - m * u) * np.asarray(abs_sum, dtype=np.float64)


def float32_sum_bound(abs_sum, n_terms):
    """:func:`sum_bound` for float32 sums (unit roundoff 2**-24 ≈ 6e-8)."""
    return sum_bound(abs_sum, n_terms, np.float32)


def tolerance(dtype):
    """rtol of :func:`assert_cpu_matches_reference` for float64 X.

    Both backends compute in float64 and sum in different orders; the float64 gap is a small
    multiple of eps64 times the problem's sums (see :func:`float32_kernel_bound` for float32).
    """
    return 1e-5 if dtype == np.float32 else 1e-12


def float32_kernel_bound(X, coef, intercept, sw):
    """|CPU float32 result − float64 result| bounds for (loss, grad coef, grad intercept), means.

    The dense CPU kernels form the scores in float32 (w rounded to float32) and sum ``dz · x``
    in float32 over a block of rows, the rest in float64 (fastlr/kernels/cpu.py): the binary
    kernel over ``BLOCK_ROWS`` = 16 rows, the softmax kernels (register tiles or BLAS block
    products) over ``FLUSH_ROWS`` = 64 rows, with ``dz`` itself rounded to float32 on the BLAS
    path (one more rounding per term). ``|Δz_i| ≤ 2 γ_{d+2} (Σ_j |x_ij w_j| + |b|)``
    (:func:`float32_sum_bound`); both losses have |∂loss/∂z|₁ ≤ 2 and residuals that move by at
    most |Δz|, and every residual is at most 1 in size, so the gradient moves by
    ``(1/S) Σ s_i |Δz_i| |x_ij|`` plus the block partials' ``γ_{block+1} (1/S) Σ s_i |x_ij|``;
    the float64 sums add ``γ_n`` of the same.
    """
    from fastlr.kernels.cpu import BLOCK_ROWS, FLUSH_ROWS

    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    W = np.abs(np.atleast_2d(coef))
    block = BLOCK_ROWS + 1 if W.shape[0] == 1 else FLUSH_ROWS + 2
    b = np.abs(np.broadcast_to(np.asarray(intercept, dtype=np.float64), (W.shape[0],)))
    s = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    S = s.sum()
    dz = 2 * float32_sum_bound(np.abs(X) @ W.T + b, d + 2).max(axis=1)
    abs_x = (s @ np.abs(X)) / S
    grad = (s * dz) @ np.abs(X) / S + float32_sum_bound(abs_x, block) + sum_bound(abs_x, n + d)
    grad_b = (s @ dz) / S + float32_sum_bound(1.0, block) + sum_bound(1.0, n)
    loss = 2 * (s @ dz) / S
    return loss, np.broadcast_to(grad, np.shape(coef)), grad_b


def float64_gradient_bound(X, coef, intercept):
    """Bound on |gradient of the mean log loss by one float64 evaluation − the exact one|.

    Per component (shape of ``coef``, and the intercept's). Any float64 evaluation (the CPU
    kernels, the NumPy backend) forms ``z_i = x_i·w + b`` with ``|Δz_i| ≤ γ_{d+1} (Σ_j |x_ij
    w_j| + |b|)`` (:func:`sum_bound`); the residual ``σ(z) − y`` moves by at most ``|Δz_i|/4``
    (bounded here by ``|Δz_i|``), and the mean ``(1/n) Σ dz_i x_ij`` adds ``γ_n (1/n) Σ |x_ij|``
    (every residual is at most 1). Two evaluations differ by at most twice this. It grows with
    ``|x_ij| · |w_j x_ij|``: a column of Unix timestamps (|x| ≈ 1.7e9) makes it far larger
    than eps.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    W = np.abs(np.atleast_2d(coef))
    b = np.abs(np.broadcast_to(np.asarray(intercept, dtype=np.float64), (W.shape[0],)))
    dz = sum_bound(np.abs(X) @ W.T + b, d + 2).max(axis=1)
    abs_x = np.abs(X).mean(axis=0)
    grad = dz @ np.abs(X) / n + sum_bound(abs_x, n + 1)
    grad_b = dz.mean() + sum_bound(1.0, n + 1)
    return np.broadcast_to(grad, np.shape(coef)), grad_b


def assert_cpu_matches_reference(cpu, ref, X, coef, intercept, sw):
    """(loss, grad coef, grad intercept) means of the CPU kernel against the float64 numpy backend.

    float32 X: within :func:`float32_kernel_bound`; float64 X: within :func:`tolerance`,
    relative to the largest gradient component.
    """
    if X.dtype == np.float32:
        loss_tol, grad_tol, grad_b_tol = float32_kernel_bound(X, coef, intercept, sw)
        assert abs(cpu[0] - ref[0]) <= loss_tol + 1e-12 * abs(ref[0])
        assert np.all(np.abs(cpu[1] - ref[1]) <= grad_tol)
        assert np.all(np.abs(np.asarray(cpu[2]) - ref[2]) <= grad_b_tol)
    else:
        rtol = tolerance(X.dtype)
        np.testing.assert_allclose(cpu[0], ref[0], rtol=rtol)
        scale = np.max(np.abs(ref[1]))
        np.testing.assert_allclose(cpu[1], ref[1], rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(cpu[2], ref[2], rtol=rtol, atol=rtol * scale)


def _design(X):
    """X as float64 (dense ndarray or scipy.sparse CSR), the exact values of the data given."""
    if hasattr(X, "tocsr"):
        return X.tocsr().astype(np.float64)
    return np.asarray(X, dtype=np.float64)


def _codes(y, classes):
    classes = np.asarray(classes)
    codes = np.searchsorted(classes, np.asarray(y))
    assert np.array_equal(classes[codes], np.asarray(y)), "labels outside classes"
    return codes


class FitPoint:
    """The log-loss objective of scikit-learn/fastlr at one point, in float64 NumPy.

    ``F(W, b) = (1/S) Σ s_i loss(x_i·W + b, y_i) + ‖W‖² / (2 C S)``, ``S = Σ s_i`` (class
    weights folded into ``sample_weight``), the objective both libraries minimise. Binary when
    ``coef`` has one row (sigmoid), softmax otherwise. Attributes: ``value``, ``grad`` (flat:
    coef then intercept, float64), ``grad_error`` (a bound on this gradient's own rounding error,
    per component), ``theta`` (the point, flat).
    """

    def __init__(self, X, y, coef, intercept, C=1.0, sample_weight=None, classes=None,
                 fit_intercept=True):
        from scipy.special import expit, log_softmax, logsumexp

        self.X = X = _design(X)
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        intercept = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (coef.shape[0],))
        k, d = coef.shape
        n = X.shape[0]
        y = _codes(y, np.arange(max(k, 2)) if classes is None else classes)
        s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        S = s.sum()
        self.alpha = 0.0 if C == np.inf else 1.0 / (C * S)
        self.k, self.d, self.n, self.s, self.S = k, d, n, s, S
        self.fit_intercept = fit_intercept
        Z = np.asarray(X @ coef.T) + intercept
        if k == 1:
            z = Z[:, 0]
            losses = np.logaddexp(0.0, z) - y * z
            P = expit(z)[:, None]
            R = P - y[:, None]
            self.P = P
        else:
            losses = logsumexp(Z, axis=1) - Z[np.arange(n), y]
            P = np.exp(log_softmax(Z, axis=1))
            R = P.copy()
            R[np.arange(n), y] -= 1.0
            self.P = P
        self.value = float(s @ losses / S + 0.5 * self.alpha * np.sum(coef * coef))
        sR = R * s[:, None]
        grad_W = np.asarray(X.T @ sR).T / S + self.alpha * coef
        grad_b = sR.sum(axis=0) / S if fit_intercept else np.zeros(k)
        self.grad = np.concatenate([grad_W.ravel(), grad_b])
        self.theta = np.concatenate([coef.ravel(), intercept])
        # rounding of this float64 gradient: each component is a sum of n terms |s_i r_i x_ij|/S,
        # each term itself off by a few ulps (z over d products, then expit/softmax)
        absX = abs(X)
        abs_terms = np.concatenate([np.asarray(absX.T @ abs(sR)).T.ravel(), abs(sR).sum(axis=0)]) / S
        self.abs_terms = abs_terms
        self.grad_error = sum_bound(abs_terms, n + d + 8)

    def hessian_floor(self):
        """Smallest eigenvalue of ∇²F here, on the directions F is not invariant along.

        The softmax loss does not change when the same number is added to every class's
        intercept (or, without a penalty, the same vector to every class's coefficients);
        those directions are projected out (see :meth:`project`).
        """
        if getattr(self, "_mu", None) is not None:
            return self._mu
        X, n, d, k = self.X, self.n, self.d, self.k
        Xt = np.hstack([X.toarray() if hasattr(X, "toarray") else X, np.ones((n, 1))])
        w = self.s / self.S
        if k == 1:
            p = self.P[:, 0]
            H = (Xt * (w * p * (1 - p))[:, None]).T @ Xt
            blocks = [[H]]
        else:
            P = self.P
            blocks = [[(Xt * (w * (P[:, a] * (a == c) - P[:, a] * P[:, c]))[:, None]).T @ Xt
                       for c in range(k)] for a in range(k)]
        H = np.block(blocks)  # class-major, each block (d + 1) x (d + 1): coef then intercept
        # reorder to the flat layout of `grad`: all coef (k*d) then all intercepts (k)
        order = [a * (d + 1) + j for a in range(k) for j in range(d)] + [a * (d + 1) + d for a in range(k)]
        H = H[np.ix_(order, order)]
        H[np.arange(k * d), np.arange(k * d)] += self.alpha
        if not self.fit_intercept:
            keep = np.arange(k * d)
            H = H[np.ix_(keep, keep)]
        Q = self._basis(H.shape[0])
        self._mu = float(np.linalg.eigvalsh(Q.T @ H @ Q)[0])
        return self._mu

    def _basis(self, m):
        """Orthonormal basis of the directions F is not invariant along."""
        k, d = self.k, self.d
        cache = self.__dict__.setdefault("_bases", {})
        if m in cache:
            return cache[m]
        null = []
        if k > 1:
            if self.fit_intercept:
                v = np.zeros(m)
                v[k * d:k * d + k] = 1.0
                null.append(v)
            if self.alpha == 0:
                for j in range(d):
                    v = np.zeros(m)
                    v[j:k * d:d] = 1.0
                    null.append(v)
        if not null:
            cache[m] = np.eye(m)
        else:
            N = np.linalg.qr(np.array(null).T)[0]
            cache[m] = np.linalg.svd(np.eye(m) - N @ N.T)[0][:, :m - len(null)]
        return cache[m]

    def project(self, v):
        """``v`` (flat, like ``theta``) without its components along the invariant directions."""
        v = np.asarray(v, dtype=np.float64)[:self.k * self.d + (self.k if self.fit_intercept else 0)]
        Q = self._basis(v.size)
        return Q @ (Q.T @ v)


def fit_point(model, X, y, C=None, sample_weight=None, fit_intercept=True):
    """:class:`FitPoint` at a fitted estimator's ``coef_``/``intercept_`` (its ``C``, ``classes_``)."""
    C = model.C if C is None else C
    C = np.inf if getattr(model, "penalty", "l2") is None else C
    return FitPoint(X, y, model.coef_, model.intercept_, C, sample_weight,
                    classes=getattr(model, "classes_", None), fit_intercept=fit_intercept)


def fit_gap_bound(points, safety=2.0):
    """Bound on ``‖θ_a − θ_b‖₂`` for two near-optimal points of the same strongly convex F.

    For F with ∇²F ⪰ μ I (on the non-invariant directions), ``‖θ − θ*‖₂ ≤ ‖∇F(θ)‖₂ / μ``
    (Nesterov, *Lectures on Convex Optimization*, Thm 2.1.10), so two points are within
    ``(‖∇F(θ_a)‖₂ + ‖∇F(θ_b)‖₂) / μ`` of each other. The gradients are the true float64 ones at
    the returned points (plus their own rounding bound), so the float32 rounding inside a fit,
    a different stopping iteration or another summation order are all accounted for, whatever
    the CPU. μ is the smallest Hessian eigenvalue at the first point; ``safety`` (2) covers its
    change over the (tiny) distance between the points, where the log-loss Hessian is Lipschitz.
    """
    mu = points[0].hessian_floor()
    assert mu > 0, "the objective is not strongly convex here: compare objectives instead"
    g = sum(np.linalg.norm(p.grad) + np.linalg.norm(p.grad_error) for p in points)
    return safety * g / mu


def assert_fits_agree(a, b, X, y, C=None, sample_weight=None, tol=None, tol_b=None,
                      fit_intercept=True, safety=2.0):
    """Two fits of the same log-loss problem are the same model, to what their gradients allow.

    ``a`` and ``b`` are fitted estimators (fastlr or scikit-learn) or ``(coef, intercept)``
    pairs. If ``tol`` (``tol_b``) is given, ``a`` (``b``) must have stopped where the float64
    gradient satisfies ``max|∇F| ≤ tol`` up to that gradient's rounding and the float32 rounding
    of a float32 fit (``float32_sum_bound`` of the gradient's terms): the check that each fit is
    right, against this independent reference. Then the coefficients (intercepts projected
    onto the directions F depends on) must be within :func:`fit_gap_bound`, and the objectives
    within ``Σ ‖∇F‖² / (2μ)``-style slack (``F(θ) − F* ≤ ‖∇F(θ)‖² / (2μ)``).
    Returns the two :class:`FitPoint` objects.
    """
    def point(m):
        if isinstance(m, tuple):
            assert C is not None
            return FitPoint(X, y, m[0], m[1], C, sample_weight, fit_intercept=fit_intercept)
        return fit_point(m, X, y, C, sample_weight, fit_intercept)

    pa, pb = point(a), point(b)
    for p, t, name in ((pa, tol, "a"), (pb, tol_b, "b")):
        if t is None:
            continue
        excess = np.max(np.abs(p.grad) - 2 * p.grad_error - float32_score_slack(X, p))
        assert excess <= t, f"fit {name}: max|grad F| - rounding = {excess:.3g} > tol = {t:g}"
    bound = fit_gap_bound([pa, pb], safety)
    gap = np.linalg.norm(pa.project(pa.theta - pb.theta))
    assert gap <= bound, f"‖θa − θb‖₂ = {gap:.3g} > bound {bound:.3g} from the gradients"
    mu = pa.hessian_floor()
    slack_F = safety * sum((np.linalg.norm(p.grad) + np.linalg.norm(p.grad_error)) ** 2
                           for p in (pa, pb)) / (2 * mu)
    slack_F += sum_bound(abs(pa.value) + abs(pb.value), pa.n + 8)
    assert abs(pa.value - pb.value) <= slack_F, (pa.value, pb.value, slack_F)
    return pa, pb


def float32_score_slack(X, p):
    """How far a float32 fit's own gradient may be from the float64 one at the same point.

    The dense kernels (fastlr/kernels/cpu.py) form the scores ``z = x·w + b`` in X's
    precision, with w rounded to it, and sum ``dz · x`` over blocks of ``BLOCK_ROWS`` rows in
    X's precision too; everything else is float64. For float32 X each score is off by
    ``|Δz_i| ≤ γ_{d+2} (Σ_j |x_ij w_j| + |b|)`` (the sum, plus rounding w and b to float32;
    :func:`float32_sum_bound`), and a residual ``p − y`` moves by at most ``|Δz|`` (the
    sigmoid/softmax Jacobian has norm ≤ 1/2), so each gradient component moves by at most
    ``(1/S) Σ_i s_i |Δz_i| |x_ij|`` (1 for the intercept), plus ``γ_{BLOCK_ROWS}`` times the
    terms ``(1/S) Σ_i s_i |r_i x_ij|`` for the float32 block partials. Zero for float64 X.
    Returns a flat array shaped like ``p.grad``.
    """
    from fastlr.kernels.cpu import BLOCK_ROWS

    if getattr(X, "dtype", np.float64) != np.float32:
        return np.zeros_like(p.grad)
    k, d = p.k, p.d
    W = np.abs(p.theta[:k * d].reshape(k, d))
    b = np.abs(p.theta[k * d:])
    absX = abs(p.X)
    dz = 2 * float32_sum_bound(np.asarray(absX @ W.T) + (b if b.size else 0.0), d + 2).max(axis=1)
    w = p.s * dz / p.S
    per_feature = np.asarray(absX.T @ w).ravel()
    slack = np.concatenate([np.tile(per_feature, k), np.full(p.grad.size - k * d, w.sum())])
    return slack + float32_sum_bound(p.abs_terms, BLOCK_ROWS + 1)


def per_thread_count(fn, counts=(1, 2, 1, 2)):
    """``[fn() with Numba's thread count set to c for c in counts]``, the count restored after.

    The bitwise-determinism tests compare these results with ``assert_array_equal``.
    """
    results = []
    for threads in counts:
        numba.set_num_threads(threads)
        try:
            results.append(fn())
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return results
