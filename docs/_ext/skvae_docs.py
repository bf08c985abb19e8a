"""Local Sphinx extension of the skvae docs: defaults from the code, and an offline check.

* ``|BetaCurveVAE.max_iter|``, ``|LatentMatcher.xatol|``, ...: one reST substitution per
  constructor parameter of the public estimators, made from ``get_params()`` of a fresh
  instance when the build starts, so prose that quotes a default cannot go stale.
  ``|format_version|`` is the version of the file format :func:`skvae.save` writes, read
  from a file it saves.
* :func:`api_members` chooses what a class's API page documents: every public method and
  property defined by skvae, wherever in the class hierarchy (mixins included), and the
  names of the public methods inherited from scikit-learn, listed without their
  docstrings. ``conf.py`` hands the choice to the autosummary class template.
* :class:`GalleryOrder` sorts the gallery along the getting-started path (first fit,
  looking at it, matching, uncertainty, scaling out) rather than by file name.
* ``.. markdown-file:: path``: a Markdown file of the repository (the benchmark results,
  ``benchmarks/results/results.md``) rendered in place, converted to reST by
  :func:`markdown_to_rst` (headings, paragraphs, pipe tables, emphasis, inline code and
  images: what ``benchmarks/run.py`` writes), so the site shows the current file.
* After an HTML build, every page is scanned: a ``<script src>`` or a stylesheet, font or
  preload ``<link>`` that points off the site, or a local one whose file is missing,
  fails the build, and so does a local link (``<a href>``) to a missing page or to an
  anchor that its page does not have. The pages must read without network access (formulas included:
  MathJax is served from the site by the ``sphinx-mathjax-offline`` extension).
"""

from __future__ import annotations

import html.parser
import posixpath
import re
from pathlib import Path

from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList

#: ``<link rel=...>`` kinds that the browser fetches while rendering the page.
_FETCHED_LINKS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "manifest"}


def default_substitutions() -> str:
    """reST substitution definitions ``|Class.param|`` -> ````repr(default)````, and
    ``|format_version|``."""
    from skvae import BetaCurveVAE, LatentMatcher

    lines = []
    for cls in (BetaCurveVAE, LatentMatcher):
        for name, value in sorted(cls().get_params(deep=False).items()):
            lines.append(f".. |{cls.__name__}.{name}| replace:: ``{value!r}``")
    lines.append(f".. |format_version| replace:: {saved_format_version()}")
    return "\n".join(lines) + "\n"


def saved_format_version() -> int:
    """The ``format_version`` recorded in a file that :func:`skvae.save` writes now."""
    import io
    import json
    import warnings
    import zipfile

    import skvae

    X, _ = skvae.make_beta_curves(n_samples=8, n_points=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch does not converge
        vae = skvae.BetaCurveVAE(max_iter=1, hidden_layer_sizes=(2,), random_state=0).fit(X)
    buffer = io.BytesIO()
    skvae.save(vae, buffer)
    with zipfile.ZipFile(buffer) as archive:
        return int(json.loads(archive.read("skvae.json"))["format_version"])


def _is_skvae(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "skvae"


def api_members(cls: type) -> dict[str, list[str]]:
    """The public members of ``cls`` that its API page lists.

    ``"own"``: methods and properties defined by skvae's classes (the class itself or any
    skvae base class: documented with their docstrings), except fitted attributes (names
    ending with ``_``), which the class docstring's Attributes section describes.
    ``"fitted"``: those fitted-attribute properties. ``"inherited"``: public names that
    come from scikit-learn's (or other libraries') base classes, such as ``get_params`` or
    ``fit_transform``, named on the page and documented by their library; with them the
    ``set_{method}_request`` setters of metadata routing, which scikit-learn writes into
    the class itself when one of its methods takes an argument beyond ``X`` and ``y``.
    """
    own, fitted, inherited = [], [], []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next(klass for klass in cls.__mro__ if name in vars(klass))
        routing_setter = name.startswith("set_") and name.endswith("_request")
        if routing_setter or not _is_skvae(owner):
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


#: The gallery's examples in reading order: the path of the getting-started page.
GALLERY_ORDER = (
    "plot_beta_analysis.py",  # a first fit and its figures
    "plot_damped_oscillations.py",  # the same on a family of your own
    "plot_real_spectra.py",  # measured curves, next to PCA
    "plot_sampling.py",  # what the model generates
    "plot_partial_curves.py",  # matching and completing curves
    "plot_fill_gaps.py",  # training on and filling gaps in measured curves
    "plot_match_uncertainty.py",  # how sure a match is
    "plot_recover_parameters.py",  # pipelines and grid search
    "plot_dask_scaling.py",  # scaling out
)


class GalleryOrder:
    """sphinx-gallery's ``within_subsection_order``: :data:`GALLERY_ORDER`, then any other
    example by file name."""

    def __init__(self, src_dir: str):
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = posixpath.basename(str(filename).replace("\\", "/"))
        rank = GALLERY_ORDER.index(name) if name in GALLERY_ORDER else len(GALLERY_ORDER)
        return rank, name


class GalleryScraper:
    """sphinx-gallery's matplotlib scraper, saving the figures at :attr:`dpi` (sharp on
    high-resolution screens; matplotlib's default is 100)."""

    dpi = 150

    def __call__(self, block, block_vars, gallery_conf):
        from sphinx_gallery.scrapers import matplotlib_scraper

        return matplotlib_scraper(block, block_vars, gallery_conf, dpi=self.dpi)

    def __repr__(self):  # sphinx-gallery compares configurations by their repr
        return f"GalleryScraper(dpi={self.dpi})"


_HEADING_MARKS = {1: "=", 2: "-", 3: "~", 4: "^"}
_CODE = re.compile(r"(`[^`]+`)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w\\])_(\S(?:.*?\S)?)_(?!\w)")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<path>[^)]+)\)$")


def _inline(text: str) -> str:
    """Markdown inline markup (code, bold, italics) as reST, other markup escaped."""
    whole = re.fullmatch(r"_(\S.*\S)_", text.strip())
    if whole:  # a line in italics (reST does not nest markup: code inside shows as is)
        return f"*{_inline(whole.group(1))}*"
    out = []
    for k, part in enumerate(_CODE.split(text)):
        if k % 2:  # `code` -> ``code``
            out.append(f"`{part}`")
            continue
        bold = _BOLD.split(part)  # odd items: the text in **...**
        for b, piece in enumerate(bold):
            piece = piece.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
            piece = _ITALIC.sub(lambda m: f"*{m.group(1)}*", piece)
            piece = re.sub(r"(?<=\w)_(?!\w)", r"\\_", piece)  # a trailing _ is a reST link
            out.append(f"**{piece}**" if b % 2 else piece)
    return "".join(out)


def _table(rows: list[str]) -> list[str]:
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], [r for r in cells[2:]]
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        for k, cell in enumerate(row):
            text = _inline(cell) if cell else ""
            lines.append(f"   {'* -' if k == 0 else '  -'} {text}".rstrip())
    return [*lines, ""]


def markdown_to_rst(text: str, *, image_dir: str = ".") -> str:
    """The Markdown that ``benchmarks/run.py`` writes, as reST.

    Headings (``#``...), paragraphs, pipe tables, ``**bold**``, ``_italics_``, inline
    code and images on a line of their own; images are looked up in ``image_dir``.
    """
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            out += _table(block)
            continue
        if heading := re.match(r"^(#{1,4})\s+(.*)$", line):
            title = _inline(heading.group(2))
            out += [title, _HEADING_MARKS[len(heading.group(1))] * len(title), ""]
        elif image := _IMAGE.match(line.strip()):
            out += [f".. image:: {image_dir}/{image['path']}", f"   :alt: {image['alt']}", ""]
        else:
            out.append(_inline(line))
        i += 1
    return "\n".join(out) + "\n"


class MarkdownFile(Directive):
    """``.. markdown-file:: ../benchmarks/results/results.md`` (path from the page)."""

    required_arguments = 1
    option_spec = {"skip-title": directives.flag}

    def run(self):
        env = self.state.document.settings.env
        relative, absolute = env.relfn2path(self.arguments[0])
        env.note_dependency(relative)
        text = Path(absolute).read_text(encoding="utf-8")
        if "skip-title" in self.options:  # the page has its own
            text = re.sub(r"\A#\s.*\n", "", text)
        image_dir = posixpath.dirname(self.arguments[0])
        rst = markdown_to_rst(text, image_dir=image_dir)
        self.state_machine.insert_input(StringList(rst.splitlines(), absolute), absolute)
        return []


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
    app.add_directive("markdown-file", MarkdownFile)
    app.connect("config-inited", _add_substitutions)
    # After sphinx-mathjax-offline has copied MathJax into the site (default priority).
    app.connect("build-finished", _check_offline, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
