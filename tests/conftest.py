import glob
import os
import sys

# the oracles in tests/reference.py are imported as a plain module
sys.path.insert(0, os.path.dirname(__file__))

# Without an NVIDIA GPU, the cuda backend's kernels run under numba's CUDA
# simulator (tests/test_cuda.py keeps its shapes tiny there). With one, the same
# tests run on the device. Set before anything imports numba, which reads it once.
if "NUMBA_ENABLE_CUDASIM" not in os.environ and not glob.glob("/dev/nvidia[0-9]*"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
