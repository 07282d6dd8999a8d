"""Kernels against the numpy reference backend, the seed's loop and finite differences."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastlr
import fastlr._math
from fastlr.kernels import cpu
from fastlr.kernels.cpu import CHUNK_ROWS
from reference import assert_cpu_matches_reference, per_thread_count, seed_loss_grad

LOSSES = ["log_loss", "prob_squared"]
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (5, 1), (37, 4), (2 * CHUNK_ROWS + 7, 5)]


@pytest.fixture(params=["tiles", "blas"])
def softmax_path(request, monkeypatch):
    """Each of the cpu backend's two softmax gradient kernels for k >= SOFTMAX_BLAS_MIN_CLASSES,
    whichever this CPU's default is (fastlr.backends.cpu.SOFTMAX_BLAS)."""
    import fastlr.backends.cpu

    monkeypatch.setattr(fastlr.backends.cpu, "SOFTMAX_BLAS", request.param == "blas")
    return request.param


def make_problem(n, d, k, dtype, weighted, seed=0):
    """Random X, labels, coefficients and (optional) weights; k = 1 means binary."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    if k == 1:
        y = rng.integers(0, 2, n)
        coef = rng.standard_normal(d) * 0.5
        intercept = 0.3
    else:
        y = rng.integers(0, k, n)
        coef = rng.standard_normal((k, d)) * 0.5
        intercept = rng.standard_normal(k) * 0.1
    sw = rng.uniform(0.1, 3.0, n) if weighted else None
    return X, y, coef, intercept, sw


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"n={s[0]},d={s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_cpu_matches_numpy_backend(loss, k, dtype, shape, weighted):
    X, y, coef, intercept, sw = make_problem(*shape, k, dtype, weighted)
    cpu = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="cpu")
    ref = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="numpy")
    assert_cpu_matches_reference(cpu, ref, X, coef, intercept, sw)
    assert np.shape(cpu[1]) == np.shape(coef) and np.shape(cpu[2]) == np.shape(intercept)


@pytest.mark.parametrize("shape", [(37, 9), (2 * CHUNK_ROWS + 7, 37)], ids=lambda s: f"n={s[0]},d={s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", [8, 10, 11])
def test_multinomial_kernel_with_several_class_tiles_matches_numpy_backend(k, dtype, shape, softmax_path):
    """k >= 8: two or more 4-class tiles per row tile, and 0-3 classes left over.

    The case that once ran every gradient tile on its scalar fallback (see
    ``_block_grad``); the result must not depend on which path ran.
    """
    X, y, coef, intercept, sw = make_problem(*shape, k, dtype, True, seed=11)
    cpu = fastlr.loss_grad(X, y, coef, intercept, sample_weight=sw, backend="cpu")
    ref = fastlr.loss_grad(X, y, coef, intercept, sample_weight=sw, backend="numpy")
    assert_cpu_matches_reference(cpu, ref, X, coef, intercept, sw)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(1, 3), (5, 1), (23, 4)], ids=lambda s: f"n={s[0]},d={s[1]}")
@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_backends_match_seed_loop(backend, loss, k, shape, weighted):
    X, y, coef, intercept, sw = make_problem(*shape, k, np.float64, weighted, seed=2)
    got = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend=backend)
    ref = seed_loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_matches_central_finite_differences(loss, k):
    X, y, coef, intercept, sw = make_problem(50, 4, k, np.float64, True, seed=3)
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    _, grad_coef, grad_intercept = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw)
    h = 1e-6

    def f(c, b):
        return fastlr.loss_grad(X, y, c, b, loss=loss, sample_weight=sw)[0]

    fd = np.zeros_like(coef)
    for idx in np.ndindex(coef.shape):
        step = np.zeros_like(coef)
        step[idx] = h
        fd[idx] = (f(coef + step, intercept) - f(coef - step, intercept)) / (2 * h)
    np.testing.assert_allclose(grad_coef, fd, rtol=1e-6, atol=1e-8)
    fd_b = np.zeros(np.shape(intercept))
    for idx in np.ndindex(fd_b.shape):
        step = np.zeros(np.shape(intercept))
        step[idx] = h
        fd_b[idx] = (f(coef, intercept + step) - f(coef, intercept - step)) / (2 * h)
    np.testing.assert_allclose(grad_intercept, fd_b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("loss", LOSSES)
def test_extreme_scores_give_finite_exact_values(loss):
    X = np.array([[1.0], [1.0], [-1.0], [-1.0]])
    y = np.array([0, 1, 0, 1])
    for scale in (1e2, 1e3, 1e4):
        cpu = fastlr.loss_grad(X, y, np.array([scale]), 0.0, loss=loss)
        ref = fastlr.loss_grad(X, y, np.array([scale]), 0.0, loss=loss, backend="numpy")
        assert np.isfinite(cpu[0]) and np.all(np.isfinite(cpu[1]))
        np.testing.assert_allclose(cpu[0], ref[0], rtol=1e-14)
        np.testing.assert_allclose(cpu[1], ref[1], rtol=1e-14, atol=1e-300)
    if loss == "log_loss":
        # two of four samples are wrong by a margin of 1e4: mean loss 1e4 / 2
        assert fastlr.loss_grad(X, y, np.array([1e4]), 0.0, loss=loss)[0] == pytest.approx(5e3)


@pytest.mark.slow
def test_float32_gradient_over_a_million_rows_matches_float64_reference():
    n, d = 1_000_000, 16
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.integers(0, 2, n)
    w = rng.standard_normal(d) * 0.3
    got = fastlr.loss_grad(X, y, w, 0.1)
    X64 = X.astype(np.float64)
    z = X64 @ w + 0.1
    p = 1 / (1 + np.exp(-z))
    ref_loss = np.mean(np.logaddexp(0, z) - y * z)
    ref_grad = X64.T @ (p - y) / n
    assert got[0] == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(got[1], ref_grad, rtol=1e-5, atol=1e-5 * np.abs(ref_grad).max())


@pytest.mark.parametrize("loss", ["log_loss", "prob_squared"])
def test_float32_binary_objective_is_resolved_to_float64_rounding(loss):
    """The binary kernel's scores are float64 for float32 X: its loss is the float64
    reference's on the same values (not float32-rounded scores), and a step far below
    float32's resolution of w changes it by the directional derivative, as L-BFGS's
    line search needs near a tight tol."""
    n, d = 20_000, 24
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int32)
    w = rng.standard_normal(d) * 0.3
    loss_id = fastlr._math.LOSS_IDS[loss]
    X64 = X.astype(np.float64)

    def loss_sum(w_):
        z = X64 @ w_ + 0.1
        if loss == "log_loss":
            return float(np.sum(np.logaddexp(0.0, z) - y * z))
        return float(np.sum(0.5 * (1.0 / (1.0 + np.exp(-z)) - y) ** 2))

    got = cpu.binary_loss_grad(X, y, np.empty(0), w, 0.1, loss_id)
    # float64 sums of n terms of size O(1): relative error far below 1e-12
    assert got[d + 1] == pytest.approx(loss_sum(w), rel=1e-12)
    # a step of 1e-10 relative to w: float32-rounded coefficients would not see it at all
    p = rng.standard_normal(d)
    step = 1e-10 * np.linalg.norm(w) / np.linalg.norm(p)
    f0 = got[d + 1]
    f1 = cpu.binary_loss_grad(X, y, np.empty(0), w + step * p, 0.1, loss_id)[d + 1]
    assert np.float32(w + step * p).tobytes() == np.float32(w).tobytes()  # below float32's resolution
    slope = got[:d] @ p  # the gradient sum along p (float32 partials: ~1e-6 relative)
    # the change is |step·slope| ~ 1e-10·‖w‖·|slope|, the loss's float64 rounding ~1e-16·n: the
    # change must match the derivative to what that rounding and the gradient's allow
    assert (f1 - f0) == pytest.approx(step * slope, rel=1e-2)


def test_float32_input_is_not_copied(monkeypatch):
    """The CPU backend hands the caller's float32 buffer to the kernel."""
    from fastlr import backends

    seen = {}
    original = backends.CPUBackend.loss_grad

    def spy(self, data, W, b, loss_id):
        seen["X"] = data.X
        return original(self, data, W, b, loss_id)

    monkeypatch.setattr(backends.CPUBackend, "loss_grad", spy)
    X = np.ones((10, 3), dtype=np.float32)
    fastlr.loss_grad(X, np.zeros(10, int), np.zeros(3))
    assert seen["X"] is X or np.shares_memory(seen["X"], X)
    assert seen["X"].dtype == np.float32


def test_writable_and_read_only_x_reach_the_kernels_as_one_type(tmp_path, monkeypatch):
    """A fit on an array and a fit on its read-only memory map (what ``fastlr train`` reads a
    .npy through) run the same compiled kernels: the backend hands the kernels read-only views
    (no copy), so Numba compiles each kernel once for both, and the fits agree bit for bit."""
    import numba

    from fastlr.backends import cpu as cpu_backend

    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] + 0.5 * rng.standard_normal(300) > 0).astype(int)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert X.flags.writeable and not mapped.flags.writeable
    seen = []
    kernel = cpu_backend._binary_loss_grad_serial  # 300 x 4 is below PARALLEL_MIN_WORK

    def spy(X, *args):
        seen.append((numba.typeof(X), X.ctypes.data))
        return kernel(X, *args)

    monkeypatch.setattr(cpu_backend, "_binary_loss_grad_serial", spy)
    fits = [fastlr.LogisticRegression(solver="lbfgs").fit(data, y) for data in (X, mapped)]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(mapped))
    assert {t for t, _ in seen} == {numba.typeof(mapped)}, seen
    assert {address for _, address in seen} == {X.ctypes.data, mapped.ctypes.data}  # views, no copies
    assert X.flags.writeable  # the caller's array is untouched


@pytest.mark.parametrize("k", [1, 5], ids=["binary", "multinomial"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_bitwise_identical_for_one_and_two_threads(dtype, k):
    _check_bitwise_identical_for_one_and_two_threads(dtype, k)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_bitwise_identical_for_one_and_two_threads_k10(dtype, softmax_path):
    _check_bitwise_identical_for_one_and_two_threads(dtype, 10)


def test_softmax_blas_where_it_pays():
    """The rule of fastlr.backends.cpu.softmax_blas_pays: register tiles on AVX2 + FMA without
    AVX-512 (faster on the Zen 3), BLAS on AVX-512 (faster on the Xeon) and without AVX2."""
    from fastlr.backends.cpu import SOFTMAX_BLAS, numba_target_features, softmax_blas_pays

    assert not softmax_blas_pays({"sse2", "avx", "avx2", "fma"})
    assert softmax_blas_pays({"avx2", "fma", "avx512f", "avx512bw"})
    assert softmax_blas_pays({"sse2"}) and softmax_blas_pays(set())
    assert SOFTMAX_BLAS == softmax_blas_pays(numba_target_features())


def _check_bitwise_identical_for_one_and_two_threads(dtype, k):
    X, y, coef, intercept, sw = make_problem(5 * CHUNK_ROWS + 11, 9, k, dtype, True, seed=5)
    results = per_thread_count(lambda: fastlr.loss_grad(X, y, coef, intercept, sample_weight=sw))
    for other in results[1:]:
        assert other[0] == results[0][0]
        np.testing.assert_array_equal(other[1], results[0][1])
        np.testing.assert_array_equal(other[2], results[0][2])


def test_bitwise_identical_across_processes_with_different_thread_counts():
    code = textwrap.dedent("""
        import numpy as np, fastlr
        rng = np.random.default_rng(6)
        X = rng.standard_normal((20000, 13)).astype(np.float32)
        y = rng.integers(0, 2, 20000)
        loss, g, gb = fastlr.loss_grad(X, y, rng.standard_normal(13), 0.2)
        print(repr(loss), g.tobytes().hex(), repr(gb))
    """)
    outputs = set()
    for threads in ("1", "2"):
        env = {**__import__("os").environ, "NUMBA_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)
        outputs.add(out.stdout)
    assert len(outputs) == 1


@pytest.mark.parametrize("k", [1, 4], ids=["binary", "multinomial"])
@pytest.mark.parametrize("loss", LOSSES)
def test_bitwise_identical_wherever_the_arrays_lie_in_memory(loss, k):
    """Summation order must not depend on addresses (LLVM's runtime alias checks pick paths)."""
    from fastlr import LogisticRegression

    X, y, coef, intercept, sw = make_problem(3 * CHUNK_ROWS + 5, 7, k, np.float32, True, seed=7)
    first = None
    keep = []
    for trial in range(12):
        keep.append(np.empty(int(np.random.default_rng(trial).integers(1, 5000))))  # shift the heap
        offset = trial % 4
        buffer = np.empty(X.size + offset, dtype=X.dtype)
        X_moved = buffer[offset:].reshape(X.shape)  # same values, another address and alignment
        X_moved[...] = X
        grad = fastlr.loss_grad(X_moved, y, coef, intercept, loss=loss, sample_weight=sw)
        sgd = LogisticRegression(loss=loss, solver="sgd", max_iter=1, tol=None, batch_size=100,
                                 random_state=0).fit(X_moved, y, sample_weight=sw)
        result = (grad[0], grad[1].tobytes(), np.asarray(grad[2]).tobytes(),
                  sgd.coef_.tobytes(), sgd.intercept_.tobytes())
        first = first or result
        assert result == first, f"trial {trial} differs"


@pytest.mark.parametrize("gap", [0, 1, 3, 8, 40], ids=lambda g: f"gap={g}")
def test_block_sums_do_not_depend_on_scratch_placement(gap):
    """Scratch arrays packed next to each other (as an allocator may place them) give the same bits."""
    from fastlr.kernels import cpu

    X, y, coef, intercept, sw = make_problem(1000, 37, 1, np.float64, True, seed=8)
    y = y.astype(np.int32)
    B = cpu.BLOCK_ROWS

    def run(z, e, dz, acc_block):
        acc = np.zeros(X.shape[1] + 2)
        cpu._binary_rows(X, y, sw, 0, len(y), coef, 0.3, 0, acc, (z, e, dz, acc_block, np.empty(0)),
                         cpu._max_abs_exponent(coef.reshape(1, -1)))
        return acc

    separate = run(np.empty(B), np.empty(B), np.empty(B), np.empty(37))
    packed = np.empty(4 * (B + gap) + 37)
    views = [packed[i * (B + gap):i * (B + gap) + B] for i in range(3)]
    together = run(views[0], views[1], views[2], packed[3 * (B + gap):][:37])
    np.testing.assert_array_equal(together, separate)


# -- finite input never gives NaN: scores beyond the float range -------------------------------

OVERFLOW_BACKENDS = ["cpu", "numpy"]


@pytest.mark.parametrize("backend", OVERFLOW_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_scores_beyond_the_float_range_give_the_exact_loss(backend, dtype):
    big = float(np.finfo(dtype).max) / 2  # x·w overflows X's precision
    X = np.array([[big, big]], dtype=dtype)
    # the right side of a huge score: loss 0, gradient 0; the wrong side: +inf
    assert fastlr.loss_grad(X, [1], [1.0, 1.0], backend=backend)[0] == 0.0
    exact = 3.0 * float(X[0, 0]) + float(X[0, 1])  # beyond float32, finite in float64; inf for float64 X
    assert fastlr.loss_grad(X, [0], [3.0, 1.0], backend=backend)[0] == pytest.approx(exact, rel=1e-12)
    assert exact == np.inf or dtype == np.float32
    assert fastlr.loss_grad(X, [0], [-2.0, -1.0], backend=backend)[0] == 0.0
    # an intermediate sum overflows, the true score (big) does not: exact finite loss
    X3 = np.array([[big, big, -big]], dtype=dtype)
    loss, grad, _ = fastlr.loss_grad(X3, [0], [1.0, 1.0, 1.0], backend=backend)
    assert loss == pytest.approx(float(X3[0, 0]), rel=1e-12)
    np.testing.assert_allclose(grad, X3[0].astype(np.float64), rtol=1e-12)
    assert fastlr.loss_grad(X3, [1], [1.0, 1.0, 1.0], backend=backend)[0] == 0.0


@pytest.mark.parametrize("backend", OVERFLOW_BACKENDS)
def test_issue_examples_of_overflowing_scores(backend):
    assert fastlr.loss_grad([[1e308, 1e308]], [1], [1.0, 1.0], backend=backend)[0] == 0.0
    loss, grad, grad_b = fastlr.loss_grad([[1e300], [1]], [0, 1], [1e10], backend=backend)
    assert loss == np.inf
    # sample 1: dz = σ(1e310) - 0 = 1; sample 2: dz = σ(1e10) - 1 = -0 (to rounding)
    np.testing.assert_allclose(grad, [1e300 / 2], rtol=1e-12)
    assert grad_b == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("backend", OVERFLOW_BACKENDS)
def test_float32_x_with_coefficients_beyond_float32_range(backend):
    """w = ±1e39 is finite in float64 but not in float32: the scores are still exact."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    w = np.array([1e39, -1e39])
    loss = fastlr.loss_grad(X, [1, 1, 0], w, backend=backend)[0]
    # per-sample losses: 0, 1e39, 0.25e39 (z = 0.5e39 - 0.25e39, label 0)
    assert loss == pytest.approx((1e39 + 0.25e39) / 3, rel=1e-12)


@pytest.mark.parametrize("backend", OVERFLOW_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_softmax_scores_beyond_the_float_range(backend, dtype, softmax_path):
    big = float(np.finfo(dtype).max) / 2
    X = np.array([[big, 1.0]], dtype=dtype)
    x0 = float(X[0, 0])
    W = np.array([[4.0, 0.0], [8.0, 0.0], [0.0, 1.0]])  # scores 4 big, 8 big (both overflow), 1

    def loss(label, coef):
        return fastlr.loss_grad(X, [label], coef, backend=backend)[0]

    # the exact losses, z_max - z_y, in Python floats: beyond float32 they are finite in
    # float64 (float32 X); beyond float64 they round to +inf (float64 X)
    assert loss(1, W) == 0.0
    assert loss(0, W) == pytest.approx(4.0 * x0, rel=1e-12)
    assert loss(2, W) == pytest.approx(8.0 * x0 - 1.0, rel=1e-12)
    assert (loss(2, W) == np.inf) == (dtype == np.float64)
    # every score overflows towards -inf: the differences still decide
    assert loss(0, -W[:2]) == 0.0
    assert loss(1, -W[:2]) == pytest.approx(4.0 * x0, rel=1e-12)
    # mixed signs: +inf next to -inf
    W2 = np.array([[8.0, 0.0], [-8.0, 0.0]])
    assert loss(0, W2) == 0.0
    assert loss(1, W2) == pytest.approx(16.0 * x0, rel=1e-12)
    # k >= 8 (the BLAS path of the cpu kernel where softmax_path is "blas"): the same exact
    # losses with 6 more classes
    W9 = np.vstack([W, np.zeros((6, 2))])
    assert loss(1, W9) == 0.0
    assert loss(3, W9) == pytest.approx(8.0 * x0, rel=1e-12)
    assert loss(2, W9) == pytest.approx(8.0 * x0 - 1.0, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3], ids=["binary", "multinomial"])
def test_random_huge_finite_inputs_never_give_nan_and_backends_agree(seed, k):
    """Positive X and coef (no cancellation): the scores are exact to rounding on both backends."""
    rng = np.random.default_rng(seed)
    n, d = 40, 3
    X = 10.0 ** rng.uniform(-300, 300, (n, d))
    W = 10.0 ** rng.uniform(-300, 300, (k, d))
    W[-1] *= -1.0  # one class (the binary model's only one) scores towards -inf
    y = rng.integers(0, max(k, 2), n)
    coef = W[0] if k == 1 else W
    out = {b: fastlr.loss_grad(X, y, coef, backend=b) for b in OVERFLOW_BACKENDS}
    for loss, grad, _ in out.values():
        assert not np.isnan(loss) and not np.any(np.isnan(grad))
    a, b = out["cpu"][0], out["numpy"][0]
    assert (a == b == np.inf) or a == pytest.approx(b, rel=1e-12)
    # and the mixed-sign case still never gives a NaN loss
    X *= rng.choice([-1.0, 1.0], X.shape)
    for backend in OVERFLOW_BACKENDS:
        try:
            loss = fastlr.loss_grad(X, y, coef, backend=backend)[0]
        except FloatingPointError as exc:  # a gradient sum overflowed with both signs
            assert "overflowed" in str(exc)
        else:
            assert not np.isnan(loss)


@pytest.mark.parametrize("n", [4, 19], ids=["vector-rows", "with-tail-rows"])
def test_finite_scores_whose_sum_overflows_take_the_usual_path(n):
    """The softmax kernel looks for non-finite scores through a block's sum of scores: finite
    scores near 1e308 whose sum overflows are a false alarm and must give the usual result."""
    X = np.ones((n, 1))
    W = np.array([[1e308], [0.9e308], [1.0]])
    y = np.zeros(n, dtype=int)
    y[1] = 1  # a loss of 0.1e308; the others' are 0
    y[2] = 2  # a loss of 1e308 (the mean stays finite)
    out = {b: fastlr.loss_grad(X, y, W, backend=b) for b in OVERFLOW_BACKENDS}
    loss, grad, grad_b = out["cpu"]
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    ref = out["numpy"]
    assert loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(grad, ref[1], rtol=1e-12)
    np.testing.assert_allclose(grad_b, ref[2], rtol=1e-12, atol=1e-12)


def test_finite_x_never_reports_nan_in_x():
    """Gradient sums that overflow with both signs: a clear error, not "X contains NaN"."""
    X = np.array([[1e308]] * 4 + [[-1e308]] * 4)
    y = np.zeros(8, dtype=int)
    try:
        loss, grad, _ = fastlr.loss_grad(X, y, [0.0])
    except FloatingPointError as exc:
        assert "overflowed" in str(exc) and "NaN" not in str(exc)
    else:
        assert not np.isnan(loss) and not np.any(np.isnan(grad))


@pytest.mark.parametrize("labels", [np.int64, np.int32], ids=["int64", "int32"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 2, 7], ids=["binary", "k=2", "k=7"])
@pytest.mark.parametrize("n", [5, 3 * cpu.CHUNK_ROWS + 1], ids=["serial", "parallel"])
def test_predict_labels_are_the_argmax_of_the_decision_function(n, k, dtype, labels):
    """predict's one-pass kernel against np.argmax / (z > 0) of the scores kernel, ties included,
    each code mapped through the label table."""
    from fastlr.backends import CPUBackend
    rng = np.random.default_rng(k)
    X = rng.standard_normal((n, 6)).astype(dtype)
    X[0] = 0.0  # every class scores its intercept: ties broken towards the first, as np.argmax
    W = rng.standard_normal((k, 6))
    b = np.zeros(k)
    table = (np.arange(max(k, 2)) * 3 - 4).astype(labels)  # sorted labels that are not the codes
    out, finite = CPUBackend().predict_labels(X, W, b, table)
    scores = cpu.decision_function(X, W, b)
    want = (scores[:, 0] > 0).astype(np.int64) if k == 1 else np.argmax(scores, axis=1)
    assert finite
    assert out.dtype == labels
    np.testing.assert_array_equal(out, table[want])
    X[-1, 2] = np.nan
    assert not CPUBackend().predict_labels(X, W, b, table)[1]


def test_prefetch_hints_compile_for_every_layout_and_change_nothing():
    """The prefetch intrinsic takes 1-D and 2-D arrays of any layout and any row range, even
    empty or reversed; a hint never changes a value (the kernels' results are checked above)."""
    from numba import njit
    from fastlr.kernels._prefetch import prefetch_rows, prefetch_rows_for_write

    @njit
    def touch(A, start, stop):
        prefetch_rows(A, start, stop)
        prefetch_rows_for_write(A, start, stop)
        return A.sum()

    @njit
    def plain(A):
        return A.sum()

    rng = np.random.default_rng(0)
    M = rng.standard_normal((50, 7))
    for A in (M, np.asfortranarray(M), M[::2, 1:5], M[:, 3], M.astype(np.float32)):
        before = A.copy()
        for start, stop in ((0, len(A)), (3, 4), (5, 5), (9, 2)):
            assert touch(A, start, stop) == plain(A)  # the same array: the same summation order
        np.testing.assert_array_equal(A, before)


def test_every_compiled_kernel_is_cached_on_disk():
    """Each Numba dispatcher fastlr defines (not the inline helpers) keeps its compilation in
    Numba's disk cache: one that did not (the serial copies of backends.cpu) was compiled anew
    in every process, and a first small fit took 4 s instead of a fraction of one."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import fastlr

    checked = []
    for info in pkgutil.walk_packages(fastlr.__path__, "fastlr."):
        if ".cuda" in info.name or info.name.endswith("cli.__main__"):
            continue  # the GPU kernels compile for the device, not through the disk cache
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.targetoptions.get("inline") != "always":
                checked.append(f"{info.name}.{name}")
                assert type(value._cache).__name__ != "NullCache", f"{info.name}.{name} is not cached"
    # the kernels the trainer runs on every fit are among those checked
    for name in ("fastlr.kernels.cpu.binary_loss_grad", "fastlr.backends.cpu._binary_loss_grad_serial",
                 "fastlr.kernels.vectors._pair_dots_par", "fastlr.kernels.cpu_sparse.binary_loss_grad"):
        assert name in checked


def _softmax_reference(X, y, sw, W, b):
    """float64 loss sum and gradient sums of the softmax log loss, as the kernels return them."""
    from scipy.special import logsumexp

    X = X.astype(np.float64)
    Z = X @ W.T + b
    lse = logsumexp(Z, axis=1)
    P = np.exp(Z - lse[:, None])
    P[np.arange(len(y)), y] -= 1.0
    P *= sw[:, None]
    return float(np.sum(sw * (lse - Z[np.arange(len(y)), y]))), P.T @ X, P.sum(0)


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_read_no_scratch_they_did_not_write(dtype, fill):
    """Blocks of 1..17 rows (vector groups of four and the rows after them) with every scratch
    array poisoned beforehand: the result is finite and matches the float64 reference, so no
    lane past the block's rows, and no value of an earlier block, reaches it."""
    rng = np.random.default_rng(5)
    for k in (2, 3, 10):
        d = 5
        for n in range(1, 18):
            X = rng.standard_normal((n, d)).astype(dtype)
            y = rng.integers(0, k, n).astype(np.int32)
            sw = rng.uniform(0.5, 2.0, n)
            W = rng.standard_normal((k, d)) * 0.5
            b = rng.standard_normal(k) * 0.1
            scratch = cpu._softmax_scratch(k, d, X.dtype)
            for a in scratch:
                a[...] = fill
            acc = np.zeros((k, d + 2))
            cpu._softmax_rows(X, y, sw, 0, n, W.astype(dtype), b, 0, acc, scratch, W,
                              cpu._max_abs_exponent(W))
            loss, gW, gb = _softmax_reference(X, y, sw, W, b)
            assert np.all(np.isfinite(acc)), (k, n)
            # float32: the scores and dz in float32 (relative 2^-24 per term, d + k terms)
            tol = (64 if dtype == np.float32 else 1) * 1e-7 * (1 + np.abs(X).sum())
            assert abs(acc[0, d + 1] - loss) <= tol * max(1.0, abs(loss)), (k, n)
            np.testing.assert_allclose(acc[:, :d], gW, rtol=0, atol=tol)
            np.testing.assert_allclose(acc[:, d], gb, rtol=0, atol=tol)
