"""The IDX (MNIST format) reader and writer, its wiring into read_data and the CLI, the image demo.

Files are built here byte by byte with ``struct`` (the format as LeCun et al. describe
it: two zero bytes, a type code, the rank, big-endian uint32 dimensions, big-endian
data), independently of fastlr's own writer.
"""

import gzip
import os
import struct
import warnings

import numpy as np
import pytest

from fastlr.io import DataFileError, load_mnist, read_data, read_idx, read_idx_labels, write_idx

import _cli_runner

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array, code=None):
    """The IDX encoding of ``array``, written from the format description."""
    array = np.asarray(array)
    code = CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def put(path, data, compress=None):
    compress = str(path).endswith(".gz") if compress is None else compress
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return path


def run_cli(*args, timeout=300):
    """``python -m fastlr.cli ARGS`` with PYTHONUNBUFFERED=1, forked from a warm server (tests/_cli_runner.py)."""
    return _cli_runner.run_cli(*args, timeout=timeout, unbuffered=True)


def one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# -- reading and writing -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4), (3, 2, 4, 5)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(len(shape))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    else:
        array = rng.standard_normal(shape).astype(dtype)
    path = put(tmp_path / f"a-idx{len(shape)}-ubyte{suffix}", idx_bytes(array))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    # fastlr's writer gives the same bytes as the format description
    write_idx(tmp_path / f"w{suffix}", array)
    raw = (tmp_path / f"w{suffix}").read_bytes()
    assert (gzip.decompress(raw) if suffix else raw) == idx_bytes(array)


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = put(tmp_path / "images.idx", idx_bytes(array), compress=True)
    np.testing.assert_array_equal(read_idx(path), array)


def test_read_data_flattens_rows_and_scales_pixels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    path = put(tmp_path / "x-idx3-ubyte.gz", idx_bytes(images))
    data = read_data(path)
    assert data.y is None and data.X.shape == (6, 12) and data.X.dtype == np.float32
    assert data.X.flags.c_contiguous
    np.testing.assert_array_equal(data.X, (images.reshape(6, 12).astype(np.float64) / 255).astype(np.float32))
    assert data.X.min() >= 0 and data.X.max() <= 1
    np.testing.assert_array_equal(read_data(path, pixel_scale="none").X, images.reshape(6, 12))
    np.testing.assert_allclose(read_data(path, pixel_scale=0.5, dtype=np.float64).X,
                               images.reshape(6, 12) * 0.5, rtol=0)
    assert read_data(path, dtype=np.float64).X.dtype == np.float64
    # rank 1: one column; int32 data (not pixels) is kept as float64, unscaled
    values = np.array([-3, 0, 70000], dtype=np.int32)
    column = read_data(put(tmp_path / "v.idx", idx_bytes(values))).X
    assert column.shape == (3, 1) and column.dtype == np.float64
    np.testing.assert_array_equal(column[:, 0], values)


@pytest.mark.parametrize("bad", ["", "bright", -1, 0, float("nan"), float("inf"), True])
def test_bad_pixel_scale(tmp_path, bad):
    path = put(tmp_path / "x.idx", idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(ValueError, match="pixel_scale"):
        read_data(path, pixel_scale=bad)


def test_labels(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = put(tmp_path / "l-idx1-ubyte", idx_bytes(labels))
    got = read_idx_labels(path)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, labels)
    with pytest.raises(DataFileError, match="rank 1"):
        read_idx_labels(put(tmp_path / "m.idx", idx_bytes(np.zeros((2, 2), np.uint8))))
    with pytest.raises(DataFileError, match="integers"):
        read_idx_labels(put(tmp_path / "f.idx", idx_bytes(np.zeros(3, np.float32))))


# -- malformed files --------------------------------------------------------------------------------

GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"\x00\x00\x08", "truncated IDX header"),
    (b"PK\x03\x04" + GOOD[4:], "not an IDX file"),
    (b"\x00\x01" + GOOD[2:], "not an IDX file"),
    (b"\x00\x00\x0a\x02" + GOOD[4:], "unknown IDX type code 0x0a"),
    (b"\x00\x00\x08\x00", "rank 0"),
    (GOOD[:10], "truncated IDX header"),
    (GOOD[:-1], "truncated"),
    (GOOD[:12], "truncated"),
    (GOOD + b"\x00", "unexpected bytes after"),
    (b"\x00\x00\x0e\x03" + struct.pack(">III", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1),
     "truncated|more than half of this machine's memory"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_files_raise_one_line(tmp_path, data, message, compress):
    path = put(tmp_path / "bad-idx2-ubyte", data, compress=compress and bool(data))
    with pytest.raises(DataFileError, match=message) as info:
        read_data(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_huge_declared_size_in_gzip_is_refused_before_reading(tmp_path):
    header = b"\x00\x00\x0e\x03" + struct.pack(">III", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1)
    path = put(tmp_path / "huge.idx.gz", header)
    with pytest.raises(DataFileError, match="more than half of this machine's memory"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    packed = bytearray(gzip.compress(GOOD))
    packed[12:20] = b"\xff" * 8
    path = put(tmp_path / "c-idx2-ubyte.gz", bytes(packed), compress=False)
    with pytest.raises(DataFileError, match="corrupt gzip|truncated|not an IDX"):
        read_idx(path)
    path = put(tmp_path / "t-idx2-ubyte.gz", gzip.compress(GOOD)[:-12], compress=False)
    with pytest.raises(DataFileError, match="corrupt gzip|truncated"):
        read_idx(path)


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    for array in (np.zeros(3, np.int64), np.zeros(3, np.complex64), np.float64(1.0)):
        with pytest.raises(ValueError, match="IDX"):
            write_idx(tmp_path / "x.idx", array)
    assert not list(tmp_path.iterdir())  # nothing half-written


# -- the four-file loader --------------------------------------------------------------------------

def fake_mnist(root, n_train=300, n_test=100, side=6, seed=0, compress=True):
    """A small MNIST-format directory: 10 classes, each a bright block at its own place, plus noise."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    out = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        rng.shuffle(y)
        images = rng.integers(0, 60, size=(n, side, side)).astype(np.uint8)
        for i, label in enumerate(y):
            r, c = divmod(int(label), 5)
            images[i, 3 * r:3 * r + 3, c:c + 2] = 250
        gz = ".gz" if compress else ""
        put(os.path.join(root, f"{stem}-images-idx3-ubyte{gz}"), idx_bytes(images))
        put(os.path.join(root, f"{stem}-labels-idx1-ubyte{gz}"), idx_bytes(y.astype(np.uint8)))
        out[stem] = (images, y)
    return out


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist(tmp_path, compress):
    truth = fake_mnist(tmp_path, compress=compress)
    for kind, stem in (("train", "train"), ("test", "t10k"), ("t10k", "t10k")):
        X, y = load_mnist(tmp_path, kind)
        images, labels = truth[stem]
        assert X.dtype == np.float32 and X.shape == (len(labels), 36) and y.dtype == np.int64
        np.testing.assert_array_equal(X, (images.reshape(len(labels), -1) / 255.0).astype(np.float32))
        np.testing.assert_array_equal(y, labels)
    X, _ = load_mnist(tmp_path, "train", pixel_scale="none", dtype=np.float64)
    np.testing.assert_array_equal(X, truth["train"][0].reshape(300, -1))


def test_load_mnist_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such directory"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(DataFileError, match="no train files"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, "validation")
    fake_mnist(tmp_path)
    put(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DataFileError, match="7 labels for the 300 images"):
        load_mnist(tmp_path, "train")


# -- the command line ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    fake_mnist(root)
    return root


def test_cli_train_and_predict_on_idx_files(mnist_dir, tmp_path):
    from fastlr import LogisticRegression
    from fastlr.model_file import load_model

    d = mnist_dir
    result = run_cli("train", d / "train-images-idx3-ubyte.gz", "--labels", d / "train-labels-idx1-ubyte.gz",
                     "--out", tmp_path / "m.npz", "--val-fraction", "0", "--progress", "none")
    assert result.returncode == 0, result.stderr
    model = load_model(tmp_path / "m.npz")
    X, y = load_mnist(d, "train")
    reference = LogisticRegression().fit(X, y)  # same data, options and solver: same model
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-6)
    result = run_cli("predict", tmp_path / "m.npz", d / "t10k-images-idx3-ubyte.gz",
                     "--labels", d / "t10k-labels-idx1-ubyte.gz", "--out", tmp_path / "p.csv")
    assert result.returncode == 0, result.stderr
    X_test, y_test = load_mnist(d, "test")
    expected = reference.score(X_test, y_test)
    assert f"accuracy {expected:.4f} ({round(expected * 100)} of 100 rows)" in result.stdout
    predictions = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, dtype=np.int64)
    np.testing.assert_array_equal(predictions, reference.predict(X_test))
    # --labels alone: accuracy, no file
    result = run_cli("predict", tmp_path / "m.npz", d / "t10k-images-idx3-ubyte.gz",
                     "--labels", d / "t10k-labels-idx1-ubyte.gz")
    assert result.returncode == 0 and "accuracy" in result.stdout, result.stderr
    # --pixel-scale none trains on 0..255 values
    result = run_cli("train", d / "train-images-idx3-ubyte.gz", "--labels", d / "train-labels-idx1-ubyte.gz",
                     "--pixel-scale", "none", "--out", tmp_path / "raw.npz", "--val-fraction", "0",
                     "--epochs", "3", "--progress", "none")
    assert result.returncode == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=3 stops short on purpose
        raw = LogisticRegression(max_iter=3).fit(load_mnist(d, "train", pixel_scale="none")[0], y)
    np.testing.assert_allclose(load_model(tmp_path / "raw.npz").coef_, raw.coef_, rtol=1e-6, atol=1e-6)


def test_cli_idx_user_errors(mnist_dir, tmp_path):
    d = mnist_dir
    images, labels = d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte.gz"
    bad = put(tmp_path / "bad-idx3-ubyte", b"\x00\x00\x08\x03\x00")
    cases = [
        (["train", images, "--out", tmp_path / "m.npz"], ["--labels"]),
        (["train", bad, "--labels", labels, "--out", tmp_path / "m.npz"], ["bad-idx3-ubyte", "truncated"]),
        (["train", images, "--labels", d / "t10k-labels-idx1-ubyte.gz", "--out", tmp_path / "m.npz"],
         ["100 labels for 300 rows"]),
        (["train", images, "--labels", images, "--out", tmp_path / "m.npz"], ["rank 1"]),
        (["train", images, "--labels", labels, "--pixel-scale", "dim", "--out", tmp_path / "m.npz"],
         ["--pixel-scale"]),
    ]
    # a model, then predict on images without labels and without --out: nothing to do
    result = run_cli("train", images, "--labels", labels, "--out", tmp_path / "ok.npz", "--epochs", "1",
                     "--progress", "none")
    assert result.returncode == 0, result.stderr
    cases.append((["predict", tmp_path / "ok.npz", images], ["nothing to do", "has no labels"]))
    for args, fragments in cases:
        one_line_error(run_cli(*args), *fragments)
    assert not (tmp_path / "m.npz").exists()


# -- fastlr demo on images -------------------------------------------------------------------------

def test_demo_on_an_image_directory_with_plot(mnist_dir, tmp_path):
    png = tmp_path / "fig.png"
    result = run_cli("demo", "--data", mnist_dir, "--plot", png)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "300 training and 100 test images of 36 pixels" in lines[0]
    for label in ("fastlr lbfgs log (default)", "fastlr sgd log (5 epochs)", "fastlr lbfgs squared (seed)",
                  "sklearn lbfgs log"):
        row = next(line for line in lines if line.startswith(label))
        accuracy = float(row[30:39])
        assert 0.9 <= accuracy <= 1.0, row  # the classes are separable blocks
    import matplotlib.image

    picture = matplotlib.image.imread(png)
    assert picture.shape[0] > 300 and picture.shape[1] > 800
    assert np.std(picture[..., :3]) > 0.05  # not a blank canvas
    assert [p for p in os.listdir(tmp_path) if p != "fig.png"] == []  # atomic write left no temporaries


def test_demo_without_images_says_how_to_get_them(tmp_path, monkeypatch):
    import argparse
    import io

    from fastlr import demo_images
    from fastlr.cli import demo as cli

    monkeypatch.delenv("FASTLR_FASHION_MNIST", raising=False)
    monkeypatch.setattr(demo_images, "DEBIAN_DIR", str(tmp_path))  # an empty directory
    calls = []  # the bundled demo itself is run by tests/test_cli.py; here: that it is what runs
    monkeypatch.setattr(cli, "run_demo", lambda n_large, file: calls.append(n_large))
    out = io.StringIO()
    args = argparse.Namespace(data=None, plot=None, bundled=False, n=1234)
    cli.run_demo_command(args, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Fashion-MNIST not found")
    assert "apt-get install dataset-fashion-mnist" in lines[0]
    assert calls == [1234]
    with pytest.raises(ValueError, match="--plot draws the image demo"):
        cli.run_demo_command(argparse.Namespace(data=None, plot=str(tmp_path / "x.png"), bundled=False, n=0))


def test_find_image_data_order(tmp_path):
    from fastlr.demo_images import find_image_data

    assert find_image_data(tmp_path / "a", environ={"FASTLR_FASHION_MNIST": str(tmp_path / "b")}) == \
        (str(tmp_path / "a"), True)
    assert find_image_data(environ={"FASTLR_FASHION_MNIST": str(tmp_path / "b")}) == (str(tmp_path / "b"), True)


@pytest.mark.parametrize("args, fragment", [
    (["demo", "--data", "{t}/nowhere"], "no such directory"),
    (["demo", "--bundled", "--plot", "{t}/x.png"], "--bundled"),
    (["demo", "--data", "{t}", "--plot", "{t}/no/dir/x.png"], "does not exist"),
])
def test_demo_user_errors(tmp_path, args, fragment):
    one_line_error(run_cli(*[a.format(t=tmp_path) for a in args]), fragment)
