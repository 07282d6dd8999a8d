"""fastlr on sparse data against scikit-learn, side by side in one process.

For the CTR-like and text-like generated problems (benchmarks/benchmarks/
sparse_common.py; scaled-down rows, full widths) it measures, as medians:

* one parallel read of the CSR's ``data`` + ``indices`` (the floor for a
  gradient) and fastlr's CPU sparse gradient (``backend.loss_grad``);
* an L2 logistic fit (C=1) by fastlr lbfgs and scikit-learn lbfgs, both with
  tol=1e-6, each scored by the same objective (``sparse_objective``), and
  the relative gap of each to the lower of the two;
* one SGD epoch (batch 256 for fastlr's ``partial_fit``; scikit-learn's
  ``SGDClassifier.partial_fit``, which steps per row).

Run: ``PYTHONPATH=. python benchmarks/sparse_compare.py [--quick] [--json PATH]``.
The machine's CPU and thread count are printed; figures hold for that CPU.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__)))

from benchmarks.sparse_common import (D_CTR, D_TEXT, make_ctr, make_text,  # noqa: E402
                                      sparse_objective)
from fastlr._math import LOG  # noqa: E402


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_problem(name, X, y, repeat):
    import fastlr
    from fastlr.backends import get_backend
    from fastlr.kernels.cpu_sparse import read_csr
    from sklearn.linear_model import LogisticRegression as SkLR, SGDClassifier

    k = 1 if y.max() == 1 else int(y.max()) + 1
    out = {"problem": name, "n": X.shape[0], "d": X.shape[1], "nnz": int(X.nnz), "classes": max(k, 2)}
    backend = get_backend("cpu")
    data = backend.put(X, y.astype(np.int32), None)
    W, b = np.zeros((k, X.shape[1])), np.zeros(k)
    backend.loss_grad(data, W, b, LOG)
    read_csr(X.data, X.indices)
    nbytes = X.data.nbytes + X.indices.nbytes
    out["read_s"] = median_time(lambda: read_csr(X.data, X.indices), repeat)
    out["grad_s"] = median_time(lambda: backend.loss_grad(data, W, b, LOG), repeat)
    out["read_GBps"] = nbytes / out["read_s"] / 1e9
    out["grad_fraction_of_read"] = out["read_s"] / out["grad_s"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {}
        for who, make in (("fastlr", lambda: fastlr.LogisticRegression(backend="cpu", tol=1e-6, max_iter=1000)),
                          ("sklearn", lambda: SkLR(solver="lbfgs", tol=1e-6, max_iter=1000))):
            start = time.perf_counter()
            model = make().fit(X, y)
            seconds = time.perf_counter() - start
            f = sparse_objective(X, y if k > 1 else y, model.coef_, model.intercept_)
            fits[who] = (seconds, f, int(np.max(model.n_iter_)))
        best = min(v[1] for v in fits.values())
        for who, (seconds, f, n_iter) in fits.items():
            out[f"{who}_fit_s"] = seconds
            out[f"{who}_objective"] = f
            out[f"{who}_gap"] = (f - best) / abs(best)
            out[f"{who}_iterations"] = n_iter
        out["fit_speedup"] = fits["sklearn"][0] / fits["fastlr"][0]

        classes = np.arange(max(k, 2))
        fl = fastlr.LogisticRegression(backend="cpu", batch_size=256, shuffle=False)
        fl.partial_fit(X[:1000], y[:1000], classes=classes)  # compile outside the timing
        out["fastlr_sgd_epoch_s"] = median_time(
            lambda: fastlr.LogisticRegression(backend="cpu", batch_size=256, shuffle=False)
            .partial_fit(X, y, classes=classes), repeat)
        out["sklearn_sgd_epoch_s"] = median_time(
            lambda: SGDClassifier(loss="log_loss", alpha=1.0 / X.shape[0], shuffle=False)
            .partial_fit(X, y, classes=classes), max(1, repeat // 2))
        out["sgd_speedup"] = out["sklearn_sgd_epoch_s"] / out["fastlr_sgd_epoch_s"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks that it runs)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-ctr", type=int, default=500_000, help="rows of the CTR-like problem")
    parser.add_argument("--n-text", type=int, default=50_000, help="rows of the text-like problems")
    args = parser.parse_args()
    n_ctr, n_text = (20_000, 5_000) if args.quick else (args.n_ctr, args.n_text)
    print(f"CPU: {cpu_name()}, numba threads: {numba.get_num_threads()}", flush=True)
    results = []
    problems = [
        ("ctr-binary", lambda: make_ctr(n_ctr, D_CTR)),
        ("text-binary", lambda: make_text(n_text, D_TEXT, n_classes=2)),
        ("text-20-classes", lambda: make_text(n_text, D_TEXT, n_classes=20)),
    ]
    for name, make in problems:
        X, y = make()
        r = run_problem(name, X, y, args.repeat)
        results.append(r)
        print(f"{name}: {r['n']} x {r['d']}, nnz {r['nnz']} ({r['nnz'] / r['n']:.0f}/row), {r['classes']} classes\n"
              f"  read data+indices {r['read_s'] * 1e3:.2f} ms ({r['read_GBps']:.1f} GB/s); "
              f"gradient {r['grad_s'] * 1e3:.2f} ms = {100 * r['grad_fraction_of_read']:.0f}% of read\n"
              f"  lbfgs fit: fastlr {r['fastlr_fit_s']:.2f} s ({r['fastlr_iterations']} it., gap "
              f"{r['fastlr_gap']:.1e}), sklearn {r['sklearn_fit_s']:.2f} s ({r['sklearn_iterations']} it., "
              f"gap {r['sklearn_gap']:.1e}): {r['fit_speedup']:.1f}x\n"
              f"  SGD epoch: fastlr {r['fastlr_sgd_epoch_s'] * 1e3:.1f} ms, SGDClassifier.partial_fit "
              f"{r['sklearn_sgd_epoch_s'] * 1e3:.1f} ms: {r['sgd_speedup']:.1f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "threads": numba.get_num_threads(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
