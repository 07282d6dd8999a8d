"""``fastlr info``: versions, Numba's threading layer and threads, CUDA devices."""

import os
import sys

import numpy as np


def add_parser(sub):
    sub.add_parser("info", help="versions, Numba threading layer and threads, CUDA devices")


def run(args=None, file=sys.stdout):
    """``fastlr info``: versions, Numba's threading layer and threads, CUDA devices."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import numba

    def package_version(name, module=None):
        try:
            return version(name)
        except PackageNotFoundError:
            return getattr(module, "__version__", "not installed")

    import sklearn
    print(f"fastlr       {package_version('fastlr')}", file=file)
    print(f"python       {platform.python_version()} ({platform.machine()})", file=file)
    print(f"numba        {numba.__version__}", file=file)
    print(f"numpy        {np.__version__}", file=file)
    print(f"scikit-learn {sklearn.__version__}", file=file)

    from .._threads import describe
    try:
        threads = describe()
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        print(f"threading    unavailable ({' '.join(str(exc).split())[:200]})", file=file)
    else:
        print(f"threading    layer {threads['layer']}, {threads['numba_threads']} threads "
              f"(NUMBA_NUM_THREADS={threads['numba_num_threads']}, {os.cpu_count()} CPUs); "
              f"TBB: {threads['tbb_preload']}", file=file)
        for pool in threads["pools"]:
            # "blas openblas 0.3.30", "openmp (libgomp)": no repeated word, no "None" version
            name = pool["user_api"]
            if pool["internal_api"] and pool["internal_api"] != pool["user_api"]:
                name += f" {pool['internal_api']}"
            if pool["version"]:
                name += f" {pool['version']}"
            print(f"thread pool  {name}: {pool['num_threads']} threads ({pool['filepath']}); "
                  "limited to 1 while fastlr runs unless it is Numba's own OpenMP", file=file)
    from ..backends import auto_backend
    from ..backends.cpu import SOFTMAX_BLAS, numba_target_features
    from ..kernels.cpu import SOFTMAX_BLAS_MIN_CLASSES
    vector = sorted(numba_target_features() & {"avx2", "fma", "avx512f"}) or ["none of avx2, fma, avx512f"]
    from llvmlite import binding
    print(f"cpu          {platform.machine()} ({binding.get_host_cpu_name()}); Numba compiles for "
          f"{', '.join(vector)}; softmax gradient from {SOFTMAX_BLAS_MIN_CLASSES} classes: "
          f"{'BLAS block products' if SOFTMAX_BLAS else 'register tiles'}", file=file)
    name, reason = auto_backend()
    print(f"backend      auto -> {name} ({reason})", file=file)
    try:
        from numba import cuda
    except ImportError as exc:
        print(f"cuda         not available: numba.cuda cannot be imported ({exc})", file=file)
        return
    if numba.config.ENABLE_CUDASIM:
        print("cuda         numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): no GPU is used", file=file)
        return
    try:
        available = cuda.is_available()
    except Exception:  # noqa: BLE001
        available = False
    if not available:
        reason = "no CUDA driver or GPU found"
        try:
            from numba.cuda.cudadrv import driver
            driver.driver.get_device_count()
        except Exception as exc:  # noqa: BLE001
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = " ".join(lines[:2]) if lines else reason
        print(f"cuda         not available: {reason}", file=file)
        return
    for gpu in cuda.gpus:
        with gpu:
            device = cuda.get_current_device()
            name = device.name.decode() if isinstance(device.name, bytes) else device.name
            cc = ".".join(map(str, device.compute_capability))
            print(f"cuda         device {device.id}: {name} (compute capability {cc})", file=file)
