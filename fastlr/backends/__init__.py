"""Backends: where the data lives and which kernels compute on it; the registry of them.

Holds: the registry (:func:`register`, :func:`get_backend`, :func:`backend_names`,
:data:`BACKEND_NAMES`, :func:`auto_backend`, :func:`for_input`) and the
re-exports of the protocol's types, so that ``from fastlr.backends import
get_backend, HostData, SGDSchedule, CPUBackend`` works.
May import: its own modules (``_protocol``, ``cpu``, ``numpy_ref``, ``cuda``,
``dask_cluster``), :mod:`fastlr._sparse`. Nothing in this package imports the
registry, the trainer or the estimator: a backend never trains.

One module per backend, each a class with the primitives of
:class:`~fastlr.backends._protocol.Backend` and its capability flags
(``accepts_sparse``, ``accepts_device_arrays``, ``has_hess_vec``,
``distributed``); adding a backend is one module and one :func:`register`
call below. The CLI, ``fastlr bench``, the model files and ``"auto"`` read the
names and flags from here.

========== =============================== ====== ======= ========= ===========
name       module                          sparse device  hess_vec  distributed
========== =============================== ====== ======= ========= ===========
cpu        :mod:`.cpu` (Numba)             yes    no      yes       no
cuda       :mod:`.cuda` (numba-cuda)       no     yes     no        no
numpy      :mod:`.numpy_ref` (reference)   yes    no      yes       no
dask       :mod:`.dask_cluster`            no     no      no        yes
========== =============================== ====== ======= ========= ===========
"""

import functools

from .._sparse import issparse
from ._protocol import Backend, HostData, SGDSchedule, check_hess_loss, host_data
from .cpu import CPUBackend
from .cuda import CUDABackend, DeviceData, DeviceMemoryError, is_device_array, usable
from .dask_cluster import DaskBackend, DaskData, DaskFitError
from .numpy_ref import NumpyBackend

__all__ = [
    "Backend", "HostData", "SGDSchedule", "CPUBackend", "CUDABackend", "NumpyBackend",
    "DaskBackend", "DaskData", "DaskFitError", "DeviceData", "DeviceMemoryError",
    "BACKEND_NAMES", "register", "get_backend", "backend_names",
    "auto_backend", "for_input", "is_device_array", "host_data", "check_hess_loss",
]

_REGISTRY = {}  # name -> (backend class, factory(**options) -> backend instance)

#: Names accepted by ``backend=``: "auto" (the fastest usable one, see
#: :func:`auto_backend`) and every registered backend, in registration order.
BACKEND_NAMES = ("auto",)


def register(cls, factory=None):
    """Make backend class ``cls`` known by ``cls.name`` (to ``backend=``, the CLI, bench, ...).

    Parameters
    ----------
    cls : type
        A class with the :class:`Backend` primitives and capability flags.
    factory : callable, optional
        ``factory(**options)`` builds an instance; default ``cls(**options)``.

    Returns
    -------
    cls
    """
    global BACKEND_NAMES
    for flag in ("accepts_sparse", "accepts_device_arrays", "has_hess_vec", "distributed"):
        if not isinstance(getattr(cls, flag, None), bool):
            raise TypeError(f"backend {cls.__name__} must set the capability flag {flag} (a bool)")
    _REGISTRY[cls.name] = (cls, factory or cls)
    BACKEND_NAMES = ("auto",) + tuple(_REGISTRY)
    return cls


def backend_names(**capabilities):
    """Names of the registered backends whose capability flags have the given values.

    ``backend_names()`` lists all of them (without "auto"); e.g.
    ``backend_names(distributed=False)`` the ones that train on arrays in this process.
    """
    return tuple(name for name, (cls, _) in _REGISTRY.items()
                 if all(getattr(cls, flag) == value for flag, value in capabilities.items()))


def backend_class(name):
    """The class registered as ``name`` (ValueError for unknown names; "auto" is not one)."""
    try:
        return _REGISTRY[name][0]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown backend {name!r}; expected one of {', '.join(map(repr, BACKEND_NAMES))}"
        ) from None


_auto_choice = None


def auto_backend():
    """``(name, reason)``: the backend ``"auto"`` stands for here, and why.

    The GPU when numba-cuda finds a usable device, the CPU otherwise. Decided
    once per process (asking the driver costs a few hundred milliseconds).
    """
    global _auto_choice
    if _auto_choice is None:
        ok, detail = usable()
        _auto_choice = ("cuda", f"GPU found: {detail}") if ok else ("cpu", f"no usable GPU: {detail}")
    return _auto_choice


def get_backend(name, **options):
    """Return a new instance of the backend called ``name`` ("auto" or a registered name).

    ``options`` go to the backend's factory (``"dask"``: ``partition``, the
    name of the backend run on each partition, and ``client``).

    Raises
    ------
    ValueError
        If ``name`` is not a known backend, or for "cuda" where no GPU can run
        the kernels (no driver, no device), in one line.
    ImportError
        For "cuda" without the numba-cuda package (for "dask" without dask: when it trains).
    """
    if name == "auto":
        name = auto_backend()[0]
    backend_class(name)  # ValueError for unknown names
    return _REGISTRY[name][1](**options)


def for_input(backend, X, requested="auto"):
    """The backend to use for ``X``: ``backend``, or one that can take X under "auto".

    The one place where the ``accepts_sparse`` and ``accepts_device_arrays``
    capability flags are checked (``fit``, ``partial_fit``, prediction,
    :func:`fastlr.loss_grad`): under ``requested="auto"`` sparse X goes to the
    CPU and a GPU array to the GPU.

    Raises
    ------
    ValueError
        If X is scipy.sparse, or a GPU array, and ``backend`` (asked for by name) cannot take it.
    """
    if issparse(X) and not getattr(backend, "accepts_sparse", False):
        if requested == "auto":
            return get_backend("cpu")
        raise ValueError(
            f"the {backend.name!r} backend does not accept sparse X (scipy.sparse); use "
            f"backend={' or '.join(map(repr, backend_names(accepts_sparse=True)))}, or pass a dense array")
    if is_device_array(X) and not getattr(backend, "accepts_device_arrays", False):
        if requested == "auto":
            return get_backend("cuda")
        raise ValueError(
            f"the {backend.name!r} backend does not accept GPU arrays (__cuda_array_interface__); use "
            f"backend={' or '.join(map(repr, backend_names(accepts_device_arrays=True)))}, "
            "or copy X to the host")
    return backend


def _dask_backend(partition="auto", client=None):
    # The per-partition backend is resolved by name on each worker (a GPU worker's "auto" is cuda).
    return DaskBackend(functools.partial(get_backend, partition), client)


register(CPUBackend)
register(CUDABackend)
register(NumpyBackend)
register(DaskBackend, _dask_backend)
