"""``fastlr demo``: every solver on Fashion-MNIST (when present) or bundled and generated data."""

import sys

import numpy as np

from ._common import check_out_dir


def add_parser(sub):
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
    from .. import loss_grad

    codes = np.searchsorted(model.classes_, y)
    loss = getattr(model, "loss", "log_loss")
    mean_loss, _, _ = loss_grad(X, codes, model.coef_, model.intercept_, loss=loss)
    return mean_loss + float(np.sum(model.coef_ ** 2)) / (2 * model.C * len(y))


def run_demo(n_large=1_000_000, file=sys.stdout):
    """Train every solver on bundled and generated data; print accuracy, loss, time."""
    from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

    from .. import LogisticRegression
    from .._warm_up import warm_up
    from ..demo_images import fit_timed

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
    warm_s = 0.0
    for name, X_tr, X_te, y_tr, y_te in _demo_datasets(n_large):
        rows = [(label, LogisticRegression(**params)) for label, params in configs]
        rows.append(("sklearn lbfgs log", SklearnLogisticRegression(max_iter=500)))
        warm_s += warm_up([model for _, model in rows], X_tr, y_tr)
        for label, model in rows:
            elapsed, stopped = fit_timed(model, X_tr, y_tr)
            objective = _objective(model, X_tr, y_tr)
            n_passes = getattr(model, "n_iter_", 1)
            n_passes = int(np.max(n_passes)) if np.size(n_passes) else 1
            print(f"{name:<28} {label:<32} {model.score(X_te, y_te):8.4f} {objective:11.6g} "
                  f"{elapsed:8.3f} {len(y_tr) * n_passes / elapsed:11.3g}"
                  f"{'  * stopped at max_iter' if stopped else ''}", file=file)
    print("objective: training mean loss + ||w||^2 / (2 C n), each model's own loss (the "
          "prob_squared rows' is not comparable with the log ones); * stopped at max_iter: the "
          "solver stopped before reaching tol (a ConvergenceWarning).", file=file)
    print(f"fit s: the fit alone; each model was first fitted for three iterations on a few rows, "
          f"which loaded fastlr's compiled kernels (compiled them, on a first run): {warm_s:.1f} s "
          "in all.", file=file)


def run_demo_command(args, file=sys.stdout):
    """``fastlr demo``: the image demo when its data is found, else (or with --bundled) :func:`run_demo`."""
    from ..demo_images import HOW_TO_GET, find_image_data, run_image_demo

    if args.bundled and (args.data or args.plot):
        raise ValueError("--bundled runs the bundled/generated demo: --data and --plot are for the image demo")
    if args.plot:
        check_out_dir(args.plot, "--plot")
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


run = run_demo_command
