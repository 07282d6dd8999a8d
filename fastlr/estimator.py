"""``LogisticRegression``: a scikit-learn estimator over the shared trainer.

A thin shell: it validates parameters and data once, encodes labels, turns
``C`` and the sample/class weights into the trainer's mean objective, and
hands everything to :func:`fastlr.trainer.train` through a backend.
"""

import sys
import warnings
from contextlib import contextmanager

import numpy as np
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._class_weight import sample_class_weights
from ._labels import classes_and_codes, encode
from ._threads import fastlr_threads
from ._validation import (
    FLOAT_DTYPES, check_choice, check_device_features, check_loss, check_number,
    check_sample_weight, to_host,
)
from .backend_cuda import is_device_array
from ._sparse import check_csr, issparse
from .backends import BACKEND_NAMES, for_input, get_backend
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
    loss : {"log_loss", "prob_squared"}, default="log_loss"
        ``"log_loss"``: cross-entropy (scikit-learn's name). ``"prob_squared"``:
        ``½ (σ(z) − y)²``, the squared error of the predicted probability, the
        seed's least-squares sigmoid neuron (``½ ‖softmax(z) − onehot(y)‖²``
        for several classes); not convex, so solutions depend on the start. It
        is not scikit-learn's ``"squared_error"``, which is on the raw score
        ``z``. The earlier names ``"log"`` and ``"squared"`` still work with a
        FutureWarning.
    penalty : {"l2", None}, default="deprecated"
        Deprecated, as in scikit-learn 1.8: leave it unset and use ``C``
        (``C=np.inf`` for no penalty) and ``l1_ratio=0``. Setting it still
        works and warns FutureWarning; ``penalty=None`` with a ``C`` other
        than 1.0 warns that ``C`` is ignored.
    C : float, default=1.0
        Inverse regularisation strength, > 0; ``np.inf`` means no penalty.
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
        e.g. raw breast-cancer or Fashion-MNIST); ``loss="log_loss"`` only, and
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
        Iterations (lbfgs, gd) or epochs (sgd), >= 0. ``max_iter=0`` returns the
        starting model (zeros, or the previous solution with ``warm_start``)
        with ``n_iter_ == [0]``, as scikit-learn does, and a ConvergenceWarning
        unless that start already meets ``tol``.
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
    l1_ratio : float, default=0.0
        scikit-learn's elastic-net mixing parameter. Only ``0`` (the L2
        penalty) is implemented: any other value in [0, 1] raises ValueError
        saying L1 / elastic-net is not implemented (outside [0, 1]: ValueError
        too). ``None`` means 0 with a FutureWarning, as in scikit-learn 1.8.

    Notes
    -----
    ``fit`` and ``partial_fit`` are transactional: if either raises — bad input,
    an exception from ``callback``, KeyboardInterrupt (Ctrl-C) — the estimator
    is left exactly as it was before the call (its previous fitted state, or
    unfitted), and the exception propagates. After an interrupted
    ``partial_fit`` loop the model is therefore that of the last completed
    call, i.e. the last completed epoch.

    ``coef_`` and ``intercept_`` are float64 also for float32 X (where
    scikit-learn's lbfgs returns float32), deliberately: the solvers work in
    float64, and ``warm_start``, ``partial_fit`` and the CLI's checkpoints
    continue from exactly these values, so rounding them to float32 would make
    a resumed or chunked fit differ from an uninterrupted one and lose SGD
    updates smaller than float32's resolution. They are small (k × n_features),
    and scores of float32 X are formed in float32 anyway.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features), float64
    intercept_ : ndarray of shape (1,) or (n_classes,), float64
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    n_iter_ : ndarray of shape (1,), int32
        Iterations or epochs run by the last ``fit`` (``[1]`` after
        ``partial_fit``), an array as in scikit-learn.
    loss_curve_ : list of float
        Mean penalised objective after each iteration or epoch.
    backend_ : str
        The backend that was used (what ``"auto"`` resolved to).
    """

    def __init__(self, loss="log_loss", penalty="deprecated", C=1.0, solver="lbfgs", backend="auto",
                 max_iter=100, tol=1e-4, learning_rate="constant", eta0=0.1, power_t=0.5,
                 batch_size=256, shuffle=True, n_iter_no_change=5, random_state=None,
                 fit_intercept=True, class_weight=None, warm_start=False, verbose=0,
                 callback=None, l1_ratio=0.0):
        self.loss = loss
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # scipy.sparse X: CSR kernels (fastlr._sparse)
        return tags

    # -- parameters -----------------------------------------------------------------------

    def _check_params(self, solver, partial=False):
        """Validate the hyper-parameters; return (loss_id, backend, TrainOptions).

        ``partial``: for ``partial_fit``, where ``"backtracking"`` means constant steps.
        Warnings about deprecated spellings point at the user's ``fit`` call.
        """
        loss_id = check_loss(self.loss, stacklevel=5)
        self._penalized()
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
            max_iter=check_number("max_iter", self.max_iter, low=0, integer=True),
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

    def _penalized(self):
        """Whether the L2 penalty applies (False for ``C=np.inf`` or ``penalty=None``).

        Checks ``penalty``, ``C`` and ``l1_ratio`` the way scikit-learn 1.8+
        does, with its warnings: an explicit ``penalty`` is deprecated
        (FutureWarning), ``penalty=None`` ignores a non-default ``C``
        (UserWarning), ``l1_ratio=None`` means 0 (FutureWarning).

        Raises
        ------
        ValueError
            Unknown ``penalty``; ``C`` not > 0; ``l1_ratio`` outside [0, 1];
            L1 or elastic-net asked for (``l1_ratio > 0``, ``penalty="l1"`` or
            ``"elasticnet"``), which fastlr does not implement.
        """
        check_number("C", self.C, low=0, low_open=True, allow_inf=True)
        l1_ratio = self.l1_ratio
        if l1_ratio is None:
            warnings.warn("'l1_ratio=None' was deprecated (as in scikit-learn 1.8); use "
                          "l1_ratio=0 for the L2 penalty", FutureWarning, stacklevel=5)
            l1_ratio = 0.0
        check_number("l1_ratio", l1_ratio, low=0)
        if l1_ratio > 1:
            raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
        penalty = self.penalty
        if penalty != "deprecated":
            if penalty not in ("l1", "l2", "elasticnet", None):
                raise ValueError(f"unknown penalty {penalty!r}; leave it unset (deprecated, as in "
                                 "scikit-learn 1.8) and use l1_ratio=0 and C (C=np.inf for none)")
            warnings.warn(
                "'penalty' was deprecated (as in scikit-learn 1.8); leave it unset and use "
                "l1_ratio and C instead: l1_ratio=0 for penalty='l2', C=np.inf for penalty=None",
                FutureWarning, stacklevel=5)
        if penalty in ("l1", "elasticnet") or l1_ratio > 0:
            raise ValueError(
                f"L1 and elastic-net penalties are not implemented in fastlr (penalty={penalty!r}, "
                f"l1_ratio={l1_ratio!r}); only the L2 penalty (l1_ratio=0) or none (C=np.inf)")
        if penalty is None:
            if self.C != 1.0:
                warnings.warn("Setting penalty=None will ignore the C and l1_ratio parameters",
                              UserWarning, stacklevel=5)
            return False
        return self.C != np.inf

    def _alpha(self, weight_sum):
        """L2 strength of the trainer's mean objective: C Σ s loss + ½‖w‖², divided by C S."""
        penalized = self.penalty is not None and self.C != np.inf
        return 1.0 / (self.C * weight_sum) if penalized else 0.0

    # -- data -----------------------------------------------------------------------------

    def _validate(self, X, y="no_validation", *, reset=True, ensure_all_finite=True):
        """scikit-learn's ``validate_data``; GPU arrays are checked in place, never copied.

        A GPU X (``__cuda_array_interface__``: CuPy, torch CUDA) keeps its
        dtype and stays on the device; y (small) is brought to the host.
        scipy.sparse X becomes CSR (CSC/COO converted once), never dense, and
        its arrays are checked by :func:`fastlr._sparse.check_csr` (one pass,
        NaN/inf included whatever ``ensure_all_finite`` says).
        """
        if not is_device_array(X):
            out = validate_data(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES, order="C",
                                reset=reset, ensure_all_finite=ensure_all_finite and not issparse(X))
            X_out = out[0] if isinstance(out, tuple) else out
            if issparse(X_out):
                check_csr(X_out)
            return out
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
        return encode(y, self.classes_)

    def _weights(self, y_codes, sample_weight, X):
        """Per-sample weights (float64, or None for unit weights) including class_weight.

        See :mod:`fastlr._class_weight` (scikit-learn's semantics, shared with the dask path).
        """
        sample_weight = check_sample_weight(to_host(sample_weight), X)
        return sample_class_weights(self.class_weight, self.classes_, y_codes, sample_weight)

    def _set_classes(self, y, classes=None):
        """Set ``classes_`` from ``y`` (or from ``classes``); return y's int32 codes."""
        if classes is None:
            # small integer labels: counted, not sorted (fastlr._labels)
            self.classes_, codes = classes_and_codes(y)
        else:
            if y.dtype.kind not in "biu":  # integer labels are always class labels
                check_classification_targets(y)
            self.classes_ = np.unique(classes)
        if len(self.classes_) < 2:
            raise ValueError(
                "LogisticRegression needs samples of at least 2 classes in the data; "
                f"got only one class: {self.classes_.tolist()}"
            )
        return codes if classes is None else self._encode(y)

    # -- fitting --------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 and float64 C-contiguous arrays are used without a copy;
            scipy.sparse CSR (float32/float64 values) too, other sparse
            formats are converted to CSR once. Sparse X needs the cpu or
            numpy backend ("auto" picks the cpu for it).
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
            with fastlr_threads():  # other libraries' BLAS/OpenMP pools at one thread meanwhile
                return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight, sgd_resume=None):
        """``fit``; ``sgd_resume`` = (coef, intercept, steps, epoch_losses) continues an
        interrupted ``solver="sgd"`` run bit for bit (``fastlr train --resume``)."""
        loss_id, backend, options = self._check_params(self.solver)
        # Full-batch solvers find NaN/inf in X from the first gradient (NonFiniteObjective)
        # instead of a separate pass over X; SGD checks X up front.
        finite_checked = self.solver == "sgd"
        X, y = self._validate(X, y, ensure_all_finite=finite_checked)
        backend = for_input(backend, X, self.backend)
        codes = self._set_classes(y)
        weights = self._weights(codes, sample_weight, X)
        data = backend.put(X, codes, weights)
        k = 1 if len(self.classes_) == 2 else len(self.classes_)
        warm = self.warm_start and getattr(self, "coef_", None) is not None and self.coef_.shape == (k, X.shape[1])
        coef_init, intercept_init = (self.coef_, self.intercept_) if warm else (None, None)
        if sgd_resume is not None:
            coef_init, intercept_init = sgd_resume[0], sgd_resume[1]
            sgd_resume = (int(sgd_resume[2]), list(sgd_resume[3]))
        try:
            result = train(
                backend, data, loss_id, k, self._alpha(data.weight_sum), self.fit_intercept, options,
                coef_init=coef_init, intercept_init=intercept_init, sgd_resume=sgd_resume,
            )
        except NonFiniteObjective:
            if not finite_checked:
                self._validate(X, reset=False)  # names the NaN or inf in X, if that is it
            raise
        self._store(result.coef, result.intercept, backend)
        self.n_iter_ = np.array([result.n_iter], dtype=np.int32)
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
        if _dask_input(X, y, sample_weight) is not None:
            raise TypeError(
                "partial_fit does not take dask collections: it would compute them into this "
                "process's memory. Use fit (which trains on the dask cluster), or call partial_fit "
                "on one block at a time (e.g. for block in X.to_delayed(): ...compute()).")
        with _rollback_on_error(self), fastlr_threads():
            return self._partial_fit(X, y, classes, sample_weight)

    def _partial_fit(self, X, y, classes, sample_weight):
        loss_id, backend, options = self._check_params("sgd", partial=True)
        if options.learning_rate == "backtracking":
            options.learning_rate = "constant"  # a full-batch line search has no meaning per chunk
        first = not hasattr(self, "classes_")
        X, y = self._validate(X, y, reset=first)
        backend = for_input(backend, X, self.backend)
        if first:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            codes = self._set_classes(y, classes)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from classes_ "
                             f"{self.classes_.tolist()} given earlier")
        else:
            if y.dtype.kind not in "biu":  # integer labels are always class labels
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
        self.n_iter_ = np.array([1], dtype=np.int32)
        self.loss_curve_ = self.loss_curve_ + curve
        return self

    def _store(self, W, b, backend):
        self.coef_ = np.ascontiguousarray(W, dtype=np.float64)
        self.intercept_ = np.asarray(b, dtype=np.float64).copy() if self.fit_intercept else np.zeros(W.shape[0])
        self.backend_ = backend.name

    # -- prediction -----------------------------------------------------------------------

    def _scores(self, X):
        check_is_fitted(self)
        # NaN/inf in X make their rows' scores non-finite (0 · inf is NaN), so the scores,
        # not a separate pass over X, tell whether X needs the full check.
        X = self._validate(X, reset=False, ensure_all_finite=False)
        # Sparse X on a model fitted by a backend without sparse kernels is scored on the CPU.
        backend = for_input(get_backend(self.backend_), X, "auto")
        with fastlr_threads():
            scores = backend.decision_function(X, self.coef_, self.intercept_)
        if not is_device_array(X) and not np.isfinite(scores).all():
            self._validate(X, reset=False)  # raises scikit-learn's error naming NaN or inf in X
        return scores

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
