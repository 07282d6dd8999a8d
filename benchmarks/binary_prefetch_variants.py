"""Prefetch and block-size variants of the binary gradient kernel's block loop, against the read.

A probe, not a kernel: copies of ``fastlr.kernels.cpu._binary_rows`` (log loss, unit weights,
no rare path for overflowing scores) with the software prefetch of the rows ahead placed
differently, timed interleaved with a parallel read of X and with the library's kernel in one
process. Variants ``(block rows, distance in blocks, rows hinted per score pair, after the
exponentials, after the loss, per 4-row gradient group, into L1 instead of L2, skip)``;
``skip16`` replaces the exponentials and the loss by a multiply (wrong gradient, skipped by the
check): how much of the gap to the read is the per-row work.

History on the 2-core Zen 3: with hints in the score loop and the gradient sweeps only, every
placement was within ±5% of the kernel's (53-58% of the read against 56%) and ``skip16``
reached 78-86%; longer distances (``d4_16``, ``d8_16``, ``d16_16``) gave 59-60% against 61% at
one block (``cur16``) and 53% without hints (``none16``). Hints also after the exponentials and
after the loss, where the block computes from cache and no load misses (``spread16``, what the
kernel does since 2026-12-03), took 1M x 64 float64 from 61% to 81% of the read, 250k x 256
float32 from 68% to 81%, 60k x 784 float32 from 57% to 69% and 1M x 64 float32 from 56% to 61%
(medians of 11 in one process per shape).

Usage: ``python benchmarks/binary_prefetch_variants.py N D DTYPE [names,...]``, e.g.
``1000000 64 float32 none16,cur16,spread16,skip16``.
"""
import sys
import time
import numpy as np
from numba import njit, prange
from fastlr.kernels import cpu as K
from fastlr.kernels._prefetch import prefetch_rows, _make_prefetch
from fastlr._math import LOG
pf_l1 = _make_prefetch(0, 3)
_JIT = dict(cache=False, fastmath={"reassoc", "contract"}, error_model="numpy")

def make(B, dist, score_rows, exp_rows, loss_rows, grad_rows, l1, skip=0):
    pf = pf_l1 if l1 else prefetch_rows
    exp_ = K._exp_neg_abs; lossdz = K._binary_loss_dz
    @njit(**_JIT)
    def rows(X, y, start, stop, w, b, acc, z, e, dz, accb):
        d = X.shape[1]
        for s0 in range(start, stop, B):
            m = min(B, stop - s0)
            nxt = s0 + dist * B
            r = 0
            q = 0
            while r + 2 <= m:
                if score_rows > 0:
                    a = min(nxt + q, stop); pf(X, a, min(a + score_rows, stop)); q += score_rows
                z0 = 0.0; z1 = 0.0
                for j in range(d):
                    z0 += X[s0 + r, j] * w[j]
                    z1 += X[s0 + r + 1, j] * w[j]
                z[r] = z0 + b; z[r + 1] = z1 + b
                r += 2
            if r < m:
                zr = 0.0
                for j in range(d):
                    zr += X[s0 + r, j] * w[j]
                z[r] = zr + b
            if skip == 0:
                exp_(z, m, e)
            if exp_rows > 0:
                a = min(nxt + q, stop); pf(X, a, min(a + exp_rows, stop)); q += exp_rows
            if skip == 0:
                for r in range(m):
                    loss, g = lossdz(LOG, z[r], e[r], np.float64(y[s0 + r]))
                    z[r] = loss; e[r] = g
            else:
                for r in range(m):
                    e[r] = z[r] * 1e-3
            if loss_rows > 0:
                a = min(nxt + q, stop); pf(X, a, min(a + loss_rows, stop)); q += loss_rows
            for r in range(m):
                dz[r] = e[r]
            ls = 0.0; ds = 0.0
            for r in range(m):
                ls += z[r]; ds += e[r]
            acc[d] += ds; acc[d + 1] += ls
            accb[:] = 0
            r = 0
            while r + 4 <= m:
                if grad_rows > 0:
                    a = min(nxt + q, stop); pf(X, a, min(a + grad_rows, stop)); q += grad_rows
                g0 = dz[r]; g1 = dz[r + 1]; g2 = dz[r + 2]; g3 = dz[r + 3]
                for j in range(d):
                    accb[j] += (g0 * X[s0 + r, j] + g1 * X[s0 + r + 1, j]) + (g2 * X[s0 + r + 2, j] + g3 * X[s0 + r + 3, j])
                r += 4
            while r < m:
                for j in range(d):
                    accb[j] += dz[r] * X[s0 + r, j]
                r += 1
            for j in range(d):
                acc[j] += accb[j]
    @njit(parallel=True, **_JIT)
    def grad(X, y, w, b):
        n, d = X.shape
        C = K.CHUNK_ROWS
        nc = (n + C - 1) // C
        part = np.zeros((nc, d + 2))
        for c in prange(nc):
            rows(X, y, c * C, min((c + 1) * C, n), w, b, part[c], np.empty(B), np.empty(B), np.empty(B, X.dtype), np.empty(d, X.dtype))
        tot = np.zeros(d + 2)
        for c in range(nc):
            tot += part[c]
        return tot
    return grad

VARIANTS = {  # (block, distance, per score pair, after exp, after loss, per grad group, L1[, skip])
 'none16': (16, 1, 0, 0, 0, 0, False),
 'skip16': (16, 1, 2, 0, 0, 0, False, 1),
 'cur16': (16, 1, 2, 0, 0, 0, False),
 'spread16': (16, 1, 1, 2, 2, 1, False),
 'spread16d2': (16, 2, 1, 2, 2, 1, False),
 'mid16': (16, 1, 1, 4, 4, 0, False),
 'late16': (16, 1, 0, 4, 4, 2, False),
 'grad16': (16, 1, 0, 2, 2, 3, False),
 'd2_16': (16, 2, 2, 0, 0, 0, False),
 'split16': (16, 1, 1, 0, 0, 2, False),
 'split16d2': (16, 2, 1, 0, 0, 2, False),
 'cur16L1': (16, 1, 2, 0, 0, 0, True),
 'split16L1': (16, 1, 1, 0, 0, 2, True),
 'cur32': (32, 1, 2, 0, 0, 0, False),
 'split32': (32, 1, 1, 0, 0, 2, False),
 'split32d2': (32, 2, 1, 0, 0, 2, False),
 'd4_16': (16, 4, 2, 0, 0, 0, False),
 'd8_16': (16, 8, 2, 0, 0, 0, False),
 'd16_16': (16, 16, 2, 0, 0, 0, False),
}
if __name__ == '__main__':
    n, d, dt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    names = sys.argv[4].split(',') if len(sys.argv) > 4 else list(VARIANTS)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dt); y = rng.integers(0, 2, n).astype(np.int32)
    w = rng.standard_normal(d) / np.sqrt(d)
    ref = K.binary_loss_grad(X, y, np.empty(0), w, 0.0, LOG)
    fs = {}
    for nm in names:
        fs[nm] = make(*VARIANTS[nm]); out = fs[nm](X, y, w, 0.0)
        assert nm.startswith('skip') or np.allclose(out, ref, rtol=1e-4), nm
    K.read_sum(X)
    T = {nm: [] for nm in names}; T['read'] = []; T['kernel'] = []
    for _ in range(11):
        t = time.perf_counter(); K.read_sum(X); T['read'].append(time.perf_counter() - t)
        t = time.perf_counter(); K.binary_loss_grad(X, y, np.empty(0), w, 0.0, LOG); T['kernel'].append(time.perf_counter() - t)
        for nm in names:
            t = time.perf_counter(); fs[nm](X, y, w, 0.0); T[nm].append(time.perf_counter() - t)
    r = np.median(T['read'])
    for nm, ts in T.items():
        print(f"{nm:10s} {np.median(ts)*1e3:7.2f} ms  {r/np.median(ts):5.0%} of read")
