"""What the Displays of skvae.plotting share: importing skvae does not import matplotlib,
shared helpers live in plotting/_base.py, and the x grid curves are drawn against."""

import subprocess
import sys

import numpy as np
import pytest
from _helpers import _tiny_vae

from skvae import LatentMatcher, make_beta_curves
from skvae.datasets import beta_grid
from skvae.plotting import LatentSpaceDisplay, LatentTraversalDisplay, ReconstructionDisplay

#: Every test closes its pyplot figures (``close_figures`` in conftest.py).
pytestmark = pytest.mark.usefixtures("close_figures")


# ----------------------------------------------------------------------------- imports


def test_importing_skvae_does_not_import_matplotlib():
    code = (
        "import sys, skvae, skvae.plotting, skvae.datasets; "
        "print(any(m == 'matplotlib' or m.startswith('matplotlib.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_displays_share_helpers_only_through_the_base_module():
    """No plotting module reaches into another Display's private names: shared helpers
    live in plotting/_base.py."""
    import ast
    from pathlib import Path

    import skvae.plotting

    folder = Path(skvae.plotting.__file__).parent
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module != "_base":
                private = [a.name for a in node.names if a.name.startswith("_")]
                offenders += [f"{path.name}: {node.module}.{name}" for name in private]
    assert offenders == []


# --------------------------------------------------------------------------- the x grid


def test_curves_are_drawn_against_the_point_index_by_default(fitted_vae, curves):
    """The estimators fit any family of curves: no grid means the point index, not the
    Beta grid."""
    X = curves[1][:1]
    index = np.arange(X.shape[1])
    display = ReconstructionDisplay.from_estimator(fitted_vae, X)
    np.testing.assert_array_equal(display.target_lines_[0].get_xdata(), index)
    assert display.axes_[0, 0].get_xlabel() == "grid point"
    traversal = LatentTraversalDisplay.from_estimator(fitted_vae, n=2)
    np.testing.assert_array_equal(traversal.lines_[0, 0].get_xdata(), index)


def test_the_grid_comes_from_numeric_column_names(curves):
    frame, _ = make_beta_curves(150, n_points=12, as_frame=True, random_state=0)
    vae = _tiny_vae(frame)
    grid = beta_grid(12)
    display = ReconstructionDisplay.from_estimator(vae, frame.iloc[:1])
    np.testing.assert_allclose(display.target_lines_[0].get_xdata(), grid, atol=1e-4)
    assert display.axes_[0, 0].get_xlabel() == "x"
    traversal = LatentTraversalDisplay.from_estimator(vae, n=2)
    np.testing.assert_allclose(traversal.lines_[0, 0].get_xdata(), grid, atol=1e-4)
    matcher = LatentMatcher(vae, prefit=True).fit(frame)
    display = ReconstructionDisplay.from_estimator(matcher, frame.iloc[:1])
    np.testing.assert_allclose(display.target_lines_[0].get_xdata(), grid, atol=1e-4)
    # names that are not numbers, or not monotone, give the index
    renamed = frame.set_axis([f"p{i}" for i in range(12)], axis=1)
    display = ReconstructionDisplay.from_estimator(_tiny_vae(renamed), renamed.iloc[:1])
    np.testing.assert_array_equal(display.target_lines_[0].get_xdata(), np.arange(12))
    shuffled = frame.set_axis([f"{v}" for v in grid[::-1][[1, 0, *range(2, 12)]]], axis=1)
    display = ReconstructionDisplay.from_estimator(_tiny_vae(shuffled), shuffled.iloc[:1])
    np.testing.assert_array_equal(display.target_lines_[0].get_xdata(), np.arange(12))


def test_a_given_grid_wins_and_is_checked(fitted_vae, curves):
    X = curves[1][:1]
    grid = np.linspace(-1.0, 1.0, X.shape[1])
    display = ReconstructionDisplay.from_estimator(fitted_vae, X, grid=grid)
    np.testing.assert_array_equal(display.target_lines_[0].get_xdata(), grid)
    with pytest.raises(ValueError, match="finite"):
        ReconstructionDisplay.from_estimator(fitted_vae, X, grid=grid * np.inf)


def test_the_x_axis_is_named_after_the_grid(fitted_vae, curves):
    """The axis reads "t" for a grid named t: from a pandas Series, or grid_label."""
    import pandas as pd

    X = curves[1][:1]
    t = pd.Series(np.linspace(0.0, 10.0, X.shape[1]), name="t")
    display = ReconstructionDisplay.from_estimator(fitted_vae, X, grid=t)
    assert display.axes_[0, 0].get_xlabel() == "t"
    assert display.axes_[0, 1].get_xlabel() == "t"
    display = ReconstructionDisplay.from_estimator(
        fitted_vae, X, grid=t.to_numpy(), grid_label="time (s)"
    )
    assert display.axes_[0, 0].get_xlabel() == "time (s)"
    traversal = LatentTraversalDisplay.from_estimator(fitted_vae, n=2, grid=t)
    assert "against t" in traversal.figure_.get_supxlabel()
    # an unnamed array: "x"
    display = ReconstructionDisplay.from_estimator(fitted_vae, X, grid=t.to_numpy())
    assert display.axes_[0, 0].get_xlabel() == "x"


def test_the_grid_name_comes_from_the_column_names():
    frame, _ = make_beta_curves(150, n_points=12, as_frame=True, random_state=0)
    named = frame.set_axis([name.replace("x=", "t=") for name in frame.columns], axis=1)
    display = ReconstructionDisplay.from_estimator(_tiny_vae(named), named.iloc[:1])
    assert display.axes_[0, 0].get_xlabel() == "t"


def test_wide_figures_stay_within_a_page(fitted_vae, curves):
    """Figures a Display makes are at most 10 inches wide, so that tick labels stay
    legible where a page shows them."""
    X = curves[1][:2]
    displays = [
        ReconstructionDisplay.from_estimator(fitted_vae, X),
        LatentSpaceDisplay.from_estimator(fitted_vae, curves[1]),
    ]
    for display in displays:
        assert display.figure_.get_size_inches()[0] <= 10
