"""Scalar math helpers for kernels: an exp and a log that LLVM can vectorise.

numba's ``math.exp`` and ``math.log`` call the C library one value at a time,
so a loop of K exponentials per pixel (or one log per pixel) cannot use SIMD. ``vexp`` below is the classic
Cody-Waite range reduction (x = n ln2 + r, |r| <= ln2/2), a degree-13 Taylor
polynomial for exp(r) and an exponent bit-cast for 2**n. It is branch-free, so
LLVM vectorises the loops that call it; its relative error is below 2e-16 on
[-708.39, 709.7] (tested against ``numpy.exp``). Outside that range it returns 0,
``inf`` or NaN exactly as exp does, except that results below the smallest
normal double (x < -708.39) are flushed to 0 instead of a subnormal; kernels
only use it where that cannot matter (terms of a sum scaled by its largest
term), and use ``math.exp`` where it can.

``vlog`` is fdlibm's ``__ieee754_log`` made branch-free: x = 2**e m with
m in [sqrt(2)/2, sqrt(2)), s = (m - 1)/(m + 1) and a degree-14 minimax
polynomial in s. Its error is below 1 ulp for every positive double,
subnormals included; it returns -inf at 0, NaN below 0 and at NaN, and inf at
inf, like ``math.log`` (which raises instead).
"""

from __future__ import annotations

import math

import numba
from numba import types
from numba.extending import intrinsic

from .config import MATH_FLAGS

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125
_LN2_LO = 1.42860682030941723212e-6
XMIN = -708.3964185322641  # log of the smallest normal double
_XMAX = 709.782712893384  # log of the largest double


# fdlibm e_log.c
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_LN2_HI_LOG = 6.93147180369123816490e-01
_LN2_LO_LOG = 1.90821492927058770002e-10
_TWO54 = 18014398509481984.0


@intrinsic
def _float64_bits_as_int64(typingctx, value):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return sig, codegen


@intrinsic
def _int64_bits_as_float64(typingctx, value):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@numba.njit(**MATH_FLAGS)
def vexp(x):
    """exp(x) in float64, vectorisable; see the module docstring for its range."""
    xc = min(max(x, -708.0), 709.7)
    n = math.floor(xc * _LOG2E + 0.5)
    r = xc - n * _LN2_HI - n * _LN2_LO
    # Horner form of sum_{j<=13} r**j / j!
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    y = p * _int64_bits_as_float64((numba.int64(n) + 1023) << 52)
    y = 0.0 if x < XMIN else y
    y = math.inf if x > _XMAX else y
    return x if x != x else y


@numba.njit(**MATH_FLAGS)
def vlog(x):
    """log(x) in float64, vectorisable; see the module docstring for its range."""
    sub = x < 2.2250738585072014e-308
    xs = x * _TWO54 if sub else x
    bits = _float64_bits_as_int64(xs)
    # Move m into [sqrt(2)/2, sqrt(2)): add the offset of sqrt(2)/2's mantissa before
    # taking the exponent, then rebuild m from the remaining mantissa bits.
    hx = (bits >> 32) + (0x3FF00000 - 0x3FE6A09E)
    e = (hx >> 20) - 1023 - (54 if sub else 0)
    mbits = ((hx & 0x000FFFFF) + 0x3FE6A09E) << 32 | (bits & 0xFFFFFFFF)
    f = _int64_bits_as_float64(mbits) - 1.0
    k = numba.float64(e)
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    y = k * _LN2_HI_LOG - ((hfsq - (s * (hfsq + r) + k * _LN2_LO_LOG)) - f)
    y = math.inf if x == math.inf else y
    y = -math.inf if x == 0.0 else y
    return math.nan if not (x >= 0.0) else y
