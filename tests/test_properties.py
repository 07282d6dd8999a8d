"""Property-based tests (hypothesis) of the kernels and of input validation.

Random shapes (n = 1, d = 1, sizes around the 16-row block and the 2,048-row
chunk), dtypes (float32, float64, ints, bool), memory layouts (C, Fortran,
strided row or column slices, read-only memory maps), extreme values (±1e30,
denormals, constant columns, duplicated rows, perfectly separable labels) and
NaN/inf injected anywhere. Every case either agrees with the float64 numpy
reference backend within a forward error bound, or raises a documented
exception (ValueError / TypeError naming the problem).

Crash isolation: these run in the pytest process. A kernel that crashed the
interpreter (segfault, abort) would kill pytest with a signal, which CI reports
as a failure, and pytest's faulthandler prints the Python stack of the test that
did it. ``test_extreme_fits_in_a_subprocess`` also runs a batch of the riskiest
fits in a child process and checks it exits with status 0, not a signal.

Budget: a few dozen derandomised examples per test by default; run many more
with ``FASTLR_FUZZ_EXAMPLES=2000 python -m pytest tests/test_properties.py``.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import fastlr
from fastlr import LogisticRegression
from fastlr.backends import get_backend
from fastlr.kernels.cpu import BLOCK_ROWS, CHUNK_ROWS
from _budget import examples

EPS64 = np.finfo(np.float64).eps
EPS32 = float(np.finfo(np.float32).eps)

# sizes that are 1, odd, or one off a multiple of the block (16) or the chunk (2,048)
ROW_COUNTS = st.one_of(
    st.integers(1, 40),
    st.sampled_from([BLOCK_ROWS - 1, BLOCK_ROWS + 1, 3 * BLOCK_ROWS + 5,
                     CHUNK_ROWS - 1, CHUNK_ROWS + 1, 2 * CHUNK_ROWS + 3]),
)
FEATURE_COUNTS = st.one_of(st.integers(1, 9), st.sampled_from([15, 17, 33]))
DTYPES = [np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]
LAYOUTS = ["C", "F", "row-slice", "column-slice", "memmap"]
KINDS = ["normal", "extreme", "denormal", "constant-column", "huge-constant-column", "duplicate-rows",
         "separable"]
EXTREMES = np.array([1e30, -1e30, 1e15, -1e15, 0.0, 1.0])
DENORMALS = np.array([5e-324, -5e-324, 1e-310, -2e-308, 1e-40, -1e-42, 0.0])

_MEMMAP_DIR = tempfile.mkdtemp(prefix="fastlr-hyp-")
_memmap_count = [0]


def _layout(X, layout):
    """X (as given) in the requested memory layout; values unchanged."""
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "row-slice":
        big = np.zeros((2 * X.shape[0], X.shape[1]), dtype=X.dtype)
        big[::2] = X
        return big[::2]
    if layout == "column-slice":
        big = np.zeros((X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
        big[:, ::2] = X
        return big[:, ::2]
    if layout == "memmap":
        _memmap_count[0] += 1
        path = os.path.join(_MEMMAP_DIR, f"X{_memmap_count[0] % 8}.npy")
        np.save(path, X)
        mm = np.load(path, mmap_mode="r")
        assert not mm.flags.writeable
        return mm
    return np.ascontiguousarray(X)


@st.composite
def problems(draw, kinds=KINDS, dtypes=DTYPES, layouts=LAYOUTS):
    """A random (X, y, coef, intercept, sample_weight, description) problem."""
    n, d = draw(ROW_COUNTS), draw(FEATURE_COUNTS)
    k = draw(st.sampled_from([1, 2, 3, 5]))  # 1: binary sigmoid model; k >= 2: softmax
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    kind = draw(st.sampled_from(kinds))
    weights = draw(st.sampled_from(["none", "positive", "some-zero"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((n, d))
    if kind in ("extreme", "denormal"):
        pool = EXTREMES if kind == "extreme" else DENORMALS
        mask = rng.random((n, d)) < draw(st.sampled_from([0.1, 0.5, 1.0]))
        X[mask] = rng.choice(pool, size=int(mask.sum()))
    elif kind == "constant-column":
        X[:, rng.integers(d)] = rng.choice([0.0, 1.0, -3.5])
    elif kind == "huge-constant-column":
        X[:, rng.integers(d)] = rng.choice([1e30, -1e30])
    elif kind == "duplicate-rows":
        X = X[rng.integers(0, max(1, n // 3), n)]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        X = np.clip(np.round(X * 3), max(info.min, -2**62), min(info.max, 2**62))
    X = X.astype(dtype)
    if k == 1:
        y = rng.integers(0, 2, n)
        if kind == "separable":
            y = (X[:, 0].astype(np.float64) > 0).astype(np.int64)
        coef = rng.standard_normal(d) * 0.5
        intercept = float(rng.standard_normal() * 0.3)
    else:
        y = rng.integers(0, k, n)
        if kind == "separable":
            y = np.digitize(X[:, 0].astype(np.float64), np.linspace(-1, 1, k - 1))
        coef = rng.standard_normal((k, d)) * 0.5
        intercept = rng.standard_normal(k) * 0.3
    sw = None
    if weights != "none":
        sw = rng.uniform(0.1, 3.0, n)
        if weights == "some-zero" and n > 1:
            sw[rng.random(n) < 0.3] = 0.0
            sw[rng.integers(n)] = 1.0
    desc = f"n={n} d={d} k={k} {np.dtype(dtype).name} {layout} {kind} weights={weights}"
    return _layout(X, layout), y, coef, intercept, sw, desc


def _compute_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


def _error_bounds(X, y, coef, intercept, sw):
    """Forward error bounds of the mean loss, coefficient and intercept gradients.

    Scores ``z = x·w + b`` are formed in X's precision (eps_x); every loss and
    derivative used here is 1-Lipschitz in each score, so a score error
    ``δz ≤ 4 (d + 2) eps_x Σ_j |x_j w_j| + |b|`` moves a sample's loss by at
    most ``k δz`` and its ``dz`` by at most ``k δz``; the 16-row partials of
    ``dz · x`` add ``16 eps_x |x|``, and the float64 sums over n samples
    ``8 (n + 16) eps64`` of the magnitude summed; float32 products of
    denormals underflow, which adds up to the smallest subnormal per product.
    """
    X64 = np.abs(np.asarray(X, dtype=np.float64))
    n, d = X64.shape
    W = np.abs(np.atleast_2d(np.asarray(coef, dtype=np.float64)))
    k = W.shape[0]
    eps_x = EPS32 if X.dtype == np.float32 else EPS64
    A = X64 @ W.T + np.abs(np.asarray(intercept, dtype=np.float64)).reshape(1, -1)  # (n, k)
    s = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    S = s.sum()
    dz_err = k * 4 * (d + 2) * eps_x * A.max(axis=1) + 16 * eps_x + 8 * (n + 16) * EPS64
    loss_err = (k * 4 * (d + 2) * eps_x * A.sum(axis=1)
                + 8 * (n + 16) * EPS64 * (A.max(axis=1) + np.log(k + 1) + 1))
    loss_tol = float(s @ loss_err) / S
    tiny = float(np.finfo(np.float32 if X.dtype == np.float32 else np.float64).smallest_subnormal)
    grad_tol = ((s * dz_err) @ X64 + 4 * tiny * s.sum()) / S  # (d,)
    intercept_tol = float(s @ dz_err) / S
    return loss_tol, grad_tol, intercept_tol


# -- the kernels against the reference ------------------------------------------------------


@examples(60)
@given(problem=problems(), loss=st.sampled_from(["log_loss", "prob_squared"]))
def test_loss_grad_agrees_with_numpy_reference(problem, loss):
    X, y, coef, intercept, sw, desc = problem
    got = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="cpu")
    ref = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw, backend="numpy")
    loss_tol, grad_tol, intercept_tol = _error_bounds(X, y, coef, intercept, sw)
    assert np.isfinite(got[0]) and np.all(np.isfinite(got[1])), desc
    assert abs(got[0] - ref[0]) <= loss_tol, (desc, got[0], ref[0], loss_tol)
    assert np.all(np.abs(got[1] - ref[1]) <= grad_tol), (desc, np.max(np.abs(got[1] - ref[1]) - grad_tol))
    assert np.all(np.abs(np.asarray(got[2]) - ref[2]) <= intercept_tol), desc
    assert np.shape(got[1]) == np.shape(coef) and np.shape(got[2]) == np.shape(intercept)


@examples(40)
@given(problem=problems(), loss=st.sampled_from(["log_loss", "prob_squared"]))
def test_layout_and_dtype_conversion_do_not_change_the_result(problem, loss):
    """Any layout gives bitwise the result of the C-contiguous array in X's computing dtype."""
    X, y, coef, intercept, sw, desc = problem
    got = fastlr.loss_grad(X, y, coef, intercept, loss=loss, sample_weight=sw)
    C = np.ascontiguousarray(X, dtype=_compute_dtype(X))
    ref = fastlr.loss_grad(C, y, coef, intercept, loss=loss, sample_weight=sw)
    assert got[0] == ref[0], desc
    np.testing.assert_array_equal(got[1], ref[1], err_msg=desc)
    np.testing.assert_array_equal(got[2], ref[2], err_msg=desc)


@examples(40)
@given(problem=problems())
def test_decision_function_agrees_with_numpy_reference(problem):
    X, y, coef, intercept, sw, desc = problem
    W = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (W.shape[0],)).copy()
    Xc = np.ascontiguousarray(X, dtype=_compute_dtype(X))
    got = get_backend("cpu").decision_function(Xc, W, b)
    ref = get_backend("numpy").decision_function(Xc, W, b)
    eps_x = EPS32 if Xc.dtype == np.float32 else EPS64
    bound = 4 * (X.shape[1] + 2) * eps_x * (np.abs(Xc.astype(np.float64)) @ np.abs(W).T + np.abs(b))
    assert got.shape == ref.shape == (X.shape[0], W.shape[0])
    assert np.all(np.abs(got - ref) <= bound), desc


def test_float32_stays_float32_in_every_layout():
    """float32 input is not promoted: a conversion keeps float32 (C order), ints become float64."""
    from fastlr._validation import check_features

    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    for layout in LAYOUTS:
        assert check_features(_layout(X, layout)).dtype == np.float32, layout
    assert check_features(X.astype(np.int32)).dtype == np.float64
    assert check_features(X).base is X or check_features(X) is X  # C float32: no copy


# -- whole fits ---------------------------------------------------------------------------------


def _fit_pair(X, y, sw, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cpu = LogisticRegression(backend="cpu", **params).fit(X, y, sample_weight=sw)
        ref = LogisticRegression(backend="numpy", **params).fit(X, y, sample_weight=sw)
    return cpu, ref


MODERATE = ["normal", "constant-column", "duplicate-rows", "separable", "denormal"]


@examples(30)
@given(problem=problems(kinds=MODERATE), loss=st.sampled_from(["log_loss", "prob_squared"]),
       solver=st.sampled_from(["gd", "sgd"]))
def test_fixed_step_fits_agree_with_numpy_backend(problem, loss, solver):
    """gd and sgd with constant steps and a fixed number of iterations follow the reference path."""
    X, y, _, _, sw, desc = problem
    assume(len(np.unique(y)) >= 2)
    # a step below 2 / L (L ≤ max ‖x‖² + 1 for these losses) keeps the path stable, so that
    # rounding differences are not amplified chaotically from step to step
    row_norm2 = float(np.max(np.sum(np.asarray(X, dtype=np.float64) ** 2, axis=1)))
    params = dict(solver=solver, loss=loss, tol=None, max_iter=4, eta0=1.0 / (1.0 + row_norm2), C=10.0)
    if solver == "sgd":
        params.update(shuffle=False, batch_size=7)
    cpu, ref = _fit_pair(X, y, sw, **params)
    rtol = 1e-4 if X.dtype == np.float32 else 1e-9
    scale = 1.0 + np.max(np.abs(ref.coef_))
    np.testing.assert_allclose(cpu.coef_, ref.coef_, rtol=rtol, atol=rtol * scale, err_msg=desc)
    np.testing.assert_allclose(cpu.intercept_, ref.intercept_, rtol=rtol, atol=rtol * scale, err_msg=desc)
    np.testing.assert_allclose(cpu.loss_curve_, ref.loss_curve_, rtol=rtol, atol=rtol, err_msg=desc)


@examples(25)
@given(problem=problems(kinds=MODERATE))
def test_lbfgs_reaches_the_reference_optimum(problem):
    """The CPU fit's coefficients are as good, on the float64 reference objective, as the reference fit's."""
    X, y, _, _, sw, desc = problem
    assume(len(np.unique(y)) >= 2)
    cpu, ref = _fit_pair(X, y, sw, solver="lbfgs", tol=1e-9, max_iter=500, C=1.0)
    Xc = np.asarray(X, dtype=np.float64)
    s = np.ones(len(y)) if sw is None else sw

    def objective(model):  # scikit-learn's C Σ s loss + ½‖w‖², evaluated in float64 by the reference
        codes = np.searchsorted(model.classes_, y)
        coef = model.coef_[0] if model.coef_.shape[0] == 1 else model.coef_
        b = model.intercept_[0] if model.coef_.shape[0] == 1 else model.intercept_
        mean, _, _ = fastlr.loss_grad(Xc, codes, coef, b, sample_weight=sw, backend="numpy")
        return mean * s.sum() + 0.5 * float(np.sum(model.coef_ ** 2))

    f_cpu, f_ref = objective(cpu), objective(ref)
    slack = 1e-6 if X.dtype == np.float32 else 1e-9
    assert f_cpu <= f_ref + slack * (1.0 + abs(f_ref)), (desc, f_cpu, f_ref)


@examples(40)
@given(problem=problems(kinds=["extreme", "denormal", "separable", "huge-constant-column"]),
       solver=st.sampled_from(["lbfgs", "gd", "sgd"]), loss=st.sampled_from(["log_loss", "prob_squared"]))
def test_extreme_data_fits_or_raises_a_documented_error(problem, solver, loss):
    """±1e30, denormals, separable data: a fit with finite coefficients (warnings allowed), or ValueError."""
    X, y, _, _, sw, desc = problem
    assume(len(np.unique(y)) >= 2)
    model = LogisticRegression(solver=solver, loss=loss, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(X, y, sample_weight=sw)
        except ValueError as exc:
            assert str(exc), desc
            return
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_)), desc
    proba = model.predict_proba(X)
    assert np.all((proba >= 0) & (proba <= 1)), desc
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12, err_msg=desc)
    assert set(np.unique(model.predict(X))) <= set(model.classes_)


def test_extreme_fits_in_a_subprocess():
    """Crash isolation: a batch of the riskiest fits in a child process exits with 0, not a signal."""
    code = textwrap.dedent("""
        import warnings, numpy as np
        from fastlr import LogisticRegression
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        for i in range(24):
            n, d = [(1, 1), (2, 1), (17, 3), (2049, 2)][i % 4]
            X = rng.choice([1e30, -1e30, 5e-324, 0.0, 1.0], size=(n, d))
            X = X.astype(np.float32 if i % 2 else np.float64)
            y = np.arange(n) % 2 if n > 1 else np.array([0])
            if n == 1:
                X, y = np.vstack([X, -X]), np.array([0, 1])
            for solver in ("lbfgs", "gd", "sgd"):
                try:
                    m = LogisticRegression(solver=solver, max_iter=10).fit(X, y)
                    m.predict_proba(X)
                except ValueError:
                    pass
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "ok"


# -- NaN / inf anywhere, and malformed input ------------------------------------------------------

TARGETS = ["X", "y", "sample_weight", "coef", "intercept"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the numpy backend meeting the NaN
@examples(60)
@given(problem=problems(dtypes=[np.float32, np.float64], kinds=["normal", "extreme"]),
       where=st.sampled_from(TARGETS), value=st.sampled_from([np.nan, np.inf, -np.inf]),
       backend=st.sampled_from(["cpu", "numpy"]), data=st.data())
def test_nan_or_inf_anywhere_in_loss_grad_is_a_value_error(problem, where, value, backend, data):
    X, y, coef, intercept, sw, desc = problem
    X = np.array(X)  # writable copy, same dtype
    y = y.astype(np.float64)
    coef = np.array(coef, dtype=np.float64)
    intercept = np.array(intercept, dtype=np.float64)
    if where == "sample_weight" and sw is None:
        sw = np.ones(len(y))
    target = {"X": X, "y": y, "sample_weight": sw, "coef": coef, "intercept": intercept}[where]
    target.flat[data.draw(st.integers(0, target.size - 1), label="position")] = value
    with pytest.raises(ValueError, match="(?i)nan|inf|finite"):
        fastlr.loss_grad(X, y, coef, intercept, sample_weight=sw, backend=backend)


@examples(40)
@given(problem=problems(dtypes=[np.float32, np.float64], kinds=["normal", "separable", "extreme"]),
       where=st.sampled_from(["X", "sample_weight", "predict"]),
       value=st.sampled_from([np.nan, np.inf, -np.inf]),
       solver=st.sampled_from(["lbfgs", "gd", "sgd"]), data=st.data())
def test_nan_or_inf_anywhere_in_fit_or_predict_is_a_value_error(problem, where, value, solver, data):
    X, y, _, _, sw, desc = problem
    assume(len(np.unique(y)) >= 2)
    X = np.array(X)
    model = LogisticRegression(solver=solver, max_iter=5)
    if where == "predict":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                model.fit(X, y)
            except ValueError:
                return  # an extreme problem the solver rejects; covered above
        X.flat[data.draw(st.integers(0, X.size - 1))] = value
        for method in (model.predict, model.predict_proba, model.decision_function):
            with pytest.raises(ValueError, match="(?i)nan|inf"):
                method(X)
        return
    if where == "sample_weight":
        sw = np.ones(len(y)) if sw is None else sw
        sw[data.draw(st.integers(0, len(sw) - 1))] = value
    else:
        X.flat[data.draw(st.integers(0, X.size - 1))] = value
    with pytest.raises(ValueError, match="(?i)nan|inf|finite"):
        model.fit(X, y, sample_weight=sw)
    assert not hasattr(model, "coef_"), desc  # a failed fit leaves the estimator unfitted


BAD_X = {
    "3-D": (lambda X: X[:, :, None], ValueError, "dim"),
    "1-D": (lambda X: X[:, 0], ValueError, "2D|2-D|dim"),
    "no features": (lambda X: X[:, :0], ValueError, "feature"),
    "no samples": (lambda X: X[:0], ValueError, "sample"),
    "strings": (lambda X: np.char.add("v", X.astype(str)).astype(object), ValueError,
                "(?i)string|convert|float"),
    "complex": (lambda X: X.astype(np.complex128), ValueError, "(?i)complex"),
    "object None": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, None, X).astype(object),
                    (ValueError, TypeError), None),
}


@examples(30)
@given(problem=problems(kinds=["normal"], dtypes=[np.float64], layouts=["C"]),
       corruption=st.sampled_from(sorted(BAD_X)), method=st.sampled_from(["fit", "loss_grad", "predict"]))
def test_malformed_arrays_raise_a_documented_error(problem, corruption, method):
    X, _, coef, intercept, sw, desc = problem
    assume(len(X) >= 2)
    y = np.arange(len(X)) % 2  # two classes, so that only X is wrong
    coef = np.atleast_2d(coef)[0]
    make, error, match = BAD_X[corruption]
    bad = make(X)
    with pytest.raises(error, match=match):
        if method == "fit":
            LogisticRegression().fit(bad, y[: len(bad)])
        elif method == "loss_grad":
            fastlr.loss_grad(bad, y[: len(bad)], coef, 0.0)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LogisticRegression(max_iter=5).fit(X, y)
            model.predict(bad)


@examples(30)
@given(n=st.integers(1, 30), d=st.integers(1, 5), extra=st.integers(1, 3), data=st.data())
def test_mismatched_lengths_and_shapes_name_the_problem(n, d, extra, data):
    rng = np.random.default_rng(n * 100 + d)
    X = rng.standard_normal((n + 1, d))
    y = np.arange(n + 1) % 2
    case = data.draw(st.sampled_from(["y", "sample_weight", "coef", "intercept", "predict-width"]))
    with pytest.raises(ValueError):
        if case == "y":
            LogisticRegression().fit(X, np.append(y, [0] * extra))
        elif case == "sample_weight":
            LogisticRegression().fit(X, y, sample_weight=np.ones(n + 1 + extra))
        elif case == "coef":
            fastlr.loss_grad(X, y, np.zeros(d + extra))
        elif case == "intercept":
            fastlr.loss_grad(X, y, np.zeros((3, d)), np.zeros(3 + extra))
        else:
            LogisticRegression(max_iter=5).fit(X, y).predict(np.zeros((2, d + extra)))
