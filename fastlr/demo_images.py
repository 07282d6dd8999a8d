"""``fastlr demo`` on real images: Fashion-MNIST (or any MNIST-format directory).

The seed's second worked example trains a softmax classifier on 28 × 28 images;
this is that job on Zalando's Fashion-MNIST (Xiao, Rasul, Vollgraf 2017,
arXiv:1708.07747): 60,000 training and 10,000 test images, 10 classes. The
paper's Table 3 reports scikit-learn's ``LogisticRegression`` at about 0.84
test accuracy; the demo fits the same model with fastlr's default solver, with
SGD and with the seed's least-squares loss, beside scikit-learn (and
scikit-learn-intelex when installed), and prints test accuracy, training
objective, fit time and samples per second.

Where the files are looked for, first found wins: ``--data DIR``, the
environment variable ``FASTLR_FASHION_MNIST``, then Debian's
``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
Nothing is downloaded.
"""

import os
import sys
import time
import warnings

import numpy as np

from ._warm_up import warm_up

#: Environment variable naming a directory with the four IDX files.
ENV_VAR = "FASTLR_FASHION_MNIST"
#: Where Debian's ``dataset-fashion-mnist`` package puts the files.
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
#: One line on how to get the data.
HOW_TO_GET = (f"apt-get install dataset-fashion-mnist (Debian/Ubuntu, puts it in {DEBIAN_DIR}), or "
              f"download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
              f"and give --data DIR or set {ENV_VAR}=DIR")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def find_image_data(data=None, environ=None):
    """The directory to use, and whether the user named it.

    Returns
    -------
    (directory or None, explicit) : (str or None, bool)
        ``explicit`` is True when the directory came from ``data`` or the
        environment variable: its absence is then an error, not a fallback.
    """
    environ = os.environ if environ is None else environ
    if data is not None:
        return os.fspath(data), True
    if environ.get(ENV_VAR):
        return environ[ENV_VAR], True
    from ._idx import mnist_paths
    from .io import DataFileError

    try:
        mnist_paths(DEBIAN_DIR, "train")
        mnist_paths(DEBIAN_DIR, "test")
    except DataFileError:
        return None, False
    return DEBIAN_DIR, False


def mean_objective(model, X, y):
    """Mean penalised training objective ``mean loss + ‖W‖² / (2 C n)`` of a fitted linear classifier.

    The same formula for every library (the model's own loss: ``model.loss``
    when it has one, else log), evaluated by :func:`fastlr.loss_grad`.
    """
    from . import loss_grad

    codes = np.searchsorted(model.classes_, y)
    loss = getattr(model, "loss", "log_loss")
    mean_loss, _, _ = loss_grad(X, codes, model.coef_, model.intercept_, loss=loss)
    return mean_loss + float(np.sum(np.asarray(model.coef_, dtype=np.float64) ** 2)) / (2 * model.C * len(y))


def _models():
    """(label, estimator) rows of the table; scikit-learn-intelex only when it imports."""
    from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

    from . import LogisticRegression

    rows = [
        ("fastlr lbfgs log (default)", LogisticRegression()),
        ("fastlr sgd log (5 epochs)", LogisticRegression(solver="sgd", max_iter=5, tol=None, random_state=0)),
        ("fastlr lbfgs squared (seed)", LogisticRegression(loss="prob_squared")),
        ("sklearn lbfgs log", SklearnLogisticRegression()),
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sklearnex.linear_model import LogisticRegression as IntelLogisticRegression
    except Exception:  # noqa: BLE001 - not installed, or a broken install: leave it out
        pass
    else:
        rows.append(("sklearnex lbfgs log", IntelLogisticRegression()))
    return rows


def fit_timed(model, X, y):
    """Fit ``model``; return (seconds, stopped short): whether it raised a ConvergenceWarning.

    The demos' tables show the warning as a mark on the model's row instead of printing it
    between the rows; other warnings pass through, FutureWarnings of peers excepted.
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        begin = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - begin
    stopped = False
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            stopped = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return seconds, stopped


def run_image_demo(directory, plot=None, file=sys.stdout):
    """Fit every model on the training images, print the table, optionally write the figure.

    Parameters
    ----------
    directory : str
        Holds the four MNIST-format files (see :func:`fastlr.io.load_mnist`).
    plot : str or None
        PNG path: the default model's ten weight images and its test confusion matrix.
    file : text stream

    Returns
    -------
    list of dict
        One per model: ``model``, ``accuracy``, ``objective``, ``n_iter``, ``seconds``,
        ``samples_per_s``, ``stopped_short`` (a ConvergenceWarning: max_iter before tol).

    Raises
    ------
    fastlr.io.DataFileError
        A file is missing or unreadable.
    """
    from .io import load_mnist

    start = time.perf_counter()
    X_train, y_train = load_mnist(directory, "train")
    X_test, y_test = load_mnist(directory, "test")
    load_s = time.perf_counter() - start
    n, d = X_train.shape
    print(f"{directory}: {n:,} training and {len(y_test):,} test images of {d} pixels "
          f"(scaled to [0, 1], float32), {len(np.unique(y_train))} classes; read in {load_s:.1f} s",
          file=file)
    header = f"{'model':<30} {'test acc':>8} {'objective':>10} {'iters':>5} {'fit s':>7} {'samples/s':>10}"
    print(header, file=file)
    print("-" * len(header), file=file)
    results = []
    fitted = {}
    models = _models()
    warm_s = warm_up([model for _, model in models], X_train, y_train)
    for label, model in models:
        # max_iter=100, scikit-learn's default and the paper's setting, stops lbfgs short of its
        # tolerance here: the table marks those rows instead of a warning per model.
        seconds, stopped = fit_timed(model, X_train, y_train)
        n_iter = int(np.max(getattr(model, "n_iter_", 1)))
        row = dict(model=label, accuracy=float(model.score(X_test, y_test)),
                   objective=float(mean_objective(model, X_train, y_train)), n_iter=n_iter,
                   seconds=seconds, samples_per_s=n * max(n_iter, 1) / seconds, stopped_short=stopped)
        results.append(row)
        fitted[label] = model
        iters = f"{n_iter}{'*' if stopped else ''}"
        print(f"{label:<30} {row['accuracy']:8.4f} {row['objective']:10.6g} {iters:>5} "
              f"{seconds:7.2f} {row['samples_per_s']:10.3g}", file=file)
    print("objective: training mean loss + ||W||^2 / (2 C n), C = 1, each model's own loss (the squared "
          "loss's is not comparable with the log ones); iters: lbfgs iterations (max_iter = 100) or "
          "sgd epochs; * = stopped at max_iter before reaching tol (a ConvergenceWarning).", file=file)
    print(f"fit s: the fit alone; each model was first fitted for three iterations on a few rows, which "
          f"loaded fastlr's compiled kernels (compiled them, on a first run): {warm_s:.1f} s.", file=file)
    print("Fashion-MNIST paper (Xiao et al. 2017, Table 3): scikit-learn LogisticRegression about 0.84.",
          file=file)
    if plot:
        default = fitted[results[0]["model"]]
        write_figure(plot, default, X_test, y_test, directory)
        print(f"weight images and confusion matrix written to {plot}", file=file)
    return results


def write_figure(path, model, X_test, y_test, directory=""):
    """PNG: the ten weight images (one per class) and the test-set confusion matrix, written atomically.

    Weights are drawn on one symmetric red-blue scale (red: pixel ink raises the
    class's score; blue: lowers it), saturating at the 99th percentile of |w|. The confusion matrix counts test images by
    true class (rows) and predicted class (columns).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    from ._atomic import atomic_write

    coef = np.asarray(model.coef_, dtype=np.float64)
    k, d = coef.shape
    side = int(round(np.sqrt(d)))
    square = side * side == d
    fashion = "fashion" in os.fspath(directory).lower()
    names = [FASHION_CLASSES[int(c)] if fashion and k == 10 else str(c) for c in model.classes_]
    predictions = model.predict(X_test)
    matrix = confusion_matrix(y_test, predictions, labels=model.classes_)
    accuracy = float(np.mean(predictions == y_test))

    fig = plt.figure(figsize=(15, 5.0), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.45, 1])
    axes = left.subplots(2, (k + 1) // 2)
    # one symmetric scale for all ten, at the 99th percentile of |w| so that a few extreme
    # pixels do not wash the rest out (beyond it, colours saturate)
    scale = float(np.quantile(np.abs(coef), 0.99)) or 1.0
    image = None
    for index, ax in enumerate(np.ravel(axes)):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= k:
            ax.set_visible(False)
            continue
        weights = coef[index].reshape(side, side) if square else coef[index][None, :]
        image = ax.imshow(weights, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="equal" if square else "auto")
        ax.set_title(names[index], fontsize=10)
    left.colorbar(image, ax=axes, shrink=0.8, label="weight")
    left.suptitle("Learned weights, one image per class (red: ink here raises the score)")

    ax = right.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(k), names, fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_title(f"Test confusion matrix (accuracy {accuracy:.4f})")
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=90)
    finally:
        plt.close(fig)
