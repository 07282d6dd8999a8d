"""Compiled kernels: the loops over X, one module per kind of hardware and data layout.

Holds: ``cpu`` (Numba, parallel, dense X), ``cpu_sparse`` (Numba, CSR X) and
``cuda`` (numba-cuda, imported only when the cuda backend runs). Each computes
the same sums from the per-sample math of :mod:`fastlr._math`.
May import: NumPy, Numba (numba-cuda for ``cuda``) and :mod:`fastlr._math`
only; the backends in :mod:`fastlr.backends` call them.
"""
