"""fastlr.kernels._simd: vector values in Numba code against NumPy on the same numbers."""

import numpy as np
import pytest
from numba import config, njit

from fastlr.kernels import _simd as S

DTYPES = [np.float32, np.float64]


@njit
def _lanes(X):
    return S.lanes_of(X)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lanes_are_one_256_bit_register(dtype):
    X = np.zeros((2, 2), dtype)
    assert _lanes(X) == 32 // np.dtype(dtype).itemsize == S.lanes(np.dtype(dtype))


@njit
def _fma_rows(X, i, j, a, out):
    v = S.load(X, i, j)
    w = S.load1(a, 0)
    S.store1(out, 0, S.fma(v, w, S.splat(X[0, 0])))
    S.store(X, 0, j, S.add(v, w))
    S.add_to(X, 1, j, w)
    return S.hsum(v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_load_fma_store_add_hsum_match_numpy(dtype):
    rng = np.random.default_rng(0)
    L = 32 // np.dtype(dtype).itemsize
    X = rng.standard_normal((4, 3 * L)).astype(dtype)
    a = rng.standard_normal(L).astype(dtype)
    out = np.zeros(L, dtype)
    before = X.copy()
    total = _fma_rows(X, 2, L, a, out)
    v = before[2, L:2 * L]
    # a fused multiply-add rounds once: within one rounding of the float64 product-sum
    ref = v.astype(np.float64) * a + before[0, 0]
    np.testing.assert_allclose(out, ref, rtol=2 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_array_equal(X[0, L:2 * L], v + a)
    np.testing.assert_array_equal(X[1, L:2 * L], before[1, L:2 * L] + a)
    untouched = np.ones(X.shape, bool)
    untouched[0, L:2 * L] = untouched[1, L:2 * L] = False
    np.testing.assert_array_equal(X[untouched], before[untouched])
    # the fixed tree: halves, then quarters, ...
    t = v.copy()
    while len(t) > 1:
        t = t[:len(t) // 2] + t[len(t) // 2:]
    assert total == t[0]


@njit
def _wide_round_trip(X, a, i, j, out):
    v = S.wide4_2d(X, i, j)
    S.store4(out, 0, v * 3.0 - S.wide4(a, 1))
    S.store4_2d(X, i, j, v + 0.5)
    return S.hsum(v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wide4_widens_exactly_and_store4_rounds_to_the_array_dtype(dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 9)).astype(dtype)
    a = rng.standard_normal(6).astype(dtype)
    out = np.zeros(4, dtype)
    before = X.copy()
    _wide_round_trip(X, a, 2, 3, out)
    v = before[2, 3:7].astype(np.float64)  # exact for float32
    np.testing.assert_array_equal(out, (v * 3.0 - a[1:5].astype(np.float64)).astype(dtype))
    np.testing.assert_array_equal(X[2, 3:7], (v + 0.5).astype(dtype))
    X[2, 3:7] = before[2, 3:7]
    np.testing.assert_array_equal(X, before)


@njit
def _load_at(X, i, j):
    return S.hsum(S.load(X, i, j))


@pytest.mark.skipif(not config.BOUNDSCHECK, reason="checks only under NUMBA_BOUNDSCHECK=1")
def test_a_load_past_the_row_raises_under_boundscheck():
    X = np.zeros((2, 10), np.float32)
    assert _load_at(X, 1, 2) == 0
    with pytest.raises(IndexError):
        _load_at(X, 1, 3)  # lanes 3..10 of a row of 10
    with pytest.raises(IndexError):
        _load_at(X, 2, 0)
