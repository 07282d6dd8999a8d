"""Fits in several Python threads at once: no crash, no mixed results, any threading layer."""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastlr import LogisticRegression

CONFIGS = [
    dict(solver="lbfgs"),
    dict(solver="lbfgs", loss="prob_squared"),
    dict(solver="gd", learning_rate="backtracking", eta0=1.0, max_iter=50),
    dict(solver="sgd", max_iter=3, tol=None, random_state=0),
]


def datasets():
    rng = np.random.default_rng(0)
    out = []
    for i, k in enumerate([2, 2, 3, 4]):
        X = rng.standard_normal((6000 + 1000 * i, 8)).astype(np.float32 if i % 2 else np.float64)
        y = rng.integers(0, k, len(X))
        out.append((X, y))
    return out


def fit_all(pool_map):
    jobs = [(config, data) for config in CONFIGS for data in datasets()]

    def fit(job):
        config, (X, y) = job
        model = LogisticRegression(**config).fit(X, y)
        return model.coef_, model.intercept_, model.predict_proba(X[:50])

    return list(pool_map(fit, jobs))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_four_threads_give_the_serial_results():
    serial = fit_all(map)
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = fit_all(pool.map)
    for a, b in zip(serial, threaded):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_threaded_fits_survive_every_threading_layer(layer):
    """workqueue aborts the process on concurrent parallel regions unless fastlr serialises them."""
    code = textwrap.dedent("""
        import numpy as np, numba
        from concurrent.futures import ThreadPoolExecutor
        from fastlr import LogisticRegression
        rng = np.random.default_rng(1)
        X = rng.standard_normal((50000, 16)); y = rng.integers(0, 2, 50000)
        def fit(i):
            return LogisticRegression(C=1.0 + i % 3).fit(X, y).coef_
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(fit, range(12)))
        serial = [fit(i) for i in range(12)]
        assert all(np.array_equal(a, b) for a, b in zip(threaded, serial))
        print("layer", numba.threading_layer())
    """)
    env = dict(os.environ)
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    if layer != "default":
        assert f"layer {layer}" in result.stdout
