"""The per-sample functions against NumPy/SciPy float64 formulas, including extreme scores."""

import math

import numpy as np
import pytest
from numba import njit
from scipy.special import expit, log_softmax, softmax

from fastlr._math import LOG, SQUARED, build_math
from fastlr.kernels import cpu

M = build_math(njit, np.float64)

Z_GRID = np.concatenate([-np.logspace(-8, 4, 60), [0.0], np.logspace(-8, 4, 60), [-745.0, 745.0]])


@pytest.mark.parametrize("z", Z_GRID, ids=lambda z: f"z={z:.3g}")
def test_log1pexp_and_sigmoid_match_reference(z):
    assert M.log1pexp(z) == pytest.approx(np.logaddexp(0.0, z), rel=1e-14, abs=1e-300)
    assert M.sigmoid(z) == pytest.approx(expit(z), rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("z", [-np.inf, -1e300, -1e4, -40.0, -1.0, 0.0, 1.0, 40.0, 1e4, 1e300, np.inf],
                         ids=lambda z: f"z={z:g}")
@pytest.mark.parametrize("y", [0.0, 1.0], ids=["y=0", "y=1"])
@pytest.mark.parametrize("loss_id", [LOG, SQUARED], ids=["log", "squared"])
def test_binary_loss_is_finite_and_correct_for_huge_scores(loss_id, y, z):
    loss, dz = M.binary_loss_dz(loss_id, z, math.exp(-abs(z)), y)
    p = expit(z)
    if loss_id == LOG:
        # log(1 + e^z) - y z without the cancellation of the two large terms (for y = 1
        # and large z the difference is e^-z, e.g. 4.2e-18 at z = 40, not 0)
        expected = np.logaddexp(0.0, (1.0 - 2.0 * y) * z)
        expected_dz = p - y
    else:
        expected = 0.5 * (p - y) ** 2
        expected_dz = (p - y) * p * (1 - p)
    assert np.isfinite(dz) and not np.isnan(loss)
    assert np.isfinite(loss) or (loss == np.inf and (2 * y - 1) * z == -np.inf)  # the exact +inf
    assert loss == pytest.approx(expected, rel=1e-13, abs=1e-300)
    assert dz == pytest.approx(expected_dz, rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4], ids=lambda s: f"scale={s:g}")
@pytest.mark.parametrize("loss_id", [LOG, SQUARED], ids=["log", "squared"])
def test_softmax_loss_matches_scipy(loss_id, scale):
    rng = np.random.default_rng(1)
    z = rng.standard_normal(7) * scale
    y = 3
    dz = np.empty(7)
    loss = M.softmax_loss_dz(loss_id, z.copy(), y, dz)
    p = softmax(z)
    onehot = np.eye(7)[y]
    if loss_id == LOG:
        np.testing.assert_allclose(loss, -log_softmax(z)[y], rtol=1e-12)
        np.testing.assert_allclose(dz, p - onehot, atol=1e-15)
    else:
        r = p - onehot
        np.testing.assert_allclose(loss, 0.5 * r @ r, rtol=1e-12)
        np.testing.assert_allclose(dz, p * (r - r @ p), atol=1e-15)


def test_log1p_unit_is_accurate_on_its_whole_domain():
    """log(1 + e) for e in [0, 1] (the binary loss's log1p_unit, Estrin's scheme) against
    NumPy's log1p. Roundings, relative, each at most 2^-53: 2 + e and the division in
    s = e / (2 + e) (two), the last multiply-add of q = 1 + u R(u) (one, plus R's own error
    scaled by u R <= 0.04), the product 2 s q (one): at most 4.12 · 2^-53; the series'
    truncation is below 2^-60."""
    e = np.concatenate([np.linspace(0.0, 1.0, 200_001), np.logspace(-300, 0, 2_000)])
    out = np.array([M.log1p_unit(v) for v in e])
    np.testing.assert_allclose(out, np.log1p(e), rtol=4.5 * 2.0 ** -53, atol=0)


def test_vectorised_exp_matches_numpy():
    z = np.concatenate([np.linspace(-800, 800, 4001), [0.0, -1e-300, 1e-12]])
    expected = np.exp(-np.abs(np.maximum(np.abs(z), 0)))
    expected = np.where(np.abs(z) > 708, 0.0, expected)  # documented: 0 beyond the clamp
    out = np.empty_like(z)
    for s in range(0, len(z), cpu.BLOCK_ROWS):
        m = min(cpu.BLOCK_ROWS, len(z) - s)
        e = np.empty(cpu.BLOCK_ROWS)
        cpu._exp_neg_abs(z[s:s + m].copy(), m, e)
        out[s:s + m] = e[:m]
    np.testing.assert_allclose(out, expected, rtol=4e-16, atol=0)


def test_float32_exp_matches_numpy_to_float32_rounding():
    """The float32 exponentials of the softmax of float32 X (``_exp_neg_abs_f32``).

    Against float64 NumPy over the whole clamped range: Cephes' expf polynomial
    is accurate to about one float32 ulp on the reduced argument, and the six
    Horner steps and the final scaling each round once more, so 2 ulp of 1
    (2^-22 relative) bounds it. Below -87 the result is 0 by definition (the
    documented clamp); exp(0) is 1 exactly; the output stays float32.
    """
    z = np.concatenate([np.linspace(-100, 100, 400_001), [0.0, -0.0, -1e-30, 1e-7, -87.0, np.inf, -np.inf]])
    z = z.astype(np.float32)
    out = np.empty_like(z)
    for s in range(0, len(z), cpu.BLOCK_ROWS):
        m = min(cpu.BLOCK_ROWS, len(z) - s)
        e = np.empty(cpu.BLOCK_ROWS, np.float32)
        cpu._exp_neg_abs(z[s:s + m].copy(), m, e)
        out[s:s + m] = e[:m]
    assert out.dtype == np.float32
    inside = np.abs(z) <= 87
    expected = np.exp(-np.abs(z[inside].astype(np.float64)))
    np.testing.assert_allclose(out[inside].astype(np.float64), expected, rtol=2.0 ** -22, atol=0)
    assert np.all(out[~inside] == 0)
    assert out[np.flatnonzero(z == 0)[0]] == 1.0
