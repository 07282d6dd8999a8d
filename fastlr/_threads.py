"""Thread pools: which threading layer Numba uses, and who else may run threads meanwhile.

Three things, all owned here:

* **Numba's threading layer.** fastlr documents TBB: it is the layer that is
  safe when parallel kernels are entered from several Python threads at once
  (``workqueue`` aborts), whose workers are shared by all calling threads
  (OpenMP gives each calling thread a team of its own, so two threads calling
  fastlr would run 2 × N threads), and whose scheduler steals work, so that a
  core that another process keeps busy slows a kernel down by its share only
  (a static OpenMP split waits for the slowest thread). The ``tbb`` wheel puts
  ``libtbb.so.12`` in ``<prefix>/lib``, which is not on the dynamic loader's
  path in a virtual environment, so Numba silently falls back to OpenMP there.
  :func:`preload_tbb` loads that library (found from the installed ``tbb``
  distribution's file list) with ``RTLD_GLOBAL`` before Numba picks a layer;
  Numba's ``tbbpool`` extension then binds to it. It does nothing when the user
  chose a layer (``NUMBA_THREADING_LAYER``), when some ``libtbb.so.12`` is
  already loaded, or when the layer has already been chosen.
* **Other libraries' pools.** While fastlr trains or predicts, BLAS and OpenMP
  pools of other libraries (OpenBLAS in NumPy and SciPy, which the small vector
  operations between kernel calls wake up) are limited to one
  thread with threadpoolctl: on a machine with few cores their spinning threads
  otherwise compete with Numba's workers. See :func:`fastlr_threads`.
* **Nesting.** Numba's thread count is read per call: inside a joblib (loky)
  worker ``NUMBA_NUM_THREADS`` is already set to the worker's share, and when
  several Python threads train at once (joblib's threading backend), each gets
  ``N // active`` threads, so the total never exceeds N.

May import: the standard library, Numba, threadpoolctl, :mod:`fastlr.kernels.cpu` (lazily).
"""

import ctypes
import os
import sys
import threading
from contextlib import contextmanager

_TBB_NAMES = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}

#: What :func:`preload_tbb` did, for ``fastlr info``.
tbb_preload = "not attempted"


def _tbb_candidates(name):
    """Paths of ``name`` installed by the ``tbb`` distribution (pip wheel), best first."""
    paths = []
    try:
        from importlib.metadata import PackageNotFoundError, distribution
        try:
            dist = distribution("tbb")
            for f in dist.files or ():
                if f.name == name:
                    paths.append(os.path.abspath(str(dist.locate_file(f))))
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover - Python < 3.8
        pass
    for prefix in (sys.prefix, sys.base_prefix):
        paths.append(os.path.join(prefix, "Library", "bin" if sys.platform == "win32" else "lib", name))
        paths.append(os.path.join(prefix, "lib", name))
    seen = []
    for p in paths:
        if p not in seen and os.path.isfile(p):
            seen.append(p)
    return seen


def _layer_chosen():
    """True if Numba has already launched a parallel region (its layer is then fixed)."""
    npyufunc = sys.modules.get("numba.np.ufunc.parallel")
    return bool(npyufunc is not None and getattr(npyufunc, "_is_initialized", False))


def preload_tbb():
    """Make Numba's TBB layer loadable in a virtual environment (see the module notes).

    Returns a short description of what was done (also kept in :data:`tbb_preload`).
    """
    global tbb_preload
    name = _TBB_NAMES.get(sys.platform)
    requested = os.environ.get("NUMBA_THREADING_LAYER", "default").lower()
    if name is None:
        tbb_preload = f"skipped: no TBB library name known for {sys.platform}"
    elif requested not in ("default", "safe", "threadsafe", "tbb"):
        tbb_preload = f"skipped: NUMBA_THREADING_LAYER={requested}"
    elif _layer_chosen():
        tbb_preload = "skipped: Numba had already chosen its threading layer"
    else:
        tbb_preload = _load(name)
    return tbb_preload


def _load(name):
    if sys.platform != "win32":
        try:  # already loaded (conda, LD_LIBRARY_PATH, another package): leave it
            ctypes.CDLL(name, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
            return f"{name} was already loaded"
        except OSError:
            pass
    candidates = _tbb_candidates(name)
    if not candidates:
        return f"{name} not found (is the tbb package installed?)"
    try:
        ctypes.CDLL(candidates[0], mode=getattr(os, "RTLD_GLOBAL", 0))
    except OSError as exc:
        return f"{candidates[0]} failed to load: {' '.join(str(exc).split())[:200]}"
    return f"loaded {candidates[0]}"


# -- pools of other libraries and Numba's thread count -------------------------------------

_state_lock = threading.Lock()
_active = 0          # fastlr calls in progress in this process (any thread)
_limiter = None      # threadpoolctl limiter held while _active > 0
_controller = None   # cached ThreadpoolController (creating one scans the loaded libraries)
_controller_key = None


def _get_controller():
    """threadpoolctl's controller, rebuilt only when new modules (hence libraries) were imported."""
    global _controller, _controller_key
    key = len(sys.modules)
    if _controller is None or key != _controller_key:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # declared as a dependency; tolerate its absence anyway
            return None
        _controller = ThreadpoolController()
        _controller_key = key
    return _controller


def _foreign_pools(controller):
    """The pools to limit: every BLAS, and every OpenMP runtime unless Numba runs on it."""
    import numba
    try:
        numba_on_omp = numba.threading_layer() == "omp"
    except ValueError:  # layer not chosen yet
        numba_on_omp = False
    pools = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    if not numba_on_omp:
        pools += [lib for lib in controller.lib_controllers if lib.user_api == "openmp"]
    return pools


class _Limits:
    """Set the given pools to one thread; restore their previous counts on :meth:`restore`."""

    def __init__(self, pools):
        self._saved = []
        for lib in pools:
            before = lib.num_threads
            if before != 1:
                lib.set_num_threads(1)
                self._saved.append((lib, before))

    def restore(self):
        for lib, before in self._saved:
            lib.set_num_threads(before)


def numba_threads():
    """The number of Numba threads a fastlr call started now would use."""
    import numba
    return max(1, numba.get_num_threads() // max(1, _active))


@contextmanager
def fastlr_threads():
    """Hold while fastlr's kernels and solvers run (``fit``, ``predict``, ``loss_grad``).

    Limits other libraries' BLAS / OpenMP pools to one thread (the first caller
    in the process sets the limits, the last one out restores them, so that
    concurrent calls from several Python threads do not undo each other's
    limits) and sets this thread's Numba thread count to its share of the
    threads Numba was configured with: ``N // active calls``, at least one.
    Cheap enough for a fit of a few milliseconds (no library scan per call).
    """
    global _active, _limiter
    import numba
    with _state_lock:
        _active += 1
        if _active == 1:
            from .kernels import cpu
            cpu.parallel_guard()  # Numba's layer must be known to tell its OpenMP from others'
            controller = _get_controller()
            _limiter = _Limits(_foreign_pools(controller)) if controller is not None else None
        share = max(1, numba.config.NUMBA_NUM_THREADS // _active)
    before = numba.get_num_threads()
    numba.set_num_threads(min(before, share))
    try:
        yield
    finally:
        numba.set_num_threads(before)
        with _state_lock:
            _active -= 1
            if _active == 0 and _limiter is not None:
                _limiter.restore()
                _limiter = None


def describe():
    """Dict for ``fastlr info``: layer, Numba threads, TBB preload, other pools (threadpoolctl)."""
    import numba

    from .kernels import cpu
    cpu.parallel_guard()  # launches a parallel region once, so that the layer is known
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = None
    controller = _get_controller()
    pools = []
    if controller is not None:
        for info in controller.info():
            pools.append({k: info.get(k) for k in ("user_api", "internal_api", "num_threads",
                                                     "version", "threading_layer", "filepath")})
    return {"layer": layer, "numba_threads": numba.get_num_threads(),
            "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
            "tbb_preload": tbb_preload, "pools": pools}
