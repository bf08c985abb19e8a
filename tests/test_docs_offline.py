"""The documentation reads offline and quotes defaults from the code.

``docs/_ext/skvae_docs.py`` is the docs' local Sphinx extension: after an HTML build it
fails the build when a page loads a script or a stylesheet from the network (or a local
one that is missing), and it defines one ``|Class.param|`` substitution per estimator
parameter from ``get_params()``. These tests run its pieces without building the docs.
"""

import ast
import importlib.util
from pathlib import Path

import pytest

from skvae import BetaCurveVAE, LatentMatcher

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def ext():
    spec = importlib.util.spec_from_file_location("skvae_docs", DOCS / "_ext" / "skvae_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site(tmp_path, pages: dict[str, str], files=()):
    for name, body in pages.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<html><head>{body}</head><body></body></html>")
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("// asset")
    return tmp_path


def test_remote_scripts_and_stylesheets_are_reported(ext, tmp_path):
    site = _site(
        tmp_path,
        {
            "index.html": '<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>',
            "a/page.html": '<script src="//cdn.example.org/x.js"></script>'
            '<link rel="stylesheet" href="http://cdn.example.org/x.css">'
            '<link rel="preload" as="font" href="https://fonts.example.org/f.woff2">',
        },
    )
    problems = ext.offline_problems(site)
    assert len(problems) == 4
    assert all("from the network" in p for p in problems)
    assert problems[0].startswith("a/page.html: script loads //cdn")


def test_local_resources_and_links_pass_missing_ones_are_reported(ext, tmp_path):
    site = _site(
        tmp_path,
        {
            "user_guide/page.html": '<script src="../_static/mathjax/tex-chtml.js"></script>'
            '<link rel="stylesheet" href="../_static/theme.css?digest=abc">'
            '<a href="https://scikit-learn.org">a link is not loaded</a>'
            '<link rel="canonical" href="https://example.org/page.html">'
            "<script>inline();</script>",
            "index.html": '<script src="_static/missing.js"></script>',
            # the theme keeps HTML templates among its assets: not pages
            "_static/macros.html": '<script src="{{ pathto(x) }}"></script>',
        },
        files=["_static/mathjax/tex-chtml.js", "_static/theme.css"],
    )
    assert ext.offline_problems(site) == [
        "index.html: script _static/missing.js is not in the built site"
    ]


def test_substitutions_cover_every_estimator_parameter(ext):
    text = ext.default_substitutions()
    for cls in (BetaCurveVAE, LatentMatcher):
        for name, value in cls().get_params(deep=False).items():
            assert f".. |{cls.__name__}.{name}| replace:: ``{value!r}``" in text


def test_conf_serves_mathjax_from_the_site():
    tree = ast.parse((DOCS / "conf.py").read_text())
    values = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    extensions = ast.literal_eval(values["extensions"])
    assert {"sphinx.ext.mathjax", "sphinx-mathjax-offline", "skvae_docs"} <= set(extensions)
    mathjax_path = ast.literal_eval(values["mathjax_path"])
    assert "://" not in mathjax_path and not mathjax_path.startswith("//")
    gallery = values["sphinx_gallery_conf"]
    gallery = {ast.literal_eval(k): v for k, v in zip(gallery.keys, gallery.values)}
    # sphinx-gallery's computation-times pages load jQuery and DataTables from a CDN
    assert ast.literal_eval(gallery["write_computation_times"]) is False


def test_links_to_missing_pages_or_anchors_are_reported(ext, tmp_path):
    site = tmp_path
    (site / "generated").mkdir()
    (site / "_modules").mkdir()
    (site / "generated" / "f.html").write_text(
        '<html><body><dt id="skvae.make_beta_curves">f</dt><a href="#">top</a></body></html>'
    )
    (site / "_modules" / "datasets.html").write_text(
        "<html><body>"
        '<a href="../generated/f.html#skvae.make_beta_curves">fine</a>'
        '<a href="../generated/f.html#skvae.datasets.make_beta_curves">no such anchor</a>'
        '<a href="../generated/g.html">no such page</a>'
        '<a href="#here">no anchor on this page</a>'
        '<a href="https://example.org/#x">remote: not checked</a>'
        "</body></html>"
    )
    assert ext.broken_links(site) == [
        "_modules/datasets.html: link ../generated/f.html#skvae.datasets.make_beta_curves "
        "to a missing anchor",
        "_modules/datasets.html: link ../generated/g.html to a missing page",
        "_modules/datasets.html: link #here to a missing anchor",
    ]
