"""``fastlr bench``: how far fastlr is from the hardware limit and from its peers, here.

On one generated problem (:func:`make_problem`) it measures, as medians of
``repeat`` runs after one untimed warm-up:

* ``read``: one parallel read of X (:func:`fastlr.kernels.cpu.read_sum`), the
  floor for any kernel that reads X once;
* ``loss_grad``: :func:`fastlr.loss_grad` per backend (and the backend's
  primitive alone, what the solvers call), in GB/s of X and as a fraction of
  the read's speed (1.0 = at the read-bandwidth limit);
* ``peers``: the fit of every requested peer (:mod:`fastlr.peers`) on the same
  objective, with its final objective, iterations and the speed-up of
  fastlr-lbfgs over it;
* ``scaling`` (only when a plot is asked for): the cpu backend's ``loss_grad``
  primitive and the fastlr-lbfgs fit over the first n/8, n/4, n/2 and n rows.

:func:`run_bench` returns everything as one JSON-serialisable dict (keys
documented there); :func:`format_table` prints it; :func:`write_json` and
:func:`write_plot` save it.
"""

import json
import os
import platform
import time

import numpy as np

from ._atomic import atomic_write
from .backends import BACKEND_NAMES
from .peers import PEER_NAMES, PeerUnavailable, _import, available_peers, fit_peer, objective

#: Peer against which every other peer's speed-up is given; always run.
REFERENCE_PEER = "fastlr-lbfgs"

#: Backends of ``loss_grad`` that ``--backends`` accepts: every concrete one of the registry.
BENCH_BACKENDS = tuple(name for name in BACKEND_NAMES if name not in ("auto", "dask"))

#: Fractions of n at which the scaling panel is measured.
SCALING_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1)

#: Keys of the dict that :func:`run_bench` returns (and ``--json`` writes).
RESULT_KEYS = ("config", "machine", "read", "loss_grad", "peers", "skipped", "scaling")


# -- data -----------------------------------------------------------------------------------

def make_problem(n, d, classes=2, dtype="float32", seed=0, chunk=1 << 16):
    """A deterministic, non-separable classification problem.

    Features are correlated normals (a fixed random mixing), then standardised
    column by column. Labels are drawn from the logistic model itself: ``y =
    [x·w* + b* + ε > 0]`` with logistic noise ``ε`` for two classes, ``y =
    argmax_c (x·w*_c + b*_c + g_c)`` with Gumbel noise for more (a draw from the
    softmax), so the classes overlap and the optimum is finite.

    Returns
    -------
    X : ndarray of shape (n, d), ``dtype``, C-contiguous
    y : ndarray of shape (n,), int32 codes 0..classes-1
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    mix = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    X = np.empty((n, d), dtype=dtype)
    total = np.zeros(d)
    total_sq = np.zeros(d)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), d)) @ mix
        total += block.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", block, block)
        X[start:start + chunk] = block
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean * mean, 1e-12))
    k = 1 if classes == 2 else classes
    W = (2.0 if k == 1 else 1.5) * rng.standard_normal((k, d)) / np.sqrt(d)
    b = 0.3 * rng.standard_normal(k)
    y = np.empty(n, dtype=np.int32)
    for start in range(0, n, chunk):
        block = (X[start:start + chunk].astype(np.float64) - mean) / std
        X[start:start + chunk] = block
        Z = block @ W.T + b
        if k == 1:
            y[start:start + chunk] = Z[:, 0] + rng.logistic(size=Z.shape[0]) > 0
        else:
            y[start:start + chunk] = np.argmax(Z + rng.gumbel(size=Z.shape), axis=1)
    return X, y


# -- machine --------------------------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions():
    """Installed versions of the libraries that matter here (None when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"fastlr": __version__, "python": platform.python_version()}
    for dist in ("numpy", "numba", "scipy", "scikit-learn", "scikit-learn-intelex", "torch",
                 "tbb", "matplotlib"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _thread_pools():
    """BLAS / OpenMP pools loaded in this process (threadpoolctl), each with its thread count."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("user_api", "internal_api", "num_threads", "version", "threading_layer")
    return [{key: pool.get(key) for key in keys if key in pool} for pool in threadpool_info()]


def machine_info():
    """CPU model, cores, threads, Numba threading layer and library versions."""
    import numba

    from .kernels import cpu

    cpu.parallel_guard()  # runs a parallel kernel once, so that the threading layer is known
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "numba_threads": numba.get_num_threads(),
        "threading_layer": layer,
        "thread_pools": _thread_pools(),
        "versions": _versions(),
    }


# -- timing ---------------------------------------------------------------------------------

def _median_time(func, repeat):
    """(median seconds, last result) of ``repeat`` calls of ``func`` after one warm-up call."""
    func()
    times = []
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def _start_coef(d, k, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((k, d)) / np.sqrt(d), 0.1 * rng.standard_normal(k)


def _measure_read(X, repeat):
    from .kernels import cpu

    def read():
        with cpu.parallel_guard():
            return cpu.read_sum(X)

    seconds, _ = _median_time(read, repeat)
    return {"time": seconds, "gbps": X.nbytes / seconds / 1e9}


def _measure_loss_grad(X, y, k, backend, repeat, read_time):
    import fastlr
    from .backends import get_backend

    W, b = _start_coef(X.shape[1], k)
    engine = get_backend(backend)
    data = engine.put(X, y, None)
    api_time, _ = _median_time(lambda: fastlr.loss_grad(X, y, W, b, backend=backend), repeat)
    kernel_time, _ = _median_time(lambda: engine.loss_grad(data, W, b, 0), repeat)
    return {
        "backend": backend,
        "time": api_time,
        "gbps": X.nbytes / api_time / 1e9,
        "fraction_of_read": read_time / api_time,
        "kernel_time": kernel_time,
        "kernel_gbps": X.nbytes / kernel_time / 1e9,
        "kernel_fraction_of_read": read_time / kernel_time,
    }


def _fit_options(config):
    return {key: config[key] for key in ("C", "max_iter", "tol", "batch_size", "epochs")} | {
        "random_state": config["seed"]}


def _measure_peer(name, X, y, config):
    options = _fit_options(config)
    warm = min(X.shape[0], 4096)
    if np.unique(y[:warm]).shape[0] < config["classes"]:
        warm = X.shape[0]  # every class must be present
    fit_peer(name, X[:warm], y[:warm], **options)  # imports, JIT cache loads, first-call costs
    results = [fit_peer(name, X, y, **options) for _ in range(config["repeat"])]
    times = [r.runtime for r in results]
    last = results[-1]
    return {
        "name": name,
        "runtime": float(np.median(times)),
        "times": times,
        "objective": objective(X, y, last.coef, last.intercept, config["C"]),
        "n_iter": last.n_iter,
        "coef": last.coef.tolist(),
        "intercept": last.intercept.tolist(),
    }


def _measure_scaling(X, y, k, config):
    from .backends import get_backend

    W, b = _start_coef(X.shape[1], k)
    engine = get_backend("cpu")
    options = _fit_options(config)
    n = X.shape[0]
    sizes, grad_times, fit_times, fit_iters = [], [], [], []
    for fraction in SCALING_FRACTIONS:
        m = max(1, int(round(n * fraction)))
        Xm, ym = X[:m], y[:m]  # leading rows of C-contiguous X: no copy
        if np.unique(ym).shape[0] < max(k, 2):
            continue
        data = engine.put(Xm, ym, None)
        seconds, _ = _median_time(lambda: engine.loss_grad(data, W, b, 0), config["repeat"])
        fit_peer(REFERENCE_PEER, Xm, ym, **options)  # warm-up
        fits = [fit_peer(REFERENCE_PEER, Xm, ym, **options) for _ in range(config["repeat"])]
        sizes.append(m)
        grad_times.append(seconds)
        fit_times.append(float(np.median([f.runtime for f in fits])))
        fit_iters.append(fits[-1].n_iter)

    def slope(times):
        if len(sizes) < 2:
            return None
        return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])

    return {
        "n": sizes,
        "loss_grad": grad_times,
        "fit": fit_times,
        "fit_n_iter": fit_iters,
        "slope_loss_grad": slope(grad_times),
        "slope_fit": slope(fit_times),
    }


# -- the run --------------------------------------------------------------------------------

def resolve_peers(spec, classes=2):
    """Peers to run for ``--peers``, and the ones left out with the reason.

    ``spec`` is ``"all"`` (every peer whose library is installed and that can
    fit this problem) or a comma-separated list of names (each must be known,
    installed and able to fit the problem). fastlr-lbfgs, the reference of the
    speed-ups, is always run (first).

    Returns
    -------
    peers : list of str
    skipped : list of dict with keys "name" and "reason"

    Raises
    ------
    ValueError
        An unknown, uninstalled or unsuitable peer named explicitly.
    """
    def unsuitable(name):
        if name == "sklearn-sgd" and classes > 2:
            return "binary only (SGDClassifier is one-vs-rest for several classes)"
        if name == "glum" and classes > 2:
            return "binary only (glum has no softmax model)"
        return None

    skipped = []
    if spec.strip() == "all":
        installed = set(available_peers())
        peers = []
        for name in PEER_NAMES:
            reason = unsuitable(name)
            if name not in installed:
                reason = f"{name.split('-', 1)[0]} not installed"
            if reason:
                skipped.append({"name": name, "reason": reason})
            else:
                peers.append(name)
    else:
        peers = []
        for name in (part.strip() for part in spec.split(",")):
            if not name:
                continue
            if name not in PEER_NAMES:
                raise ValueError(f"unknown peer {name!r}; expected 'all' or some of "
                                 f"{', '.join(PEER_NAMES)}")
            try:
                _import(name)  # only the libraries named here are imported
            except PeerUnavailable as exc:
                raise ValueError(str(exc)) from None
            if unsuitable(name):
                raise ValueError(f"peer {name!r} cannot fit {classes} classes: {unsuitable(name)}")
            if name not in peers:
                peers.append(name)
    if REFERENCE_PEER in peers:
        peers.remove(REFERENCE_PEER)
    return [REFERENCE_PEER] + peers, skipped


def resolve_backends(spec):
    """Backends for ``--backends`` (comma-separated, of :data:`BENCH_BACKENDS`)."""
    out = []
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        if name not in BENCH_BACKENDS:
            raise ValueError(
                f"unknown backend {name!r}; expected some of {', '.join(BENCH_BACKENDS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("--backends names no backend")
    return out


def run_bench(n=1_000_000, d=64, dtype="float32", classes=2, backends=("cpu", "numpy"),
              peers="all", repeat=3, C=1.0, max_iter=100, tol=1e-4, batch_size=256, epochs=1,
              seed=0, scaling=False, progress=None):
    """Run the benchmark; return its results as a JSON-serialisable dict.

    Parameters
    ----------
    n, d, dtype, classes, seed
        The problem (:func:`make_problem`).
    backends : sequence of str or comma-separated str
    peers : "all", comma-separated str or sequence of str (see :func:`resolve_peers`)
    repeat : int
        Timed runs of each measurement (the median is reported).
    C, max_iter, tol, batch_size, epochs
        Given to every peer (:func:`fastlr.peers.fit_peer`).
    scaling : bool
        Also measure the time-vs-n series (needed by :func:`write_plot`).
    progress : callable(str) or None
        Told what is being measured.

    Returns
    -------
    dict with keys
        ``config`` (the parameters above, the peers and backends resolved),
        ``machine`` (:func:`machine_info`),
        ``read`` (``time`` s, ``gbps``),
        ``loss_grad`` (list, one per backend: ``backend``, ``time``, ``gbps``,
        ``fraction_of_read`` of the public call, and the same of the backend
        primitive as ``kernel_time``, ``kernel_gbps``, ``kernel_fraction_of_read``),
        ``peers`` (list: ``name``, ``runtime`` (median s), ``times``, ``objective``,
        ``gap`` (relative to the lowest objective), ``n_iter``, ``speedup``
        (peer runtime / fastlr-lbfgs runtime), ``coef``, ``intercept``),
        ``skipped`` (list of ``name``, ``reason``),
        ``scaling`` (``None``, or ``n``, ``loss_grad`` (the cpu backend primitive's
        times), ``fit`` (fastlr-lbfgs), ``fit_n_iter``, ``slope_loss_grad``,
        ``slope_fit``: log-log slopes of time against n, 1 = linear).
    """
    say = progress or (lambda message: None)
    if not (isinstance(n, (int, np.integer)) and n >= 16):
        raise ValueError(f"--n must be an integer >= 16, got {n}")
    if not (isinstance(d, (int, np.integer)) and d >= 1):
        raise ValueError(f"--d must be an integer >= 1, got {d}")
    if not (isinstance(classes, (int, np.integer)) and classes >= 2):
        raise ValueError(f"--classes must be an integer >= 2, got {classes}")
    if classes > n:
        raise ValueError(f"--classes ({classes}) must not exceed --n ({n})")
    if not (isinstance(repeat, (int, np.integer)) and repeat >= 1):
        raise ValueError(f"--repeat must be an integer >= 1, got {repeat}")
    if str(dtype) not in ("float32", "float64"):
        raise ValueError(f"--dtype must be float32 or float64, got {dtype!r}")
    backends = resolve_backends(backends if isinstance(backends, str) else ",".join(backends))
    peer_list, skipped = resolve_peers(peers if isinstance(peers, str) else ",".join(peers),
                                       classes)
    config = {
        "n": int(n), "d": int(d), "dtype": str(dtype), "classes": int(classes), "seed": int(seed),
        "repeat": int(repeat), "C": float(C), "max_iter": int(max_iter), "tol": float(tol),
        "batch_size": int(batch_size), "epochs": int(epochs),
        "backends": backends, "peers": peer_list,
    }

    say(f"generating {n:,} x {d} {dtype}, {classes} classes")
    X, y = make_problem(n, d, classes, dtype, seed)
    k = 1 if classes == 2 else classes

    say("parallel read of X")
    read = _measure_read(X, repeat)
    grads = []
    for backend in backends:
        say(f"loss_grad, {backend} backend")
        grads.append(_measure_loss_grad(X, y, k, backend, repeat, read["time"]))
    fits = []
    for name in peer_list:
        say(f"fit {name}")
        try:
            fits.append(_measure_peer(name, X, y, config))
        except PeerUnavailable as exc:  # imported at start, failed later: report, go on
            skipped.append({"name": name, "reason": str(exc)})
    best = min(fit["objective"] for fit in fits)
    reference = next(fit for fit in fits if fit["name"] == REFERENCE_PEER)
    for fit in fits:
        fit["gap"] = (fit["objective"] - best) / abs(best)
        fit["speedup"] = fit["runtime"] / reference["runtime"]
    series = None
    if scaling:
        say("time vs n")
        series = _measure_scaling(X, y, k, config)
    machine = machine_info()  # last: the thread pools that the peers loaded are listed too
    return {"config": config, "machine": machine, "read": read, "loss_grad": grads,
            "peers": fits, "skipped": skipped, "scaling": series}


# -- output ---------------------------------------------------------------------------------

def _seconds(t):
    if t >= 1:
        return f"{t:.3f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3f} ms"
    return f"{t * 1e6:.1f} us"


def format_table(result):
    """The results as text: a header, one aligned table, the skipped peers and the scaling."""
    config, machine = result["config"], result["machine"]
    lines = [
        f"fastlr bench: {config['n']:,} x {config['d']} {config['dtype']}, "
        f"{config['classes']} classes, C={config['C']:g}, max_iter={config['max_iter']}, "
        f"tol={config['tol']:g}; median of {config['repeat']} run(s)",
        f"machine: {machine['cpu']}, {machine['cpus_usable']} cores usable, "
        f"numba {machine['versions']['numba']} ({machine['threading_layer']}, "
        f"{machine['numba_threads']} threads)",
        "",
    ]
    header = ("what", "time", "GB/s", "of read", "objective", "gap", "iters", "speed-up")
    rows = []
    read = result["read"]
    rows.append(("read X (parallel sum, the floor)", _seconds(read["time"]),
                 f"{read['gbps']:.1f}", "100%", "", "", "", ""))
    for g in result["loss_grad"]:
        rows.append((f"loss_grad {g['backend']}", _seconds(g["time"]), f"{g['gbps']:.1f}",
                     f"{100 * g['fraction_of_read']:.0f}%", "", "", "", ""))
        rows.append((f"  {g['backend']} backend primitive", _seconds(g["kernel_time"]),
                     f"{g['kernel_gbps']:.1f}", f"{100 * g['kernel_fraction_of_read']:.0f}%",
                     "", "", "", ""))
    for fit in result["peers"]:
        rows.append((f"fit {fit['name']}", _seconds(fit["runtime"]), "", "",
                     f"{fit['objective']:.10g}", f"{fit['gap']:.1e}", str(fit["n_iter"]),
                     f"{fit['speedup']:.2f}x"))
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]

    def line(row):
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    lines.append(line(header))
    lines.append("-" * len(line(header)))
    lines.extend(line(row) for row in rows)
    lines.append("")
    lines.append("of read: time of one parallel read of X / time of the call (100% = at the "
                 "read-bandwidth limit).")
    lines.append("objective: C * sum of losses + |W|^2 / 2; gap: relative to the lowest one; "
                 f"speed-up: peer time / {REFERENCE_PEER} time.")
    for skip in result["skipped"]:
        lines.append(f"skipped {skip['name']}: {skip['reason']}")
    scaling = result.get("scaling")
    if scaling and scaling["slope_fit"] is not None:
        sizes = ", ".join(f"{m:,}" for m in scaling["n"])
        lines.append(f"time vs n ({sizes}): log-log slope {scaling['slope_loss_grad']:.2f} for "
                     f"the cpu loss_grad kernel, {scaling['slope_fit']:.2f} for the "
                     f"{REFERENCE_PEER} fit (1 = linear; iterations {scaling['fit_n_iter']})")
    return "\n".join(lines)


def check_writable(path, option):
    """ValueError unless ``path`` can be written (its folder exists and is writable)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a directory")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option} {path!r}: folder {folder!r} is not writable")


def write_json(result, path):
    """Write ``result`` to ``path`` as JSON, atomically (temporary file, then os.replace)."""
    text = json.dumps(result, indent=2, allow_nan=True) + "\n"
    with atomic_write(path, "wb") as f:
        f.write(text.encode())


def require_matplotlib():
    """Import matplotlib with the Agg backend; ImportError with an install hint if missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib, which is not installed "
                          "(pip install matplotlib, or fastlr[bench])") from None
    matplotlib.use("Agg")
    return matplotlib


def write_plot(result, path):
    """Two panels: fit time per peer (bars) and time vs n (log-log), saved atomically as PNG."""
    require_matplotlib()
    import matplotlib.pyplot as plt

    config = result["config"]
    fig, (bars, curve) = plt.subplots(1, 2, figsize=(12, 4.8))
    names = [fit["name"] for fit in result["peers"]]
    times = [fit["runtime"] for fit in result["peers"]]
    colors = ["tab:blue" if name.startswith("fastlr") else "tab:gray" for name in names]
    bars.bar(range(len(names)), times, color=colors)
    bars.set_xticks(range(len(names)))
    bars.set_xticklabels(names, rotation=30, ha="right")
    bars.set_yscale("log")
    bars.set_ylabel("fit time (s, median)")
    bars.set_title(f"fit, {config['n']:,} x {config['d']} {config['dtype']}, "
                   f"{config['classes']} classes")
    for i, fit in enumerate(result["peers"]):
        bars.annotate(f"{fit['speedup']:.2g}x", (i, fit["runtime"]), ha="center", va="bottom",
                      fontsize=8)

    scaling = result.get("scaling")
    if scaling and scaling["n"]:
        sizes = np.array(scaling["n"], dtype=float)
        for key, label, marker in (("loss_grad", "loss_grad (cpu kernel)", "o"),
                                   ("fit", f"{REFERENCE_PEER} fit", "s")):
            values = np.array(scaling[key])
            curve.plot(sizes, values, marker=marker, label=label)
            # Linear growth through the last point, for reference.
            curve.plot(sizes, values[-1] * sizes / sizes[-1], linestyle=":", color="gray")
        curve.plot([], [], linestyle=":", color="gray", label="linear in n")
        curve.set_xscale("log")
        curve.set_yscale("log")
        curve.legend()
    else:
        curve.text(0.5, 0.5, "no scaling data", ha="center", va="center",
                   transform=curve.transAxes)
    curve.set_xlabel("n (rows)")
    curve.set_ylabel("time (s, median)")
    curve.set_title("time vs n (log-log)")
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
