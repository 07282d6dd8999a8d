"""Command line: ``fastlr demo``, ``bench``, ``train``, ``predict`` and ``info``.

User errors print one line to stderr and exit with status 2.
"""

import argparse
import os
import sys
import time

import numpy as np

from .train_command import (
    _EXIT_INTERRUPTED, _Interrupted, _add_train_parser, _check_out_dir, run_train, zero_based,
)

_EXIT_USAGE = 2


def _demo_datasets(n_large):
    """(name, X_train, X_test, y_train, y_test) for bundled and generated data, standardised."""
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    out = []
    for name, loader in (("breast-cancer", load_breast_cancer), ("digits (10 classes)", load_digits)):
        X, y = loader(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        scaler = StandardScaler().fit(X_tr)
        out.append((name, scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te))
    if n_large:
        rng = np.random.default_rng(0)
        d = 64
        X = rng.standard_normal((n_large, d), dtype=np.float32)
        w = rng.standard_normal(d).astype(np.float32) / np.sqrt(d) * 3
        y = (rng.random(n_large) < 1 / (1 + np.exp(-(X @ w)))).astype(np.int64)
        split = n_large * 3 // 4
        out.append((f"generated {n_large:,}x{d} float32", X[:split], X[split:], y[:split], y[split:]))
    return out


def _objective(model, X, y):
    """Mean penalised training objective of a fitted linear classifier (any library)."""
    from . import loss_grad

    codes = np.searchsorted(model.classes_, y)
    loss = getattr(model, "loss", "log_loss")
    mean_loss, _, _ = loss_grad(X, codes, model.coef_, model.intercept_, loss=loss)
    return mean_loss + float(np.sum(model.coef_ ** 2)) / (2 * model.C * len(y))


def run_demo(n_large=1_000_000, file=sys.stdout):
    """Train every solver on bundled and generated data; print accuracy, loss, time."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

    from . import LogisticRegression

    header = f"{'data':<28} {'model':<32} {'test acc':>8} {'objective':>11} {'fit s':>8} {'samples/s':>11}"
    print(header, file=file)
    print("-" * len(header), file=file)
    configs = [
        ("fastlr lbfgs log", dict(solver="lbfgs", max_iter=500)),
        ("fastlr gd log (backtracking)", dict(solver="gd", learning_rate="backtracking", eta0=1.0, max_iter=200)),
        ("fastlr sgd log (5 epochs)", dict(solver="sgd", max_iter=5, tol=None, eta0=0.05, random_state=0)),
        ("fastlr lbfgs prob_squared", dict(solver="lbfgs", loss="prob_squared", max_iter=500)),
        # The numpy reference backend, for the full-batch solvers (its SGD is a Python loop
        # per batch: a test oracle, too slow for a demo).
        ("fastlr lbfgs log [numpy]", dict(solver="lbfgs", max_iter=500, backend="numpy")),
        ("fastlr gd log [numpy]", dict(solver="gd", learning_rate="backtracking", eta0=1.0, max_iter=200,
                                       backend="numpy")),
    ]
    for name, X_tr, X_te, y_tr, y_te in _demo_datasets(n_large):
        rows = [(label, LogisticRegression(**params)) for label, params in configs]
        rows.append(("sklearn lbfgs log", SklearnLogisticRegression(max_iter=500)))
        for label, model in rows:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                model.fit(X_tr, y_tr)
                elapsed = time.perf_counter() - start
            objective = _objective(model, X_tr, y_tr)
            n_passes = getattr(model, "n_iter_", 1)
            n_passes = int(np.max(n_passes)) if np.size(n_passes) else 1
            print(f"{name:<28} {label:<32} {model.score(X_te, y_te):8.4f} {objective:11.6g} "
                  f"{elapsed:8.3f} {len(y_tr) * n_passes / elapsed:11.3g}", file=file)
    print("objective: training mean loss + ||w||^2 / (2 C n), the same formula for every model.",
          file=file)


def run_demo_command(args, file=sys.stdout):
    """``fastlr demo``: the image demo when its data is found, else (or with --bundled) :func:`run_demo`."""
    from .demo_images import HOW_TO_GET, find_image_data, run_image_demo

    if args.bundled and (args.data or args.plot):
        raise ValueError("--bundled runs the bundled/generated demo: --data and --plot are for the image demo")
    if args.plot:
        _check_out_dir(args.plot, "--plot")
    directory, _ = (None, False) if args.bundled else find_image_data(args.data)
    if directory is not None:
        run_image_demo(directory, plot=args.plot, file=file)
        return
    if args.plot:
        raise ValueError(f"--plot draws the image demo, and Fashion-MNIST was not found: {HOW_TO_GET}")
    if not args.bundled:
        print(f"Fashion-MNIST not found; to train on it: {HOW_TO_GET}. Running the bundled/generated "
              f"demo.", file=file, flush=True)
    run_demo(n_large=args.n, file=file)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit status 2."""

    def error(self, message):
        self.exit(_EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = _OneLineParser(prog="fastlr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="train on Fashion-MNIST (when present) or bundled and generated data; print a table",
        description="With the Fashion-MNIST files (--data DIR, $FASTLR_FASHION_MNIST, or Debian's "
                    "/usr/share/datasets/fashion-mnist): fit the 10-class model on the 60,000 "
                    "training images beside scikit-learn and report test accuracy. Without them: "
                    "bundled (breast-cancer, digits) and generated data.")
    demo.add_argument("--data", metavar="DIR",
                      help="directory with the four MNIST-format files (train-/t10k-images-idx3-ubyte"
                           "[.gz], train-/t10k-labels-idx1-ubyte[.gz])")
    demo.add_argument("--plot", metavar="PNG",
                      help="image demo: write the ten learned weight images and the confusion matrix")
    demo.add_argument("--bundled", action="store_true",
                      help="run the bundled/generated-data demo even when the images are present")
    demo.add_argument("--n", type=int, default=1_000_000,
                      help="bundled demo: rows of the generated problem (0 to skip it; default 1,000,000)")
    bench = sub.add_parser(
        "bench", help="time fastlr against the read-bandwidth limit and other libraries",
        description="Generate a problem, time a parallel read of X, loss_grad per backend and "
                    "the fit of every peer library on the same objective; print a table.")
    bench.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    bench.add_argument("--d", type=int, default=64, help="features (default 64)")
    bench.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="dtype of X (default float32)")
    bench.add_argument("--classes", type=int, default=2,
                       help="classes: 2 = sigmoid model, 3 or more = softmax (default 2)")
    bench.add_argument("--backends", default="cpu,numpy",
                       help="loss_grad backends, comma-separated (default cpu,numpy)")
    bench.add_argument("--peers", default="all",
                       help="comma-separated peers, or 'all' (every installed one; default). "
                            "fastlr-lbfgs always runs: speed-ups are against it")
    bench.add_argument("--repeat", type=int, default=3,
                       help="timed runs per measurement, the median is reported (default 3)")
    bench.add_argument("--json", metavar="PATH", help="write all results as JSON")
    bench.add_argument("--plot", metavar="PATH",
                       help="write a PNG: fit time per peer, time vs n (needs matplotlib)")
    bench.add_argument("--matrix", action="store_true",
                       help="instead: every peer on every workload of fastlr.matrix (breast cancer, "
                            "iris, digits, 20k x 20, 1M x 64, ...), a Markdown table; --peers, "
                            "--repeat and --json apply")
    bench.add_argument("--workloads", default=None,
                       help="with --matrix: comma-separated workloads, 'all', or the default "
                            "(the ones that run in minutes on 2 cores)")
    bench.add_argument("--busy", action="store_true",
                       help="with --matrix: keep one core busy with another process meanwhile")
    _add_train_parser(sub)
    return parser


def run_bench_command(args, file=sys.stdout):
    """``fastlr bench``: check the arguments and outputs first, then measure, print, save."""
    from . import bench

    if args.json:
        bench.check_writable(args.json, "--json")
    if args.plot:
        bench.check_writable(args.plot, "--plot")
        bench.require_matplotlib()
    progress = None
    if sys.stderr.isatty():
        def progress(message):
            print(f"fastlr bench: {message} ...", file=sys.stderr, flush=True)
    if args.matrix:
        return _run_matrix(args, progress, file)
    result = bench.run_bench(n=args.n, d=args.d, dtype=args.dtype, classes=args.classes,
                             backends=args.backends, peers=args.peers, repeat=args.repeat,
                             scaling=bool(args.plot), progress=progress)
    print(bench.format_table(result), file=file)
    if args.json:
        bench.write_json(result, args.json)
        print(f"results written to {args.json}", file=file)
    if args.plot:
        bench.write_plot(result, args.plot)
        print(f"plot written to {args.plot}", file=file)


def _run_matrix(args, progress, file):
    from . import bench, matrix

    if args.workloads in (None, ""):
        workloads = matrix.SMALL_WORKLOADS
    elif args.workloads == "all":
        workloads = tuple(matrix.WORKLOADS)
    else:
        workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    peers = matrix.MATRIX_PEERS if args.peers == "all" else tuple(
        ["fastlr-lbfgs"] + [p.strip() for p in args.peers.split(",")
                            if p.strip() and p.strip() != "fastlr-lbfgs"])
    result = matrix.run_matrix(workloads, peers, repeat=args.repeat, busy=args.busy, log=progress)
    print(matrix.format_matrix(result), file=file)
    if args.json:
        bench.write_json(result, args.json)
        print(f"results written to {args.json}", file=file)


# -- train / predict / info ---------------------------------------------------------------

def run_predict(args, file=sys.stdout):
    """``fastlr predict``: load the model, read the data, write predictions (and probabilities)."""
    from scipy.sparse import issparse

    from .io import read_data, write_predictions_csv
    from .model_file import load_model
    from .train_command import _load_labels, _pixel_scale

    if args.out is None and args.labels is None:
        raise ValueError("nothing to do: give --out CSV (predictions) and/or --labels LABELS (accuracy)")
    if args.out is not None:
        _check_out_dir(args.out, "--out")
    pixel_scale = _pixel_scale(args)
    model = load_model(args.model)
    n_features = int(model.n_features_in_)
    # svmlight files are as wide as their largest index: widen them to the model's width
    dataset = read_data(args.data, target=args.target, pixel_scale=pixel_scale, n_features=n_features,
                        zero_based=zero_based(args))
    X = dataset.X
    if (args.target is None and dataset.y is not None and X.shape[1] == n_features - 1
            and not issparse(X)):
        # the default target (last column) was a feature: this table has no label column
        try:
            last = np.asarray(dataset.y, dtype=X.dtype)
        except (TypeError, ValueError):
            raise ValueError(f"{args.data}: last column is not numeric; it cannot be a feature "
                             f"of {args.model}") from None
        X = np.column_stack([X, last])
    if X.shape[1] != n_features:
        raise ValueError(f"{args.data}: {X.shape[1]} feature columns, but {args.model} "
                         f"expects {n_features}")
    labels = _load_labels(args.labels, X.shape[0], args.data) if args.labels is not None else None
    predictions = model.predict(X)
    if args.out is not None:
        proba = model.predict_proba(X) if args.proba else None
        write_predictions_csv(args.out, predictions, proba=proba, classes=model.classes_)
        print(f"{len(predictions)} predictions written to {args.out}", file=file)
    if labels is not None:
        hits = int(np.sum(predictions == labels))
        print(f"accuracy {hits / len(labels):.4f} ({hits} of {len(labels)} rows) against {args.labels}",
              file=file)


def run_info(file=sys.stdout):
    """``fastlr info``: versions, Numba's threading layer and threads, CUDA devices."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import numba

    def package_version(name, module=None):
        try:
            return version(name)
        except PackageNotFoundError:
            return getattr(module, "__version__", "not installed")

    import sklearn
    print(f"fastlr       {package_version('fastlr')}", file=file)
    print(f"python       {platform.python_version()} ({platform.machine()})", file=file)
    print(f"numba        {numba.__version__}", file=file)
    print(f"numpy        {np.__version__}", file=file)
    print(f"scikit-learn {sklearn.__version__}", file=file)

    from ._threads import describe
    try:
        threads = describe()
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        print(f"threading    unavailable ({' '.join(str(exc).split())[:200]})", file=file)
    else:
        print(f"threading    layer {threads['layer']}, {threads['numba_threads']} threads "
              f"(NUMBA_NUM_THREADS={threads['numba_num_threads']}, {os.cpu_count()} CPUs); "
              f"TBB: {threads['tbb_preload']}", file=file)
        for pool in threads["pools"]:
            print(f"thread pool  {pool['user_api']} {pool['internal_api']} {pool['version']}: "
                  f"{pool['num_threads']} threads ({pool['filepath']}); limited to 1 while "
                  "fastlr runs unless it is Numba's own OpenMP", file=file)
    from .backends import auto_backend
    name, reason = auto_backend()
    print(f"backend      auto -> {name} ({reason})", file=file)
    try:
        from numba import cuda
    except ImportError as exc:
        print(f"cuda         not available: numba.cuda cannot be imported ({exc})", file=file)
        return
    if numba.config.ENABLE_CUDASIM:
        print("cuda         numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): no GPU is used", file=file)
        return
    try:
        available = cuda.is_available()
    except Exception:  # noqa: BLE001
        available = False
    if not available:
        reason = "no CUDA driver or GPU found"
        try:
            from numba.cuda.cudadrv import driver
            driver.driver.get_device_count()
        except Exception as exc:  # noqa: BLE001
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = " ".join(lines[:2]) if lines else reason
        print(f"cuda         not available: {reason}", file=file)
        return
    for gpu in cuda.gpus:
        with gpu:
            device = cuda.get_current_device()
            name = device.name.decode() if isinstance(device.name, bytes) else device.name
            cc = ".".join(map(str, device.compute_capability))
            print(f"cuda         device {device.id}: {name} (compute capability {cc})", file=file)


def main(argv=None):
    """Entry point of the ``fastlr`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            if args.n < 0:
                raise ValueError(f"--n must be >= 0, got {args.n}")
            run_demo_command(args)
        elif args.command == "bench":
            try:
                run_bench_command(args)
            except (ValueError, TypeError, OSError, ImportError) as exc:
                print(f"fastlr bench: error: {exc}", file=sys.stderr)
                return _EXIT_USAGE
        else:
            try:
                if args.command == "train":
                    run_train(args)
                elif args.command == "predict":
                    run_predict(args)
                else:
                    run_info()
            except _Interrupted:
                return _EXIT_INTERRUPTED
            except (ValueError, TypeError, OSError) as exc:
                message = " ".join(str(exc).split()) or type(exc).__name__
                print(f"fastlr {args.command}: error: {message}", file=sys.stderr)
                return _EXIT_USAGE
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastlr: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
