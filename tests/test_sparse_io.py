"""Sparse files: svmlight/libsvm and scipy.sparse .npz read as CSR, `fastlr train/predict` on
them (whole and streamed with --chunk-rows) against the same data trained dense."""

import os

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from fastlr.io import DataFileError, iter_svmlight_chunks, read_data, scan_svmlight
from fastlr.model_file import load_model
from reference import assert_fits_agree

import _cli_runner


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparse")
    rng = np.random.default_rng(0)
    X = sp.random(1200, 150, density=0.05, format="csr", random_state=1)
    X.data = np.round(X.data * 64) / 64  # exact through svmlight's %.16g text
    X = X.tolil()
    X[0, 0] = 1.0  # column 0 present: the file is zero-based under "auto"
    X = X.tocsr()
    y = (X @ rng.standard_normal(150) + 0.1 * rng.standard_normal(1200) > 0.2).astype(int)
    dump_svmlight_file(X, y, str(root / "train.svm"), zero_based=True)
    sp.save_npz(root / "train.npz", X.tocsc())  # stored as CSC: read back as CSR
    np.save(root / "train_dense.npy", X.toarray())
    np.save(root / "y.npy", y)
    dump_svmlight_file(X[:40, :90], y[:40], str(root / "narrow.svm"), zero_based=True)
    return root, X, y


def cli(*args, cwd=None):
    """``python -m fastlr.cli ARGS``, forked from a warm server (tests/_cli_runner.py)."""
    return _cli_runner.run_cli(*args, cwd=cwd, timeout=600)


def test_svmlight_is_read_as_csr(files):
    root, X, y = files
    data = read_data(root / "train.svm")
    assert sp.issparse(data.X) and data.X.format == "csr"
    np.testing.assert_array_equal(data.X.toarray(), X.toarray())
    np.testing.assert_array_equal(data.y, y)
    wide = read_data(root / "narrow.svm", n_features=150, zero_based=True)
    assert wide.X.shape == (40, 150)
    with pytest.raises(DataFileError, match="n_features"):
        read_data(root / "train.svm", n_features=10)


def test_svmlight_whole_number_labels_come_back_as_integers(files, tmp_path):
    """load_svmlight_file gives float64 labels; classes written -1/+1 must stay -1/1 (not -1.0/1.0)
    in the data read, the streamed labels, the model's classes_ and the predictions it writes."""
    root, X, y = files
    signed = tmp_path / "signed.svm"
    dump_svmlight_file(X, 2 * y - 1, str(signed), zero_based=True)
    data = read_data(signed)
    assert data.y.dtype == np.int64
    np.testing.assert_array_equal(data.y, 2 * y - 1)
    layout = scan_svmlight(signed, 500)
    assert layout.y.dtype == np.int64
    assert all(c_y.dtype == np.int64 for _, c_y in iter_svmlight_chunks(signed, 500, layout))
    # labels that are not whole numbers are kept as read (a regression target is refused later)
    frac = tmp_path / "frac.svm"
    dump_svmlight_file(X[:4], np.array([0.5, 1.0, 0.5, 1.0]), str(frac), zero_based=True)
    assert read_data(frac).y.dtype == np.float64
    model_path = tmp_path / "m.npz"
    assert cli("train", signed, "--out", model_path, "--backend", "cpu", "--progress", "none",
               "--chunk-rows", "400", "--solver", "sgd").returncode == 0
    assert load_model(model_path).classes_.tolist() == [-1, 1]
    result = cli("predict", model_path, signed, "--out", "-")
    assert result.returncode == 0, result.stderr
    labels = {line.split(",")[0] for line in result.stdout.splitlines()[1:]}
    assert labels <= {"-1", "1"} and labels, result.stdout[:200]


def test_sparse_npz_is_read_as_csr(files):
    root, X, _ = files
    data = read_data(root / "train.npz")
    assert data.X.format == "csr" and data.y is None
    np.testing.assert_array_equal(data.X.toarray(), X.toarray())


def test_malformed_svmlight_line_is_named(tmp_path):
    path = tmp_path / "bad.svm"
    path.write_text("1 3:1 5:2\n# a comment\n0 4:1 x:2\n")
    with pytest.raises(DataFileError, match=r"line 3 is not an svmlight/libsvm line"):
        read_data(path)
    with pytest.raises(DataFileError, match=r"line 3 is not an svmlight/libsvm line"):
        scan_svmlight(path, 1)


def test_streaming_chunks_are_bounded_and_match_the_whole_file(files):
    root, X, y = files
    layout = scan_svmlight(root / "train.svm", 250)
    assert (layout.n_samples, layout.n_features, layout.zero_based) == (1200, 150, True)
    np.testing.assert_array_equal(layout.y, y)
    chunks = list(iter_svmlight_chunks(root / "train.svm", 250, layout))
    assert [c[0].shape[0] for c in chunks] == [250, 250, 250, 250, 200]
    assert all(c[0].format == "csr" and c[0].shape[1] == 150 for c in chunks)
    np.testing.assert_array_equal(sp.vstack([c[0] for c in chunks]).toarray(), X.toarray())
    one_based = root / "one.svm"
    dump_svmlight_file(X, y, str(one_based), zero_based=False)
    layout1 = scan_svmlight(one_based, 300)
    assert (layout1.n_features, layout1.zero_based) == (150, False)
    ref, _ = load_svmlight_file(str(one_based))
    got = sp.vstack([c for c, _ in iter_svmlight_chunks(one_based, 300, layout1)])
    np.testing.assert_array_equal(got.toarray(), ref.toarray())


def _coef(path):
    model = load_model(path)
    return np.column_stack([model.coef_, model.intercept_])


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_cli_train_on_sparse_files_matches_dense(files, tmp_path, solver):
    root, X, y = files
    common = ["--backend", "cpu", "--solver", solver, "--random-state", "3", "--progress", "none",
              "--epochs", "4" if solver == "sgd" else "100"]
    if solver == "lbfgs":  # every row, to a tol where two fits of F can be compared on any CPU
        common += ["--val-fraction", "0", "--tol", "1e-8"]
    runs = {
        "dense": ["train", root / "train_dense.npy", "--labels", root / "y.npy"],
        "svm": ["train", root / "train.svm"],
        "npz": ["train", root / "train.npz", "--labels", root / "y.npy"],
    }
    for name, args in runs.items():
        out = cli(*args, "--out", tmp_path / f"{name}.npz", *common)
        assert out.returncode == 0, out.stderr
    ref = _coef(tmp_path / "dense.npz")
    for name in ("svm", "npz"):
        if solver == "sgd":
            # a fixed path of 4 epochs with the same batches: CSR and dense rows round differently
            # only (float64 both), and the stable steps do not amplify it
            np.testing.assert_allclose(_coef(tmp_path / f"{name}.npz"), ref, rtol=1e-9, atol=1e-9)
        else:
            # the dense and CSR kernels sum in different orders: two fits of one F, as close as
            # their float64 reference gradients and F's strong convexity allow
            assert_fits_agree(load_model(tmp_path / f"{name}.npz"), load_model(tmp_path / "dense.npz"),
                              X, y, C=1.0, tol=1e-8, tol_b=1e-8)


def test_cli_streams_svmlight_like_npy(files, tmp_path):
    root, _, _ = files
    common = ["--solver", "sgd", "--chunk-rows", "300", "--epochs", "3", "--random-state", "5",
              "--backend", "cpu", "--progress", "none"]
    a = cli("train", root / "train.svm", "--out", tmp_path / "a.npz", *common)
    b = cli("train", root / "train_dense.npy", "--labels", root / "y.npy", "--out", tmp_path / "b.npz", *common)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    np.testing.assert_allclose(_coef(tmp_path / "a.npz"), _coef(tmp_path / "b.npz"), rtol=1e-9, atol=1e-12)
    metrics = [[line for line in out.stdout.splitlines() if line.startswith(("train:", "validation:"))]
               for out in (a, b)]
    assert len(metrics[0]) == 2 and metrics[0] == metrics[1]


def test_cli_predict_on_sparse_files(files, tmp_path):
    root, X, _ = files
    model_path = tmp_path / "m.npz"
    assert cli("train", root / "train.svm", "--out", model_path, "--backend", "cpu",
               "--progress", "none").returncode == 0
    model = load_model(model_path)
    for data, extra, rows in ((root / "train.npz", [], X), (root / "narrow.svm", ["--index-base", "0"], None)):
        out_csv = tmp_path / "p.csv"
        result = cli("predict", model_path, data, "--out", out_csv, "--proba", *extra)
        assert result.returncode == 0, result.stderr
        got = np.loadtxt(out_csv, delimiter=",", skiprows=1)
        if rows is None:  # the narrow file: its 90 columns, widened to the model's 150
            rows = sp.hstack([X[:40, :90], sp.csr_matrix((40, 60))]).tocsr()
        np.testing.assert_allclose(got[:, 1:], model.predict_proba(rows), rtol=1e-12)


def test_cli_predict_scores_against_the_labels_the_file_carries(files, tmp_path):
    """Without --labels and --out, predict on an svmlight file prints the accuracy against its labels."""
    from fastlr.io import read_data

    root, _, _ = files
    model_path = tmp_path / "m.npz"
    assert cli("train", root / "train.svm", "--out", model_path, "--backend", "cpu",
               "--progress", "none").returncode == 0
    result = cli("predict", model_path, root / "train.svm")
    assert result.returncode == 0, result.stderr
    data = read_data(root / "train.svm", n_features=load_model(model_path).n_features_in_)
    expected = load_model(model_path).score(data.X, data.y)
    n = data.X.shape[0]
    assert f"accuracy {expected:.4f} ({round(expected * n)} of {n} rows) against the labels in" in result.stdout


def test_cli_errors_are_one_line_and_write_nothing(files, tmp_path):
    root, _, _ = files
    bad = tmp_path / "bad.svm"
    bad.write_text("1 1:1\n0 2:abc\n")
    cases = [
        ["train", bad, "--out", tmp_path / "m.npz"],
        ["train", bad, "--out", tmp_path / "m.npz", "--solver", "sgd", "--chunk-rows", "1"],
        ["train", root / "train.svm", "--out", tmp_path / "m.npz", "--n-features", "20"],
        ["train", root / "train.svm", "--out", tmp_path / "m.npz", "--index-base", "1"],
        ["train", root / "train.npz", "--out", tmp_path / "m.npz"],  # X only: needs --labels
        ["train", root / "train.svm", "--out", tmp_path / "m.npz", "--backend", "cuda"],
    ]
    for args in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not os.path.exists(tmp_path / "m.npz")


def test_cli_predict_with_the_wrong_index_base_says_which_to_give(tmp_path):
    """A 1-based file read 0-based has an index one past the model's width: the error says so."""
    one_based = tmp_path / "one.svm"
    one_based.write_text("".join(f"{i % 2} 1:{i} 2:{-i} 3:{i * i % 7}\n" for i in range(40)))
    model_path = tmp_path / "m.npz"
    trained = cli("train", one_based, "--out", model_path, "--backend", "cpu", "--progress", "none")
    assert trained.returncode == 0, trained.stderr
    assert load_model(model_path).n_features_in_ == 3  # auto: read as 1-based
    result = cli("predict", model_path, one_based, "--index-base", "0", "--out", tmp_path / "p.csv")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "beyond n_features=3" in result.stderr and "--index-base 1" in result.stderr
    assert not os.path.exists(tmp_path / "p.csv")


def test_cli_predict_reads_svmlight_with_the_base_the_model_was_trained_on(files, tmp_path):
    """A 0-based training file, a 0-based test file without column 0: "auto" alone would read the
    test file 1-based (shifting every column); the model file's saved base reads it right, in
    memory and streamed, and an explicit --index-base still wins."""
    from fastlr.model_file import load_model_and_data

    root, X, y = files
    test = X[:300].tolil()
    test[:, 0] = 0
    test = test.tocsr()
    test.eliminate_zeros()
    dump_svmlight_file(test, y[:300], str(tmp_path / "test.svm"), zero_based=True)
    assert read_data(tmp_path / "test.svm").index_base == 1  # what "auto" guesses for this file
    assert read_data(root / "train.svm").index_base == 0
    for name, extra in (("mem", []), ("streamed", ["--solver", "sgd", "--chunk-rows", "500"])):
        model_path = tmp_path / f"{name}.npz"
        assert cli("train", root / "train.svm", "--out", model_path, "--backend", "cpu",
                   "--progress", "none", *extra).returncode == 0
        assert load_model_and_data(model_path)[1].index_base == 0
        model = load_model(model_path)
        expected = model.score(test, y[:300])
        result = cli("predict", model_path, tmp_path / "test.svm")
        assert result.returncode == 0, result.stderr
        assert f"accuracy {expected:.4f}" in result.stdout
        for given in ("1", "auto"):  # an explicit --index-base wins, auto included
            shifted = cli("predict", model_path, tmp_path / "test.svm", "--index-base", given)
            assert shifted.returncode == 0 and f"accuracy {expected:.4f}" not in shifted.stdout


def test_cli_streamed_sgd_on_unscaled_data_says_to_scale_it(tmp_path):
    """Streamed SGD on raw breast cancer (columns from 1e-3 to 4e3) ends with the epoch losses
    and the spread of the first chunk's columns, as fit's warning does for data in memory."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    result = cli("train", tmp_path / "X.npy", "--labels", tmp_path / "y.npy", "--out", tmp_path / "m.npz",
                 "--solver", "sgd", "--epochs", "2", "--chunk-rows", "100", "--random-state", "0",
                 "--backend", "cpu", "--progress", "none")
    assert result.returncode == 0, result.stderr
    spread = np.abs(X[:100]).max(axis=0)
    assert "sgd failed to converge in 2 epochs (epoch loss" in result.stderr
    assert (f"largest |x_j| per column in the first 100 rows from {spread.min():.3g} to "
            f"{spread.max():.3g}, intercept included" in result.stderr), result.stderr


def test_cli_streamed_sgd_stops_on_tol_and_warns_when_it_runs_out_of_epochs(files, tmp_path):
    """--chunk-rows applies --tol as fit does (n_iter_no_change = 5 epochs without a gain of tol)."""
    root, _, _ = files
    common = ["train", root / "train.svm", "--out", tmp_path / "m.npz", "--solver", "sgd",
              "--chunk-rows", "100", "--random-state", "0", "--backend", "cpu", "--progress", "none"]
    # A gain of 10 in the mean log loss never happens: the first epoch sets the best loss and
    # the five after it miss it, so the run stops after 6 epochs (scikit-learn's rule, as fit).
    stopped = cli(*common, "--epochs", "20", "--tol", "10")
    assert stopped.returncode == 0, stopped.stderr
    assert "sgd, loss log_loss: 6 epochs" in stopped.stdout and "warning" not in stopped.stderr
    # Two epochs cannot show five without a gain: all run, and the stop short of tol is said.
    short = cli(*common, "--epochs", "2", "--tol", "1e-12")
    assert short.returncode == 0, short.stderr
    assert "sgd, loss log_loss: 2 epochs" in short.stdout
    assert "warning: sgd failed to converge in 2 epochs (epoch loss" in short.stderr
    assert "increase --epochs or loosen --tol" in short.stderr
    # --tol none: all epochs, no warning.
    every = cli(*common, "--epochs", "3", "--tol", "none")
    assert every.returncode == 0 and "3 epochs" in every.stdout and "warning" not in every.stderr
