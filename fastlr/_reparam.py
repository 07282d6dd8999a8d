"""L-BFGS's change of variables: centred, scaled coordinates in which the objective is unchanged.

L-BFGS's progress depends on the coordinates it is run in: on raw features
whose scales span 1e-2..1e3, or whose means are far from zero (the intercept
then fights every coefficient), it needs thousands of iterations where the
same problem on standardised features needs twenty. Standardising X itself
changes the model's coefficients and costs a copy of X; this module instead
runs L-BFGS in coordinates ``u`` with

    W = U · diag(scale),    b = u_b · intercept_scale − W · mean

(``mean`` the weighted column means, only with a fitted intercept), an
invertible linear map: ``F(θ(u))`` is the same objective, the same optimum,
only the path differs. ``scale_j = 1 / sqrt(h0 var_j + alpha)`` is the inverse
square root of the objective's Hessian diagonal at ``W = 0`` in the centred
coordinates (``h0`` the loss's curvature there: 1/4 for the binary model,
``(1/k)(1 − 1/k)`` for the softmax one), ``intercept_scale = 1 / sqrt(h0)``:
a diagonal (Jacobi) preconditioner, as in Nocedal & Wright, *Numerical
Optimization* (2006), §7.2 on scaling, folded into the variables so that
L-BFGS (:mod:`fastlr._lbfgs`) runs unchanged. The gradient in ``u`` is
``∂F/∂U_cj = scale_j (∂F/∂W_cj − mean_j ∂F/∂b_c)``, ``∂F/∂u_b = intercept_scale ∂F/∂b``.

Imports only NumPy.
"""

import numpy as np


class AffineReparametrization:
    """``θ = T u`` for the flat parameter vector ``θ = [W.ravel(), b]`` of a (k, d) model.

    Parameters
    ----------
    mean : ndarray of shape (d,), float64
        Column means subtracted through the intercept (zeros without one).
    scale : ndarray of shape (d,), float64, > 0
    intercept_scale : float, > 0
    n_outputs : int
        ``k``.
    fit_intercept : bool
    """

    def __init__(self, mean, scale, intercept_scale, n_outputs, fit_intercept):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.intercept_scale = float(intercept_scale)
        self.k = int(n_outputs)
        self.d = self.scale.shape[0]
        self.fit_intercept = bool(fit_intercept)

    @classmethod
    def from_moments(cls, mean, var, alpha, n_outputs, fit_intercept):
        """The map of the module docstring from X's weighted column ``mean`` and ``var`` (d,).

        A column whose curvature ``h0 var_j + alpha`` is 0 (constant and
        unpenalised: the objective does not depend on it once centred) keeps
        scale 1. Without an intercept nothing is centred.
        """
        k = int(n_outputs)
        h0 = 0.25 if k == 1 else (1.0 / k) * (1.0 - 1.0 / k)
        curvature = h0 * np.asarray(var, dtype=np.float64) + float(alpha)
        ok = np.isfinite(curvature) & (curvature > 0.0)
        scale = np.ones_like(curvature)
        scale[ok] = 1.0 / np.sqrt(curvature[ok])
        mean = np.asarray(mean, dtype=np.float64) if fit_intercept else np.zeros_like(curvature)
        if not np.all(np.isfinite(mean)):
            mean = np.zeros_like(curvature)
        return cls(mean, scale, 1.0 / np.sqrt(h0), k, fit_intercept)

    def to_theta(self, u):
        """``θ = T u`` (a new array, written in place: no temporaries of θ's size)."""
        k, d = self.k, self.d
        theta = np.empty(k * d + (k if self.fit_intercept else 0))
        W = theta[: k * d].reshape(k, d)
        np.multiply(u[: k * d].reshape(k, d), self.scale, out=W)
        if self.fit_intercept:
            theta[k * d:] = u[k * d:] * self.intercept_scale - W @ self.mean
        return theta

    def to_u(self, theta):
        """``u = T⁻¹ θ`` (a new array)."""
        k, d = self.k, self.d
        W = theta[: k * d].reshape(k, d)
        U = W / self.scale
        if not self.fit_intercept:
            return U.ravel()
        u_b = (theta[k * d:] + W @ self.mean) / self.intercept_scale
        return np.concatenate([U.ravel(), u_b])

    def grad_u(self, grad):
        """``Tᵀ ∇F``: the gradient in ``u`` from the gradient in ``θ`` (a new array, written in
        place: at a million coefficients each temporary of that size costs as much as the
        arithmetic)."""
        k, d = self.k, self.d
        gW = grad[: k * d].reshape(k, d)
        out = np.empty_like(grad, dtype=np.float64)
        gU = out[: k * d].reshape(k, d)
        if not self.fit_intercept:
            np.multiply(gW, self.scale, out=gU)
            return out
        gb = grad[k * d:]
        np.multiply(gb[:, None], self.mean, out=gU)
        np.subtract(gW, gU, out=gU)
        gU *= self.scale
        out[k * d:] = gb * self.intercept_scale
        return out
