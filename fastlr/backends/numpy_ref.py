"""The ``numpy`` backend: vectorised NumPy/scipy in float64, the reference every other backend is tested against.

Holds: :class:`NumpyBackend`.
May import: NumPy, scipy, :mod:`fastlr._math`, :mod:`fastlr._penalty` and
:mod:`fastlr.backends._protocol`, :mod:`fastlr.backends._hessian_numpy` (no kernels, no
other backend).
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

from .._math import LOG
from .._penalty import L2_NUMPY
from ._hessian_numpy import block_sample, hessian_stride, log_loss_hessian
from ._protocol import EMPTY_F64 as _EMPTY_F64
from ._protocol import check_hess_loss as _check_hess_loss
from ._protocol import host_data as _host_data


class NumpyBackend:
    """Vectorised NumPy in float64: the reference every other backend is tested against.

    It computes ``X @ W.T`` and then ``dz.T @ X`` (two passes over X, and a
    float64 copy of float32 X): clear rather than fast. A CSR X goes through
    scipy's sparse products (``X @ W.T``, ``X.T @ dz``), never densified.
    """

    name = "numpy"
    accepts_sparse = True
    accepts_device_arrays = False
    has_hess_vec = True
    distributed = False

    @staticmethod
    def _float64(X):
        return X.astype(np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)

    def put(self, X, y, sample_weight=None):
        return _host_data(X, y, sample_weight)

    @staticmethod
    def _scores(X64, W, b):
        """Scores (n, k) for binary models; shifted scores ``z_c - max_c z`` for softmax ones.

        Finite X and W never give NaN: rows whose scores overflowed are formed
        again with X's row and W scaled by powers of two (each product at most
        1), and the result scaled back with ``ldexp``, which rounds to ±inf only
        when the true value is beyond the float64 range (as in the CPU kernels).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            Z = np.asarray(X64 @ W.T) + b
        bad = ~np.all(np.isfinite(Z), axis=1)
        if W.shape[0] > 1:
            with np.errstate(invalid="ignore"):  # inf - inf in the rows fixed below
                Z = Z - Z.max(axis=1, keepdims=True)
        if np.any(bad):
            ew = np.frexp(np.max(np.abs(W)))[1]
            ex = np.frexp(np.max(np.abs(X64[bad]), axis=1))[1]
            scaled = (np.ldexp(X64[bad], -ex[:, None]) @ np.ldexp(W, -ew).T
                      + np.ldexp(b[None, :], -(ex + ew)[:, None]))
            if W.shape[0] > 1:
                scaled -= scaled.max(axis=1, keepdims=True)
            with np.errstate(over="ignore"):
                Z[bad] = np.ldexp(scaled, (ex + ew)[:, None])
        return Z

    @staticmethod
    def _loss_dz(Z, y, loss_id):
        """Per-sample losses (n,) and d loss / d z (n, k) for scores Z (n, k) from :meth:`_scores`."""
        if Z.shape[1] == 1:
            z = Z[:, 0]
            p = expit(z)
            if loss_id == LOG:
                # log(1 + e^z) - y z = log(1 + e^{(1 - 2y) z}): exact for z = ±inf, never NaN
                return np.logaddexp(0.0, (1.0 - 2.0 * y) * z), (p - y)[:, None]
            r = p - y
            return 0.5 * r * r, (r * p * (1.0 - p))[:, None]
        lse = logsumexp(Z, axis=1)  # Z is shifted: max 0, entries ≤ 0, possibly -inf
        P = np.exp(Z - lse[:, None])
        onehot = np.zeros_like(P)
        onehot[np.arange(len(y)), y] = 1.0
        if loss_id == LOG:
            return lse - Z[np.arange(len(y)), y], P - onehot
        R = P - onehot
        inner = np.sum(R * P, axis=1)
        return 0.5 * np.sum(R * R, axis=1), P * (R - inner[:, None])

    def _sums(self, X, y, sample_weight, W, b, loss_id):
        X64 = self._float64(X)
        loss, D = self._loss_dz(self._scores(X64, W, b), y, loss_id)
        if sample_weight.shape[0]:
            loss = loss * sample_weight
            D = D * sample_weight[:, None]
        grad = np.empty((W.shape[0], W.shape[1] + 1))
        grad[:, :-1] = np.asarray(X64.T @ D).T
        grad[:, -1] = D.sum(axis=0)
        return loss.sum(), grad

    def loss_grad(self, data, W, b, loss_id):
        return self._sums(data.X, data.y, data.sample_weight, W, b, loss_id)

    def sgd_epoch(self, data, W, b, loss_id, schedule, batch_order, rows=None):
        n = data.n_samples
        mean_weight = data.weight_sum / n
        positions = np.arange(n) if rows is None else rows
        loss_total = 0.0
        for step, batch in enumerate(batch_order):
            idx = positions[batch * schedule.batch_size:(batch + 1) * schedule.batch_size]
            sw = data.sample_weight[idx] if data.sample_weight.shape[0] else _EMPTY_F64
            loss_sum, grad = self._sums(data.X[idx], data.y[idx], sw, W, b, loss_id)
            eta = schedule.eta0 / (schedule.step0 + step + 1.0) ** schedule.power_t
            scale = 1.0 / (len(idx) * mean_weight)
            W_new = L2_NUMPY.sgd_update(W, scale * grad[:, :-1], eta, schedule.alpha)
            b_new = b - eta * scale * grad[:, -1] if schedule.fit_intercept else b
            if not (np.isfinite(loss_sum) and np.isfinite(W_new).all() and np.isfinite(b_new).all()):
                return loss_total, step
            W[:] = W_new
            b[:] = b_new
            loss_total += loss_sum
        return loss_total, len(batch_order)

    def decision_function(self, X, W, b):
        return np.asarray(self._float64(X) @ W.T) + b

    def hess_vec(self, data, W, b, loss_id, V, vb):
        _check_hess_loss(loss_id)
        X64 = self._float64(data.X)
        Z = np.asarray(X64 @ W.T) + b
        U = np.asarray(X64 @ V.T) + vb
        if W.shape[0] == 1:
            p = expit(Z)
            D = p * (1.0 - p) * U
        else:
            P = np.exp(Z - logsumexp(Z, axis=1)[:, None])
            D = P * (U - np.sum(P * U, axis=1)[:, None])
        if data.sample_weight.shape[0]:
            D = D * data.sample_weight[:, None]
        out = np.empty((W.shape[0], W.shape[1] + 1))
        out[:, :-1] = (X64.T @ D).T
        out[:, -1] = D.sum(axis=0)
        return out

    def column_moments(self, data, sample_rows=None):
        """Weighted column means and (population) variances, float64 (d,) each.

        Dense X: over the rows of the cpu backend's sample (every ``stride``-th block of rows,
        :func:`fastlr.backends._hessian_numpy.block_sample`); CSR X: all rows.
        """
        X64 = self._float64(data.X)
        n = X64.shape[0]
        s = data.sample_weight if data.sample_weight.shape[0] else np.ones(n)
        rows = None if sp.issparse(X64) else block_sample(n, hessian_stride(n, sample_rows))
        if rows is not None:
            X64, s, n = X64[rows], s[rows], rows.shape[0]
        if sp.issparse(X64):  # E[x²] - E[x]²: sparse columns rarely sit far from 0
            mean = np.asarray(X64.T @ s).ravel() / s.sum()
            sq = X64.multiply(X64)
            return mean, np.maximum(np.asarray(sq.T @ s).ravel() / s.sum() - mean * mean, 0.0)
        # two passes over X shifted by its first row (offsets such as timestamps cancel exactly)
        D = X64 - X64[0] if n else X64
        mean = (s @ D) / s.sum()
        return mean + (X64[0] if n else 0.0), (s @ (D - mean) ** 2) / s.sum()

    def loss_grad_hess(self, data, W, b, loss_id, hessian_rows=None):
        """Loss and gradient sums (:meth:`loss_grad`) and the Hessian sum over a row sub-sample.

        The rows are those of the cpu backend (:func:`fastlr.backends._hessian_numpy.hessian_stride`).
        """
        _check_hess_loss(loss_id)
        loss, grad = self.loss_grad(data, W, b, loss_id)
        stride = hessian_stride(data.n_samples, hessian_rows)
        hess, hess_weight = log_loss_hessian(data.X, data.sample_weight, W, b, stride)
        return loss, grad, hess, hess_weight

    def hess_diag(self, data, W, b, loss_id):
        """As :meth:`fastlr.backends.cpu.CPUBackend.hess_diag`: sparse X only, else None."""
        _check_hess_loss(loss_id)
        if not sp.issparse(data.X):
            return None
        X64 = self._float64(data.X)
        Z = np.asarray(X64 @ W.T) + b
        if W.shape[0] == 1:
            p = expit(Z)
        else:
            p = np.exp(Z - logsumexp(Z, axis=1)[:, None])
        H = p * (1.0 - p)
        if data.sample_weight.shape[0]:
            H = H * data.sample_weight[:, None]
        X2 = X64.multiply(X64)
        out = np.empty((W.shape[0], W.shape[1] + 1))
        out[:, :-1] = np.asarray(X2.T @ H).T
        out[:, -1] = H.sum(axis=0)
        return out

