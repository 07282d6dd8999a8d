"""Numba bounds checking: CI runs the whole suite a second time with NUMBA_BOUNDSCHECK=1.

Under NUMBA_BOUNDSCHECK=1 every array index in a compiled kernel is checked, so
an out-of-range read or write raises IndexError instead of touching memory it
should not. Inside a ``prange`` region (the gradient and scoring kernels) Numba
propagates it only partly (numba issues #2811, #9380): as a SystemError, and —
measured here with numba 0.68 — not on the first call of a parallel kernel in
a process, nor ever under the ``workqueue`` threading layer; the suite calls
every kernel many times, so an index error in them still fails a test.
Numba's on-disk cache key (signature, CPU, bytecode hash) does not include the
bounds-checking flag, so a kernel cached by an ordinary run would be loaded
unchecked: the bounds-checked run must use its own ``NUMBA_CACHE_DIR``
(``.ci/run`` gives it a fresh temporary one). These tests prove the checks are
active, and ``test_kernel_index_errors_are_caught_with_boundscheck`` shows the
stale-cache trap.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

BOUNDSCHECK = os.environ.get("NUMBA_BOUNDSCHECK", "") == "1"


@pytest.mark.skipif(not BOUNDSCHECK, reason="only in the NUMBA_BOUNDSCHECK=1 run (.ci/run)")
def test_bounds_checking_is_active_in_this_run():
    @njit
    def read(a, i):
        return a[i]

    assert read(np.zeros(3), 2) == 0.0
    with pytest.raises(IndexError):
        read(np.zeros(3), 3)


@pytest.mark.skipif(not BOUNDSCHECK, reason="only in the NUMBA_BOUNDSCHECK=1 run (.ci/run)")
def test_fastlr_kernels_are_bounds_checked_in_this_run():
    """fastlr's own cached kernels were compiled with checks here, not loaded unchecked from a cache."""
    from fastlr.kernels import cpu

    X = np.ones((5, 3))
    W = np.ones((3, 3))
    # b shorter than W has rows: the kernel would read past b's end. The first call of a
    # parallel kernel in a process does not report it (see the module docstring).
    errors = []
    for _ in range(3):
        try:
            cpu.decision_function(X, W, np.zeros(1))
        except (IndexError, SystemError) as exc:
            errors.append(exc)
    assert len(errors) >= 2
    # the serial SGD kernel reports it on every call: a row permutation pointing past X
    rows = np.array([0, 1, 2, 3, 99], dtype=np.int64)
    with pytest.raises(IndexError):
        cpu.sgd_epoch(X, np.zeros(5, np.int32), np.zeros(0), rows, np.array([2], dtype=np.int64), 2,
                      np.zeros((1, 3)), np.zeros(1), 0, 0.0, True, 0.1, 0.0, 0, 1.0)


_PROBE = textwrap.dedent("""
    import numpy as np
    from fastlr.kernels import cpu
    caught = []
    for _ in range(3):  # the first call of a parallel kernel does not report it
        try:
            cpu.decision_function(np.ones((5, 3)), np.ones((3, 3)), np.zeros(1))
        except (IndexError, SystemError) as exc:
            caught.append(type(exc).__name__)
    print("checked" if caught else "unchecked")
""")


def _probe(cache_dir, boundscheck):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_BOUNDSCHECK", None)
    if boundscheck:
        env["NUMBA_BOUNDSCHECK"] = "1"
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[0]


@pytest.mark.skipif(BOUNDSCHECK, reason="the ordinary run shows it; this run already checks bounds")
def test_kernel_index_errors_are_caught_with_boundscheck(tmp_path):
    """With a fresh cache, NUMBA_BOUNDSCHECK=1 catches the bad index; a shared cache would hide it.

    The unchecked probe reads one element past a tiny array (harmless garbage).
    """
    assert _probe(tmp_path / "fresh", boundscheck=True) == "checked"
    shared = tmp_path / "shared"
    assert _probe(shared, boundscheck=False) == "unchecked"
    # the trap: same cache directory, boundscheck on, and the unchecked kernel is reused
    assert _probe(shared, boundscheck=True) == "unchecked"
