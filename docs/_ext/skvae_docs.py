"""Local Sphinx extension of the skvae docs: defaults from the code, and an offline check.

* ``|BetaCurveVAE.max_iter|``, ``|LatentMatcher.xatol|``, ...: one reST substitution per
  constructor parameter of the public estimators, made from ``get_params()`` of a fresh
  instance when the build starts, so prose that quotes a default cannot go stale.
* After an HTML build, every page is scanned: a ``<script src>`` or a stylesheet, font or
  preload ``<link>`` that points off the site, or a local one whose file is missing,
  fails the build. The pages must read without network access (formulas included:
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


class _Resources(html.parser.HTMLParser):
    """Collects the URLs a page makes the browser fetch: scripts, stylesheets, fonts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
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
    for page in sorted(outdir.rglob("*.html")):
        if page.relative_to(outdir).parts[0] == "_static":
            continue
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for kind, url in parser.urls:
            where = page.relative_to(outdir).as_posix()
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


def _check_offline(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    problems = offline_problems(app.outdir)
    if problems:
        from sphinx.errors import ExtensionError

        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ExtensionError(
            "The built pages must read offline, but they reference resources that are "
            f"remote or missing:\n  {shown}{more}"
        )


def _add_substitutions(app, config):
    config.rst_prolog = (config.rst_prolog or "") + "\n" + default_substitutions()


def setup(app):
    app.connect("config-inited", _add_substitutions)
    # After sphinx-mathjax-offline has copied MathJax into the site (default priority).
    app.connect("build-finished", _check_offline, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
