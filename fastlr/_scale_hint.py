"""The "scale your features" sentence appended to a solver's convergence warning.

A first-order solver on features whose magnitudes differ by orders of
magnitude (raw breast cancer: 0.003 to 4,000) needs thousands of iterations
or diverges; the warning says so, with the measured spread, so that the user
knows what to do. Used by the trainer (in-memory fits) and by ``fastlr train
--chunk-rows`` (which sees the data one chunk at a time).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCALE_RATIO", "SAMPLE_ROWS", "column_scales", "scale_hint"]

#: Features whose largest magnitudes differ by more than this factor get a "scale the data" hint.
SCALE_RATIO = 1e3

#: Rows the hint looks at: all of them up to this many, else this many evenly spaced ones.
SAMPLE_ROWS = 1 << 13

_GENERIC = " Scaling the features (e.g. sklearn.preprocessing.StandardScaler) may help."


def column_scales(X, max_rows=SAMPLE_ROWS):
    """Largest ``|x_j|`` of each column over at most ``max_rows`` evenly spaced rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), or scipy.sparse CSR/CSC/COO
        Any float dtype; read, never copied whole (a dense sample of at most
        ``max_rows`` rows is taken first; the sparse path reads the sample's
        stored values).
    max_rows : int
        Rows to look at: all when ``n_samples <= max_rows``, else every
        ``ceil(n_samples / max_rows)``-th row.

    Returns
    -------
    ndarray of shape (n_features,), float64
        0 for a column without a non-zero in the sample; NaN or inf where the
        sample holds them (callers drop them).
    """
    import scipy.sparse as sp

    step = max(1, -(-X.shape[0] // max_rows))
    if sp.issparse(X):
        sample = sp.csr_matrix(X)[::step]
        return np.asarray(abs(sample).max(axis=0).toarray(), dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        return np.max(np.abs(X[::step]), axis=0).astype(np.float64)


def scale_hint(scales, fit_intercept, *, where=""):
    """The sentence for a convergence warning, from per-column ``scales`` (:func:`column_scales`).

    Parameters
    ----------
    scales : ndarray of shape (n_features,), or None
        Largest ``|x_j|`` per column; None when the data cannot be looked at
        (on a GPU, on a cluster): the generic advice only.
    fit_intercept : bool
        Count the intercept's column (all ones, so scale 1) among the columns.
    where : str
        Which rows the scales come from, e.g. ``" in the first 100 rows"``.

    Returns
    -------
    str
        Starts with a space: " The features' scales differ by orders of
        magnitude (...)" when the largest scale is more than
        :data:`SCALE_RATIO` times the smallest non-zero one; the generic
        " Scaling the features ... may help." when the data could not be
        looked at (``scales`` None or empty); else "" (nothing to say: the
        advice had been given for data already standardised or in [0, 1],
        which a new user found confusing).
    """
    if scales is None or scales.size == 0:
        return _GENERIC
    scales = scales[np.isfinite(scales) & (scales > 0)]
    if fit_intercept:
        scales = np.append(scales, 1.0)
    if scales.size and scales.max() > SCALE_RATIO * scales.min():
        return (f" The features' scales differ by orders of magnitude (largest |x_j| per column{where} "
                f"from {scales.min():.3g} to {scales.max():.3g}{', intercept included' if fit_intercept else ''}): "
                "scale the data, e.g. with sklearn.preprocessing.StandardScaler.")
    return ""
