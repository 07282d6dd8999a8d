"""What every ``fastlr`` command shares: exit statuses, argument types, data-file checks.

User errors raise ValueError/OSError (DataFileError, ModelFileError) in the
commands; :func:`fastlr.cli.main` turns them into one line on stderr and exit
status :data:`EXIT_USAGE`.
"""

import argparse
import os

import numpy as np

#: Exit status of a user error (bad option, unreadable file): one line on stderr.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """Raised by a command that handled Ctrl-C (and saved what it could); ``main`` exits 130."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# -- argument types ------------------------------------------------------------------------

def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def unit_fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def tolerance(text):
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 or 'none', got {text!r}")
    return value


def random_seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {text!r}")
    return value


# -- data files ----------------------------------------------------------------------------

def is_npy(path):
    return str(path).lower().endswith(".npy")


def is_idx(path):
    from .._idx import is_idx_name

    return is_idx_name(path)


def is_svmlight(path):
    return str(path).lower().endswith((".svm", ".svmlight", ".libsvm"))


def is_table(path):
    """Whether DATA is a table with named columns: CSV/TSV/text or Parquet."""
    from ..io import CSV_EXTENSIONS, PARQUET_EXTENSIONS

    return str(path).lower().endswith(CSV_EXTENSIONS + PARQUET_EXTENSIONS)


def holds_x_only(path):
    """Whether DATA holds X without labels: a .npy array or a scipy.sparse .npz."""
    if is_npy(path):
        return True
    if str(path).lower().endswith(".npz"):
        from ..io import is_sparse_npz
        return is_sparse_npz(path)
    return False


def zero_based(args):
    """``--index-base`` as load_svmlight_file's ``zero_based``."""
    return {"auto": "auto", "0": True, "1": False}[getattr(args, "index_base", None) or "auto"]


def add_pixel_scale(parser):
    parser.add_argument("--pixel-scale", metavar="unit|none|FACTOR", default=None,
                        help="IDX DATA: 'unit' divides uint8 pixels by 255 into [0, 1] float32 "
                             "(default); 'none' keeps 0..255; a number multiplies the values by it")


def check_pixel_scale(args):
    """``--pixel-scale`` checked against DATA; the value for :func:`fastlr.io.read_data`."""
    from .._idx import _pixel_factor

    if args.pixel_scale is None:
        return "unit"
    if not is_idx(args.data):
        raise ValueError(f"--pixel-scale applies to IDX (MNIST format) data; {args.data} is not one")
    try:
        _pixel_factor(args.pixel_scale)
    except ValueError:
        raise ValueError(f"--pixel-scale must be 'unit', 'none' or a positive number, "
                         f"got {args.pixel_scale!r}") from None
    return args.pixel_scale


def check_out_dir(path, option, inputs=()):
    """An output path must be in an existing directory, not a directory, and none of ``inputs``.

    ``inputs``: ``(what, path)`` pairs (e.g. ``("DATA", args.data)``); an output that is
    one of them (the same file, by any name) would destroy it.
    """
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"{option} {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a directory")
    for what, source in inputs:
        if source is None or source == "-":
            continue
        if os.path.realpath(path) == os.path.realpath(source) or (
                os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source)):
            raise ValueError(f"{option} {path} is the {what} file; writing there would destroy it: "
                             "give another path")


def load_labels(path, n_rows, data_path):
    if is_idx(path):
        from ..io import read_idx_labels

        labels = read_idx_labels(path)
        if n_rows is not None and len(labels) != n_rows:
            raise ValueError(f"{path}: {len(labels)} labels for {n_rows} rows of {data_path}")
        return labels
    try:
        labels = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy labels file ({exc})") from None
    if labels.ndim != 1:
        raise ValueError(f"{path}: labels must be one-dimensional, got shape {labels.shape}")
    if n_rows is not None and len(labels) != n_rows:
        raise ValueError(f"{path}: {len(labels)} labels for {n_rows} rows of {data_path}")
    return labels


def located_nonfinite(exc, X, path):
    """scikit-learn's or fastlr's "contains NaN/infinity" error, naming ``path`` and the place.

    A dense X gets the first non-finite entry's row and column (searched only on this error
    path; CSV and Parquet readers name the line themselves); a sparse X's message names them
    already and gets the file. Any other error is returned unchanged.
    """
    text = str(exc)
    if "contains NaN" not in text and "contains infinity" not in text and "NaN or infinity" not in text:
        return exc
    if isinstance(X, np.ndarray) and X.ndim == 2:
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            i, j = (int(v) for v in bad[0])
            return ValueError(f"{path}: non-finite value {X[i, j]} at row {i}, column {j} "
                              f"(0-based); X must be finite")
    return ValueError(f"{path}: {text}")
