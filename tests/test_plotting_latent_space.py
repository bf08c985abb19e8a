"""LatentSpaceDisplay: histograms, densities and pair plots of the codes, layouts, bad
inputs."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Circle

from skvae.plotting import LatentSpaceDisplay

#: Every test closes its pyplot figures (``close_figures`` in conftest.py).
pytestmark = pytest.mark.usefixtures("close_figures")


def test_latent_space_from_estimator(fitted_vae, curves):
    X = curves[0]
    display = LatentSpaceDisplay.from_estimator(fitted_vae, X)
    assert display.axes_.shape == (3,)
    assert display.pairs_ == [(0, 1)]
    assert len(display.histograms_) == 2 and len(display.density_lines_) == 2
    for bars in display.histograms_:
        heights = np.array([patch.get_height() for patch in bars])
        widths = np.array([patch.get_width() for patch in bars])
        assert len(bars) == 30
        assert np.sum(heights * widths) == pytest.approx(1.0)  # a density
    peak = max(display.density_lines_[0].get_ydata())
    assert peak == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-3)
    np.testing.assert_allclose(display.scatters_[0].get_offsets(), fitted_vae.transform(X))
    assert [c.get_radius() for c in display.circles_[0]] == [1, 2, 3, 4]
    pair_ax = display.pair_axes_[0]
    assert sum(isinstance(p, Circle) for p in pair_ax.patches) == 4
    assert (pair_ax.get_xlabel(), pair_ax.get_ylabel()) == ("$z_{1}$", "$z_{2}$")
    assert [ax.get_xlabel() for ax in display.hist_axes_] == ["$z_{1}$", "$z_{2}$"]


def test_latent_space_options(fitted_vae, curves):
    display = LatentSpaceDisplay.from_estimator(
        fitted_vae, curves[1], bins=10, radii=(1, 2.5), pairs=[(1, 0)]
    )
    assert len(display.histograms_[0]) == 10
    assert [c.get_radius() for c in display.circles_[0]] == [1, 2.5]
    assert display.pair_axes_[0].get_xlabel() == "$z_{2}$"
    display = LatentSpaceDisplay.from_estimator(fitted_vae, curves[1], pairs=[])
    assert display.axes_.shape == (2,) and display.scatters_ == []


@pytest.mark.parametrize(
    ("latent_dims", "n_pairs", "grid_shape"),
    [(1, 0, (1, 1)), (3, 3, (2, 3)), (4, 6, (3, 5)), (6, 5, (3, 5))],
)
def test_latent_space_layouts(latent_dims, n_pairs, grid_shape, rng):
    Z = rng.standard_normal((50, latent_dims))
    display = LatentSpaceDisplay(Z).plot()
    assert len(display.hist_axes_) == latent_dims
    assert len(display.pair_axes_) == n_pairs == len(display.pairs_)
    visible = [ax for ax in display.figure_.axes if ax.get_visible()]
    assert len(visible) == latent_dims + n_pairs
    assert len(display.figure_.axes) == grid_shape[0] * grid_shape[1]


def test_latent_space_of_a_three_dim_model(vae_3d, small_curves):
    display = LatentSpaceDisplay.from_estimator(vae_3d, small_curves)
    assert display.pairs_ == [(0, 1), (0, 2), (1, 2)]


def test_latent_space_bad_inputs(fitted_vae, curves, rng):
    with pytest.raises(ValueError, match="distinct"):
        LatentSpaceDisplay.from_estimator(fitted_vae, curves[1], pairs=[(0, 0)])
    with pytest.raises(ValueError, match="distinct"):
        LatentSpaceDisplay.from_estimator(fitted_vae, curves[1], pairs=[(0, 2)])
    with pytest.raises(ValueError, match="radii"):
        LatentSpaceDisplay.from_estimator(fitted_vae, curves[1], radii=(1, -1))
    with pytest.raises(ValueError, match="NaN"):
        LatentSpaceDisplay(np.array([[0.0, np.nan]])).plot()
    with pytest.raises(ValueError, match="3 Axes"):
        _, axes = plt.subplots(1, 2)
        LatentSpaceDisplay(rng.standard_normal((5, 2))).plot(ax=axes)
