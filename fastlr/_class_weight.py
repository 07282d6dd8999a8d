"""Class weights, computed in one place for the in-memory and the Dask paths.

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
