"""Sphinx configuration of pixgmm's documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install -e ".[all,docs]"``). The gallery's scripts in ``examples/`` run
during the build and draw their pictures; the API pages are generated from the
numpydoc docstrings and the command-line pages from the click commands.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the source tree's pixgmm, installed or not (an editable install points here too)
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "docs" / "sphinxext"))  # the gallery's figure scraper

from sphinx import addnodes  # noqa: E402
from sphinx.transforms import SphinxTransform  # noqa: E402

import pixgmm  # noqa: E402

project = "pixgmm"
author = "pixgmm developers"
copyright = "pixgmm developers"
version = release = pixgmm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_click",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# the user guide is Markdown (MyST): "[text](file.md)" links work on GitHub and here alike
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
default_role = "autolink"
smartquotes = False  # "--option" stays two hyphens, as the command line spells it
nitpicky = False

# -- API reference --------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False
# Validate what numpydoc renders: structure (sections known and in order, parameters that
# exist), not style preferences (every docstring need not have See Also or an Examples).
numpydoc_validation_checks = {"GL06", "GL07", "GL08", "PR02", "PR06", "PR10", "RT02", "YD01"}

# -- Gallery --------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "backreferences_dir": None,
    "min_reported_time": 1,
    "abort_on_example_error": False,
    "image_scrapers": ("pixgmm_gallery.figure_scraper", "matplotlib"),
}
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"pixgmm {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "auto_examples/index": []}
html_show_sourcelink = False
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


# -- Constants: their ``#:`` comment, not their type's docstring ------------------------------
_CONSTANT_DOCS = {}


def _constant_docs():
    """``{name: [(module, lines), ...]}`` of every ``#:`` comment on a module-level name."""
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    docs = {}
    names = ["pixgmm"] + [
        m.name
        for m in pkgutil.walk_packages(pixgmm.__path__, "pixgmm.")
        if not m.name.endswith("__main__")  # importing it would run the command line
    ]
    for module in names:
        try:
            attrs = ModuleAnalyzer.for_module(module).find_attr_docs()
        except Exception:  # a module without source: nothing to find
            continue
        for (scope, name), lines in attrs.items():
            if scope == "":
                docs.setdefault(name, []).append((module, list(lines)))
    return docs


def _document_constant(app, what, name, obj, options, lines):
    """A constant's page shows the ``#:`` comment where it is defined, never ``str.__doc__``."""
    import importlib

    if what not in ("data", "attribute") or not isinstance(obj, (str, int, float, tuple)):
        return
    if not _CONSTANT_DOCS:
        _CONSTANT_DOCS.update(_constant_docs())
    own = []
    for module, doc in _CONSTANT_DOCS.get(name.rsplit(".", 1)[-1], []):
        if getattr(importlib.import_module(module), name.rsplit(".", 1)[-1], None) == obj:
            own = doc
            break
    inherited = (type(obj).__doc__ or "").strip()
    if own or "\n".join(lines).strip() == inherited:
        lines[:] = own


# -- Command line: a help text's "Examples:" block becomes a code block -------------------------
def _examples_as_code(app, ctx, lines):
    """Render the ``\\b`` "Examples:" paragraph of a click help text as shell code.

    sphinx-click turns a ``\\b`` paragraph into a line block, whose inline markup
    (``hands/*.jpg``) reStructuredText would read as emphasis.
    """
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("| ") and line[2:].strip().endswith(":") and not line[2:3].isspace():
            block = []
            j = i + 1
            while j < len(lines) and lines[j].startswith("|  "):
                block.append(lines[j][2:])
                j += 1
            if block:
                indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
                out += [line[2:].strip(), "", ".. code-block:: bash", ""]
                out += ["   " + b[indent:] for b in block]
                out.append("")
                i = j
                continue
        out.append(line)
        i += 1
    lines[:] = out


# -- Links from the guide to the repository's own files (results files, benchmarks/README.md) --
class RepositoryFileLinks(SphinxTransform):
    """Turn a guide link to a Markdown file outside ``docs/`` into a download of that file.

    ``[results.md](../../benchmarks/results.md)`` works on GitHub as written; MyST takes
    any ``.md`` link for a page of the site, which such a file is not. Here it becomes a
    download link (the file as committed), so it works in the built site too. A link to
    a file that does not exist still fails the build.
    """

    default_priority = 500

    def apply(self, **kwargs):
        env = self.env
        here = Path(env.doc2path(env.docname)).parent
        for node in list(self.document.findall(addnodes.pending_xref)):
            target = node.get("reftarget", "")
            if node.get("refdomain") != "doc" or target in env.found_docs:
                continue
            srcdir = Path(env.srcdir).resolve()
            paths = [srcdir / (target + suffix) for suffix in self.config.source_suffix]
            path = next((p for p in paths if p.is_file()), None)
            if path is None or path.resolve().is_relative_to(srcdir):
                continue
            download = addnodes.download_reference(
                "",
                "",
                *node.children,
                refdomain=None,
                reftype="myst",
                refdoc=env.docname,
                refexplicit=True,
                reftarget=os.path.relpath(path, here),
            )
            node.replace_self(download)


def setup(app):
    app.add_transform(RepositoryFileLinks)
    app.connect("autodoc-process-docstring", _document_constant, priority=100)  # before numpydoc
    app.connect("sphinx-click-process-description", _examples_as_code)
