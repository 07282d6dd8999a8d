"""``LogisticRegression``: a scikit-learn estimator over the shared trainer.

A thin shell: it validates parameters and data once, encodes labels, turns
``C`` and the sample/class weights into the trainer's mean objective, and
hands everything to :func:`fastlr.trainer.train` through a backend.
"""

import sys
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._validation import (
    FLOAT_DTYPES, check_choice, check_device_features, check_loss, check_number,
    check_sample_weight, to_host,
)
from .backend_cuda import is_device_array
from .backends import BACKEND_NAMES, get_backend
from .trainer import LEARNING_RATES, SOLVERS, NonFiniteObjective, TrainOptions, train, train_sgd


@contextmanager
def _rollback_on_error(estimator):
    """Restore ``estimator``'s attributes if the block raises (any exception, Ctrl-C included)."""
    state = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(state)
        raise


def _dask_input(*objs):
    """The dask path (fastlr.dask_backend) if any of ``objs`` is a dask collection, else None.

    Never imports dask: a dask collection can only exist if dask is already loaded.
    """
    dask = sys.modules.get("dask")
    if dask is not None and any(o is not None and dask.is_dask_collection(o) for o in objs):
        from . import dask_backend
        return dask_backend
    return None


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression trained by compiled one-pass kernels.

    Minimises ``C Σ_i s_i loss(x_i·w + b, y_i) + ½‖w‖²`` (``s_i`` the sample
    times class weights; the intercept is not penalised), which is
    scikit-learn's objective, so ``C`` and the coefficients compare one to
    one with ``sklearn.linear_model.LogisticRegression``. Two classes give a
    sigmoid model, three or more a softmax (multinomial) model.

    Parameters
    ----------
    loss : {"log", "squared"}, default="log"
        ``"log"``: cross-entropy. ``"squared"``: ``½ (σ(z) − y)²``, the
        least-squares sigmoid neuron (``½ ‖softmax(z) − onehot(y)‖²`` for
        several classes); not convex, so solutions depend on the start.
    penalty : {"l2", None}, default="l2"
    C : float, default=1.0
        Inverse regularisation strength, > 0.
    solver : {"lbfgs", "newton-cg", "gd", "sgd"}, default="lbfgs"
        ``"lbfgs"``: scipy's L-BFGS-B on the full gradient. ``"newton-cg"``:
        line-search truncated Newton (Nocedal & Wright, *Numerical
        Optimization*, 2006, Algorithm 7.1, as scikit-learn's solver of that
        name): each iteration solves the Newton system by conjugate gradients,
        one pass over X per Hessian-vector product (the Hessian is never
        formed), then backtracks from the full Newton step (Armijo). Same
        objective and stopping rule (``max |gradient| <= tol``) as
        ``"lbfgs"``; far fewer iterations and usually fewer passes over X on
        ill-conditioned problems (unscaled features, weak regularisation,
        e.g. raw breast-cancer or Fashion-MNIST); ``loss="log"`` only, and
        backends "cpu" and "numpy" only (cuda and dask raise
        NotImplementedError). Recommended when lbfgs needs hundreds of
        iterations. ``"gd"``: full-batch gradient descent. ``"sgd"``:
        mini-batch SGD, one compiled call per epoch.
    backend : {"auto", "cpu", "cuda", "numpy", "dask"}, default="auto"
        ``"cpu"``: Numba kernels; ``"cuda"``: numba-cuda kernels on the GPU (X
        copied to the device once per fit, or used in place when it is a
        CuPy array or torch CUDA tensor); ``"numpy"``: the vectorised
        reference; ``"auto"``: the GPU when numba-cuda finds one, else the CPU
        (``fastlr info`` says which and why; ``backend_`` records it).
        Dask collections (dask arrays, dask DataFrames; ``pip install
        fastlr[dask]``) always train on the current ``dask.distributed``
        cluster (``backend_ == "dask"``); ``backend`` then names the kernel run
        on each partition (``"auto"`` and ``"dask"``: auto). See
        :mod:`fastlr.dask_backend`.
    max_iter : int, default=100
        Iterations (lbfgs, gd) or epochs (sgd).
    tol : float or None, default=1e-4
        lbfgs and gd stop when the largest gradient component of the mean
        objective is ≤ tol; sgd (and the adaptive schedule) when the epoch loss
        has not improved by tol for ``n_iter_no_change`` epochs. None: run
        ``max_iter``.
    learning_rate : {"constant", "invscaling", "adaptive", "backtracking"}, default="constant"
        Step sizes for gd and sgd: ``eta0``; ``eta0 / t**power_t``; ``eta0``
        divided by 5 whenever the loss stalls; ``"backtracking"`` (gd only): an
        Armijo line search starting from ``eta0``.
    eta0 : float, default=0.1
        Initial learning rate, > 0.
    power_t : float, default=0.5
        Exponent of the invscaling schedule.
    batch_size : int, default=256
        Rows per SGD step (the gradient is averaged over the batch).
    shuffle : bool or "rows", default=True
        sgd: ``True`` visits the batches of consecutive rows in a new random
        order each epoch (fast, sequential memory access); ``"rows"`` shuffles
        individual rows each epoch (slower; use it when the data are sorted,
        e.g. by class); ``False`` keeps the data order.
    n_iter_no_change : int, default=5
    random_state : int, RandomState instance or None, default=None
        Seeds the sgd shuffling.
    fit_intercept : bool, default=True
    class_weight : dict, "balanced" or None, default=None
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    verbose : int, default=0
        Print the objective after every iteration or epoch.
    callback : callable or None, default=None
        Called as ``callback(info)`` after every iteration (lbfgs, gd) or
        epoch (sgd, and the one epoch of ``partial_fit``), with a
        :class:`fastlr.trainer.IterationInfo`: ``info.iteration`` (1, 2, ...),
        ``info.loss`` (the value appended to ``loss_curve_``), ``info.coef``
        (k, n_features) and ``info.intercept`` (k,) (copies), ``info.solver``.
        Returning a true value stops training there: the estimator is fitted
        with those coefficients, without a ConvergenceWarning. An exception
        it raises propagates out of ``fit`` (see below).

    Notes
    -----
    ``fit`` and ``partial_fit`` are transactional: if either raises — bad input,
    an exception from ``callback``, KeyboardInterrupt (Ctrl-C) — the estimator
    is left exactly as it was before the call (its previous fitted state, or
    unfitted), and the exception propagates. After an interrupted
    ``partial_fit`` loop the model is therefore that of the last completed
    call, i.e. the last completed epoch.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    n_iter_ : int
        Iterations or epochs run by the last ``fit`` (1 after ``partial_fit``).
    loss_curve_ : list of float
        Mean penalised objective after each iteration or epoch.
    backend_ : str
        The backend that was used (what ``"auto"`` resolved to).
    """

    def __init__(self, loss="log", penalty="l2", C=1.0, solver="lbfgs", backend="auto",
                 max_iter=100, tol=1e-4, learning_rate="constant", eta0=0.1, power_t=0.5,
                 batch_size=256, shuffle=True, n_iter_no_change=5, random_state=None,
                 fit_intercept=True, class_weight=None, warm_start=False, verbose=0,
                 callback=None):
        self.loss = loss
        self.penalty = penalty
        self.C = C
        self.solver = solver
        self.backend = backend
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.callback = callback

    # -- parameters -----------------------------------------------------------------------

    def _check_params(self, solver, partial=False):
        """Validate the hyper-parameters; return (loss_id, backend, TrainOptions).

        ``partial``: for ``partial_fit``, where ``"backtracking"`` means constant steps.
        """
        loss_id = check_loss(self.loss)
        if self.penalty not in ("l2", None):
            raise ValueError(f"unknown penalty {self.penalty!r}; expected 'l2' or None")
        check_number("C", self.C, low=0, low_open=True)
        check_choice("solver", solver, SOLVERS)
        check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        if self.learning_rate == "backtracking" and solver != "gd" and not partial:
            raise ValueError("learning_rate='backtracking' is a line search for solver='gd' only")
        backend = get_backend(check_choice("backend", self.backend, BACKEND_NAMES))
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable or None, got {self.callback!r}")
        if self.shuffle not in (True, False, "rows"):
            raise ValueError(f"shuffle must be True, False or 'rows', got {self.shuffle!r}")
        options = TrainOptions(
            solver=solver,
            max_iter=check_number("max_iter", self.max_iter, low=1, integer=True),
            tol=check_number("tol", self.tol, low=0, allow_none=True),
            learning_rate=self.learning_rate,
            eta0=check_number("eta0", self.eta0, low=0, low_open=True),
            power_t=check_number("power_t", self.power_t, low=0),
            batch_size=check_number("batch_size", self.batch_size, low=1, integer=True),
            shuffle=self.shuffle,
            n_iter_no_change=check_number("n_iter_no_change", self.n_iter_no_change, low=1,
                                          integer=True),
            random_state=self.random_state,
            verbose=self.verbose,
            callback=self.callback,
        )
        return loss_id, backend, options

    def _alpha(self, weight_sum):
        """L2 strength of the trainer's mean objective: C Σ s loss + ½‖w‖², divided by C S."""
        return 0.0 if self.penalty is None else 1.0 / (self.C * weight_sum)

    # -- data -----------------------------------------------------------------------------

    def _validate(self, X, y="no_validation", *, reset=True, ensure_all_finite=True):
        """scikit-learn's ``validate_data``; GPU arrays are checked in place, never copied.

        A GPU X (``__cuda_array_interface__``: CuPy, torch CUDA) keeps its
        dtype and stays on the device; y (small) is brought to the host.
        """
        if not is_device_array(X):
            return validate_data(self, X, y, dtype=FLOAT_DTYPES, order="C", reset=reset,
                                 ensure_all_finite=ensure_all_finite)
        X = check_device_features(X)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        if isinstance(y, str) and y == "no_validation":
            return X
        if y is None:
            raise ValueError(f"This {type(self).__name__} estimator requires y to be passed, "
                             "but the target y is None.")
        y = column_or_1d(to_host(y), warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
        return X, y

    def _encode(self, y):
        """Labels to int32 codes 0..k-1 of ``classes_``; unknown labels are an error."""
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not in classes_ {self.classes_.tolist()}: "
                f"{np.unique(np.asarray(y)[unknown]).tolist()[:5]}"
            )
        return codes.astype(np.int32)

    def _weights(self, y_codes, sample_weight, X):
        """Per-sample weights (float64, or None for unit weights) including class_weight."""
        sample_weight = check_sample_weight(to_host(sample_weight), X)
        if self.class_weight is None:
            return sample_weight
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            per_class = compute_class_weight("balanced", classes=np.arange(len(self.classes_)), y=y_codes)
        elif isinstance(self.class_weight, Mapping):
            per_class = np.array([self.class_weight.get(c, 1.0) for c in self.classes_], dtype=np.float64)
            if not np.all(np.isfinite(per_class) & (per_class >= 0)):
                raise ValueError(f"class_weight values must be finite and >= 0, got {self.class_weight!r}")
        else:
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {self.class_weight!r}")
        weights = per_class[y_codes]
        return weights if sample_weight is None else weights * sample_weight

    def _set_classes(self, y, classes=None):
        """Set ``classes_`` from ``y`` (or from ``classes``); return y's int32 codes."""
        check_classification_targets(y)
        if classes is None:
            self.classes_, codes = np.unique(y, return_inverse=True)
        else:
            self.classes_ = np.unique(classes)
        if len(self.classes_) < 2:
            raise ValueError(
                "LogisticRegression needs samples of at least 2 classes in the data; "
                f"got only one class: {self.classes_.tolist()}"
            )
        return codes.astype(np.int32) if classes is None else self._encode(y)

    # -- fitting --------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            float32 and float64 C-contiguous arrays are used without a copy.
        y : array-like of shape (n_samples,)
            Labels of any type (ints, strings, ...), at least two classes.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        with _rollback_on_error(self):
            dask_path = _dask_input(X, y, sample_weight)
            if dask_path is not None:  # rows partitioned over a dask.distributed cluster
                return dask_path.fit(self, X, y, sample_weight)
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        loss_id, backend, options = self._check_params(self.solver)
        # Full-batch solvers find NaN/inf in X from the first gradient (NonFiniteObjective)
        # instead of a separate pass over X; SGD checks X up front.
        finite_checked = self.solver == "sgd"
        X, y = self._validate(X, y, ensure_all_finite=finite_checked)
        codes = self._set_classes(y)
        weights = self._weights(codes, sample_weight, X)
        data = backend.put(X, codes, weights)
        k = 1 if len(self.classes_) == 2 else len(self.classes_)
        warm = self.warm_start and getattr(self, "coef_", None) is not None and self.coef_.shape == (k, X.shape[1])
        try:
            result = train(
                backend, data, loss_id, k, self._alpha(data.weight_sum), self.fit_intercept, options,
                coef_init=self.coef_ if warm else None,
                intercept_init=self.intercept_ if warm else None,
            )
        except NonFiniteObjective:
            if not finite_checked:
                self._validate(X, reset=False)  # names the NaN or inf in X, if that is it
            raise
        self._store(result.coef, result.intercept, backend)
        self.n_iter_ = result.n_iter
        self.loss_curve_ = list(result.loss_curve)
        self.t_ = result.steps
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One SGD epoch over this chunk: out-of-core training, one chunk at a time.

        Uses ``learning_rate``, ``eta0``, ``batch_size`` and ``shuffle`` as
        ``solver="sgd"`` does (whatever ``solver`` is set to), continuing the
        invscaling schedule across calls; ``"backtracking"``, a full-batch
        line search, becomes constant steps of ``eta0`` here. The L2 penalty is that of a fit on
        this chunk (``alpha = 1 / (C · chunk weight)``), so one ``partial_fit``
        on all the data equals one epoch of ``fit`` with ``solver="sgd"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), required on the first call
            Every label that will ever be seen.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        with _rollback_on_error(self):
            return self._partial_fit(X, y, classes, sample_weight)

    def _partial_fit(self, X, y, classes, sample_weight):
        loss_id, backend, options = self._check_params("sgd", partial=True)
        if options.learning_rate == "backtracking":
            options.learning_rate = "constant"  # a full-batch line search has no meaning per chunk
        first = not hasattr(self, "classes_")
        X, y = self._validate(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            codes = self._set_classes(y, classes)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from classes_ "
                             f"{self.classes_.tolist()} given earlier")
        else:
            check_classification_targets(y)
            codes = self._encode(y)
        weights = self._weights(codes, sample_weight, X)
        data = backend.put(X, codes, weights)
        k = 1 if len(self.classes_) == 2 else len(self.classes_)
        if first:
            W, b = np.zeros((k, X.shape[1])), np.zeros(k)
            self.t_ = 0
            self.loss_curve_ = []
        else:
            W, b = self.coef_.copy(), self.intercept_.copy()
        _, curve, _, self.t_, _ = train_sgd(
            backend, data, loss_id, W, b, self._alpha(data.weight_sum), self.fit_intercept,
            options, step0=self.t_, max_epochs=1,
        )
        self._store(W, b, backend)
        self.n_iter_ = 1
        self.loss_curve_ = self.loss_curve_ + curve
        return self

    def _store(self, W, b, backend):
        self.coef_ = np.ascontiguousarray(W, dtype=np.float64)
        self.intercept_ = np.asarray(b, dtype=np.float64).copy() if self.fit_intercept else np.zeros(W.shape[0])
        self.backend_ = backend.name

    # -- prediction -----------------------------------------------------------------------

    def _scores(self, X):
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return get_backend(self.backend_).decision_function(X, self.coef_, self.intercept_)

    def decision_function(self, X):
        """Raw scores ``X @ coef_.T + intercept_``.

        Returns
        -------
        ndarray of shape (n_samples,) for two classes, (n_samples, n_classes) otherwise
        """
        if _dask_input(X) is not None:  # a lazy dask array, one task per row block
            return _dask_input(X).predict(self, X, "decision_function")
        scores = self._scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        if _dask_input(X) is not None:  # a lazy dask array, one task per row block
            return _dask_input(X).predict(self, X, "predict_proba")
        scores = self._scores(X)
        if scores.shape[1] == 1:
            p = expit(scores[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Log of the class probabilities, computed stably (no log of 0 for large scores).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        if _dask_input(X) is not None:  # a lazy dask array, one task per row block
            return _dask_input(X).predict(self, X, "predict_log_proba")
        scores = self._scores(X)
        if scores.shape[1] == 1:
            z = scores[:, 0]
            return np.column_stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)])
        return log_softmax(scores, axis=1)

    def predict(self, X):
        """Most probable class label of each sample.

        Returns
        -------
        ndarray of shape (n_samples,), with the dtype of ``classes_``
        """
        if _dask_input(X) is not None:  # a lazy dask array, one task per row block
            return _dask_input(X).predict(self, X, "predict")
        scores = self._scores(X)
        if scores.shape[1] == 1:
            return self.classes_[(scores[:, 0] > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]
