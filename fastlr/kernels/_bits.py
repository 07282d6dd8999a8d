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
