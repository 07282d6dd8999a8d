"""Fuzzing the readers that take files from outside: model files, CSV, svmlight.

Each test feeds hypothesis-generated or mutated bytes to a reader and checks
that only the documented exception comes out (``ModelFileError`` from
``load_model``, ``DataFileError`` from ``read_data``), that a model file never
unpickles (``np.load`` is only ever called with ``allow_pickle=False``), and
that a crafted model header cannot make the loader allocate more than the
file's own size.

Budget: a few dozen derandomised cases per test in the default run;
``FASTLR_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_readers.py`` runs
many more random ones. Crash isolation: in-process (a crash kills pytest,
which CI reports; faulthandler names the test).
"""

import io
import json
import os
import pickle
import struct
import tempfile
import zipfile
from contextlib import contextmanager

import numpy as np
from scipy.sparse import issparse
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastlr import LogisticRegression
from fastlr.io import DataFileError, read_data
from fastlr.model_file import ModelFileError, load_model, save_model
from _budget import examples

_DIR = tempfile.mkdtemp(prefix="fastlr-fuzz-")


def _write(name, data):
    path = os.path.join(_DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _model_bytes(n_classes=2, labels="int"):
    rng = np.random.default_rng(n_classes)
    X = rng.standard_normal((40, 3))
    y = rng.integers(0, n_classes, 40)
    if labels == "str":
        y = np.array(["a", "b", "c", "d"])[y]
    model = LogisticRegression(max_iter=50).fit(X, y)
    buf_path = os.path.join(_DIR, f"seed-{n_classes}-{labels}.npz")
    save_model(model, buf_path)
    with open(buf_path, "rb") as f:
        return f.read()


SEED_MODELS = [_model_bytes(2), _model_bytes(3, "str")]


def _members(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _zip(members, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _load_or_model_file_error(data, name="fuzz.npz"):
    """load_model on ``data``: a model, or ModelFileError (anything else fails the test)."""
    path = _write(name, data)
    try:
        with _no_unpickling():
            model = load_model(path)
    except ModelFileError as exc:
        message = str(exc)
        assert "\n" not in message and path in message
        return None
    assert np.all(np.isfinite(model.coef_))
    return model


@contextmanager
def _no_unpickling():
    """Inside: every np.load must refuse pickles, and pickle.load(s) must never run.

    (Only around the loader: Numba itself unpickles its on-disk kernel cache.)
    """
    saved = np.load, pickle.loads, pickle.load

    def checked_load(*args, **kwargs):
        assert kwargs.get("allow_pickle", False) is False, "np.load called with allow_pickle"
        return saved[0](*args, **kwargs)

    def no_unpickle(*args, **kwargs):
        raise AssertionError("a reader tried to unpickle data from a file")

    np.load, pickle.loads, pickle.load = checked_load, no_unpickle, no_unpickle
    try:
        yield
    finally:
        np.load, pickle.loads, pickle.load = saved


# -- model files --------------------------------------------------------------------------------


@examples(60)
@given(seed=st.sampled_from(range(len(SEED_MODELS))),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_model_file_with_flipped_bytes(seed, edits):
    data = bytearray(SEED_MODELS[seed])
    for where, value in edits:
        data[int(where * len(data))] = value
    _load_or_model_file_error(bytes(data))


@examples(30)
@given(seed=st.sampled_from(range(len(SEED_MODELS))), cut=st.floats(0, 1, exclude_max=True),
       tail=st.binary(max_size=64))
def test_model_file_truncated_or_extended(seed, cut, tail):
    data = SEED_MODELS[seed]
    _load_or_model_file_error(data[: int(cut * len(data))] + tail)


@examples(40)
@given(data=st.binary(max_size=2048))
def test_model_file_random_bytes(data):
    _load_or_model_file_error(data)


@examples(40)
@given(data=st.binary(max_size=512), zip_magic=st.booleans())
def test_model_file_random_bytes_after_zip_magic(data, zip_magic):
    _load_or_model_file_error((b"PK\x03\x04" if zip_magic else b"\x93NUMPY") + data)


def _json_values(depth=3):
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=depth * 4)


META_KEYS = ["format", "format_version", "fastlr_version", "params", "params_not_saved",
             "n_features_in", "n_iter", "backend", "classes_dtype", "feature_names_in", "t"]
PARAM_NAMES = sorted(LogisticRegression().get_params())


@examples(80)
@given(seed=st.sampled_from(range(len(SEED_MODELS))),
       changes=st.dictionaries(st.sampled_from(META_KEYS), _json_values(), max_size=4),
       params=st.dictionaries(st.sampled_from(PARAM_NAMES), _json_values(2), max_size=4))
def test_model_file_with_crafted_metadata(seed, changes, params):
    members = _members(SEED_MODELS[seed])
    meta = json.loads(str(members["metadata"]))
    meta.update(changes)
    if isinstance(meta.get("params"), dict):
        meta["params"].update(params)
    members["metadata"] = np.array(json.dumps(meta))
    model = _load_or_model_file_error(_zip({f"{k}.npy": _npy(v) for k, v in members.items()}))
    if model is not None:  # whatever params loaded, prediction needs only the arrays
        X = np.zeros((2, model.n_features_in_))
        assert model.predict(X).shape == (2,)


ARRAYS = st.one_of(
    st.builds(lambda shape, kind: np.zeros(shape, dtype=kind),
              st.lists(st.integers(0, 4), max_size=3).map(tuple),
              st.sampled_from(["f8", "f4", "i8", "u1", "?", "U3", "S3", "c16", "M8[s]"])),
    st.builds(lambda v: np.array(v), st.lists(st.floats(), max_size=6)),
    st.builds(lambda v: np.array(v), st.lists(st.text(max_size=4), min_size=1, max_size=6)),
)


@examples(80)
@given(seed=st.sampled_from(range(len(SEED_MODELS))),
       replace=st.dictionaries(st.sampled_from(["coef", "intercept", "classes", "loss_curve", "metadata"]),
                               ARRAYS, max_size=3))
def test_model_file_with_crafted_arrays(seed, replace):
    members = _members(SEED_MODELS[seed])
    members.update(replace)
    _load_or_model_file_error(_zip({f"{k}.npy": _npy(v) for k, v in members.items()}))


def _npy_header(shape, descr="<f8", fortran=False, version=(1, 0)):
    header = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    header = header.encode("latin1")
    size_fmt = "<H" if version == (1, 0) else "<I"
    prefix = b"\x93NUMPY" + bytes(version)
    pad = 64 - (len(prefix) + struct.calcsize(size_fmt) + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return prefix + struct.pack(size_fmt, len(header)) + header


@examples(40)
@given(seed=st.sampled_from(range(len(SEED_MODELS))),
       member=st.sampled_from(["coef", "intercept", "classes", "loss_curve"]),
       shape=st.lists(st.integers(0, 2**40), min_size=1, max_size=3),
       descr=st.sampled_from(["<f8", "<f4", "<i8", "<U100", "|u1"]),
       version=st.sampled_from([(1, 0), (2, 0)]), payload=st.binary(max_size=64))
def test_model_file_huge_declared_shape_is_refused_before_allocation(seed, member, shape, descr, version,
                                                                   payload):
    """A header declaring more than the member holds is refused before any array is read.

    numpy's reader allocates the declared shape before reading the data, so the
    loader must refuse such a member from its header alone: no array is read at all.
    """
    from numpy.lib import _npyio_impl

    members = {f"{k}.npy": _npy(v) for k, v in _members(SEED_MODELS[seed]).items()}
    members[f"{member}.npy"] = _npy_header(shape, descr, version=version) + payload
    declared = int(np.prod(shape, dtype=object)) * np.dtype(descr).itemsize
    data = _zip(members)
    real_read_array = _npyio_impl.format.read_array
    reads = []

    def counting_read_array(*args, **kwargs):
        reads.append(1)
        return real_read_array(*args, **kwargs)

    _npyio_impl.format.read_array = counting_read_array
    try:
        model = _load_or_model_file_error(data)
    finally:
        _npyio_impl.format.read_array = real_read_array
    if declared != len(payload):
        assert model is None and not reads, (shape, descr, len(payload))


def test_model_file_member_size_guard_names_the_problem(tmp_path):
    members = {f"{k}.npy": _npy(v) for k, v in _members(SEED_MODELS[0]).items()}
    members["coef.npy"] = _npy_header((1000, 1000)) + b"\0" * 16  # declares 8 MB, holds 16 bytes
    path = tmp_path / "lying.npz"
    path.write_bytes(_zip(members))
    with pytest.raises(ModelFileError, match="declares shape .* but holds 16 data bytes"):
        load_model(path)


def test_model_file_compressed_member_is_refused(tmp_path):
    """Only uncompressed members, so a deflate bomb cannot expand in memory."""
    members = {f"{k}.npy": _npy(v) for k, v in _members(SEED_MODELS[0]).items()}
    path = tmp_path / "deflated.npz"
    path.write_bytes(_zip(members, zipfile.ZIP_DEFLATED))
    with pytest.raises(ModelFileError, match="compressed"):
        load_model(path)


def test_model_file_with_pickled_object_member_never_unpickles(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    members = {f"{k}.npy": _npy(v) for k, v in _members(SEED_MODELS[0]).items()}
    buf = io.BytesIO()
    np.save(buf, np.array([Boom()], dtype=object), allow_pickle=True)
    members["classes.npy"] = buf.getvalue()
    path = tmp_path / "evil.npz"
    path.write_bytes(_zip(members))
    with pytest.raises(ModelFileError, match="objects"):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


# -- CSV and svmlight ----------------------------------------------------------------------------


def _read_or_data_file_error(data, name):
    path = _write(name, data)
    try:
        dataset = read_data(path)
    except DataFileError as exc:
        message = str(exc)
        assert "\n" not in message and path in message
        return None
    assert dataset.X.ndim == 2 and dataset.X.shape[0] >= 1
    if issparse(dataset.X):  # svmlight: CSR, never densified
        assert dataset.X.format == "csr" and dataset.X.dtype == np.float64
    else:
        assert dataset.X.dtype == np.float64 and dataset.X.flags.c_contiguous
    if dataset.y is not None:
        assert len(dataset.y) == dataset.X.shape[0]
    if dataset.feature_names is not None:
        assert len(dataset.feature_names) == dataset.X.shape[1]
    return dataset


CSV_CELLS = st.one_of(
    st.sampled_from(["", "0", "1", "-1.5", "1e308", "1e309", "-inf", "nan", "NaN", "NA", "null", "true",
                     "x", '"1,2"', '"', "0x1F", "1_000", "2020-01-01", "99999999999999999999999",
                     " 3 ", "\t", "é", "\x00"]),
    st.text(max_size=6),
    st.floats().map(repr),
    st.integers().map(str),
)


@examples(80)
@given(header=st.lists(st.sampled_from(["a", "b", "y", "label", "", "a b", "é", '"q"']), min_size=1, max_size=5),
       rows=st.lists(st.lists(CSV_CELLS, min_size=0, max_size=6), max_size=8),
       sep=st.sampled_from([",", "\t", ";"]), ext=st.sampled_from([".csv", ".tsv", ".txt"]),
       newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_csv_reader_gives_data_or_data_file_error(header, rows, sep, ext, newline):
    text = newline.join(sep.join(r) for r in [header] + rows)
    _read_or_data_file_error(text.encode("utf-8", "surrogatepass"), "fuzz" + ext)


@examples(60)
@given(data=st.binary(max_size=400), ext=st.sampled_from([".csv", ".tsv", ".txt"]))
def test_csv_reader_random_bytes(data, ext):
    _read_or_data_file_error(data, "bytes" + ext)


def test_csv_duplicate_column_names_keep_their_own_values(tmp_path):
    """Regression: a repeated header name made every copy read the first column's values."""
    path = tmp_path / "dup.csv"
    path.write_text("a,a,b,y\n1,2,3,0\n4,5,6,1\n")
    data = read_data(path)
    np.testing.assert_array_equal(data.X, [[1, 2, 3], [4, 5, 6]])
    assert data.feature_names == ["a", "a", "b"]


SVM_LINES = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["0", "1", "-1", "+1", "2.5", "nan", "x", ""]), st.integers().map(str)),
        st.lists(st.tuples(st.one_of(st.integers(-3, 60), st.sampled_from([10**6, 2**31, 10**12])),
                           st.one_of(st.floats().map(repr), st.sampled_from(["1", "", "x", "1e400"]))),
                 max_size=5),
        st.sampled_from(["", " qid:1", " # comment", " qid:x"]),
    ),
    max_size=8,
)


@examples(80)
@given(lines=SVM_LINES, ext=st.sampled_from([".svm", ".svmlight", ".libsvm"]))
def test_svmlight_reader_gives_data_or_data_file_error(lines, ext):
    text = "\n".join(f"{label} " + " ".join(f"{i}:{v}" for i, v in feats) + extra
                     for label, feats, extra in lines)
    _read_or_data_file_error(text.encode(), "fuzz" + ext)


@examples(40)
@given(data=st.binary(max_size=400))
def test_svmlight_reader_random_bytes(data):
    _read_or_data_file_error(data, "bytes.svm")


def test_svmlight_huge_feature_index_is_read_without_densifying(tmp_path, monkeypatch):
    """Regression: "1 1000000000:1" made read_data allocate a (rows × 1e9) float64 array;
    svmlight is now read as CSR, whose size follows the non-zeros, not the width."""
    path = tmp_path / "wide.svm"
    path.write_text("1 1000000000:1\n0 1:1\n")
    X = read_data(path).X
    assert issparse(X) and X.shape == (2, 1000000000) and X.nnz == 2


def test_reader_out_of_memory_is_a_data_file_error(tmp_path, monkeypatch):
    from fastlr import io as fio

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(fio, "_read_csv", no_memory)
    path = tmp_path / "x.csv"
    path.write_text("a,y\n1,0\n")
    with pytest.raises(DataFileError, match="more memory"):
        read_data(path)


def test_csv_header_that_is_not_utf8_is_a_data_file_error(tmp_path):
    """Regression: a non-UTF-8 header escaped as UnicodeDecodeError from pyarrow's column names."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\x80\n")
    with pytest.raises(DataFileError, match="UTF-8"):
        read_data(path)
