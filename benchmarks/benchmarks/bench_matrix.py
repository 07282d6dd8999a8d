"""The workload matrix (``fastlr bench --matrix``) as asv suites.

Suites
------
Matrix
    ``time_fit``: one fit of ``peer`` on ``workload`` (the workloads of
    :data:`fastlr.matrix.WORKLOADS`, the peers of
    :data:`fastlr.matrix.MATRIX_PEERS`, each with the workload's own ``C``,
    ``max_iter`` and ``tol``). ``track_objective_gap``: ``(F - F_fastlr) /
    |F_fastlr|``, the peer's objective against fastlr-auto's (the default solver) on the same
    workload, both scored by :func:`fastlr.peers.objective` (negative: the
    peer went lower). Peers that are not installed or cannot fit a workload
    (glum with several classes) are skipped ("n/a").
MatrixBusy
    ``time_fit`` again while another process keeps one core busy (the
    shared-machine case), for fastlr and scikit-learn's lbfgs.

Under ``FASTLR_BENCH_SMALL=1`` (CI's smoke run) only iris and 20k × 20 with
fastlr and scikit-learn's lbfgs run. The big rows (Fashion-MNIST, 10M × 8,
100k × 1000) are in the full suite's parameters but take minutes each on a
2-core machine.
"""

import functools
import warnings

from sklearn.exceptions import ConvergenceWarning

from fastlr.matrix import MATRIX_PEERS, WORKLOADS, busy_core
from fastlr.peers import PeerUnavailable, fit_peer, objective

from .common import pick

WORKLOAD_NAMES = pick(list(WORKLOADS), ["iris", "20k-x-20"])
PEERS = pick(list(MATRIX_PEERS), ["fastlr-auto", "sklearn-lbfgs"])
REFERENCE = MATRIX_PEERS[0]  # fastlr-auto: fastlr's default solver


@functools.lru_cache(maxsize=1)
def _data(workload):
    X, y, _ = WORKLOADS[workload].load()
    return X, y


def _fit(peer, workload):
    X, y = _data(workload)
    w = WORKLOADS[workload]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return fit_peer(peer, X, y, C=w.C, max_iter=w.max_iter, tol=w.tol)


class Matrix:
    params = (WORKLOAD_NAMES, PEERS)
    param_names = ["workload", "peer"]
    timeout = 1800
    number = 1
    repeat = pick((1, 3, 60.0), (1, 1, 10.0))
    warmup_time = 0

    def setup(self, workload, peer):
        if peer == "glum" and int(_data(workload)[1].max()) > 1:
            raise NotImplementedError("glum is binary only")
        try:
            self.result = _fit(peer, workload)  # warm-up (compilation, imports); skips if missing
        except PeerUnavailable as exc:
            raise NotImplementedError(str(exc)) from None

    def time_fit(self, workload, peer):
        _fit(peer, workload)

    def track_objective_gap(self, workload, peer):
        X, y = _data(workload)
        C = WORKLOADS[workload].C
        ref = self.result if peer == REFERENCE else _fit(REFERENCE, workload)
        F = objective(X, y, self.result.coef, self.result.intercept, C=C)
        F_ref = objective(X, y, ref.coef, ref.intercept, C=C)
        return (F - F_ref) / abs(F_ref)

    track_objective_gap.unit = "relative"


class MatrixBusy:
    params = (pick(["breast-cancer-std", "iris", "digits-std", "20k-x-20", "1M-x-64-f32"],
                   ["iris"]),
              ["fastlr-auto", "fastlr-lbfgs", "sklearn-lbfgs"])
    param_names = ["workload", "peer"]
    timeout = 1800
    number = 1
    repeat = pick((1, 5, 60.0), (1, 1, 10.0))
    warmup_time = 0

    def setup(self, workload, peer):
        _fit(peer, workload)
        self._busy = busy_core()
        self._busy.__enter__()

    def teardown(self, workload, peer):
        self._busy.__exit__(None, None, None)

    def time_fit(self, workload, peer):
        _fit(peer, workload)

