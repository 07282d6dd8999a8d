"""Where Numba's compile time goes: a pytest plugin that records every compilation, and its summary.

Numba broadcasts a ``numba:compile`` event around each dispatcher compilation
(:mod:`numba.core.event`); this plugin times them (each one's own time, without the
compilations nested in it) and writes one JSON file per process at exit. Used on 2026-12-02
to find that a cold test run spent 541 s of CPU compiling 261 (function, signature) pairs, about
70 s of them the same kernels compiled twice (read-only X 37 s, a literal loss id 33 s).

Usage, from the repository root (``-p`` loads the plugin in every pytest-xdist worker)::

    rm -rf /tmp/nc /tmp/compile-log
    PYTHONPATH=benchmarks NUMBA_CACHE_DIR=/tmp/nc COMPILE_LOG_DIR=/tmp/compile-log \\
        python -m pytest -p compile_log tests/test_kernels.py
    python benchmarks/compile_log.py /tmp/compile-log

With an empty ``NUMBA_CACHE_DIR`` every kernel compiles; with a warm cache only what the
cache misses. Processes that the tests start (``subprocess``) are not recorded.
"""

import argparse
import atexit
import collections
import glob
import json
import os
import re
import time

_records = []
_stack = []


def _install():
    from numba.core import event

    class Listener(event.Listener):
        def on_start(self, ev):
            func = ev.data["dispatcher"].py_func
            _stack.append([f"{func.__module__}.{func.__qualname__}", str(ev.data["args"]),
                           time.perf_counter(), 0.0])

        def on_end(self, ev):
            name, args, start, nested = _stack.pop()
            total = time.perf_counter() - start
            if _stack:
                _stack[-1][3] += total
            _records.append({"name": name, "args": args, "total": total, "self": total - nested})

    event.register("numba:compile", Listener())
    atexit.register(_dump)


def _dump():
    folder = os.environ.get("COMPILE_LOG_DIR", "compile-log")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as handle:
        json.dump(_records, handle)


def pytest_configure(config):
    """pytest's hook: start recording in this process (the controller and every worker)."""
    if not _stack and not getattr(pytest_configure, "installed", False):
        pytest_configure.installed = True
        _install()


def _without(pattern, replacement):
    return lambda args: re.sub(pattern, replacement, args)


def summarise(folder, top=25):
    """Print the totals, the time spent on duplicate types and the costliest functions."""
    records = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as handle:
            mine = json.load(handle)
        print(f"{os.path.basename(path)}: {len(mine)} compilations, {sum(r['self'] for r in mine):.1f} s")
        records += mine
    total = sum(r["self"] for r in records)
    print(f"all: {len(records)} compilations of {len({(r['name'], r['args']) for r in records})} "
          f"(function, signature) pairs, {total:.1f} s of CPU")
    read_only = _without(r"'(C|F|A)', True,", r"'\1', False,")
    literal = _without(r"Literal\[int\]\(\d+\)", "int64")
    # each figure counts a (function, signature) pair once, as if one process compiled everything
    for label, merge in (("each pair once (no compilation repeated across processes)", str),
                         ("and read-only arrays typed as writable", read_only),
                         ("and literal ints typed as int64", lambda args: literal(read_only(args)))):
        kept = {}
        for r in records:
            key = (r["name"], merge(r["args"]))
            kept[key] = max(kept.get(key, 0.0), r["self"])
        print(f"  {label}: {sum(kept.values()):.1f} s")
    by_name = collections.Counter()
    count = collections.Counter()
    for r in records:
        by_name[r["name"]] += r["self"]
        count[r["name"]] += 1
    for name, seconds in by_name.most_common(top):
        print(f"{seconds:8.1f} s  {count[name]:3d}  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="COMPILE_LOG_DIR of the run")
    parser.add_argument("--top", type=int, default=25)
    options = parser.parse_args()
    summarise(options.folder, options.top)
