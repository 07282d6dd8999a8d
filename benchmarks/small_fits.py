"""Small fits: fastlr vs scikit-learn (lbfgs), medians, in one process; optionally with a busy core.

Usage: python benchmarks/small_fits.py [--busy] [--repeat N]
Prints one line per problem: fastlr ms, scikit-learn ms, ratio, iterations.
"""
import argparse
import os
import subprocess
import sys

import numpy as np


def problems():
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris
    from sklearn.preprocessing import StandardScaler
    from fastlr.bench import make_problem
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    Xi, yi = load_iris(return_X_y=True)
    X20, y20 = make_problem(20_000, 20, dtype="float64")
    return {
        "breast-cancer std": (StandardScaler().fit_transform(Xb), yb, {}),
        "iris": (np.ascontiguousarray(Xi), yi, {}),
        "digits std": (StandardScaler().fit_transform(Xd), yd, {}),
        "20k x 20": (X20, y20, {}),
        "breast-cancer raw": (np.ascontiguousarray(Xb), yb, {"max_iter": 10_000}),
    }


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/benchmarks as "benchmarks"
from benchmarks.common import median_time  # noqa: E402


def main():
    import warnings
    parser = argparse.ArgumentParser()
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression as SK
    from fastlr import LogisticRegression as FL
    warnings.simplefilter("ignore")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        for name, (X, y, kw) in problems().items():
            if args.only and args.only not in name:
                continue
            repeat = 3 if "raw" in name else args.repeat
            tf = median_time(lambda: FL(**kw).fit(X, y), repeat)
            ts = median_time(lambda: SK(**kw).fit(X, y), repeat)
            print(f"{name:20s} fastlr {tf * 1e3:9.2f} ms  sklearn {ts * 1e3:9.2f} ms  "
                  f"ratio {tf / ts:6.2f}  it {FL(**kw).fit(X, y).n_iter_} / "
                  f"{int(np.max(SK(**kw).fit(X, y).n_iter_))}", flush=True)
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
