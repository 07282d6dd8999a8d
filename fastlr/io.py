"""Reading training data and writing predictions.

``read_data(path, target=None, dtype=None)`` picks the reader by extension:

``.npy``
    A 2-D numeric array, X only (``y`` is None). Float32/float64 files are
    memory-mapped read-only (``np.load(mmap_mode="r")``), not copied.
``.npz``
    Arrays ``"X"`` (required) and ``"y"`` (optional); an optional unicode
    array ``"feature_names"``. ``X`` is memory-mapped when it is stored
    uncompressed (``np.savez``), read otherwise (``np.savez_compressed``).
    A sparse matrix written by ``scipy.sparse.save_npz`` is read as CSR
    (``scipy.sparse.load_npz``; CSC/COO converted once), X only (``y`` is None).
``.csv`` / ``.tsv`` / ``.txt``
    Read with ``pyarrow.csv``. A header row is required. The target is the
    column named ``target``, by default the last column; every other column
    must be numeric or boolean (``True``/``False``, as pandas writes them, are
    the features 1 and 0, as in the estimator's DataFrame input). An empty
    cell (a missing value), ``nan`` or ``inf`` is a DataFileError naming its column and
    line (fastlr cannot train on them; the earliest line's problem is named), as is a
    label written as missing (``NA``, ``null``, ...), or a first line whose
    every field is a number (data where the header belongs). ``.txt`` is
    tab-separated when its header line has a tab and no comma.
``.parquet`` / ``.pq``
    Read with ``pyarrow.parquet``; same target rule as CSV.
``.svm`` / ``.svmlight`` / ``.libsvm``
    ``sklearn.datasets.load_svmlight_file`` as a CSR matrix (never densified);
    ``y`` from the file. Indices are zero- or one-based as scikit-learn's
    ``zero_based="auto"`` decides per file. ``n_features`` sets the width
    (a file whose largest index is below a model's width); a larger index
    than ``n_features`` is an error. A malformed line is reported by number.
IDX (MNIST format): ``*-idx3-ubyte``, ``*.idx3-ubyte``, ``*.idx``, each optionally ``.gz``
    X only (``y`` is None; labels are a separate rank-1 IDX file, see
    :func:`read_idx_labels`). Rank r ≥ 2 is flattened to rows of
    ``prod(shape[1:])`` columns, rank 1 is one column. ``pixel_scale="unit"``
    (default) divides uint8 pixels by 255 into [0, 1], as float32; see
    :mod:`fastlr._idx` for the format and :func:`load_mnist` for a directory of
    the four MNIST / Fashion-MNIST files.

Every problem with the user's file raises :class:`DataFileError`, a
``ValueError`` whose message is one line naming the file (and the line or
column where known). NaN in X is passed through (the estimator rejects it).

``iter_npy_chunks`` streams a large ``.npy`` file in row chunks;
``write_predictions_csv`` writes predictions atomically (``write_predictions`` to an open file).

May import: NumPy, scipy, scikit-learn (svmlight), pyarrow (lazily), :mod:`fastlr._atomic`, :mod:`fastlr._errors`,
:mod:`fastlr._idx`, :mod:`fastlr._npy`; never the estimator.
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ._atomic import atomic_write
from ._errors import DataFileError
from ._idx import idx_features, idx_labels, is_idx_name, load_mnist, read_idx, write_idx
from ._npy import read_npy_header

__all__ = ["DataFileError", "Dataset", "read_data", "read_idx", "read_idx_labels", "write_idx", "load_mnist",
           "iter_npy_chunks", "write_predictions_csv", "is_sparse_npz", "scan_svmlight", "iter_svmlight_chunks"]

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
PARQUET_EXTENSIONS = (".parquet", ".pq")
SVMLIGHT_EXTENSIONS = (".svm", ".svmlight", ".libsvm")
NPY_EXTENSIONS = (".npy",)
NPZ_EXTENSIONS = (".npz",)
ALL_EXTENSIONS = NPY_EXTENSIONS + NPZ_EXTENSIONS + CSV_EXTENSIONS + PARQUET_EXTENSIONS + SVMLIGHT_EXTENSIONS
IDX_KIND = "idx"  # not an extension: IDX files are recognised by name (fastlr._idx.is_idx_name)


@dataclass
class Dataset:
    """Data read from a file.

    X : (n, d) float32 or float64 C-contiguous array (a read-only np.memmap for .npy),
        or a scipy.sparse CSR matrix (svmlight/libsvm files, ``save_npz`` archives).
    y : (n,) labels, or None when the file has no target.
    feature_names : column names of X, or None when the file has none.
    target_name : name of the column ``y`` came from (tables), else None.
    index_base : 0 or 1, the base of an svmlight/libsvm file's feature indices (as given,
        or as guessed from the file), else None.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str] | None
    target_name: str | None = None
    index_base: int | None = None


def _one_line(text):
    return " ".join(str(text).split())


def _check_dtype(dtype):
    if dtype is None:
        return None
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32, float64 or None, got {dtype!r}")
    return dt


def _extension(path):
    if is_idx_name(path):
        return IDX_KIND
    name = os.path.basename(os.fspath(path)).lower()
    for ext in sorted(ALL_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return os.path.splitext(name)[1]


def _check_file(path):
    if not os.path.exists(path):
        raise DataFileError(path, "no such file")
    if os.path.isdir(path):
        raise DataFileError(path, "is a directory, not a data file")
    if os.path.getsize(path) == 0:
        raise DataFileError(path, "empty file (no rows)")


def read_data(path, *, target=None, dtype=None, pixel_scale="unit", n_features=None,
              zero_based="auto", target_optional=False) -> Dataset:
    """Read a data file; see the module docstring for the formats.

    Parameters
    ----------
    path : str or os.PathLike
    target : str, optional
        Name of the label column (CSV and Parquet); default the last column.
    target_optional : bool, default False
        A table without the column ``target`` is read as features only
        (``y`` None) instead of raising: a file to predict on may carry its
        labels or not.
    dtype : {None, float32, float64}
        dtype of X. None keeps a float32/float64 array file's dtype and
        gives float64 for everything else (IDX: float32 for 8/16-bit and
        float32 data, float64 for int32 and float64 data).
    pixel_scale : {"unit", "none"} or float, default "unit"
        IDX files only: ``"unit"`` divides uint8 data (pixels) by 255, into
        [0, 1]; ``"none"`` keeps the stored values; a positive float multiplies
        them by it.
    n_features : int, optional
        Width of X read from an svmlight/libsvm file (default: its largest
        index). Ignored for the other formats.
    zero_based : {"auto", True, False}
        Index base of an svmlight/libsvm file; "auto" (scikit-learn's rule):
        one-based unless some index is 0. Give it when a file may lack
        column 0 (e.g. a small file to predict on), or its columns shift by one.

    Raises
    ------
    DataFileError
        The file is missing, empty, of an unknown kind, or unusable (also
        when it would need more memory than there is).
    """
    path = os.fspath(path)
    dt = _check_dtype(dtype)
    ext = _extension(path)
    if ext == IDX_KIND:
        if target is not None:
            raise DataFileError(path, "a target column name applies to CSV and Parquet files only, not IDX")
        X = idx_features(path, read_idx(path), pixel_scale, dt)
        if X.shape[0] == 0:
            raise DataFileError(path, "empty file (no rows)")
        return Dataset(X, None, None)
    if ext not in ALL_EXTENSIONS:
        raise DataFileError(
            path, f"unknown data file extension {ext or '(none)'!r}; expected one of {', '.join(ALL_EXTENSIONS)}"
            f", or an IDX (MNIST format) file named *-idx3-ubyte[.gz] or *.idx[.gz]"
        )
    _check_file(path)
    if target is not None and ext not in CSV_EXTENSIONS + PARQUET_EXTENSIONS:
        raise DataFileError(path, f"a target column name applies to CSV and Parquet files only, not {ext}")
    try:
        if ext in NPY_EXTENSIONS:
            data = _read_npy(path, dt)
        elif ext in NPZ_EXTENSIONS:
            data = _read_npz(path, dt)
        elif ext in CSV_EXTENSIONS:
            data = _read_csv(path, ext, target, dt, target_optional)
        elif ext in PARQUET_EXTENSIONS:
            data = _read_parquet(path, target, dt, target_optional)
        else:
            data = _read_svmlight(path, dt, n_features, zero_based)
    except MemoryError:
        raise DataFileError(path, "needs more memory than is available") from None
    except UnicodeDecodeError as exc:  # e.g. pyarrow decoding a CSV header that is not UTF-8
        raise DataFileError(path, f"is not UTF-8 text ({exc})") from None
    if data.X.shape[0] == 0:
        raise DataFileError(path, "empty file (no rows)")
    return data


def read_idx_labels(path):
    """Class labels from a rank-1 integer IDX file (e.g. ``train-labels-idx1-ubyte.gz``), as int64.

    Raises
    ------
    DataFileError
        Not a readable IDX file, not rank 1, or not an integer type.
    """
    return idx_labels(os.fspath(path), read_idx(path))


# -- numpy files ------------------------------------------------------------------------


def _as_features(path, X, dt, what="array"):
    """Check a numeric 2-D array; return it (no copy when already right) as float C-contiguous."""
    if X.ndim != 2:
        raise DataFileError(path, f"{what} must be 2-D (rows, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataFileError(path, f"{what} must be numeric, got dtype {X.dtype}")
    target = dt
    if target is None:
        target = X.dtype if X.dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)
    if X.dtype == target and X.flags.c_contiguous:
        return X
    return np.ascontiguousarray(X, dtype=target)


def _read_npy(path, dt):
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any failure is the file's
        raise DataFileError(path, f"not a readable .npy array file ({exc})") from None
    return Dataset(_as_features(path, X, dt), None, None)


def _npz_member_memmap(path, zf, name):
    """Memory-map an uncompressed ``name`` member of the npz; None if that is not possible."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        f.seek(start)
        try:
            shape, fortran, dtype = read_npy_header(f)
        except ValueError:
            return None
        offset = f.tell()
    if dtype.hasobject or len(shape) != 2 or 0 in shape:
        return None
    if offset - start + dtype.itemsize * shape[0] * shape[1] != info.file_size:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


_SPARSE_NPZ_MEMBERS = {"format.npy", "shape.npy", "data.npy"}


def is_sparse_npz(path):
    """Whether ``path`` is a ``.npz`` archive written by ``scipy.sparse.save_npz``."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _SPARSE_NPZ_MEMBERS <= set(zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _read_sparse_npz(path, dt):
    import scipy.sparse as sp

    try:
        X = sp.load_npz(path)
    except Exception as exc:  # noqa: BLE001
        raise DataFileError(path, f"not a readable scipy.sparse .npz archive ({exc})") from None
    if X.ndim != 2:
        raise DataFileError(path, f"sparse matrix must be 2-D, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataFileError(path, f"sparse matrix must be numeric, got dtype {X.dtype}")
    target = dt or (X.dtype if X.dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64))
    X = X.tocsr()
    return Dataset(X if X.dtype == target else X.astype(target), None, None)


def _read_npz(path, dt):
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if _SPARSE_NPZ_MEMBERS <= names and "X.npy" not in names:
                return _read_sparse_npz(path, dt)
            if "X.npy" not in names:
                raise DataFileError(path, f".npz file has no array 'X' (arrays: {sorted(n[:-4] for n in names if n.endswith('.npy'))})")
            X = _npz_member_memmap(path, zf, "X.npy")
        with np.load(path, allow_pickle=False) as npz:
            if X is None:
                X = npz["X"]
            y = npz["y"] if "y" in npz.files else None
            names_arr = npz["feature_names"] if "feature_names" in npz.files else None
    except DataFileError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataFileError(path, f"not a readable .npz archive ({exc})") from None
    X = _as_features(path, X, dt, "array 'X'")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataFileError(path, f"array 'y' has shape {y.shape}; expected ({X.shape[0]},) to match 'X' {X.shape}")
    feature_names = None
    if names_arr is not None:
        if names_arr.ndim != 1 or names_arr.shape[0] != X.shape[1]:
            raise DataFileError(path, f"array 'feature_names' has shape {names_arr.shape}; expected ({X.shape[1]},)")
        feature_names = [str(n) for n in names_arr.tolist()]
    return Dataset(X, y, feature_names)


# -- tables (CSV, Parquet) ---------------------------------------------------------------


def _is_float_text(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _table_to_dataset(path, table, target, dt, first_line=None, target_optional=False,
                      null_spellings=()):
    """Split an Arrow table into X (numeric features) and y (the target column).

    ``first_line``: file line number of the first data row (CSV), to name lines.
    ``null_spellings``: strings that mean a missing label in a text target column (a CSV's
    ``NA``, ``null``, ...; its features are read with only the empty field as missing).
    Raises DataFileError naming the problem on the earliest line (then the leftmost column).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = list(table.column_names)
    if len(names) == 0:
        raise DataFileError(path, "no columns")
    # first: a headerless file's first row became the names (a one-line file: no rows at all)
    if first_line is not None and all(_is_float_text(n) for n in names):
        raise DataFileError(
            path, f"line 1 looks like data, not a header ({', '.join(names)[:60]!r}): a CSV file "
                  "needs a header row naming its columns (the last one, or --target, is the label)")
    if table.num_rows == 0:
        raise DataFileError(path, "empty file (no rows)" if first_line is None
                            else "no rows below the header (line 1)")
    if target is None:
        target = names[-1]
    elif target not in names:
        if not target_optional:
            raise DataFileError(path, f"no target column {target!r}; available columns: {', '.join(names)}")
        target = None  # features only
    if target is not None and names.count(target) > 1:
        raise DataFileError(path, f"target column name {target!r} appears more than once")
    # columns by position: names can repeat ("a,a,y"), and each column is its own feature
    feature_columns = [i for i, n in enumerate(names) if target is None or n != target]
    feature_names = [names[i] for i in feature_columns]
    if not feature_names:
        raise DataFileError(path, f"no feature columns besides the target {target!r}")

    def where(row):
        return f"line {first_line + row}" if first_line is not None else f"row {row + 1}"
    # Every column is read before any problem is reported, and the one on the earliest line
    # (then the leftmost column) is named: the line a user fixing the file comes to first.
    problems = []  # (row, column position, message)
    X = np.empty((table.num_rows, len(feature_names)), dtype=dt or np.float64)
    for j, (i, name) in enumerate(zip(feature_columns, feature_names)):
        col = table.column(i)
        typ = col.type
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ)
                or pa.types.is_decimal(typ) or pa.types.is_boolean(typ)):
            values = col.to_pylist()
            bad = next((r for r, v in enumerate(values) if v is not None and not _is_float_text(v)), None)
            at = "" if bad is None else f" at {where(bad)} (value {str(values[bad])[:40]!r})"
            problems.append((len(values) if bad is None else bad, i,
                             f"column {name!r} is not numeric ({typ}){at}"))
            continue
        X[:, j] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)  # a missing value: NaN
        finite = np.isfinite(X[:, j])
        if not finite.all():
            bad = int(np.argmin(finite))
            if not col[bad].is_valid:  # an empty field: fastlr cannot train on missing values
                problems.append((bad, i, f"column {name!r} has a missing value at {where(bad)}"))
            else:  # "nan" / "inf" written out
                problems.append((bad, i, f"column {name!r} has the non-finite value "
                                         f"{float(X[bad, j])!r} at {where(bad)}"))
    y = None
    if target is not None:
        i = names.index(target)
        ycol = table.column(i)
        missing = pc.is_null(ycol)
        if null_spellings and (pa.types.is_string(ycol.type) or pa.types.is_large_string(ycol.type)):
            # a CSV's labels are read with only the empty field as missing; pyarrow's other
            # spellings of a missing value ("NA", "nan", "null", ...) are missing labels too
            missing = pc.or_(missing, pc.is_in(ycol, value_set=pa.array(list(null_spellings), pa.string())))
        if pc.any(missing).as_py():
            bad = int(pc.index(missing, True).as_py())
            spelled = ycol[bad].as_py()
            how = "" if spelled is None or spelled == "" else f" ({spelled!r})"
            problems.append((bad, i, f"target column {target!r} has a missing value{how} at {where(bad)}"))
        else:
            y = ycol.to_numpy(zero_copy_only=False)
            if y.dtype.kind == "f" and not np.isfinite(y).all():
                bad = int(np.argmin(np.isfinite(y)))
                problems.append((bad, i, f"target column {target!r} has the non-finite value "
                                         f"{float(y[bad])!r} at {where(bad)}"))
    if problems:
        raise DataFileError(path, min(problems)[2])
    if target is None:
        return Dataset(X, None, feature_names, None)
    if y.dtype == object:
        y = np.asarray(ycol.to_pylist(), dtype=str) if all(isinstance(v, str) for v in y) else y
    return Dataset(X, y, feature_names, target)


def _read_csv(path, ext, target, dt, target_optional=False):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = ","
    if ext == ".tsv":
        delimiter = "\t"
    elif ext == ".txt":
        with open(path, "rb") as f:
            head = f.readline()
        if b"\t" in head and b"," not in head:
            delimiter = "\t"
    bad_rows = []

    def on_invalid_row(row):
        bad_rows.append(row)
        return "error"

    try:
        # Only the empty field is missing: "nan" and "inf" are read as the numbers they spell
        # (and named as non-finite), "NA" in a feature column as text (named as not numeric);
        # pyarrow's other spellings of a missing value are kept for the labels.
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(null_values=[""]),
        )
    except pa.ArrowInvalid as exc:
        if bad_rows:
            row = bad_rows[0]
            line = f"line {row.number}" if row.number is not None and row.number > 0 else "a row"
            raise DataFileError(
                path, f"{line} has {row.actual_columns} columns, expected {row.expected_columns} "
                      f"(as in the header): {row.text[:60]!r}"
            ) from None
        message = str(exc)
        if "Empty CSV file" in message:
            raise DataFileError(path, "empty file (no rows)") from None
        raise DataFileError(path, f"cannot parse CSV: {message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"cannot read CSV: {exc}") from None
    # header is line 1; assumes no quoted fields spanning lines
    spellings = [v for v in pacsv.ConvertOptions().null_values if v]
    return _table_to_dataset(path, table, target, dt, first_line=2, target_optional=target_optional,
                             null_spellings=spellings)


def _read_parquet(path, target, dt, target_optional=False):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataFileError(path, f"not a readable Parquet file ({exc})") from None
    return _table_to_dataset(path, table, target, dt, target_optional=target_optional)


def _is_svmlight_line(raw):
    """Whether one line (bytes) reads as ``label [qid:q] index:value ... [# comment]``."""
    tokens = raw.split(b"#", 1)[0].split()
    try:
        if tokens:
            float(tokens[0])
            for token in tokens[1:]:
                key, sep, value = token.partition(b":")
                if not sep:
                    return False
                if key == b"qid":
                    int(value)
                else:
                    int(key)
                    float(value)
    except ValueError:
        return False
    return True


def _bad_svmlight_line(lines, first_line=1):
    """``(line number, text)`` of the first malformed line among ``lines`` (bytes), or None."""
    for number, raw in enumerate(lines, first_line):
        if not _is_svmlight_line(raw):
            return number, raw.decode("utf-8", "replace").strip()[:80]
    return None


def _unreadable_svmlight(path, exc, n_features, zero_based):
    """The DataFileError for a file that scikit-learn's reader refused, with what to change."""
    if n_features is not None and "n_features was set to" in str(exc):
        base = {True: "0-based (--index-base 0)", False: "1-based (--index-base 1)"}.get(
            zero_based, "with the index base guessed from the file (--index-base auto)")
        other = {True: "1", False: "0"}.get(zero_based)
        hint = f"; if its indices start at {other}, give --index-base {other}" if other else ""
        return DataFileError(path, f"has a column index beyond n_features={n_features} (the model's "
                                   f"width, or --n-features), read {base}{hint}")
    return DataFileError(path, f"not a readable svmlight/libsvm file ({exc})")


def _read_svmlight(path, dt, n_features=None, zero_based="auto"):
    import scipy.sparse as sp
    from sklearn.datasets import load_svmlight_file

    guess = zero_based == "auto"
    try:
        # "auto" is decided below as scikit-learn decides it, so that the base is known
        # (and saved with a model trained on the file)
        X, y = load_svmlight_file(path, dtype=dt or np.float64, n_features=None if guess else n_features,
                                  zero_based=True if guess else zero_based)
    except Exception as exc:  # noqa: BLE001
        where = None
        if not isinstance(exc, MemoryError):
            with open(path, "rb") as f:
                where = _bad_svmlight_line(f)
        if where is not None:
            raise DataFileError(path, f"line {where[0]} is not an svmlight/libsvm line 'label index:value ...': {where[1]!r}") from None
        raise _unreadable_svmlight(path, exc, n_features, zero_based) from None
    X = X.tocsr()
    if guess:
        one_based = not _auto_zero_based(int(X.indices.min()) if X.nnz else None)
        width = X.shape[1] - 1 if one_based else X.shape[1]
        if one_based:
            X.indices -= 1
        if n_features is not None and width > n_features:
            raise _unreadable_svmlight(path, ValueError("n_features was set to"), n_features, zero_based)
        X = sp.csr_matrix((X.data, X.indices, X.indptr),
                          shape=(X.shape[0], width if n_features is None else n_features))
        zero_based = not one_based
    return Dataset(X, _svmlight_labels(y), None, index_base=0 if zero_based else 1)


def _auto_zero_based(lowest):
    """scikit-learn's ``zero_based="auto"``: one-based unless some index is 0.

    ``lowest``: the smallest feature index in the file read as zero-based, or
    None when it has no index at all (then zero-based).
    """
    return lowest is None or lowest == 0


def _svmlight_labels(y):
    """svmlight labels as integers when every one is a whole number, else as read (float64).

    ``load_svmlight_file`` returns the labels as float64; classes written
    ``0``/``1`` or ``-1``/``+1`` in the file should come back as such in a
    model's ``classes_`` and in predictions, not as ``0.0``/``1.0``.
    """
    if y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)) and np.abs(y).max() < 2.0 ** 53:
        return y.astype(np.int64)
    return y


# -- streaming and writing ---------------------------------------------------------------


def iter_npy_chunks(path, chunk_rows) -> Iterator[np.ndarray]:
    """Yield the rows of a ``.npy`` file in chunks of ``chunk_rows`` (the last may be shorter).

    The file is opened with ``np.load(mmap_mode="r")`` (which validates the
    header and gives shape, dtype and data offset); C-order files are then read
    chunk by chunk with plain file reads, Fortran-order ones copied out of the
    memory map. Each chunk is a fresh C-contiguous array, so resident memory
    stays bounded by one chunk even for files larger than memory.
    """
    path = os.fspath(path)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    chunk_rows = int(chunk_rows)
    if _extension(path) != ".npy":
        raise DataFileError(path, "chunked reading needs a .npy file")
    _check_file(path)
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise DataFileError(path, f"not a readable .npy array file ({exc})") from None
    if mm.ndim < 1 or mm.shape[0] == 0:
        raise DataFileError(path, "empty file (no rows)")
    n, shape, dtype, offset = mm.shape[0], mm.shape, mm.dtype, mm.offset
    if not mm.flags.c_contiguous or dtype.hasobject:
        try:
            for start in range(0, n, chunk_rows):
                yield np.array(mm[start:start + chunk_rows], order="C", copy=True)
        finally:
            del mm
        return
    del mm
    # C order: plain reads into a fresh array per chunk, so no mapped pages accumulate
    # in resident memory (a memmap's touched pages would count until it is closed).
    row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    with open(path, "rb") as f:
        f.seek(offset)
        for start in range(0, n, chunk_rows):
            rows = min(chunk_rows, n - start)
            chunk = np.empty((rows,) + shape[1:], dtype=dtype)
            if row_bytes and f.readinto(memoryview(chunk.reshape(-1).view(np.uint8))) != rows * row_bytes:
                raise DataFileError(path, f"file is truncated (rows {start + 1}..{start + rows} missing)")
            yield chunk


def _format_cell(value):
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_predictions_csv(path, predictions, *, proba=None, classes=None):
    """Write a predictions CSV atomically.

    Columns: ``prediction``, then ``proba_<class>`` for each class when
    ``proba`` (n, n_classes) is given (``classes`` names its columns; default
    ``0..n_classes-1``), each value written as the shortest string that reads back as it in its
    dtype (float32 probabilities as float32, anything else as float64). The file is written to
    a temporary file in the same directory, flushed and fsynced, then moved onto ``path`` with
    ``os.replace``; on any error the temporary file is removed and an existing ``path`` is left
    untouched.

    Raises
    ------
    ValueError
        If ``predictions`` is not 1-D, or ``proba`` or ``classes`` do not match it.
    """
    header, proba = _predictions_header(predictions, proba, classes)
    with atomic_write(os.fspath(path), "w", newline="", encoding="utf-8") as f:
        _write_prediction_rows(f, header, np.asarray(predictions), proba)


def write_predictions(file, predictions, *, proba=None, classes=None):
    """Write the CSV of :func:`write_predictions_csv` to an open text ``file`` (e.g. stdout).

    Raises
    ------
    ValueError
        As :func:`write_predictions_csv`.
    """
    header, proba = _predictions_header(predictions, proba, classes)
    _write_prediction_rows(file, header, np.asarray(predictions), proba)


def _predictions_header(predictions, proba, classes):
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ValueError(f"predictions must be 1-D, got shape {predictions.shape}")
    header = ["prediction"]
    if proba is not None:
        proba = np.asarray(proba)
        proba = proba if proba.dtype == np.float32 else proba.astype(np.float64, copy=False)
        if proba.ndim != 2 or proba.shape[0] != predictions.shape[0]:
            raise ValueError(f"proba must have shape ({predictions.shape[0]}, n_classes), got {proba.shape}")
        if classes is None:
            classes = range(proba.shape[1])
        classes = list(np.asarray(classes).tolist()) if not isinstance(classes, range) else list(classes)
        if len(classes) != proba.shape[1]:
            raise ValueError(f"{len(classes)} classes given for {proba.shape[1]} probability columns")
        header += [f"proba_{c}" for c in classes]
    return header, proba


def _write_prediction_rows(f, header, predictions, proba):
    writer = csv.writer(f)
    writer.writerow(header)
    step = 65536
    for start in range(0, predictions.shape[0], step):
        cols = [[_format_cell(v) for v in predictions[start:start + step].tolist()]]
        if proba is not None:
            # each value's shortest repr in its own dtype (a float32 probability as 0.26978672,
            # not as 0.2697867155075073, its float64 expansion); for float64, repr(float)'s digits
            cols += [proba[start:start + step, j].astype(str).tolist() for j in range(proba.shape[1])]
        writer.writerows(zip(*cols))


# -- streaming svmlight ------------------------------------------------------------------


def _svmlight_line_chunks(path, chunk_rows):
    """Yield ``(first line number, bytes)`` holding ``chunk_rows`` data lines each (comments kept)."""
    with open(path, "rb") as f:
        lines, count, first = [], 0, 1
        for number, raw in enumerate(f, 1):
            lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
            if raw.split(b"#", 1)[0].strip():
                count += 1
            if count == chunk_rows:
                yield first, b"".join(lines)
                lines, count, first = [], 0, number + 1
        if count:
            yield first, b"".join(lines)


def _parse_svmlight_chunk(path, first_line, blob, *, dtype, n_features, zero_based):
    import io as _io

    from sklearn.datasets import load_svmlight_file

    try:
        return load_svmlight_file(_io.BytesIO(blob), dtype=dtype, n_features=n_features,
                                  zero_based=zero_based)
    except Exception as exc:  # noqa: BLE001
        where = _bad_svmlight_line(blob.splitlines(), first_line)
        if where is not None:
            raise DataFileError(path, f"line {where[0]} is not an svmlight/libsvm line 'label index:value ...': "
                                      f"{where[1]!r}") from None
        raise _unreadable_svmlight(path, exc, n_features, zero_based) from None


@dataclass
class SvmlightLayout:
    """What a first streaming pass over an svmlight file learns: rows, labels, width, index base."""

    n_samples: int
    y: np.ndarray
    n_features: int
    zero_based: bool


def scan_svmlight(path, chunk_rows, n_features=None, zero_based="auto") -> SvmlightLayout:
    """One pass over an svmlight/libsvm file, ``chunk_rows`` rows at a time (bounded memory).

    Returns the labels, the row count, and the width and index base that
    ``load_svmlight_file(zero_based="auto")`` would give the whole file (one-based
    unless some index is 0); ``n_features`` overrides the width and must not be
    smaller than the largest index. ``zero_based`` True/False fixes the base.
    """
    path = os.fspath(path)
    _check_file(path)
    labels, lowest, highest = [], None, -1
    for first, blob in _svmlight_line_chunks(path, chunk_rows):
        X, y = _parse_svmlight_chunk(path, first, blob, dtype=np.float64, n_features=None, zero_based=True)
        labels.append(y)
        if X.nnz:
            lo, hi = int(X.indices.min()), int(X.indices.max())
            lowest = lo if lowest is None else min(lowest, lo)
            highest = max(highest, hi)
    if not labels:
        raise DataFileError(path, "empty file (no rows)")
    if zero_based == "auto":
        zero_based = _auto_zero_based(lowest)
    elif not zero_based and lowest == 0:
        raise DataFileError(path, "has feature index 0, but the indices were said to be one-based")
    width = highest + (1 if zero_based else 0)
    if n_features is not None:
        if n_features < width:
            raise DataFileError(path, f"has feature index {width - (0 if zero_based else 1)} "
                                      f"({'zero' if zero_based else 'one'}-based), more than "
                                      f"n_features={n_features} allows")
        width = n_features
    y = _svmlight_labels(np.concatenate(labels))
    return SvmlightLayout(len(y), y, max(width, 1), zero_based)


def iter_svmlight_chunks(path, chunk_rows, layout, dtype=np.float64):
    """Yield ``(X, y)`` CSR chunks of ``chunk_rows`` rows of an svmlight file laid out as ``layout``.

    Memory stays bounded by one chunk (its lines and its CSR arrays).
    """
    for first, blob in _svmlight_line_chunks(os.fspath(path), chunk_rows):
        X, y = _parse_svmlight_chunk(path, first, blob, dtype=dtype, n_features=layout.n_features,
                                     zero_based=layout.zero_based)
        yield X.tocsr(), y.astype(layout.y.dtype)
