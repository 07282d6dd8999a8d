"""The IDX file format of MNIST and Fashion-MNIST: reading, writing, the four-file loader.

Format (LeCun, Cortes, Burges, "THE MNIST DATABASE of handwritten digits",
http://yann.lecun.com/exdb/mnist/, section "FILE FORMATS FOR THE MNIST DATABASE"):

* bytes 0-1: zero; byte 2: the element type code; byte 3: the rank ``r`` (number
  of dimensions);
* then ``r`` dimension sizes, each a big-endian unsigned 32-bit integer;
* then the elements, C order (the last dimension changes fastest), big-endian.

Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32,
``0x0D`` float32, ``0x0E`` float64. A file may be gzip-compressed (recognised by
its first two bytes, ``1f 8b``, whatever its name), as the distributed MNIST and
Fashion-MNIST files are.

Every problem with a file raises :class:`fastlr.io.DataFileError` (one line naming
the file): bad magic, unknown type code, a header cut short, fewer data bytes
than the header declares (truncated), bytes left over after them, a declared
size larger than half this machine's memory.

May import: NumPy, :mod:`fastlr._errors`, :mod:`fastlr._atomic` (lazily); not :mod:`fastlr.io`
(which imports this module).
"""

import gzip
import os
import re
import zlib

import numpy as np

from ._errors import DataFileError

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}

#: Names that mark a file as IDX: ``*.idx``, ``*.idx3``, ``*-idx3-ubyte``, ``*.idx1-ubyte``
#: (the Kaggle copies), each optionally followed by ``.gz``.
_IDX_NAME = re.compile(r"(^|[.\-_])idx[0-9]*(-ubyte)?(\.gz)?$")

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 1 << 24


def is_idx_name(path):
    """True when ``path``'s file name marks it as an IDX file (see ``_IDX_NAME``)."""
    return bool(_IDX_NAME.search(os.path.basename(os.fspath(path)).lower()))


def _error(path, problem):
    return DataFileError(path, problem)


def _memory_limit_bytes():
    """Half the machine's physical memory: the largest array a header may declare."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 1 << 33


def _read_exact(f, n):
    """Up to ``n`` bytes; fewer only at end of file."""
    chunks = []
    while n > 0:
        block = f.read(min(n, _READ_BLOCK))
        if not block:
            break
        chunks.append(block)
        n -= len(block)
    return b"".join(chunks)


def read_idx(path):
    """Read an IDX file (plain or gzip) into an array of its shape and type.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    ndarray
        Shape: the header's dimensions; dtype: the type code's, in native byte
        order (uint8, int8, int16, int32, float32 or float64). A fresh writable
        array.

    Raises
    ------
    fastlr.io.DataFileError
        Missing or empty file, not IDX (bad magic or type code), header or data
        cut short, trailing bytes, corrupt gzip stream, or a declared size over
        half this machine's memory.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise _error(path, "no such file")
    if os.path.isdir(path):
        raise _error(path, "is a directory, not a data file")
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            try:
                return _read_idx_stream(path, f, None if compressed else os.fstat(raw.fileno()).st_size)
            finally:
                if compressed:
                    f.close()
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise _error(path, f"corrupt gzip stream ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    except MemoryError:
        raise _error(path, "needs more memory than is available") from None


def _read_idx_stream(path, f, file_size):
    head = _read_exact(f, 4)
    if len(head) == 0:
        raise _error(path, "empty file (no IDX header)")
    if len(head) < 4:
        raise _error(path, f"truncated IDX header ({len(head)} of 4 magic bytes)")
    if head[0] != 0 or head[1] != 0:
        raise _error(path, f"not an IDX file: magic number starts with bytes {head[0]:#04x} {head[1]:#04x}, "
                           f"expected 0x00 0x00")
    code, rank = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"{c:#04x} ({IDX_DTYPES[c].name})" for c in IDX_DTYPES)
        raise _error(path, f"unknown IDX type code {code:#04x}; expected one of {known}")
    if rank == 0:
        raise _error(path, "IDX header declares rank 0 (no dimensions)")
    dims_bytes = _read_exact(f, 4 * rank)
    if len(dims_bytes) < 4 * rank:
        raise _error(path, f"truncated IDX header: rank {rank} needs {4 * rank} bytes of dimensions, "
                           f"found {len(dims_bytes)}")
    shape = tuple(int(v) for v in np.frombuffer(dims_bytes, dtype=">u4"))
    dtype = IDX_DTYPES[code]
    count = 1
    for size in shape:
        count *= size
    nbytes = count * dtype.itemsize
    header = 4 + 4 * rank
    if file_size is not None and header + nbytes != file_size:
        if header + nbytes > file_size:
            raise _error(path, f"truncated: header declares shape {shape} of {dtype.name} "
                               f"({nbytes} data bytes), file has {file_size - header}")
        raise _error(path, f"{file_size - header - nbytes} unexpected bytes after the {shape} {dtype.name} "
                           f"data the header declares")
    if nbytes > _memory_limit_bytes():
        raise _error(path, f"header declares shape {shape} of {dtype.name} ({nbytes / 2**30:.3g} GiB), "
                           f"more than half of this machine's memory")
    out = np.empty(count, dtype=dtype.newbyteorder("="))
    view = memoryview(out.view(np.uint8))
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:got + _READ_BLOCK])
        if not n:
            break
        got += n
    if got < nbytes:
        raise _error(path, f"truncated: header declares shape {shape} of {dtype.name} "
                           f"({nbytes} data bytes), found {got}")
    if f.read(1):
        raise _error(path, f"unexpected bytes after the {shape} {dtype.name} data the header declares")
    if not dtype.isnative:  # big-endian file on a little-endian machine (more than 1 byte per value)
        out.byteswap(inplace=True)
    return out.reshape(shape)


def write_idx(path, array, *, compress=None):
    """Write ``array`` as an IDX file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    array : array-like of rank 1 to 255, dtype uint8, int8, int16, int32, float32 or float64
    compress : bool or None
        gzip the file; None (default): when ``path`` ends with ``.gz``.

    Raises
    ------
    ValueError
        A dtype IDX has no code for, rank 0 or over 255, or a dimension of 2**32 or more.
    """
    from ._atomic import atomic_write

    path = os.fspath(path)
    a = np.asarray(array)
    native = a.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX has no type code for dtype {a.dtype}; use uint8, int8, int16, "
                         f"int32, float32 or float64")
    if not 1 <= a.ndim <= 255:
        raise ValueError(f"IDX arrays have rank 1 to 255, got {a.ndim}")
    if any(size >= 2 ** 32 for size in a.shape):
        raise ValueError(f"IDX dimensions are below 2**32, got shape {a.shape}")
    code = _CODES[native]
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(a, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.lower().endswith(".gz")
    with atomic_write(path, "wb") as f:
        if compress:
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(header)
                gz.write(data)
        else:
            f.write(header)
            f.write(data)


def idx_features(path, array, pixel_scale="unit", dtype=None):
    """An IDX array as the rows of a 2-D float feature matrix.

    Rank 1 becomes one column; rank r ≥ 2 is flattened to ``(shape[0], prod(shape[1:]))``
    in C order (for 28 × 28 images: row-major pixels, 784 columns).

    Parameters
    ----------
    path : str
        For error messages.
    array : ndarray
    pixel_scale : {"unit", "none"} or float, default "unit"
        ``"unit"``: uint8 data (pixels, 0..255) are divided by 255, giving [0, 1];
        other types are kept as stored. ``"none"``: values as stored. A positive
        float: values multiplied by it.
    dtype : {None, float32, float64}
        None: float32 for the 8- and 16-bit integer types and float32 data
        (exact), float64 for int32 and float64 data.

    Returns
    -------
    ndarray of shape (n, d), C-contiguous float32 or float64
    """
    factor = _pixel_factor(pixel_scale)
    if dtype is None:
        dtype = np.float64 if array.dtype in (np.dtype(np.int32), np.dtype(np.float64)) else np.float32
    dtype = np.dtype(dtype)
    X = array.reshape(array.shape[0], -1) if array.ndim >= 2 else array.reshape(-1, 1)
    if factor == "unit":
        if array.dtype == np.uint8:
            return np.divide(X, dtype.type(255), dtype=dtype)
        factor = None
    if factor is None:
        return np.ascontiguousarray(X, dtype=dtype)
    return np.multiply(X, dtype.type(factor), dtype=dtype)


def _pixel_factor(pixel_scale):
    """``pixel_scale`` checked: "unit", None (for "none") or a positive finite float."""
    if isinstance(pixel_scale, str):
        text = pixel_scale.strip().lower()
        if text == "unit":
            return "unit"
        if text == "none":
            return None
        try:
            pixel_scale = float(text)
        except ValueError:
            raise ValueError(f"pixel_scale must be 'unit', 'none' or a positive number, got {pixel_scale!r}") from None
    if isinstance(pixel_scale, bool) or not isinstance(pixel_scale, (int, float, np.integer, np.floating)):
        raise ValueError(f"pixel_scale must be 'unit', 'none' or a positive number, got {pixel_scale!r}")
    value = float(pixel_scale)
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"pixel_scale must be 'unit', 'none' or a positive number, got {pixel_scale!r}")
    return value


def idx_labels(path, array):
    """Check an IDX array as class labels: rank 1, an integer type. Returns it as int64."""
    if array.ndim != 1:
        raise _error(path, f"a labels file must have rank 1, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise _error(path, f"labels must be integers, got IDX type {array.dtype.name}")
    return array.astype(np.int64)


_KINDS = {"train": ("train",), "test": ("t10k", "test"), "t10k": ("t10k", "test")}


def _find(directory, stem, what, rank):
    names = [f"{stem}-{what}-idx{rank}-ubyte", f"{stem}-{what}.idx{rank}-ubyte"]
    for name in names:
        for candidate in (name + ".gz", name):
            full = os.path.join(directory, candidate)
            if os.path.isfile(full):
                return full
    return None


def mnist_paths(path, kind="train"):
    """(images file, labels file) of ``kind`` in the directory ``path``; see :func:`load_mnist`."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'train' or 'test' (or 't10k'), got {kind!r}")
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise _error(directory, "no such directory" if not os.path.exists(directory) else "is not a directory")
    for stem in _KINDS[kind]:
        images = _find(directory, stem, "images", 3)
        labels = _find(directory, stem, "labels", 1)
        if images and labels:
            return images, labels
    stem = _KINDS[kind][0]
    raise _error(directory, f"no {kind} files: expected {stem}-images-idx3-ubyte[.gz] and "
                            f"{stem}-labels-idx1-ubyte[.gz]")


def load_mnist(path, kind="train", *, pixel_scale="unit", dtype=np.float32):
    """Load MNIST-format images and labels (MNIST, Fashion-MNIST, KMNIST) from a directory.

    No network access: the files must be there, e.g. Debian's
    ``apt-get install dataset-fashion-mnist`` puts Fashion-MNIST in
    ``/usr/share/datasets/fashion-mnist``.

    Parameters
    ----------
    path : str or os.PathLike
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or
        with ``.gz`` (also accepted: ``test-`` for ``t10k-``, ``.idx3-ubyte`` for
        ``-idx3-ubyte``).
    kind : {"train", "test"}
        ``"test"`` (alias ``"t10k"``) reads the ``t10k-`` files.
    pixel_scale : {"unit", "none"} or float, default "unit"
        ``"unit"``: pixels / 255, in [0, 1]. ``"none"``: 0..255. A float: pixels times it.
    dtype : {float32, float64}, default float32

    Returns
    -------
    X : ndarray of shape (n, 784) for 28 × 28 images, C-contiguous, ``dtype``
        One image per row, pixels in row-major order.
    y : ndarray of shape (n,), int64
        Class labels (0..9).

    Raises
    ------
    fastlr.io.DataFileError
        The directory or a file is missing or unreadable, or the image and
        label counts differ.
    ValueError
        Bad ``kind``, ``pixel_scale`` or ``dtype``.
    """
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    _pixel_factor(pixel_scale)
    images_path, labels_path = mnist_paths(path, kind)
    images = read_idx(images_path)
    y = idx_labels(labels_path, read_idx(labels_path))
    if images.shape[0] != y.shape[0]:
        raise _error(labels_path, f"{y.shape[0]} labels for the {images.shape[0]} images of {images_path}")
    X = idx_features(images_path, images, pixel_scale, dtype)
    return X, y
