"""Class labels to int32 codes without sorting, when the labels are small integers.

``np.unique(y, return_inverse=True)`` sorts y: at a million labels that took
longer than a gradient over X (issue 13). Integer (and bool) labels whose range
is small are encoded instead by counting: ``np.bincount`` finds which values
occur (one pass over y, after one pass for the minimum and maximum), and a
lookup table maps each present value to its rank, which is the code that
``np.unique`` would have given (classes sorted ascending). Other labels
(strings, floats, objects, integers spread over a wide range) take the
general path through scikit-learn's ``check_classification_targets`` and
``np.unique``.
"""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets


def _small_int_range(y):
    """``(lo, hi)`` when y holds integers (or bools) whose range is small enough to count; else None."""
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "biu" or y.size == 0:
        return None
    if y.dtype.kind == "b":
        return 0, 1
    lo, hi = int(y.min()), int(y.max())
    # A table of one entry per value in the range: at most max(n, 2**16) entries.
    if hi - lo >= max(y.size, 1 << 16):
        return None
    return lo, hi


def classes_and_codes(y):
    """``(classes, codes)``: the sorted distinct labels of y and y's int32 codes into them.

    Equal to ``np.unique(y, return_inverse=True)`` (codes as int32), with the
    same errors for targets that are not classification labels (continuous,
    multi-output): those go through scikit-learn's checks.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)

    Returns
    -------
    classes : ndarray of shape (n_classes,), y's dtype
    codes : ndarray of shape (n_samples,), int32
    """
    span = _small_int_range(y)
    if span is None:
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        return classes, codes.astype(np.int32).reshape(-1)
    lo, hi = span
    shift = min(lo, 0)
    if y.dtype.kind == "b":
        view = y.view(np.uint8)
    else:
        view = y if shift == 0 else y - shift  # negative labels: shifted copy of the labels only
    counts = np.bincount(view, minlength=hi - shift + 1)
    present = np.flatnonzero(counts)
    classes = (present + shift).astype(y.dtype)
    if present.shape[0] == counts.shape[0]:
        # Every value of the (shifted) range occurs, the usual 0..k-1: the codes are the values.
        return classes, view.astype(np.int32)
    table = np.full(counts.shape[0], -1, dtype=np.int32)
    table[present] = np.arange(present.shape[0], dtype=np.int32)
    return classes, table[view]


def encode(y, classes):
    """Codes of ``y`` in the sorted array ``classes``; ValueError for labels not in it.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    classes : ndarray of shape (n_classes,), sorted

    Returns
    -------
    ndarray of shape (n_samples,), int32
    """
    span = _small_int_range(y)
    if span is not None and np.asarray(classes).dtype.kind in "biu":
        lo, hi = span
        c_lo, c_hi = int(classes[0]), int(classes[-1])
        if lo >= c_lo and hi <= c_hi and c_hi - c_lo < max(y.size, 1 << 16):
            table = np.full(c_hi - c_lo + 1, -1, dtype=np.int32)
            table[np.asarray(classes, dtype=np.int64) - c_lo] = np.arange(len(classes), dtype=np.int32)
            codes = table[y - c_lo] if c_lo else table[y.view(np.uint8) if y.dtype.kind == "b" else y]
            unknown = codes < 0
            if not np.any(unknown):
                return codes
            _raise_unknown(y, unknown, classes)
    codes = np.searchsorted(classes, y)
    codes = np.clip(codes, 0, len(classes) - 1)
    unknown = classes[codes] != y
    if np.any(unknown):
        _raise_unknown(y, unknown, classes)
    return codes.astype(np.int32)


def _raise_unknown(y, unknown, classes):
    raise ValueError(
        f"y contains labels not in classes_ {np.asarray(classes).tolist()}: "
        f"{np.unique(np.asarray(y)[unknown]).tolist()[:5]}"
    )
