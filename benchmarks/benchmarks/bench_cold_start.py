"""Cold start: a fresh interpreter that imports fastlr and makes its first call.

fastlr's kernels are compiled by Numba on first use and cached on disk
(``cache=True``), so a new process pays either a cache load (warm) or a full
compile (cold). Each sample below is a new Python process (asv's
``timeraw_``): the timed statement is ``import fastlr`` plus the first call
on a small problem (2000 x 16 float32); making the data (and importing
NumPy) is untimed setup inside that process.

Suites
------
Import
    ``import fastlr`` alone (NumPy, SciPy, scikit-learn, Numba included).
WarmCache
    ``NUMBA_CACHE_DIR`` points to a directory that an identical run filled
    beforehand: what a user sees from the second run on.
ColdCache
    ``NUMBA_CACHE_DIR`` points to a new, empty directory for every sample:
    the first run after installing (every kernel the call needs is compiled).
"""

import glob
import os
import subprocess
import sys
import tempfile
import textwrap

from .common import SMALL

#: The first call made after ``import fastlr``; ``X``, ``y`` and ``np`` exist.
FIRST_CALLS = {
    "loss_grad": "fastlr.loss_grad(X, y, np.zeros(X.shape[1]))",
    "fit_lbfgs": "fastlr.LogisticRegression().fit(X, y)",
    "fit_sgd": "fastlr.LogisticRegression(solver='sgd', max_iter=1, tol=None).fit(X, y)",
}
# A cold compile costs seconds per call on a small machine; CI checks one of them.
CALLS = ["fit_lbfgs"] if SMALL else list(FIRST_CALLS)

_DATA = textwrap.dedent("""
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 16)).astype(np.float32)
    y = (X[:, 0] - 0.5 * X[:, 1] + rng.logistic(size=2000) > 0).astype(np.int32)
""")

_FRESH_CACHE_DIR = textwrap.dedent("""
    import atexit, os, shutil, tempfile
    _numba_cache = tempfile.mkdtemp(prefix="fastlr-bench-numba-cold-")
    atexit.register(shutil.rmtree, _numba_cache, True)
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache
""")


def _cache_dir_setup(path):
    return f"import os\nos.environ['NUMBA_CACHE_DIR'] = {path!r}\n"


def _statement(first_call):
    return "import fastlr\n" + FIRST_CALLS[first_call] + "\n"


def _run_child(code):
    """Run ``code`` in a fresh interpreter; raise with its stderr if it fails."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child interpreter failed:\n{proc.stderr}")
    return proc


def _index_files(path):
    return glob.glob(os.path.join(path, "**", "*.nbi"), recursive=True)


# Warm cache directories filled in this benchmark process, by first call.
_WARM_DIRS = {}


def _warm_cache_dir(first_call):
    """A NUMBA_CACHE_DIR holding the kernels ``first_call`` needs.

    One fixed directory per user and first call, reused across processes and
    runs (asv's forkserver children leave with ``os._exit``, so a temporary
    directory removed at exit would leak). Numba keys its cache by the source
    file's path and checks its timestamp, so each fastlr install gets its own
    entries and a stale entry is recompiled by the warm-up run below.
    """
    if first_call not in _WARM_DIRS:
        user = os.getuid() if hasattr(os, "getuid") else "user"
        path = os.path.join(tempfile.gettempdir(), f"fastlr-bench-numba-warm-{user}", first_call)
        os.makedirs(path, exist_ok=True)
        # The correctness check of this suite: the call runs in a clean process,
        # and Numba wrote its compiled kernels to the cache.
        _run_child(_cache_dir_setup(path) + _DATA + _statement(first_call))
        if not _index_files(path):
            raise RuntimeError(f"Numba wrote no cache index under {path}")
        _WARM_DIRS[first_call] = path
    return _WARM_DIRS[first_call]


# Checks already made in this benchmark process (asv re-runs setup before every sample).
_CHECKED = set()


class _TimerawSuite:
    # Every sample is a new process; no warm-up samples, a few repeats.
    warmup_time = 0.0
    repeat = (1, 5, 60.0)
    number = 1
    timeout = 600


class Import(_TimerawSuite):
    """``import fastlr`` in a new interpreter (no kernel is compiled or loaded)."""

    def setup(self):
        if "import" not in _CHECKED:
            _run_child("import fastlr\nassert fastlr.LogisticRegression and fastlr.loss_grad\n")
            _CHECKED.add("import")

    def timeraw_import(self):
        return "import fastlr"


class WarmCache(_TimerawSuite):
    """Import and first call with Numba's on-disk cache already holding the kernels."""

    params = [CALLS]
    param_names = ["first_call"]

    def setup(self, first_call):
        self.cache_dir = _warm_cache_dir(first_call)

    def timeraw_import_and_first_fit(self, first_call):
        # (statement, setup): only the statement is timed.
        return _statement(first_call), _cache_dir_setup(self.cache_dir) + _DATA


class ColdCache(_TimerawSuite):
    """Import and first call with an empty Numba cache: everything is compiled."""

    params = [CALLS]
    param_names = ["first_call"]

    def setup(self, first_call):
        if "cold" not in _CHECKED:
            # What makes a sample cold: Numba takes its cache directory from the
            # environment variable set in the sample's setup, and it starts empty.
            _run_child(_FRESH_CACHE_DIR + textwrap.dedent("""
                import numba
                assert os.path.samefile(numba.config.CACHE_DIR, _numba_cache)
                assert not os.listdir(_numba_cache)
            """))
            _CHECKED.add("cold")

    def timeraw_import_and_first_fit(self, first_call):
        # A new empty NUMBA_CACHE_DIR is made inside every sample's process.
        return _statement(first_call), _FRESH_CACHE_DIR + _DATA
