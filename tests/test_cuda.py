"""The cuda backend against the numpy reference backend and the CPU backend.

Without a GPU (conftest.py sets NUMBA_ENABLE_CUDASIM=1) these run under numba's
CUDA simulator, which runs each GPU thread as a Python thread: shapes stay
tiny there. On a machine with a GPU the same tests run on the device, and the
ones marked ``gpu_only`` add realistic shapes.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

from numba import config  # noqa: E402

import fastlr  # noqa: E402
from fastlr.backends import cuda as backend_cuda  # noqa: E402
from fastlr._math import LOG, SQUARED  # noqa: E402
from fastlr.backends import NumpyBackend, SGDSchedule, auto_backend, get_backend  # noqa: E402
from reference import assert_fits_agree, fit_gap_bound, float32_sum_bound  # noqa: E402

SIM = bool(config.ENABLE_CUDASIM)
gpu_only = pytest.mark.skipif(SIM, reason="realistic shapes need a real GPU (simulator is too slow)")

# (n, d, k): group sizes G = 4, 8 and 32 (two columns per lane), n not a multiple of anything
SHAPES = [(37, 3, 1), (29, 5, 3), (23, 33, 1)]


def problem(n, d, k, dtype, weighted, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, max(k, 2), n).astype(np.int32)
    W = rng.standard_normal((k, d)) * 0.4
    b = rng.standard_normal(k) * 0.2
    sw = rng.uniform(0.2, 3.0, n) if weighted else None
    return X, y, W, b, sw


def rtol(dtype):
    # float32 kernels compute in float32 end to end (partial sums of groups, then float64)
    return 2e-5 if dtype == np.float32 else 1e-11


def assert_sums_close(got, ref, dtype):
    (l1, g1), (l0, g0) = got, ref
    tol = rtol(dtype)
    np.testing.assert_allclose(l1, l0, rtol=tol)
    np.testing.assert_allclose(g1, g0, rtol=tol, atol=tol * np.max(np.abs(g0)))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss_id", [LOG, SQUARED], ids=["log", "squared"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"n={s[0]},d={s[1]},k={s[2]}")
def test_loss_grad_matches_numpy_backend(shape, dtype, loss_id, weighted):
    X, y, W, b, sw = problem(*shape, dtype, weighted)
    cuda, ref = get_backend("cuda"), NumpyBackend()
    got = cuda.loss_grad(cuda.put(X, y, sw), W, b, loss_id)
    assert got[1].shape == (shape[2], shape[1] + 1)
    assert_sums_close(got, ref.loss_grad(ref.put(X, y, sw), W, b, loss_id), dtype)


def test_loss_grad_is_deterministic_and_data_stays_on_the_device():
    X, y, W, b, sw = problem(41, 6, 1, np.float32, True)
    backend = get_backend("cuda")
    data = backend.put(X, y, sw)
    first = backend.loss_grad(data, W, b, LOG)
    second = backend.loss_grad(data, W * 1.0, b * 1.0, LOG)
    assert first[0] == second[0] and np.array_equal(first[1], second[1])
    assert data.X.shape == X.shape and data.X.dtype == X.dtype  # float32 stays float32
    assert not isinstance(data.X, np.ndarray)


def test_public_loss_grad_with_cuda_backend():
    X, y, W, b, _ = problem(30, 4, 1, np.float64, False)
    got = fastlr.loss_grad(X, y, W[0], float(b[0]), backend="cuda")
    ref = fastlr.loss_grad(X, y, W[0], float(b[0]), backend="numpy")
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-10, atol=1e-14)


def test_nan_in_X_is_reported():
    X, y, W, b, _ = problem(20, 3, 1, np.float64, False)
    X[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastlr.loss_grad(X, y, W[0], backend="cuda")


def test_float32_score_overflow_is_named_not_called_nan():
    """Finite float32 X whose products overflow float32 but cancel: the cuda kernels compute in
    float32 and cannot give the exact loss, so they must say that x·w overflowed float32 (and how
    to get the exact value), never "X contains NaN"; the cpu backend rescales and is exact."""
    X = np.array([[3e38, -3e38], [1.0, 2.0]], dtype=np.float32)
    y, w = [1, 0], [2.0, 2.0]
    with pytest.raises(FloatingPointError, match=r"overflowed float32.*backend='cpu'") as info:
        fastlr.loss_grad(X, y, w, backend="cuda")
    assert "contains NaN" not in str(info.value)
    exact = fastlr.loss_grad(X.astype(np.float64), y, w, backend="numpy")
    cpu = fastlr.loss_grad(X, y, w, backend="cpu")
    assert np.isfinite(cpu[0]) and cpu[0] == pytest.approx(exact[0], rel=1e-12)


def test_float32_loss_beyond_float32_rounds_to_inf_on_cuda():
    """A finite float32 X whose exact loss (6e38) exceeds float32: the cuda result is that loss
    rounded to float32 (+inf), with the gradient finite and equal to the exact one."""
    X = np.array([[3e38, 3e38]], dtype=np.float32)
    loss, grad, g0 = fastlr.loss_grad(X, [0], [1.0, 1.0], backend="cuda")
    exact = fastlr.loss_grad(X.astype(np.float64), [0], [1.0, 1.0], backend="numpy")
    assert loss == np.inf and exact[0] > np.finfo(np.float32).max
    np.testing.assert_allclose(grad, exact[1], rtol=1e-6)  # float32 rounding of x
    assert g0 == exact[2]



@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_decision_function_matches_numpy(k):
    X, _, W, b, _ = problem(45, 5, k, np.float64, False)
    got = get_backend("cuda").decision_function(X, W, b)
    np.testing.assert_allclose(got, X @ W.T + b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gather", [False, True], ids=["contiguous", "gathered"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("k,loss_id", [(1, LOG), (1, SQUARED), (3, LOG)], ids=["binary-log", "binary-squared", "multinomial-log"])
def test_sgd_epoch_matches_numpy_backend(k, loss_id, weighted, gather):
    rng = np.random.default_rng(1)
    X, y, _, _, sw = problem(45, 4, k, np.float64, weighted, seed=2)
    batch_size = 8
    order = rng.permutation(-(-45 // batch_size))
    rows = rng.permutation(45) if gather else None
    schedule = SGDSchedule(alpha=1e-2, fit_intercept=True, eta0=0.3, power_t=0.5, step0=2,
                           batch_size=batch_size)
    results = []
    for backend in (get_backend("cuda"), NumpyBackend()):
        W, b = np.zeros((k, 4)), np.zeros(k)
        loss_sum, steps = backend.sgd_epoch(backend.put(X, y, sw), W, b, loss_id, schedule, order, rows)
        results.append((loss_sum, steps, W, b))
    (l1, s1, W1, b1), (l0, s0, W0, b0) = results
    assert s1 == s0 == len(order)
    np.testing.assert_allclose(l1, l0, rtol=1e-11)
    np.testing.assert_allclose(W1, W0, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(b1, b0, rtol=1e-10, atol=1e-13)


def test_sgd_epoch_stops_before_a_non_finite_step():
    X, y, _, _, _ = problem(24, 3, 1, np.float64, False)
    X[:8] *= 1e200  # the first batch's gradient overflows the coefficients
    schedule = SGDSchedule(alpha=0.0, fit_intercept=True, eta0=1e200, power_t=0.0, step0=0,
                           batch_size=8)
    order = np.array([1, 0, 2])
    results = []
    for backend in (get_backend("cuda"), NumpyBackend()):
        W, b = np.zeros((1, 3)), np.zeros(1)
        _, steps = backend.sgd_epoch(backend.put(X, y), W, b, LOG, schedule, order)
        results.append((steps, W, b))
    assert results[0][0] == results[1][0] < len(order)
    assert np.all(np.isfinite(results[0][1]))
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
def test_estimator_on_cuda_equals_cpu(solver):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.3 * rng.standard_normal(40) > 0).astype(int)
    # lbfgs to a tight tol: the GPU sums in another order, which can move the stopping
    # iteration of a loose-tol run; gd and sgd follow a fixed path of 4 stable steps
    params = dict(solver=solver, C=1.0, random_state=0, tol=1e-8)
    if solver != "lbfgs":
        params.update(max_iter=4, tol=None, batch_size=16, eta0=0.5)
    cuda = fastlr.LogisticRegression(backend="cuda", **params).fit(X, y)
    cpu = fastlr.LogisticRegression(backend="cpu", **params).fit(X, y)
    assert cuda.backend_ == "cuda"
    if solver == "lbfgs":
        assert_fits_agree(cuda, cpu, X, y, tol=1e-8, tol_b=1e-8)
    else:
        np.testing.assert_allclose(cuda.coef_, cpu.coef_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(cuda.intercept_, cpu.intercept_, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(cuda.predict(X), cpu.predict(X))
    np.testing.assert_allclose(cuda.predict_proba(X), cpu.predict_proba(X), rtol=1e-6)


def test_estimator_multinomial_float32_squared_loss():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((36, 4)).astype(np.float32)
    y = rng.integers(0, 3, 36)
    sw = rng.uniform(0.5, 2.0, 36)
    params = dict(loss="prob_squared", solver="gd", max_iter=3, tol=None, eta0=0.5)
    cuda = fastlr.LogisticRegression(backend="cuda", **params).fit(X, y, sample_weight=sw)
    ref = fastlr.LogisticRegression(backend="numpy", **params).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(cuda.coef_, ref.coef_, rtol=1e-4, atol=1e-6)


def test_auto_prefers_a_usable_gpu_and_says_why():
    name, reason = auto_backend()
    usable, detail = backend_cuda.usable()
    assert name == ("cuda" if usable else "cpu")
    assert detail in reason
    if SIM:
        assert name == "cpu" and "simulator" in reason
    model = fastlr.LogisticRegression(backend="auto", max_iter=5).fit(*problem(20, 2, 1, np.float64, False)[:2])
    assert model.backend_ == name


def test_info_reports_the_auto_choice():
    from fastlr.cli import run_info
    import io
    out = io.StringIO()
    run_info(file=out)
    name, reason = auto_backend()
    assert f"auto -> {name}" in out.getvalue() and reason in out.getvalue()


# -- device memory and device arrays ----------------------------------------------------------

def test_out_of_memory_is_a_clear_error(monkeypatch):
    X, y, _, _, _ = problem(10, 3, 1, np.float32, False)
    monkeypatch.setattr(backend_cuda, "_free_bytes", lambda cuda: 64.0)
    with pytest.raises(backend_cuda.DeviceMemoryError, match=r"needs 0\.00 GiB .*X \(10 × 3 float32\).*partial_fit.*backend='cpu'"):
        fastlr.LogisticRegression(backend="cuda").fit(X, y)
    assert issubclass(backend_cuda.DeviceMemoryError, MemoryError)


def test_driver_out_of_memory_is_translated(monkeypatch):
    backend = get_backend("cuda")

    def failing_to_device(array):
        raise RuntimeError("[2] Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY")
    monkeypatch.setattr(backend.cuda, "to_device", failing_to_device)
    with pytest.raises(backend_cuda.DeviceMemoryError, match="partial_fit"):
        backend.put(np.zeros((4, 2)), np.zeros(4, np.int32))


class FakeDeviceArray:
    """Only the metadata of ``__cuda_array_interface__`` (what validation looks at)."""

    def __init__(self, shape, typestr, strides=None):
        self.shape = shape
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "strides": strides,
                                         "data": (0, False), "version": 3}


@pytest.mark.parametrize("array,match", [
    (FakeDeviceArray((3,), "<f4"), "2-D"),
    (FakeDeviceArray((0, 3), "<f4"), "at least 1 sample"),
    (FakeDeviceArray((4, 3), "<i8"), "float32 or float64"),
    (FakeDeviceArray((4, 3), "<f4", strides=(4, 16)), "C-contiguous"),
], ids=["1-D", "empty", "int64", "fortran"])
def test_device_arrays_are_validated_without_touching_them(array, match):
    with pytest.raises(ValueError, match=match):
        fastlr.LogisticRegression(backend="cuda").fit(array, np.zeros(array.shape[0]))


def test_c_contiguous_device_array_passes_validation():
    from fastlr._validation import check_features
    array = FakeDeviceArray((4, 3), "<f4", strides=(12, 4))
    assert check_features(array) is array  # neither copied nor read


@gpu_only
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_gpu_arrays_are_used_without_a_copy(library):
    X, y, _, _, _ = problem(5000, 16, 1, np.float32, False)
    if library == "cupy":
        cp = pytest.importorskip("cupy")
        X_dev = cp.asarray(X)
    else:
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch without CUDA")
        X_dev = torch.as_tensor(X, device="cuda")
    backend = get_backend("cuda")
    data = backend.put(X_dev, y)
    assert data.X.__cuda_array_interface__["data"][0] == X_dev.__cuda_array_interface__["data"][0]
    # float32 on two devices: each fit to a tol float32 scores can reach, then compared by
    # the bound from their float64 reference gradients (the GPU fit's own gradient is not
    # checked against tol: its float32 group sums round more than the CPU kernel's)
    model = fastlr.LogisticRegression(backend="cuda", tol=2e-5).fit(X_dev, y)
    ref = fastlr.LogisticRegression(backend="cpu", tol=2e-5).fit(X, y)
    pa, pb = assert_fits_agree(model, ref, X, y, tol_b=2e-5)
    # predictions: only rows whose score is further from 0 than the scores can move
    X64 = X.astype(np.float64)
    margin = np.abs(ref.decision_function(X))
    rounding = 2 * float32_sum_bound(np.abs(X64) @ np.abs(ref.coef_[0]) + abs(ref.intercept_[0]), X.shape[1] + 2)
    sure = margin > np.sqrt((X64 ** 2).sum(axis=1) + 1) * fit_gap_bound([pa, pb]) + rounding
    assert sure.mean() > 0.9
    np.testing.assert_array_equal(np.asarray(model.predict(X_dev))[sure], ref.predict(X)[sure])


# -- realistic shapes on a GPU ------------------------------------------------------------------

@gpu_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(3 * 4096 + 17, 256, 1), (20000, 64, 10), (9999, 1000, 1), (5000, 1, 1)],
                         ids=lambda s: f"n={s[0]},d={s[1]},k={s[2]}")
def test_realistic_shapes_match_numpy_backend(shape, dtype):
    X, y, W, b, sw = problem(*shape, dtype, True)
    W /= np.sqrt(shape[1])
    cuda, ref = get_backend("cuda"), NumpyBackend()
    for loss_id in (LOG, SQUARED):
        got = cuda.loss_grad(cuda.put(X, y, sw), W, b, loss_id)
        assert_sums_close(got, ref.loss_grad(ref.put(X, y, sw), W, b, loss_id), dtype)


@gpu_only
def test_gpu_lbfgs_fit_reaches_the_cpu_objective():
    from fastlr.peers import objective
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200_000, 64)).astype(np.float32)
    y = (X @ rng.standard_normal(64) + rng.standard_normal(200_000) > 0).astype(int)
    gpu = fastlr.LogisticRegression(backend="cuda", tol=1e-6).fit(X, y)
    cpu = fastlr.LogisticRegression(backend="cpu", tol=1e-6).fit(X, y)
    f_gpu = objective(X, y, gpu.coef_, gpu.intercept_, C=1.0)
    f_cpu = objective(X, y, cpu.coef_, cpu.intercept_, C=1.0)
    assert f_gpu <= f_cpu * (1 + 1e-6)


# -- float32 kernels contain no float64 arithmetic ---------------------------------------------

PTX_CHECK = textwrap.dedent("""
    import types as pytypes
    import numpy as np
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda, types as t
    # Device functions are compiled for "the current device": name one, so no driver is needed.
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(9, 0))
    from fastlr.kernels import cuda as kc
    f32, i64 = t.float32, t.int64
    A2, A1 = t.Array(f32, 2, "C"), t.Array(f32, 1, "C")
    I1, L1 = t.Array(t.int32, 1, "C"), t.Array(t.int64, 1, "C")
    signatures = {
        "partials": (A2, I1, A1, L1, i64, i64, i64, A2, A1, i64, A2),
        "sgd_epoch": (A2, I1, A1, L1, L1, i64, A2, A1, i64, f32, t.boolean, f32, f32, i64, f32,
                      A2, A2, A1),
        "scores": (A2, A2, A1, A2),
    }
    for d, k in [(1, 1), (64, 1), (256, 1), (5, 3), (100, 10)]:
        K = kc.kernels(np.dtype(np.float32), d, k, hardware=True)
        for name, signature in signatures.items():
            threads = kc.SGD_THREADS if name == "sgd_epoch" else kc.THREADS
            ptx, _ = cuda.compile_ptx(getattr(K, name).py_func, signature, cc=(9, 0),
                                      launch_bounds=threads)
            f64 = [line.strip() for line in ptx.splitlines() if ".f64" in line]
            assert "shfl.sync" in ptx or d == 1, (d, k, name, "no warp shuffle")
            assert f".maxntid {threads}" in ptx, (d, k, name, "no launch bounds")
            print(d, k, name, len(f64), f64[:3])
""")


def _env_without_simulator():
    """This process's environment for a child that sees the real driver: no CUDA simulator,
    and this checkout of fastlr first on its path."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(fastlr.__file__)),
                                         env.get("PYTHONPATH", "")])
    return env


def test_float32_kernels_compile_to_ptx_without_f64():
    env = _env_without_simulator()
    probe = subprocess.run([sys.executable, "-c", "from numba import cuda; from numba.cuda.cudadrv "
                            "import nvvm; nvvm.NVVM()"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("NVVM (the CUDA compiler) is not installed: pip install 'numba-cuda[cu13]'")
    run = subprocess.run([sys.executable, "-c", PTX_CHECK], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 15
    for line in lines:
        d, k, name, n_f64 = line.split()[:4]
        assert n_f64 == "0", f"float64 instructions in the float32 {name} kernel (d={d}, k={k}): {line}"


def test_cuda_backend_without_a_gpu_is_one_clear_error():
    """backend="cuda" where no GPU can run the kernels: a one-line ValueError, not numba's driver error."""
    env = _env_without_simulator()
    code = ("import numpy as np, fastlr\n"
            "ok, why = fastlr.backends.cuda.usable()\n"
            "print('usable' if ok else 'unusable')\n"
            "try:\n"
            "    fastlr.LogisticRegression(backend='cuda').fit(np.eye(4), [0, 1, 0, 1])\n"
            "except ValueError as exc:\n"
            "    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    if lines[0] == "usable":
        pytest.skip("a GPU is usable here")
    assert len(lines) == 2, run.stdout
    assert lines[1].startswith("backend='cuda': no usable GPU here (") and "backend='cpu'" in lines[1]
