"""numba-cuda kernels: loss and gradient in one pass over X, one SGD epoch, scores.

The per-sample math is :mod:`fastlr._math`, compiled here with
``cuda.jit(device=True)`` in X's precision; nothing below re-derives a loss.

Layout of the work (see DESIGN.md §3):

* A *group* of ``G`` lanes (a power of two ≤ 32, the whole warp once
  ``d >= 32``) owns one row at a time: lane ``l`` loads the columns
  ``l, l + G, l + 2G, ...`` into registers, so a warp's loads of a
  row-major X are coalesced. The partial dot products are summed across the
  group (warp shuffles on a GPU; shared memory under the simulator, which has
  no shuffles), every lane then computes the loss and its derivative for the
  row, and adds ``dz · x_j`` for its own columns into registers.
* A block of :data:`THREADS` threads owns a fixed run of :data:`ROWS_PER_BLOCK`
  rows; each group writes its sums into its own row of a partial-sum array.
  :func:`sum_rows` then adds those rows in a fixed order (float64), so the
  result does not depend on scheduling: no floating-point atomics anywhere.
  X is read from device memory once per gradient; only ``k (d + 1) + 1``
  numbers come back to the host.
* float32 kernels compute in float32 only: every constant is typed (Numba
  types a bare ``1.0`` as float64), and a test compiles them to PTX and
  checks that no ``.f64`` instruction is left. Only :func:`sum_rows`, which
  touches ``rows × (k (d + 1) + 1)`` numbers instead of X, adds in float64.
* One SGD epoch is one launch of a single persistent block that walks the
  batches in order: no host synchronisation and no launch per batch.

Kernels are specialised (and cached) per dtype, number of features and number
of outputs, so the per-lane register tiles have sizes known at compile time.
"""

import functools
import math

import numpy as np
from numba import config, cuda

from .._math import build_math
from .._penalty import build_penalty

#: True when numba's CUDA simulator stands in for a GPU (NUMBA_ENABLE_CUDASIM=1).
SIMULATOR = bool(config.ENABLE_CUDASIM)

#: Threads per block of the gradient and score kernels. The simulator runs every
#: thread as a Python thread, so it gets small blocks.
THREADS = 32 if SIMULATOR else 256

#: Threads of the one block that runs an SGD epoch.
SGD_THREADS = 32 if SIMULATOR else 1024

#: Rows per block of the gradient kernel: fixed, so the summation order is too.
ROWS_PER_BLOCK = 64 if SIMULATOR else 4096

#: Rows of partial sums added per thread in one pass of :func:`_sum_rows_kernel`.
SUM_SEGMENT = 32

_FULL_MASK = 0xFFFFFFFF


def group_shape(n_features):
    """``(G, cols)``: lanes per row and columns per lane for ``n_features`` columns."""
    G = 1
    while G < min(n_features, 32):
        G *= 2
    return G, -(-n_features // G)


@functools.lru_cache(maxsize=None)
def _math_for(dtype):
    return build_math(cuda.jit(device=True), np.dtype(dtype).type)


@functools.lru_cache(maxsize=None)
def _penalty_for(dtype):
    return build_penalty(cuda.jit(device=True), np.dtype(dtype).type)


@functools.lru_cache(maxsize=None)
def kernels(dtype, n_features, n_outputs, hardware=not SIMULATOR):
    """Compile-on-first-use kernels for X of ``dtype`` with ``n_features`` columns.

    Parameters
    ----------
    dtype : numpy dtype (float32 or float64)
    n_features : int
    n_outputs : int
        1 for the binary (sigmoid) model, ``k >= 2`` for the softmax model.
    hardware : bool
        True: warp shuffles for the in-group sums (a real GPU). False: the
        shared-memory path the CUDA simulator can run.

    Returns
    -------
    types.SimpleNamespace
        ``partials`` (gradient kernel), ``sgd_epoch`` (one-block epoch kernel),
        ``scores`` (decision function), and the layout constants ``G``,
        ``groups``, ``n_sums``.
    """
    from types import SimpleNamespace

    real = np.dtype(dtype).type
    M = _math_for(np.dtype(dtype))
    d = n_features
    K = n_outputs
    G, cols = group_shape(d)
    groups = THREADS // G
    sgd_groups = SGD_THREADS // G
    n_sums = K * (d + 1) + 1  # per output: d coefficients and the intercept; then the loss
    n_acc = K * cols + K + 1
    zero = real(0.0)
    one = real(1.0)
    binary_loss_dz = M.binary_loss_dz
    softmax_loss_dz = M.softmax_loss_dz
    sgd_update = _penalty_for(np.dtype(dtype)).sgd_update

    def kernel(threads):
        # Launch bounds make the compiler fit the registers of a whole block of `threads`
        # (spilling if it must), so a launch never fails for lack of registers.
        return cuda.jit(launch_bounds=threads) if hardware else cuda.jit

    @cuda.jit(device=True)
    def group_sum(v, red, tid, lane):
        """Sum of ``v`` over the ``G`` lanes of this thread's group, on every lane.

        With shuffles, the butterfly gives every lane the same bits (IEEE
        addition is commutative, and each step adds the same two operands).
        """
        if hardware:
            off = G // 2
            while off > 0:
                v += cuda.shfl_xor_sync(_FULL_MASK, v, off)
                off //= 2
            return v
        red[tid] = v
        cuda.syncthreads()
        off = G // 2
        while off > 0:
            if lane < off:
                red[tid] += red[tid + off]
            cuda.syncthreads()
            off //= 2
        total = red[tid - lane]
        cuda.syncthreads()
        return total

    @cuda.jit(device=True)
    def row_scores(X, i, valid, W, b, xr, zp, red, tid, lane):
        """Load this lane's columns of row ``i`` into ``xr`` and put its K scores in ``zp``.

        Every lane of the group ends with the same ``zp[c] = x_i · W_c + b_c``. A lane
        whose row is not ``valid`` (past the end) loads zeros but still joins the
        group sums, which need every lane.
        """
        for t in range(cols):
            j = lane + G * t
            xr[t] = X[i, j] if (valid and j < d) else zero
        for c in range(K):
            s = zero
            for t in range(cols):
                j = lane + G * t
                if j < d:
                    s += xr[t] * W[c, j]
            zp[c] = group_sum(s, red, tid, lane) + b[c]

    @cuda.jit(device=True)
    def accumulate_rows(X, y, sw, rows, pos0, pos1, n_groups, W, b, loss_id, acc, xr, zp, red):
        """Add the weighted sums of positions ``pos0:pos1`` into this thread's ``acc``.

        Position ``p`` is row ``rows[p]`` when ``rows`` is not empty, row ``p``
        otherwise. Every thread of the block runs the same number of loop
        trips (the simulator's shared-memory sums need the whole block).
        ``acc`` (n_acc,): ``K × cols`` coefficient sums of this lane's
        columns, then ``K`` intercept sums and the loss (meaningful on lane 0).
        """
        tid = cuda.threadIdx.x
        g = tid // G
        lane = tid % G
        weighted = sw.shape[0] > 0
        gathered = rows.shape[0] > 0
        base = pos0
        while base < pos1:
            p = base + g
            valid = p < pos1
            i = 0
            if valid:
                i = rows[p] if gathered else p
            row_scores(X, i, valid, W, b, xr, zp, red, tid, lane)
            if valid:
                s_i = sw[i] if weighted else one
                if K == 1:
                    z = zp[0]
                    loss, dz = binary_loss_dz(loss_id, z, math.exp(-abs(z)), real(y[i]))
                    zp[0] = dz
                else:
                    loss = softmax_loss_dz(loss_id, zp, y[i], zp)  # zp <- d loss / d z
                for c in range(K):
                    gc = s_i * zp[c]
                    for t in range(cols):
                        acc[c * cols + t] += gc * xr[t]
                    acc[K * cols + c] += gc
                acc[K * cols + K] += s_i * loss
            base += n_groups

    @cuda.jit(device=True)
    def store_sums(P, prow, acc, lane):
        """Write this group's sums into row ``prow`` of ``P`` (n_rows, n_sums)."""
        for c in range(K):
            for t in range(cols):
                j = lane + G * t
                if j < d:
                    P[prow, c * (d + 1) + j] = acc[c * cols + t]
            if lane == 0:
                P[prow, c * (d + 1) + d] = acc[K * cols + c]
        if lane == 0:
            P[prow, K * (d + 1)] = acc[K * cols + K]

    @kernel(THREADS)
    def partials(X, y, sw, rows, pos0, pos1, rows_per_block, W, b, loss_id, P):
        """Per-group weighted sums of positions ``pos0:pos1``, ``rows_per_block`` per block.

        ``P`` has shape (n_blocks × groups, n_sums); row ``block × groups + g``
        receives group ``g``'s sums.
        """
        tid = cuda.threadIdx.x
        start = pos0 + cuda.blockIdx.x * rows_per_block
        stop = min(start + rows_per_block, pos1)
        acc = cuda.local.array(n_acc, real)
        xr = cuda.local.array(cols, real)
        zp = cuda.local.array(K, real)
        red = cuda.shared.array(THREADS, real)
        for q in range(n_acc):
            acc[q] = zero
        accumulate_rows(X, y, sw, rows, start, stop, groups, W, b, loss_id, acc, xr, zp, red)
        store_sums(P, cuda.blockIdx.x * groups + tid // G, acc, tid % G)

    @kernel(SGD_THREADS)
    def sgd_epoch(X, y, sw, rows, batch_order, batch_size, W, b, loss_id, alpha,
                  fit_intercept, eta0, power_t, step0, mean_weight, P, W_new, result):
        """One SGD epoch in one block, batch after batch; see ``kernels.cpu.sgd_epoch``.

        ``P`` (sgd_groups, n_sums) and ``W_new`` (K, d + 1) are scratch;
        ``result`` (2,) receives the loss sum and the number of steps taken.
        A step whose loss or coefficients are not finite is not applied, and
        the epoch stops there.
        """
        tid = cuda.threadIdx.x
        lane = tid % G
        n = X.shape[0]
        acc = cuda.local.array(n_acc, real)
        xr = cuda.local.array(cols, real)
        zp = cuda.local.array(K, real)
        red = cuda.shared.array(SGD_THREADS, real)
        bad = cuda.shared.array(1, np.int32)
        loss_total = zero
        n_steps = 0
        for step in range(batch_order.shape[0]):
            start = batch_order[step] * batch_size
            stop = min(start + batch_size, n)
            for q in range(n_acc):
                acc[q] = zero
            if tid == 0:
                bad[0] = 0
            accumulate_rows(X, y, sw, rows, start, stop, sgd_groups, W, b, loss_id, acc, xr, zp, red)
            store_sums(P, tid // G, acc, lane)
            cuda.syncthreads()
            eta = eta0 / math.pow(real(step0 + step + 1), power_t)
            scale = one / (real(stop - start) * mean_weight)
            for q in range(tid, K * (d + 1), SGD_THREADS):
                c = q // (d + 1)
                j = q - c * (d + 1)
                total = zero
                for g in range(sgd_groups):
                    total += P[g, q]
                if j < d:
                    value = sgd_update(W[c, j], scale * total, eta, alpha)
                elif fit_intercept:
                    value = b[c] - eta * scale * total
                else:
                    value = b[c]
                W_new[c, j] = value
                if not math.isfinite(value):
                    bad[0] = 1
            batch_loss = zero
            if tid == 0:
                for g in range(sgd_groups):
                    batch_loss += P[g, K * (d + 1)]
                if not math.isfinite(batch_loss):
                    bad[0] = 1
            cuda.syncthreads()
            if bad[0] != 0:
                break
            for q in range(tid, K * (d + 1), SGD_THREADS):
                c = q // (d + 1)
                j = q - c * (d + 1)
                if j < d:
                    W[c, j] = W_new[c, j]
                else:
                    b[c] = W_new[c, j]
            loss_total += batch_loss
            n_steps += 1
            cuda.syncthreads()
        if tid == 0:
            result[0] = loss_total
            result[1] = real(n_steps)

    @kernel(THREADS)
    def scores(X, W, b, out):
        """``out[i, c] = x_i · W_c + b_c`` (out in X's dtype), one group per row."""
        tid = cuda.threadIdx.x
        g = tid // G
        lane = tid % G
        n = X.shape[0]
        xr = cuda.local.array(cols, real)
        zp = cuda.local.array(K, real)
        red = cuda.shared.array(THREADS, real)
        base = cuda.blockIdx.x * ROWS_PER_BLOCK
        stop = min(base + ROWS_PER_BLOCK, n)
        while base < stop:
            i = base + g
            valid = i < stop
            row_scores(X, i if valid else 0, valid, W, b, xr, zp, red, tid, lane)
            if valid and lane == 0:
                for c in range(K):
                    out[i, c] = zp[c]
            base += groups

    return SimpleNamespace(partials=partials, sgd_epoch=sgd_epoch, scores=scores,
                           G=G, groups=groups, sgd_groups=sgd_groups, n_sums=n_sums)


@cuda.jit
def _sum_rows_kernel(P, out):
    """``out[s, q] = Σ P[r, q]`` over rows ``r`` of segment ``s``, in row order, float64.

    One thread per (segment, column); neighbouring threads take neighbouring
    columns, so the loads of a row are coalesced.
    """
    m = P.shape[1]
    index = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    s = index // m
    q = index - s * m
    if s < out.shape[0]:
        total = 0.0
        for r in range(s * SUM_SEGMENT, min((s + 1) * SUM_SEGMENT, P.shape[0])):
            total += P[r, q]
        out[s, q] = total


def sum_rows(P, scratch=None):
    """Column sums of the device array ``P`` (rows, m), in a fixed order, as float64 (m,).

    Segments of :data:`SUM_SEGMENT` rows are added by one thread each, level
    after level, until one row is left: the same additions in the same order
    on every run. ``scratch``: a dict that keeps the level buffers for the
    next call with the same shape.
    """
    scratch = {} if scratch is None else scratch
    while True:
        rows, m = P.shape
        n_segments = -(-rows // SUM_SEGMENT)
        out = scratch.get((n_segments, m))
        if out is None:
            out = scratch[(n_segments, m)] = cuda.device_array((n_segments, m), dtype=np.float64)
        threads = 128
        _sum_rows_kernel[-(-(n_segments * m) // threads), threads](P, out)
        P = out
        if n_segments == 1:
            return out[0]
