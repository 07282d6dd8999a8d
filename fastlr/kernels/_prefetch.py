"""A software prefetch hint for the Numba CPU kernels (LLVM's ``llvm.prefetch``).

The fused gradient kernels alternate between reading a block of rows of X
(the scores) and computing on it from cache (the exponentials, the loss and
``dz · x``). While they compute, no load misses the cache, so the hardware
prefetchers, which follow the demand misses, stop running ahead and the
memory bus idles. Asking for the next block before the computation keeps
the bus busy: on a 2-core Zen 3 (AVX2) the 1M x 64 float32 binary gradient
went from about 52% to 65% of a parallel read of X (``benchmarks/kernel_roofline.py``).

A prefetch is only a hint: it never faults, changes no value and is a no-op
on a target without the instruction, so results are the same with or
without it.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

#: Bytes per cache line on x86-64 and on most AArch64 cores (one hint per line).
CACHE_LINE = 64

# llvm.prefetch(address, rw, locality, cache type): a read (0) into the data
# cache (1), with locality 2 (x86 prefetcht1: into L2, not L1, so that a block
# larger than L1 at d = 784 does not evict the rows being computed on).
_READ, _LOCALITY_L2, _DATA_CACHE = 0, 2, 1


@intrinsic
def prefetch_rows(typingctx, X, start, stop):
    """Hint that rows ``start:stop`` of ``X`` will be read soon.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Rows ``start:stop`` span the bytes ``[start, stop) × X.strides[0]``
        from the data pointer: all of them when X is C-contiguous, and a
        harmless hint within the buffer otherwise.
    start, stop : int
        Row range with ``0 <= start <= stop <= n`` (the caller clamps it; a
        prefetch outside the array would not fault, but would waste a
        memory access).

    Returns
    -------
    None
    """
    if not (isinstance(X, types.Array) and X.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        start_row, stop_row = args[1], args[2]
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        data = builder.bitcast(ary.data, i8p)
        row_bytes = cgutils.unpack_tuple(builder, ary.strides, 2)[0]
        first = builder.mul(start_row, row_bytes)
        last = builder.mul(stop_row, row_bytes)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        step = ir.Constant(first.type, CACHE_LINE)
        with cgutils.for_range_slice(builder, first, last, step) as (offset, _):
            builder.call(fn, [builder.gep(data, [offset]),
                              i32(_READ), i32(_LOCALITY_L2), i32(_DATA_CACHE)])
        return context.get_dummy_value()

    return types.none(X, types.intp, types.intp), codegen
