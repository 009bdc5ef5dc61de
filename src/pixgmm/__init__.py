"""pixgmm: evaluate a Gaussian mixture model at every pixel of an image, fast and exactly.

>>> import numpy as np, pixgmm
>>> model = pixgmm.Mixture([1.0], [[128, 128, 128]], [[100, 100, 100]], "diag", channels="RGB")
>>> pixgmm.log_density(np.zeros((4, 5, 3), np.uint8), model, channels="BGR").shape
(4, 5)
"""

from . import metrics, models
from ._cache import cache_info, clear_cache, set_cache_limit
from .classify import Classifier
from .evaluate import density, log_density, log_ratio, predict, responsibilities
from .fit import fit, fit_classes
from .histogram import HistogramModel
from .mixture import Mixture, as_mixture
from .skin import SkinDetector

__version__ = "0.1.0"

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
    "fit",
    "fit_classes",
    "log_density",
    "log_ratio",
    "metrics",
    "models",
    "predict",
    "responsibilities",
    "set_cache_limit",
]
