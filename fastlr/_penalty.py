"""The coefficient penalty, written once for the trainer and every kernel (L2 for now).

The objective the trainer minimises is the mean loss plus a penalty on the
coefficients ``W`` (never on the intercept)::

    F(W, b) = (1 / S) Σ_i s_i loss(z_i, y_i) + alpha · R(W),      R(W) = ½ ‖W‖²  (L2)

Two layers, as for the losses in :mod:`fastlr._math`:

* :func:`build_penalty` compiles the per-coefficient pieces with a decorator
  (``numba.njit(inline="always")`` for the CPU kernels, ``numba.cuda.jit(device=True)``
  for the GPU kernel, or the identity for NumPy, where the same source works
  elementwise on arrays). The SGD kernels take their steps through it.
* :class:`L2Penalty` is the array-level object the trainer uses: value,
  gradient, Hessian times a direction and proximal step of ``alpha · R``.

The expressions keep the exact operation order the kernels had before they
were gathered here, so results are bitwise those of the earlier code:
``w - eta (g + alpha w)`` and ``(1 - eta alpha) w - eta g`` round differently,
and each kernel keeps its own form (see :func:`build_penalty`).

An L1 or elastic-net penalty plugs in beside L2: a non-smooth ``R`` gives
``value`` and ``prox`` (soft-thresholding) here, and the SGD kernels then
take a gradient step followed by the proximal step instead of ``sgd_update``.
"""

from types import SimpleNamespace

import numpy as np

#: Penalty names accepted by :func:`make_penalty` (scikit-learn's spelling).
PENALTIES = ("l2",)


def build_penalty(jit, real):
    """Compile the per-coefficient L2 operations with ``jit`` computing in type ``real``.

    Parameters
    ----------
    jit : callable
        A decorator such as ``numba.njit(inline="always")`` or
        ``numba.cuda.jit(device=True)``; ``lambda f: f`` gives functions that
        also work elementwise on NumPy arrays.
    real : type
        The floating-point type of every constant, e.g. ``numpy.float64``
        (``numpy.float32`` keeps a float32 GPU kernel free of float64 arithmetic).

    Returns
    -------
    types.SimpleNamespace
        ``sgd_update(w, g, eta, alpha)``
            One SGD step of a coefficient ``w`` whose loss gradient is ``g``:
            ``w - eta (g + alpha w)`` (the dense CPU, GPU and NumPy kernels).
        ``shrink(eta, alpha)``
            The factor ``1 - eta alpha`` that the same step applies to every
            coefficient; the sparse kernel keeps ``W = wscale · V`` and
            multiplies ``wscale`` by it (Bottou's lazy scaling), then moves
            only the batch's columns by ``-eta g``.
        ``prox(w, eta, alpha)``
            The proximal step ``argmin_u ½ (u - w)² + eta alpha ½ u²``
            ``= w / (1 + eta alpha)``.
        ``value(sq_norm, alpha)``
            ``alpha ½ ‖W‖²`` from ``sq_norm = ‖W‖²``.
        ``grad(w, alpha)``
            ``alpha w``, the penalty's derivative in ``w`` (also its Hessian
            times a direction ``w``).
    """
    one = real(1.0)
    half = real(0.5)

    @jit
    def sgd_update(w, g, eta, alpha):
        return w - eta * (g + alpha * w)

    @jit
    def shrink(eta, alpha):
        return one - eta * alpha

    @jit
    def prox(w, eta, alpha):
        return w / (one + eta * alpha)

    @jit
    def value(sq_norm, alpha):
        return half * alpha * sq_norm

    @jit
    def grad(w, alpha):
        return alpha * w

    return SimpleNamespace(sgd_update=sgd_update, shrink=shrink, prox=prox, value=value, grad=grad)


#: The L2 pieces as plain Python, which NumPy broadcasts over arrays.
L2_NUMPY = build_penalty(lambda f: f, np.float64)


class L2Penalty:
    """``alpha · ½ ‖W‖²`` over a coefficient array ``W`` (k, d); the intercept is never penalised.

    Parameters
    ----------
    alpha : float
        Strength in the mean objective, ``1 / (C S)`` (``S`` the total sample
        weight), or 0 for none.
    """

    name = "l2"

    def __init__(self, alpha):
        self.alpha = float(alpha)

    def __repr__(self):
        return f"L2Penalty(alpha={self.alpha!r})"

    def value(self, W, sq_norm=None):
        """``alpha ½ ‖W‖²`` as a Python float (``W`` any shape, float64).

        ``‖W‖²`` is ``np.dot`` of the flattened ``W`` unless the caller passes
        it as ``sq_norm``: SGD's epoch loss sums it as ``np.sum(W * W)``, which
        rounds differently, and keeps doing so (its loss curve and stopping
        rule stay bitwise those of earlier releases).
        """
        if sq_norm is None:
            w = np.asarray(W).ravel()
            sq_norm = float(np.dot(w, w))
        return float(L2_NUMPY.value(sq_norm, self.alpha))

    def grad(self, W):
        """``alpha W``, the gradient of :meth:`value`."""
        return L2_NUMPY.grad(W, self.alpha)

    def hess_vec(self, V):
        """The penalty's Hessian ``alpha I`` times the direction ``V``."""
        return L2_NUMPY.grad(V, self.alpha)

    def hess_diag(self, shape):
        """The diagonal of the penalty's Hessian ``alpha I``, of ``shape``."""
        return np.full(shape, self.alpha)

    def prox(self, W, eta):
        """``argmin_U ½ ‖U - W‖² + eta · value(U)`` = ``W / (1 + eta alpha)``."""
        return L2_NUMPY.prox(W, eta, self.alpha)

    def sgd_update(self, W, G, eta):
        """One SGD step ``W - eta (G + alpha W)`` of coefficients ``W`` with loss gradient ``G``."""
        return L2_NUMPY.sgd_update(W, G, eta, self.alpha)


def as_penalty(alpha):
    """``alpha`` itself if it is a penalty object, else :class:`L2Penalty` of strength ``alpha``.

    The trainer's ``alpha`` arguments take either, so a caller passing the L2
    strength as a number (the estimator, the tests) needs no change.
    """
    if hasattr(alpha, "value") and hasattr(alpha, "grad"):
        return alpha
    return L2Penalty(alpha)


def make_penalty(penalty, alpha):
    """The penalty object named ``penalty`` with strength ``alpha``.

    Raises
    ------
    ValueError
        If ``penalty`` is not one of :data:`PENALTIES`.
    """
    if penalty == "l2":
        return L2Penalty(alpha)
    raise ValueError(f"unknown penalty {penalty!r}; expected one of "
                     f"{', '.join(map(repr, PENALTIES))}")
