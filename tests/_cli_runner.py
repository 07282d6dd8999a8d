"""``python -m fastlr.cli ARGS`` for the tests, as a child process forked from a warm server.

A new Python process spends 3.5-5 s importing scikit-learn, SciPy, Numba and fastlr before the
command does anything (2-core Zen 3; scikit-learn alone 2 s), and the suite runs the command
line a few hundred times. :func:`run_cli` forks each command from a server process that
imported those once (as asv's ``--launch-method forkserver`` does for the benchmarks): the
command still runs in a process of its own, with its own standard streams (files), exit status,
signals, working directory and ``atexit`` handlers, so a test sees what it would see from
``subprocess.run``. The server runs no kernel (no thread pool is started before a fork); the
child loads the compiled kernels from Numba's cache as a new process would.

Where a test needs what only a fresh interpreter gives, it uses :mod:`subprocess` itself:
an environment variable read at import (``NUMBA_NUM_THREADS``, thread pools: the server was
started with the environment the tests were collected in, and :func:`run_cli` falls back to
``subprocess.run`` when ``os.environ`` differs from it), SIGINT, a pipe closed by the reader,
``fastlr info``'s report of a fresh process's threads, and the installed entry point.
"""

import atexit
import io
import json
import locale
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

_PRELOAD = ("fastlr.cli", "fastlr.cli.train", "fastlr.cli.predict", "fastlr.cli.bench", "fastlr.io")

#: Set by pytest for each test; not part of what a command's environment is compared on.
_PER_TEST = ("PYTEST_CURRENT_TEST",)

_server = None
_environ = None
_lock = threading.Lock()


def _environment():
    return {key: value for key, value in os.environ.items() if key not in _PER_TEST}


def _start():
    """Start the server (once per test process) with the environment and ``sys.path`` of now."""
    global _server, _environ
    if _server is None or _server.poll() is not None:
        code = (f"import sys; sys.path[:] = {sys.path!r}; sys.fastlr_cli_server = True; "
                "import _cli_runner; _cli_runner._serve()")
        _server = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, env=dict(os.environ))
        _environ = _environment()
    return _server


def _serve():
    """The server: import fastlr's command line, then fork a child per request line (JSON)."""
    for name in _PRELOAD:
        __import__(name)
    requests = sys.stdin.buffer
    replies = sys.stdout.buffer
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _child(request["args"], request["cwd"], request["out"], request["err"], request["unbuffered"])
            finally:
                os._exit(70)
        deadline = time.monotonic() + request["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code = None
                break
            time.sleep(0.002)
        replies.write(json.dumps({"code": code}).encode() + b"\n")
        replies.flush()


def _streams(out_path, err_path, unbuffered):
    """Point fds 0, 1, 2 at /dev/null and the two files and make sys.std* as Python's startup does."""
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, out_path, os.O_WRONLY), (2, err_path, os.O_WRONLY)):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    encoding = locale.getpreferredencoding(False)

    def text(fd, mode, errors, line_buffering):
        raw = io.FileIO(fd, mode, closefd=False)
        if unbuffered and mode == "w":
            return io.TextIOWrapper(raw, encoding=encoding, errors=errors, write_through=True)
        buffered = io.BufferedWriter(raw) if mode == "w" else io.BufferedReader(raw)
        return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=line_buffering)

    sys.stdin = sys.__stdin__ = text(0, "r", "strict", False)
    sys.stdout = sys.__stdout__ = text(1, "w", "strict", False)
    sys.stderr = sys.__stderr__ = text(2, "w", "backslashreplace", True)


def _child(args, cwd, out_path, err_path, unbuffered):
    """The forked process: run ``fastlr.cli`` as ``python -m`` does, then exit as Python would."""
    _streams(out_path, err_path, unbuffered)
    if cwd is not None:
        os.chdir(cwd)
    sys.argv = ["-m", *args]  # runpy puts the path of fastlr/cli/__main__.py first, as -m does
    try:
        runpy.run_module("fastlr.cli", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run_cli(*args, cwd=None, timeout=300, unbuffered=False):
    """``subprocess.run([python, "-m", "fastlr.cli", *args], capture_output=True, text=True)``.

    Returns a :class:`subprocess.CompletedProcess` (``returncode`` negative for a signal);
    raises :class:`subprocess.TimeoutExpired` after ``timeout`` seconds (the child is killed).
    ``unbuffered``: as with ``PYTHONUNBUFFERED=1``.
    """
    args = [str(a) for a in args]
    command = [sys.executable, "-m", "fastlr.cli", *args]
    if _environment() != _environ:  # a test changed the environment: only a new interpreter reads it
        env = dict(os.environ, PYTHONUNBUFFERED="1") if unbuffered else None
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    with _lock, tempfile.TemporaryDirectory(prefix="fastlr-cli-") as folder:
        request = {"args": args, "cwd": None if cwd is None else str(cwd), "timeout": timeout,
                   "out": os.path.join(folder, "stdout"), "err": os.path.join(folder, "stderr"),
                   "unbuffered": unbuffered}
        for path in (request["out"], request["err"]):
            open(path, "wb").close()
        server = _start()
        server.stdin.write(json.dumps(request).encode() + b"\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        if not reply:
            raise RuntimeError(f"the fastlr command server (tests/_cli_runner.py) exited with {server.wait()}")
        code = json.loads(reply)["code"]
        if code is None:
            raise subprocess.TimeoutExpired(command, timeout)
        encoding = locale.getpreferredencoding(False)
        with open(request["out"], encoding=encoding) as handle:  # universal newlines, as text=True
            stdout = handle.read()
        with open(request["err"], encoding=encoding) as handle:
            stderr = handle.read()
    return subprocess.CompletedProcess(command, code, stdout, stderr)


# Started when the tests that use it are collected: the environment is then the one every test
# starts from (before any monkeypatch), and the server imports while collection goes on.
if not getattr(sys, "fastlr_cli_server", False):
    _start()
