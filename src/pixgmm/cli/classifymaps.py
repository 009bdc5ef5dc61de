"""The maps ``pixgmm classify`` writes, computed in one pass: in memory, window by window, lazily.

Labels, confidence, margin and entropy come from one call of
:meth:`pixgmm.Classifier.classify` (one kernel pass per block of pixels); the
per-class probabilities, when asked for, from :meth:`~pixgmm.Classifier.probability`.
The classifier is given the class indices as labels (``k`` where no class
applies, ``k + 1`` where rejected), which the legend turns into the label
map's values. ``--prior-raster`` gives per-pixel priors, read on the window the
pixels come from (:class:`pixgmm.io.windows.AlignedRaster`), or lazily with
the image's chunks.
"""

from __future__ import annotations

#: The float maps of ``--save`` that :meth:`Classifier.classify` computes besides the labels.
FUSED_FLOATS = ("confidence", "margin", "entropy")
#: Colours of unclassified and rejected pixels in the colour picture.
UNCLASSIFIED_COLOUR = (0, 0, 0)
REJECTED_COLOUR = (255, 255, 255)


def index_classifier(classifier):
    """The same classifier with the class indices 0, 1, ... as labels."""
    from ..classify import Classifier

    models = {i: classifier.models[lab] for i, lab in enumerate(classifier.labels)}
    return Classifier(models, priors=classifier.priors)


class PriorRaster:
    """``--prior-raster``: one band per class in ``--model`` order, on each input's grid."""

    def __init__(self, path, n_classes):
        self.path = path
        self.n_classes = n_classes
        self._raster = None

    def _open(self):
        if self._raster is None:
            from ..io.windows import AlignedRaster

            self._raster = AlignedRaster(self.path)
        return self._raster

    def check(self, page, shape):
        """Refuse a raster not on the grid of ``page`` (or of an image of spatial ``shape``)."""
        raster = self._open()
        if page is not None:
            raster.check(page.height, page.width, page.transform, page.crs_wkt,
                         bands=self.n_classes, what="--prior-raster")  # fmt: skip
        else:
            raster.check(*shape, bands=self.n_classes, what="--prior-raster")

    def numpy(self, where, shape):
        """The priors of ``where`` (a window, or the whole image of spatial ``shape``)."""
        if where is None or where.window is None or where.window.row == where.window.col == 0:
            self.check(None if where is None else where.page, shape)
        return self._open().read(None if where is None else where.window)

    def lazy(self, like):
        """The priors as a Dask array chunked as the spatial axes of ``like``."""
        from ..io import probe_geotiff

        self.check(None, like.shape[:2])
        geo = probe_geotiff(self.path)
        (page,) = geo.lazy_pages((like.chunks[0][0], like.chunks[1][0]))
        return page.astype("float32").rechunk((like.chunks[0], like.chunks[1], -1))


def classify_maps(classifier, save, channels, reject, legend, prior_raster=None):
    """``compute(pixels, where=None) -> maps`` of ``pixgmm classify`` (NumPy or Dask pixels).

    ``reject`` holds ``min_probability`` and ``chi2_level`` (empty: no reject).
    """
    import numpy as np

    from . import render as _render

    k = len(classifier.labels)
    indexed = index_classifier(classifier)
    lookup = legend.lookup
    options = {**reject, "reject": k + 1} if reject else {}
    fused = [name for name in FUSED_FLOATS if name in save]
    wants_labels = bool({"labels", "colour"} & set(save))

    def colour(index):
        picture = _render.label_picture(np.minimum(index, k - 1))
        picture[index == k] = UNCLASSIFIED_COLOUR
        picture[index == k + 1] = REJECTED_COLOUR
        return picture

    def compute(pixels, where=None):
        lazy = hasattr(pixels, "dask") and not isinstance(pixels, np.ndarray)
        priors = None
        if prior_raster is not None:
            spatial = tuple(pixels.shape[:2])
            priors = prior_raster.lazy(pixels) if lazy else prior_raster.numpy(where, spatial)
        maps = {}
        outputs = (["labels"] if wants_labels else []) + fused
        if outputs:
            got = indexed.classify(pixels, outputs, channels=channels, fill=k, priors=priors,
                                   **options)  # fmt: skip
            maps.update({name: got[name] for name in fused})
            if wants_labels:
                index = got["labels"]
                if "labels" in save:
                    maps["labels"] = (index.map_blocks(lookup.__getitem__, dtype=lookup.dtype)
                                      if lazy else lookup[index])  # fmt: skip
                if "colour" in save:
                    maps["colour"] = (
                        index.map_blocks(colour, dtype=np.uint8, new_axis=2,
                                         chunks=(*index.chunks, (3,)))
                        if lazy else colour(index)
                    )  # fmt: skip
        if "probability" in save:
            p = classifier.probability(pixels, channels=channels, priors=priors)
            maps["probability"] = p.astype(np.float32)
        return maps

    return compute
