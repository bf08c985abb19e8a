"""LatentTraversalDisplay: decoded curves over a grid of latent values, options, bad
inputs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from skvae.plotting import LatentTraversalDisplay

#: Every test closes its pyplot figures (``close_figures`` in conftest.py).
pytestmark = pytest.mark.usefixtures("close_figures")


def test_latent_traversal_from_estimator(fitted_vae):
    n = 4
    display = LatentTraversalDisplay.from_estimator(fitted_vae, n=n, z_range=(-2, 2))
    assert display.axes_.shape == (n, n) and display.lines_.shape == (n, n)
    values = np.linspace(-2, 2, n)
    # top-left panel: z1 smallest, z2 largest; bottom-right: z1 largest, z2 smallest
    corners = fitted_vae.inverse_transform(np.array([[values[0], values[-1]], [values[-1], 0]]))
    np.testing.assert_allclose(display.lines_[0, 0].get_ydata(), corners[0], rtol=1e-6)
    # the first dimension's values head the columns, the second's label the rows
    assert [ax.get_title() for ax in display.axes_[0]] == [f"{v:.2g}" for v in values]
    assert [ax.get_ylabel() for ax in display.axes_[:, -1]] == [f"{v:.2g}" for v in values[::-1]]
    assert display.axes_[1, 1].get_title() == ""
    ylims = {ax.get_ylim() for ax in display.axes_.ravel()}
    assert len(ylims) == 1  # one y scale for every panel
    low, high = ylims.pop()
    for line in display.lines_.ravel():
        assert low <= np.min(line.get_ydata()) and np.max(line.get_ydata()) <= high
    for line in display.zero_lines_.ravel():
        np.testing.assert_array_equal(line.get_ydata(), [0.0, 0.0])
        assert line.get_linestyle() == "--"


def test_latent_traversal_reads_without_tuning(fitted_vae):
    """Axes on every panel, tick labels on the outer ones only, a few ticks each, and a
    figure whose size follows n within what a page shows."""
    display = LatentTraversalDisplay.from_estimator(fitted_vae, n=10)
    axes = display.axes_
    display.figure_.canvas.draw()
    assert all(ax.axison for ax in axes.ravel())

    def labelled(ticks):
        return any(t.get_visible() and t.get_text() for t in ticks)

    assert all(labelled(ax.get_xticklabels()) for ax in axes[-1])
    assert not any(labelled(ax.get_xticklabels()) for ax in axes[:-1].ravel())
    assert all(labelled(ax.get_yticklabels()) for ax in axes[:, 0])
    assert not any(labelled(ax.get_yticklabels()) for ax in axes[:, 1:].ravel())
    for ax in axes.ravel():
        low, high = ax.get_xlim()
        assert sum(low <= tick <= high for tick in ax.get_xticks()) <= 4
    width, height = display.figure_.get_size_inches()
    assert width == height and 8 <= width <= 11
    small = LatentTraversalDisplay.from_estimator(fitted_vae, n=3).figure_.get_size_inches()
    assert small[0] < width
    assert "grid point" in display.figure_.get_supxlabel()


def test_latent_traversal_pdf_and_options(fitted_vae):
    display = LatentTraversalDisplay.from_estimator(
        fitted_vae, n=3, pdf=True, zero_line=False, titles=True
    )
    curve = fitted_vae.inverse_transform(np.array([[0.0, 0.0]]))[0]
    np.testing.assert_allclose(display.lines_[1, 1].get_ydata(), np.exp(curve), rtol=1e-6)
    assert display.zero_lines_ is None
    # titles=True: every panel titled with its coordinates
    assert display.axes_[0, 0].get_title() == "-3.00, 3.00"
    assert display.axes_[-1, -1].get_title() == "3.00, -3.00"


def test_latent_traversal_one_and_three_dims(vae_1d, vae_3d):
    display = LatentTraversalDisplay.from_estimator(vae_1d, n=5)
    assert display.axes_.shape == (1, 5)
    display = LatentTraversalDisplay.from_estimator(
        vae_3d, n=3, dims=(2, 0), center=[0.0, 0.7, 0.0]
    )
    expected = vae_3d.inverse_transform(np.array([[3.0, 0.7, -3.0]]))[0]  # top-left panel
    np.testing.assert_allclose(display.lines_[0, 0].get_ydata(), expected, rtol=1e-6)


def test_latent_traversal_from_matcher(matcher):
    display = LatentTraversalDisplay.from_estimator(matcher, n=2)
    assert display.axes_.shape == (2, 2)


def test_latent_traversal_bad_inputs(fitted_vae, vae_3d):
    with pytest.raises(ValueError, match="n must"):
        LatentTraversalDisplay.from_estimator(fitted_vae, n=0)
    with pytest.raises(ValueError, match="z_range"):
        LatentTraversalDisplay.from_estimator(fitted_vae, z_range=(1, -1))
    with pytest.raises(ValueError, match="z_range"):
        LatentTraversalDisplay.from_estimator(fitted_vae, z_range="wide")
    with pytest.raises(ValueError, match="dims"):
        LatentTraversalDisplay.from_estimator(vae_3d, dims=(0, 3))
    with pytest.raises(ValueError, match="center"):
        LatentTraversalDisplay.from_estimator(vae_3d, center=[0.0, 0.0])
    with pytest.raises(ValueError, match="curves must have shape"):
        LatentTraversalDisplay(grid=None, z_values=[0, 1], curves=np.zeros((3, 3, 5))).plot()
    with pytest.raises(ValueError, match="4 Axes"):
        _, axes = plt.subplots(1, 3)
        LatentTraversalDisplay.from_estimator(fitted_vae, n=2, ax=axes)
