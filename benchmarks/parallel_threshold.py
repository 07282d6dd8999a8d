"""Where a parallel region starts to pay: serial vs parallel CPU kernels by problem size.

For binary (k = 1) and 10-class problems at d = 20 and 64 and a range of row
counts, times the parallel Numba kernel (``fastlr.kernels.cpu``) and its
serial compilation (``fastlr.backends.cpu._serial``: the same code, no parallel
region) back to back, medians of ``--repeat`` calls, idle and (``--busy``) with
another process keeping one core busy. The work of a call is n · d · k
multiply-adds; ``fastlr.backends.cpu.PARALLEL_MIN_WORK`` is set from this table.

Usage::

    python benchmarks/parallel_threshold.py [--busy] [--repeat 51] [--json PATH]
"""

import argparse
import os
import sys
import json

import numpy as np


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/benchmarks as "benchmarks"
from benchmarks.common import median_time as _median  # noqa: E402
from fastlr._math import LOG  # noqa: E402


def main():
    from fastlr.backends import cpu as cpu_backend
    from fastlr.bench import machine_info, make_problem
    from fastlr.kernels import cpu
    from fastlr.matrix import busy_core

    parser = argparse.ArgumentParser()
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--repeat", type=int, default=51)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    with busy_core(args.busy):
        for k in (1, 10):
            for d in (20, 64):
                X_all, y_all = make_problem(65_536, d, classes=2 if k == 1 else k, dtype="float64")
                for n in (512, 2048, 4096, 8192, 16_384, 65_536):
                    X, y = X_all[:n], y_all[:n]
                    sw = np.empty(0)
                    W = np.full((k, d), 0.01)
                    b = np.zeros(k)
                    if k == 1:
                        par = lambda: cpu.binary_loss_grad(X, y, sw, W[0], 0.0, LOG)  # noqa: E731
                        ser = lambda: cpu_backend._binary_loss_grad_serial(X, y, sw, W[0], 0.0, LOG)  # noqa: E731
                    else:
                        par = lambda: cpu.multinomial_loss_grad(X, y, sw, W, b, LOG)  # noqa: E731
                        ser = lambda: cpu_backend._multinomial_loss_grad_serial(X, y, sw, W, b, LOG)  # noqa: E731
                    tp = _median(par, args.repeat)
                    ts = _median(ser, args.repeat)
                    rows.append({"k": k, "d": d, "n": n, "work": n * d * k,
                                 "parallel_us": tp * 1e6, "serial_us": ts * 1e6})
                    print(f"k={k:2d} d={d:3d} n={n:6d} work={n * d * k:9d}  parallel {tp * 1e6:9.1f} us"
                          f"  serial {ts * 1e6:9.1f} us  serial/parallel {ts / tp:5.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "busy": args.busy, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
