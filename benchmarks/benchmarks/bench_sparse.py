"""Sparse (CSR) data: gradient against a read of the non-zeros, SGD epoch, lbfgs fit vs scikit-learn.

Problems from :mod:`sparse_common` (generated, shaped like CTR and text data;
scaled-down rows, full widths). ``FASTLR_BENCH_SMALL=1``: tiny row counts.

Suites
------
SparseGradient
    ``CPUBackend.loss_grad`` on CSR (binary, and 20 classes for text), one
    parallel read of ``data`` + ``indices`` (``cpu_sparse.read_csr``, the
    floor), and the gradient's speed as a fraction of that read.
SparseSGD
    One SGD epoch: fastlr ``partial_fit`` (batch 256) and scikit-learn
    ``SGDClassifier.partial_fit``.
SparseFit
    L2 logistic fit (C=1, tol=1e-6) by fastlr lbfgs and scikit-learn lbfgs;
    ``track_objective`` is each one's objective (``sparse_objective``).
"""

import warnings

import numpy as np

from .common import median_time
from .sparse_common import D_CTR, D_TEXT, N_CTR, N_TEXT, make_ctr, make_text, sparse_objective
from fastlr._math import LOG

PROBLEMS = ["ctr-binary", "text-binary", "text-20-classes"]

_cache = {}


def _problem(name):
    if name not in _cache:
        if name == "ctr-binary":
            _cache[name] = make_ctr(N_CTR, D_CTR)
        else:
            _cache[name] = make_text(N_TEXT, D_TEXT, n_classes=20 if "20" in name else 2)
    return _cache[name]


class SparseGradient:
    params = [PROBLEMS]
    param_names = ["problem"]
    timeout = 300

    def setup(self, problem):
        from fastlr.backends import get_backend
        from fastlr.kernels.cpu_sparse import read_csr

        self.X, y = _problem(problem)
        k = 1 if y.max() == 1 else int(y.max()) + 1
        self.backend = get_backend("cpu")
        self.data = self.backend.put(self.X, y.astype(np.int32), None)
        self.W, self.b = np.full((k, self.X.shape[1]), 0.01), np.zeros(k)
        self.read = read_csr
        self.backend.loss_grad(self.data, self.W, self.b, LOG)  # compile
        read_csr(self.X.data, self.X.indices)

    def time_loss_grad(self, problem):
        self.backend.loss_grad(self.data, self.W, self.b, LOG)

    def time_read_data_indices(self, problem):
        self.read(self.X.data, self.X.indices)

    def track_fraction_of_read(self, problem):
        read = median_time(lambda: self.read(self.X.data, self.X.indices), 7)
        grad = median_time(lambda: self.backend.loss_grad(self.data, self.W, self.b, LOG), 7)
        return read / grad

    track_fraction_of_read.unit = "fraction"


class SparseSGD:
    params = [PROBLEMS, ["fastlr", "sklearn"]]
    param_names = ["problem", "library"]
    timeout = 300

    def setup(self, problem, library):
        self.X, self.y = _problem(problem)
        self.classes = np.unique(self.y)
        if library == "fastlr":
            import fastlr
            fastlr.LogisticRegression(backend="cpu").partial_fit(self.X[:500], self.y[:500], classes=self.classes)

    def time_epoch(self, problem, library):
        if library == "fastlr":
            import fastlr
            fastlr.LogisticRegression(backend="cpu", batch_size=256, shuffle=False).partial_fit(
                self.X, self.y, classes=self.classes)
        else:
            from sklearn.linear_model import SGDClassifier
            SGDClassifier(loss="log_loss", alpha=1.0 / self.X.shape[0], shuffle=False).partial_fit(
                self.X, self.y, classes=self.classes)


class SparseFit:
    params = [PROBLEMS, ["fastlr", "sklearn"]]
    param_names = ["problem", "library"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, problem, library):
        self.X, self.y = _problem(problem)
        if library == "fastlr":
            import fastlr
            self.make = lambda: fastlr.LogisticRegression(backend="cpu", tol=1e-6, max_iter=1000)
            self.make().set_params(max_iter=1).fit(self.X[:500], self.y[:500])  # compile
        else:
            from sklearn.linear_model import LogisticRegression
            self.make = lambda: LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=1000)

    def _fit(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.make().fit(self.X, self.y)

    def time_fit(self, problem, library):
        self._fit()

    def track_objective(self, problem, library):
        model = self._fit()
        return sparse_objective(self.X, self.y, model.coef_, model.intercept_)
