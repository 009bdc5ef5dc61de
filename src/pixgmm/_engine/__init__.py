"""pixgmm's engines: everything private that computes.

Private layer: modules here take contiguous arrays, scalars and already
validated models, and never validate user input (the public modules do).

- :mod:`.config`: the one place that defines how kernels are compiled.
- :mod:`.vmath`: vectorisable ``exp``/``log`` for the kernels.
- :mod:`.params`: a model's kernel parameters; models evaluated from a table.
- :mod:`.cache`: the bounded table cache (``pixgmm.cache_info``).
- The engines, one module each: :mod:`.table` (a 256**C colour table),
  :mod:`.separable` (per-channel tables), :mod:`.direct` (the numba kernels).
- :mod:`.dispatch`: the engine rule; asks each engine instead of knowing it.
- :mod:`.blocks`: the same engines applied block by block to a Dask array.
- :mod:`.classes`: the classifier's one-pass kernels (label, confidence, margin, entropy,
  reject of every pixel); not an engine of the rule below.
- The fit: :mod:`.em` (statistics and histogram kernels), :mod:`.mstep` (the M-step, in
  NumPy), :mod:`.histfit` (the points an EM runs on), :mod:`.kmeans` and :mod:`.emfit`
  (initialisation and the EM loop). Kernel modules are imported where they run, so one
  Gaussian on integer points in memory imports no numba.

Every engine module answers the same three questions, so the dispatcher needs
nothing else and a new engine is one new file:

``NAME``
    The ``method=`` string that forces it.
``unsupported(quantity, X, models) -> str or None``
    Why it cannot compute ``quantity`` for pixels ``X`` (N, C) and ``models``,
    or None when it can.
``preferred(quantity, X, models) -> bool``
    Whether ``method="auto"`` takes it (asked only where it is supported, in
    :data:`.dispatch.AUTO_ORDER`).
``evaluate(quantity, X, models, normalized, out)``
    Write the quantity into ``out`` ((N,) or (N, K)).
"""
