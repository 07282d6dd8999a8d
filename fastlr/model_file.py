"""Saving and loading fitted models: a documented, versioned format without pickle.

Format ``fastlr-model``, version 1
----------------------------------
A model file is an uncompressed ``.npz`` archive (a zip written by
``np.savez``) holding exactly these members, each a ``.npy`` array that
``np.load(..., allow_pickle=False)`` reads (no object arrays, no pickle):

``coef.npy``
    float64, shape ``(k, n_features)``: ``coef_``. ``k`` is 1 for two
    classes (sigmoid model), else the number of classes (softmax model).
``intercept.npy``
    float64, shape ``(k,)``: ``intercept_`` (zeros when ``fit_intercept=False``).
``classes.npy``
    shape ``(n_classes,)``, ``n_classes >= 2``, sorted and unique (as
    ``np.unique`` gives them): ``classes_``. A numeric array (bool, int,
    uint, float) or, for string labels, a fixed-width unicode array (``<U``).
``loss_curve.npy``
    float64, shape ``(n_iter,)`` of any length: ``loss_curve_``.
``metadata.npy``
    a 0-d unicode array holding one JSON object (at most 1 MB)::

        {"format": "fastlr-model", "format_version": 1,
         "fastlr_version": "0.1.0",
         "params": {...},            # model.get_params(), JSON-encoded (below)
         "n_features_in": 64, "n_iter": 12, "backend": "cpu",
         "classes_dtype": "int64",   # numpy dtype str of classes_ ("object" for str objects)
         "feature_names_in": null,   # or the list of names the model was fitted with
         "t": 0,                     # SGD step counter (partial_fit continuation)
         "target_name": "label",     # optional: the label column of the table trained on
         "index_base": 0}            # optional: the svmlight file's index base, 0 or 1

    ``params`` values are JSON scalars (older files' ``loss="log"``/``"squared"`` and
    ``penalty="l2"``/``None`` are read as today's ``"log_loss"``/``"prob_squared"``,
    the default penalty and ``C=inf``); a dict (``class_weight``) is stored as
    ``{"__items__": [[key, value], ...]}``, a non-finite float as
    ``{"__float__": "inf"}``. A value that cannot be written this way (e.g.
    a ``RandomState`` instance as ``random_state``) is saved as ``null`` and
    its name listed in ``"params_not_saved"``.

Versioning rule: ``format_version`` is an integer that grows whenever a reader
of the previous version would misread a file (a member changes meaning,
shape or dtype, or a new member becomes required). Adding optional metadata
keys does not change the version; readers ignore keys they do not know. This
reader accepts versions up to :data:`FORMAT_VERSION` and refuses newer files
("written by a newer fastlr").

Loading never executes code: members are opened with
``np.load(allow_pickle=False)``, after every member's ``.npy`` header was
checked (no object dtype, metadata at most 1 MB, any array at most 1 GB, the
member stored uncompressed and holding exactly the bytes its header declares),
so a crafted file cannot make the loader allocate more than the file's own size.
Any problem with the file raises :class:`ModelFileError`, a ``ValueError``
with a one-line message naming the file.

Saving is atomic: the archive is written to a temporary file in the target's
directory, flushed and fsynced, then moved onto the target with
``os.replace``; on any error the temporary file is removed and an existing
target is left untouched. A full disk (ENOSPC, EDQUOT) gives a
:class:`ModelFileError` saying "no space left on the device".

May import: NumPy, :mod:`fastlr._atomic`, :mod:`fastlr._labels`, :mod:`fastlr._math`,
:mod:`fastlr._npy`; the estimator, the backend registry and ``fastlr.__version__`` at call time (no cycle: none
of them imports this).
"""

from __future__ import annotations

import errno
import json
import math
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from ._atomic import atomic_write
from ._labels import n_outputs
from ._math import DEPRECATED_LOSS_NAMES
from ._npy import read_npy_header

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "TrainingData", "save_model", "load_model",
           "load_model_and_data"]

FORMAT_NAME = "fastlr-model"
FORMAT_VERSION = 1

#: The members of a version-1 file, in the order they are written.
MEMBERS = ("coef", "intercept", "classes", "loss_curve", "metadata")
MAX_METADATA_BYTES = 1 << 20
MAX_ARRAY_BYTES = 1 << 30


class ModelFileError(ValueError):
    """A model file cannot be read or written; the message names the file and the problem."""

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):
        # pickle (joblib, dask workers) calls the class with .args, here the joined message
        return type(self), (self.path, self.problem)


# -- params as JSON -----------------------------------------------------------------------

_UNSAVED = object()


def _json_value(value):
    """A JSON-safe encoding of a parameter value, or _UNSAVED."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            k, v = _json_value(k), _json_value(v)
            if k is _UNSAVED or v is _UNSAVED or isinstance(k, dict) or isinstance(v, dict):
                return _UNSAVED
            items.append([k, v])
        return {"__items__": items}
    return _UNSAVED


def _from_json_value(value):
    if isinstance(value, dict):
        if set(value) == {"__float__"} and value["__float__"] in ("inf", "-inf", "nan"):
            return float(value["__float__"])
        if set(value) == {"__items__"} and isinstance(value["__items__"], list):
            out = {}
            for item in value["__items__"]:
                if not (isinstance(item, list) and len(item) == 2):
                    raise ValueError("bad dict encoding")
                out[_from_json_value(item[0])] = _from_json_value(item[1])
            return out
        raise ValueError(f"unknown encoded value {value!r}")
    if isinstance(value, list):
        raise ValueError("lists are not parameter values")
    return value


def _encode_params(params):
    encoded, not_saved = {}, []
    for name, value in params.items():
        v = _json_value(value)
        if v is _UNSAVED:
            encoded[name] = None
            not_saved.append(name)
        else:
            encoded[name] = v
    return encoded, not_saved


# -- saving -------------------------------------------------------------------------------


def _classes_array(classes):
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes
    if classes.dtype.kind == "U":
        return classes
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes.tolist()):
        return classes.astype(str)
    raise TypeError(f"classes_ of dtype {classes.dtype} cannot be saved: only numbers and strings are")


def save_model(model, path, *, target_name=None, index_base=None) -> None:
    """Save a fitted ``fastlr.LogisticRegression`` to ``path`` (format described above).

    Parameters
    ----------
    model : fastlr.LogisticRegression, fitted
    path : str or os.PathLike
    target_name : str, optional
        The name of the label column the model was trained on (``fastlr train``
        on a table), stored as the optional metadata key ``"target_name"``, so
        that ``fastlr predict`` can find the labels by name.
    index_base : {0, 1}, optional
        The base of the feature indices of the svmlight/libsvm file the model
        was trained on, stored as the optional metadata key ``"index_base"``, so
        that ``fastlr predict`` reads other such files with the same base.

    Raises
    ------
    ModelFileError
        The model is not fitted, or the file cannot be written.
    TypeError
        ``model`` is not a fastlr ``LogisticRegression``, or its classes are
        neither numbers nor strings.
    """
    from . import __version__
    from .estimator import LogisticRegression

    path = os.fspath(path)
    if not isinstance(model, LogisticRegression):
        raise TypeError(f"save_model needs a fastlr.LogisticRegression, got {type(model).__name__}")
    if getattr(model, "coef_", None) is None or not hasattr(model, "classes_"):
        raise ModelFileError(path, "cannot save an unfitted model; call fit first")
    classes = _classes_array(model.classes_)
    params, not_saved = _encode_params(model.get_params(deep=False))
    feature_names = getattr(model, "feature_names_in_", None)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastlr_version": __version__,
        "params": params,
        "params_not_saved": not_saved,
        "n_features_in": int(model.n_features_in_),
        "n_iter": int(np.max(getattr(model, "n_iter_", 0))),
        "backend": str(getattr(model, "backend_", "cpu")),
        "classes_dtype": np.asarray(model.classes_).dtype.str if np.asarray(model.classes_).dtype.kind != "O" else "object",
        "feature_names_in": None if feature_names is None else [str(n) for n in feature_names],
        "t": int(getattr(model, "t_", 0)),
    }
    if target_name is not None:
        metadata["target_name"] = str(target_name)
    if index_base is not None:
        if index_base not in (0, 1):
            raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
        metadata["index_base"] = int(index_base)
    arrays = {
        "coef": np.ascontiguousarray(model.coef_, dtype=np.float64),
        "intercept": np.ascontiguousarray(model.intercept_, dtype=np.float64),
        "classes": classes,
        "loss_curve": np.asarray(getattr(model, "loss_curve_", []), dtype=np.float64).reshape(-1),
        "metadata": np.array(json.dumps(metadata, allow_nan=False)),
    }
    try:
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ModelFileError(
                path, f"cannot write model file: no space left on the device ({exc.strerror}); "
                      "nothing was written and an existing file there is unchanged") from exc
        raise ModelFileError(path, f"cannot write model file: {exc}") from exc


# -- loading ------------------------------------------------------------------------------


def _member_header(zf, name):
    """(shape, fortran, dtype, header bytes) from a member's .npy header, without loading the data."""
    with zf.open(name) as f:
        shape, fortran, dtype = read_npy_header(f)
        return shape, fortran, dtype, f.tell()


def _check_headers(path, zf, file_size):
    """Refuse, before anything is allocated, members that are not plain arrays of the size they hold.

    Every member must be stored uncompressed, lie inside the file, and its
    ``.npy`` header must declare exactly the bytes the member holds (and at
    most the size limits): so loading allocates no more than the file's size.
    """
    names = zf.namelist()
    if "metadata.npy" not in names:
        raise ModelFileError(path, "not a fastlr model file (no metadata member)")
    for info in zf.infolist():
        member = info.filename
        if not member.endswith(".npy"):
            continue
        if info.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(path, f"member {member!r} is compressed; fastlr model files are "
                                       "uncompressed .npz archives")
        if info.header_offset + info.compress_size > file_size or info.compress_size != info.file_size:
            raise ModelFileError(path, f"member {member!r} claims {info.file_size} bytes, more than "
                                       "the file holds (truncated or corrupt)")
        try:
            shape, _, dtype, header_bytes = _member_header(zf, member)
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(path, f"member {member!r} has no valid .npy header ({exc})") from None
        if dtype.hasobject:
            raise ModelFileError(path, f"member {member!r} holds Python objects; refusing to load it")
        nbytes = dtype.itemsize
        for n in shape:
            nbytes *= int(n)
        limit = MAX_METADATA_BYTES if member == "metadata.npy" else MAX_ARRAY_BYTES
        if nbytes > limit:
            raise ModelFileError(
                path, f"member {member!r} declares shape {shape} of {dtype} ({nbytes} bytes), "
                      f"over the {limit} byte limit"
            )
        if header_bytes + nbytes != info.file_size:
            raise ModelFileError(
                path, f"member {member!r} declares shape {shape} of {dtype} ({nbytes} bytes) but "
                      f"holds {info.file_size - header_bytes} data bytes (truncated or corrupt)"
            )


def _read_metadata(path, raw):
    if raw.dtype.kind != "U" or raw.size != 1:
        raise ModelFileError(path, f"metadata is not a JSON string (dtype {raw.dtype}, shape {raw.shape})")
    try:
        meta = json.loads(str(raw.reshape(()).item()))
    except ValueError as exc:
        raise ModelFileError(path, f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(path, "metadata is not a JSON object")
    if meta.get("format") != FORMAT_NAME:
        raise ModelFileError(path, f"not a fastlr model file (format {meta.get('format')!r}, expected {FORMAT_NAME!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(path, f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            path, f"written by a newer fastlr (format {version}); this fastlr reads format {FORMAT_VERSION}"
        )
    return meta


def _int_field(path, meta, key, low=0):
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelFileError(path, f"metadata {key!r} must be an integer >= {low}, got {value!r}")
    return value


def _current_spellings(params):
    """Rewrite, in place, parameters saved by an older fastlr into today's spelling.

    ``loss="log"``/``"squared"`` became ``"log_loss"``/``"prob_squared"``;
    ``penalty`` is deprecated (as in scikit-learn 1.8): ``"l2"`` is the
    default, ``None`` is ``C=np.inf``. The model is the same; loading and
    refitting it gives no deprecation warning.
    """
    loss = params.get("loss")
    if isinstance(loss, str) and loss in DEPRECATED_LOSS_NAMES:
        params["loss"] = DEPRECATED_LOSS_NAMES[loss]
    if "penalty" in params:
        if params["penalty"] is None:
            params["C"] = math.inf
            del params["penalty"]
        elif params["penalty"] == "l2":
            del params["penalty"]


def _build(path, meta, arrays):
    from .backends import backend_names
    from .estimator import LogisticRegression

    coef, intercept, classes, loss_curve = (arrays[k] for k in ("coef", "intercept", "classes", "loss_curve"))
    for name, arr in (("coef", coef), ("intercept", intercept), ("loss_curve", loss_curve)):
        if arr.dtype.kind != "f":
            raise ModelFileError(path, f"{name} must be a float array, got dtype {arr.dtype}")
    if coef.ndim != 2 or coef.shape[0] < 1 or coef.shape[1] < 1:
        raise ModelFileError(path, f"coef must be a 2-D (k, n_features) array, got shape {coef.shape}")
    if intercept.shape != (coef.shape[0],):
        raise ModelFileError(path, f"intercept has shape {intercept.shape}; coef {coef.shape} needs ({coef.shape[0]},)")
    if loss_curve.ndim != 1:
        raise ModelFileError(path, f"loss_curve must be 1-D, got shape {loss_curve.shape}")
    if classes.ndim != 1 or classes.dtype.kind not in "biufU":
        raise ModelFileError(path, f"classes must be a 1-D numeric or unicode array, got {classes.dtype} {classes.shape}")
    n_classes = classes.shape[0]
    if n_classes < 2:
        raise ModelFileError(path, f"a model needs at least 2 classes, the file has {n_classes}")
    k = n_outputs(n_classes)
    if coef.shape[0] != k:
        raise ModelFileError(path, f"{n_classes} classes need {k} coef row(s), the file has {coef.shape[0]}")
    if classes.dtype.kind == "f" and not np.all(np.isfinite(classes)):
        raise ModelFileError(path, "classes contain NaN or infinity")
    if not np.array_equal(np.unique(classes), classes):
        raise ModelFileError(path, "classes are not sorted and unique")
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ModelFileError(path, "coef or intercept contain NaN or infinity")
    n_features = _int_field(path, meta, "n_features_in", low=1)
    if n_features != coef.shape[1]:
        raise ModelFileError(path, f"metadata n_features_in={n_features} but coef has {coef.shape[1]} columns")
    n_iter = _int_field(path, meta, "n_iter")
    t = meta.get("t", 0)
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ModelFileError(path, f"metadata 't' must be an integer >= 0, got {t!r}")
    params = meta.get("params", {})
    if not isinstance(params, dict):
        raise ModelFileError(path, "metadata 'params' is not a JSON object")
    known = LogisticRegression().get_params(deep=False)
    try:
        kwargs = {k: _from_json_value(v) for k, v in params.items() if k in known}
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, f"metadata 'params' cannot be decoded ({exc})") from None
    _current_spellings(kwargs)
    not_saved = meta.get("params_not_saved", [])
    if isinstance(not_saved, list):
        for name in not_saved:
            if name in kwargs and kwargs[name] is None:
                kwargs[name] = known[name]
    names = meta.get("feature_names_in")
    if names is not None and (not isinstance(names, list) or len(names) != n_features
                              or not all(isinstance(n, str) for n in names)):
        raise ModelFileError(path, "metadata 'feature_names_in' must be a list of n_features_in strings")
    classes_dtype = meta.get("classes_dtype")
    if classes.dtype.kind == "U" and classes_dtype == "object":
        classes = classes.astype(object)

    model = LogisticRegression(**kwargs)
    model.coef_ = np.ascontiguousarray(coef, dtype=np.float64)
    model.intercept_ = np.ascontiguousarray(intercept, dtype=np.float64)
    model.classes_ = classes
    model.n_features_in_ = n_features
    model.n_iter_ = np.array([n_iter], dtype=np.int32)
    model.loss_curve_ = [float(v) for v in loss_curve]
    # backend_ as saved when every machine has it (host arrays, in process), else the CPU
    host = backend_names(accepts_device_arrays=False, distributed=False)
    model.backend_ = meta.get("backend") if meta.get("backend") in host else "cpu"
    model.t_ = t
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    target_name = meta.get("target_name")
    if target_name is not None and not isinstance(target_name, str):
        raise ModelFileError(path, "metadata 'target_name' must be a string")
    index_base = meta.get("index_base")
    if index_base is not None and (isinstance(index_base, bool) or index_base not in (0, 1)):
        raise ModelFileError(path, "metadata 'index_base' must be 0 or 1")
    return model, TrainingData(target_name, index_base)


def load_model(path):
    """Load a model saved by :func:`save_model`; return a fitted ``fastlr.LogisticRegression``.

    Raises
    ------
    ModelFileError
        The file is missing, not a fastlr model file, truncated, corrupt,
        written by a newer fastlr, or inconsistent. Never another exception
        type for a bad file, and never runs code from the file.
    """
    return load_model_and_data(path)[0]


@dataclass(frozen=True)
class TrainingData:
    """What a model file says of the data its model was trained on (``fastlr train``).

    Attributes
    ----------
    target_name : str or None
        The label column's name, for a model trained on a table.
    index_base : {0, 1} or None
        The feature-index base, for a model trained on an svmlight/libsvm file.
    """

    target_name: str | None = None
    index_base: int | None = None


def load_model_and_data(path):
    """:func:`load_model`, and the :class:`TrainingData` saved with it (its fields None if not).

    Raises
    ------
    ModelFileError
        As :func:`load_model`, for the same bad files.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(path, "no such file")
    if os.path.isdir(path):
        raise ModelFileError(path, "is a directory, not a model file")
    try:
        with open(path, "rb") as f:
            try:
                zf = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, EOFError, ValueError, OSError, NotImplementedError):
                raise ModelFileError(path, "not a fastlr model file (not a zip/npz archive)") from None
            with zf:
                _check_headers(path, zf, os.fstat(f.fileno()).st_size)
            f.seek(0)
            with np.load(f, allow_pickle=False) as npz:
                meta = _read_metadata(path, npz["metadata"])
                missing = [m for m in MEMBERS if m not in npz.files]
                if missing:
                    raise ModelFileError(path, f"model file lacks member(s) {', '.join(missing)}")
                arrays = {m: npz[m] for m in MEMBERS if m != "metadata"}
        return _build(path, meta, arrays)
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(path, "model file needs more memory than is available") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail in many ways
        raise ModelFileError(path, f"corrupt or truncated model file ({type(exc).__name__}: {exc})") from None
