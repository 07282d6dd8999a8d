"""``fastlr predict``: load a saved model, read DATA, write predictions and/or print accuracy."""

import os
import sys
import warnings

import numpy as np

from ._common import (add_pixel_scale, check_out_dir, check_pixel_scale, is_table, load_labels,
                      located_nonfinite, zero_based)


def add_parser(sub):
    predict = sub.add_parser("predict", help="predict with a saved model",
                             description="Load MODEL and read DATA; with --out, write one prediction "
                                         "per row to that CSV file (--out - : to standard output, "
                                         "messages then to standard error); with labels (--labels, "
                                         "or those DATA carries), print the accuracy. One of the two "
                                         "is needed.")
    predict.add_argument("model", metavar="MODEL", help="a model saved by fastlr train")
    predict.add_argument("data", metavar="DATA", help="data file (any format train reads)")
    predict.add_argument("--target", metavar="COLUMN",
                         help="label column to drop from a table (default: the last column when the "
                              "table has one column more than the model's features)")
    predict.add_argument("--proba", action="store_true", help="also write the class probabilities")
    predict.add_argument("--index-base", choices=("auto", "0", "1"), default=None,
                         help="svmlight/libsvm DATA: feature indices start at 0 or 1, or auto: 1 "
                              "unless some index is 0 (default: the base of the svmlight file MODEL "
                              "was trained on, else auto)")
    predict.add_argument("--labels", metavar="LABELS",
                         help="true labels of the rows (.npy or IDX): print the accuracy (without it, "
                              "the accuracy against the labels DATA carries, if any: svmlight, a "
                              "table's label column, an .npz's y)")
    add_pixel_scale(predict)
    predict.add_argument("--out", metavar="CSV",
                         help="predictions file, written atomically, or - for standard output "
                              "(optional when there are labels to score against)")



def run(args, file=sys.stdout):
    """``fastlr predict``: load the model, read the data, write predictions (and probabilities)."""
    from scipy.sparse import issparse

    from ..io import read_data, write_predictions, write_predictions_csv
    from ..model_file import load_model_and_data

    to_stdout = args.out == "-"
    if args.out is not None and not to_stdout:
        check_out_dir(args.out, "--out", (("MODEL", args.model), ("DATA", args.data),
                                          ("--labels", args.labels)))
    pixel_scale = check_pixel_scale(args)
    model, trained_on = load_model_and_data(args.model)
    n_features = int(model.n_features_in_)
    names = getattr(model, "feature_names_in_", None)
    target = args.target
    if target is None and names is not None and is_table(args.data):
        target = trained_on.target_name  # the model's label column, if this table has it
    if args.index_base is None and trained_on.index_base is not None:
        index_base = trained_on.index_base == 0  # the base of the file the model was trained on
    else:
        index_base = zero_based(args)
    # svmlight files are as wide as their largest index: widen them to the model's width
    dataset = read_data(args.data, target=target, pixel_scale=pixel_scale, n_features=n_features,
                        zero_based=index_base, target_optional=target is not None and args.target is None)
    X = dataset.X
    # the labels the data file carries (svmlight, a table's target column, an .npz's y)
    file_labels = dataset.y
    if (target is None and dataset.y is not None and dataset.feature_names is not None
            and not issparse(X) and (X.shape[1] == n_features - 1
                                     or (names is not None and dataset.target_name in set(names)))):
        # the default target (last column) was a feature: this table has no label column
        X, file_labels = _with_column(args, X, dataset.y), None
        dataset.feature_names = dataset.feature_names + [dataset.target_name]
    if names is not None and dataset.feature_names is not None \
            and len(set(dataset.feature_names)) == len(dataset.feature_names):
        X = _by_name(args, X, dataset.feature_names, [str(n) for n in names],
                     dataset.target_name if file_labels is not None else None)
    if X.shape[1] != n_features:
        if file_labels is not None and dataset.feature_names is not None and args.target is None:
            # a table whose last column was taken as the label: count every column the user sees
            raise ValueError(f"{args.data}: {X.shape[1] + 1} columns ({X.shape[1]} features and the "
                             f"last, taken as the label), but {args.model} expects {n_features} "
                             "features")
        raise ValueError(f"{args.data}: {X.shape[1]} feature columns, but {args.model} "
                         f"expects {n_features}")
    if args.labels is not None:
        labels, against = load_labels(args.labels, X.shape[0], args.data), args.labels
    else:
        labels, against = file_labels, f"the labels in {args.data}"
    if args.out is None and labels is None:
        raise ValueError(f"nothing to do: {args.data} has no labels; give --out CSV (predictions) "
                         "and/or --labels LABELS (accuracy)")
    if labels is not None:
        _check_labels(labels, model.classes_, args.labels or args.data, args.model)
    if args.labels is not None and file_labels is not None:  # after the checks: errors stay one line
        _note_two_label_sources(labels, file_labels, args.labels, args.data)
    with warnings.catch_warnings():
        # the columns were matched by name above (or the file has none, e.g. a .npy)
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            predictions = model.predict(X)
        except ValueError as exc:
            raise located_nonfinite(exc, X, args.data) from None
        proba = model.predict_proba(X) if args.out is not None and args.proba else None
    if args.out is not None:
        if to_stdout:
            _write_to_stdout(write_predictions, file, predictions, proba, model.classes_)
            file = sys.stderr  # standard output holds the CSV alone
        else:
            write_predictions_csv(args.out, predictions, proba=proba, classes=model.classes_)
            print(f"{len(predictions)} predictions written to {args.out}", file=file)
    if labels is not None:
        hits = int(np.sum(predictions == labels))
        print(f"accuracy {hits / len(labels):.4f} ({hits} of {len(labels)} rows) against {against}",
              file=file)


def _note_two_label_sources(labels, file_labels, labels_path, data_path):
    """A line on standard error when DATA carries labels and --labels is given too: the
    accuracy is against --labels, and the user learns whether the two sets agree."""
    differ = int(np.sum(np.asarray(labels).astype(str) != np.asarray(file_labels).astype(str)))
    agreement = "they agree" if differ == 0 else f"they differ in {differ} of {len(labels)} rows"
    print(f"fastlr predict: note: {data_path} carries labels too; scoring against --labels "
          f"{labels_path} ({agreement})", file=sys.stderr)


def _kind(values):
    return "strings" if np.asarray(values).dtype.kind in "OSU" else "numbers"


def _preview(values, most=5):
    unique = np.unique(np.asarray(values, dtype=object).astype(str))
    shown = ", ".join(unique[:most]) + (", ..." if len(unique) > most else "")
    return f"{shown}; {_kind(values)}"


def _check_labels(labels, classes, where, model_path):
    """ValueError when no label is one of the model's classes (e.g. numbers against string
    classes: the accuracy would be 0 whatever the model); a warning line when some are not."""
    known = np.isin(labels, classes)
    if len(labels) and not known.any():
        raise ValueError(f"{where}: none of its labels ({_preview(labels)}) is one of "
                         f"{model_path}'s classes ({_preview(classes)})")
    unknown = int(len(labels) - known.sum())
    if unknown:
        print(f"fastlr predict: warning: {unknown} of {len(labels)} labels in {where} are not "
              f"among {model_path}'s classes ({_preview(classes)}): e.g. "
              f"{_preview(np.asarray(labels)[~known], most=3)}; those rows count as errors",
              file=sys.stderr)


def _with_column(args, X, column):
    """X with a table's last column (read as its label column) put back as a feature."""
    try:
        last = np.asarray(column, dtype=X.dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{args.data}: last column is not numeric; it cannot be a feature "
                         f"of {args.model}") from None
    return np.column_stack([X, last])


def _by_name(args, X, columns, names, label=None):
    """The columns of X named ``names`` (the model's features), in the model's order.

    A model trained on a table knows its columns' names (as scikit-learn's
    ``feature_names_in_``): a table to predict on may order its columns
    differently or hold more; one it lacks is an error.
    """
    if columns == names:
        return X
    where = {name: j for j, name in enumerate(columns)}
    missing = [n for n in names if n not in where]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:5]) + (", ..." if len(missing) > 5 else "")
        shown_columns = columns + ([label] if label is not None else [])
        have = ", ".join(shown_columns[:8]) + (", ..." if len(shown_columns) > 8 else "")
        raise ValueError(f"{args.data}: no column named {shown} (its columns: {have}), which "
                         f"{args.model} was trained on (it takes its features by name)")
    return np.ascontiguousarray(X[:, [where[n] for n in names]])


def _write_to_stdout(write, file, predictions, proba, classes):
    """The CSV to ``file`` (standard output); a reader that stops early (``| head``) ends it quietly."""
    try:
        write(file, predictions, proba=proba, classes=classes)
        file.flush()
    except BrokenPipeError:
        # Python's advice (the signal module's docs): point stdout at devnull, so that the
        # interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, file.fileno())
