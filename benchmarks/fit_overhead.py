"""Fit = passes over X: what ``fit``/``predict`` cost beyond the kernel calls they make.

On a 1M × 64 float32 binary problem (``--n``, ``--d``, ``--classes``):

* lbfgs: median ``fit`` time against (number of ``loss_grad`` calls the fit
  made) × (median time of one ``loss_grad`` kernel call, back to back);
* newton-cholesky (``solver="auto"``'s choice there): ``fit`` against its
  ``loss_grad_hess`` calls (and any ``loss_grad`` calls of its line search)
  × their median kernel times;
* sgd: ``fit(solver="sgd", max_iter=1)`` against one ``backend.sgd_epoch`` call with the
  arguments that fit passed it (recorded from one fit);
* predict: ``predict`` against one ``decision_function`` kernel call.

``overhead`` = fit / kernel work - 1 (target: ≤ 0.10 for lbfgs).

Usage::

    python benchmarks/fit_overhead.py [--n 1000000] [--d 64] [--classes 2] [--repeat 5]
"""

import argparse
import os
import sys
import warnings

import numpy as np


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/benchmarks as "benchmarks"
from benchmarks.common import median_time as _median  # noqa: E402
from fastlr._math import LOG  # noqa: E402


def main():
    from fastlr import LogisticRegression
    from fastlr._threads import fastlr_threads
    from fastlr.backends import CPUBackend
    from fastlr.bench import make_problem

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y = make_problem(args.n, args.d, classes=args.classes, dtype="float32")
    k = 1 if args.classes == 2 else args.classes
    backend = CPUBackend()
    data = backend.put(X, y.astype(np.int32))
    W, b = np.full((k, args.d), 0.01), np.zeros(k)

    def grad():
        with fastlr_threads():
            backend.loss_grad(data, W, b, LOG)

    t_grad = _median(grad, args.repeat * 3)

    calls = [0]
    original = CPUBackend.loss_grad

    def counting(self, *a):
        calls[0] += 1
        return original(self, *a)

    CPUBackend.loss_grad = counting
    try:
        model = LogisticRegression(solver="lbfgs")
        t_fit = _median(lambda: model.fit(X, y), args.repeat)
        calls[0] = 0
        model.fit(X, y)
        n_eval = calls[0]
    finally:
        CPUBackend.loss_grad = original
    work = n_eval * t_grad
    print(f"lbfgs    fit {t_fit * 1e3:8.1f} ms  = {n_eval} loss_grad calls x {t_grad * 1e3:.2f} ms "
          f"({work * 1e3:.1f} ms) + overhead {t_fit / work - 1:+.1%}  ({model.n_iter_} iterations)")

    from fastlr.trainer import HESSIAN_ROWS

    def grad_hess():
        with fastlr_threads():
            backend.loss_grad_hess(data, W, b, LOG, HESSIAN_ROWS)

    t_hess = _median(grad_hess, args.repeat * 3)
    hess_calls = [0]
    original_hess = CPUBackend.loss_grad_hess

    def counting_hess(self, *a):
        hess_calls[0] += 1
        return original_hess(self, *a)

    CPUBackend.loss_grad = counting
    CPUBackend.loss_grad_hess = counting_hess
    try:
        newton = LogisticRegression(solver="newton-cholesky")
        t_newton = _median(lambda: newton.fit(X, y), args.repeat)
        calls[0] = hess_calls[0] = 0
        newton.fit(X, y)
        n_grad, n_hess = calls[0], hess_calls[0]
    finally:
        CPUBackend.loss_grad = original
        CPUBackend.loss_grad_hess = original_hess
    work = n_grad * t_grad + n_hess * t_hess
    print(f"newton-cholesky fit {t_newton * 1e3:8.1f} ms  = {n_hess} loss_grad_hess calls x "
          f"{t_hess * 1e3:.2f} ms + {n_grad} loss_grad calls ({work * 1e3:.1f} ms) + overhead "
          f"{t_newton / work - 1:+.1%}  ({newton.n_iter_} iterations)")

    # The bare epoch gets exactly the arguments the fit passes (its schedule, batch order and
    # starting point, recorded from one fit): the same work, not a look-alike with another
    # learning rate or order.
    sgd = LogisticRegression(solver="sgd", max_iter=1, random_state=0)
    recorded = []
    original_epoch = CPUBackend.sgd_epoch

    def recording(self, data_, W_, b_, *rest, **kw):
        recorded.append((data_, W_.copy(), b_.copy(), rest, kw))
        return original_epoch(self, data_, W_, b_, *rest, **kw)

    CPUBackend.sgd_epoch = recording
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sgd.fit(X, y)
    finally:
        CPUBackend.sgd_epoch = original_epoch
    (data_e, W0, b0, rest, kw), = recorded

    def epoch():
        Ws, bs = W0.copy(), b0.copy()
        with fastlr_threads():
            backend.sgd_epoch(data_e, Ws, bs, *rest, **kw)

    t_epoch = _median(epoch, args.repeat)

    def fit_sgd():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=1 stops short by design
            sgd.fit(X, y)

    t_sgd = _median(fit_sgd, args.repeat)
    print(f"sgd      fit(max_iter=1) {t_sgd * 1e3:8.1f} ms, one epoch {t_epoch * 1e3:8.1f} ms, "
          f"overhead {t_sgd / t_epoch - 1:+.1%}")

    def scores():
        with fastlr_threads():
            backend.decision_function(X, model.coef_, model.intercept_)

    t_scores = _median(scores, args.repeat)
    t_predict = _median(lambda: model.predict(X), args.repeat)
    print(f"predict  {t_predict * 1e3:8.1f} ms, decision_function kernel {t_scores * 1e3:8.1f} ms, "
          f"overhead {t_predict / t_scores - 1:+.1%}")


if __name__ == "__main__":
    main()
