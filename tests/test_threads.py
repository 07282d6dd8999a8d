"""Thread pools (fastlr._threads), serial kernels for small problems, label encoding, the matrix."""

import gzip
import os
import subprocess
import sys
import threading
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np
import pytest

import fastlr
from fastlr import LogisticRegression
from fastlr.backends import cpu as cpu_backend
from fastlr._labels import classes_and_codes, encode
from fastlr._threads import fastlr_threads
from fastlr.bench import make_problem
from fastlr._math import LOG

threadpoolctl = pytest.importorskip("threadpoolctl")


def _tbb_installed():
    try:
        distribution("tbb")
        return True
    except PackageNotFoundError:
        return False


def _python(code, **env):
    full_env = {**os.environ, **env}
    for key, value in env.items():
        if value is None:
            full_env.pop(key)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=full_env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# -- threading layer ----------------------------------------------------------------------

@pytest.mark.skipif(not _tbb_installed() or not sys.platform.startswith("linux"),
                    reason="the tbb wheel is not installed (or not Linux)")
def test_tbb_layer_loads_in_a_plain_venv():
    code = ("import fastlr, numba\n"
            "from fastlr.kernels import cpu\n"
            "cpu.parallel_guard()\n"
            "print(numba.threading_layer())\n"
            "print(fastlr._threads.tbb_preload)")
    layer, how = _python(code, NUMBA_THREADING_LAYER=None).splitlines()
    assert layer == "tbb", how


def test_a_layer_the_user_chose_is_left_alone():
    code = ("import fastlr, numba\n"
            "from fastlr.kernels import cpu\n"
            "cpu.parallel_guard()\n"
            "print(numba.threading_layer())\n"
            "print(fastlr._threads.tbb_preload)")
    layer, how = _python(code, NUMBA_THREADING_LAYER="workqueue").splitlines()
    assert layer == "workqueue"
    assert "skipped" in how


# -- other libraries' pools ---------------------------------------------------------------

def _blas_threads():
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_blas_pools_are_limited_while_fastlr_runs_and_restored_after():
    before = _blas_threads()
    seen = []

    def callback(info):
        seen.append(_blas_threads())

    X, y = make_problem(3000, 5, dtype="float64")
    LogisticRegression(callback=callback).fit(X, y)
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert _blas_threads() == before


def test_limits_are_restored_only_when_the_last_concurrent_call_ends():
    # (Limits are set by the first caller: OpenBLAS 0.3.30 ignores openblas_set_num_threads
    # from another thread once the main thread has called it, so the main thread enters first.)
    before = _blas_threads()
    seen = []

    def other():
        with fastlr_threads():
            seen.append(_blas_threads())

    with fastlr_threads():
        t = threading.Thread(target=other)
        t.start()
        t.join()  # the other call ended first: the limits stay for this one
        seen.append(_blas_threads())
    assert seen == [[1] * len(before)] * 2
    assert _blas_threads() == before


def test_concurrent_calls_share_numba_threads():
    import numba
    total = numba.config.NUMBA_NUM_THREADS
    inside, release = threading.Event(), threading.Event()
    counts = {}

    def first():
        with fastlr_threads():
            counts["first"] = numba.get_num_threads()
            inside.set()
            release.wait(30)

    t = threading.Thread(target=first)
    t.start()
    inside.wait(30)
    with fastlr_threads():
        counts["second"] = numba.get_num_threads()
    release.set()
    t.join()
    assert counts["first"] == total
    assert counts["second"] == max(1, total // 2)
    assert numba.get_num_threads() == total  # this thread's count is restored


def _numba_threads_in_fit(seed):
    import numba
    seen = []
    X, y = make_problem(5000, 4, dtype="float64", seed=seed)
    LogisticRegression(callback=lambda info: seen.append(numba.get_num_threads())).fit(X, y)
    return max(seen), numba.config.NUMBA_NUM_THREADS


def test_joblib_workers_do_not_multiply_threads():
    joblib = pytest.importorskip("joblib")
    results = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_numba_threads_in_fit)(seed) for seed in range(2))
    cpus = os.cpu_count()
    for used, configured in results:
        # loky gives each of 2 workers cpu_count // 2 threads (NUMBA_NUM_THREADS included)
        assert used <= max(1, cpus // 2) and configured <= max(1, cpus // 2)


# -- serial kernels for small problems ----------------------------------------------------

@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_serial_kernels_are_bitwise_the_parallel_ones(k, dtype):
    from fastlr.kernels import cpu
    X, y = make_problem(9000, 7, classes=2 if k == 1 else k, dtype=dtype, seed=5)  # 5 chunks
    sw = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    W = np.random.default_rng(1).standard_normal((k, 7)) * 0.3
    b = np.linspace(-0.2, 0.2, k)
    for weights in (np.empty(0), sw):
        if k == 1:
            par = cpu.binary_loss_grad(X, y, weights, W[0], b[0], LOG)
            ser = cpu_backend._binary_loss_grad_serial(X, y, weights, W[0], b[0], LOG)
        else:
            par = cpu.multinomial_loss_grad(X, y, weights, W, b, LOG)
            ser = cpu_backend._multinomial_loss_grad_serial(X, y, weights, W, b, LOG)
        assert np.array_equal(par, ser)
    assert np.array_equal(cpu.decision_function(X, W, b),
                          cpu_backend._decision_function_serial(X, W, b))


def test_fit_is_the_same_on_either_side_of_the_parallel_threshold(monkeypatch):
    X, y = make_problem(5000, 6, dtype="float64", seed=2)
    serial = LogisticRegression().fit(X, y)
    monkeypatch.setattr(cpu_backend, "PARALLEL_MIN_WORK", 0)
    parallel = LogisticRegression().fit(X, y)
    assert np.array_equal(serial.coef_, parallel.coef_)
    assert np.array_equal(serial.predict_proba(X), parallel.predict_proba(X))


# -- labels ---------------------------------------------------------------------------------

LABELS = [
    np.array([0, 1, 1, 0, 2]),
    np.array([3, 7, 3, 5], dtype=np.uint16),
    np.array([-4, 2, 2, -4, 0], dtype=np.int8),
    np.array([True, False, True]),
    np.array([True, True]),                    # bools of one value: no False class
    np.array([False, False, False]),
    np.array([-1, 1, 1, -1], dtype=np.int64),  # two values two apart: 0 is not a class
    np.array([6, 5, 6], dtype=np.int32),       # two adjacent values: no counting pass
    np.array([4, 4]),                          # one value
    np.array([2 ** 40, 5, 5]),                 # wide range: the sorting path
    np.array([1.0, 2.0, 1.0]),                 # floats: scikit-learn's path
    np.array(["b", "a", "b"]),
]


@pytest.mark.parametrize("y", LABELS, ids=lambda y: f"{y.dtype}-{y.tolist()[:3]}")
def test_labels_are_encoded_as_np_unique_does(y):
    classes, codes = classes_and_codes(y)
    expected_classes, expected_codes = np.unique(y, return_inverse=True)
    assert classes.dtype == expected_classes.dtype
    assert np.array_equal(classes, expected_classes)
    assert codes.dtype == np.int32 and np.array_equal(codes, expected_codes)
    assert np.array_equal(encode(y, classes), expected_codes)


def test_random_integer_labels_match_np_unique():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lo = int(rng.integers(-50, 50))
        y = rng.integers(lo, lo + int(rng.integers(1, 40)), size=int(rng.integers(1, 300)))
        classes, codes = classes_and_codes(y)
        ref_classes, ref_codes = np.unique(y, return_inverse=True)
        assert np.array_equal(classes, ref_classes) and np.array_equal(codes, ref_codes)


def test_unknown_labels_are_named():
    with pytest.raises(ValueError, match=r"not in classes_ \[1, 2\]: \[9\]"):
        encode(np.array([1, 2, 9]), np.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[0\]"):
        encode(np.array([0, 1, 2]), np.array([1, 2]))


def test_continuous_targets_are_still_rejected():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(X, np.linspace(0, 1, 10))


# -- predict finds NaN/inf from the scores -------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_predict_rejects_non_finite_x(value):
    X, y = make_problem(500, 3, dtype="float64")
    model = LogisticRegression().fit(X, y)
    bad = X.copy()
    bad[7, 1] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        model.predict(bad)


# -- the workload matrix --------------------------------------------------------------------

def test_matrix_runs_fastlr_and_a_peer_on_the_same_objective():
    from fastlr.matrix import format_matrix, run_matrix
    result = run_matrix(["iris", "breast-cancer-std"], ["fastlr-lbfgs", "sklearn-lbfgs", "glum"],
                        repeat=1)
    iris, cancer = result["rows"]
    assert iris["shape"] == [150, 4] and iris["classes"] == 3
    assert {r["peer"] for r in cancer["results"]} >= {"fastlr-lbfgs", "sklearn-lbfgs"}
    for row in result["rows"]:
        gaps = [r["gap"] for r in row["results"]]
        assert min(gaps) == 0.0 and max(gaps) < 1e-3  # same objective, default tolerances
        fast = next(r for r in row["results"] if r["peer"] == "fastlr-lbfgs")
        assert fast["ratio"] == 1.0
    # glum is binary only: skipped with the reason on iris
    assert any(s["peer"] == "glum" for s in iris["skipped"]) or "glum" not in fastlr.peers.available_peers()
    table = format_matrix(result)
    assert "| iris (150×4, 3 cl.) |" in table


def test_fashion_mnist_idx_files_are_read(tmp_path, monkeypatch):
    from fastlr import matrix
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12, dtype=np.uint8)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (12, 28, 28))
                + images.tobytes())
    with open(tmp_path / "train-labels-idx1-ubyte", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (12).to_bytes(4, "big") + labels.tobytes())
    monkeypatch.setenv("FASTLR_FASHION_MNIST", str(tmp_path))
    X, y, description = matrix._fashion_mnist()
    assert "Fashion-MNIST training set" in description
    assert X.dtype == np.float32 and X.shape == (12, 784)
    np.testing.assert_array_equal(X, images.reshape(12, 784) / np.float32(255))
    np.testing.assert_array_equal(y, labels)


def test_cli_bench_matrix():
    out = subprocess.run([sys.executable, "-m", "fastlr.cli", "bench", "--matrix", "--workloads",
                          "iris", "--peers", "sklearn-lbfgs", "--repeat", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    out = out.stdout
    assert "| iris (150×4, 3 cl.) |" in out and "sklearn-lbfgs" in out


def test_info_reports_layer_and_pools():
    out = subprocess.run([sys.executable, "-m", "fastlr.cli", "info"], capture_output=True,
                         text=True, timeout=300).stdout
    assert "threading    layer" in out and "TBB:" in out
    assert "thread pool  blas" in out
