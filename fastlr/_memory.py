"""Memory a fit needs for its model and solver state, checked before anything is allocated.

A sparse data set's width is whatever its largest column index says: one
mistyped or hashed-to-2^33 index in an svmlight file makes a model of billions
of coefficients, and the fit then dies deep inside NumPy or scipy with an
allocation error (or, worse, swaps the machine to a halt). :func:`check_fit_memory`
turns that into one clear error up front, naming the width that caused it.

The estimate counts only what grows with ``k · (d + 1)`` (the coefficients),
not X itself, which the caller already holds:

* the solver's state, in vectors of ``k · (d + 1)`` float64: L-BFGS keeps
  ``2 m`` correction pairs (``m`` from :func:`lbfgs_pairs`: 10 to 100) plus
  about eight working vectors (iterate, gradient, direction, trial point and
  its gradient, the cached evaluation in both coordinates); Newton-Cholesky
  about eight and its Hessians (:func:`hessian_groups` partials and
  :data:`NEWTON_CHOLESKY_HESSIANS` more); Newton-CG about eight (iterate, gradient, CG's residual,
  direction, Hessian-vector product and the line search's trial point); gd and
  sgd about four;
* the kernels' partial sums: at most :data:`fastlr.kernels.cpu_sparse.MAX_BLOCKS`
  ``k × (d + 2)`` float64 blocks for sparse X (dense X's per-chunk partials
  are 1/2048 of X and are left out).

Imports only the standard library.
"""

import os

#: Vectors of k · (d + 1) float64 each solver holds besides L-BFGS's correction pairs
#: (see the module docstring).
SOLVER_STATE_VECTORS = {"lbfgs": 8, "newton-cholesky": 8, "newton-cg": 8, "gd": 4, "sgd": 4}

#: Partial Hessians of one newton-cholesky pass over dense X (one per group of consecutive
#: chunks of rows; fastlr.kernels.cpu_hessian), at least this many groups where there are as
#: many chunks...
HESSIAN_GROUPS = 8

#: ...and up to this many where the partials take at most SMALL_HESSIAN_PARTIALS_BYTES (small
#: Hessians): eight groups of a 20k-row X (10 chunks) were 5 groups of 2 chunks, 3 for one
#: thread and 2 for the other; one group per chunk took the 20k x 20 pass 1.09 -> 0.90 ms.
MAX_SMALL_HESSIAN_GROUPS = 64
SMALL_HESSIAN_PARTIALS_BYTES = 4 * 2**20

#: Hessians newton-cholesky holds besides the kernels' partials: their total, its reordered
#: copy and the Cholesky factor.
NEWTON_CHOLESKY_HESSIANS = 3


def hessian_groups(n_params):
    """Most partial Hessians of ``n_params`` squared float64 one newton-cholesky pass keeps.

    :data:`HESSIAN_GROUPS`, or more (up to :data:`MAX_SMALL_HESSIAN_GROUPS`) while they fit in
    :data:`SMALL_HESSIAN_PARTIALS_BYTES`. A function of the model's size only, so that the
    kernels' summation order does not depend on the thread count. Plain integer arithmetic:
    the kernels compile it with Numba.
    """
    fit = SMALL_HESSIAN_PARTIALS_BYTES // (8 * n_params * n_params)
    return max(HESSIAN_GROUPS, min(MAX_SMALL_HESSIAN_GROUPS, fit))

#: Bytes L-BFGS's correction pairs may take before fewer than :data:`MAX_PAIRS` are kept.
PAIRS_BYTES = 64 * 2**20

#: Fewest and most correction pairs L-BFGS keeps (:func:`lbfgs_pairs`).
MIN_PAIRS, MAX_PAIRS = 10, 100

#: Partial-sum blocks of the sparse kernels (fastlr.kernels.cpu_sparse.MAX_BLOCKS).
PARTIAL_SUM_BLOCKS = 16


class ModelTooLarge(ValueError, MemoryError):
    """The model's coefficients and the solver's state would not fit in memory.

    A :class:`ValueError` (the cause is almost always the data's width: a
    column index far beyond the real number of features) and a
    :class:`MemoryError` (what the allocation itself would have raised).
    """


def available_memory():
    """Bytes of memory available to a new allocation, or ``None`` when unknown.

    Linux's ``MemAvailable`` from ``/proc/meminfo`` (free memory plus what the
    kernel can reclaim without swapping); elsewhere the free physical pages
    from ``os.sysconf``; ``None`` where neither exists.
    """
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def lbfgs_pairs(n_params):
    """Correction pairs ``m`` fastlr's L-BFGS keeps for ``n_params`` variables.

    As many as fit in :data:`PAIRS_BYTES` (each pair is two float64 vectors
    of ``n_params``), at least :data:`MIN_PAIRS` (scipy's and scikit-learn's
    fixed ``maxcor``) and at most :data:`MAX_PAIRS`. A longer memory is a
    better model of the Hessian: on Fashion-MNIST (7,850 variables) L-BFGS
    reached scikit-learn-intelex's ``max_iter=100`` objective in 122
    iterations with 10 pairs, 90 with 30 and 67 with 100 (no fewer with
    200); on raw breast cancer (31 variables) it converged in 384, 151 and 87.
    The pairs cost ``4 m n_params`` flops per iteration, small next to a
    gradient's pass over X. Beyond 41,943 variables fewer than 100 pairs fit;
    from 419,431 on (the sparse ctr and 20-class text problems) the memory
    stays at 10 pairs, as before.

    Parameters
    ----------
    n_params : int
        Variables of the problem, ``k · (d + 1)``.

    Returns
    -------
    int
        ``clip(PAIRS_BYTES // (16 n_params), MIN_PAIRS, MAX_PAIRS)``.
    """
    return int(min(MAX_PAIRS, max(MIN_PAIRS, PAIRS_BYTES // (16 * max(1, int(n_params))))))


def fit_state_bytes(n_features, n_outputs, solver):
    """Bytes of float64 state a fit of ``n_outputs × n_features`` coefficients holds.

    Parameters
    ----------
    n_features : int
        d, the number of columns of X.
    n_outputs : int
        k: 1 for a binary model, the number of classes otherwise.
    solver : str
        One of ``SOLVER_STATE_VECTORS``' keys.

    Returns
    -------
    int
        ``8 · k · (d + 2) · (solver vectors + partial-sum blocks)``, with
        ``2 m`` more vectors for L-BFGS's pairs (:func:`lbfgs_pairs`) and
        :func:`hessian_groups` + :data:`NEWTON_CHOLESKY_HESSIANS` ``(k (d + 1))²``
        matrices for newton-cholesky; an
        estimate (module docstring), not an exact accounting.
    """
    vectors = SOLVER_STATE_VECTORS.get(solver, max(SOLVER_STATE_VECTORS.values()))
    n_params = int(n_outputs) * (int(n_features) + 1)
    if solver == "lbfgs" or solver not in SOLVER_STATE_VECTORS:
        vectors += 2 * lbfgs_pairs(n_params)
    hessians = (8 * (hessian_groups(n_params) + NEWTON_CHOLESKY_HESSIANS) * n_params ** 2
                if solver == "newton-cholesky" else 0)
    return 8 * int(n_outputs) * (int(n_features) + 2) * (vectors + PARTIAL_SUM_BLOCKS) + hessians


def check_fit_memory(n_features, n_outputs, solver, available=None):
    """Raise :class:`ModelTooLarge` when a fit's state cannot fit in memory.

    Parameters
    ----------
    n_features, n_outputs, solver
        As :func:`fit_state_bytes`.
    available : int, optional
        Bytes available; by default :func:`available_memory` (no check when
        that is unknown).

    Raises
    ------
    ModelTooLarge
        When :func:`fit_state_bytes` exceeds ``available``. The message gives
        the width, both sizes, and the usual causes.
    """
    if available is None:
        available = available_memory()
    if available is None:
        return
    need = fit_state_bytes(n_features, n_outputs, solver)
    if need <= available:
        return
    raise ModelTooLarge(
        f"X has {n_features:,} features (columns): a model of {n_outputs} x {n_features:,} "
        f"coefficients needs about {_gib(need)} for the state and partial sums of solver "
        f"{solver!r}, "
        f"more than the {_gib(available)} of memory available. If X came from an svmlight/libsvm "
        "file, its largest feature index sets the width: check that index; hashed "
        "features need a smaller hash space.")


def _gib(n_bytes):
    return f"{n_bytes / 2**30:,.1f} GiB"


__all__ = ["ModelTooLarge", "available_memory", "check_fit_memory", "fit_state_bytes"]
