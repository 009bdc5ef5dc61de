"""Gallery helpers for the documentation build.

:func:`figure_scraper` shows the figures that pixgmm's own plotting functions
return (:func:`pixgmm.metrics.roc_figure`, :func:`~pixgmm.metrics.confusion_matrix_figure`,
...). Those are plain :class:`matplotlib.figure.Figure` objects, never registered
with pyplot, so sphinx-gallery's matplotlib scraper cannot see them; this one
finds them among the example's variables after each code block. It must come
before the matplotlib scraper in ``image_scrapers``, while pyplot still
manages its own figures.
"""

from __future__ import annotations

from pathlib import PurePosixPath


def figure_scraper(block, block_vars, gallery_conf, **kwargs):
    """Save every new pyplot-less Figure in the example's globals; return its reST."""
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    shown = block_vars.setdefault("pixgmm_figures_seen", [])
    figures = []
    for value in block_vars["example_globals"].values():
        if not isinstance(value, Figure) or any(value is seen for seen in shown):
            continue
        shown.append(value)
        # pyplot's own figures are the matplotlib scraper's (which runs after this one
        # and closes them); only figures pyplot never knew are saved here
        if value.canvas.manager is None:
            figures.append(value)
    paths = []
    for figure, path in zip(figures, block_vars["image_path_iterator"]):
        path = PurePosixPath(path)
        figure.savefig(path)
        paths.append(path)
    if not paths:
        return ""
    return figure_rst(paths, gallery_conf["src_dir"])
