"""`fastlr bench --sparse`: its generators, its objective and one tiny run (not timings)."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastlr
from fastlr import sparse_bench as sb


def test_ctr_generator_is_deterministic_and_shaped_like_ctr_data():
    X, y = sb.make_ctr(3000, d=2**16, nnz_per_row=40, seed=3)
    X2, y2 = sb.make_ctr(3000, d=2**16, nnz_per_row=40, seed=3)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and X.indices.dtype == np.int32
    assert X.shape == (3000, 2**16) and X.has_sorted_indices
    assert (X != X2).nnz == 0 and np.array_equal(y, y2)
    per_row = np.diff(X.indptr)
    assert per_row.max() <= 40 and per_row.mean() > 30  # repeats within a row merge
    assert np.all(X.data == 1.0)
    assert 0.05 < y.mean() < 0.5  # about 20% positives
    counts = np.bincount(X.indices, minlength=X.shape[1])
    assert counts.max() > 0.2 * X.shape[0]  # Zipf: a head column is in a large share of the rows
    assert np.median(counts) <= 2  # and most columns are rare (in at most 2 of 3000 rows)


@pytest.mark.parametrize("n_classes", [2, 20])
def test_text_generator_rows_are_unit_tfidf(n_classes):
    X, y = sb.make_text(800, d=5000, nnz_per_row=150, n_classes=n_classes, seed=1)
    assert X.dtype == np.float32 and X.shape == (800, 5000)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)  # float32 rounding of ~150 terms
    assert np.all(X.data > 0)
    assert set(np.unique(y)) <= set(range(n_classes)) and len(np.unique(y)) > 1


@pytest.mark.parametrize("k", [1, 5])
def test_sparse_objective_matches_fastlr_loss_grad(k):
    X, y = sb.make_text(400, d=3000, n_classes=2 if k == 1 else k, seed=2)
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((k, X.shape[1])), rng.standard_normal(k)
    C = 0.7
    mean_loss, _, _ = fastlr.loss_grad(X, y, W if k > 1 else W[0], b if k > 1 else b[0],
                                       backend="numpy")
    expected = C * mean_loss * X.shape[0] + 0.5 * np.sum(W * W)
    assert sb.sparse_objective(X, y, W, b, C) == pytest.approx(expected, rel=1e-12)


def test_unknown_problem_is_named():
    with pytest.raises(ValueError, match="unknown sparse problem 'ctr2'"):
        sb.make_sparse_problem("ctr2")


def test_tiny_run_reports_every_peer_with_gaps_and_skips():
    peers = ("fastlr-lbfgs", "sklearn-lbfgs", "sklearn-liblinear", "fastlr-sgd", "sklearn-sgd")
    result = sb.run_sparse_bench(problems=("text", "text-20"), n_text=300, peers=peers, repeat=1,
                                 tol=1e-8)
    binary, multi = result["problems"]
    assert binary["classes"] == 2 and multi["classes"] == 20
    for row in (binary, multi):
        assert row["read_s"] > 0 and row["grad_s"] > 0
        # fastlr and scikit-learn lbfgs at a tight tol reach the same optimum
        assert row["fits"]["fastlr-lbfgs"]["gap"] < 1e-6
        assert row["fits"]["sklearn-lbfgs"]["gap"] < 1e-6
        assert min(f["gap"] for f in row["fits"].values()) == 0.0
    assert set(binary["epochs"]) == {"fastlr-sgd", "sklearn-sgd"}
    assert {"sklearn-liblinear", "sklearn-sgd"} <= set(multi["skipped"])
    table = sb.format_sparse_table(result)
    assert "| fastlr-lbfgs |" in table and "### text-20" in table and "sklearn-sgd skipped" in table


def _cli(*args):
    import _cli_runner
    return _cli_runner.run_cli("bench", "--sparse", *args, timeout=600)


def test_cli_bench_sparse(tmp_path):
    out = tmp_path / "sparse.json"
    r = _cli("--problems", "text", "--n-text", "200", "--peers", "fastlr-lbfgs,sklearn-lbfgs",
             "--repeat", "1", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "| fastlr-lbfgs |" in r.stdout and "| sklearn-lbfgs |" in r.stdout
    import json
    result = json.loads(out.read_text())
    assert [p["problem"] for p in result["problems"]] == ["text"]


@pytest.mark.parametrize("args, message", [
    (("--peers", "sklearn-nope"), "unknown sparse peer 'sklearn-nope'"),
    (("--problems", "ctr,images"), "unknown sparse problem 'images'"),
    (("--n-text", "0"), "--n-text must be a positive number of rows"),
])
def test_cli_bench_sparse_user_errors_are_one_line(args, message):
    r = _cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
