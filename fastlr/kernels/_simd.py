"""256-bit vectors as values inside Numba-compiled code (LLVM vector types).

LLVM vectorises a loop over the columns of X by itself, but only with its
accumulators in memory: a sum over the rows of a block, ``out[j] += g_r ·
X[r, j]``, is then a load and a store of ``out`` per multiply-add, and a
tile of independent sums kept in registers (the "outer-product" micro-kernel
of a matrix product) cannot be written in Numba's scalar code at all. This
module gives the CPU kernels a vector value, :class:`Vec`: eight float32 or
four float64 lanes (an AVX2 register; LLVM splits it on narrower targets and
keeps it at 256 bits on AVX-512 ones), held in SSA values, so in registers.

Functions (all ``inline``; ``X`` a C-contiguous array of float32 or float64):

``load(X, i, j)``, ``load1(a, j)``
    The lanes ``X[i, j:j + L]`` (``a[j:j + L]``), ``L = lanes(dtype)``.
``store(X, i, j, v)``, ``store1(a, j, v)``
    Write them back.
``splat(x)``
    ``x`` (float32 or float64) in every lane.
``zeros_like(x)``
    A vector of zeros of ``x``'s type.
``add_to(X, i, j, v)``
    ``X[i, j:j + L] += v``.
``lanes_of(X)``
    ``L`` for the dtype of the array ``X`` (a compile-time constant).
``fma(a, b, c)``
    ``a · b + c`` per lane (``llvm.fmuladd``: one fused instruction where the
    CPU has FMA; the choice is made when compiling, so the same on every run).
``add(a, b)``
    ``a + b`` per lane.
``hsum(v)``
    The sum of the lanes in a fixed tree (halves, then quarters, ...): the
    same order on every call.

4-lane float64 vectors of any float array (the per-sample steps run in float64 for
float32 X too):

``wide4(a, j)``, ``wide4_2d(X, i, j)``
    ``a[j:j + 4]`` (``X[i, j:j + 4]``) widened to float64 (exact).
``store4(a, j, v)``, ``store4_2d(X, i, j, v)``
    Store a 4-lane float64 vector, rounded to the array's dtype.
``vmax(a, b)``
    ``a if a > b else b`` per lane.
``+``, ``-``, ``*``, ``/``
    Per lane, between vectors of one type or a vector and a scalar (broadcast), so
    that scalar code such as :mod:`fastlr._math`'s ``log1p_unit`` compiles for vectors.

Indices are not wrapped; under ``NUMBA_BOUNDSCHECK=1`` a load or store
checks its first and last lane like any array access (IndexError).
"""

import operator

from llvmlite import ir
from numba.core import cgutils, types
from numba import njit
from numba.extending import intrinsic, models, register_model

#: Bytes per vector: an AVX2 register.
VECTOR_BYTES = 32


def lanes(dtype):
    """Lanes of a :class:`Vec` of ``dtype`` (a NumPy dtype): 8 for float32, 4 for float64."""
    return VECTOR_BYTES // dtype.itemsize


class Vec(types.Type):
    """Numba type of a vector of ``count`` lanes of the float type ``dtype``."""

    def __init__(self, dtype, count):
        self.dtype = dtype
        self.count = count
        super().__init__(name=f"Vec({dtype} x {count})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        be_type = ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.count)
        super().__init__(dmm, fe_type, be_type)


_FLOATS = (types.float32, types.float64)


def _vec_of(dtype):
    return Vec(dtype, VECTOR_BYTES // (dtype.bitwidth // 8))


#: The 4-lane float64 vector of ``wide4``/``store4`` (per-sample steps in float64 for any X).
_WIDE = Vec(types.float64, 4)


def _lane_pointer(context, builder, aryty, ary, indices, count):
    """Pointer to element ``indices``; when bounds are checked, checks it and the element
    ``count - 1`` further along the last axis (the first and last lane)."""
    check = context.enable_boundscheck
    shape = cgutils.unpack_tuple(builder, ary.shape)
    strides = cgutils.unpack_tuple(builder, ary.strides)
    ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides, aryty.layout, indices,
                                    wraparound=False, boundscheck=check)
    if check:
        last = list(indices[:-1]) + [builder.add(indices[-1], ir.Constant(indices[-1].type, count - 1))]
        cgutils.get_item_pointer2(context, builder, ary.data, shape, strides, aryty.layout, last,
                                  wraparound=False, boundscheck=True)
    return ptr


def _array_ok(X, ndim, idx):
    return (isinstance(X, types.Array) and X.ndim == ndim and X.dtype in _FLOATS and X.layout == "C"
            and len(idx) == ndim and all(isinstance(t, types.Integer) for t in idx))


def _memory_vector(context, dtype, wide):
    """LLVM type of the lanes in memory: a whole register of ``dtype``, or 4 lanes (``wide``)."""
    return ir.VectorType(context.get_value_type(dtype), 4 if wide else _vec_of(dtype).count)


def _make_load(ndim, wide):
    """Load intrinsic for ``ndim``-D arrays: a register of the array's dtype, or (``wide``)
    4 lanes widened to float64."""
    def load_impl(typingctx, X, *idx):
        if not _array_ok(X, ndim, idx):
            return None
        vt = _WIDE if wide else _vec_of(X.dtype)

        def codegen(context, builder, sig, args):
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            inds = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:])]
            src = _memory_vector(context, X.dtype, wide)
            ptr = _lane_pointer(context, builder, sig.args[0], ary, inds, src.count)
            v = builder.load(builder.bitcast(ptr, src.as_pointer()), align=X.dtype.bitwidth // 8)
            if wide and X.dtype == types.float32:
                v = builder.fpext(v, context.get_value_type(_WIDE))
            return v

        return vt(X, *idx), codegen
    return load_impl


def _make_store(ndim, wide):
    """Store intrinsic for ``ndim``-D arrays: a register of the array's dtype, or (``wide``)
    a 4-lane float64 vector rounded to the array's dtype."""
    def store_impl(typingctx, X, *rest):
        idx, v = rest[:-1], rest[-1] if rest else None
        if not _array_ok(X, ndim, idx) or v != (_WIDE if wide else _vec_of(X.dtype)):
            return None

        def codegen(context, builder, sig, args):
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            inds = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:-1], sig.args[1:-1])]
            dst = _memory_vector(context, X.dtype, wide)
            ptr = _lane_pointer(context, builder, sig.args[0], ary, inds, dst.count)
            value = args[-1]
            if wide and X.dtype == types.float32:
                value = builder.fptrunc(value, dst)
            builder.store(value, builder.bitcast(ptr, dst.as_pointer()), align=X.dtype.bitwidth // 8)
            return context.get_dummy_value()

        return types.none(X, *rest), codegen
    return store_impl


def _splat_value(builder, vtype, x):
    """The LLVM value of ``x`` (already of the lane type) in every lane of ``vtype``."""
    one = builder.insert_element(ir.Constant(vtype, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vtype.count), [0] * vtype.count)
    return builder.shuffle_vector(one, one, mask)


@intrinsic
def load(typingctx, X, i, j):
    """The lanes ``X[i, j:j + L]`` of a C-contiguous 2-D float array."""
    return _make_load(2, False)(typingctx, X, i, j)


@intrinsic
def load1(typingctx, a, j):
    """The lanes ``a[j:j + L]`` of a C-contiguous 1-D float array."""
    return _make_load(1, False)(typingctx, a, j)


@intrinsic
def store(typingctx, X, i, j, v):
    """``X[i, j:j + L] = v``."""
    return _make_store(2, False)(typingctx, X, i, j, v)


@intrinsic
def store1(typingctx, a, j, v):
    """``a[j:j + L] = v``."""
    return _make_store(1, False)(typingctx, a, j, v)


@intrinsic
def splat(typingctx, x):
    """``x`` in every lane (x float32 or float64)."""
    if x not in _FLOATS:
        return None
    vt = _vec_of(x)

    def codegen(context, builder, sig, args):
        return _splat_value(builder, context.get_value_type(vt), args[0])

    return vt(x), codegen


@intrinsic
def zeros_like(typingctx, v):
    """A vector of zeros of ``v``'s type."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(args[0].type, None)

    return v(v), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a · b + c`` per lane (``llvm.fmuladd``)."""
    if not (isinstance(a, Vec) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        ltype = args[0].type
        suffix = f"v{a.count}f{a.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ltype, [ltype] * 3),
                                            f"llvm.fmuladd.{suffix}")
        return builder.call(fn, list(args))

    return a(a, b, c), codegen


@intrinsic
def hsum(typingctx, v):
    """The sum of the lanes of ``v``: halves added, then their halves, down to one lane."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        x = args[0]
        n = sig.args[0].count
        i32 = ir.IntType(32)
        while n > 1:
            n //= 2
            lo = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(i32, n), list(range(n))))
            hi = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(i32, n), list(range(n, 2 * n))))
            x = builder.fadd(lo, hi)
        return builder.extract_element(x, ir.Constant(i32, 0))

    return v.dtype(v), codegen


@intrinsic
def lanes_of(typingctx, X):
    """Lanes of a vector of ``X``'s dtype (a constant: 8 for float32, 4 for float64)."""
    if not (isinstance(X, types.Array) and X.dtype in _FLOATS):
        return None
    count = _vec_of(X.dtype).count

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, count)

    return types.intp(X), codegen


@njit(inline="always")
def add_to(X, i, j, v):
    """``X[i, j:j + L] += v``."""
    store(X, i, j, add(load(X, i, j), v))


# ---------------------------------------------------------------------------
# Arithmetic operators on vectors (and a vector with a scalar, broadcast), so that
# scalar code such as fastlr._math's series compiles unchanged for vectors too.

def _binary_codegen(op):
    def build(context, builder, sig, args):
        a, b = args
        ta, tb = sig.args
        vt = sig.return_type

        def as_vec(v, t):
            if isinstance(t, Vec):
                return v
            return _splat_value(builder, context.get_value_type(vt), context.cast(builder, v, t, vt.dtype))

        a = as_vec(a, ta)
        b = as_vec(b, tb)
        return {"add": builder.fadd, "sub": builder.fsub, "mul": builder.fmul, "div": builder.fdiv}[op](a, b)
    return build


def _vec_result(a, b):
    if isinstance(a, Vec) and isinstance(b, Vec):
        return a if a == b else None
    if isinstance(a, Vec) and isinstance(b, (types.Float, types.Integer)):
        return a
    if isinstance(b, Vec) and isinstance(a, (types.Float, types.Integer)):
        return b
    return None


def _make_operator(op):
    @intrinsic
    def impl(typingctx, a, b):
        vt = _vec_result(a, b)
        if vt is None:
            return None
        return vt(a, b), _binary_codegen(op)
    return impl


_vadd, _vsub, _vmul, _vdiv = (_make_operator(op) for op in ("add", "sub", "mul", "div"))

#: ``add(a, b)``: ``a + b`` per lane (the ``+`` operator, by name).
add = _vadd


def _register_operator(pyop, fn):
    from numba.extending import overload

    @overload(pyop, inline="always")
    def ol(a, b):
        if _vec_result(a, b) is not None:
            return lambda a, b: fn(a, b)


_register_operator(operator.add, _vadd)
_register_operator(operator.sub, _vsub)
_register_operator(operator.mul, _vmul)
_register_operator(operator.truediv, _vdiv)


@intrinsic
def vmax(typingctx, a, b):
    """Per lane ``a if a > b else b`` (a NaN in ``b`` passes through)."""
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[0], args[1])

    return a(a, b), codegen


@intrinsic
def wide4(typingctx, a, j):
    """``a[j:j + 4]`` (float32 or float64, 1-D) as a 4-lane float64 vector (exact)."""
    return _make_load(1, True)(typingctx, a, j)


@intrinsic
def wide4_2d(typingctx, X, i, j):
    """``X[i, j:j + 4]`` (float32 or float64, 2-D) as a 4-lane float64 vector (exact)."""
    return _make_load(2, True)(typingctx, X, i, j)


@intrinsic
def store4(typingctx, a, j, v):
    """``a[j:j + 4] = v`` for a 4-lane float64 ``v``, rounded to ``a``'s dtype."""
    return _make_store(1, True)(typingctx, a, j, v)


@intrinsic
def store4_2d(typingctx, X, i, j, v):
    """``X[i, j:j + 4] = v`` for a 4-lane float64 ``v``, rounded to ``X``'s dtype."""
    return _make_store(2, True)(typingctx, X, i, j, v)
