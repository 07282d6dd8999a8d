"""Generated sparse problems shaped like the two large real workloads, and their objective.

Nothing here is a benchmark. Both generators are deterministic in ``seed`` and
return ``(X, y)`` with X a float32 CSR matrix (int32 indices, sorted, no
duplicates) and y integer codes.

``make_ctr(n, d=2**20, nnz_per_row=40)``
    Click-through-like: every row has ``nnz_per_row`` hashed categorical
    features (value 1), columns drawn from a Zipf law (exponent 1.1, so a few
    columns are in most rows and most columns are rare) and scattered over
    the ``d`` hashed columns by a fixed random permutation; binary labels from
    a logistic model with a sparse true weight vector and a negative bias
    (about 20% positives).
``make_text(n, d=100_000, nnz_per_row=150, n_classes=2)``
    Text-like: term counts with Zipf word frequencies (exponent 1.05 over a
    vocabulary of ``d``), tf-idf weighted (smooth idf, as scikit-learn's
    ``TfidfTransformer``) and L2-normalised per row; labels the argmax of a
    random linear model plus Gumbel noise (``n_classes`` classes).

The issue's full sizes (CTR 10M x 2^20, text 200k x 100k) do not fit a
2-core, 24 GB machine shared with other work together with scikit-learn's
copies; the suites use scaled-down rows (``N_CTR``, ``N_TEXT``) at the full
widths and densities.
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

from .common import pick

N_CTR = pick(500_000, 20_000)
N_TEXT = pick(50_000, 5_000)
D_CTR = 2**20
D_TEXT = 100_000


def _rows_to_csr(n, d, cols, vals, nnz_per_row):
    indptr = np.arange(0, n * nnz_per_row + 1, nnz_per_row, dtype=np.int64)
    X = sp.csr_matrix((vals, cols, indptr), shape=(n, d))
    X.sum_duplicates()  # sorts indices, merges repeated columns within a row
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32) if X.nnz < 2**31 else X.indptr
    return X


def make_ctr(n, d=D_CTR, nnz_per_row=40, seed=0):
    rng = np.random.default_rng(seed)
    ranks = (rng.zipf(1.1, size=n * nnz_per_row) - 1) % d
    cols = rng.permutation(d)[ranks].astype(np.int64)
    X = _rows_to_csr(n, d, cols, np.ones(n * nnz_per_row, np.float32), nnz_per_row)
    X.data[:] = 1.0
    w = np.where(rng.random(d) < 0.05, rng.standard_normal(d), 0.0)
    y = (rng.random(n) < expit(X @ w - 1.5)).astype(np.int64)
    return X, y


def make_text(n, d=D_TEXT, nnz_per_row=150, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    ranks = (rng.zipf(1.05, size=n * nnz_per_row) - 1) % d
    cols = rng.permutation(d)[ranks].astype(np.int64)
    X = _rows_to_csr(n, d, cols, np.ones(n * nnz_per_row, np.float64), nnz_per_row)  # term counts
    df = np.bincount(X.indices, minlength=d)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    X.data = np.log1p(X.data) * idf[X.indices]
    norms = np.sqrt(np.add.reduceat(X.data**2, X.indptr[:-1])) if X.nnz else np.ones(n)
    X.data /= np.repeat(np.maximum(norms, 1e-12), np.diff(X.indptr))
    X.data = X.data.astype(np.float32)
    W = rng.standard_normal((n_classes, d)) * 3.0
    scores = X @ W.T + rng.gumbel(size=(n, n_classes))
    return X, np.argmax(scores, axis=1).astype(np.int64)


def sparse_objective(X, y, coef, intercept, C=1.0):
    """scikit-learn's ``C Σ loss_i + ½‖W‖²`` with scipy's sparse product, float64."""
    W = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.asarray(intercept, dtype=np.float64).reshape(-1)
    Z = np.asarray(X @ W.T) + b
    if W.shape[0] == 1:
        z = Z[:, 0]
        loss = np.sum(np.logaddexp(0.0, z) - y * z)
    else:
        loss = np.sum(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
    return float(C * loss + 0.5 * np.sum(W * W))
