"""pixgmm: evaluate a Gaussian mixture model at every pixel of an image, fast and exactly.

The public names below are imported on first use (SPEC 1 style lazy loading),
so ``import pixgmm`` is cheap and ``pixgmm --help`` does not load numba.

>>> import numpy as np, pixgmm
>>> model = pixgmm.Mixture([1.0], [[128, 128, 128]], [[100, 100, 100]], "diag", channels="RGB")
>>> pixgmm.log_density(np.zeros((4, 5, 3), np.uint8), model, channels="BGR").shape
(4, 5)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: pixgmm's version.
__version__ = "0.1.0"

#: Public name -> the submodule that defines it; a submodule exported as itself maps to None.
_LAZY = {
    "Classifier": "classify",
    "HistogramModel": "histogram",
    "Mixture": "mixture",
    "SkinDetector": "skin",
    "as_mixture": "mixture",
    "cache_info": "_engine.cache",
    "clear_cache": "_engine.cache",
    "density": "evaluate",
    "explain": "evaluate",
    "fit": "fitting",
    "fit_classes": "fitting",
    "fitting": None,
    "io": None,
    "log_density": "evaluate",
    "log_ratio": "evaluate",
    "metrics": None,
    "models": None,
    "predict": "evaluate",
    "responsibilities": "evaluate",
    "set_cache_limit": "_engine.cache",
}

__all__ = [
    "Classifier",
    "HistogramModel",
    "Mixture",
    "SkinDetector",
    "__version__",
    "as_mixture",
    "cache_info",
    "clear_cache",
    "density",
    "explain",
    "fit",
    "fit_classes",
    "fitting",
    "io",
    "log_density",
    "log_ratio",
    "metrics",
    "models",
    "predict",
    "responsibilities",
    "set_cache_limit",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'pixgmm' has no attribute {name!r}")
    module_name = _LAZY[name]
    if module_name is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import fitting, io, metrics, models
    from ._engine.cache import cache_info, clear_cache, set_cache_limit
    from .classify import Classifier
    from .evaluate import density, explain, log_density, log_ratio, predict, responsibilities
    from .fitting import fit, fit_classes
    from .histogram import HistogramModel
    from .mixture import Mixture, as_mixture
    from .skin import SkinDetector
