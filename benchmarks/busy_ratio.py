"""A fit's time with one core kept busy by another process, over its idle time, interleaved.

Issue 13's target: on a machine where another process keeps one core busy, a
1M × 64 float32 fit (tol 1e-6) stays within 2× of fastlr's own idle time. On
the 2-core Xeon the machine's speed drifts by up to 30% between processes, so
two separate runs (``fastlr bench --matrix`` idle, then ``--busy``) mix that
drift into the ratio. This script fits the same problem alternately idle and
with one core busy (``fastlr.matrix.busy_core``: a spinning Python process,
started 0.2 s before the fit and killed after it), in one process, and reports
the median of each and their ratio. Default environment: no thread variables
are set.

Usage::

    python benchmarks/busy_ratio.py [--n 1000000] [--d 64] [--classes 2]
        [--solver auto lbfgs] [--repeat 7] [--json FILE]
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np


def main():
    from fastlr import LogisticRegression
    from fastlr.bench import machine_info, make_problem
    from fastlr.matrix import busy_core

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--solver", nargs="+", default=["auto", "lbfgs"])
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    X, y = make_problem(args.n, args.d, classes=args.classes, dtype="float32")
    rows = []
    for solver in args.solver:
        model = LogisticRegression(solver=solver, tol=args.tol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)  # warm-up: compilation or cache load
            idle, busy = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                model.fit(X, y)
                idle.append(time.perf_counter() - t)
                with busy_core():
                    t = time.perf_counter()
                    model.fit(X, y)
                    busy.append(time.perf_counter() - t)
        ratio = float(np.median(busy) / np.median(idle))
        rows.append({"solver": solver, "solver_": model.solver_, "n_iter": int(np.max(model.n_iter_)),
                     "idle_s": idle, "busy_s": busy, "idle_median_s": float(np.median(idle)),
                     "busy_median_s": float(np.median(busy)), "busy_over_idle": ratio})
        print(f"{solver:8s} ({model.solver_}, {int(np.max(model.n_iter_))} it.)  idle {np.median(idle) * 1e3:7.1f} ms"
              f"  busy {np.median(busy) * 1e3:7.1f} ms  busy/idle {ratio:.2f}  (medians of {args.repeat},"
              f" interleaved)", flush=True)
    if args.json:
        result = {"machine": machine_info(), "n": args.n, "d": args.d, "classes": args.classes,
                  "tol": args.tol, "repeat": args.repeat, "rows": rows}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
