"""A model too wide for memory is refused up front with an error naming the width (issue 14:
a stray svmlight index must not end in an allocation failure deep in NumPy, or the OOM killer)."""


import numpy as np
import pytest
import scipy.sparse as sp

import fastlr
from fastlr import _memory
from fastlr._memory import ModelTooLarge, check_fit_memory, fit_state_bytes
from fastlr.kernels import cpu_sparse

import _cli_runner


def test_partial_sum_blocks_match_the_sparse_kernels():
    assert _memory.PARTIAL_SUM_BLOCKS == cpu_sparse.MAX_BLOCKS


@pytest.mark.parametrize("solver", sorted(set(_memory.SOLVER_STATE_VECTORS) - {"newton-cholesky"}))
def test_state_bytes_grow_with_width_and_classes(solver):
    base = fit_state_bytes(1000, 1, solver)
    assert fit_state_bytes(2000, 1, solver) / base == pytest.approx(2002 / 1002)
    assert fit_state_bytes(1000, 10, solver) == 10 * base
    # at least the coefficients, the gradient and one partial sum
    assert base >= 8 * 1002 * 3


def test_check_is_a_bound_not_a_guess():
    need = fit_state_bytes(10**6, 3, "lbfgs")
    check_fit_memory(10**6, 3, "lbfgs", available=need)  # exactly enough: accepted
    with pytest.raises(ModelTooLarge, match=r"1,000,000 features"):
        check_fit_memory(10**6, 3, "lbfgs", available=need - 1)
    assert issubclass(ModelTooLarge, ValueError) and issubclass(ModelTooLarge, MemoryError)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "gd", "sgd"])
def test_fit_refuses_a_model_too_wide_before_allocating(monkeypatch, solver):
    # 2 rows, one non-zero at column 5e7: 400 MB of coefficients per vector, ~17 GB of lbfgs state.
    d = 50_000_000
    X = sp.csr_matrix((np.ones(2), np.array([d - 1, 3]), np.array([0, 1, 2])), shape=(2, d))
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)  # 1 GiB, on any machine
    with pytest.raises(ModelTooLarge, match=r"50,000,000 features.*1\.0 GiB"):
        fastlr.LogisticRegression(solver=solver).fit(X, [0, 1])


def test_partial_fit_refuses_a_model_too_wide(monkeypatch):
    d = 50_000_000
    X = sp.csr_matrix((np.ones(2), np.array([d - 1, 3]), np.array([0, 1, 2])), shape=(2, d))
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    with pytest.raises(ModelTooLarge, match="50,000,000 features"):
        fastlr.LogisticRegression().partial_fit(X, [0, 1], classes=[0, 1])


def test_a_model_that_fits_is_not_refused(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = (X[:, 0] > 0).astype(int)
    # exactly what the solver the default runs needs (auto: newton-cholesky here, whose
    # small Hessians' partials make it the largest)
    need = max(fit_state_bytes(4, 1, solver) for solver in _memory.SOLVER_STATE_VECTORS)
    monkeypatch.setattr(_memory, "available_memory", lambda: need)
    clf = fastlr.LogisticRegression().fit(X, y)
    assert clf.coef_.shape == (1, 4)


def test_unknown_available_memory_skips_the_check(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: None)
    check_fit_memory(10**12, 10, "lbfgs")  # nothing to compare with: no error


def test_available_memory_is_positive_where_known():
    avail = _memory.available_memory()
    assert avail is None or avail > 0


@pytest.mark.parametrize("extra", [[], ["--solver", "sgd", "--chunk-rows", "1"]])
def test_cli_refuses_an_svmlight_file_with_a_stray_index(tmp_path, extra):
    # Index 2e9: ~300-650 GiB of solver state, beyond any machine this runs on.
    path = tmp_path / "stray.svm"
    path.write_text("1 2000000000:1\n0 3:1\n")
    out = tmp_path / "model.npz"
    r = _cli_runner.run_cli("train", path, "--out", out, *extra, timeout=600)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "2,000,000,000 features" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("n_params", [1, 31, 7_850, 41_943, 419_431, 2**22, 10**8])
def test_lbfgs_pairs_fill_the_budget_between_10_and_100(n_params):
    m = _memory.lbfgs_pairs(n_params)
    assert _memory.MIN_PAIRS <= m <= _memory.MAX_PAIRS
    pair_bytes = 16 * n_params
    if m > _memory.MIN_PAIRS:  # more than the classic 10 only where they fit in the budget
        assert m * pair_bytes <= _memory.PAIRS_BYTES
    if m < _memory.MAX_PAIRS:  # fewer than 100 only where one more would not fit
        assert (m + 1) * pair_bytes > _memory.PAIRS_BYTES


def test_lbfgs_state_counts_its_pairs():
    # narrow: 100 pairs (200 vectors) besides the 8 working vectors; very wide: 10 pairs
    narrow = fit_state_bytes(63, 1, "lbfgs") / fit_state_bytes(63, 1, "newton-cg")
    assert narrow == pytest.approx((8 + 200 + _memory.PARTIAL_SUM_BLOCKS) / (8 + _memory.PARTIAL_SUM_BLOCKS))
    wide = fit_state_bytes(2**24, 1, "lbfgs") / fit_state_bytes(2**24, 1, "newton-cg")
    assert wide == pytest.approx((8 + 20 + _memory.PARTIAL_SUM_BLOCKS) / (8 + _memory.PARTIAL_SUM_BLOCKS))


def test_newton_cholesky_state_grows_with_the_hessian():
    base = fit_state_bytes(1000, 1, "newton-cholesky") - fit_state_bytes(1000, 1, "newton-cg")
    assert _memory.hessian_groups(1001) == _memory.HESSIAN_GROUPS  # 8 MB each: no extra groups
    assert base == 8 * (_memory.HESSIAN_GROUPS + _memory.NEWTON_CHOLESKY_HESSIANS) * 1001 ** 2
    wide = fit_state_bytes(1000, 3, "newton-cholesky") - fit_state_bytes(1000, 3, "newton-cg")
    assert wide == 9 * base
