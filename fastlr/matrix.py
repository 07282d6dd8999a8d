"""``fastlr bench --matrix``: fastlr against its peers over the workloads users have.

Every workload (:data:`WORKLOADS`) is fitted by every requested peer
(:mod:`fastlr.peers`: the same objective ``C Σ loss_i + ½‖W‖²``) in one
process, ``repeat`` times after one untimed warm-up, and reported as the
median fit time, the objective reached (scored by the one NumPy yardstick
:func:`fastlr.peers.objective`) and its relative gap ``(F - F_best) / |F_best|``
to the lowest objective any peer reached on that workload, so that a fast
peer that stopped early is visible as such. ``ratio`` is the peer's median
time over fastlr's, from the same run (> 1: fastlr is faster).

With ``busy=True`` another process keeps one core busy for the whole run
(``python -c "while True: pass"``): the situation of a shared machine.

Workloads
---------
breast-cancer-std, breast-cancer-raw, iris, digits-std
    scikit-learn's bundled data sets (standardised with ``StandardScaler``
    where it says ``std``); raw breast cancer with ``max_iter=10000``.
20k-x-20
    :func:`fastlr.bench.make_problem` (20 000 × 20, float64, binary).
1M-x-64-f32
    1 000 000 × 64 float32, binary, ``tol=1e-6``.
fashion-mnist
    60 000 × 784 float32 (pixels / 255), 10 classes, ``C=1``, ``max_iter=100``:
    the real training set when its IDX files are found (``$FASTLR_FASHION_MNIST``,
    else Debian's /usr/share/datasets/fashion-mnist, as ``fastlr demo``), otherwise
    generated data of that shape (the row says which).
10M-x-8-f32, 100k-x-1000-f32
    Generated, binary, float32.
"""

import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .peers import PeerUnavailable, fit_peer, objective


@dataclass(frozen=True)
class Workload:
    """One row of the matrix: how to make its data and the fit settings every peer uses."""

    name: str
    load: object          # () -> (X, y codes 0..k-1, description)
    C: float = 1.0
    max_iter: int = 100
    tol: float = 1e-4
    big: bool = False     # too slow to repeat on a shared 2-core machine: one timed run
    options: dict = field(default_factory=dict)


def _standardised(X):
    from sklearn.preprocessing import StandardScaler
    return np.ascontiguousarray(StandardScaler().fit_transform(X))


def _sklearn_set(loader, standardise):
    def load():
        import sklearn.datasets as ds
        X, y = getattr(ds, loader)(return_X_y=True)
        X = _standardised(X) if standardise else np.ascontiguousarray(X, dtype=np.float64)
        return X, np.unique(y, return_inverse=True)[1].astype(np.int64), "scikit-learn bundled data"
    return load


def _generated(n, d, classes=2, dtype="float32"):
    def load():
        from .bench import make_problem
        X, y = make_problem(n, d, classes=classes, dtype=dtype)
        return X, y.astype(np.int64), f"generated (fastlr.bench.make_problem, {dtype})"
    return load


def _fashion_mnist(data_dir=None):
    """Fashion-MNIST's training set (fastlr's IDX reader), or data of its shape when absent.

    The directory is found as ``fastlr demo`` finds it (:func:`fastlr.demo_images.find_image_data`:
    ``data_dir``, ``$FASTLR_FASHION_MNIST``, then Debian's ``/usr/share/datasets/fashion-mnist``).
    """
    from ._idx import load_mnist
    from .demo_images import find_image_data

    directory, _ = find_image_data(data_dir)
    if directory is not None:
        try:
            X, y = load_mnist(directory, "train", pixel_scale="unit", dtype=np.float32)
        except (OSError, ValueError):
            directory = None
        else:
            return X, y, f"Fashion-MNIST training set ({directory})"
    X, y, _ = _generated(60_000, 784, classes=10)()
    return X, y, "generated data of Fashion-MNIST's shape (its IDX files were not found)"


WORKLOADS = {w.name: w for w in (
    Workload("breast-cancer-std", _sklearn_set("load_breast_cancer", True)),
    Workload("breast-cancer-raw", _sklearn_set("load_breast_cancer", False), max_iter=10_000),
    Workload("iris", _sklearn_set("load_iris", False)),
    Workload("digits-std", _sklearn_set("load_digits", True)),
    Workload("20k-x-20", _generated(20_000, 20, dtype="float64")),
    Workload("1M-x-64-f32", _generated(1_000_000, 64), tol=1e-6),
    Workload("fashion-mnist", _fashion_mnist, big=True),
    Workload("10M-x-8-f32", _generated(10_000_000, 8), big=True),
    Workload("100k-x-1000-f32", _generated(100_000, 1000), big=True),
)}

#: The workloads that fit in a few minutes on a 2-core machine (``--matrix`` default).
SMALL_WORKLOADS = ("breast-cancer-std", "breast-cancer-raw", "iris", "digits-std", "20k-x-20",
                   "1M-x-64-f32")

#: Peers of the matrix, fastlr first.
MATRIX_PEERS = ("fastlr-auto", "fastlr-lbfgs", "fastlr-newton-cholesky", "fastlr-newton-cg", "sklearn-lbfgs", "sklearn-newton-cholesky",
                "sklearnex-lbfgs", "glum", "torch-lbfgs")


@contextmanager
def busy_core(enabled=True):
    """Keep one core busy with another process (a spinning Python loop) while the block runs."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it start spinning
        yield
    finally:
        proc.kill()
        proc.wait()


def _measure(name, X, y, workload, repeat):
    kwargs = {"C": workload.C, "max_iter": workload.max_iter, "tol": workload.tol}
    fit_peer(name, X, y, **kwargs)  # warm-up: compilation, caches, lazy imports
    runs = [fit_peer(name, X, y, **kwargs) for _ in range(1 if workload.big else repeat)]
    result = runs[-1]
    return {
        "peer": name,
        "seconds": float(np.median([r.runtime for r in runs])),
        "runs": len(runs),
        "objective": objective(X, y, result.coef, result.intercept, C=workload.C),
        "n_iter": result.n_iter,
    }


def run_matrix(workloads=SMALL_WORKLOADS, peers=MATRIX_PEERS, repeat=5, busy=False, log=None):
    """Fit every peer on every workload; return a JSON-serialisable dict.

    Parameters
    ----------
    workloads : sequence of str
        Names from :data:`WORKLOADS`.
    peers : sequence of str
        Names from :data:`fastlr.peers.PEER_NAMES`, the first the reference
        of the ratios (by default fastlr-auto, fastlr's default solver); uninstalled peers and
        peers that cannot fit a workload (binary-only ones on several classes)
        are listed under ``skipped`` with the reason.
    repeat : int
        Timed fits per peer and workload (median reported); big workloads
        are timed once.
    busy : bool
        Keep one core busy with another process throughout.
    log : callable, optional
        Called with a line of progress after each fit.

    Returns
    -------
    dict
        ``machine`` (:func:`fastlr.bench.machine_info`), ``busy``, ``repeat``,
        ``rows``: one dict per workload with ``workload``, ``data``, ``shape``,
        ``classes``, ``settings``, ``results`` (per peer: ``seconds``,
        ``objective``, ``gap``, ``ratio``, ``n_iter``, ``runs``) and ``skipped``.
    """
    from .bench import machine_info
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; expected some of {list(WORKLOADS)}")
    rows = []
    with busy_core(busy):
        for wname in workloads:
            workload = WORKLOADS[wname]
            X, y, description = workload.load()
            k = int(y.max()) + 1
            row = {"workload": wname, "data": description, "shape": list(X.shape),
                   "dtype": X.dtype.name, "classes": k,
                   "settings": {"C": workload.C, "max_iter": workload.max_iter, "tol": workload.tol},
                   "results": [], "skipped": []}
            for name in peers:
                try:
                    result = _measure(name, X, y, workload, repeat)
                except (PeerUnavailable, ValueError) as exc:
                    row["skipped"].append({"peer": name, "reason": str(exc)})
                    continue
                row["results"].append(result)
                if log:
                    log(f"{wname:18s} {name:24s} {result['seconds'] * 1e3:10.1f} ms  "
                        f"objective {result['objective']:.10g}  it {result['n_iter']}")
            if row["results"]:
                best = min(r["objective"] for r in row["results"])
                ref = next((r for r in row["results"] if r["peer"] == peers[0]), None)
                for r in row["results"]:
                    r["gap"] = (r["objective"] - best) / abs(best) if best else 0.0
                    r["ratio"] = r["seconds"] / ref["seconds"] if ref else None
            rows.append(row)
            del X, y
    return {"machine": machine_info(), "busy": busy, "repeat": repeat, "rows": rows}


def format_matrix(result):
    """The matrix as a Markdown table: time (ratio to the first peer) and objective gap per peer."""
    peers = []
    for row in result["rows"]:
        for r in row["results"]:
            if r["peer"] not in peers:
                peers.append(r["peer"])
    machine = result["machine"]
    lines = [f"{machine['cpu']}, {machine['cpus_usable']} CPUs, Numba layer "
             f"{machine['threading_layer']} ({machine['numba_threads']} threads); "
             f"{'one core busy with another process' if result['busy'] else 'idle'}; "
             f"median of {result['repeat']} (big rows: 1 run)",
             "",
             "| workload | " + " | ".join(peers) + " |",
             "| --- |" + " --- |" * len(peers)]
    for row in result["rows"]:
        cells = []
        by_peer = {r["peer"]: r for r in row["results"]}
        for p in peers:
            r = by_peer.get(p)
            if r is None:
                cells.append("n/a")
                continue
            ratio = "" if p == peers[0] or r["ratio"] is None else f" ({r['ratio']:.2g}×)"
            cells.append(f"{_ms(r['seconds'])}{ratio}, gap {r['gap']:.0e}, {r['n_iter']} it")
        shape = "×".join(map(str, row["shape"]))
        lines.append(f"| {row['workload']} ({shape}, {row['classes']} cl.) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(seconds):
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
