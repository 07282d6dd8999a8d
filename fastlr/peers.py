"""The libraries fastlr is compared with, each fitted to the same objective.

Every peer minimises scikit-learn's L2 logistic objective

    C · Σ_i loss(x_i·w + b, y_i) + ½‖W‖²      (intercept not penalised)

— a sigmoid model with ``coef`` of shape (1, d) for two classes, a softmax
model with ``coef`` of shape (k, d) for k ≥ 3 — so that runtimes compare like
for like and :func:`objective` scores every solution by one yardstick.

Peers
-----
fastlr-auto, fastlr-lbfgs, fastlr-newton-cholesky, fastlr-newton-cg, fastlr-gd, fastlr-sgd
    :class:`fastlr.LogisticRegression` with ``solver`` auto (the default),
    lbfgs, newton-cholesky, newton-cg, gd (Armijo
    backtracking from ``eta0=1``) and sgd (``epochs`` epochs of mini-batch SGD,
    ``batch_size`` rows per step, constant ``eta0=0.1``).
sklearn-lbfgs, sklearn-newton-cholesky
    :class:`sklearn.linear_model.LogisticRegression` with that solver.
sklearn-sgd
    :class:`sklearn.linear_model.SGDClassifier` (``loss="log_loss"``,
    ``alpha = 1 / (C n)``, constant ``eta0=0.01``), ``epochs`` calls of
    ``partial_fit`` (one epoch each, sample by sample). Binary only: for
    several classes SGDClassifier fits one-vs-rest sigmoids, a different model
    from the softmax one, so :func:`fit_peer` raises ValueError.
sklearnex-lbfgs
    ``sklearnex.linear_model.LogisticRegression`` (Intel's oneDAL).
torch-lbfgs
    A ``torch.nn.Linear`` trained by ``torch.optim.LBFGS`` (strong Wolfe line
    search, ``max_iter``, ``tolerance_grad=tol``) on the mean objective
    ``mean loss + ‖W‖² / (2 C n)``. Tensors are made with
    ``torch.from_numpy`` without a copy, so they have X's dtype (float32 X:
    float32 tensors). Weights start at zero, as for every other peer.
glum
    ``glum.GeneralizedLinearRegressor(family="binomial")`` with its default
    solver (IRLS with coordinate descent, a Newton method), ``alpha = 1 / (C
    n)``, ``l1_ratio=0`` and ``gradient_tol=tol``: glum minimises the mean
    log-loss plus ``alpha/2 ‖w‖²``, scikit-learn's objective divided by
    ``C n``. Binary only (glum has no softmax model): ValueError otherwise.
torch-sgd
    The PyTorch tutorial's mini-batch loop over consecutive slices of
    ``batch_size`` rows (no DataLoader, no shuffling), ``torch.optim.SGD``
    with ``lr=0.1``, ``epochs`` epochs, BCEWithLogits (binary) or
    CrossEntropy loss plus the same ``‖W‖² / (2 C n)`` term.

``PeerResult.runtime`` times the fit only: data conversion into the peer's
format (label tensors, for instance) happens before the clock starts.
``n_iter`` is the solver's iteration count (lbfgs, newton, gd) or the number of
epochs (the sgd peers).
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

PEER_NAMES = (
    "fastlr-auto", "fastlr-lbfgs", "fastlr-newton-cholesky", "fastlr-newton-cg", "fastlr-gd",
    "fastlr-sgd",
    "sklearn-lbfgs", "sklearn-newton-cholesky", "sklearn-sgd",
    "sklearnex-lbfgs",
    "torch-lbfgs", "torch-sgd",
    "glum",
)

#: The Python package that each peer imports (whether it is installed decides availability).
_LIBRARY = {
    "fastlr": "fastlr",
    "sklearn": "sklearn",
    "sklearnex": "sklearnex",
    "torch": "torch",
    "glum": "glum",
}

#: pip requirement that provides the library (for error messages).
_INSTALL_HINT = {
    "sklearnex": "pip install scikit-learn-intelex, or fastlr[bench]",
    "torch": "pip install torch, or fastlr[torch]",
    "glum": "pip install glum, or fastlr[bench]",
}


class PeerUnavailable(ImportError):
    """The library behind a peer is not installed."""


@dataclass
class PeerResult:
    """One peer's fit.

    Attributes
    ----------
    name : str
    runtime : float
        Seconds taken by the fit alone (the data already in the peer's format).
    coef : ndarray of shape (k, d), float64
        ``k == 1`` for a binary (sigmoid) model.
    intercept : ndarray of shape (k,), float64
    n_iter : int
        Iterations of the solver, or epochs for the sgd peers.
    """

    name: str
    runtime: float
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int


def _library(name):
    return name.split("-", 1)[0]


def _import_library(library, name=None):
    """Import and return ``library``; PeerUnavailable (naming peer ``name``) if missing."""
    import importlib

    try:
        return importlib.import_module(_LIBRARY[library])
    except ImportError as exc:
        hint = _INSTALL_HINT.get(library, f"pip install {library}")
        who = f"peer {name!r} needs " if name else ""
        raise PeerUnavailable(f"{who}{library}, which is not installed: {hint}") from exc


def _import(name):
    """Import and return the library behind peer ``name``; PeerUnavailable if missing."""
    return _import_library(_library(name), name)


def _check_name(name):
    if name not in PEER_NAMES:
        raise ValueError(f"unknown peer {name!r}; expected one of {', '.join(PEER_NAMES)}")


def available_peers():
    """The peers (of :data:`PEER_NAMES`, in that order) whose library imports."""
    out = []
    for name in PEER_NAMES:
        try:
            _import(name)
        except PeerUnavailable:
            continue
        out.append(name)
    return out


def objective(X, y, coef, intercept, C=1.0, chunk=1 << 16):
    """scikit-learn's L2 logistic objective ``C Σ_i loss_i + ½‖W‖²``, in float64.

    Plain NumPy, independent of fastlr's kernels, so that every peer is scored
    by the same yardstick. Computed a chunk of rows at a time (no float64 copy
    of all of X).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), integer codes 0..k-1 (0 or 1 when binary)
    coef : array-like of shape (d,), (1, d) (sigmoid model) or (k, d), k ≥ 2 (softmax)
    intercept : float or array-like of shape (k,)
    C : float, default=1.0

    Returns
    -------
    float
    """
    W = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.broadcast_to(np.asarray(intercept, dtype=np.float64).reshape(-1), (W.shape[0],))
    y = np.asarray(y)
    total = 0.0
    for start in range(0, X.shape[0], chunk):
        Z = np.asarray(X[start:start + chunk], dtype=np.float64) @ W.T + b
        yc = y[start:start + chunk]
        if W.shape[0] == 1:
            z = Z[:, 0]
            total += float(np.sum(np.logaddexp(0.0, z) - yc * z))
        else:
            zmax = Z.max(axis=1)
            lse = zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))
            total += float(np.sum(lse - Z[np.arange(len(yc)), yc]))
    return C * total + 0.5 * float(np.sum(W * W))


# -- adapters -------------------------------------------------------------------------------
# Each takes (X, y, k, C, max_iter, tol, batch_size, epochs, random_state) and returns
# (runtime, coef (k', d), intercept (k',), n_iter); k' = 1 when k == 2.


def _timed(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: the result is still timed
        start = time.perf_counter()
        out = fit()
        return time.perf_counter() - start, out


def _fastlr(solver):
    def fit(X, y, k, C, max_iter, tol, batch_size, epochs, random_state):
        from fastlr import LogisticRegression

        if solver in ("auto", "lbfgs", "newton-cholesky", "newton-cg"):
            model = LogisticRegression(C=C, solver=solver, max_iter=max_iter, tol=tol)
        elif solver == "gd":
            model = LogisticRegression(C=C, solver="gd", learning_rate="backtracking", eta0=1.0,
                                       max_iter=max_iter, tol=tol)
        else:
            model = LogisticRegression(C=C, solver="sgd", max_iter=epochs, tol=None, eta0=0.1,
                                       learning_rate="constant", batch_size=batch_size,
                                       random_state=random_state)
        runtime, _ = _timed(lambda: model.fit(X, y))
        return runtime, model.coef_, model.intercept_, int(np.max(model.n_iter_))

    return fit


def _sklearn_logistic(library, solver):
    def fit(X, y, k, C, max_iter, tol, batch_size, epochs, random_state):
        import importlib

        _import_library(library)
        estimator = importlib.import_module(f"{library}.linear_model").LogisticRegression
        model = estimator(C=C, solver=solver, max_iter=max_iter, tol=tol)
        runtime, _ = _timed(lambda: model.fit(X, y))
        return runtime, model.coef_, model.intercept_, int(np.max(model.n_iter_))

    return fit


def _sklearn_sgd(X, y, k, C, max_iter, tol, batch_size, epochs, random_state):
    from sklearn.linear_model import SGDClassifier

    if k > 2:
        raise ValueError(
            "sklearn-sgd is binary only: for several classes SGDClassifier fits one-vs-rest "
            "sigmoids, not the softmax model the other peers fit")
    model = SGDClassifier(loss="log_loss", penalty="l2", alpha=1.0 / (C * X.shape[0]),
                          learning_rate="constant", eta0=0.01, random_state=random_state)
    classes = np.arange(k)

    def run():
        for _ in range(epochs):
            model.partial_fit(X, y, classes=classes)

    runtime, _ = _timed(run)
    return runtime, model.coef_, model.intercept_, epochs


def _torch_model(X, y, k, C):
    """(torch, X tensor, target tensor, Linear, loss function, penalty scale) sharing X's memory."""
    from ._labels import n_outputs

    torch = _import_library("torch")
    Xt = torch.from_numpy(np.ascontiguousarray(X))  # no copy for C-contiguous X
    outputs = n_outputs(k)
    model = torch.nn.Linear(X.shape[1], outputs, dtype=Xt.dtype)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    if k == 2:
        target = torch.from_numpy(np.asarray(y, dtype=X.dtype).reshape(-1, 1))
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        target = torch.from_numpy(np.asarray(y, dtype=np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()
    return torch, Xt, target, model, loss_fn, 1.0 / (2.0 * C * X.shape[0])


def _torch_result(model, runtime, n_iter):
    coef = model.weight.detach().numpy().astype(np.float64)
    intercept = model.bias.detach().numpy().astype(np.float64)
    return runtime, coef, intercept, n_iter


def _torch_lbfgs(X, y, k, C, max_iter, tol, batch_size, epochs, random_state):
    torch, Xt, target, model, loss_fn, scale = _torch_model(X, y, k, C)
    torch.manual_seed(random_state)
    optimizer = torch.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe",
                                  max_iter=max_iter, tolerance_grad=tol)

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(model(Xt), target) + scale * model.weight.pow(2).sum()
        loss.backward()
        return loss

    runtime, _ = _timed(lambda: optimizer.step(closure))
    n_iter = optimizer.state[optimizer._params[0]].get("n_iter", 0)
    return _torch_result(model, runtime, int(n_iter))


def _torch_sgd(X, y, k, C, max_iter, tol, batch_size, epochs, random_state):
    torch, Xt, target, model, loss_fn, scale = _torch_model(X, y, k, C)
    torch.manual_seed(random_state)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    n = Xt.shape[0]

    def run():
        for _ in range(epochs):
            for start in range(0, n, batch_size):
                xb = Xt[start:start + batch_size]
                yb = target[start:start + batch_size]
                loss = loss_fn(model(xb), yb) + scale * model.weight.pow(2).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()

    runtime, _ = _timed(run)
    return _torch_result(model, runtime, epochs)


def _glum(X, y, k, C, max_iter, tol, batch_size, epochs, random_state):
    if k > 2:
        raise ValueError("glum is binary only: it has no softmax (multinomial) model")
    glum = _import_library("glum")
    model = glum.GeneralizedLinearRegressor(family="binomial", alpha=1.0 / (C * X.shape[0]),
                                            l1_ratio=0.0, max_iter=max_iter, gradient_tol=tol)
    runtime, _ = _timed(lambda: model.fit(X, y))
    return runtime, model.coef_.reshape(1, -1), np.atleast_1d(model.intercept_), int(model.n_iter_)


_ADAPTERS = {
    "fastlr-auto": _fastlr("auto"),
    "fastlr-lbfgs": _fastlr("lbfgs"),
    "fastlr-newton-cholesky": _fastlr("newton-cholesky"),
    "fastlr-newton-cg": _fastlr("newton-cg"),
    "fastlr-gd": _fastlr("gd"),
    "fastlr-sgd": _fastlr("sgd"),
    "sklearn-lbfgs": _sklearn_logistic("sklearn", "lbfgs"),
    "sklearn-newton-cholesky": _sklearn_logistic("sklearn", "newton-cholesky"),
    "sklearn-sgd": _sklearn_sgd,
    "sklearnex-lbfgs": _sklearn_logistic("sklearnex", "lbfgs"),
    "torch-lbfgs": _torch_lbfgs,
    "torch-sgd": _torch_sgd,
    "glum": _glum,
}


def _check_labels(y, n):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must be 1-D with {n} entries, got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer class codes, got dtype {y.dtype}")
    k = int(y.max()) + 1 if n else 0
    if n == 0 or y.min() < 0 or k < 2 or np.unique(y).shape[0] != k:
        raise ValueError("y must hold the integer codes 0..k-1 of k >= 2 classes, each present")
    return y, k


def fit_peer(name, X, y, *, C=1.0, max_iter=100, tol=1e-4, batch_size=256, epochs=1,
             random_state=0):
    """Fit peer ``name`` to ``(X, y)`` and time the fit.

    Parameters
    ----------
    name : str
        One of :data:`PEER_NAMES`.
    X : ndarray of shape (n, d), float32 or float64, C-contiguous
    y : ndarray of shape (n,), integer codes 0..k-1 (every class present)
    C : float
        Inverse L2 strength, as in scikit-learn.
    max_iter, tol
        Iteration limit and gradient tolerance of the full-batch solvers.
    batch_size, epochs
        Of the sgd peers (sklearn-sgd always steps sample by sample).
    random_state : int

    Returns
    -------
    PeerResult

    Raises
    ------
    ValueError
        Unknown name, bad labels, or a peer that cannot fit this problem
        (sklearn-sgd with more than two classes).
    PeerUnavailable
        The peer's library is not installed.
    """
    _check_name(name)
    _import(name)
    y, k = _check_labels(y, X.shape[0])
    runtime, coef, intercept, n_iter = _ADAPTERS[name](
        X, y, k, C, max_iter, tol, batch_size, epochs, random_state)
    coef = np.array(coef, dtype=np.float64, ndmin=2)
    intercept = np.array(intercept, dtype=np.float64).reshape(-1)
    return PeerResult(name=name, runtime=float(runtime), coef=coef, intercept=intercept,
                      n_iter=int(n_iter))
