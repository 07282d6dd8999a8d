"""``fastlr train``: its options, data splitting, SGD with checkpoints and --resume, the summary.

In memory, every solver is :meth:`fastlr.LogisticRegression.fit`, so the
trainer's loop runs SGD too (the same model as the library for the same
seed); a callback after each epoch drives progress, the validation loss,
``--early-stopping`` and the checkpoint an interrupt saves. Only
``--chunk-rows``, which streams a file too large for memory, loops over the
chunks itself (one ``partial_fit`` per chunk). User errors raise
ValueError/OSError/DataFileError/ModelFileError; :func:`fastlr.cli.main`
prints them as one line.
"""

import contextlib
import json
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._atomic import atomic_write
from .._math import DEPRECATED_LOSS_NAMES, LOSS_IDS
from .._penalty import PENALTIES
from ..backends import backend_names
from ..trainer import LEARNING_RATES, SOLVERS
from ._common import (
    Interrupted, add_pixel_scale, check_out_dir, check_pixel_scale, holds_x_only, is_idx, is_npy,
    is_svmlight, load_labels, located_nonfinite, positive_float, positive_int, random_seed,
    tolerance, unit_fraction, zero_based,
)

_EARLY_STOPPING_PATIENCE = 5
#: --eta0's default; any other value with a solver that has no learning rate gets a warning.
DEFAULT_ETA0 = 0.1
_CHECKPOINT_FORMAT = "fastlr-train-checkpoint"

#: ``--backend`` choices: the estimator's backends that read data from files (not "dask").
CLI_BACKENDS = ("auto",) + backend_names(distributed=False)  # not the distributed (dask) one


def add_parser(sub):
    train = sub.add_parser(
        "train", help="fit a model on a data file and save it",
        description="Read DATA, split off a validation fraction, fit, print train and validation "
                    "loss and accuracy, save the model (--out).")
    train.add_argument("data", metavar="DATA",
                       help="data file: .csv/.tsv/.txt, .npz (X, y), .npy (X only: give --labels), "
                            ".parquet, .svm/.svmlight/.libsvm (read as sparse CSR), .npz from "
                            "scipy.sparse.save_npz (X only: give --labels), IDX images (MNIST format, e.g. "
                            "train-images-idx3-ubyte.gz; give --labels)")
    train.add_argument("--target", metavar="COLUMN",
                       help="label column of a table, by name (default: the last column); saved in "
                            "the model, so that predict finds the labels and the features by name")
    train.add_argument("--labels", metavar="LABELS",
                       help="labels of a DATA that holds X only (.npy, scipy.sparse .npz, IDX): a .npy "
                            "array or a rank-1 IDX file such as train-labels-idx1-ubyte.gz")
    add_pixel_scale(train)
    train.add_argument("--n-features", type=positive_int, default=None,
                       help="svmlight/libsvm DATA: number of features (default: the largest index), "
                            "e.g. to match a model or another file")
    train.add_argument("--index-base", choices=("auto", "0", "1"), default="auto",
                       help="svmlight/libsvm DATA: feature indices start at 0 or 1 (default auto: "
                            "1 unless some index is 0, decided per file)")
    train.add_argument("--out", metavar="MODEL", required=True, help="where to save the model (.npz)")
    train.add_argument("--loss", type=_loss_name, choices=tuple(LOSS_IDS), default="log_loss",
                       help="default log_loss (the earlier names log, squared still work)")
    train.add_argument("--solver", choices=SOLVERS, default="auto",
                       help="default auto: newton-cholesky where a Hessian is cheap, else lbfgs")
    train.add_argument("--backend", choices=CLI_BACKENDS, default="auto",
                       help="default auto: the GPU when one is usable, else the CPU (see fastlr info)")
    train.add_argument("--C", type=positive_float, default=1.0, help="inverse L2 strength (default 1)")
    train.add_argument("--penalty", choices=PENALTIES + ("none",), default="l2", help="default l2")
    train.add_argument("--epochs", "--max-iter", type=positive_int, default=100,
                       help="max_iter: epochs (sgd) or iterations (every other solver); default 100")
    train.add_argument("--batch-size", type=positive_int, default=256, help="sgd batch rows (default 256)")
    train.add_argument("--eta0", type=positive_float, default=DEFAULT_ETA0,
                       help=f"learning rate (default {DEFAULT_ETA0:g})")
    train.add_argument("--learning-rate", choices=LEARNING_RATES,
                       default="constant",
                       help="gd and sgd (backtracking: gd only); with sgd and --chunk-rows, "
                            "adaptive never lowers eta0, it only keeps the run from stopping on "
                            "--tol (default constant)")
    train.add_argument("--tol", type=tolerance, default=1e-4,
                       help="stopping tolerance, as LogisticRegression(tol=...): lbfgs/gd stop at "
                            "max|gradient| <= tol, sgd when the epoch loss has not improved by tol for "
                            "5 epochs; 'none': run all --epochs (default 1e-4)")
    train.add_argument("--random-state", type=random_seed, default=None,
                       help="seeds the validation split and the sgd shuffling")
    train.add_argument("--val-fraction", type=unit_fraction, default=0.1,
                       help="fraction of rows held out for validation (default 0.1; 0: none)")
    train.add_argument("--early-stopping", action="store_true",
                       help=f"sgd: stop when the validation loss has not improved for "
                            f"{_EARLY_STOPPING_PATIENCE} epochs")
    train.add_argument("--plot", metavar="PNG", help="write the loss curve as a PNG (needs matplotlib)")
    train.add_argument("--chunk-rows", type=positive_int, default=None,
                       help="sgd with a .npy or svmlight DATA: stream it N rows at a time "
                            "(bounded memory)")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="sgd: continue from a checkpoint written when training was interrupted")
    train.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                       help="progress on stderr: a bar on a terminal, one line per epoch otherwise (default auto)")


def _checkpoint_paths(out):
    base = out[:-4] if out.lower().endswith(".npz") else out
    return base + ".checkpoint.npz", base + ".checkpoint.json"


def _sidecar_path(checkpoint):
    base = checkpoint[:-4] if checkpoint.lower().endswith(".npz") else checkpoint
    return base + ".json"


def _epoch_seed(seed, *parts):
    """The shuffle seed of one epoch (and chunk): a pure function of (random_state, epoch)."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def _npy_rows(path):
    """Rows of a .npy file, from its header only."""
    from ..io import DataFileError

    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # reads the header only
    except FileNotFoundError:
        raise DataFileError(path, "no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(path, f"not a readable .npy array file ({exc})") from None
    if len(shape) != 2:
        raise ValueError(f"{path}: X must be 2-dimensional, got shape {shape}")
    return shape[0]


def _split(n, fraction, seed):
    """Boolean validation mask of ``n`` rows, ``round(fraction * n)`` True, seeded."""
    is_val = np.zeros(n, dtype=bool)
    n_val = int(round(fraction * n))
    if n_val:
        is_val[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return is_val


def _log_loss_hits(model, X, y):
    """(sum of log losses, number correct) of ``model`` on (X, y)."""
    if len(y) == 0:
        return 0.0, 0
    log_p = model.predict_log_proba(X)
    codes = np.searchsorted(model.classes_, y)
    codes = np.clip(codes, 0, len(model.classes_) - 1)
    known = model.classes_[codes] == y
    picked = np.where(known, log_p[np.arange(len(y)), codes], -np.inf)
    hits = int(np.sum(model.classes_[np.argmax(log_p, axis=1)] == y))
    return float(-np.sum(picked, dtype=np.float64)), hits  # float32 X: float32 log_p, float64 sum


def _metrics(model, X, y):
    """(mean log loss, accuracy) or (None, None) for no rows."""
    if len(y) == 0:
        return None, None
    total, hits = _log_loss_hits(model, X, y)
    return total / len(y), hits / len(y)


def _warning_lines(caught, file=sys.stderr):
    seen = set()
    for item in caught:
        line = " ".join(str(item.message).split())
        if line not in seen:
            seen.add(line)
            print(f"fastlr train: warning: {line}", file=file)


class _SgdRun:
    """The CLI's SGD epoch loop: one ``partial_fit`` per epoch (or per chunk), checkpointable."""

    def __init__(self, args, model, seed, classes):
        self.args = args
        self.model = model
        self.seed = seed
        self.classes = classes
        self.fitted = None          # (classes_, n_features_in_) of the in-memory path's fit
        self.epoch = 0              # completed epochs
        self.epoch_losses = []      # training objective per epoch
        self.val_losses = []        # validation log loss per epoch (sgd with a validation split)
        self.best_val = None
        self.bad_epochs = 0
        self.elapsed = 0.0
        self.epoch_seconds = []     # seconds of each epoch of this process (not checkpointed)
        self.stopped_early = False
        self._snapshot = None

    # a completed epoch, kept aside so that an interrupt saves exactly that state
    def _take_snapshot(self, state=None):
        """``state``: (coef, intercept, t, loss_curve) of the epoch; default: the model's."""
        m = self.model
        if state is None:
            state = (m.coef_, m.intercept_, m.t_, m.loss_curve_)
        coef, intercept, t, curve = state
        self._snapshot = dict(coef_=np.array(coef, dtype=np.float64), intercept_=np.array(intercept, dtype=np.float64),
                              t_=int(t), loss_curve_=list(curve), epoch=self.epoch,
                              epoch_losses=list(self.epoch_losses), val_losses=list(self.val_losses),
                              best_val=self.best_val, bad_epochs=self.bad_epochs, elapsed=self.elapsed)

    def after_epoch(self, train_obj, val_loss, seconds, state=None):
        self.epoch += 1
        self.elapsed += seconds
        self.epoch_seconds.append(float(seconds))
        self.epoch_losses.append(float(train_obj))
        if val_loss is not None:
            self.val_losses.append(float(val_loss))
            if self.best_val is None or val_loss < self.best_val:
                self.best_val, self.bad_epochs = float(val_loss), 0
            else:
                self.bad_epochs += 1
        self._take_snapshot(state)
        if self.args.early_stopping and self.bad_epochs >= _EARLY_STOPPING_PATIENCE:
            self.stopped_early = True

    def restore(self, state, model):
        self.model = model
        model.t_ = int(state["t"])
        model.loss_curve_ = [float(v) for v in state["loss_curve"]]
        self.epoch = int(state["epoch"])
        self.epoch_losses = [float(v) for v in state["epoch_losses"]]
        self.val_losses = [float(v) for v in state["val_losses"]]
        self.best_val = state["best_val"]
        self.bad_epochs = int(state["bad_epochs"])
        self.elapsed = float(state["elapsed"])
        self._take_snapshot()

    def save_checkpoint(self, data_path):
        """Save the last completed epoch next to --out; return its path (None: nothing to save)."""
        from sklearn.base import clone

        from ..model_file import save_model

        snap = self._snapshot
        if snap is None or snap["epoch"] == 0:
            return None
        model = clone(self.model)
        model.random_state = self.args.random_state
        model.callback = None
        for key in ("coef_", "intercept_", "t_", "loss_curve_"):
            setattr(model, key, snap[key])
        classes, n_features = self.fitted or (self.model.classes_, self.model.n_features_in_)
        model.classes_ = classes
        model.n_features_in_ = n_features
        model.n_iter_ = np.array([snap["epoch"]], dtype=np.int32)
        model.backend_ = getattr(self.model, "backend_", "cpu")
        checkpoint, sidecar = _checkpoint_paths(self.args.out)
        state = {
            "format": _CHECKPOINT_FORMAT, "version": 1, "data": os.path.abspath(data_path),
            "epoch": snap["epoch"], "epochs": self.args.epochs, "t": snap["t_"], "seed": self.seed,
            "loss_curve": snap["loss_curve_"], "epoch_losses": snap["epoch_losses"],
            "val_losses": snap["val_losses"], "best_val": snap["best_val"],
            "bad_epochs": snap["bad_epochs"], "elapsed": snap["elapsed"],
            "val_fraction": self.args.val_fraction, "chunk_rows": self.args.chunk_rows,
            "solver": "sgd", "batch_size": self.args.batch_size, "eta0": self.args.eta0,
            "learning_rate": self.args.learning_rate, "loss": self.args.loss, "C": self.args.C,
            "penalty": self.args.penalty, "tol": self.args.tol,
        }
        save_model(model, checkpoint)
        with atomic_write(sidecar, "w") as handle:
            handle.write(json.dumps(state))
        return checkpoint


def _read_checkpoint(path, args):
    """(state dict, model) of ``--resume`` CHECKPOINT; a mismatch with the options is an error."""
    from ..model_file import load_model

    sidecar = _sidecar_path(path)
    if not os.path.exists(path):
        raise ValueError(f"--resume {path}: no such file")
    try:
        with open(sidecar) as handle:
            state = json.load(handle)
    except FileNotFoundError:
        raise ValueError(f"--resume {path}: its state file {sidecar} is missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"--resume {path}: state file {sidecar} is corrupt ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"--resume {path}: {sidecar} is not a fastlr train checkpoint")
    for key in ("val_fraction", "chunk_rows", "batch_size", "eta0", "learning_rate", "loss", "C", "penalty",
                "tol"):
        given = getattr(args, key)
        saved = _loss_name(state.get(key)) if key == "loss" else state.get(key, 1e-4 if key == "tol" else None)
        if saved != given:
            option = "--" + key.replace("_", "-")
            raise ValueError(f"--resume {path}: checkpoint was trained with {option} {state.get(key)}, "
                             f"not {given}")
    if args.random_state is not None and args.random_state != state["seed"]:
        raise ValueError(f"--resume {path}: checkpoint was trained with --random-state "
                         f"{state['seed']}, not {args.random_state}")
    if state["epoch"] >= args.epochs:
        raise ValueError(f"--resume {path}: checkpoint already has {state['epoch']} epochs "
                         f"(--epochs {args.epochs})")
    model = load_model(path)
    return state, model


def _loss_name(value):
    """--loss VALUE in its current spelling (log -> log_loss, squared -> prob_squared)."""
    return DEPRECATED_LOSS_NAMES.get(value, value) if isinstance(value, str) else value


def _estimator_params(args, solver_seed):
    # --penalty none is C=np.inf (scikit-learn 1.8's spelling; the estimator's penalty is deprecated)
    return dict(loss=args.loss, C=np.inf if args.penalty == "none" else args.C,
                solver=args.solver, backend=args.backend, max_iter=args.epochs, tol=args.tol,
                learning_rate=args.learning_rate, eta0=args.eta0, batch_size=args.batch_size,
                random_state=solver_seed)


def _check_train_args(args):
    if args.penalty == "none" and args.C != 1.0:  # as the estimator warns for penalty=None
        print(f"fastlr train: warning: --penalty none ignores --C {args.C:g} (no L2 penalty)",
              file=sys.stderr)
    if args.solver not in ("gd", "sgd") and (args.learning_rate in ("invscaling", "adaptive")
                                             or args.eta0 != DEFAULT_ETA0):
        # as --penalty none --C warns: the option would otherwise be dropped without a word
        given = "--learning-rate" if args.learning_rate != "constant" else "--eta0"
        print(f"fastlr train: warning: --solver {args.solver} ignores {given} (learning rates are "
              f"for --solver gd and sgd)", file=sys.stderr)
    if args.learning_rate == "backtracking" and args.solver != "gd":
        raise ValueError("--learning-rate backtracking is a line search for --solver gd only")
    if args.early_stopping and args.solver != "sgd":
        raise ValueError("--early-stopping is for --solver sgd")
    if args.early_stopping and args.val_fraction == 0:
        raise ValueError("--early-stopping needs a validation split (--val-fraction > 0)")
    if args.resume and args.solver != "sgd":
        raise ValueError("--resume is for --solver sgd (checkpoints are written by its epoch loop)")
    if args.chunk_rows is not None:
        if args.solver != "sgd":
            raise ValueError("--chunk-rows streams the data through SGD: it needs --solver sgd")
        if not (is_npy(args.data) or is_svmlight(args.data)):
            raise ValueError(f"--chunk-rows streams a .npy or svmlight file; {args.data} is neither")
    if args.n_features is not None and not is_svmlight(args.data):
        raise ValueError(f"--n-features is for an svmlight/libsvm DATA; {args.data} is not one")
    if args.index_base != "auto" and not is_svmlight(args.data):
        raise ValueError(f"--index-base is for an svmlight/libsvm DATA; {args.data} is not one")
    x_only = holds_x_only(args.data) or is_idx(args.data)
    if args.labels is not None and not x_only:
        raise ValueError(f"--labels is for a DATA that holds X only (.npy, scipy.sparse .npz, IDX); "
                         f"{args.data} holds its labels")
    if x_only and args.labels is None:
        raise ValueError(f"{args.data} holds X only: give its labels with --labels LABELS")
    if x_only and args.target is not None:
        raise ValueError(f"--target names a column of a table; {args.data} is not a table")
    check_pixel_scale(args)
    inputs = (("DATA", args.data), ("--labels", args.labels))
    check_out_dir(args.out, "--out", inputs)
    if args.plot:
        check_out_dir(args.plot, "--plot", inputs + (("--out", args.out),))
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib (pip install matplotlib)") from None


def _write_plot(path, epoch_losses, val_losses, what):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = np.arange(1, len(epoch_losses) + 1)
    ax.plot(xs, epoch_losses, marker="o" if len(xs) < 30 else None, label="training objective")
    if val_losses:
        ax.plot(np.arange(1, len(val_losses) + 1), val_losses, label="validation log loss")
    ax.set_xlabel(what)
    ax.set_ylabel("loss")
    ax.set_title("fastlr train")
    ax.grid(True, alpha=0.3)
    ax.legend()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)


def _fit_sgd_in_memory(args, seed, classes, X_train, y_train, X_val, y_val, resume_state, resume_model):
    """``--solver sgd`` on data in memory: ``LogisticRegression(solver="sgd").fit``, the trainer's loop.

    The same loop as the library's, so ``--random-state R`` gives the model of
    ``LogisticRegression(solver="sgd", random_state=R, max_iter=epochs, tol=...)``
    on the training rows, and it stops on ``--tol`` as ``fit`` does. A callback
    after each epoch computes the validation loss, drives progress and
    ``--early-stopping``, and keeps the epoch's state for a checkpoint; on
    ``--resume`` the trainer replays the finished epochs' random draws and
    stopping state (``sgd_resume``), so an interrupted and resumed run ends bit
    for bit where the uninterrupted one does. (``--chunk-rows`` streams the data
    through ``partial_fit`` instead: there is no in-memory data for the loop.)

    Returns (model, epochs, seconds, epoch losses, validation losses, run).
    """
    from .. import LogisticRegression
    from .._progress import Progress

    n_train, n_val = len(y_train), len(y_val)
    n_batches = -(-n_train // args.batch_size)
    run = _SgdRun(args, None, seed, classes)
    classes_fit = np.unique(y_train)
    run.fitted = (classes_fit, X_train.shape[1])
    sgd_resume = None
    if resume_state is not None:
        run.restore(resume_state, resume_model)
        if resume_model.n_features_in_ != X_train.shape[1]:
            raise ValueError(f"--resume {args.resume}: model has {resume_model.n_features_in_} "
                             f"features, {args.data} has {X_train.shape[1]}")
        sgd_resume = (resume_model.coef_, resume_model.intercept_, int(resume_state["t"]),
                      [float(v) for v in resume_state["loss_curve"]])
    shadow = LogisticRegression()  # scores the validation rows with each epoch's coefficients
    shadow.classes_, shadow.n_features_in_, shadow.backend_ = classes_fit, X_train.shape[1], "cpu"
    progress = Progress(args.epochs, "fastlr train", mode=args.progress, unit="epoch", initial=run.epoch)
    clock = [time.perf_counter()]

    def on_epoch(info):
        now = time.perf_counter()
        seconds, clock[0] = now - clock[0], now
        val_loss = None
        if n_val:
            shadow.coef_, shadow.intercept_ = info.coef, info.intercept
            val_loss = _metrics(shadow, X_val, y_val)[0]
        curve = run.epoch_losses + [info.loss]
        run.after_epoch(info.loss, val_loss, seconds,
                        state=(info.coef, info.intercept, info.iteration * n_batches, curve))
        progress.update(loss=info.loss, val_loss=val_loss,
                        samples_per_s=f"{n_train / max(seconds, 1e-9):.3g}")
        return run.stopped_early

    model = LogisticRegression(**_estimator_params(args, seed), callback=on_epoch)
    run.model = model
    with _interruptible(run, args, progress):
        model._fit(X_train, y_train, None, sgd_resume=sgd_resume)
    model.callback = None
    model.random_state = args.random_state
    n_iter = int(np.max(model.n_iter_))
    return model, n_iter, run.elapsed, list(model.loss_curve_), run.val_losses, run


@contextlib.contextmanager
def _interruptible(run, args, progress):
    """The training loop of both sgd paths: Ctrl-C (SIGINT) raises KeyboardInterrupt inside it,
    which closes ``progress``, reports ``run`` (:func:`_report_interrupt`) and becomes
    :class:`Interrupted`; warnings are recorded meanwhile and printed as lines after a normal
    end. The previous SIGINT handler is restored either way."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    except KeyboardInterrupt:
        progress.close()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _report_interrupt(run, args)
        raise Interrupted() from None
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)
    _warning_lines(caught)


def _fit_sgd_streamed(args, seed, classes, chunks, n, is_val, y_all, resume_state, resume_model):
    """``--solver sgd --chunk-rows``: one ``partial_fit`` per chunk of a file streamed each epoch.

    The data never is in memory at once, so the trainer's epoch loop cannot
    run over it: each epoch streams the file, skips the validation rows, and
    takes one SGD pass over each chunk (shuffled with a seed that is a pure
    function of ``--random-state``, the epoch and the chunk, so ``--resume``
    continues bit for bit). ``chunks()`` yields the X chunks in file order.

    Returns (model, epochs, seconds, epoch losses, validation losses, run,
    (train log loss, train accuracy, validation log loss, validation accuracy)).
    """
    from .. import LogisticRegression
    from .._progress import Progress
    from ..trainer import NoImprovement

    n_val = int(is_val.sum())
    n_train = n - n_val
    solver_seed = args.random_state
    run = _SgdRun(args, LogisticRegression(**_estimator_params(args, solver_seed)), seed, classes)
    if resume_state is not None:
        run.restore(resume_state, resume_model)

    def one_epoch(epoch):
        model = run.model
        offset = 0
        weighted = 0.0
        for index, chunk in enumerate(chunks()):
            rows = chunk.shape[0]
            keep = ~is_val[offset:offset + rows]
            y_chunk = y_all[offset:offset + rows][keep]
            offset += rows
            if not len(y_chunk):
                continue
            model.random_state = _epoch_seed(seed, epoch, index)
            model.partial_fit(chunk[keep] if n_val else chunk, y_chunk, classes=classes)
            weighted += model.loss_curve_[-1] * len(y_chunk)
        if offset != n:
            raise ValueError(f"{args.data}: streamed {offset} rows, expected {n}")
        return weighted / n_train

    def stream_metrics():
        model = run.model
        sums = {False: [0.0, 0], True: [0.0, 0]}
        offset = 0
        for chunk in chunks():
            rows = chunk.shape[0]
            mask, y_chunk = is_val[offset:offset + rows], y_all[offset:offset + rows]
            offset += rows
            for part in (False, True):
                select = mask == part
                if np.any(select):
                    total, hits = _log_loss_hits(model, chunk[select], y_chunk[select])
                    sums[part][0] += total
                    sums[part][1] += hits
        out = []
        for part, count in ((False, n_train), (True, n_val)):
            out += [sums[part][0] / count, sums[part][1] / count] if count else [None, None]
        return out

    # --tol as in fit: stop once the epoch loss has not improved by tol for n_iter_no_change
    # epochs (learning_rate="adaptive" would lower eta0 there instead, which partial_fit
    # cannot: it only warns), replayed over the epochs of a resumed run.
    patience = run.model.n_iter_no_change
    no_gain = NoImprovement(args.tol, patience)
    for value in run.epoch_losses:
        no_gain.update(value)
    converged = False
    progress = Progress(args.epochs, "fastlr train", mode=args.progress, unit="epoch",
                        initial=run.epoch)
    with _interruptible(run, args, progress):
        for epoch in range(run.epoch, args.epochs):
            start = time.perf_counter()
            train_obj = one_epoch(epoch)
            seconds = time.perf_counter() - start
            val_loss = stream_metrics()[2] if n_val and args.early_stopping else None
            run.after_epoch(train_obj, val_loss, seconds)
            progress.update(loss=train_obj, val_loss=val_loss,
                            samples_per_s=f"{n_train / max(seconds, 1e-9):.3g}")
            if run.stopped_early:
                break
            stalled = no_gain.update(train_obj)
            converged = converged or stalled
            if stalled and args.learning_rate != "adaptive":
                break
    if args.tol is not None and not converged and not run.stopped_early:
        print(f"fastlr train: warning: {_not_converged(run.epoch_losses, args.tol, patience)}"
              f"{_first_chunk_scale_hint(chunks, run.model.fit_intercept)}", file=sys.stderr)
    model = run.model
    model.random_state = args.random_state
    model.n_iter_ = np.array([run.epoch], dtype=np.int32)
    return model, run.epoch, run.elapsed, run.epoch_losses, run.val_losses, run, stream_metrics()


def _not_converged(losses, tol, patience):
    """The streamed SGD's convergence warning: what the epoch losses did, and what to change."""
    losses = list(losses)
    best = int(np.argmin(losses))
    trend = (f"epoch loss {losses[0]:.4g} after epoch 1, {losses[-1]:.4g} after epoch {len(losses)}, "
             f"lowest {losses[best]:.4g} after epoch {best + 1}")
    advice = ("increase --epochs or loosen --tol" if losses[-1] <= losses[0]
              else "the loss rose: lower --eta0")
    return (f"sgd failed to converge in {len(losses)} epochs ({trend}; it stops once {patience} "
            f"epochs in a row gain less than --tol {tol:g}); {advice}.")


def _first_chunk_scale_hint(chunks, fit_intercept):
    """:func:`fastlr._scale_hint.scale_hint` from the rows of the file's first chunk (one read)."""
    from .._scale_hint import column_scales, scale_hint

    first = next(iter(chunks()), None)
    if first is None or not first.shape[0]:
        return scale_hint(None, fit_intercept)
    return scale_hint(column_scales(first), fit_intercept, where=f" in the first {first.shape[0]} rows")


def _report_interrupt(run, args):
    checkpoint = run.save_checkpoint(args.data)
    if checkpoint is None:
        print("fastlr train: interrupted before the first epoch completed; nothing saved",
              file=sys.stderr, flush=True)
    else:
        print(f"fastlr train: interrupted after epoch {run._snapshot['epoch']}/{args.epochs}; "
              f"checkpoint saved to {checkpoint} (continue with --resume {checkpoint})",
              file=sys.stderr, flush=True)


def run_train(args, file=sys.stdout):
    """``fastlr train``: check everything, read, split, fit (with progress), summarise, save."""
    _check_train_args(args)
    resume_state = resume_model = None
    if args.resume:
        resume_state, resume_model = _read_checkpoint(args.resume, args)
    if resume_state is not None:
        seed = int(resume_state["seed"])
    elif args.random_state is not None:
        seed = args.random_state
    else:
        seed = int(np.random.SeedSequence().generate_state(1)[0])

    chunked = args.chunk_rows is not None
    if chunked and is_svmlight(args.data):
        from ..io import iter_svmlight_chunks, scan_svmlight

        layout = scan_svmlight(args.data, args.chunk_rows, args.n_features, zero_based(args))
        n, y_all, X_all = layout.n_samples, layout.y, None

        def chunks():
            return (X for X, _ in iter_svmlight_chunks(args.data, args.chunk_rows, layout))
    elif chunked:
        from ..io import iter_npy_chunks

        n = _npy_rows(args.data)
        y_all = load_labels(args.labels, n, args.data)
        X_all = None

        def chunks():
            return iter_npy_chunks(args.data, args.chunk_rows)
    else:
        from ..io import read_data

        dataset = read_data(args.data, target=args.target, pixel_scale=check_pixel_scale(args),
                            n_features=args.n_features, zero_based=zero_based(args))
        X_all = dataset.X
        if holds_x_only(args.data) or is_idx(args.data):
            y_all = load_labels(args.labels, X_all.shape[0], args.data)
        else:
            y_all = dataset.y
            if y_all is None:
                raise ValueError(f"{args.data}: no labels (target column) found")
        n = X_all.shape[0]
    label_file = args.labels or args.data
    if n == 0:
        raise ValueError(f"{args.data}: no rows")
    classes = np.unique(y_all)
    if len(classes) < 2:
        raise ValueError(f"{label_file}: the labels hold only one class ({classes.tolist()}); "
                         f"training needs at least 2")
    is_val = _split(n, args.val_fraction, seed)
    n_val = int(is_val.sum())
    n_train = n - n_val
    if len(np.unique(y_all[~is_val])) < 2:
        raise ValueError(f"{label_file}: the training split holds only one class; "
                         f"lower --val-fraction or add rows")
    if not chunked:
        if n_val:
            X_train, y_train = X_all[~is_val], y_all[~is_val]
            X_val, y_val = X_all[is_val], y_all[is_val]
        else:
            X_train, y_train = X_all, y_all
            X_val, y_val = X_all[:0], y_all[:0]

    solver_seed = args.random_state if args.random_state is not None else None
    try:
        model, n_iter, elapsed, curve, val_curve, run, metrics, what = _fit(
            args, seed, solver_seed, classes, chunked, chunks if chunked else None, n, is_val, y_all,
            None if chunked else (X_train, y_train, X_val, y_val), resume_state, resume_model)
    except ValueError as exc:
        raise located_nonfinite(exc, X_all, args.data) from None
    if chunked:  # the streamed run scored its chunks as it went
        train_ll, train_acc, val_ll, val_acc = metrics
    else:
        train_ll, train_acc = _metrics(model, X_train, y_train)
        val_ll, val_acc = _metrics(model, X_val, y_val)
    target_name = None
    if chunked:  # the svmlight file's base, as the streaming scan found it
        index_base = (0 if layout.zero_based else 1) if is_svmlight(args.data) else None
    else:
        index_base = dataset.index_base
    if not chunked and dataset.feature_names is not None \
            and len(set(dataset.feature_names)) == len(dataset.feature_names):
        # a table's column names go with the model (as scikit-learn's feature_names_in_ for a
        # DataFrame), so that predict takes the features, and the labels, by name
        model.feature_names_in_ = np.asarray(dataset.feature_names, dtype=object)
        target_name = dataset.target_name
    _report(args, file, model, n_iter, elapsed, curve, val_curve, run, what, n_train, n_val,
            train_ll, train_acc, val_ll, val_acc, target_name, index_base)


def _fit(args, seed, solver_seed, classes, chunked, chunks, n, is_val, y_all, split,
         resume_state, resume_model):
    """Train as ``args`` asks; returns (model, n_iter, seconds, curve, val_curve, run, metrics, what)."""
    from .. import LogisticRegression
    from .._progress import Progress

    metrics = run = None
    if not chunked:
        X_train, y_train, X_val, y_val = split
    if args.solver == "sgd" and not chunked:
        model, n_iter, elapsed, curve, val_curve, run = _fit_sgd_in_memory(
            args, seed, classes, X_train, y_train, X_val, y_val, resume_state, resume_model)
        what = "epoch"
    elif args.solver == "sgd":
        model, n_iter, elapsed, curve, val_curve, run, metrics = _fit_sgd_streamed(
            args, seed, classes, chunks, n, is_val, y_all, resume_state, resume_model)
        what = "epoch"
    else:
        from .._warm_up import warm_up

        model = LogisticRegression(**_estimator_params(args, solver_seed))
        # the first fit in a process loads (or compiles) the kernels: outside the timed fit
        try:
            run = _FitRun(warm_up([model], X_train, y_train))
        except KeyboardInterrupt:
            raise _interrupted_without_checkpoint(args) from None
        progress = Progress(1, f"fastlr train ({args.solver})", mode=args.progress, unit="fit")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                model.fit(X_train, y_train)
            except KeyboardInterrupt:
                progress.close()
                raise _interrupted_without_checkpoint(args) from None
            elapsed = time.perf_counter() - start
        n_iter = int(np.max(model.n_iter_))
        progress.update(iterations=n_iter, objective=model.loss_curve_[-1] if model.loss_curve_ else None)
        progress.close()
        _warning_lines(caught)
        curve, what, val_curve = model.loss_curve_, "iteration", []
    return model, n_iter, elapsed, curve, val_curve, run, metrics, what


def _interrupted_without_checkpoint(args):
    """Say that nothing was saved (only SGD checkpoints); return the Interrupted to raise."""
    print(f"fastlr train: interrupted; nothing saved (--solver {args.solver} writes no checkpoints)",
          file=sys.stderr, flush=True)
    return Interrupted()


@dataclass(frozen=True)
class _FitRun:
    """A non-SGD fit's run: the seconds of its warm-up fit (kernels loaded or compiled)."""

    warm_up_seconds: float


def _warm_up_note(run):
    """The warm-up's time, when it is more than a blink (a first run compiles the kernels)."""
    seconds = getattr(run, "warm_up_seconds", 0.0)
    return f"; loading or compiling fastlr's kernels took {seconds:.3g} s before it" if seconds >= 2.0 else ""


def _first_epoch_note(run, n_train):
    """When the first SGD epoch took far longer than the others (it loads or compiles fastlr's
    kernels on a first run), the rate of the others, so the summary's rate is not misread."""
    seconds = getattr(run, "epoch_seconds", [])
    if len(seconds) < 2:
        return ""
    rest = float(np.median(seconds[1:]))
    if seconds[0] <= 3 * rest:
        return ""
    return (f"; the first epoch took {seconds[0]:.3g} s, loading or compiling fastlr's kernels; "
            f"{n_train / max(rest, 1e-9):.3g} samples/s in the others")


def _report(args, file, model, n_iter, elapsed, curve, val_curve, run, what, n_train, n_val,
            train_ll, train_acc, val_ll, val_acc, target_name=None, index_base=None):
    """Save the model (and plot), then print the summary of ``fastlr train``."""
    from ..model_file import save_model

    if not str(args.out).lower().endswith(".npz"):
        print(f"fastlr train: warning: --out {args.out}: the model is written as an .npz archive "
              "(NumPy's zip format) whatever the name", file=sys.stderr)
    save_model(model, args.out, target_name=target_name, index_base=index_base)
    if args.plot:
        _write_plot(args.plot, curve, val_curve, what)
    unit = "epochs" if args.solver == "sgd" else "iterations"
    note = " (early stopping)" if args.solver == "sgd" and run.stopped_early else ""
    ran = getattr(model, "solver_", args.solver)  # what --solver auto resolved to
    solver = args.solver if ran == args.solver else f"{args.solver} ({ran})"
    print(f"solver {solver}, loss {args.loss}: {n_iter} {unit}{note} in {elapsed:.3f} s "
          f"({n_train * max(n_iter, 1) / max(elapsed, 1e-9):.3g} samples/s{_first_epoch_note(run, n_train)}"
          f"{_warm_up_note(run)})",
          file=file)
    if curve:
        print(f"final training objective: {curve[-1]:.6g}", file=file)
    print(f"train:      {n_train} rows, log loss {train_ll:.6g}, accuracy {train_acc:.4f}", file=file)
    if n_val:
        print(f"validation: {n_val} rows, log loss {val_ll:.6g}, accuracy {val_acc:.4f}", file=file)
    else:
        why = ("--val-fraction 0" if not args.val_fraction
               else f"--val-fraction {args.val_fraction:g} of {n_train} rows rounds to none")
        print(f"validation: none ({why})", file=file)
    print(f"model saved to {args.out}", file=file)
    if args.plot:
        print(f"loss curve written to {args.plot}", file=file)


run = run_train
