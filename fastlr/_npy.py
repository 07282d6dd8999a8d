"""Reading a ``.npy`` header without reading the array (for size checks before any allocation).

May import: NumPy only.
"""

import numpy as np


def read_npy_header(f):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` header at ``f``'s position.

    Leaves ``f`` at the first byte of the data. Raises ValueError for a format
    version other than 1.0 and 2.0 (and whatever NumPy raises for a bad header).
    """
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"unsupported .npy format version {version}")
