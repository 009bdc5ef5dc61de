"""Scalar math helpers for kernels: an exp that LLVM can vectorise.

numba's ``math.exp`` calls the C library one value at a time, so a loop of K
exponentials per pixel cannot use SIMD. ``vexp`` below is the classic
Cody-Waite range reduction (x = n ln2 + r, |r| <= ln2/2), a degree-13 Taylor
polynomial for exp(r) and an exponent bit-cast for 2**n. It is branch-free, so
LLVM vectorises the loops that call it; its relative error is below 2e-16 on
[-708.39, 709.7] (tested against ``numpy.exp``). Outside that range it returns 0,
``inf`` or NaN exactly as exp does, except that results below the smallest
normal double (x < -708.39) are flushed to 0 instead of a subnormal; kernels
only use it where that cannot matter (terms of a sum scaled by its largest
term), and use ``math.exp`` where it can.
"""

from __future__ import annotations

import math

import numba
from numba import types
from numba.extending import intrinsic

from ._config import EXACT_FASTMATH

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125
_LN2_LO = 1.42860682030941723212e-6
_XMIN = -708.3964185322641  # log of the smallest normal double
_XMAX = 709.782712893384  # log of the largest double


@intrinsic
def _int64_bits_as_float64(typingctx, value):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@numba.njit(fastmath=set(EXACT_FASTMATH), cache=False, nogil=True)
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
    y = 0.0 if x < _XMIN else y
    y = math.inf if x > _XMAX else y
    return x if x != x else y
