"""Sphinx configuration of the mlops_nb docs site.

The source folder is `_proc/site/`, written by `mlops-nb docs build` (see nbs/api/86_site.ipynb):
notebooks already processed by nbdev and converted for myst-nb. Nothing here loads from the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mathjax  # the django-static-mathjax package: MathJax 3 as files, so math renders offline

import mlops_nb

project = "mlops_nb"
author = "mlops_nb developers"
copyright = "mlops_nb developers"
version = release = mlops_nb.__version__

extensions = ["myst_nb"]
exclude_patterns = ["**/.ipynb_checkpoints", ".doctrees"]

# Notebooks are executed (with a cache) by mlops_nb.site before Sphinx sees them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 4
# nbdev's `show_doc` writes headings one level below the page title: section levels may skip.
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = "mlops_nb"
html_static_path = ["_static"]
html_css_files = ["mlops_nb.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
}

# MathJax from the local package, copied into _static/mathjax/ (SVG output: the fonts are inside the script).
_MATHJAX_SOURCE = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg.js"
mathjax_path = "mathjax/tex-svg.js"


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_MATHJAX_SOURCE, target / _MATHJAX_SOURCE.name)


def setup(app):
    app.connect("build-finished", _copy_mathjax)
