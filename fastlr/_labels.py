"""Class labels in one place: classes, int32 codes, the number of model outputs, label errors.

Holds: :func:`classes_and_codes`, :func:`encode` (unknown labels are a
ValueError), :func:`check_classes` (at least two classes), :func:`n_outputs`
(one output for two classes, else one per class), :func:`fit_labels` and
:func:`chunk_labels` (``fit`` and ``partial_fit``), and the class weights:
:func:`per_class_weights`, :func:`sample_class_weights` (see "Class weights"
below). Used by the estimator's input adapters (in-memory and Dask), the
model files, bench and the peers.
May import: NumPy and scikit-learn only.

Class labels to int32 codes without sorting, when the labels are small integers:

``np.unique(y, return_inverse=True)`` sorts y: at a million labels that took
longer than a gradient over X (issue 13). Integer (and bool) labels whose range
is small are encoded instead by counting: ``np.bincount`` finds which values
occur (one pass over y, after one pass for the minimum and maximum), and a
lookup table maps each present value to its rank, which is the code that
``np.unique`` would have given (classes sorted ascending). Other labels
(strings, floats, objects, integers spread over a wide range) take the
general path through scikit-learn's ``check_classification_targets`` and
``np.unique``.

Class weights
-------------
Computed in one place for the in-memory and the Dask paths.

The semantics are scikit-learn's (``sklearn.utils.class_weight.compute_class_weight``
with ``sample_weight``, as ``sklearn.linear_model.LogisticRegression`` calls it):

``"balanced"``
    ``w_c = S / (n_classes · S_c)`` with ``S_c`` the *sum of the sample weights*
    of class ``c`` (its row count when unweighted) and ``S = Σ_c S_c``; so
    integer sample weights give exactly the model of the data with each row
    repeated that many times, whatever ``class_weight`` is.
dict
    ``{label: weight}``; classes not named weigh 1. A key that matches no class
    while some class is not named (a typo such as ``{"a": 1, "B": 10}`` for
    classes ``a, b``) is a ValueError naming both, as in scikit-learn.

Each sample's weight is then its class weight times its sample weight.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.utils.multiclass import check_classification_targets


def _small_int_range(y):
    """``(lo, hi)`` when y holds integers (or bools) whose range is small enough to count; else None."""
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "biu" or y.size == 0:
        return None
    lo, hi = int(y.min()), int(y.max())  # bools too: False/True when only one occurs
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
    codes : ndarray of shape (n_samples,), int32, C-contiguous
        y itself when y is a contiguous int32 array of 0..k-1 with every value present (the
        caller only reads it).
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
    if hi - lo <= 1:
        # The minimum and the maximum occur by definition: a range of at most two values (binary
        # labels) is all present, without the counting pass (np.bincount: 2.4-2.9 ms at 1M labels).
        present = np.arange(lo - shift, hi - shift + 1)
        n_values = hi - shift + 1  # the table covers shift..hi
    else:
        counts = np.bincount(view, minlength=hi - shift + 1)
        present = np.flatnonzero(counts)
        n_values = counts.shape[0]
    classes = (present + shift).astype(y.dtype)
    if present.shape[0] == n_values:
        # Every value of the (shifted) range occurs, the usual 0..k-1: the codes are the values
        # (int32 labels from 0: y itself, read-only to every kernel and solver, not a copy).
        return classes, np.ascontiguousarray(view, dtype=np.int32)
    table = np.full(n_values, -1, dtype=np.int32)
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


def label_table(classes):
    """What ``predict``'s one-pass kernel writes for each class code, and what is left to do.

    Integer labels (int32 or int64, the usual case) are written by the kernel
    itself: the table is ``classes``. Other labels (strings, floats, bools,
    other widths: each table dtype is one more compilation of the kernel) get
    the codes ``arange(n_classes)`` (int64), which :func:`labels_from_output`
    turns into labels by one gather.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,), sorted distinct labels

    Returns
    -------
    ndarray of shape (n_classes,), int32 or int64
    """
    if classes.dtype in (np.int64, np.int32) and classes.dtype.isnative:
        return np.ascontiguousarray(classes)
    return np.arange(classes.shape[0], dtype=np.int64)


def labels_from_output(classes, out):
    """The labels of the kernel's output for the table :func:`label_table` gave.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
    out : ndarray of shape (n_samples,), labels (integer ``classes``) or codes (the others)

    Returns
    -------
    ndarray of shape (n_samples,), classes' dtype
    """
    if out.dtype == classes.dtype:
        return out
    return classes.take(out)


def n_outputs(n_classes):
    """Rows of ``coef_`` for ``n_classes`` classes: 1 (sigmoid) for two, else one per class (softmax)."""
    return 1 if n_classes == 2 else n_classes


def check_classes(classes):
    """ValueError unless ``classes`` (the sorted distinct labels) holds at least two classes."""
    if len(classes) < 2:
        raise ValueError(
            "LogisticRegression needs samples of at least 2 classes in the data; "
            f"got only one class: {np.asarray(classes).tolist()}"
        )
    return classes


def fit_labels(y):
    """``(classes, codes)`` of the training labels y for ``fit``; ValueError for fewer than 2 classes."""
    classes, codes = classes_and_codes(y)
    return check_classes(classes), codes


def chunk_labels(y, classes, known=None):
    """``(classes, codes)`` of one ``partial_fit`` chunk.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    classes : array-like or None
        The ``classes=`` argument (every label that will ever be seen); needed
        on the first call, and when given later it must equal ``known``.
    known : ndarray or None
        ``classes_`` from earlier calls (None on the first call).

    Raises
    ------
    ValueError
        ``classes`` missing on the first call or different from ``known``; fewer
        than 2 classes; a label of y not in the classes.
    """
    if known is None and classes is None:
        raise ValueError("classes must be given on the first call to partial_fit")
    if known is not None and classes is not None and not np.array_equal(np.unique(classes), known):
        raise ValueError(f"classes {np.unique(classes).tolist()} differ from classes_ "
                         f"{np.asarray(known).tolist()} given earlier")
    if y.dtype.kind not in "biu":  # integer labels are always class labels
        check_classification_targets(y)
    classes = check_classes(np.unique(classes)) if known is None else known
    return classes, encode(y, classes)

def _py(value):
    """A label as a plain Python object (NumPy scalars hash and compare like their values)."""
    return value.item() if isinstance(value, np.generic) else value


def per_class_weights(class_weight, classes, counts, weighted_counts=None):
    """The weight of each class, float64 of shape (n_classes,), or None for ``class_weight=None``.

    Parameters
    ----------
    class_weight : dict, "balanced" or None
    classes : ndarray of shape (n_classes,)
        The labels, sorted (``classes_``).
    counts : array-like of shape (n_classes,), int
        Rows of each class in the training data (classes with none do not count
        in ``n_classes`` of the balanced formula, as in scikit-learn).
    weighted_counts : array-like of shape (n_classes,), float, optional
        Sum of the sample weights of each class; None means unit weights (``counts``).

    Returns
    -------
    ndarray of shape (n_classes,), float64, or None

    Raises
    ------
    ValueError
        ``class_weight`` is not a dict, "balanced" or None; a dict value is negative
        or not finite; a dict key matches no class while some class is not in the dict.
    """
    if class_weight is None:
        return None
    counts = np.asarray(counts, dtype=np.float64)
    if isinstance(class_weight, str) and class_weight == "balanced":
        totals = counts if weighted_counts is None else np.asarray(weighted_counts, dtype=np.float64)
        n_present = int(np.count_nonzero(counts))
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = totals.sum() / (n_present * totals)
        # a class without rows (partial_fit chunks) or whose rows all weigh 0 adds nothing
        return np.where(totals > 0, weights, 1.0)
    if not isinstance(class_weight, Mapping):
        raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {class_weight!r}")
    labels = [_py(c) for c in classes]
    weights = np.ones(len(labels))
    named = set()
    for i, label in enumerate(labels):
        if label in class_weight:
            weights[i] = class_weight[label]
            named.add(label)
    if not np.all(np.isfinite(weights) & (weights >= 0)):
        raise ValueError(f"class_weight values must be finite and >= 0, got {class_weight!r}")
    unknown = [key for key in class_weight if _py(key) not in named]
    unnamed = [label for label in labels if label not in named]
    if unknown and unnamed:
        raise ValueError(
            f"class_weight keys {unknown!r} match no class, and the classes {unnamed!r} are not "
            f"in class_weight (classes: {labels!r}); check the spelling and type of the keys")
    return weights


def sample_class_weights(class_weight, classes, codes, sample_weight=None):
    """Per-sample weights with class weights folded in (float64 (n,), or ``sample_weight``).

    Parameters
    ----------
    class_weight : dict, "balanced" or None
    classes : ndarray of shape (n_classes,)
    codes : ndarray of shape (n,), int
        Each sample's class index into ``classes``.
    sample_weight : ndarray of shape (n,), float64, or None

    Returns
    -------
    ndarray of shape (n,), float64, or None (unit weights)
    """
    if class_weight is None:
        return sample_weight
    k = len(classes)
    counts = np.bincount(codes, minlength=k)
    weighted = None if sample_weight is None else np.bincount(codes, weights=sample_weight, minlength=k)
    weights = per_class_weights(class_weight, classes, counts, weighted)[codes]
    return weights if sample_weight is None else weights * sample_weight
