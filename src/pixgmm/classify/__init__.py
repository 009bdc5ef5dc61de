"""Per-pixel Bayes classification with one colour model per class.

- :mod:`.classifier`: :class:`Classifier`, which validates a call and chooses its path;
- :mod:`._checks`: the argument checks (models, priors, per-pixel priors, options, dtypes);
- :mod:`._decide`: labels, confidence, margin, entropy and rejects in one pass per block
  (NumPy block by block, Dask one task per block), over :mod:`pixgmm._engine.classes`;
- :mod:`._posterior`: the log posterior and probability of every class;
- :mod:`._separability`: Bhattacharyya and Jeffries-Matusita distances, the summary.
"""

from .classifier import Classifier

__all__ = ["Classifier"]
