"""``fastlr bench``: the command (a child process, tests/_cli_runner.py), its JSON and plot, its user errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastlr import bench
from fastlr.kernels.cpu import read_sum

import _cli_runner

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, cwd=None):
    """``python -m fastlr.cli bench ARGS``, forked from a warm server (tests/_cli_runner.py)."""
    return _cli_runner.run_cli("bench", *args, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("bench")
    result = run_cli("--n", "3000", "--d", "8", "--repeat", "1",
                     "--peers", "fastlr-lbfgs,sklearn-lbfgs",
                     "--json", "out.json", "--plot", "out.png", cwd=folder)
    return folder, result


def test_bench_exits_0_and_prints_a_table(bench_run):
    folder, result = bench_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("what"))
    for column in ("time", "GB/s", "of read", "objective", "gap", "iters", "speed-up"):
        assert column in header
    rows = {line.split("  ")[0].strip(): line for line in lines}
    for row in ("read X (parallel sum, the floor)", "loss_grad cpu", "loss_grad numpy",
                "fit fastlr-lbfgs", "fit sklearn-lbfgs"):
        assert row in rows, result.stdout
        # aligned: every table row is as wide as the header or narrower, "time" right-aligned
        assert len(rows[row]) <= len(header)
    assert rows["fit fastlr-lbfgs"].endswith("1.00x")


def test_bench_json_has_the_documented_keys(bench_run):
    folder, result = bench_run
    assert result.returncode == 0, result.stderr
    data = json.loads((folder / "out.json").read_text())
    assert set(data) == set(bench.RESULT_KEYS)
    config = data["config"]
    assert (config["n"], config["d"], config["dtype"], config["classes"], config["repeat"]) == \
        (3000, 8, "float32", 2, 1)
    assert config["peers"] == ["fastlr-lbfgs", "sklearn-lbfgs"]
    assert config["backends"] == ["cpu", "numpy"]
    machine = data["machine"]
    for key in ("cpu", "cpu_count", "numba_threads", "threading_layer", "versions"):
        assert key in machine
    assert machine["versions"]["fastlr"] and machine["versions"]["numba"]
    assert data["read"]["time"] > 0 and data["read"]["gbps"] > 0
    assert [g["backend"] for g in data["loss_grad"]] == ["cpu", "numpy"]
    for g in data["loss_grad"]:
        for key in ("time", "gbps", "fraction_of_read", "kernel_time", "kernel_gbps",
                    "kernel_fraction_of_read"):
            assert g[key] > 0
    peers = {p["name"]: p for p in data["peers"]}
    assert list(peers) == ["fastlr-lbfgs", "sklearn-lbfgs"]
    for p in peers.values():
        for key in ("runtime", "times", "objective", "gap", "n_iter", "speedup", "coef",
                    "intercept"):
            assert key in p
        assert p["gap"] >= 0 and p["n_iter"] >= 1 and len(p["times"]) == 1
    assert peers["fastlr-lbfgs"]["speedup"] == 1.0
    assert peers["fastlr-lbfgs"]["objective"] == pytest.approx(
        peers["sklearn-lbfgs"]["objective"], rel=1e-6)
    scaling = data["scaling"]
    assert scaling["n"] == [375, 750, 1500, 3000]
    assert len(scaling["loss_grad"]) == len(scaling["fit"]) == 4
    assert not list(folder.glob(".fastlr-bench-*"))  # no temporary file left behind


def test_bench_plot_is_a_png(bench_run):
    folder, result = bench_run
    assert result.returncode == 0, result.stderr
    png = folder / "out.png"
    assert png.exists() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("args, message", [
    (["--n", "-5"], "--n must be an integer >= 16"),
    (["--n", "many"], "invalid int value"),
    (["--repeat", "0"], "--repeat must be an integer >= 1"),
    (["--classes", "1"], "--classes must be an integer >= 2"),
    (["--dtype", "float16"], "invalid choice"),
    (["--peers", "fastlr-lbfgs,sklearn-saga"], "unknown peer 'sklearn-saga'"),
    (["--backends", "cpu,gpu"], "unknown backend 'gpu'"),
    (["--classes", "3", "--peers", "sklearn-sgd"], "binary only"),
    (["--json", "/nonexistent-folder/out.json"], "does not exist"),
    (["--plot", "/nonexistent-folder/out.png"], "does not exist"),
    (["--json", "."], "is a directory"),
], ids=["negative-n", "non-integer-n", "zero-repeat", "one-class", "bad-dtype", "unknown-peer",
        "unknown-backend", "sgd-multiclass", "json-folder-missing", "plot-folder-missing",
        "json-is-directory"])
def test_user_errors_exit_2_with_one_line(args, message, tmp_path):
    result = run_cli("--n", "3000", "--d", "4", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("fastlr bench: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def run_without(module, tmp_path, *args):
    """Run ``fastlr bench ARGS`` where ``import MODULE`` fails (a fake package that raises
    ImportError comes first on the path), as if MODULE were not installed."""
    fake = tmp_path / "fake" / module
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(f"raise ImportError('no {module} here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path / "fake")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([sys.executable, "-m", "fastlr.cli", "bench", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)


def test_plot_without_matplotlib_exits_2(tmp_path):
    result = run_without("matplotlib", tmp_path, "--n", "3000", "--plot", "out.png")
    assert result.returncode == 2
    assert result.stderr.strip() == ("fastlr bench: error: --plot needs matplotlib, which is not "
                                     "installed (pip install matplotlib, or fastlr[bench])")
    assert not (tmp_path / "out.png").exists()


def test_peer_not_installed(tmp_path):
    result = run_without("torch", tmp_path, "--n", "3000", "--peers", "torch-sgd")
    assert result.returncode == 2
    assert result.stderr.strip() == ("fastlr bench: error: peer 'torch-sgd' needs torch, which "
                                     "is not installed: pip install torch, or fastlr[torch]")
    # with --peers all it is skipped, and said so
    result = run_without("torch", tmp_path, "--n", "3000", "--d", "4", "--repeat", "1",
                         "--peers", "all", "--backends", "cpu")
    assert result.returncode == 0, result.stderr
    assert "skipped torch-lbfgs: torch not installed" in result.stdout
    assert "fit torch-sgd" not in result.stdout


def test_run_bench_in_process_multiclass_all_peers():
    result = bench.run_bench(n=2000, d=4, classes=3, backends="cpu", peers="all", repeat=1)
    names = [p["name"] for p in result["peers"]]
    assert names[0] == "fastlr-lbfgs"
    assert "sklearn-sgd" not in names
    assert {"name": "sklearn-sgd",
            "reason": "binary only (SGDClassifier is one-vs-rest for several classes)"} \
        in result["skipped"]
    assert result["scaling"] is None
    for p in result["peers"]:
        assert np.array(p["coef"]).shape == (3, 4)
    table = bench.format_table(result)
    assert "skipped sklearn-sgd" in table


def test_make_problem_is_deterministic_standardised_and_not_separable():
    X, y = bench.make_problem(5000, 6, classes=2, dtype="float32", seed=4)
    X2, y2 = bench.make_problem(5000, 6, classes=2, dtype="float32", seed=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert X.dtype == np.float32 and X.flags.c_contiguous and y.dtype == np.int32
    np.testing.assert_allclose(X.mean(axis=0, dtype=np.float64), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0, dtype=np.float64), 1, atol=1e-4)
    assert 0.2 < y.mean() < 0.8
    from sklearn.linear_model import LogisticRegression
    accuracy = LogisticRegression(C=1e6).fit(X, y).score(X, y)
    assert 0.6 < accuracy < 0.97  # learnable, but the classes overlap
    X3, y3 = bench.make_problem(5000, 6, classes=4, seed=4)
    assert set(np.unique(y3)) == {0, 1, 2, 3}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_read_sum(dtype):
    X, _ = bench.make_problem(5000, 7, dtype=dtype, seed=2)
    assert read_sum(X) == pytest.approx(np.sum(X, dtype=np.float64), rel=1e-9, abs=1e-6)
    assert read_sum(X[:1]) == pytest.approx(np.sum(X[:1], dtype=np.float64), rel=1e-9, abs=1e-6)


def test_write_json_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    bench.write_json({"a": 1}, str(path))
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        bench.write_json({"a": Unserialisable()}, str(path))
    assert json.loads(path.read_text()) == {"a": 1}  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
