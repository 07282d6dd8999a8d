"""``LogisticRegression``: a scikit-learn estimator over the shared trainer.

Holds: :class:`LogisticRegression`, a thin shell: it validates parameters,
runs the one fit pipeline (validate → labels → weights → backend + put →
train → store) for ``fit`` and ``partial_fit``, and turns ``C`` and the
sample/class weights into the trainer's mean objective. Every kind of input
(NumPy, scipy.sparse, GPU arrays, Dask collections) enters through an input
adapter (:mod:`fastlr._inputs`), never through a branch here.
May import: :mod:`fastlr._inputs`, :mod:`fastlr._labels`, :mod:`fastlr._validation`,
:mod:`fastlr.backends` (names), :mod:`fastlr.trainer`; scikit-learn, scipy.
"""

import warnings
from contextlib import contextmanager

import numpy as np
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin

from ._inputs import input_adapter
from ._labels import n_outputs
from ._validation import check_choice, check_loss, check_number
from .backends import BACKEND_NAMES
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
    solver : {"auto", "lbfgs", "newton-cholesky", "newton-cg", "gd", "sgd"}, default="auto"
        ``"auto"``: ``"newton-cholesky"`` where a Hessian pass is cheap (log
        loss, dense X on the cpu or numpy backend, ``k (d + 1) <= 2048`` and
        one Hessian pass at most 64 gradient passes in multiply-adds: binary
        problems with up to ~60 features, or up to ~480 beyond 131,072 rows,
        few classes with few features), else ``"lbfgs"``; the rule is
        :func:`fastlr.trainer.resolve_solver`. ``"newton-cholesky"``: Newton's
        method with the full Hessian (``k (d + 1)`` square) solved by Cholesky,
        as scikit-learn's solver of that name; gradient and Hessian from one
        pass over X (:mod:`fastlr.kernels.cpu_hessian`), the Hessian over at
        most ~131,072 rows (evenly spaced blocks of at least 65,536 rows
        beyond: a sub-sampled Newton method, same optimum and stopping rule;
        see :func:`fastlr.trainer.train_newton_cholesky`). ``loss="log_loss"``
        only; backends "cpu" and "numpy" (cuda and dask raise
        NotImplementedError). ``"lbfgs"``: limited-memory BFGS on the full gradient
        (:mod:`fastlr._lbfgs`: scipy's L-BFGS-B method without bounds, its
        vector work in parallel kernels; 10 to 100 correction pairs, as many
        as fit in 64 MiB, :func:`fastlr._memory.lbfgs_pairs`), in centred, scaled coordinates
        (:mod:`fastlr._reparam`). ``"newton-cg"``:
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
        :mod:`fastlr.backends.dask_cluster`.
    max_iter : int, default=100
        Iterations (lbfgs, newton-cholesky, newton-cg, gd) or epochs (sgd), >= 0. ``max_iter=0`` returns the
        starting model (zeros, or the previous solution with ``warm_start``)
        with ``n_iter_ == [0]``, as scikit-learn does, and a ConvergenceWarning
        unless that start already meets ``tol``.
    tol : float or None, default=1e-4
        lbfgs and gd stop when the largest gradient component of the mean
        objective is ≤ tol; sgd (and the adaptive schedule) when the epoch loss
        has not improved by tol for ``n_iter_no_change`` epochs. None: no
        tolerance test and no ConvergenceWarning for stopping before
        ``max_iter``: gd and sgd run ``max_iter`` (unless a step fails);
        lbfgs runs until ``max_iter`` or until an iteration lowers the
        objective by no more than 64 machine epsilons relatively (it can
        fall no further in float64), whichever comes first.
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
    solver_ : str
        The solver the last ``fit`` ran (what ``solver="auto"`` resolved to;
        ``"sgd"`` after ``partial_fit``).
    """

    def __init__(self, loss="log_loss", penalty="deprecated", C=1.0, solver="auto", backend="auto",
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
        """Validate the hyper-parameters; return (loss_id, TrainOptions).

        ``partial``: for ``partial_fit``, where ``"backtracking"`` means constant steps.
        Warnings about deprecated spellings point at the user's ``fit`` call.
        """
        loss_id = check_loss(self.loss, stacklevel=5)
        self._penalized()
        check_choice("solver", solver, SOLVERS)
        check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        if self.learning_rate == "backtracking" and solver != "gd" and not partial:
            raise ValueError("learning_rate='backtracking' is a line search for solver='gd' only")
        check_choice("backend", self.backend, BACKEND_NAMES)
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
        return loss_id, options

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
        source = input_adapter(X, y, sample_weight)
        with _rollback_on_error(self), source.threads():
            return self._fit(X, y, sample_weight, source=source)

    def _fit(self, X, y, sample_weight, sgd_resume=None, source=None):
        """``fit``; ``sgd_resume`` = (coef, intercept, steps, epoch_losses) continues an
        interrupted ``solver="sgd"`` run bit for bit (``fastlr train --resume``)."""
        source = source or input_adapter(X, y, sample_weight)
        loss_id, options = self._check_params(self.solver)
        # NaN/inf in X are found by the training itself instead of a separate pass over X: the
        # full-batch solvers from the first gradient, SGD from the first non-finite step (both
        # raise NonFiniteObjective); the full check then names them.
        X, y = source.validate(self, X, y, ensure_all_finite=False)
        classes, codes = source.labels(y)
        weights = source.weights(self.class_weight, classes, codes, sample_weight, X)
        backend = source.backend(self.backend, X)
        data = backend.put(X, codes, weights)
        k = n_outputs(len(classes))
        warm = self.warm_start and getattr(self, "coef_", None) is not None
        if warm and self.coef_.shape != (k, X.shape[1]):
            # as scikit-learn: a warm start from coefficients of another shape is an error, not
            # a silent start from zeros
            raise ValueError(
                f"warm_start=True: the previous coef_ has shape {self.coef_.shape}, but X has "
                f"{X.shape[1]} features and {len(classes)} classes, which need shape "
                f"{(k, X.shape[1])}; set warm_start=False to start from zeros")
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
            source.validate(self, X, reset=False)  # names the NaN or inf in X, if that is it
            raise
        self._store(classes, result.coef, result.intercept, backend, [result.n_iter], result.loss_curve,
                    result.steps)
        self.solver_ = result.solver
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
        source = input_adapter(X, y, sample_weight)
        source.check_partial_fit()  # dask collections: TypeError (they would be computed here)
        with _rollback_on_error(self), source.threads():
            return self._partial_fit(X, y, classes, sample_weight, source)

    def _partial_fit(self, X, y, classes, sample_weight, source):
        loss_id, options = self._check_params("sgd", partial=True)
        if options.learning_rate == "backtracking":
            options.learning_rate = "constant"  # a full-batch line search has no meaning per chunk
        first = not hasattr(self, "classes_")
        X, y = source.validate(self, X, y, reset=first, ensure_all_finite=False)  # as in fit
        known = None if first else self.classes_
        classes, codes = source.labels(y, classes, known, partial=True)
        weights = source.weights(self.class_weight, classes, codes, sample_weight, X)
        backend = source.backend(self.backend, X)
        data = backend.put(X, codes, weights)
        if first:
            k = n_outputs(len(classes))
            W, b, t, curve = np.zeros((k, X.shape[1])), np.zeros(k), 0, []
        else:
            W, b, t, curve = self.coef_.copy(), self.intercept_.copy(), self.t_, self.loss_curve_
        try:
            _, new, _, t, _ = train_sgd(
                backend, data, loss_id, W, b, self._alpha(data.weight_sum), self.fit_intercept,
                options, step0=t, max_epochs=1,
            )
        except NonFiniteObjective:
            source.validate(self, X, reset=False)  # names the NaN or inf in X
            raise
        self._store(classes, W, b, backend, [1], curve + new, t)
        self.solver_ = "sgd"
        return self

    def _store(self, classes, W, b, backend, n_iter, loss_curve, steps):
        """The fitted attributes, the last step of the pipeline (every input kind, fit and partial_fit)."""
        self.classes_ = classes
        self.coef_ = np.ascontiguousarray(W, dtype=np.float64)
        self.intercept_ = np.asarray(b, dtype=np.float64).copy() if self.fit_intercept else np.zeros(W.shape[0])
        self.backend_ = backend.name
        self.n_iter_ = np.array(n_iter, dtype=np.int32)
        self.loss_curve_ = list(loss_curve)
        self.t_ = steps

    # -- prediction -----------------------------------------------------------------------

    def _output(self, method, scores, dtype=np.float64):
        """What ``method`` returns, from the raw scores (n, k), float64.

        Scores, probabilities and log-probabilities are computed in float64 and returned in
        ``dtype`` (float32 for float32 X, as scikit-learn returns them), rounded once.
        """
        if method == "predict":
            if scores.shape[1] == 1:  # one select, no index array (2x faster at 1M rows)
                return np.where(scores[:, 0] > 0, self.classes_[1], self.classes_[0]).astype(
                    self.classes_.dtype, copy=False)
            return self.classes_.take(np.argmax(scores, axis=1))
        if method == "decision_function":
            out = scores[:, 0] if scores.shape[1] == 1 else scores
        elif method == "predict_proba":
            if scores.shape[1] == 1:
                p = expit(scores[:, 0])
                out = np.column_stack([1.0 - p, p])
            else:
                out = softmax(scores, axis=1)
        elif scores.shape[1] == 1:  # predict_log_proba, computed stably (no log of 0)
            z = scores[:, 0]
            out = np.column_stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)])
        else:
            out = log_softmax(scores, axis=1)
        return out.astype(dtype, copy=False)

    def decision_function(self, X):
        """Raw scores ``X @ coef_.T + intercept_``.

        For a dask X, a lazy dask array (one task per row block), as for the other methods.

        Returns
        -------
        ndarray of shape (n_samples,) for two classes, (n_samples, n_classes) otherwise
            float32 for float32 X, else float64 (computed in float64 from ``coef_``).
        """
        return input_adapter(X).predict(self, X, "decision_function")

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            float32 for float32 X, else float64 (computed in float64, rounded once).
        """
        return input_adapter(X).predict(self, X, "predict_proba")

    def predict_log_proba(self, X):
        """Log of the class probabilities, computed stably (no log of 0 for large scores).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            float32 for float32 X, else float64 (computed in float64, rounded once).
        """
        return input_adapter(X).predict(self, X, "predict_log_proba")

    def predict(self, X):
        """Most probable class label of each sample.

        Returns
        -------
        ndarray of shape (n_samples,), with the dtype of ``classes_``
        """
        return input_adapter(X).predict(self, X, "predict")
