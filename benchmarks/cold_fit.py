"""A first fit in a new environment: its wall time and where Numba's compile time goes.

Runs ``fastlr.LogisticRegression(**params).fit`` once with an empty Numba cache (a new
temporary ``NUMBA_CACHE_DIR`` unless one is set, so nothing compiled earlier is loaded), then
a second time in the same process, and prints both wall times and the compile time of each
function, summed from Numba's ``numba:compile`` events as ``compile_log.py`` records them
(each function's own time, without the compilations nested in it).

Usage, from the repository root::

    python benchmarks/cold_fit.py iris
    python benchmarks/cold_fit.py cancer solver=lbfgs
    python benchmarks/cold_fit.py demo      # the whole of ``fastlr demo`` instead of one fit

Problems: ``iris`` (150 x 4, 3 classes), ``cancer`` (breast cancer, standardised, 569 x 30),
``digits`` (standardised, 1797 x 64, 10 classes), ``fmnist`` (60k x 784 float32 uniform noise,
10 classes: the Fashion-MNIST shape), ``big`` (1M x 64 float32, binary). Further arguments
are the estimator's parameters as ``name=value``.
"""

import collections
import os
import sys
import tempfile
import time

if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastlr-cold-")
os.environ.setdefault("COMPILE_LOG_DIR", os.path.join(os.environ["NUMBA_CACHE_DIR"], "compile-log"))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_log  # noqa: E402

compile_log._install()

import numpy as np  # noqa: E402


def problem(name):
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    if name == "iris":
        return load_iris(return_X_y=True)
    if name == "cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return StandardScaler().fit_transform(X), y
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return StandardScaler().fit_transform(X), y
    if name == "fmnist":
        return rng.random((60_000, 784), dtype=np.float32), rng.integers(0, 10, 60_000)
    if name == "big":
        X = rng.standard_normal((1_000_000, 64), dtype=np.float32)
        return X, (X[:, 0] + rng.standard_normal(1_000_000) > 0).astype(int)
    raise SystemExit(f"unknown problem {name!r}: iris, cancer, digits, fmnist or big")


def _summary(what, seconds):
    own = collections.Counter()
    for record in compile_log._records:
        own[record["name"]] += record["self"]
    print(f"{what}; compiling {sum(own.values()):.1f} s in {len(compile_log._records)} "
          f"compilations (wall {seconds:.1f} s)")
    for function, spent in own.most_common(10):
        print(f"  {spent:6.1f} s  {function}")


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "iris"
    if name == "demo":
        from fastlr.cli import main as cli

        start = time.perf_counter()
        try:
            cli(["demo"])
        except SystemExit:
            pass
        _summary("fastlr demo", time.perf_counter() - start)
        return
    params = dict(arg.split("=", 1) for arg in sys.argv[2:])
    params = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in params.items()}
    start = time.perf_counter()
    from fastlr import LogisticRegression
    imported = time.perf_counter() - start
    X, y = problem(name)
    start = time.perf_counter()
    model = LogisticRegression(**params).fit(X, y)
    first = time.perf_counter() - start
    start = time.perf_counter()
    LogisticRegression(**params).fit(X, y)
    second = time.perf_counter() - start
    _summary(f"{name} {X.shape} {params}: import {imported:.1f} s, first fit {first:.1f} s, "
             f"second {second:.3f} s, n_iter_ {model.n_iter_}", imported + first + second)


if __name__ == "__main__":
    main()
