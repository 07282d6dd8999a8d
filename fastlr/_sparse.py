"""Sparse (CSR) input: validation at the public boundary.

Every entry point (``fit``, ``partial_fit``, ``predict*``, ``decision_function``,
``score``, :func:`fastlr.loss_grad`) accepts ``scipy.sparse`` matrices and
arrays. CSR (``csr_matrix``, ``csr_array``) is used as it is, without a copy
when its values are float32 or float64; CSC, COO and the other formats are
converted to CSR once (a copy), by scikit-learn's ``check_array(accept_sparse="csr")``.
X is never densified.

scikit-learn does not look inside the CSR arrays, and the kernels index
``w[indices[p]]`` without bounds checks, so :func:`check_csr` makes one pass
over ``indptr``, ``indices`` and ``data`` that finds malformed structure
(which would otherwise read out of bounds) and NaN/inf among the stored
values.

May import: NumPy, scipy.sparse, :mod:`fastlr._validation`.
"""

import numpy as np
import scipy.sparse as sp
from numba import njit
from sklearn.utils import check_array

from ._validation import FLOAT_DTYPES

issparse = sp.issparse

# Codes returned by _scan (0 = fine).
_BAD_INDPTR_START, _BAD_INDPTR_ORDER, _BAD_INDPTR_END, _NEGATIVE_INDEX, _LARGE_INDEX, _NONFINITE = range(1, 7)


@njit(cache=True)
def _scan(data, indices, indptr, n_cols, check_finite):
    """``(code, where)``: the first problem found in the CSR arrays, or ``(0, -1)``."""
    n = indptr.shape[0] - 1
    if indptr[0] != 0:
        return _BAD_INDPTR_START, 0
    for i in range(n):
        if indptr[i + 1] < indptr[i]:
            return _BAD_INDPTR_ORDER, i
    if indptr[n] != indices.shape[0] or indptr[n] != data.shape[0]:
        return _BAD_INDPTR_END, n
    for p in range(indices.shape[0]):
        j = indices[p]
        if j < 0:
            return _NEGATIVE_INDEX, p
        if j >= n_cols:
            return _LARGE_INDEX, p
    if check_finite:
        for p in range(data.shape[0]):
            if not np.isfinite(data[p]):
                return _NONFINITE, p
    return 0, -1


def _row_of(indptr, position):
    """The row holding stored entry ``position`` (indptr already checked: starts at 0, monotone)."""
    return int(np.searchsorted(indptr, position, side="right")) - 1


def check_csr(X, *, input_name="X", ensure_all_finite=True):
    """Check the structure (and values) of a CSR matrix; return it unchanged.

    Parameters
    ----------
    X : scipy.sparse CSR matrix or array of shape (n_samples, n_features)
    input_name : str
    ensure_all_finite : bool, default=True
        Also reject NaN/inf among the stored values.

    Returns
    -------
    X

    Raises
    ------
    ValueError
        Naming the problem: ``indptr`` not starting at 0, decreasing, or not
        ending at the number of stored values; a negative column index or one
        ``>= n_features``; a NaN or infinite stored value.
    """
    n, d = X.shape
    indptr, indices, data = X.indptr, X.indices, X.data
    if indptr.ndim != 1 or indptr.shape[0] != n + 1:
        raise ValueError(f"sparse {input_name} has an indptr of shape {indptr.shape}; "
                         f"expected ({n + 1},) for {n} rows")
    code, where = _scan(data, indices, indptr, d, bool(ensure_all_finite))
    if code == 0:
        return X
    if code == _BAD_INDPTR_START:
        msg = f"indptr starts at {indptr[0]}, not 0"
    elif code == _BAD_INDPTR_ORDER:
        msg = (f"indptr is not monotone: indptr[{where + 1}] = {indptr[where + 1]} < "
               f"indptr[{where}] = {indptr[where]}")
    elif code == _BAD_INDPTR_END:
        msg = (f"indptr ends at {indptr[-1]}, but indices has {indices.shape[0]} and data "
               f"{data.shape[0]} entries (nnz)")
    elif code == _NEGATIVE_INDEX:
        msg = (f"negative column index {indices[where]} in row {_row_of(indptr, where)} "
               f"(position {where} of indices)")
    elif code == _LARGE_INDEX:
        msg = (f"column index {indices[where]} in row {_row_of(indptr, where)} (position {where} "
               f"of indices) is out of range for {d} columns")
    else:
        msg = (f"stored value {float(data[where])!r} at row {_row_of(indptr, where)}, column "
               f"{indices[where]} (0-based; position {where} of data) is NaN or infinite")
        raise ValueError(f"Input {input_name} contains NaN or infinity: {msg}")
    raise ValueError(f"malformed sparse {input_name}: {msg}")


def check_sparse_features(X, *, input_name="X", ensure_all_finite=True):
    """Any scipy.sparse X as a checked CSR matrix of float32/float64 values (see module docs)."""
    X = check_array(X, accept_sparse="csr", dtype=FLOAT_DTYPES, ensure_2d=True,
                    ensure_min_samples=1, ensure_min_features=1, input_name=input_name,
                    ensure_all_finite=False)
    return check_csr(X, input_name=input_name, ensure_all_finite=ensure_all_finite)
