"""fastlr on Dask against dask-ml's LogisticRegression: same cluster, same data, same objective.

    python benchmarks/dask_compare.py [--n 1000000] [--d 64] [--chunks 8] [--workers 1,2,4]
                                      [--json benchmarks/results/dask-2core.json]

For each worker count it starts a ``LocalCluster(n_workers, threads_per_worker=1,
processes=True)``, generates the data on the workers (``dask.array`` seeded random
blocks, float64, ``--chunks`` row blocks whatever the worker count, so every
cluster holds the same data in the same partitions), persists it, and fits

* ``fastlr-dask``: ``fastlr.LogisticRegression(solver="lbfgs")`` on the dask arrays
  (DaskBackend, fastlr's CPU kernel on each partition, Numba limited to the worker's
  one thread);
* ``dask-ml``: ``dask_ml.linear_model.LogisticRegression(solver="lbfgs")``
  (dask-glm: ``X.dot(beta)``, ``sigmoid``, ``X.T.dot(p - y)`` as dask.array graphs,
  built and sent to the scheduler at every evaluation).

**Same objective.** dask-glm minimises ``Σ_i loss_i + (1/C) ½‖β‖²`` and, with
``fit_intercept=True``, appends a column of ones to X whose coefficient is in β,
so it penalises the intercept; fastlr (like scikit-learn) minimises ``C Σ_i loss_i +
½‖w‖²`` with the intercept unpenalised. Both are run with ``fit_intercept=False``
(the labels are drawn from a model without intercept), where the two objectives are
the same up to the factor C, and every solution is scored by the same NumPy code,
``fastlr.peers.objective``, against ``F*`` from a tight single-machine fit
(scikit-learn lbfgs, tol 1e-10). Their stopping rules are matched too: fastlr stops
when the largest gradient component of the *mean* objective ``F / (C n)`` is below
``tol``, dask-glm (scipy's ``pgtol``) when that of ``F / C`` is, so dask-ml runs with
``tol × n``. The runs use ``tol=1e-5`` (matched) and a tighter ``1e-7``.

**Bytes moved.** Every TCP write of the cluster is counted: ``distributed.comm.tcp.TCP.write``
(which returns the bytes it wrote) is wrapped in this process (client, scheduler and
nannies of a LocalCluster live here) and, through ``client.run``, in every worker
process, so worker↔worker, worker↔scheduler and client↔scheduler traffic are all in
(heartbeats too). The counter is read just before and after every loss-and-gradient
evaluation (fastlr: ``DaskBackend.loss_grad``; dask-ml: the closure dask-glm hands to
scipy's ``fmin_l_bfgs_b``) in a separate, untimed fit; ``bytes/eval`` is the median over
its evaluations, less the traffic of one bare reading. ``whole fit`` is the count over
that entire fit (setup, label handling, persisting and checking included).

Times are wall-clock seconds of ``fit`` alone, the data already persisted on the
workers, median of ``--repeat`` fits (the machine may be shared: the load average is
recorded with each row); the first fit of each library on each cluster is a warm-up
(imports, Numba cache load) and is not reported. Results are printed as a table and written as JSON.
"""

import argparse
import json
import statistics
import os
import platform
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/benchmarks as "benchmarks"
from benchmarks.dask_common import (  # noqa: E402
    C, FITTERS, EvalBytes, cluster_bytes, install_byte_counter, local_cluster, make_data,
    payload_bytes_per_eval, reference_objective,
)

TOLS = (1e-5, 1e-7)


def run(args):
    import dask
    import distributed

    from fastlr.peers import objective

    install_byte_counter()
    results = {"machine": machine(), "args": vars(args), "C": C, "runs": []}
    f_star = None
    for n_workers in args.workers:
        with local_cluster(n_workers, args.memory_limit) as cluster, \
                distributed.Client(cluster) as client:
            client.run(install_byte_counter)
            X, y = make_data(args.n, args.d, args.chunks)
            X, y = client.persist([X, y])
            distributed.wait([X, y])
            if f_star is None:
                Xl, yl = dask.compute(X, y)
                f_star = reference_objective(Xl, yl)
                results["f_star"] = f_star
            for name, fit in FITTERS.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit(X, y, TOLS[0])  # warm-up
                    counter = EvalBytes(client)
                    counter.calibrate()
                    b0 = cluster_bytes(client)
                    fit(X, y, TOLS[0], counter)  # bytes, in a fit of its own (untimed)
                    fit_bytes = cluster_bytes(client) - b0
                    for tol in TOLS:
                        times = []
                        for _ in range(args.repeat):
                            runtime, coef, n_iter, n_evals = fit(X, y, tol)
                            times.append(runtime)
                        value = objective(Xl, yl, coef, 0.0, C)
                        row = dict(library=name, workers=n_workers, tol=tol, time=statistics.median(times),
                                   times=times, objective=value, gap=(value - f_star) / abs(f_star),
                                   n_iter=n_iter, n_evals=n_evals,
                                   bytes_per_eval=counter.median,
                                   bytes_per_eval_all=counter.per_call,
                                   bytes_whole_fit=fit_bytes, load_avg=os.getloadavg()[0])
                        if name == "fastlr-dask":
                            out, back = payload_bytes_per_eval(len(X.chunks[0]), X.shape[1])
                            row["payload_bytes_per_eval"] = out + back
                        results["runs"].append(row)
                        print(f"{name:12s} workers={n_workers} tol={tol:.0e}  {statistics.median(times):7.3f} s  "
                              f"(of {', '.join(f'{t:.2f}' for t in times)})  gap {row['gap']:.1e}  "
                              f"iters {n_iter:3d}  evals {n_evals:3d}  "
                              f"{row['bytes_per_eval'] / 1e3:8.1f} kB/eval  "
                              f"load {row['load_avg']:.1f}", flush=True)
    return results


def machine():
    import dask
    import numba

    try:
        import dask_ml
        dask_ml_version = dask_ml.__version__
    except ImportError:
        dask_ml_version = None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "dask": dask.__version__,
            "dask_ml": dask_ml_version, "load_avg_at_start": os.getloadavg()}


def print_table(results):
    print(f"\nF* = {results['f_star']:.10g} (C Σ loss + ½‖w‖², no intercept)\n")
    print("library       workers  tol      time (s)   gap to F*   iters  evals   bytes/eval   whole fit")
    for r in results["runs"]:
        print(f"{r['library']:12s}  {r['workers']:7d}  {r['tol']:.0e}  {r['time']:8.3f}   "
              f"{r['gap']:9.1e}   {r['n_iter']:5d}  {r['n_evals']:5d}   {r['bytes_per_eval'] / 1e3:7.1f} kB"
              f"   {r['bytes_whole_fit'] / 1e6:6.2f} MB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=8, help="row blocks (partitions)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--memory-limit", default="4GiB", help="per worker")
    parser.add_argument("--repeat", type=int, default=3, help="timed fits per setting (median reported)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    results = run(args)
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
