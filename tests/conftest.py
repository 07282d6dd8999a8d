import glob
import os
import sys

from hypothesis import HealthCheck, settings

# the oracles in tests/reference.py are imported as a plain module
sys.path.insert(0, os.path.dirname(__file__))

# Without an NVIDIA GPU, the cuda backend's kernels run under numba's CUDA
# simulator (tests/test_cuda.py keeps its shapes tiny there). With one, the same
# tests run on the device. Set before anything imports numba, which reads it once.
if "NUMBA_ENABLE_CUDASIM" not in os.environ and not glob.glob("/dev/nvidia[0-9]*"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

# Hypothesis: a small, reproducible budget in the default run ("ci": derandomised, so
# every run tries the same examples, and no example database is written); set
# FASTLR_FUZZ_EXAMPLES=N to run N random examples per property test instead ("fuzz").
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
             HealthCheck.function_scoped_fixture]
settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=_SUPPRESS)
settings.register_profile("fuzz", deadline=None, derandomize=False, print_blob=True,
                          suppress_health_check=_SUPPRESS)
settings.load_profile("fuzz" if os.environ.get("FASTLR_FUZZ_EXAMPLES") else "ci")
