"""Faults: callbacks, exceptions and Ctrl-C mid-fit, kill -9 during a save, a full disk.

Documented semantics (README "Reliability", ``LogisticRegression`` Notes):
``fit`` and ``partial_fit`` are transactional — if they raise (an exception
from ``callback``, KeyboardInterrupt, bad input) the estimator keeps exactly
its previous state (previous fit, or unfitted) and the exception propagates;
after an interrupted ``partial_fit`` loop the model is that of the last
completed call (epoch). A model save never leaves a half-written file under the
target name, and a full disk gives a ModelFileError naming the path and saying
"no space left", with the previous file intact and no temporary file left.
"""

import _thread
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from fastlr import LogisticRegression
from fastlr import _atomic
from fastlr.model_file import ModelFileError, load_model, save_model
from fastlr.trainer import IterationInfo

SOLVERS = {
    "lbfgs": dict(solver="lbfgs", tol=1e-10),
    "gd": dict(solver="gd", max_iter=50, tol=None),
    "sgd": dict(solver="sgd", max_iter=20, tol=None, random_state=0),
}


def data(k=2, d=4, seed=0, n=300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    X[:, 0] += y
    return X, y


def state(model):
    """Everything fit sets, as comparable copies."""
    return {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
            for k, v in vars(model).items() if k.endswith("_") or k == "t_"}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


# -- the callback ---------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_callback_sees_every_iteration(solver):
    seen = []
    model = LogisticRegression(callback=seen.append, **SOLVERS[solver])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(*data())
    assert all(isinstance(info, IterationInfo) for info in seen)
    assert [info.iteration for info in seen] == list(range(1, model.n_iter_[0] + 1))
    assert [info.loss for info in seen] == model.loss_curve_
    assert {info.solver for info in seen} == {solver}
    np.testing.assert_array_equal(seen[-1].coef, model.coef_)
    np.testing.assert_array_equal(seen[-1].intercept, model.intercept_)
    assert seen[0].coef is not seen[1].coef and not np.array_equal(seen[0].coef, seen[-1].coef)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_callback_returning_true_stops_training_there(solver):
    seen = []

    def stop_at_3(info):
        seen.append(info)
        return info.iteration == 3

    model = LogisticRegression(callback=stop_at_3, **dict(SOLVERS[solver], max_iter=100))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is not a failure
        model.fit(*data(k=3))
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    np.testing.assert_array_equal(model.coef_, seen[-1].coef)
    np.testing.assert_array_equal(model.intercept_, seen[-1].intercept)
    # the same as an uninterrupted run of 3 iterations (gd, sgd: same path)
    if solver != "lbfgs":
        ref = LogisticRegression(**dict(SOLVERS[solver], max_iter=3)).fit(*data(k=3))
        np.testing.assert_array_equal(model.coef_, ref.coef_)


def test_callback_must_be_callable():
    with pytest.raises(TypeError, match="callback must be callable"):
        LogisticRegression(callback=42).fit(*data())


def test_partial_fit_calls_the_callback_once_per_call():
    seen = []
    model = LogisticRegression(callback=seen.append, random_state=0)
    X, y = data()
    model.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
    assert [info.iteration for info in seen] == [1, 1]
    assert [info.loss for info in seen] == model.loss_curve_


# -- exceptions and Ctrl-C leave the estimator as it was -----------------------------------------


class Boom(Exception):
    pass


def raise_at(iteration, exc):
    def callback(info):
        if info.iteration == iteration:
            raise exc
    return callback


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("exc", [Boom("from the callback"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_interrupted_fit_keeps_the_previous_fitted_state(solver, exc):
    model = LogisticRegression(**SOLVERS[solver]).fit(*data(k=2, d=4))
    before = state(model)
    X2, y2 = data(k=3, d=6, seed=1)  # other classes and width: everything would change
    model.set_params(callback=raise_at(2, exc))
    with pytest.raises(type(exc)):
        model.fit(X2, y2)
    assert_same_state(before, state(model))
    X, _ = data(k=2, d=4)
    np.testing.assert_array_equal(model.predict_proba(X), LogisticRegression(**SOLVERS[solver]).fit(
        *data(k=2, d=4)).predict_proba(X))
    model.set_params(callback=None).fit(X2, y2)  # and it trains again
    assert model.coef_.shape == (3, 6)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_interrupted_first_fit_leaves_the_estimator_unfitted(solver):
    model = LogisticRegression(callback=raise_at(1, KeyboardInterrupt()), **SOLVERS[solver])
    with pytest.raises(KeyboardInterrupt):
        model.fit(*data())
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert state(model) == {}


def test_sigint_delivered_mid_fit_keeps_the_previous_state():
    """A real SIGINT (Python's default handler raises KeyboardInterrupt in the main thread)."""
    assert threading.current_thread() is threading.main_thread()
    model = LogisticRegression(solver="gd", max_iter=50, tol=None).fit(*data())
    before = state(model)

    def send_sigint(info):
        if info.iteration == 5:
            signal.raise_signal(signal.SIGINT)

    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        model.set_params(callback=send_sigint)
        with pytest.raises(KeyboardInterrupt):
            model.fit(*data(k=3, seed=2))
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    assert_same_state(before, state(model))


def test_ctrl_c_from_another_thread_at_a_random_moment():
    """interrupt_main from a timer lands wherever the fit is; the state is the old one or the new fit."""
    X, y = data(n=3000)
    model = LogisticRegression(solver="lbfgs").fit(X, y)
    before = state(model)
    slow = dict(solver="sgd", max_iter=400, tol=None, batch_size=16, random_state=0,
                callback=lambda info: time.sleep(0.001))
    model.set_params(**slow)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        model.fit(X, y)
        completed = True
    except KeyboardInterrupt:
        completed = False
    finally:
        timer.cancel()
        time.sleep(0.05)  # let a late interrupt_main surface here, not in the next test
    if completed:  # the machine was fast enough; still a consistent fit
        assert model.n_iter_ == 400
    else:
        assert_same_state(before, state(model))
        model.predict(X)


def test_interrupted_partial_fit_keeps_the_last_completed_epoch():
    X, y = data(n=400)
    chunks = [(X[i::4], y[i::4]) for i in range(4)]
    ref = LogisticRegression(random_state=0)
    states = []
    for Xc, yc in chunks:
        ref.partial_fit(Xc, yc, classes=[0, 1])
        states.append(state(ref))

    calls = []

    def interrupt_third_call(info):
        calls.append(info)
        if len(calls) == 3:
            raise KeyboardInterrupt

    model = LogisticRegression(random_state=0, callback=interrupt_third_call)
    model.partial_fit(*chunks[0], classes=[0, 1]).partial_fit(*chunks[1])
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(*chunks[2])
    after_two = state(model)
    after_two.pop("callback", None)
    assert_same_state(states[1], after_two)
    model.partial_fit(*chunks[2]).partial_fit(*chunks[3])  # resuming gives the uninterrupted result
    assert_same_state(states[3], state(model))


def test_interrupted_first_partial_fit_leaves_no_half_state():
    """Before: classes_ was set and coef_ not, so the next partial_fit failed with AttributeError."""
    X, y = data()
    model = LogisticRegression(callback=raise_at(1, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(model, "classes_")
    model.set_params(callback=None).partial_fit(X, y, classes=[0, 1])
    model.predict(X)


def test_bad_input_to_a_fitted_estimator_keeps_its_state():
    model = LogisticRegression().fit(*data())
    before = state(model)
    X, y = data(d=7)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(X[:, :2], np.zeros(len(y)))
    assert_same_state(before, state(model))


# -- saving: kill -9 and a full disk ---------------------------------------------------------------

_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from fastlr import LogisticRegression
    from fastlr.model_file import save_model

    path, d = sys.argv[1], int(sys.argv[2])
    models = []
    for value in (1.0, 2.0):
        m = LogisticRegression()
        m.coef_ = np.full((1, d), value)
        m.intercept_ = np.array([value])
        m.classes_ = np.array([0, 1])
        m.n_features_in_ = d
        m.n_iter_ = 1
        m.loss_curve_ = [value]
        m.backend_ = "cpu"
        models.append(m)
    print("ready", flush=True)
    i = 0
    while True:
        save_model(models[i % 2], path)
        i += 1
""")


def test_kill_9_during_saves_never_leaves_a_half_written_model(tmp_path):
    """A process saving a 4 MB model in a loop is killed at random moments: the target is always whole."""
    path = tmp_path / "model.npz"
    d = 500_000
    rng = np.random.default_rng(0)
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(d)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.4 * rng.random())
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        if path.exists():  # absent only if killed before the first save completed
            model = load_model(path)
            value = model.coef_[0, 0]
            assert value in (1.0, 2.0) and model.coef_.shape == (1, d)
            np.testing.assert_array_equal(model.coef_, value)
            assert model.intercept_[0] == value
    # what a kill can leave is a hidden temporary file beside it, never a partial target
    assert all(p.name == "model.npz" or (p.name.startswith(".model.npz.") and p.name.endswith(".tmp"))
               for p in tmp_path.iterdir())


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes are used (or whose fsync does)."""

    def __init__(self, file, room):
        self._file = file
        self._room = room

    def write(self, data):
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.mark.parametrize("where", ["first-write", "mid-file", "fsync"])
def test_disk_full_during_save_keeps_the_previous_file(tmp_path, monkeypatch, where):
    path = tmp_path / "model.npz"
    old = LogisticRegression(C=3.0).fit(*data())
    save_model(old, path)
    before = path.read_bytes()
    new = LogisticRegression(C=0.5).fit(*data(k=3, d=50, seed=3))
    real_fdopen = os.fdopen
    if where == "fsync":
        def no_space_fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(_atomic.os, "fsync", no_space_fsync)
    else:
        room = 0 if where == "first-write" else 1000
        monkeypatch.setattr(_atomic.os, "fdopen",
                            lambda fd, *a, **k: _FullDisk(real_fdopen(fd, *a, **k), room))
    with pytest.raises(ModelFileError) as info:
        save_model(new, path)
    message = str(info.value)
    assert str(path) in message and "no space left" in message.lower() and "\n" not in message
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    assert load_model(path).C == 3.0
