"""``fastlr bench --sparse``: fastlr on sparse data against its peers, side by side in one run.

Two generated problems shaped like the large sparse workloads (the
generators are :func:`make_ctr` and :func:`make_text`; deterministic in
``seed``; float32 CSR, int32 indices, sorted, no duplicates):

``ctr``
    Click-through-like: ``nnz_per_row = 40`` hashed categorical features per
    row (value 1) over ``d = 2**20`` columns, column frequencies from a Zipf
    law (exponent 1.1: a few columns are in most rows, most are rare),
    scattered by a fixed random permutation; binary labels drawn from a
    logistic model with a sparse true weight vector and bias -1.5 (about 20%
    positives).
``text``, ``text-20``
    Text-like: ``nnz_per_row = 150`` term counts per row over a vocabulary of
    ``d = 100_000`` (Zipf exponent 1.05), tf-idf weighted (smooth idf, as
    scikit-learn's ``TfidfTransformer``) and L2-normalised per row; labels the
    argmax of a random linear model plus Gumbel noise, 2 or 20 classes.

For each problem it measures (medians of ``repeat`` runs after a warm-up,
except the full fits, timed once each):

* ``read``: one parallel read of the CSR's ``data`` and ``indices``
  (:func:`fastlr.kernels.cpu_sparse.read_csr`), the floor for a gradient;
* ``gradient``: the cpu backend's sparse loss-and-gradient primitive, and its
  speed as a fraction of the read's;
* full fits of scikit-learn's L2 logistic objective ``C Σ loss_i + ½‖W‖²``
  (C = 1) by each peer: fastlr lbfgs and newton-cg, scikit-learn lbfgs, saga
  and liblinear (binary only: for several classes liblinear fits one-vs-rest,
  another model), glum (binary only; its L-BFGS solver, since its default IRLS
  forms a dense d × d Hessian); each scored by :func:`sparse_objective`
  and given as the relative gap to the lowest objective any peer reached;
* one SGD epoch over all rows: fastlr ``partial_fit`` (mini-batches of 256
  rows), scikit-learn ``SGDClassifier.partial_fit`` (row by row; binary only)
  and Vowpal Wabbit's pass over the same rows (logistic loss, binary only,
  read from its own binary cache file, which it writes in an untimed first pass).

The issue's full sizes (CTR 10M × 2^20, text 200k × 100k) are the defaults of
the generators' widths; the rows default to what a 2-core, 24 GB machine fits
together with scikit-learn's copies (``n_ctr``, ``n_text``, changeable).
"""

import os
import shutil
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

from ._math import LOG

#: Widths of the generated problems (full size).
D_CTR = 2**20
D_TEXT = 100_000

#: Default rows: scaled down from 10M / 200k to fit a 2-core, 24 GB machine.
N_CTR = 1_000_000
N_TEXT = 100_000

PROBLEMS = ("ctr", "text", "text-20")

#: Peers of the full fits (``FIT_PEERS``) and of the one-epoch SGD pass (``EPOCH_PEERS``).
FIT_PEERS = ("fastlr-lbfgs", "fastlr-newton-cg", "sklearn-lbfgs", "sklearn-saga",
             "sklearn-liblinear", "glum")
EPOCH_PEERS = ("fastlr-sgd", "sklearn-sgd", "vw")
BINARY_ONLY = ("sklearn-liblinear", "glum", "sklearn-sgd", "vw")


# -- data -----------------------------------------------------------------------------------

def _rows_to_csr(n, d, cols, vals, nnz_per_row):
    indptr = np.arange(0, n * nnz_per_row + 1, nnz_per_row, dtype=np.int64)
    X = sp.csr_matrix((vals, cols, indptr), shape=(n, d))
    X.sum_duplicates()  # sorts indices, merges repeated columns within a row
    X.indices = X.indices.astype(np.int32)
    if X.nnz < 2**31:
        X.indptr = X.indptr.astype(np.int32)
    return X


def make_ctr(n, d=D_CTR, nnz_per_row=40, seed=0):
    """Click-through-like binary problem (module docstring).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n, d), float32, int32 indices
    y : ndarray of shape (n,), int64 in {0, 1}
    """
    rng = np.random.default_rng(seed)
    ranks = (rng.zipf(1.1, size=n * nnz_per_row) - 1) % d
    cols = rng.permutation(d)[ranks].astype(np.int64)
    X = _rows_to_csr(n, d, cols, np.ones(n * nnz_per_row, np.float32), nnz_per_row)
    X.data[:] = 1.0  # a column repeated within a row is one feature, not a count
    w = np.where(rng.random(d) < 0.05, rng.standard_normal(d), 0.0)
    y = (rng.random(n) < expit(X @ w - 1.5)).astype(np.int64)
    return X, y


def make_text(n, d=D_TEXT, nnz_per_row=150, n_classes=2, seed=0):
    """Text-like tf-idf problem with ``n_classes`` classes (module docstring).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n, d), float32, int32 indices, rows of unit L2 norm
    y : ndarray of shape (n,), int64 in 0..n_classes-1
    """
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


def make_sparse_problem(name, n_ctr=N_CTR, n_text=N_TEXT, seed=0):
    """``(X, y)`` of one of :data:`PROBLEMS`."""
    if name == "ctr":
        return make_ctr(n_ctr, seed=seed)
    if name == "text":
        return make_text(n_text, n_classes=2, seed=seed)
    if name == "text-20":
        return make_text(n_text, n_classes=20, seed=seed)
    raise ValueError(f"unknown sparse problem {name!r}; expected one of {', '.join(PROBLEMS)}")


def sparse_objective(X, y, coef, intercept, C=1.0):
    """scikit-learn's L2 logistic objective ``C Σ loss_i + ½‖W‖²`` in float64 (scipy's products).

    ``coef`` of shape (1, d) is the sigmoid model (y in {0, 1}); (k, d) with
    k ≥ 2 the softmax model (y in 0..k-1). The intercept is not penalised.
    """
    W = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.asarray(intercept, dtype=np.float64).reshape(-1)
    Z = np.asarray(X @ W.T) + b
    if W.shape[0] == 1:
        z = Z[:, 0]
        loss = np.sum(np.logaddexp(0.0, z) - y * z)
    else:
        loss = np.sum(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
    return float(C * loss + 0.5 * np.sum(W * W))


# -- peers ----------------------------------------------------------------------------------

def _median_time(fn, repeat):
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _fit(name, X, y, C, tol, max_iter):
    """Fit peer ``name``; return (seconds, coef (k, d), intercept (k,), iterations)."""
    n = X.shape[0]
    if name.startswith("fastlr-"):
        import fastlr
        model = fastlr.LogisticRegression(solver=name[len("fastlr-"):], C=C, tol=tol, max_iter=max_iter)
    elif name.startswith("sklearn-"):
        from sklearn.linear_model import LogisticRegression
        model = LogisticRegression(solver=name[len("sklearn-"):], C=C, tol=tol, max_iter=max_iter)
    elif name == "glum":
        import glum
        # glum's default IRLS solver forms the dense d x d Hessian (8 TiB at d = 2^20): its
        # L-BFGS solver is the one that takes wide sparse data.
        model = glum.GeneralizedLinearRegressor(family="binomial", alpha=1.0 / (C * n), l1_ratio=0.0,
                                                solver="lbfgs", gradient_tol=tol, max_iter=max_iter)
    else:
        raise ValueError(f"unknown fit peer {name!r}")
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    coef = np.atleast_2d(model.coef_)
    intercept = np.atleast_1d(model.intercept_)
    return seconds, coef, intercept, int(np.max(getattr(model, "n_iter_", 0)))


def _vw_epoch(X, y, repeat):
    """Seconds of Vowpal Wabbit's one pass (logistic loss) over X's rows, from its cache file."""
    from vowpalwabbit import Workspace

    bits = max(18, int(np.ceil(np.log2(X.shape[1] + 1))))
    options = f"--loss_function logistic -b {bits} --passes 1 --quiet"
    workdir = tempfile.mkdtemp(prefix="fastlr-vw-")
    try:
        text, cache = os.path.join(workdir, "data.vw"), os.path.join(workdir, "data.cache")
        with open(text, "w") as f:
            for i in range(X.shape[0]):
                lo, hi = X.indptr[i], X.indptr[i + 1]
                feats = " ".join(f"{j}:{v:.7g}" for j, v in zip(X.indices[lo:hi], X.data[lo:hi]))
                f.write(f"{1 if y[i] else -1} | {feats}\n")
        Workspace(f"-d {text} --cache_file {cache} {options}").finish()  # writes the cache (untimed)

        def one_pass():
            ws = Workspace(f"--cache_file {cache} {options}")
            ws.finish()
        return _median_time(one_pass, repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _epoch(name, X, y, classes, repeat):
    if name == "fastlr-sgd":
        import fastlr
        def run():
            fastlr.LogisticRegression(batch_size=256, shuffle=False).partial_fit(X, y, classes=classes)
        fastlr.LogisticRegression(batch_size=256).partial_fit(X[:1000], y[:1000], classes=classes)
        return _median_time(run, repeat)
    if name == "sklearn-sgd":
        from sklearn.linear_model import SGDClassifier
        def run():
            SGDClassifier(loss="log_loss", alpha=1.0 / X.shape[0], shuffle=False).partial_fit(
                X, y, classes=classes)
        return _median_time(run, repeat)
    if name == "vw":
        return _vw_epoch(X, y, repeat)
    raise ValueError(f"unknown epoch peer {name!r}")


def _library_of(peer):
    return {"glum": "glum", "vw": "vowpalwabbit"}.get(peer)


def _available(peer):
    library = _library_of(peer)
    if library is None:
        return True
    try:
        __import__(library)
    except ImportError:
        return False
    return True


# -- the run --------------------------------------------------------------------------------

def run_sparse_bench(problems=PROBLEMS, n_ctr=N_CTR, n_text=N_TEXT, peers=FIT_PEERS + EPOCH_PEERS,
                     repeat=3, C=1.0, tol=1e-6, max_iter=1000, progress=None):
    """Measure every problem and peer (module docstring); return a JSON-serialisable dict.

    Parameters
    ----------
    problems : sequence of str
        Names from :data:`PROBLEMS`.
    n_ctr, n_text : int
        Rows of the CTR-like and text-like problems.
    peers : sequence of str
        From :data:`FIT_PEERS` and :data:`EPOCH_PEERS`; a peer whose library
        is not installed, or that is binary-only on a multi-class problem, is
        listed under ``skipped`` with the reason.
    repeat : int
        Runs per median (read, gradient, epochs).
    C, tol, max_iter
        Of every full fit (each library's own meaning of ``tol``; the gaps
        show where each stopped).
    progress : callable, optional
        Called with a one-line message before each measurement.

    Returns
    -------
    dict
        ``machine`` (:func:`fastlr.bench.machine_info`), ``config`` and
        ``problems``: one dict per problem with ``n``, ``d``, ``nnz``,
        ``classes``, ``read_s``, ``grad_s``, ``grad_fraction_of_read``,
        ``fits`` (peer → seconds, objective, gap, iterations), ``epochs``
        (peer → seconds) and ``skipped`` (peer → reason).
    """
    from .backends import get_backend
    from .bench import machine_info
    from .kernels.cpu_sparse import read_csr

    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        raise ValueError(f"unknown sparse problem {unknown[0]!r}; expected one of {', '.join(PROBLEMS)}")
    unknown = [p for p in peers if p not in FIT_PEERS + EPOCH_PEERS]
    if unknown:
        raise ValueError(f"unknown sparse peer {unknown[0]!r}; expected one of "
                         f"{', '.join(FIT_PEERS + EPOCH_PEERS)}")
    say = progress or (lambda message: None)
    out = {"machine": machine_info(), "config": {"problems": list(problems), "n_ctr": n_ctr, "n_text": n_text,
                                                  "C": C, "tol": tol, "max_iter": max_iter, "repeat": repeat},
           "problems": []}
    for problem in problems:
        say(f"generating {problem}")
        X, y = make_sparse_problem(problem, n_ctr, n_text)
        classes = np.unique(y)
        k = 1 if len(classes) == 2 else len(classes)
        row = {"problem": problem, "n": X.shape[0], "d": X.shape[1], "nnz": int(X.nnz),
               "classes": int(len(classes)), "fits": {}, "epochs": {}, "skipped": {}}
        backend = get_backend("cpu")
        data = backend.put(X, y.astype(np.int32), None)
        W, b = np.zeros((k, X.shape[1])), np.zeros(k)
        say(f"{problem}: read and gradient")
        backend.loss_grad(data, W, b, LOG)
        read_csr(X.data, X.indices)
        row["read_s"] = _median_time(lambda: read_csr(X.data, X.indices), repeat)
        row["grad_s"] = _median_time(lambda: backend.loss_grad(data, W, b, LOG), repeat)
        row["read_GBps"] = (X.data.nbytes + X.indices.nbytes) / row["read_s"] / 1e9
        row["grad_fraction_of_read"] = row["read_s"] / row["grad_s"]
        data = None  # the backend's view of X: not needed by the peers
        for peer in peers:
            if peer in BINARY_ONLY and k > 1:
                row["skipped"][peer] = "binary only (one-vs-rest for several classes: another model)"
                continue
            if not _available(peer):
                row["skipped"][peer] = f"{_library_of(peer)} is not installed"
                continue
            say(f"{problem}: {peer}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence warnings: the gap column says it
                if peer in FIT_PEERS:
                    seconds, coef, intercept, n_iter = _fit(peer, X, y, C, tol, max_iter)
                    row["fits"][peer] = {"seconds": seconds, "iterations": n_iter,
                                         "objective": sparse_objective(X, y, coef, intercept, C)}
                else:
                    row["epochs"][peer] = {"seconds": _epoch(peer, X, y, classes, repeat)}
        if row["fits"]:
            best = min(f["objective"] for f in row["fits"].values())
            for f in row["fits"].values():
                f["gap"] = (f["objective"] - best) / abs(best)
        out["problems"].append(row)
    return out


def format_sparse_table(result):
    """The result of :func:`run_sparse_bench` as Markdown tables (one per problem)."""
    m = result["machine"]
    lines = [f"fastlr bench --sparse on {m.get('cpu', '?')} ({m.get('numba_threads', '?')} threads); "
             f"C={result['config']['C']:g}, tol={result['config']['tol']:g}; fits timed once, "
             f"epochs and gradients medians of {result['config']['repeat']}", ""]
    for row in result["problems"]:
        lines.append(f"### {row['problem']}: {row['n']:,} × {row['d']:,}, {row['nnz'] / row['n']:.0f} "
                     f"non-zeros per row, {row['classes']} classes")
        lines.append(f"read of data + indices {row['read_s'] * 1e3:.1f} ms ({row['read_GBps']:.1f} GB/s); "
                     f"fastlr gradient {row['grad_s'] * 1e3:.1f} ms = "
                     f"{100 * row['grad_fraction_of_read']:.0f}% of the read's speed")
        lines.append("")
        if row["fits"]:
            ref = row["fits"].get("fastlr-lbfgs", {}).get("seconds")
            lines.append("| fit | seconds | iterations | objective | gap | time / fastlr-lbfgs |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
            for peer, f in row["fits"].items():
                ratio = f"{f['seconds'] / ref:.2f}" if ref else "–"
                lines.append(f"| {peer} | {f['seconds']:.2f} | {f['iterations']} | {f['objective']:.6f} | "
                             f"{f['gap']:.1e} | {ratio} |")
        if row["epochs"]:
            ref = row["epochs"].get("fastlr-sgd", {}).get("seconds")
            lines.append("")
            lines.append("| one SGD epoch | seconds | time / fastlr-sgd |")
            lines.append("| --- | ---: | ---: |")
            for peer, e in row["epochs"].items():
                ratio = f"{e['seconds'] / ref:.2f}" if ref else "–"
                lines.append(f"| {peer} | {e['seconds']:.3f} | {ratio} |")
        for peer, why in row["skipped"].items():
            lines.append(f"- {peer} skipped: {why}")
        lines.append("")
    return "\n".join(lines)
