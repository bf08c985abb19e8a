"""Sphinx configuration of the skvae documentation.

Build (warnings are errors) from the repository root:

    sphinx-build -W -b html docs docs/_build/html

Add ``-D plot_gallery=0`` to skip running the gallery examples (a quick check of the
pages and docstrings).

The site reads offline: MathJax is copied into it by the ``sphinx-mathjax-offline``
extension, and ``_ext/skvae_docs.py`` fails the build if a page loads a script or a
stylesheet from the network. The same local extension defines ``|BetaCurveVAE.max_iter|``
and friends, one substitution per estimator parameter, from ``get_params()``: quote
defaults in prose with them rather than with numbers.
"""

import os
import re
import sys
import warnings

# Import the package from this checkout, whether or not it is installed.
sys.path.insert(0, os.path.abspath(".."))
# Local extensions of these docs.
sys.path.insert(0, os.path.abspath("_ext"))

import skvae_docs  # noqa: E402
import torch  # noqa: E402

import skvae  # noqa: E402

project = "skvae"
author = "the skvae developers"
copyright = "the skvae developers"
version = release = skvae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # serves MathJax from the site: formulas render offline
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skvae_docs",  # |Class.param| defaults from the code; fails on remote scripts
]

# MathJax from the site's _static/ (copied there by sphinx-mathjax-offline), never a CDN.
mathjax_path = "mathjax/tex-chtml.js"

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    # left by older builds; they load scripts from a CDN (see sphinx_gallery_conf)
    "sg_execution_times.rst",
    "auto_examples/sg_execution_times.rst",
]
root_doc = "index"
default_role = "literal"

# -- API reference -----------------------------------------------------------------
autosummary_generate = True
# No "members" default: Sphinx lets a default of True override the explicit member
# lists of the class template.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# The class template lists every public member a class has, its mixins' included, and
# names the methods inherited from scikit-learn (see _ext/skvae_docs.py).
autosummary_context = {
    "skvae_api_members": {
        name: skvae_docs.api_members(cls) for name, cls in skvae_docs.public_classes().items()
    },
    "skvae_defined_in": skvae_docs.defined_in(),
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False

# -- Gallery ---------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    # the order of the getting-started path (skvae_docs.GALLERY_ORDER)
    "within_subsection_order": "skvae_docs.GalleryOrder",
    "image_scrapers": (skvae_docs.GalleryScraper(),),  # figures at 150 dpi
    "doc_module": ("skvae",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"skvae": None},
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "min_reported_time": 1,
    "show_memory": False,
    "abort_on_example_error": True,
    "capture_repr": (),
    # The computation-times pages load jQuery and DataTables from a CDN: leave them out
    # so that the site reads offline (checked after the build by _ext/skvae_docs.py).
    "write_computation_times": False,
}

# The examples fit small networks. One torch thread per operation costs little on an
# idle machine and avoids a large slowdown on a busy one, where a second thread mostly
# waits for a core (measured on a shared 2-core machine: 11 s with 1 thread, 140 s with
# 2, for the same fit). Override with SKVAE_DOCS_TORCH_THREADS.
torch.set_num_threads(int(os.environ.get("SKVAE_DOCS_TORCH_THREADS", "1")))

# The gallery's fits are deliberately short: hide their "not converged" warnings.
warnings.filterwarnings("ignore", message=".*maximum iterations.*")


# -- Docstring types ---------------------------------------------------------------
# numpydoc renders a parameter as "**name** : type". Types such as
# "ndarray of shape (n_features_in_,)" end words with an underscore, which
# reStructuredText reads as a hyperlink reference (an error under -W). Escape those
# underscores in the type part only, after numpydoc has formatted the docstring.
_FIELD = re.compile(r"^(\s*\*\*[^*]+\*\* : )(.*)$")
_LITERAL = re.compile(r"(``.+?``|`[^`]+`)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w\\])([A-Za-z]\w*?)_(?=[\s,.;:)\]]|$)")


def _escape_type_underscores(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        match = _FIELD.match(line)
        if match is None:
            continue
        parts = _LITERAL.split(match.group(2))
        escaped = [
            part if k % 2 else _TRAILING_UNDERSCORE.sub(r"\1\\_", part)
            for k, part in enumerate(parts)
        ]
        lines[i] = match.group(1) + "".join(escaped)


def setup(app):
    # numpydoc formats docstrings at the default priority (500); run after it.
    app.connect("autodoc-process-docstring", _escape_type_underscores, priority=900)
