"""The command line, run as a child process (tests/_cli_runner.py)."""


import pytest

import _cli_runner


def run_cli(*args):
    """``python -m fastlr.cli ARGS``, forked from a warm server (tests/_cli_runner.py)."""
    return _cli_runner.run_cli(*args, timeout=600)


def test_demo_prints_a_row_per_model_and_dataset():
    result = run_cli("demo", "--bundled", "--n", "20000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for data in ("breast-cancer", "digits (10 classes)", "generated 20,000x64 float32"):
        rows = [line for line in lines if line.startswith(data)]
        assert len(rows) == 7, result.stdout
        for row in rows:
            accuracy = float(row[61:69])
            assert 0.5 < accuracy <= 1.0


@pytest.mark.parametrize("args, message", [
    (["demo", "--n", "-5"], "--n must be >= 0"),
    (["demo", "--n", "many"], "invalid int value"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_demo_fit_reports_a_convergence_warning_as_stopped_short():
    """The demos mark a row whose fit stopped at max_iter instead of hiding the warning."""
    import warnings

    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from fastlr import LogisticRegression
    from fastlr.demo_images import fit_timed

    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing leaks out of fit_timed
        seconds, stopped = fit_timed(LogisticRegression(solver="lbfgs", max_iter=2), X, y)
        assert stopped and seconds > 0
        _, stopped = fit_timed(LogisticRegression(solver="lbfgs", max_iter=500),
                               (X - X.mean(axis=0)) / X.std(axis=0), y)
        assert not stopped
    assert np.isfinite(seconds)


@pytest.mark.parametrize("n, parallel", [(300, False), (20_000, True)])
def test_warm_up_loads_the_kernels_the_timed_fit_runs(monkeypatch, n, parallel):
    """A fit on X large enough for the parallel kernels gets a warm-up that runs them too (the
    few-row warm-up ran the serial ones only, and the first timed fit compiled)."""
    import numpy as np

    import fastlr.backends.cpu as cpu_backend
    from fastlr import LogisticRegression
    from fastlr._warm_up import warm_up

    seen = []
    original = cpu_backend._parallel

    def recording(X, k):
        seen.append(original(X, k))
        return seen[-1]

    monkeypatch.setattr(cpu_backend, "_parallel", recording)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 64)).astype(np.float32)
    y = rng.integers(0, 2, n)
    assert original(X, 1) == parallel  # the timed fit's path
    warm_up([LogisticRegression(solver="lbfgs")], X, y)
    assert seen and all(s == parallel for s in seen)


def test_help_is_plain_text_with_every_command(capsys):
    """``fastlr --help`` prints a plain-text description (no reST markup such as ``x``)
    and lists every subcommand."""
    from fastlr.cli import COMMANDS, main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:" not in out
    for name in COMMANDS:
        assert name in out
