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
_READ, _WRITE, _LOCALITY_L1, _LOCALITY_L2, _DATA_CACHE = 0, 1, 3, 2, 1


def _make_prefetch(rw, locality):
    @intrinsic
    def prefetch(typingctx, X, start, stop):
        if not (isinstance(X, types.Array) and X.ndim in (1, 2)):
            return None

        def codegen(context, builder, sig, args):
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            data = builder.ptrtoint(ary.data, args[1].type)
            row_bytes = cgutils.unpack_tuple(builder, ary.strides, sig.args[0].ndim)[0]
            line = ir.Constant(data.type, CACHE_LINE)
            first = builder.add(data, builder.mul(args[1], row_bytes))
            first = builder.and_(first, ir.Constant(data.type, -CACHE_LINE))  # the line holding it
            last = builder.add(data, builder.mul(args[2], row_bytes))
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
            # an empty range asks for nothing (without this test, a start that is not
            # line-aligned hinted the line holding it even when start == stop)
            with builder.if_then(builder.icmp_signed("<", args[1], args[2])):
                with cgutils.for_range_slice(builder, first, last, line) as (address, _):
                    builder.call(fn, [builder.inttoptr(address, i8p), i32(rw), i32(locality),
                                      i32(_DATA_CACHE)])
            return context.get_dummy_value()

        return types.none(X, types.intp, types.intp), codegen

    return prefetch


#: ``prefetch_rows(X, start, stop)``: hint that rows ``start:stop`` of the 1-D
#: or 2-D array ``X`` (elements, for 1-D) will be read soon, into L2 (see the
#: module's note).
#:
#: Rows ``start:stop`` are the bytes ``[start, stop) × X.strides[0]`` from the
#: data pointer, one hint per cache line: all of them when X is C-contiguous,
#: a harmless hint within the buffer otherwise. ``start >= stop`` asks for
#: nothing. Callers keep ``0 <= start`` and ``stop <= len(X)`` (a prefetch
#: outside the array would not fault, but would waste a memory access).
prefetch_rows = _make_prefetch(_READ, _LOCALITY_L2)

#: ``prefetch_rows_for_write(X, start, stop)``: the same for rows about to be
#: updated (``acc[j] += ...`` at a random row j): x86 ``prefetchw``, the line
#: fetched for ownership into L1, so the store does not wait for it.
prefetch_rows_for_write = _make_prefetch(_WRITE, _LOCALITY_L1)
