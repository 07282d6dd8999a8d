"""``fastlr train``, ``predict`` and ``info`` run as commands on small files in tmp_path.

Each command is a child process (forked from a warm server, tests/_cli_runner.py) or, where a
test needs a fresh interpreter, ``subprocess``."""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastlr import LogisticRegression
from fastlr.io import read_data
from fastlr.model_file import load_model

import _cli_runner

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_cli(*args, cwd=None, timeout=300):
    """``python -m fastlr.cli ARGS`` with PYTHONUNBUFFERED=1, forked from a warm server (tests/_cli_runner.py)."""
    return _cli_runner.run_cli(*args, cwd=cwd, timeout=timeout, unbuffered=True)


def ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def problem(n=400, d=5, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, classes))
    y = np.argmax(X @ W + 0.3 * rng.standard_normal((n, classes)), axis=1)
    return X, y


def write_csv(path, X, y, names=None, sep=","):
    names = names or [f"f{j}" for j in range(X.shape[1])] + ["label"]
    with open(path, "w") as handle:
        handle.write(sep.join(names) + "\n")
        for row, label in zip(X, y):
            handle.write(sep.join(repr(float(v)) for v in row) + sep + str(label) + "\n")


def read_predictions(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    X, y = problem()
    X3, y3 = problem(classes=3, seed=1)
    write_csv(root / "bin.csv", X, y)
    np.savez(root / "multi.npz", X=X3, y=y3)
    np.save(root / "X.npy", X.astype(np.float32))
    np.save(root / "y.npy", y)
    with open(root / "bin.svm", "w") as handle:
        for row, label in zip(X, y):
            handle.write(f"{label} " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row)) + "\n")
    return root


# -- train / predict on every format ----------------------------------------------------------

@pytest.mark.parametrize("name, extra", [
    ("bin.csv", ["--solver", "lbfgs", "--plot", "loss.png"]),
    ("multi.npz", ["--solver", "gd", "--learning-rate", "backtracking", "--eta0", "1"]),
    ("bin.svm", ["--solver", "sgd", "--epochs", "4", "--random-state", "0", "--plot", "loss.png"]),
    ("X.npy", ["--labels", "y.npy", "--solver", "sgd", "--epochs", "3", "--random-state", "0",
               "--chunk-rows", "64", "--early-stopping"]),
])
def test_train_then_predict_each_format(files, tmp_path, name, extra):
    extra = [str(files / e) if e == "y.npy" else str(tmp_path / e) if e.endswith(".png") else e
             for e in extra]
    result = ok(run_cli("train", files / name, "--out", tmp_path / "m.npz", *extra))
    lines = result.stdout.splitlines()
    assert any(line.startswith("train:") and "accuracy" in line for line in lines), result.stdout
    assert any(line.startswith("validation:") and "accuracy" in line for line in lines), result.stdout
    assert "model saved to" in result.stdout
    assert (tmp_path / "m.npz").exists()
    if "--plot" in extra:
        assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ok(run_cli("predict", tmp_path / "m.npz", files / name, "--proba", "--out", tmp_path / "p.csv"))
    rows = read_predictions(tmp_path / "p.csv")
    assert len(rows) == 400
    proba_columns = [key for key in rows[0] if key.startswith("proba")]
    assert len(proba_columns) == (3 if name == "multi.npz" else 2)
    model = load_model(tmp_path / "m.npz")
    truth = np.load(files / "y.npy") if name != "multi.npz" else np.load(files / "multi.npz")["y"]
    accuracy = np.mean([int(float(r["prediction"])) for r in rows] == truth)
    assert accuracy > 0.6, accuracy
    assert model.solver == extra[extra.index("--solver") + 1]


def test_parquet(files, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = problem()
    table = pa.table({**{f"f{j}": X[:, j] for j in range(X.shape[1])}, "cls": y})
    pq.write_table(table, tmp_path / "d.parquet")
    ok(run_cli("train", tmp_path / "d.parquet", "--target", "cls", "--out", tmp_path / "m.npz"))
    ok(run_cli("predict", tmp_path / "m.npz", tmp_path / "d.parquet", "--target", "cls",
               "--out", tmp_path / "p.csv"))
    assert len(read_predictions(tmp_path / "p.csv")) == 400


def test_round_trip_predicts_like_an_in_process_fit(files, tmp_path):
    ok(run_cli("train", files / "multi.npz", "--val-fraction", "0", "--C", "0.5", "--epochs", "200",
               "--out", tmp_path / "m.npz"))
    data = read_data(files / "multi.npz")
    reference = LogisticRegression(C=0.5, max_iter=200).fit(data.X, data.y)
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.coef_, reference.coef_)
    np.testing.assert_array_equal(loaded.intercept_, reference.intercept_)
    ok(run_cli("predict", tmp_path / "m.npz", files / "multi.npz", "--proba", "--out", tmp_path / "p.csv"))
    rows = read_predictions(tmp_path / "p.csv")
    np.testing.assert_array_equal([int(r["prediction"]) for r in rows], reference.predict(data.X))
    proba = np.array([[float(r[f"proba_{c}"]) for c in reference.classes_] for r in rows])
    np.testing.assert_allclose(proba, reference.predict_proba(data.X), rtol=1e-12, atol=1e-15)


def test_predict_writes_the_csv_to_stdout(files, tmp_path):
    """--out - : the CSV alone on standard output (what --out FILE holds), messages on stderr."""
    ok(run_cli("train", files / "multi.npz", "--out", tmp_path / "m.npz"))
    ok(run_cli("predict", tmp_path / "m.npz", files / "multi.npz", "--proba", "--out", tmp_path / "p.csv"))
    result = run_cli("predict", tmp_path / "m.npz", files / "multi.npz", "--proba", "--out", "-")
    ok(result)
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as handle:
        assert result.stdout.replace("\r\n", "\n") == handle.read().replace("\r\n", "\n")
    assert "accuracy" in result.stderr and "accuracy" not in result.stdout
    assert not (tmp_path / "-").exists()
    # a reader that stops after a line (as `| head -1`) while megabytes are still to come (more
    # than a pipe's buffer): no traceback, no error line
    X, _ = problem(n=100_000)
    np.save(tmp_path / "big.npy", X)
    with subprocess.Popen([sys.executable, "-m", "fastlr.cli", "predict", str(tmp_path / "m.npz"),
                           str(tmp_path / "big.npy"), "--proba", "--out", "-"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout.readline().startswith(b"prediction")
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "error" not in err


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # in-process, on arrays
def test_predict_on_a_table_without_labels(files, tmp_path):
    ok(run_cli("train", files / "bin.csv", "--out", tmp_path / "m.npz"))
    X, _ = problem()
    with open(tmp_path / "x.csv", "w") as handle:
        handle.write(",".join(f"f{j}" for j in range(5)) + "\n")
        for row in X:
            handle.write(",".join(repr(float(v)) for v in row) + "\n")
    ok(run_cli("predict", tmp_path / "m.npz", tmp_path / "x.csv", "--out", tmp_path / "p.csv"))
    expected = load_model(tmp_path / "m.npz").predict(X)
    assert [int(r["prediction"]) for r in read_predictions(tmp_path / "p.csv")] == expected.tolist()


def test_progress_bar_mode(files, tmp_path):
    result = ok(run_cli("train", files / "bin.csv", "--solver", "sgd", "--epochs", "3", "--progress", "bar",
                        "--out", tmp_path / "m.npz"))
    assert "3/3" in result.stderr  # tqdm's bar


def test_progress_lines_format_values_as_python_would_round_them():
    """--progress lines: 4 decimals in [1e-3, 1e4), else 4 significant digits, and a loss of
    exactly -0.0 (a mean log loss of 0 computed as a negative sum) prints as 0.0000."""
    import io

    from fastlr._progress import Progress

    out = io.StringIO()
    Progress(2, "fastlr train", mode="lines", file=out).update(
        loss=0.123456, val_loss=-0.0, tiny=2.5e-7, big=123456.7, samples=3)
    assert out.getvalue() == ("fastlr train: epoch 1/2 loss=0.1235 val_loss=0.0000 tiny=2.5e-07 "
                              "big=1.235e+05 samples=3\n")


def test_info():
    result = ok(run_cli("info"))
    out = result.stdout
    for word in ("fastlr", "numba", "numpy", "scikit-learn", "threading", "cuda"):
        assert word in out
    threading_line = next(line for line in out.splitlines() if line.startswith("threading"))
    assert "threads" in threading_line
    from fastlr.backends.cpu import SOFTMAX_BLAS
    cpu_line = next(line for line in out.splitlines() if line.startswith("cpu"))
    assert ("BLAS block products" if SOFTMAX_BLAS else "register tiles") in cpu_line


# -- user errors ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.csv").write_text("")
    (root / "ragged.csv").write_text("a,b,label\n1,2,0\n3,4\n5,6,1\n")
    (root / "text.csv").write_text("a,b,label\n1,2,0\n3,abc,1\n5,6,1\n")
    (root / "one.csv").write_text("a,b,label\n1,2,0\n3,4,0\n5,6,0\n7,8,0\n")
    (root / "data.xyz").write_text("1,2,3\n")
    (root / "ok.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,1\n7,1,0\n2,2,1\n3,3,0\n")
    (root / "model.npz").write_bytes(b"PK\x03\x04 this is not a model")
    np.save(root / "X.npy", np.ones((6, 2)))
    nan_x = np.ones((6, 3))
    nan_x[4, 2] = np.nan
    np.save(root / "Xnan.npy", nan_x)
    np.save(root / "y.npy", np.array([0, 1, 0, 1, 0, 1]))
    return root


@pytest.mark.parametrize("args, fragment", [
    (["train", "{b}/missing.csv", "--out", "{t}/m.npz"], "missing.csv"),
    (["train", "{b}/empty.csv", "--out", "{t}/m.npz"], "empty.csv"),
    (["train", "{b}/ragged.csv", "--out", "{t}/m.npz"], "ragged.csv"),
    (["train", "{b}/text.csv", "--out", "{t}/m.npz"], "text.csv"),
    (["train", "{b}/ok.csv", "--target", "nope", "--out", "{t}/m.npz"], "nope"),
    (["train", "{b}/one.csv", "--out", "{t}/m.npz"], "one class"),
    (["train", "{b}/data.xyz", "--out", "{t}/m.npz"], "data.xyz"),
    (["train", "{b}/X.npy", "--out", "{t}/m.npz"], "--labels"),
    (["train", "{b}/Xnan.npy", "--labels", "{b}/y.npy", "--val-fraction", "0", "--out", "{t}/m.npz"],
     "Xnan.npy: non-finite value nan at row 4, column 2"),
    (["train", "{b}/ok.csv", "--C", "-1", "--out", "{t}/m.npz"], "--C"),
    (["train", "{b}/ok.csv", "--val-fraction", "1.5", "--out", "{t}/m.npz"], "--val-fraction"),
    (["train", "{b}/ok.csv", "--epochs", "0", "--out", "{t}/m.npz"], "--epochs"),
    (["train", "{b}/ok.csv", "--solver", "newton", "--out", "{t}/m.npz"], "invalid choice"),
    (["train", "{b}/ok.csv", "--out", "{t}/m.npz", "--bogus"], "unrecognized arguments: --bogus"),
    (["predict", "{b}/model.npz", "{b}/ok.csv", "--out", "{t}/p.csv", "--bogus", "1"],
     "unrecognized arguments: --bogus 1"),
    (["train", "{b}/ok.csv", "--chunk-rows", "10", "--solver", "sgd", "--out", "{t}/m.npz"], "ok.csv"),
    (["train", "{b}/ok.csv", "--out", "{t}/no/such/dir/m.npz"], "does not exist"),
    (["train", "{b}/ok.csv", "--solver", "sgd", "--resume", "{t}/none.npz", "--out", "{t}/m.npz"], "none.npz"),
    (["predict", "{b}/model.npz", "{b}/ok.csv", "--out", "{t}/p.csv"], "model.npz"),
    (["predict", "{b}/missing.npz", "{b}/ok.csv", "--out", "{t}/p.csv"], "missing.npz"),
])
def test_user_errors_exit_2_with_one_line(bad_files, tmp_path, args, fragment):
    args = [a.format(b=bad_files, t=tmp_path) for a in args]
    result = run_cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"fastlr {args[0]}: error: "), lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_nonfinite_values_are_named_by_file_row_and_column(bad_files, tmp_path):
    """predict on a .npy and train on an svmlight file with NaN: one line naming the file, the
    row and the column (0-based), as train on a .npy does."""
    rng = np.random.default_rng(3)
    np.save(tmp_path / "X3.npy", rng.standard_normal((40, 3)))
    np.save(tmp_path / "y3.npy", np.arange(40) % 2)
    ok(run_cli("train", tmp_path / "X3.npy", "--labels", tmp_path / "y3.npy", "--out", tmp_path / "m.npz"))
    (tmp_path / "nan.svm").write_text("1 1:0.5 3:nan\n0 2:1.0\n1 1:0.2 2:0.3\n0 3:1.5\n")
    for args, fragments in [
        (["predict", tmp_path / "m.npz", bad_files / "Xnan.npy", "--out", "-"],
         ["Xnan.npy: non-finite value nan at row 4, column 2"]),
        (["train", tmp_path / "nan.svm", "--out", tmp_path / "m2.npz"],
         ["nan.svm: ", "row 0, column 2"]),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert all(fragment in lines[0] for fragment in fragments), lines[0]
        assert result.stdout == ""
    assert not (tmp_path / "m2.npz").exists()


def test_predict_with_wrong_feature_count(bad_files, files, tmp_path):
    ok(run_cli("train", files / "bin.csv", "--out", tmp_path / "m.npz"))
    result = run_cli("predict", tmp_path / "m.npz", bad_files / "ok.csv", "--out", tmp_path / "p.csv")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    # the model takes its features by name (f0, f1, ...): ok.csv's columns a, b, label are listed
    assert "no column named 'f0'" in result.stderr and "(its columns: a, b, label)" in result.stderr
    # a .npy has no names: its columns are counted
    np.save(tmp_path / "narrow.npy", np.zeros((3, 2)))
    result = run_cli("predict", tmp_path / "m.npz", tmp_path / "narrow.npy", "--out", tmp_path / "p.csv")
    assert result.returncode == 2 and "2 feature columns, but" in result.stderr
    assert "expects 5" in result.stderr


# -- SIGINT checkpoint and --resume ----------------------------------------------------------------

@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "chunk-rows"])
def test_sigint_saves_a_checkpoint_and_resume_equals_an_uninterrupted_run(tmp_path, streamed):
    """In memory (the trainer's epoch loop) and streamed (--chunk-rows): resume is bit for bit."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40_000, 20))
    y = (X[:, 0] - X[:, 1] + rng.standard_normal(40_000) > 0).astype(int)
    common = ["--solver", "sgd", "--epochs", "60", "--random-state", "7", "--batch-size", "16",
              "--learning-rate", "invscaling", "--eta0", "0.05", "--progress", "lines", "--tol", "none"]
    if streamed:
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        data = tmp_path / "X.npy"
        common += ["--labels", str(tmp_path / "y.npy"), "--chunk-rows", "5000"]
    else:
        np.savez(tmp_path / "d.npz", X=X, y=y)
        data = tmp_path / "d.npz"
    out = tmp_path / "m.npz"
    child = subprocess.Popen([sys.executable, "-m", "fastlr.cli", "train", str(data),
                              "--out", str(out), *common],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    stderr_lines = []

    def drain():
        for line in child.stderr:
            stderr_lines.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any("epoch 2/60" in line for line in stderr_lines):
        assert child.poll() is None, "".join(stderr_lines)
        assert time.monotonic() < deadline, "no epoch reported"
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    reader.join(timeout=10)
    assert child.returncode == 130, "".join(stderr_lines)
    checkpoint = tmp_path / "m.checkpoint.npz"
    notice = [line for line in stderr_lines if "interrupted" in line]
    assert len(notice) == 1 and str(checkpoint) in notice[0]
    assert "Traceback" not in "".join(stderr_lines)
    assert not out.exists()
    done = load_model(checkpoint).n_iter_
    assert 2 <= done < 60

    ok(run_cli("train", data, "--out", out, "--resume", checkpoint, *common))
    ok(run_cli("train", data, "--out", tmp_path / "straight.npz", *common))
    resumed, straight = load_model(out), load_model(tmp_path / "straight.npz")
    np.testing.assert_array_equal(resumed.coef_, straight.coef_)
    np.testing.assert_array_equal(resumed.intercept_, straight.intercept_)
    assert resumed.t_ == straight.t_
    assert resumed.n_iter_ == straight.n_iter_ == 60
    assert resumed.loss_curve_ == straight.loss_curve_


# -- bounded memory with --chunk-rows ---------------------------------------------------------------

_MEASURE = textwrap.dedent("""
    import sys
    from fastlr.cli import main
    status = main(sys.argv[1:])
    with open("/proc/self/status") as handle:
        peak = [line.split()[1] for line in handle if line.startswith("VmHWM")][0]
    print("VMHWM_KB", peak)
    sys.exit(status)
""")


def _peak_rss_mb(*args):
    result = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, args)], capture_output=True,
                            text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr
    line = [line for line in result.stdout.splitlines() if line.startswith("VMHWM_KB")][-1]
    return int(line.split()[1]) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_chunked_training_memory_is_bounded_by_the_chunk(tmp_path):
    n, d = 800_000, 64
    big = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(d).astype(np.float32)
    labels = np.empty(n, dtype=np.int64)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), d), dtype=np.float32)
        big[start:start + len(block)] = block
        labels[start:start + len(block)] = block @ w > 0
    big.flush()
    del big
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "Xs.npy", rng.standard_normal((2_000, d), dtype=np.float32))
    np.save(tmp_path / "ys.npy", labels[:2_000])
    file_mb = os.path.getsize(tmp_path / "X.npy") / 2 ** 20
    assert file_mb > 190
    options = ["--solver", "sgd", "--epochs", "1", "--chunk-rows", "20000", "--random-state", "0",
               "--progress", "none"]
    # baseline: the same command on a tiny file (interpreter, imports, compiled kernels)
    baseline = _peak_rss_mb("train", tmp_path / "Xs.npy", "--labels", tmp_path / "ys.npy",
                            "--out", tmp_path / "small.npz", *options)
    peak = _peak_rss_mb("train", tmp_path / "X.npy", "--labels", tmp_path / "y.npy",
                        "--out", tmp_path / "big.npz", *options)
    assert peak < baseline + 120, (peak, baseline, file_mb)
    # the streamed model learned the labels of the big file (a noiseless linear rule)
    first_rows = np.load(tmp_path / "X.npy", mmap_mode="r")[:2_000]
    assert load_model(tmp_path / "big.npz").score(first_rows, labels[:2_000]) > 0.9


# -- the command line trains like the library ------------------------------------------------------

@pytest.mark.parametrize("k, seed, extra", [(2, 5, []), (3, 11, ["--learning-rate", "invscaling", "--batch-size", "32"])],
                         ids=["binary", "multinomial-invscaling"])
def test_sgd_gives_the_library_model_and_stops_on_tol(tmp_path, k, seed, extra):
    X, y = problem(n=1500, d=4, classes=k, seed=seed)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ok(run_cli("train", tmp_path / "d.npz", "--out", tmp_path / "m.npz", "--solver", "sgd",
               "--val-fraction", "0", "--random-state", seed, "--epochs", "200", "--progress", "none",
               "--tol", "1e-2", *extra))
    params = dict(solver="sgd", random_state=seed, max_iter=200, tol=1e-2)
    if extra:
        params.update(learning_rate="invscaling", batch_size=32)
    reference = LogisticRegression(**params).fit(X, y)
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.coef_, reference.coef_)
    np.testing.assert_array_equal(loaded.intercept_, reference.intercept_)
    assert int(np.max(loaded.n_iter_)) == int(np.max(reference.n_iter_)) < 200  # stopped on tol


def test_sgd_tol_none_runs_every_epoch(tmp_path):
    X, y = problem(n=600, d=3, seed=21)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ok(run_cli("train", tmp_path / "d.npz", "--out", tmp_path / "m.npz", "--solver", "sgd",
               "--random-state", "3", "--epochs", "30", "--tol", "none", "--progress", "none"))
    assert int(np.max(load_model(tmp_path / "m.npz").n_iter_)) == 30


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_boolean_columns_train_like_the_dataframe(tmp_path, fmt):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    n = 300
    frame = pd.DataFrame({"x": rng.standard_normal(n), "flag": rng.random(n) < 0.4})
    frame["label"] = (frame["x"] + 1.5 * frame["flag"] + 0.5 * rng.standard_normal(n) > 0.6).astype(int)
    path = tmp_path / f"d.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    ok(run_cli("train", path, "--out", tmp_path / "m.npz", "--val-fraction", "0", "--progress", "none"))
    reference = LogisticRegression().fit(frame[["x", "flag"]], frame["label"])
    np.testing.assert_array_equal(load_model(tmp_path / "m.npz").coef_, reference.coef_)


def test_option_choices_are_the_library_names():
    """--solver, --loss, --backend, --penalty, --learning-rate list what the library accepts."""
    from fastlr._math import LOSS_IDS
    from fastlr._penalty import PENALTIES
    from fastlr.backends import BACKEND_NAMES
    from fastlr.cli import build_parser
    from fastlr.trainer import LEARNING_RATES, SOLVERS

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {action.dest: tuple(action.choices) for action in train._actions if action.choices}
    assert choices["solver"] == SOLVERS
    assert choices["loss"] == tuple(LOSS_IDS)
    assert choices["learning_rate"] == LEARNING_RATES
    assert choices["penalty"] == PENALTIES + ("none",)
    assert set(choices["backend"]) == set(BACKEND_NAMES) - {"dask"}
    X, y = problem(n=60, d=3)
    for solver in SOLVERS:  # every listed name is one the estimator takes
        LogisticRegression(solver=solver, max_iter=2, tol=None).fit(X, y)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # in-process, on arrays
def test_predict_labels_of_another_kind_than_the_classes_are_refused(tmp_path):
    """Labels that are never one of the model's classes (numbers against string classes) would
    score 0 whatever the model: a one-line error and nothing written. Labels some of which are
    unknown (a typo) are scored, with a warning line counting them."""
    from fastlr.model_file import load_model

    X, codes = problem(n=200, classes=3, seed=4)
    names = np.array(["setosa", "versicolor", "virginica"])
    write_csv(tmp_path / "s.csv", X, names[codes])
    ok(run_cli("train", tmp_path / "s.csv", "--out", tmp_path / "m.npz", "--progress", "none"))
    np.save(tmp_path / "codes.npy", codes)
    result = run_cli("predict", tmp_path / "m.npz", tmp_path / "s.csv", "--labels", tmp_path / "codes.npy",
                     "--out", tmp_path / "p.csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"fastlr predict: error: {tmp_path / 'codes.npy'}: none of its labels "
                                     f"(0, 1, 2; numbers) is one of {tmp_path / 'm.npz'}'s classes "
                                     "(setosa, versicolor, virginica; strings)")
    assert not os.path.exists(tmp_path / "p.csv")
    typo = names[codes].astype(object)
    typo[codes == 0] = "Setosa"
    write_csv(tmp_path / "typo.csv", X, typo)
    result = ok(run_cli("predict", tmp_path / "m.npz", tmp_path / "typo.csv"))
    n_typo = int(np.sum(codes == 0))
    assert (f"warning: {n_typo} of 200 labels in {tmp_path / 'typo.csv'} are not among "
            f"{tmp_path / 'm.npz'}'s classes" in result.stderr), result.stderr
    hits = int(np.sum(load_model(tmp_path / "m.npz").predict(X) == typo))
    assert f"accuracy {hits / 200:.4f} ({hits} of 200 rows)" in result.stdout


def test_train_says_a_model_file_is_npz_whatever_its_name(files, tmp_path):
    from fastlr.model_file import load_model

    result = ok(run_cli("train", files / "bin.csv", "--out", tmp_path / "model.txt", "--progress", "none"))
    assert f"warning: --out {tmp_path / 'model.txt'}: the model is written as an .npz archive" in result.stderr
    assert load_model(tmp_path / "model.txt").n_features_in_ == 5
    assert "warning" not in ok(run_cli("train", files / "bin.csv", "--out", tmp_path / "m.NPZ",
                                       "--progress", "none")).stderr


def test_sgd_summary_gives_the_rate_without_a_slow_first_epoch():
    """A first epoch over 3× the median of the others (it loaded or compiled the kernels) is
    named in the summary with the others' rate; epochs alike, or one epoch, add nothing."""
    from types import SimpleNamespace

    from fastlr.cli.train import _first_epoch_note

    note = _first_epoch_note(SimpleNamespace(epoch_seconds=[2.0, 0.01, 0.012, 0.011]), 1000)
    assert note == "; the first epoch took 2 s, loading or compiling fastlr's kernels; 9.09e+04 samples/s in the others"
    assert _first_epoch_note(SimpleNamespace(epoch_seconds=[0.02, 0.01, 0.01]), 1000) == ""
    assert _first_epoch_note(SimpleNamespace(epoch_seconds=[2.0]), 1000) == ""
    assert _first_epoch_note(SimpleNamespace(), 1000) == ""


def test_summary_names_a_long_warm_up():
    """lbfgs's warm-up fit (kernels loaded, about 0.7 s, or compiled on a first run) is named
    in the summary from 2 s on."""
    from types import SimpleNamespace

    from fastlr.cli.train import _warm_up_note

    assert _warm_up_note(SimpleNamespace(warm_up_seconds=12.25)) == (
        "; loading or compiling fastlr's kernels took 12.2 s before it")
    assert _warm_up_note(SimpleNamespace(warm_up_seconds=0.7)) == ""
    assert _warm_up_note(None) == ""


def test_predict_takes_a_tables_features_and_labels_by_name(tmp_path):
    """A model trained on a table keeps its column names (and its label column's): predict finds
    them by name in a table whose columns are in another order, that lacks the labels, or has
    them elsewhere; a missing feature column is a one-line error."""
    from fastlr.model_file import load_model

    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 3))
    y = np.where(X @ [1.5, -2.0, 0.5] + 0.3 * rng.standard_normal(300) > 0, "yes", "no")
    names = ["a", "b", "c"]

    def write(path, order, with_labels=True):
        cols = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y}
        order = [n for n in order if with_labels or n != "label"]
        lines = [",".join(order)] + [",".join(str(cols[n][i]) for n in order) for i in range(len(y))]
        path.write_text("\n".join(lines) + "\n")
        return path

    train = write(tmp_path / "train.csv", ["label", "a", "b", "c"])  # label first
    out = run_cli("train", train, "--target", "label", "--out", tmp_path / "m.npz", "--progress", "none",
                  "--val-fraction", "0")
    assert out.returncode == 0, out.stderr
    model = load_model(tmp_path / "m.npz")
    assert model.feature_names_in_.tolist() == names
    expected = model.predict(X)  # the in-process prediction on the columns in training order
    accuracy = np.mean(expected == y)
    for order, with_labels in ((["label", "a", "b", "c"], True), (["c", "label", "a", "b"], True),
                               (["b", "c", "a"], False), (["c", "a", "b", "label", "extra"], True)):
        data = write(tmp_path / "p.csv", order, with_labels) if "extra" not in order else None
        if data is None:  # a column the model does not use is left out
            data = tmp_path / "p.csv"
            text = write(tmp_path / "p0.csv", order[:-1]).read_text().splitlines()
            data.write_text("\n".join([text[0] + ",extra"] + [t + ",9" for t in text[1:]]) + "\n")
        result = run_cli("predict", tmp_path / "m.npz", data, "--out", tmp_path / "pred.csv")
        assert result.returncode == 0, (order, result.stderr)
        got = np.loadtxt(tmp_path / "pred.csv", dtype=str, skiprows=1)
        np.testing.assert_array_equal(got, expected)
        if with_labels:  # the accuracy against the saved label column, wherever it is
            assert f"accuracy {accuracy:.4f}" in result.stdout, (order, result.stdout)
    missing = write(tmp_path / "missing.csv", ["label", "a", "c"])
    result = run_cli("predict", tmp_path / "m.npz", missing, "--out", tmp_path / "pred2.csv")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "missing.csv: no column named 'b'" in result.stderr
    assert not (tmp_path / "pred2.csv").exists()


def test_out_that_is_an_input_is_refused_and_the_input_kept(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 2))
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{u},{v},{int(u > v)}\n" for u, v in X))
    model = tmp_path / "m.npz"
    assert run_cli("train", data, "--out", model, "--progress", "none").returncode == 0
    before = {p: p.read_bytes() for p in (data, model)}
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", (X[:, 0] > X[:, 1]).astype(int))
    link = tmp_path / "same.csv"
    os.link(data, link)  # the same file under another name
    for args, what in (
            (["train", data, "--out", data], "DATA"),
            (["train", data, "--out", link], "DATA"),
            (["train", tmp_path / "X.npy", "--labels", tmp_path / "y.npy", "--out", tmp_path / "y.npy"],
             "--labels"),
            (["train", data, "--out", tmp_path / "n.npz", "--plot", tmp_path / "n.npz"], "--out"),
            (["predict", model, data, "--out", model], "MODEL"),
            (["predict", model, data, "--out", data], "DATA")):
        result = run_cli(*args, "--progress", "none") if args[0] == "train" else run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip().endswith(f"is the {what} file; writing there would destroy it: "
                                              "give another path"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in (data, model)} == before
    assert not (tmp_path / "n.npz").exists()


def test_learning_rate_options_match_the_estimator(tmp_path, files):
    """sgd takes --learning-rate adaptive as LogisticRegression(solver="sgd") does, in memory and
    streamed; a solver without a learning rate warns that it ignores one instead of dropping it."""
    X, y = problem(seed=5)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    for extra in ([], ["--chunk-rows", "100"]):  # streaming reads .npy (or svmlight)
        out = tmp_path / f"sgd{len(extra)}.npz"
        result = ok(run_cli("train", tmp_path / "X.npy", "--labels", tmp_path / "y.npy", "--solver", "sgd",
                            "--learning-rate", "adaptive", "--random-state", "0", "--progress", "none",
                            "--out", out, *extra))
        assert "ignores" not in result.stderr
        assert load_model(out).coef_.shape == (1, 5)
    result = ok(run_cli("train", files / "bin.csv", "--solver", "lbfgs", "--learning-rate", "adaptive",
                        "--out", tmp_path / "l.npz"))
    assert "warning: --solver lbfgs ignores --learning-rate" in result.stderr
    result = ok(run_cli("train", files / "bin.csv", "--eta0", "0.5", "--out", tmp_path / "a.npz"))
    assert "warning: --solver auto ignores --eta0" in result.stderr
    result = run_cli("train", files / "bin.csv", "--solver", "sgd", "--learning-rate", "backtracking",
                     "--out", tmp_path / "b.npz")
    assert result.returncode == 2 and "gd only" in result.stderr


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_predict_with_labels_in_data_and_labels_option_says_which_it_scores(tmp_path):
    """DATA with a label column and --labels too: the accuracy is against --labels (as its help
    says), and a note on standard error says so and whether the two agree."""
    from fastlr.model_file import load_model

    X, y = problem(n=120, d=3, seed=5)
    write_csv(tmp_path / "d.csv", X, y)
    ok(run_cli("train", tmp_path / "d.csv", "--out", tmp_path / "m.npz", "--progress", "none"))
    np.save(tmp_path / "same.npy", y)
    flipped = 1 - y
    np.save(tmp_path / "flipped.npy", flipped)
    pred = load_model(tmp_path / "m.npz").predict(X)
    result = ok(run_cli("predict", tmp_path / "m.npz", tmp_path / "d.csv", "--labels", tmp_path / "same.npy"))
    assert "scoring against --labels" in result.stderr and "(they agree)" in result.stderr
    result = ok(run_cli("predict", tmp_path / "m.npz", tmp_path / "d.csv", "--labels", tmp_path / "flipped.npy"))
    assert "(they differ in 120 of 120 rows)" in result.stderr, result.stderr
    hits = int(np.sum(pred == flipped))
    assert f"accuracy {hits / 120:.4f} ({hits} of 120 rows) against {tmp_path / 'flipped.npy'}" in result.stdout


def test_max_iter_is_another_name_for_epochs():
    """scikit-learn users look for --max-iter (estimator's max_iter): the same option as --epochs."""
    from fastlr.cli import build_parser

    parser = build_parser()
    a = parser.parse_args(["train", "X.csv", "--out", "m.npz", "--max-iter", "7"])
    b = parser.parse_args(["train", "X.csv", "--out", "m.npz", "--epochs", "7"])
    assert a.epochs == b.epochs == 7
