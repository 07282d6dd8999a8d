"""newton-cholesky's pass (loss, gradient and Hessian) against a gradient pass, and its fit
against lbfgs's, on one generated binary problem.

Prints, for the cpu backend with the BLAS pools limited to one thread (as in a fit): the
median time of ``loss_grad`` and of ``loss_grad_hess`` (the Hessian over at most
``fastlr.trainer.HESSIAN_ROWS``-row blocks, as the solver asks), then the median fit time of
``solver="newton-cholesky"`` and ``solver="lbfgs"`` (tol 1e-4), interleaved.

Usage: ``python benchmarks/hessian_pass.py [N D DTYPE]`` (default ``20000 20 float64``, the
matrix's 20k x 20 row). On the 2-core Zen 3 (2026-12-02, sixth session), 20k x 20 float64:
``loss_grad_hess`` 1.08 ms with 8 partial-Hessian groups, 0.86-0.93 ms with up to 64 and the
vectorised weights (5d9c5a7); the newton-cholesky fit 7.53 -> 5.85 ms, lbfgs 5.0-5.2 ms.
Seventh session (2026-12-03), the Hessian's weights from the exponentials the gradient sweep
left instead of the scores and exponentials formed again, three alternating process pairs:
``loss_grad_hess`` 0.84-0.86 -> 0.79-0.82 ms, the newton-cholesky fit 5.8-6.2 -> 5.5-5.8 ms;
1M x 64 float32 (sub-sampled Hessian) 17.0-18.9 -> 16.4-16.7 ms (one slower outlier run).
"""

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/benchmarks as "benchmarks"
import fastlr.trainer as trainer  # noqa: E402
from benchmarks.common import median_time  # noqa: E402
from fastlr import LogisticRegression  # noqa: E402
from fastlr._math import LOG  # noqa: E402
from fastlr.backends import CPUBackend  # noqa: E402
from fastlr.bench import make_problem  # noqa: E402


def _median_ms(f, repeat):
    return median_time(f, repeat=repeat) * 1e3


def main(n, d, dtype, repeat=101, fits=15):
    X, y = make_problem(n, d, classes=2, dtype=dtype)
    backend = CPUBackend()
    data = backend.put(X, y.astype(np.int32), None)
    W, b = np.zeros((1, d)), np.zeros(1)
    with threadpool_limits(1, user_api="blas"):
        grad = _median_ms(lambda: backend.loss_grad(data, W, b, LOG), repeat)
        hess = _median_ms(lambda: backend.loss_grad_hess(data, W, b, LOG, trainer.HESSIAN_ROWS), repeat)
    print(f"{n} x {d} {dtype}: loss_grad {grad:.3f} ms, loss_grad_hess {hess:.3f} ms "
          f"({hess / grad:.1f} gradient passes)")
    y = y.astype(np.int64)
    solvers = ["newton-cholesky", "lbfgs"]
    times = {s: [] for s in solvers}
    iters = {}
    for s in solvers:
        LogisticRegression(solver=s, tol=1e-4).fit(X, y)
    for _ in range(fits):
        for s in solvers:
            start = time.perf_counter()
            model = LogisticRegression(solver=s, tol=1e-4).fit(X, y)
            times[s].append(time.perf_counter() - start)
            iters[s] = int(model.n_iter_[0])
    for s in solvers:
        print(f"  fit {s}: {np.median(times[s]) * 1e3:.2f} ms, {iters[s]} iterations")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 20_000, int(args[1]) if len(args) > 1 else 20,
         args[2] if len(args) > 2 else "float64")
