"""Defaults and counts quoted in prose must match the code.

The documentation pages, the README files and the gallery examples mention defaults
("the default 400 epochs", "batch 512 by default", "``noise="learned"`` (default)") and
counts ("the five figures"). Numbers in prose go stale when the code changes, so every
such quote is found here with an explicit table of patterns and compared with the live
code: ``get_params()`` of a fresh estimator, the signature of a function, or a module
constant. Prose that needs a default without risking staleness should use the Sphinx
substitutions made in ``docs/conf.py`` (``|BetaCurveVAE.max_iter|``) instead.

Each pattern carries sentences it must read (and the value it must read from them) and
sentences it must leave alone, so the table itself is tested.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from skvae import BetaCurveVAE, LatentMatcher

ROOT = Path(__file__).resolve().parents[1]

#: Where prose about the code lives (generated folders excluded).
_GENERATED = {"_build", "auto_examples", "generated", "gen_modules"}
SOURCES = (
    sorted(p for p in (ROOT / "docs").rglob("*.rst") if not _GENERATED & set(p.parts))
    + sorted((ROOT / "examples").glob("*.py"))
    + sorted((ROOT / "examples").glob("*.rst"))
    + [p for p in (ROOT / "README.md", ROOT / "CONTRIBUTING.md") if p.exists()]
    + sorted((ROOT / "benchmarks").glob("**/README.md"))
)

CLASSES = {"BetaCurveVAE": BetaCurveVAE, "LatentMatcher": LatentMatcher}
WORDS = {
    w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())
}


def _number(text: str):
    text = text.replace(",", "").replace("_", "")
    if text.lower() in WORDS:
        return WORDS[text.lower()]
    value = ast.literal_eval(text)
    if not isinstance(value, int | float):
        raise ValueError(text)
    return value


def _literal(text: str):
    """A Python literal as written in prose: ``400``, ``"learned"``, ``(128, 128)``."""
    return ast.literal_eval(text.strip().rstrip(".,;:"))


def _cosine_floor_percent():
    from skvae._torch import loop as _training

    return 100 * _training.COSINE_FLOOR


def _save_figures_count():
    from skvae.plotting import _save

    return len(_save.FIGURE_NAMES)


def _latent_radii():
    from skvae.plotting import LatentSpaceDisplay

    return tuple(inspect.signature(LatentSpaceDisplay.plot).parameters["radii"].default)


@dataclass(frozen=True)
class Quote:
    """A way prose quotes something about the code.

    ``regex`` has a group ``value`` (and ``param`` when the parameter is named in the
    text). ``param`` is the estimator parameter it quotes (None: named by the text);
    ``actual`` instead gives the true value directly, for things that are not parameters.
    """

    name: str
    regex: str
    parse: Callable[[re.Match], object]
    param: str | None = None
    owner: str | None = None  # "BetaCurveVAE" / "LatentMatcher": forced owner of param
    actual: Callable[[], object] | None = None
    reads: dict[str, object] = field(default_factory=dict)  # sentence -> value read
    ignores: tuple[str, ...] = ()

    @property
    def compiled(self) -> re.Pattern:
        return re.compile(self.regex, re.IGNORECASE)


def _value(group="value"):
    return lambda m: _number(m.group(group))


QUOTES = [
    Quote(
        "epochs",
        r"\bdefaults?\s+(?:of\s+)?(?P<value>\d[\d,_]*)\s+epochs\b",
        _value(),
        param="max_iter",
        owner="BetaCurveVAE",
        reads={
            "python -m skvae fits that size with the default 200 epochs": 200,
            "the default of 1,000 epochs": 1000,
        },
        ignores=("for 100 epochs; the original used 10,000 curves", "default max_iter epochs"),
    ),
    Quote(
        "epochs by default",
        r"(?P<value>\d[\d,_]*)\s+epochs,?\s+(?:by\s+default|\((?:the\s+)?default\))",
        _value(),
        param="max_iter",
        owner="BetaCurveVAE",
        reads={"trains for 400 epochs by default": 400, "400 epochs (the default)": 400},
        ignores=("after 1,000 epochs, after which the default",),
    ),
    Quote(
        "default batch",
        r"\bdefault\b[^.;:]{0,40}?\bbatch(?:es)?(?:\s+size)?(?:\s+(?:of|is|=))?\s+"
        r"(?P<value>\d[\d,_]*)",
        _value(),
        param="batch_size",
        reads={
            "skvae's default network (2×128 SiLU, batch 128) does more work": 128,
            "the default batch size is 512": 512,
            "default batches of 256": 256,
        },
        ignores=(
            "skvae's defaults, for skvae's training loop with the seed's network and batch "
            "size (3×32 tanh, 256: separates",
            "batches of 256 from a per-item Dataset",
        ),
    ),
    Quote(
        "batch by default",
        r"\bbatch(?:es)?(?:\s+size)?(?:\s+(?:of|is|=))?\s+(?P<value>\d[\d,_]*)"
        r",?\s+(?:by\s+default|\((?:the\s+)?default\))",
        _value(),
        param="batch_size",
        reads={"mini-batches of 512 by default": 512, "batch size 256 (default)": 256},
    ),
    Quote(
        "default learning rate",
        r"\bdefault\s+(?:initial\s+)?(?:learning\s+rate|step(?:\s+size)?)"
        r"(?:\s+(?:of|is|=))?\s+(?P<value>\d[\d.]*(?:e-?\d+)?)",
        _value(),
        param="learning_rate_init",
        reads={"the default learning rate of 4e-3": 4e-3, "default step 0.001": 1e-3},
        ignores=("the default learning rate schedule",),
    ),
    Quote(
        "default network",
        r"\bdefault\s+network\s+\((?P<layers>\d+)\s*[×x]\s*(?P<width>\d+)\s+(?P<activation>\w+)",
        lambda m: (
            (int(m.group("width")),) * int(m.group("layers")),
            m.group("activation").lower(),
        ),
        param="hidden_layer_sizes, activation",
        reads={"skvae's default network (2×128 SiLU, batch 128)": ((128, 128), "silu")},
    ),
    Quote(
        "latent dims by default",
        r"(?P<value>\d+)\s+latent\s+(?:dims|dimensions)\s+(?:by\s+default|\(default\))",
        _value(),
        param="latent_dims",
        reads={"an MLP VAE, 2 latent dims by default": 2},
        ignores=("a VAE with 2 latent dims",),
    ),
    Quote(
        "name=value (default)",
        r"\b(?P<param>[a-z_]+)\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|\([^)]*\)|[\w.+-]+)"
        r"\s*\((?:the\s+)?default\)",
        lambda m: _literal(m.group("value")),
        reads={
            'noise="learned" (default)': "learned",
            "prior_weight=0 (default)": 0,
            "hidden_layer_sizes=(64, 64) (the default)": (64, 64),
        },
    ),
    Quote(
        "default name=value",
        r"\bdefaults?\s*(?:is\s+|:\s*)?(?P<param>[a-z_]+)\s*=\s*"
        r"(?P<value>\"[^\"]*\"|'[^']*'|\([^)]*\)|[\w.+-]+)",
        lambda m: _literal(m.group("value")),
        reads={"by default max_iter=400": 400, "default: batch_size=512": 512},
    ),
    Quote(
        "numpydoc field",
        r"\b(?P<param>[a-z_]+)\s+:\s+[^,\n]{1,60},\s+default\s*=\s*"
        r"(?P<value>\"[^\"]*\"|'[^']*'|\([^)]*\)|[\w.+-]+)",
        lambda m: _literal(m.group("value")),
        reads={"max_iter : int, default=400": 400},
    ),
    Quote(
        "quoted option (default)",
        r"(?<![=\w])\"(?P<value>[\w-]+)\"\s*\((?:the\s+)?default\)",
        lambda m: m.group("value"),
        param="<a string option>",
        reads={'"cosine" (default)': "cosine"},
        ignores=('noise="learned" (default)',),
    ),
    Quote(
        "cosine floor",
        r"\b(?P<value>\d+(?:\.\d+)?)\s*%\s+(?:of\s+it|of\s+the\s+initial\s+rate|floor)\b",
        _value(),
        actual=_cosine_floor_percent,
        reads={"anneals to 1% of it along half a cosine": 1, "run at the 1% floor": 1},
    ),
    Quote(
        "figure count",
        r"\bthe\s+(?:\w+'s\s+)?(?P<value>one|two|three|four|five|six|seven|eight|\d+)\s+figures\b",
        _value(),
        actual=_save_figures_count,
        reads={"write the five figures (data, ...)": 5, "the seed's five figures": 5},
        ignores=("Five training curves",),
    ),
    Quote(
        "circle radii",
        r"\bcircles\s+at\s+(?P<lo>\d+)\s+to\s+(?P<hi>\d+)\s+prior\s+standard",
        lambda m: tuple(range(int(m.group("lo")), int(m.group("hi")) + 1)),
        actual=_latent_radii,
        reads={"circles at 1 to 4 prior standard deviations": (1, 2, 3, 4)},
    ),
]


def _prose(path: Path) -> str:
    """The file's text with markup that splits quotes removed and whitespace collapsed."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":  # comments continue over lines: drop the leading "#"
        text = re.sub(r"(?m)^\s*#\s?", " ", text)
    text = text.replace("``", "").replace("`", "").replace("**", "")
    return re.sub(r"\s+", " ", text)


def _owner_before(text: str, position: int) -> str:
    """The estimator named last before ``position`` (BetaCurveVAE when none)."""
    last = {name: text.rfind(name, 0, position) for name in CLASSES}
    return max(last, key=last.get) if max(last.values()) >= 0 else "BetaCurveVAE"


def _defaults(name: str) -> dict:
    return CLASSES[name]().get_params()


def _same(quoted, actual) -> bool:
    if isinstance(actual, bool) or isinstance(quoted, bool):
        return quoted is actual
    if isinstance(actual, int | float) and isinstance(quoted, int | float):
        return bool(np.isclose(quoted, actual, rtol=1e-9, atol=0))
    if isinstance(actual, tuple | list) and isinstance(quoted, tuple | list):
        return tuple(quoted) == tuple(actual)
    return quoted == actual


def _check(quote: Quote, match: re.Match, text: str) -> str | None:
    """None when the quote agrees with the code, else a message."""
    quoted = quote.parse(match)
    snippet = text[max(0, match.start() - 30) : match.end() + 10].strip()
    if quote.actual is not None:
        actual = quote.actual()
        return (
            None
            if _same(quoted, actual)
            else f"{snippet!r}: quotes {quoted!r}, code has {actual!r}"
        )
    if quote.param == "<a string option>":
        owner = _owner_before(text, match.start())
        options = {v for v in _defaults(owner).values() if isinstance(v, str)}
        if quoted in options:
            return None
        return f"{snippet!r}: {quoted!r} is not the default of any {owner} parameter {options}"
    if quote.param == "hidden_layer_sizes, activation":
        params = _defaults("BetaCurveVAE")
        actual = (tuple(params["hidden_layer_sizes"]), params["activation"])
        return None if quoted == actual else f"{snippet!r}: quotes {quoted!r}, code has {actual!r}"
    param = quote.param or match.group("param")
    owners = [name for name, cls in CLASSES.items() if param in cls().get_params()]
    if not owners:
        return None  # a parameter of something else (scipy, sklearn): not ours to check
    if quote.owner is not None:
        owner = quote.owner
    elif len(owners) == 1:
        owner = owners[0]
    else:
        owner = _owner_before(text, match.start())
    actual = _defaults(owner)[param]
    if _same(quoted, actual):
        return None
    return f"{snippet!r}: quotes {owner}.{param} = {quoted!r}, get_params() has {actual!r}"


@pytest.mark.parametrize("quote", QUOTES, ids=lambda q: q.name)
def test_pattern_reads_its_examples(quote):
    pattern = quote.compiled
    for sentence, expected in quote.reads.items():
        match = pattern.search(sentence)
        assert match is not None, f"{quote.name!r} does not read {sentence!r}"
        assert quote.parse(match) == expected, sentence
    for sentence in quote.ignores:
        assert pattern.search(sentence) is None, f"{quote.name!r} wrongly reads {sentence!r}"


def test_sources_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"README.md", "docs/index.rst", "docs/user_guide/training.rst"} <= names
    assert any(name.startswith("examples/plot_") for name in names)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_quoted_defaults_match_the_code(path):
    text = _prose(path)
    problems = []
    for quote in QUOTES:
        for match in quote.compiled.finditer(text):
            message = _check(quote, match, text)
            if message is not None:
                problems.append(f"[{quote.name}] {message}")
    assert not problems, (
        f"{path.relative_to(ROOT)} quotes values that the code does not have (fix the text, "
        "or use a |Class.param| substitution in docs/):\n" + "\n".join(problems)
    )


def test_the_checker_catches_a_stale_quote(tmp_path):
    """A quote that disagrees with get_params() is reported, one that agrees is not."""
    params = BetaCurveVAE().get_params()
    page = tmp_path / "page.rst"
    page.write_text(
        f"Train with the default {params['max_iter'] + 1} epochs, "
        f"``n_iter_no_change={params['n_iter_no_change']}`` (default)."
    )
    text = _prose(page)
    messages = [_check(q, m, text) for q in QUOTES for m in q.compiled.finditer(text)]
    assert sum(m is not None for m in messages) == 1
    assert "max_iter" in next(m for m in messages if m is not None)
