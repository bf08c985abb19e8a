"""ReconstructionDisplay: targets against reconstructions (from a VAE, a matcher with
partial targets, any transformer), pdf space, bands, bad inputs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.decomposition import PCA

from skvae.datasets import beta_grid
from skvae.plotting import ReconstructionDisplay

#: Every test closes its pyplot figures (``close_figures`` in conftest.py).
pytestmark = pytest.mark.usefixtures("close_figures")


def test_reconstruction_from_vae(fitted_vae, curves):
    X = curves[1][:3]
    grid = beta_grid(X.shape[1])
    display = ReconstructionDisplay.from_estimator(fitted_vae, X, grid=grid)
    assert display.axes_.shape == (3, 2)
    Z = fitted_vae.transform(X)
    X_rec = fitted_vae.inverse_transform(Z)
    for k in range(3):
        np.testing.assert_array_equal(display.target_lines_[k].get_xdata(), grid)
        np.testing.assert_allclose(display.target_lines_[k].get_ydata(), X[k])
        np.testing.assert_allclose(display.reconstruction_lines_[k].get_ydata(), X_rec[k])
        np.testing.assert_allclose(display.residual_lines_[k].get_ydata(), X[k] - X_rec[k])
        assert "BetaCurveVAE" in display.reconstruction_lines_[k].get_label()
        assert f"{Z[k, 0]:.2f}" in display.reconstruction_lines_[k].get_label()
    np.testing.assert_allclose(display.errors_, np.linalg.norm(X - X_rec, axis=1))
    assert display.axes_[0, 0].get_ylabel() == "curve"
    assert display.axes_[0, 0].get_xlabel() == "x"
    assert "L2" in display.axes_[0, 1].get_title()
    assert display.bands_ is None


def test_reconstruction_in_pdf_space_with_a_custom_grid(fitted_vae, curves):
    X = curves[1][:1]
    grid = np.arange(X.shape[1])
    display = ReconstructionDisplay.from_estimator(fitted_vae, X, pdf=True, grid=grid)
    X_rec = fitted_vae.inverse_transform(fitted_vae.transform(X))
    np.testing.assert_allclose(display.target_lines_[0].get_ydata(), np.exp(X[0]))
    np.testing.assert_allclose(display.reconstruction_lines_[0].get_ydata(), np.exp(X_rec[0]))
    np.testing.assert_array_equal(display.target_lines_[0].get_xdata(), grid)
    np.testing.assert_allclose(display.errors_, [np.linalg.norm(np.exp(X) - np.exp(X_rec))])
    assert display.axes_[0, 0].get_ylabel() == "exp(curve)"


def test_reconstruction_from_matcher_with_partial_targets(matcher, curves):
    X = curves[1][:2].copy()
    X[0, 40:] = np.nan
    display = ReconstructionDisplay.from_estimator(matcher, X)
    result = matcher.match(X)
    assert display.target_lines_[0].get_marker() == "o"  # partial: observed points only
    assert display.target_lines_[1].get_linestyle() == "-"  # complete: a line
    assert "40 observed" in display.target_lines_[0].get_label()
    assert "LatentMatcher" in display.reconstruction_lines_[0].get_label()
    rec = display.reconstruction_lines_[0].get_ydata()
    assert np.isfinite(rec).all()  # the completed curve covers the whole grid
    np.testing.assert_allclose(rec, result.reconstructions[0])
    np.testing.assert_allclose(display.errors_, result.residuals, rtol=1e-3)


def test_reconstruction_with_any_transformer(curves):
    X = curves[0]
    pca = PCA(n_components=2).fit(X)
    display = ReconstructionDisplay.from_estimator(pca, X[:1])
    assert "PCA" in display.reconstruction_lines_[0].get_label()


def test_reconstruction_on_given_axes(fitted_vae, curves):
    fig, axes = plt.subplots(2, 2)
    display = ReconstructionDisplay.from_estimator(fitted_vae, curves[1][:2], ax=axes)
    assert display.figure_ is fig
    assert display.axes_[1, 0] is axes[1, 0]
    assert len(axes[1, 0].get_lines()) == 2


def test_reconstruction_bad_inputs(fitted_vae, curves):
    X = curves[1]
    with pytest.raises(ValueError, match="grid"):
        ReconstructionDisplay.from_estimator(fitted_vae, X[:1], grid=np.arange(3))
    with pytest.raises(ValueError, match="more than 20"):
        ReconstructionDisplay.from_estimator(fitted_vae, X[:21])
    with pytest.raises(ValueError, match="same shape"):
        ReconstructionDisplay(grid=None, target=X[:2], reconstruction=X[:1]).plot()
    with pytest.raises(ValueError, match="observed"):
        ReconstructionDisplay(
            grid=None, target=np.full((1, 100), np.nan), reconstruction=X[:1]
        ).plot()
    with pytest.raises(ValueError, match="latent"):
        ReconstructionDisplay(
            grid=None, target=X[:2], reconstruction=X[:2], latent=np.zeros((3, 2))
        ).plot()
    with pytest.raises(ValueError, match="NaN"):  # the VAE's own input validation
        ReconstructionDisplay.from_estimator(fitted_vae, np.full((1, 100), np.nan))


def test_reconstruction_draws_a_band(fitted_vae, curves):
    X = curves[1][:2]
    X_rec = fitted_vae.inverse_transform(fitted_vae.transform(X))
    lower, upper = X_rec - 0.5, X_rec + np.linspace(0.1, 1.0, X.shape[1])
    display = ReconstructionDisplay.from_estimator(
        fitted_vae, X, band=(lower, upper), band_kwargs={"label": "90% interval"}
    )
    assert len(display.bands_) == 2
    for k, band in enumerate(display.bands_):
        assert band.axes is display.axes_[k, 0]
        assert band.get_label() == "90% interval"
        (path,) = band.get_paths()
        ys = path.vertices[:, 1]  # the polygon runs along upper and lower
        assert ys.min() == pytest.approx(lower[k].min())
        assert ys.max() == pytest.approx(upper[k].max())
    shown = ReconstructionDisplay(
        target=X[:1], reconstruction=X_rec[:1], band=(lower[0], upper[0])
    ).plot(pdf=True)
    ys = shown.bands_[0].get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(np.exp(upper[0]).max())  # the band is exponentiated too


def test_reconstruction_band_bad_inputs(curves):
    X = curves[1][:2]
    with pytest.raises(ValueError, match="pair"):
        ReconstructionDisplay(target=X, reconstruction=X, band=X[0]).plot()
    with pytest.raises(ValueError, match="shape"):
        ReconstructionDisplay(target=X, reconstruction=X, band=(X[:1], X[:1])).plot()
    with pytest.raises(ValueError, match="lower <= upper"):
        ReconstructionDisplay(target=X, reconstruction=X, band=(X + 1, X)).plot()
    with pytest.raises(ValueError, match="NaN"):
        ReconstructionDisplay(target=X, reconstruction=X, band=(X * np.nan, X)).plot()
