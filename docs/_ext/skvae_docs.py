"""Local Sphinx extension of the skvae docs: defaults from the code, and an offline check.

* ``|BetaCurveVAE.max_iter|``, ``|LatentMatcher.xatol|``, ...: one reST substitution per
  constructor parameter of the public estimators, made from ``get_params()`` of a fresh
  instance when the build starts, so prose that quotes a default cannot go stale.
* :func:`api_members` chooses what a class's API page documents: every public method and
  property defined by skvae, wherever in the class hierarchy (mixins included), and the
  names of the public methods inherited from scikit-learn, listed without their
  docstrings. ``conf.py`` hands the choice to the autosummary class template.
* After an HTML build, every page is scanned: a ``<script src>`` or a stylesheet, font or
  preload ``<link>`` that points off the site, or a local one whose file is missing,
  fails the build, and so does a local link (``<a href>``) to a missing page or to an
  anchor that its page does not have. The pages must read without network access (formulas included:
  MathJax is served from the site by the ``sphinx-mathjax-offline`` extension).
"""

from __future__ import annotations

import html.parser
import posixpath
from pathlib import Path

#: ``<link rel=...>`` kinds that the browser fetches while rendering the page.
_FETCHED_LINKS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "manifest"}


def default_substitutions() -> str:
    """reST substitution definitions ``|Class.param|`` -> ````repr(default)````."""
    from skvae import BetaCurveVAE, LatentMatcher

    lines = []
    for cls in (BetaCurveVAE, LatentMatcher):
        for name, value in sorted(cls().get_params(deep=False).items()):
            lines.append(f".. |{cls.__name__}.{name}| replace:: ``{value!r}``")
    return "\n".join(lines) + "\n"


def _is_skvae(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "skvae"


def api_members(cls: type) -> dict[str, list[str]]:
    """The public members of ``cls`` that its API page lists.

    ``"own"``: methods and properties defined by skvae's classes (the class itself or any
    skvae base class: documented with their docstrings), except fitted attributes (names
    ending with ``_``), which the class docstring's Attributes section describes.
    ``"fitted"``: those fitted-attribute properties. ``"inherited"``: public names that
    come from scikit-learn's (or other libraries') base classes, such as ``get_params`` or
    ``fit_transform``, named on the page and documented by their library.
    """
    own, fitted, inherited = [], [], []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next(klass for klass in cls.__mro__ if name in vars(klass))
        if not _is_skvae(owner):
            inherited.append(name)
        elif name.endswith("_"):
            fitted.append(name)
        else:
            own.append(name)
    return {"own": own, "fitted": fitted, "inherited": inherited}


def public_classes() -> dict[str, type]:
    """``{"skvae.BetaCurveVAE": BetaCurveVAE, ...}``: the classes the API reference shows."""
    import skvae
    import skvae.plotting

    classes = {}
    for module in (skvae, skvae.plotting):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                classes[f"{module.__name__}.{name}"] = obj
    return classes


def defined_in() -> dict[str, str]:
    """``{"skvae.make_beta_curves": "skvae.datasets", ...}``: public names whose defining
    module differs from the one the API reference documents them under."""
    import skvae

    homes = {}
    for name in skvae.__all__:
        obj = getattr(skvae, name)
        module = getattr(obj, "__module__", None)
        if module and module != "skvae" and not module.split(".")[-1].startswith("_"):
            homes[f"skvae.{name}"] = module
    return homes


class _Resources(html.parser.HTMLParser):
    """Collects the URLs a page makes the browser fetch (scripts, stylesheets, fonts),
    its links (``<a href>``) and the ids of its elements (the anchors links point at)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "script" and attrs.get("src"):
            self.urls.append(("script", attrs["src"]))
        elif tag == "link" and attrs.get("href"):
            rel = set((attrs.get("rel") or "").lower().split())
            if rel & _FETCHED_LINKS:
                self.urls.append((f"link rel={' '.join(sorted(rel))}", attrs["href"]))


def _is_remote(url: str) -> bool:
    lowered = url.strip().lower()
    return lowered.startswith(("http:", "https:", "//", "ftp:")) or "://" in lowered


def offline_problems(outdir: str | Path) -> list[str]:
    """Remote or missing resources referenced by the HTML pages under ``outdir``.

    ``_static/`` holds assets, not pages (the theme copies HTML templates there), and is
    skipped.
    """
    outdir = Path(outdir)
    problems = []
    for where, parser in _parsed_pages(outdir).items():
        for kind, url in parser.urls:
            if _is_remote(url):
                problems.append(f"{where}: {kind} loads {url} from the network")
                continue
            if url.startswith(("data:", "#")):
                continue
            local = url.split("#", 1)[0].split("?", 1)[0]
            target = posixpath.normpath(posixpath.join(posixpath.dirname(where), local))
            if not (outdir / target).is_file():
                problems.append(f"{where}: {kind} {url} is not in the built site")
    return problems


def _parsed_pages(outdir: Path) -> dict[str, _Resources]:
    """Every HTML page under ``outdir`` (``_static/`` excepted), parsed, by relative path."""
    pages = {}
    for page in sorted(outdir.rglob("*.html")):
        where = page.relative_to(outdir).as_posix()
        if where.split("/", 1)[0] == "_static":
            continue
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        pages[where] = parser
    return pages


def broken_links(outdir: str | Path) -> list[str]:
    """Local links of the HTML pages under ``outdir`` whose page or anchor is missing."""
    outdir = Path(outdir)
    pages = _parsed_pages(outdir)
    problems = []
    for where, parser in pages.items():
        for url in parser.links:
            if _is_remote(url) or url.startswith(("mailto:", "data:", "javascript:")):
                continue
            local, _, anchor = url.partition("#")
            local = local.split("?", 1)[0]
            if local:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(where), local))
            else:
                target = where
            if not (outdir / target).exists():
                problems.append(f"{where}: link {url} to a missing page")
            elif anchor and target in pages and anchor not in pages[target].ids:
                problems.append(f"{where}: link {url} to a missing anchor")
    return problems


def _check_offline(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    problems = offline_problems(app.outdir) + broken_links(app.outdir)
    if problems:
        from sphinx.errors import ExtensionError

        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ExtensionError(
            "The built pages must read offline with working links, but they reference "
            f"resources that are remote or missing, or link to nothing:\n  {shown}{more}"
        )


def _add_substitutions(app, config):
    config.rst_prolog = (config.rst_prolog or "") + "\n" + default_substitutions()


def setup(app):
    app.connect("config-inited", _add_substitutions)
    # After sphinx-mathjax-offline has copied MathJax into the site (default priority).
    app.connect("build-finished", _check_offline, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
