"""Compiled kernels: ``cpu`` (Numba, parallel) for now; each module implements the same loops."""
