"""fastlr._penalty: the L2 penalty against its definition, finite differences and the kernels."""

import numpy as np
import pytest
from numba import njit

from fastlr._penalty import L2Penalty, as_penalty, build_penalty, make_penalty
from fastlr.backends import SGDSchedule, get_backend


def _W(seed=0, shape=(3, 7)):
    return np.random.default_rng(seed).normal(size=shape)


def test_value_grad_hess_match_the_definition_and_finite_differences():
    alpha = 0.37
    W = _W()
    pen = L2Penalty(alpha)
    assert pen.value(W) == pytest.approx(0.5 * alpha * np.sum(W ** 2), rel=1e-14)
    np.testing.assert_allclose(pen.grad(W), alpha * W, rtol=1e-15)
    V = _W(1)
    np.testing.assert_allclose(pen.hess_vec(V), alpha * V, rtol=1e-15)
    # central differences of the value reproduce the gradient (value is quadratic: exact up to rounding)
    h = 1e-4
    fd = np.empty_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        fd[idx] = (pen.value(W + E) - pen.value(W - E)) / (2 * h)
    np.testing.assert_allclose(fd, pen.grad(W), rtol=1e-7, atol=1e-10)


def test_prox_minimises_its_objective():
    alpha, eta = 0.8, 0.3
    W = _W(2)
    pen = L2Penalty(alpha)
    U = pen.prox(W, eta)
    # optimality of argmin_U ½‖U - W‖² + eta alpha ½‖U‖²: (U - W) + eta alpha U = 0
    np.testing.assert_allclose(U - W + eta * alpha * U, 0.0, atol=1e-15)
    assert 0.5 * np.sum((U - W) ** 2) + eta * pen.value(U) < \
        0.5 * np.sum((1.01 * U - W) ** 2) + eta * pen.value(1.01 * U)


def test_sgd_update_is_a_gradient_step_on_loss_plus_penalty():
    alpha, eta = 0.05, 0.2
    W, G = _W(3), _W(4)
    pen = L2Penalty(alpha)
    np.testing.assert_allclose(pen.sgd_update(W, G, eta), W - eta * (G + pen.grad(W)), rtol=1e-15)
    # the sparse kernel's lazy form: shrink every coefficient, then move by -eta G
    shrink = build_penalty(lambda f: f, np.float64).shrink(eta, alpha)
    np.testing.assert_allclose(shrink * W - eta * G, pen.sgd_update(W, G, eta), rtol=1e-13)


@pytest.mark.parametrize("real", [np.float32, np.float64])
def test_compiled_functions_equal_the_python_ones_bitwise(real):
    compiled = build_penalty(njit, real)
    plain = build_penalty(lambda f: f, real)
    rng = np.random.default_rng(5)
    for w, g, eta, alpha in rng.normal(size=(50, 4)).astype(real):
        for name, args in [("sgd_update", (w, g, eta, alpha)), ("shrink", (eta, alpha)),
                           ("prox", (w, eta, abs(alpha))), ("value", (w * w, alpha)),
                           ("grad", (w, alpha))]:
            a, b = getattr(compiled, name)(*args), getattr(plain, name)(*args)
            assert real(a).tobytes() == real(b).tobytes(), name  # njit returns a Python float


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_sgd_epoch_of_one_batch_is_the_penalised_step(backend):
    """One full-batch SGD step of a backend equals the Objective's gradient step in float64."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 5))
    y = (rng.random(40) < 0.5).astype(np.int32)
    be = get_backend(backend)
    data = be.put(X, y)
    W, b = rng.normal(size=(1, 5)), np.array([0.3])
    alpha, eta = 0.2, 0.1
    loss_sum, grad = be.loss_grad(data, W, b, 0)
    expected_W = L2Penalty(alpha).sgd_update(W, grad[:, :-1] / 40, eta)
    W1, b1 = W.copy(), b.copy()
    be.sgd_epoch(data, W1, b1, 0, SGDSchedule(alpha, True, eta, 0.0, 0, 40), np.arange(1))
    np.testing.assert_allclose(W1, expected_W, rtol=1e-12)
    np.testing.assert_allclose(b1, b - eta * grad[:, -1] / 40, rtol=1e-12)


def test_as_penalty_and_make_penalty():
    assert isinstance(as_penalty(0.5), L2Penalty) and as_penalty(0.5).alpha == 0.5
    pen = L2Penalty(0.1)
    assert as_penalty(pen) is pen
    assert make_penalty("l2", 0.2).alpha == 0.2
    with pytest.raises(ValueError, match="unknown penalty 'l1'"):
        make_penalty("l1", 0.2)
