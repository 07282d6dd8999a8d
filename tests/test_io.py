"""fastlr.io: reading data files, streaming .npy chunks, writing predictions atomically."""

import os

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.csv  # noqa: E402,F401  (pa.csv below: not imported by pyarrow itself)
import pyarrow.parquet as pq  # noqa: E402
from sklearn.datasets import dump_svmlight_file  # noqa: E402

from fastlr import io as fio  # noqa: E402
from fastlr.io import DataFileError, Dataset, iter_npy_chunks, read_data, write_predictions_csv  # noqa: E402


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 3))
    y = np.array([0, 1, 1, 0, 2, 1, 0])
    return X, y


def write_csv(path, header, rows, sep=","):
    lines = [sep.join(header)] + [sep.join(repr(v) if isinstance(v, float) else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_npy_is_a_readonly_memmap_not_a_copy(tmp_path, arrays, dtype):
    X = arrays[0].astype(dtype)
    path = tmp_path / "x.npy"
    np.save(path, X)
    data = read_data(path)
    assert isinstance(data, Dataset)
    assert isinstance(data.X, np.memmap)
    assert not data.X.flags.writeable
    assert data.X.flags.c_contiguous
    assert data.X.dtype == dtype
    assert data.y is None and data.feature_names is None
    np.testing.assert_array_equal(data.X, X)


def test_npy_dtype_argument_converts(tmp_path, arrays):
    path = tmp_path / "x.npy"
    np.save(path, arrays[0])
    data = read_data(path, dtype=np.float32)
    assert data.X.dtype == np.float32 and data.X.flags.c_contiguous
    np.testing.assert_array_equal(data.X, arrays[0].astype(np.float32))


def test_npy_integer_array_becomes_float64(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(6).reshape(3, 2))
    data = read_data(path)
    assert data.X.dtype == np.float64
    np.testing.assert_array_equal(data.X, np.arange(6).reshape(3, 2))


def test_npz_uncompressed_is_memmapped(tmp_path, arrays):
    X, y = arrays
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    data = read_data(path)
    assert isinstance(data.X, np.memmap)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)


def test_npz_compressed_round_trips(tmp_path, arrays):
    X, y = arrays
    path = tmp_path / "d.npz"
    np.savez_compressed(path, X=X.astype(np.float32), y=y.astype(str))
    data = read_data(path)
    assert data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X, X.astype(np.float32))
    np.testing.assert_array_equal(data.y, y.astype(str))


def test_npz_without_y_gives_none(tmp_path, arrays):
    path = tmp_path / "d.npz"
    np.savez(path, X=arrays[0])
    assert read_data(path).y is None


def test_csv_target_defaults_to_last_column(tmp_path, arrays):
    X, y = arrays
    path = write_csv(tmp_path / "d.csv", ["f0", "f1", "f2", "label"],
                     [list(map(float, row)) + [int(lab)] for row, lab in zip(X, y)])
    data = read_data(path)
    assert data.feature_names == ["f0", "f1", "f2"]
    assert data.X.dtype == np.float64 and data.X.flags.c_contiguous
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)


def test_csv_target_by_name(tmp_path, arrays):
    X, y = arrays
    path = write_csv(tmp_path / "d.csv", ["label", "f0", "f1", "f2"],
                     [[int(lab)] + list(map(float, row)) for row, lab in zip(X, y)])
    data = read_data(path, target="label", dtype=np.float32)
    assert data.feature_names == ["f0", "f1", "f2"]
    assert data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X, X.astype(np.float32))
    np.testing.assert_array_equal(data.y, y)


def test_csv_string_labels(tmp_path, arrays):
    X, _ = arrays
    labels = ["cat", "dog", "cat", "bird", "dog", "cat", "bird"]
    path = write_csv(tmp_path / "d.csv", ["f0", "f1", "f2", "animal"],
                     [list(map(float, row)) + [lab] for row, lab in zip(X, labels)])
    data = read_data(path)
    assert data.y.tolist() == labels


def test_tsv_round_trips(tmp_path, arrays):
    X, y = arrays
    path = write_csv(tmp_path / "d.tsv", ["a", "b", "c", "y"],
                     [list(map(float, row)) + [int(lab)] for row, lab in zip(X, y)], sep="\t")
    data = read_data(path)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)


def test_csv_missing_and_non_finite_values_are_named_by_column_and_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1.5,2,0\n2.5,,1\n")
    assert error_of(path).endswith("column 'b' has a missing value at line 3")
    path.write_text("a,b,y\n1.5,2,0\n2.5,3,1\nnan,3,1\n")
    # a written-out "nan" is the number it spells, not a missing (empty) field
    assert error_of(path).endswith("column 'a' has the non-finite value nan at line 4")
    path.write_text("a,b,y\n1.5,-inf,0\n")
    assert error_of(path).endswith("column 'b' has the non-finite value -inf at line 2")
    path.write_text("a,b,y\n1.5,2,0\nNA,3,1\n")  # pyarrow's other null spellings are text
    assert error_of(path).endswith("column 'a' is not numeric (string) at line 3 (value 'NA')")


@pytest.mark.parametrize("rows, expected", [
    # the problem on the earliest line is named, whichever column and kind it is
    (["1,inf,0", "2,3,1", ",3,1"], "column 'b' has the non-finite value inf at line 2"),
    (["1,2,0", "2,inf,1", "3,,1"], "column 'b' has the non-finite value inf at line 3"),
    (["1,2,0", "2,,1", "3,inf,1"], "column 'b' has a missing value at line 3"),
    (["1,2,0", "2,3,1", "x,,1", "4,inf,0"], "column 'a' is not numeric (string) at line 4 (value 'x')"),
    (["1,2,0", "2,3,1", "3,4,", "4,inf,0"], "target column 'y' has a missing value at line 4"),
    # the same line: the leftmost column
    (["1,2,0", "inf,,1"], "column 'a' has the non-finite value inf at line 3"),
])
def test_csv_names_the_problem_on_the_earliest_line(tmp_path, rows, expected):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    assert error_of(path).endswith(expected)


@pytest.mark.parametrize("label", ["NA", "null", "nan", "N/A"])
def test_csv_label_written_as_missing_is_named(tmp_path, label):
    path = tmp_path / "d.csv"
    path.write_text(f"a,y\n1,cat\n2,{label}\n3,dog\n")
    assert error_of(path).endswith(f"target column 'y' has a missing value ({label!r}) at line 3")
    path.write_text(f"a,y\n1,0\n2,1\n3,{label}\n")  # numeric labels, then one missing
    # "nan" is read as the float it spells (a float column), the others as text
    expected = ("has the non-finite value nan" if label == "nan" else f"has a missing value ({label!r})")
    assert error_of(path).endswith(f"target column 'y' {expected} at line 4")


def test_csv_without_a_header_row_is_an_error(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1.5,2,0\n2.5,3,1\n")
    assert "line 1 looks like data, not a header" in error_of(path)
    # before the target is looked for among the "names", and for a one-line file (no rows left)
    assert "line 1 looks like data, not a header" in error_of(path, target="label")
    path.write_text("1.5,2,0\n")
    assert "line 1 looks like data, not a header" in error_of(path)
    path.write_text("x1,2,y\n1.5,2,0\n")  # a name that is a number among others: a header
    np.testing.assert_array_equal(read_data(path).X, [[1.5, 2.0]])


def test_parquet_round_trips(tmp_path, arrays):
    X, y = arrays
    path = tmp_path / "d.parquet"
    table = pa.table({"f0": X[:, 0], "f1": X[:, 1].astype(np.float32), "f2": X[:, 2], "target": y})
    pq.write_table(table, path)
    data = read_data(path)
    assert data.feature_names == ["f0", "f1", "f2"]
    expected = X.copy()
    expected[:, 1] = X[:, 1].astype(np.float32)
    np.testing.assert_array_equal(data.X, expected)
    np.testing.assert_array_equal(data.y, y)
    by_name = read_data(path, target="f0")
    assert by_name.feature_names == ["f1", "f2", "target"]
    np.testing.assert_array_equal(by_name.y, X[:, 0])


def test_pq_extension_is_parquet(tmp_path, arrays):
    X, y = arrays
    path = tmp_path / "d.pq"
    pq.write_table(pa.table({"a": X[:, 0], "y": y}), path)
    np.testing.assert_array_equal(read_data(path).X[:, 0], X[:, 0])


@pytest.mark.parametrize("ext", [".svm", ".svmlight", ".libsvm"])
def test_svmlight_round_trips_as_csr(tmp_path, arrays, ext):
    X, y = arrays
    X = np.round(X * 64) / 64  # dump_svmlight_file writes %.16g: use values that survive it exactly
    X[0, 1] = 0.0  # a sparse entry
    path = tmp_path / f"d{ext}"
    dump_svmlight_file(X, y, str(path))
    data = read_data(path)
    assert data.X.format == "csr"  # scipy.sparse, never densified
    np.testing.assert_array_equal(data.X.toarray(), X)
    np.testing.assert_array_equal(data.y, y)


def test_nan_in_x_passes_through(tmp_path):
    path = tmp_path / "x.npy"
    X = np.array([[1.0, np.nan], [2.0, 3.0]])
    np.save(path, X)
    np.testing.assert_array_equal(read_data(path).X, X)


# -- errors -------------------------------------------------------------------------------


def error_of(path, **kwargs):
    with pytest.raises(DataFileError) as info:
        read_data(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert os.path.basename(str(path)) in message
    return message


def test_error_is_a_value_error():
    assert issubclass(DataFileError, ValueError)


def test_missing_file(tmp_path):
    assert "no such file" in error_of(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["empty.csv", "empty.npy", "empty.parquet", "empty.svm"])
def test_zero_byte_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert "empty" in error_of(path)


def test_csv_header_only_is_empty(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b,y\n")
    assert error_of(path).endswith("no rows below the header (line 1)")


def test_npy_with_no_rows_is_empty(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.empty((0, 3)))
    assert "no rows" in error_of(path)


def test_parquet_with_no_rows_is_empty(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.float64()), "y": pa.array([], pa.int64())}), path)
    assert "no rows" in error_of(path)


@pytest.mark.parametrize("name", ["data.json", "data", "data.xlsx"])
def test_unknown_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("1,2\n")
    assert "extension" in error_of(path)


def test_wrong_content_for_extension(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_text("a,b\n1,2\n")
    assert "Parquet" in error_of(path)
    npy = tmp_path / "x.npy"
    npy.write_text("a,b\n1,2\n")
    assert ".npy" in error_of(npy)


def test_ragged_csv_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n5,6\n7,8,1\n")
    message = error_of(path)
    assert "line 4" in message
    assert "2 columns" in message


def test_non_numeric_csv_names_column_and_line(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("a,height,y\n1,2,0\n3,tall,1\n")
    message = error_of(path)
    assert "'height'" in message
    assert "line 3" in message
    assert "tall" in message


def test_non_numeric_parquet_names_column(tmp_path):
    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "colour": ["red", "blue"], "y": [0, 1]}), path)
    message = error_of(path)
    assert "'colour'" in message
    assert "row 1" in message


def test_missing_target_lists_available_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("alpha,beta,gamma\n1,2,0\n")
    message = error_of(path, target="label")
    assert "'label'" in message
    assert "alpha, beta, gamma" in message


def test_missing_target_in_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"alpha": [1.0], "beta": [0]}), path)
    assert "alpha, beta" in error_of(path, target="label")


def test_target_with_array_file_is_an_error(tmp_path, arrays):
    path = tmp_path / "x.npy"
    np.save(path, arrays[0])
    assert "target" in error_of(path, target="y")


def test_npy_must_be_2d(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(3.0))
    assert "2-D" in error_of(path)


def test_npz_without_x(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.ones((2, 2)))
    assert "'X'" in error_of(path)


def test_npz_y_length_mismatch(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((3, 2)), y=np.ones(2))
    assert "'y'" in error_of(path)


def test_bad_svmlight(tmp_path):
    path = tmp_path / "d.svm"
    path.write_text("1 1:abc\n")
    assert "svmlight" in error_of(path)


def test_bad_dtype_argument(tmp_path, arrays):
    path = tmp_path / "x.npy"
    np.save(path, arrays[0])
    with pytest.raises(ValueError, match="dtype"):
        read_data(path, dtype=np.int32)


# -- iter_npy_chunks ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 10, 100])
def test_chunks_cover_all_rows_in_order(tmp_path, chunk_rows):
    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    path = tmp_path / "x.npy"
    np.save(path, X)
    chunks = list(iter_npy_chunks(path, chunk_rows))
    assert [len(c) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    assert 1 <= len(chunks[-1]) <= chunk_rows
    for c in chunks:
        assert type(c) is np.ndarray and c.flags.c_contiguous and c.flags.owndata and c.flags.writeable
    np.testing.assert_array_equal(np.concatenate(chunks), X)


def test_chunks_of_fortran_file_are_c_contiguous(tmp_path):
    X = np.asfortranarray(np.arange(12.0).reshape(6, 2))
    path = tmp_path / "x.npy"
    np.save(path, X)
    chunks = list(iter_npy_chunks(path, 4))
    assert all(c.flags.c_contiguous for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), X)


def test_chunks_bad_arguments(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((2, 2)))
    with pytest.raises(ValueError, match="chunk_rows"):
        list(iter_npy_chunks(path, 0))
    with pytest.raises(DataFileError, match="no such file"):
        list(iter_npy_chunks(tmp_path / "missing.npy", 2))


# -- write_predictions_csv ------------------------------------------------------------------


def test_predictions_csv_columns_and_values(tmp_path):
    path = tmp_path / "pred.csv"
    proba = np.array([[0.25, 0.75], [0.9, 0.1]])
    write_predictions_csv(path, np.array(["b", "a"]), proba=proba, classes=np.array(["a", "b"]))
    lines = path.read_text().splitlines()
    assert lines[0] == "prediction,proba_a,proba_b"
    assert lines[1:] == ["b,0.25,0.75", "a,0.9,0.1"]
    table = pa.csv.read_csv(path)
    np.testing.assert_array_equal(table.column("proba_b").to_numpy(), proba[:, 1])


def test_predictions_csv_without_proba(tmp_path):
    path = tmp_path / "pred.csv"
    write_predictions_csv(path, np.array([1, 0, 2]))
    assert path.read_text().splitlines() == ["prediction", "1", "0", "2"]


def test_predictions_csv_float_proba_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.random((50, 1))
    proba = np.hstack([1 - p, p])
    path = tmp_path / "pred.csv"
    write_predictions_csv(path, np.zeros(50, dtype=int), proba=proba, classes=[0, 1])
    back = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(back[:, 1:], proba)


def test_predictions_csv_float32_proba_in_its_own_shortest_digits(tmp_path):
    """float32 probabilities (predict_proba of float32 X) are written as float32 values, in the
    fewest digits that read back as the same float32, not as their float64 expansions."""
    rng = np.random.default_rng(2)
    p = rng.random(50).astype(np.float32)
    proba = np.column_stack([1 - p, p])
    path = tmp_path / "pred.csv"
    write_predictions_csv(path, np.zeros(50, dtype=int), proba=proba, classes=[0, 1])
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    assert [row[2] for row in rows] == [str(v) for v in p]  # numpy's shortest float32 repr
    assert max(len(row[2]) for row in rows) <= 12  # e.g. 0.26978672, not 0.2697867155075073
    back = np.loadtxt(path, delimiter=",", skiprows=1).astype(np.float32)
    np.testing.assert_array_equal(back[:, 1:], proba)


def test_predictions_csv_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "pred.csv"
    path.write_text("old contents\n")

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(fio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_predictions_csv(path, np.array([1, 2]), proba=np.array([[0.5, 0.5], [0.1, 0.9]]), classes=[1, 2])
    assert path.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


def test_predictions_csv_file_mode_follows_umask(tmp_path):
    path = tmp_path / "pred.csv"
    write_predictions_csv(path, np.array([1]))
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


# -- boolean columns -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_boolean_columns_are_zero_one_features(tmp_path, fmt):
    """pandas writes booleans as True/False (CSV) or a bool column (Parquet): features 1 and 0,
    exactly what the estimator makes of the same DataFrame."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"flag": rng.random(9) < 0.5, "x": rng.normal(size=9),
                          "other": [True, False, False, True, True, True, False, False, True],
                          "label": rng.integers(0, 2, 9)})
    path = tmp_path / f"b.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    data = read_data(path)
    assert data.feature_names == ["flag", "x", "other"]
    expected = frame[["flag", "x", "other"]].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(data.X, expected)
    np.testing.assert_array_equal(data.y, frame["label"].to_numpy())


def test_boolean_csv_column_with_missing_cell_is_named(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("flag,label\nTrue,1\n,0\nFalse,1\n")
    assert error_of(path).endswith("column 'flag' has a missing value at line 3")


def test_file_errors_pickle_with_their_path_and_problem():
    """joblib and dask send a worker's exception back pickled: it must rebuild as it was."""
    import pickle

    from fastlr.model_file import ModelFileError

    for cls in (DataFileError, ModelFileError):
        err = pickle.loads(pickle.dumps(cls("dir/x.csv", "line 3 is bad")))
        assert type(err) is cls
        assert (err.path, err.problem, str(err)) == ("dir/x.csv", "line 3 is bad", "dir/x.csv: line 3 is bad")
    assert DataFileError.__module__ == "fastlr.io"  # the name tracebacks show is the public one
