"""Checks of the documentation sources: the user guide's code runs, the API reference is
complete, and the gallery examples are well-formed. (The Sphinx build itself is run by
the documentation command, not by the test suite.)"""

import ast
import doctest
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

import skvae
import skvae.datasets
import skvae.plotting

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PAGES_WITH_CODE = sorted(
    p for p in DOCS.rglob("*.rst") if "_build" not in p.parts and ">>>" in p.read_text()
)


def test_user_guide_has_code_examples():
    names = {p.name for p in PAGES_WITH_CODE}
    assert {"model.rst", "kl_divergence.rst", "matching.rst", "model_selection.rst"} <= names


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(DOCS)))
def test_user_guide_code_runs(page):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    try:
        result = doctest.testfile(str(page), module_relative=False, optionflags=flags)
    finally:
        plt.close("all")
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} doctest failure(s) in {page.name}"


def _documented_names():
    names, module = set(), None
    for line in (DOCS / "api.rst").read_text().splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = m.group(1)
        elif m := re.match(r"   ([A-Za-z_]\w*)$", line):
            names.add(f"{module}.{m.group(1)}")
    return names


def test_api_reference_lists_every_public_name():
    public = {f"skvae.{name}" for name in skvae.__all__ if name != "__version__"}
    public |= {f"skvae.plotting.{name}" for name in skvae.plotting.__all__}
    public |= {
        f"skvae.datasets.{name}"
        for name in skvae.datasets.__all__
        if name not in skvae.__all__  # documented once, under skvae
    }
    documented = _documented_names()
    assert public - documented == set(), "public names missing from docs/api.rst"
    assert documented - public == set(), "docs/api.rst documents names that are not public"


EXAMPLE_FILES = sorted(EXAMPLES.glob("plot_*.py"))


def test_gallery_has_the_examples():
    names = {p.stem for p in EXAMPLE_FILES}
    assert {
        "plot_beta_analysis",
        "plot_sampling",
        "plot_partial_curves",
        "plot_recover_parameters",
        "plot_damped_oscillations",  # a family other than Beta curves
    } <= names
    assert (EXAMPLES / "README.rst").exists()


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_has_a_titled_docstring(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    docstring = ast.get_docstring(tree, clean=False)
    assert docstring, f"{path.name} needs a module docstring (sphinx-gallery's header)"
    lines = [line for line in docstring.strip("\n").splitlines()]
    # "====" over and under the title, at least as long as it
    overline, title, underline = lines[0], lines[1], lines[2]
    assert set(overline) == {"="} and overline == underline
    assert len(underline) >= len(title.strip())


def _docs_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location("skvae_docs", DOCS / "_ext" / "skvae_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_order_places_every_example():
    """Each example has its place on the getting-started path: none sorts by file name."""
    ext = _docs_extension()
    assert sorted(ext.GALLERY_ORDER) == sorted(p.name for p in EXAMPLE_FILES)
    order = ext.GalleryOrder(str(EXAMPLES))
    ranked = sorted((str(p) for p in EXAMPLE_FILES), key=order)
    assert [Path(p).name for p in ranked] == list(ext.GALLERY_ORDER)


def test_changelog_starts_with_this_version():
    text = (DOCS / "changelog.rst").read_text()
    releases = re.findall(r"(?m)^(\d+\.\d+\.\d+)\n-+$", text)
    assert releases[0] == skvae.__version__
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


def test_markdown_pages_convert_to_valid_rest():
    """The benchmark results page renders results.md: its reST parses without warnings."""
    import io

    import docutils.core

    ext = _docs_extension()
    markdown = (ROOT / "benchmarks" / "results" / "results.md").read_text()
    warnings = io.StringIO()
    docutils.core.publish_doctree(
        ext.markdown_to_rst(markdown).replace(".. image::", ".. figure::"),
        settings_overrides={"warning_stream": warnings, "report_level": 2},
    )
    assert warnings.getvalue() == ""
    rst = ext.markdown_to_rst(
        "# T\n\n_Measured by `run.py`._\n\n**bold** kl_curve_ a|b _it_\n\n"
        "| a | b |\n|---|---|\n| 1 |  |\n"
    )
    assert "*Measured by ``run.py``.*" in rst
    assert "**bold** kl_curve\\_ a\\|b *it*" in rst
    assert ".. list-table::" in rst and "   * - 1" in rst


def _example_prose(path: Path) -> str:
    """The reST text of an example: its docstring and its comment lines."""
    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    comments = [line.strip()[1:] for line in source.splitlines() if line.strip().startswith("#")]
    return docstring + "\n" + "\n".join(comments)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_prose_quotes_no_measured_number(path):
    """Numbers an example measures (errors, rates, noise levels) belong in its printed
    output, computed, never typed into the prose next to it, where they go stale."""
    prose = _example_prose(path)
    measured = re.findall(r"(?<![\w.])\d+\.\d{3,}(?![\w.])", prose)
    assert measured == [], f"{path.name} quotes measured-looking numbers: {measured}"
