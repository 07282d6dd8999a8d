"""``2^k`` from its bit pattern, inside Numba-compiled code (LLVM ``bitcast``).

The vectorised ``exp`` of :mod:`fastlr.kernels.cpu` rounds ``x · log2(e)`` to an integer
``k`` held in a float and needs ``2^k``. Adding ``1.5 · 2^52`` (float64; ``1.5 · 2^23`` for
float32) to ``k`` is exact and leaves ``k`` in two's complement in the low mantissa bits, so
``(bits + 1023) << 52`` (``(bits + 127) << 23``) are the bits of ``2^k`` for the exponent
range of the format: integer operations that AVX2 has for every lane. NumPy's ``view`` does
this for arrays only, so the kernels stored each value to a scratch array, reinterpreted it
in a second loop and multiplied in a third; this intrinsic does it on one value, in
registers, in the integer width of the float (a float32 lane stays 32 bits wide; Numba's own
integer arithmetic would widen it to 64), and a loop that calls it still vectorises.
"""

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._simd import Vec

_FORMATS = {  # float type -> (LLVM float, integer width, exponent bias, mantissa bits)
    types.float64: (ir.DoubleType(), 64, 1023, 52),
    types.float32: (ir.FloatType(), 32, 127, 23),
}


@intrinsic
def pow2_from_shifted(typingctx, shifted):
    """``2.0 ** k`` for ``shifted = k + 1.5 · 2^p`` (p = 52 for float64, 23 for float32).

    ``k`` an integer with ``-bias < k <= bias`` (1023 or 127), so that ``2^k`` is a normal
    number; the result has the type of ``shifted``.
    """
    if shifted not in _FORMATS:
        return None
    flt, width, bias, mant = _FORMATS[shifted]

    def codegen(context, builder, sig, args):
        i = builder.bitcast(args[0], ir.IntType(width))
        i = builder.add(i, ir.Constant(ir.IntType(width), bias))
        i = builder.shl(i, ir.Constant(ir.IntType(width), mant))
        return builder.bitcast(i, flt)

    return shifted(shifted), codegen


@intrinsic
def exponent_and_mantissa(typingctx, x):
    """``(e, m)`` with ``x = m · 2^e``, ``1 <= m < 2`` and ``e`` an integer held in a float64,
    for a positive normal float64 ``x`` (or per lane of a float64 :class:`~fastlr.kernels._simd.Vec`);
    from its bits, so a loop over it vectorises.

    The exponent goes through a 32-bit integer (``vcvtdq2pd`` converts packed int32 to
    float64; int64 has no packed conversion before AVX-512). Not through ``2^52 + e``
    minus ``2^52``: under the kernels' ``reassoc`` flag LLVM distributes a multiplication
    over that subtraction, ``(a - c) · ln 2 -> a · ln 2 - c · ln 2``, and cancels the result
    away. Zero, subnormals, infinities and NaN give meaningless values: callers exclude them.
    """
    if x == types.float64:
        lanes = None
    elif isinstance(x, Vec) and x.dtype == types.float64:
        lanes = x.count
    else:
        return None
    pair = types.UniTuple(x, 2)

    def codegen(context, builder, sig, args):
        def ty(t):
            return t if lanes is None else ir.VectorType(t, lanes)

        def const(t, value):
            return ir.Constant(ty(t), value if lanes is None else [value] * lanes)

        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        bits = builder.bitcast(args[0], ty(i64))
        biased = builder.trunc(builder.lshr(bits, const(i64, 52)), ty(i32))
        e = builder.sitofp(builder.sub(biased, const(i32, 1023)), ty(ir.DoubleType()))
        m = builder.bitcast(builder.or_(builder.and_(bits, const(i64, (1 << 52) - 1)),
                                        const(i64, 0x3FF0000000000000)), ty(ir.DoubleType()))
        return context.make_tuple(builder, pair, [e, m])

    return pair(x), codegen
