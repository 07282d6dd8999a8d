"""Per-sample loss functions in the raw score ``z``, written once for every kernel.

The functions are plain Python over scalars (and, for the softmax, small
1-D arrays) that use only ``math``-style operations, so the same source
compiles with ``numba.njit`` for the CPU and with ``numba.cuda.jit(device=True)``
for the GPU. :func:`build_math` takes the decorator and the floating-point
type to compute in; every constant is created with that type so that a
float32 GPU kernel contains no float64 arithmetic (Numba types a bare ``1.0``
as float64).

Losses, for a label ``y`` and a raw score ``z = x·w + b``:

``LOG`` (cross-entropy; public name ``"log_loss"``, scikit-learn's)
    binary: ``log(1 + e^z) - y z``, derivative ``σ(z) - y``;
    multinomial: ``logsumexp(z) - z_y``, derivative ``softmax(z) - onehot(y)``.
``SQUARED`` (the seed's least-squares sigmoid neuron; public name ``"prob_squared"``:
the squared error of the predicted probability, not scikit-learn's ``"squared_error"``
on the raw score)
    binary: ``½ (σ(z) - y)²``, derivative ``(σ(z) - y) σ(z) (1 - σ(z))``;
    multinomial: ``½ ‖softmax(z) - onehot(y)‖²``, derivative
    ``p_c (r_c - Σ_a r_a p_a)`` with ``p = softmax(z)``, ``r = p - onehot(y)``.
"""

import math
from types import SimpleNamespace

#: Loss identifiers passed to the kernels (integers, so one compiled kernel serves both).
LOG = 0
SQUARED = 1

LOSS_IDS = {"log_loss": LOG, "prob_squared": SQUARED}

#: Earlier spellings, still accepted with a FutureWarning: old name -> current name.
DEPRECATED_LOSS_NAMES = {"log": "log_loss", "squared": "prob_squared"}


def build_math(jit, real):
    """Compile the per-sample functions with ``jit`` computing in type ``real``.

    Parameters
    ----------
    jit : callable
        A decorator such as ``numba.njit(inline="always")`` or
        ``numba.cuda.jit(device=True)``.
    real : type
        The floating-point type of every constant, e.g. ``numpy.float64``.

    Returns
    -------
    types.SimpleNamespace
        With attributes ``log1p_unit``, ``sigmoid_from``, ``log1pexp``,
        ``sigmoid``, ``binary_loss_dz``, ``softmax_loss_dz_from_exp``,
        ``softmax_loss_dz``, and the log loss's Hessian times a direction,
        ``binary_hess_dz`` and ``softmax_hess_dz_from_exp`` (for Newton-CG).
    """
    zero = real(0.0)
    one = real(1.0)
    two = real(2.0)
    half = real(0.5)
    # 1 / (2n + 1), n = 1..15: the series of atanh. Named constants, written out
    # in the Horner chain below: a loop over a tuple keeps LLVM from vectorising.
    c3, c5, c7, c9, c11, c13, c15, c17, c19, c21, c23, c25, c27, c29, c31 = (
        real(1.0 / (2 * n + 1)) for n in range(1, 16))

    @jit
    def log1p_unit(e):
        """log(1 + e) for 0 <= e <= 1, branch-free (so a loop over it vectorises).

        log(1 + e) = 2 atanh(s) with s = e / (2 + e) <= 1/3; sixteen terms of the
        series in u = s² reach float64 rounding. The polynomial in u is
        ``1 + u R(u)``, R evaluated by Estrin's scheme (pairs of terms, then u²,
        u⁴, u⁸): a dependency chain of five multiply-adds instead of Horner's
        fifteen, so that the kernels' loops over a block of rows are not bound
        by its latency, with Horner's last step (and so its accuracy).
        """
        s = e / (two + e)
        u = s * s
        u2 = u * u
        u4 = u2 * u2
        u8 = u4 * u4
        p0 = c5 * u + c3
        p1 = c9 * u + c7
        p2 = c13 * u + c11
        p3 = c17 * u + c15
        p4 = c21 * u + c19
        p5 = c25 * u + c23
        p6 = c29 * u + c27
        q0 = p1 * u2 + p0
        q1 = p3 * u2 + p2
        q2 = p5 * u2 + p4
        q3 = c31 * u2 + p6
        r0 = q1 * u4 + q0
        r1 = q3 * u4 + q2
        q = (r1 * u8 + r0) * u + one  # the last step as Horner's: its rounding as small
        return two * s * q

    @jit
    def sigmoid_from(z, e):
        """σ(z) given e = exp(-|z|): never evaluates exp of a positive number."""
        return (one if z >= zero else e) / (one + e)

    @jit
    def log1pexp(z):
        """log(1 + e^z) without overflow or cancellation, for any finite z."""
        return max(z, zero) + log1p_unit(math.exp(-abs(z)))

    @jit
    def sigmoid(z):
        """1 / (1 + e^-z) without overflow."""
        return sigmoid_from(z, math.exp(-abs(z)))

    @jit
    def binary_loss_dz(loss_id, z, e, y):
        """Loss of one sample and its derivative in ``z``.

        ``e`` must be ``exp(-|z|)`` (passed in so that a kernel can compute it
        for a whole block of rows at once); ``y`` is 0 or 1. ``z`` may be ±inf
        (a score beyond the float range): the loss is then its exact value, 0
        or +inf, never NaN. Both losses are
        evaluated and one is selected: without branches a loop over samples
        vectorises.
        """
        p = sigmoid_from(z, e)
        r = p - y
        is_log = loss_id == 0
        # log(1 + e^z) - y z = log(1 + e^{s}) with s = (1 - 2y) z for y in {0, 1}: no
        # inf - inf when z overflowed to ±inf (the exact loss is then 0 or +inf).
        s = (one - two * y) * z
        loss = (max(s, zero) + log1p_unit(e)) if is_log else half * r * r
        dz = r if is_log else r * p * (one - p)
        return loss, dz

    @jit
    def softmax_loss_dz_from_exp(loss_id, z_y, e, y, dz):
        """Loss of one sample over ``k`` classes from its shifted exponentials.

        ``e`` (k,) holds ``exp(z_c - max(z))``, ``z_y`` is ``z[y] - max(z)``, ``y``
        an integer in 0..k-1. Writes d loss / d z into ``dz`` (k,), which may be
        ``e`` itself, and returns the loss.
        """
        k = e.shape[0]
        total = zero
        for c in range(k):
            total += e[c]
        inv_total = one / total
        if loss_id == 0:
            for c in range(k):
                dz[c] = e[c] * inv_total
            dz[y] -= one
            return math.log(total) - z_y
        # squared: ½‖p - onehot(y)‖², derivative p_c (r_c - Σ_a r_a p_a) with r = p - onehot.
        # Loops either store or reduce, never both: see the note in kernels/cpu.py.
        for c in range(k):
            dz[c] = e[c] * inv_total
        loss = zero
        inner = zero
        for c in range(k):
            p = dz[c]
            r = p - one if c == y else p
            loss += half * r * r
            inner += r * p
        for c in range(k):
            p = dz[c]
            r = p - one if c == y else p
            dz[c] = p * (r - inner)
        return loss

    @jit
    def softmax_loss_dz(loss_id, z, y, dz):
        """Loss of one sample over ``k`` classes; writes d loss / d z into ``dz``.

        ``z`` and ``dz`` are arrays of shape (k,), ``y`` an integer in 0..k-1.
        ``dz`` may be the same array as ``z``.
        """
        k = z.shape[0]
        z_max = z[0]
        for c in range(1, k):
            if z[c] > z_max:
                z_max = z[c]
        z_y = z[y] - z_max
        for c in range(k):
            dz[c] = math.exp(z[c] - z_max)
        return softmax_loss_dz_from_exp(loss_id, z_y, dz, y, dz)

    @jit
    def binary_hess_dz(z, e, u):
        """Second derivative of the binary log loss in ``z`` times ``u``: ``σ(z)(1 - σ(z)) u``.

        ``e`` must be ``exp(-|z|)``; ``σ(1 - σ) = e / (1 + e)²`` for either sign of ``z``.
        """
        q = one / (one + e)
        return e * q * q * u

    @jit
    def softmax_hess_dz_from_exp(e, u, out):
        """Softmax log-loss Hessian in ``z`` times ``u``: ``p ∘ (u - (p·u))``, ``p = softmax(z)``.

        ``e`` (k,) holds ``exp(z_c - max(z))``, ``u`` (k,) the direction; writes
        the result into ``out`` (k,), which may be ``e``. The Hessian
        ``diag(p) - p pᵀ`` does not depend on the label.
        """
        k = e.shape[0]
        total = zero
        for c in range(k):
            total += e[c]
        inv_total = one / total
        pu = zero
        for c in range(k):
            pu += e[c] * u[c]
        pu *= inv_total
        for c in range(k):
            out[c] = e[c] * inv_total * (u[c] - pu)

    return SimpleNamespace(
        binary_hess_dz=binary_hess_dz,
        softmax_hess_dz_from_exp=softmax_hess_dz_from_exp,
        log1p_unit=log1p_unit,
        sigmoid_from=sigmoid_from,
        log1pexp=log1pexp,
        sigmoid=sigmoid,
        binary_loss_dz=binary_loss_dz,
        softmax_loss_dz_from_exp=softmax_loss_dz_from_exp,
        softmax_loss_dz=softmax_loss_dz,
    )
