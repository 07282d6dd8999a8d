"""The command line, run as a subprocess."""

import subprocess
import sys

import pytest


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fastlr.cli", *args], capture_output=True, text=True,
                          timeout=600)


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
