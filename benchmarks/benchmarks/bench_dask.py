"""fastlr on a Dask cluster against dask-ml's LogisticRegression.

Suites
------
DaskFit (library × n_workers)
    A ``LocalCluster`` of ``n_workers`` one-thread worker processes holds a binary
    problem (float64, 1M × 64 in 8 row blocks; 20 000 × 16 in 4 blocks under
    ``FASTLR_BENCH_SMALL=1``, with 2 workers only), generated and persisted on the
    workers in ``setup``.
    ``library`` is ``fastlr-dask`` (``fastlr.LogisticRegression`` on the dask arrays:
    fastlr's CPU kernel per partition) or ``dask-ml``
    (``dask_ml.linear_model.LogisticRegression(solver="lbfgs")``, skipped, "n/a",
    when dask-ml is not installed). Both minimise the same objective with matched
    stopping rules (``dask_common``: no intercept, dask-ml's tol × n), tol 1e-5.
    ``time_fit``: the fit alone; ``track_objective_gap``: (F − F*)/|F*| against a
    tight scikit-learn fit computed once in ``setup_cache``; ``track_bytes_per_eval``:
    bytes written to TCP sockets by the whole cluster during one loss-and-gradient
    evaluation (median over a fit, ``dask_common.EvalBytes``). Skipped ("n/a")
    without dask.distributed.

``benchmarks/dask_compare.py`` runs the same comparison as a script, with 1, 2 and 4
workers and two tolerances, and writes the JSON committed under ``benchmarks/results/``.
"""

import warnings

from .common import pick
from .dask_common import (
    FITTERS, EvalBytes, install_byte_counter, local_cluster, make_data, reference_objective,
)

N, D, CHUNKS = pick((1_000_000, 64, 8), (20_000, 16, 4))
TOL = 1e-5


def _require(module):
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise NotImplementedError(f"{module} is not installed") from None


class DaskFit:
    params = (["fastlr-dask", "dask-ml"], pick([1, 2], [2]))
    param_names = ["library", "n_workers"]
    timeout = 600
    # one cluster per setup: a few repeats are enough, the fit itself is long
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0

    def setup_cache(self):
        """F* on the local machine: the same seeded blocks as on any cluster."""
        try:
            import dask
        except ImportError:
            return None
        X, y = dask.compute(*make_data(N, D, CHUNKS), scheduler="threads")
        return reference_objective(X, y)

    setup_cache.timeout = 1200

    def setup(self, f_star, library, n_workers):
        _require("distributed")
        if library == "dask-ml":
            _require("dask_ml")
        import distributed

        self.cluster = local_cluster(n_workers)
        self.client = distributed.Client(self.cluster)
        install_byte_counter()
        self.client.run(install_byte_counter)
        X, y = make_data(N, D, CHUNKS)
        self.X, self.y = self.client.persist([X, y])
        distributed.wait([self.X, self.y])
        self.fit = FITTERS[library]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, self.coef, _, _ = self.fit(self.X, self.y, TOL)  # warm-up: imports, Numba cache
            counter = EvalBytes(self.client)
            counter.calibrate()
            self.fit(self.X, self.y, TOL, counter)
            self.bytes_per_eval = counter.median
        from fastlr.peers import objective

        Xl, yl = self.client.compute([self.X, self.y], sync=True)
        self.gap = (objective(Xl, yl, self.coef, 0.0) - f_star) / abs(f_star)
        if not self.gap < 1e-6:  # correct before timed: both reach the optimum
            raise AssertionError(f"{library}: objective gap {self.gap:.2e} to the tight fit")

    def teardown(self, f_star, library, n_workers):
        if hasattr(self, "client"):
            self.client.close()
            self.cluster.close()

    def time_fit(self, f_star, library, n_workers):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fit(self.X, self.y, TOL)

    def track_objective_gap(self, f_star, library, n_workers):
        return self.gap

    track_objective_gap.unit = "relative"

    def track_bytes_per_eval(self, f_star, library, n_workers):
        return self.bytes_per_eval

    track_bytes_per_eval.unit = "bytes"
