"""Input adapters: how each kind of input enters the estimator's one fit pipeline.

Holds: :func:`input_adapter` (picks the adapter for the arguments), :class:`HostInput`
(NumPy arrays, array-likes, scipy.sparse), :class:`DeviceInput` (GPU arrays:
CuPy, torch CUDA, numba device arrays; ``__cuda_array_interface__``). The Dask
adapter is :class:`fastlr._dask_input.DaskInput`.
May import: NumPy, scikit-learn, :mod:`fastlr._validation`, :mod:`fastlr._sparse`,
:mod:`fastlr._labels`, :mod:`fastlr._threads`,
:mod:`fastlr.backends` (the registry) and :mod:`fastlr._dask_input`; never the
estimator or the trainer (the estimator drives the pipeline, these only adapt).

The pipeline (``LogisticRegression._fit`` and ``_partial_fit``)::

    validate ─► labels ─► weights ─► backend + put ─► trainer ─► store
    (adapter)   (adapter, (adapter,  (adapter picks    (one for    (estimator)
                _labels)  _labels)   the backend)      every input)

Each adapter offers the same methods, so the estimator never asks what kind
of input it has:

``validate(est, X, y="no_validation", *, reset, ensure_all_finite)``
    scikit-learn's checks (``n_features_in_``, feature names); ``(X, y)`` or X.
``labels(y, classes=None, known=None)``
    ``(classes, codes)`` (:func:`fastlr._labels.fit_labels` / ``chunk_labels``).
``weights(class_weight, classes, codes, sample_weight, X)``
    Per-sample weights with class weights folded in, or None.
``backend(name, X)``
    The backend for this input (:func:`fastlr.backends.for_input` reads the
    capability flags; Dask input always trains on the ``dask`` backend).
``threads()``
    Context held while fastlr computes in this process.
``check_partial_fit()``
    Raises for inputs ``partial_fit`` cannot take.
``predict(est, X, method)``
    ``est.<method>(X)``: eager for arrays, lazy (one task per block) for Dask.
"""

import sys

import numpy as np
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._labels import chunk_labels, fit_labels, label_table, labels_from_output, sample_class_weights
from ._sparse import check_csr, issparse
from ._threads import fastlr_threads
from ._validation import FLOAT_DTYPES, check_device_features, check_sample_weight, output_dtype, to_host
from .backends import for_input, get_backend, is_device_array


def _is_dask(obj):
    """True for a dask collection; never imports dask (one can only exist if dask is loaded)."""
    dask = sys.modules.get("dask")
    return dask is not None and obj is not None and dask.is_dask_collection(obj)


def input_adapter(X, y=None, sample_weight=None):
    """The adapter for these arguments: Dask if any is a dask collection, device for GPU X, else host."""
    if any(_is_dask(o) for o in (X, y, sample_weight)):
        from ._dask_input import DaskInput
        return DaskInput()
    if is_device_array(X):
        return DeviceInput()
    return HostInput()


class HostInput:
    """NumPy arrays and array-likes, and scipy.sparse (as CSR), in this process's memory."""

    def validate(self, est, X, y="no_validation", *, reset=True, ensure_all_finite=True):
        """scikit-learn's ``validate_data``: float32/float64, C order; sparse as checked CSR."""
        out = validate_data(est, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES, order="C",
                            reset=reset, ensure_all_finite=ensure_all_finite and not issparse(X))
        X_out = out[0] if isinstance(out, tuple) else out
        if issparse(X_out):
            check_csr(X_out)
        return out

    def labels(self, y, classes=None, known=None, partial=False):
        """``(classes, codes)`` for ``fit`` (``partial=False``) or a ``partial_fit`` chunk."""
        return chunk_labels(y, classes, known) if partial else fit_labels(y)

    def weights(self, class_weight, classes, codes, sample_weight, X):
        sample_weight = check_sample_weight(to_host(sample_weight), X)
        return sample_class_weights(class_weight, classes, codes, sample_weight)

    def backend(self, name, X):
        return for_input(get_backend(name), X, name)

    def threads(self):
        return fastlr_threads()  # other libraries' BLAS/OpenMP pools at one thread meanwhile

    def check_partial_fit(self):
        pass

    def check_scores(self, est, X, scores):
        """NaN/inf in X make their rows' scores non-finite (0 · inf is NaN), so the scores,
        not a separate pass over X, tell whether X needs the full check (which names them)."""
        if not np.isfinite(scores).all():
            self.validate(est, X, reset=False)

    def predict(self, est, X, method):
        """What ``method`` returns for X, from one validation of X.

        ``predict`` runs the backend's one-pass ``predict_labels`` where it has
        one and every score was finite; otherwise (and for the other methods)
        the raw scores (n, k) come from ``decision_function``, and non-finite
        ones send X through the full check, which names NaN/inf in it.
        """
        check_is_fitted(est)
        X = self.validate(est, X, reset=False, ensure_all_finite=False)
        # Sparse or GPU X on a model fitted by a backend without the capability: another backend.
        backend = for_input(get_backend(est.backend_), X, "auto")
        predict_labels = getattr(backend, "predict_labels", None) if method == "predict" else None
        with fastlr_threads():
            if predict_labels is not None:
                out = predict_labels(X, est.coef_, est.intercept_, label_table(est.classes_))
                if out is not None and out[1]:
                    return labels_from_output(est.classes_, out[0])
            scores = backend.decision_function(X, est.coef_, est.intercept_)
        self.check_scores(est, X, scores)
        return est._output(method, scores, output_dtype(X))


class DeviceInput(HostInput):
    """GPU arrays (``__cuda_array_interface__``): checked in place, never copied; y to the host."""

    def validate(self, est, X, y="no_validation", *, reset=True, ensure_all_finite=True):
        X = check_device_features(X)
        if reset:
            est.n_features_in_ = X.shape[1]
        elif X.shape[1] != est.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                             f"expecting {est.n_features_in_} features as input.")
        if isinstance(y, str) and y == "no_validation":
            return X
        if y is None:
            raise ValueError(f"This {type(est).__name__} estimator requires y to be passed, "
                             "but the target y is None.")
        y = column_or_1d(to_host(y), warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
        return X, y

    def check_scores(self, est, X, scores):
        pass  # reading X back to name a NaN would copy it to the host
