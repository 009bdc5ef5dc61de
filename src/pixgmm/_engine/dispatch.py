"""The engine rule: which engine computes a quantity, asked of the engines themselves.

``method="auto"`` takes the first engine of :data:`AUTO_ORDER` that supports the
quantity for these pixels and models and prefers them; a forced ``method`` that
does not apply is a ``ValueError`` naming what it needs. Each engine module
states its own condition (see :mod:`pixgmm._engine`), so this module knows no
engine's internals. The choice is logged at DEBUG level on the ``pixgmm``
logger, and :func:`choose` is what :func:`pixgmm.explain` reports.
"""

from __future__ import annotations

import logging

from . import direct, separable, table

#: The engines ``auto`` tries, in this order (the last always applies).
AUTO_ORDER = (table, separable, direct)
ENGINES = {e.NAME: e for e in AUTO_ORDER}
METHODS = ("auto", *ENGINES)

log = logging.getLogger("pixgmm")


def choose(method, quantity, X, models, normalized, dtype):
    """The engine module that computes ``quantity`` for pixels ``X`` (N, C) and ``models``.

    ``dtype`` is the output dtype (a cached colour table is looked up by it).
    """
    if method != "auto":
        engine = ENGINES[method]
        why = engine.unsupported(quantity, X, models)
        if why is not None:
            raise ValueError(f"method={method!r} {why}; use method='auto'")
    else:
        engine = next(
            e
            for e in AUTO_ORDER
            if e.unsupported(quantity, X, models) is None
            and e.preferred(quantity, X, models, normalized, dtype)
        )
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "pixgmm: %s engine for %s of %d pixels of %s x %d (method=%r)",
            engine.NAME, quantity, X.shape[0], X.dtype, X.shape[1], method,
        )  # fmt: skip
    return engine


def evaluate(engine, quantity, X, models, normalized, out):
    """Compute with ``engine`` (a module from :func:`choose`) into ``out``."""
    if X.shape[0]:
        engine.evaluate(quantity, X, models, normalized, out)
    return out
