"""Concurrency and memory soak: many fits in threads, in processes, under every threading layer.

Scaled down by default (about half a minute in all); ``FASTLR_SOAK=1`` runs the
full size of the README's Reliability section: 8 threads × 25 fits, 4 processes
× 25 fits, 8 threads × 25 fits under each Numba threading layer that loads, and
1,000 fit + predict cycles with resident memory held flat.

    FASTLR_SOAK=1 python -m pytest tests/test_soak.py -v -s -n 0

"Identical" means bitwise: the kernels sum in a fixed order whatever the
thread count, so a fit gives the same bits in a thread, a process or serially.
"""

import gc
import multiprocessing
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from _budget import SOAK, soak
from _soak_jobs import run_job, run_jobs_in_threads, same

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def test_threads_give_the_serial_results():
    n_threads, fits = soak(8, 8), soak(25, 3)
    start = time.perf_counter()
    assert run_jobs_in_threads(n_threads, fits) == 0
    print(f"\n{n_threads} threads x {fits} fits: identical to serial in {time.perf_counter() - start:.1f} s")


def _init_child(path):
    sys.path[:0] = path


def test_processes_give_the_serial_results():
    n_procs, fits = soak(4, 2), soak(25, 3)
    jobs = list(range(n_procs * fits))
    start = time.perf_counter()
    serial = [run_job(i) for i in jobs]
    # spawn, not fork: forking a process whose Numba thread pool is running is unsafe
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n_procs, mp_context=ctx, initializer=_init_child,
                             initargs=([ROOT, TESTS],)) as pool:
        parallel = list(pool.map(run_job, jobs))
    assert all(same(a, b) for a, b in zip(serial, parallel))
    print(f"\n{n_procs} processes x {fits} fits: identical to serial in {time.perf_counter() - start:.1f} s")


@pytest.mark.parametrize("layer", ["tbb", "omp", "workqueue"])
def test_threads_under_every_threading_layer(layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer,
               PYTHONPATH=os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]))
    n_threads, fits = soak(8, 4), soak(25, 1)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(TESTS, "_soak_jobs.py"), str(n_threads), str(fits)],
                            env=env, capture_output=True, text=True, timeout=900 if SOAK else 300)
    if result.returncode == 3:
        pytest.skip(f"threading layer {layer!r} cannot be loaded here: {result.stdout.strip()[:200]}")
    assert result.returncode == 0, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert f"layer {layer} mismatches 0" in result.stdout
    print(f"\n{layer}: {n_threads} threads x {fits} fits identical to serial in "
          f"{time.perf_counter() - start:.1f} s")


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_memory_stays_flat_over_many_fits():
    """Resident memory after ``cycles`` fit + predict cycles is within a small bound of the warm-up's."""
    from fastlr import LogisticRegression

    cycles = soak(1000, 100)
    bound_mib = 20.0 if SOAK else 12.0
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 10))
    y = (X[:, 0] + rng.standard_normal(2000) > 0).astype(int)
    X32 = X.astype(np.float32)
    y3 = rng.integers(0, 3, 2000)
    configs = [dict(solver="lbfgs"), dict(solver="gd", max_iter=10), dict(solver="sgd", max_iter=2, tol=None),
               dict(solver="lbfgs", loss="prob_squared")]

    def cycle(i):
        params = configs[i % len(configs)]
        data = [(X, y), (X32, y), (X, y3)][i % 3]
        model = LogisticRegression(random_state=i, **params).fit(*data)
        model.predict_proba(data[0])
        model.predict(data[0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(24):  # warm-up: compile/load kernels, fill allocator pools
            cycle(i)
        gc.collect()
        before = _rss_mib()
        start = time.perf_counter()
        for i in range(cycles):
            cycle(i)
        gc.collect()
        after = _rss_mib()
    growth = after - before
    print(f"\n{cycles} fit+predict cycles in {time.perf_counter() - start:.1f} s: "
          f"RSS {before:.1f} -> {after:.1f} MiB (growth {growth:+.2f} MiB, bound {bound_mib} MiB)")
    assert growth < bound_mib
