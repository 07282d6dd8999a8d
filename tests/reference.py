"""Independent oracles: the seed's literal per-sample loops, in float64 Python.

Slow on purpose: one sample at a time, exactly as the seed's worked example
accumulates ``grad_w[j] += (ŷ − y) ŷ (1 − ŷ) x_j``. Use small shapes only.
"""

import math

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
