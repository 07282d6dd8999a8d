"""The Backend protocol, its capability flags and the types every backend shares.

Holds: :class:`Backend` (a ``typing.Protocol``), :class:`HostData`,
:class:`SGDSchedule`, :func:`host_data`, :func:`check_hess_loss`.
May import: NumPy and :mod:`fastlr._math` only (every backend module and the
trainer import this one; it imports none of them).

A backend offers four primitives and nothing else; the trainer and the
estimator work only through them, so they never ask what hardware they run on.

``put(X, y, sample_weight) -> data``
    Place validated arrays where the kernels want them (once per fit).
``loss_grad(data, W, b, loss_id) -> (loss_sum, grad_sum)``
    Weighted *sums* over the data set (sums combine across partitions and
    devices; the trainer divides by ``data.weight_sum``).
``sgd_epoch(data, W, b, loss_id, schedule, batch_order, rows) -> (loss_sum, n_steps)``
    One epoch of mini-batch SGD, updating ``W`` and ``b`` in place.
``decision_function(X, W, b) -> scores``

and, where ``has_hess_vec`` is true (the Newton-CG solver needs it):

``hess_vec(data, W, b, loss_id, V, vb) -> hv_sum``
    Weighted *sum* over the data set of the log loss's Hessian at ``(W, b)``
    times the direction ``(V, vb)``, shape (k, d + 1), one pass over X.
``hess_diag(data, W, b, loss_id) -> diag_sum or None``
    The diagonal of that Hessian sum, shape (k, d + 1): Newton-CG's Jacobi
    preconditioner, once per Newton iteration; None where the backend's
    measurements favour plain CG for this data (dense X, for cpu and numpy).

and, where a backend has it (solver="newton-cholesky"):

``loss_grad_hess(data, W, b, loss_id, hessian_rows) -> (loss_sum, grad_sum, hess_sum, hess_weight)``
    ``loss_grad``'s sums and, in the same pass, the weighted *sum* of the log
    loss's Hessian, shape (k, d + 1, k, d + 1), over at least ``hessian_rows``
    rows (all rows when None or when X has fewer than twice as many), in
    blocks spread evenly over X; ``hess_weight`` is their ``Σ s``.

and, optionally (without them L-BFGS runs on the coefficients themselves, and
``predict`` goes through ``decision_function``):

``column_moments(data, sample_rows=None) -> (mean, var)``
    Weighted column means and population variances of X, float64 (d,) each,
    one pass; over a sample of at least ``sample_rows`` rows where the
    backend can take one (evenly spaced blocks, as ``loss_grad_hess``'s
    Hessian), else over all rows.
``predict_labels(X, W, b, labels) -> (out, finite) or None``
    ``predict``'s ``labels[code]`` for each row (class code ``z > 0`` for
    k = 1, else the argmax; ``labels`` int32 or int64 of shape (max(k, 2),),
    :func:`fastlr._labels.label_table`) in one pass without the (n, k)
    scores, and whether every score was finite (if not, or on None, the
    estimator takes the scores path).

Throughout, ``W`` has shape (k, d) and ``b`` shape (k,), float64: ``k == 1``
is the binary (sigmoid) model, ``k >= 2`` the multinomial (softmax) one.
``grad_sum`` has shape (k, d + 1): the coefficient columns, then the intercept.
``loss_id`` is one of :data:`fastlr._math.LOG`, :data:`fastlr._math.SQUARED`.

Capability flags (class attributes, read by the registry in
:mod:`fastlr.backends` and by the estimator's input adapters, never by the
trainer):

``accepts_sparse``
    ``put`` and ``decision_function`` also take X as a scipy.sparse CSR
    matrix (checked by :func:`fastlr._sparse.check_csr`).
``accepts_device_arrays``
    ``put`` takes GPU arrays (``__cuda_array_interface__``) in place.
``has_hess_vec``
    The backend implements ``hess_vec`` and ``hess_diag`` (solver="newton-cg").
``distributed``
    ``put`` takes dask collections: the data stays partitioned on a cluster.
"""

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from .._math import LOG

EMPTY_F64 = np.empty(0, dtype=np.float64)
EMPTY_I64 = np.empty(0, dtype=np.int64)


class DataShape:
    """``n_samples`` and ``n_features`` from ``X``'s shape, for every backend's data object."""

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


@dataclass(frozen=True)
class HostData(DataShape):
    """Validated training data in host memory.

    Attributes
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous; or a
        scipy.sparse CSR matrix of that shape (float32/float64 values,
        int32/int64 indices), for backends with ``accepts_sparse``
    y : ndarray of shape (n,), int32, labels 0..k-1 (0 or 1 when binary)
    sample_weight : ndarray of shape (n,) or (0,), float64; empty = unit weights
    weight_sum : float
        Sum of the sample weights (``n`` when unweighted).
    """

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray
    weight_sum: float


@dataclass(frozen=True)
class SGDSchedule:
    """What one SGD epoch needs besides the data and the coefficients.

    ``eta_t = eta0 / t**power_t`` at global step ``t = step0 + 1, 2, ...``;
    ``alpha`` is the L2 strength of the mean objective.
    """

    alpha: float
    fit_intercept: bool
    eta0: float
    power_t: float
    step0: int
    batch_size: int


def host_data(X, y, sample_weight):
    """:class:`HostData` for validated host arrays (``sample_weight`` None: unit weights)."""
    if sample_weight is None:
        return HostData(X, y, EMPTY_F64, float(X.shape[0]))
    return HostData(X, y, sample_weight, float(sample_weight.sum()))


def check_hess_loss(loss_id):
    """ValueError unless ``loss_id`` is the log loss (the only one with a convex Hessian)."""
    if loss_id != LOG:
        raise ValueError("Hessian-vector products (solver='newton-cg') are implemented for "
                         "loss='log_loss' only; the loss='prob_squared' is not convex: use solver='lbfgs'")


@runtime_checkable
class Backend(Protocol):
    """What the trainer and the estimator may ask of a backend (see the module docstring)."""

    name: ClassVar[str]
    accepts_sparse: ClassVar[bool]
    accepts_device_arrays: ClassVar[bool]
    has_hess_vec: ClassVar[bool]
    distributed: ClassVar[bool]

    def put(self, X, y, sample_weight=None): ...

    def loss_grad(self, data, W, b, loss_id): ...

    def sgd_epoch(self, data, W, b, loss_id, schedule, batch_order, rows=None): ...

    def decision_function(self, X, W, b): ...
