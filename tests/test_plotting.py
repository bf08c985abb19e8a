"""Tests of skvae.plotting: each Display on fitted estimators, its artists, and bad inputs."""

import math
import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from sklearn.decomposition import PCA

from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
from skvae.datasets import beta_grid
from skvae.plotting import (
    LatentSpaceDisplay,
    LatentTraversalDisplay,
    ReconstructionDisplay,
    TrainingHistoryDisplay,
    equivalent_noise,
    save_figures,
)

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def small_curves():
    return make_beta_curves(120, n_points=20, random_state=1)[0]


def _tiny_vae(X, **params):
    """A VAE trained for a couple of epochs: only its shapes matter."""
    params = {"hidden_layer_sizes": (16,), "max_iter": 2, "random_state": 0, **params}
    return BetaCurveVAE(**params).fit(X)


@pytest.fixture(scope="module")
def vae_1d(small_curves):
    return _tiny_vae(small_curves, latent_dims=1)


@pytest.fixture(scope="module")
def vae_3d(small_curves):
    return _tiny_vae(small_curves, latent_dims=3)


@pytest.fixture(scope="module")
def vae_validation(small_curves):
    return _tiny_vae(small_curves, max_iter=3, early_stopping=True, n_iter_no_change=50)


@pytest.fixture(scope="module")
def matcher(fitted_vae, curves):
    return LatentMatcher(fitted_vae, prefit=True).fit(curves[0])


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


# --------------------------------------------------------------------- training history


@pytest.mark.parametrize(("sigma", "rms"), [(0.3, 0.3), (1.0, 0.3), (0.05, 0.3), (2e-3, 4e-3)])
def test_equivalent_noise_bounds_rms_error_and_equals_it_at_the_optimum(sigma, rms):
    nll = 0.5 * rms**2 / sigma**2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    noise = float(equivalent_noise(nll))
    assert noise >= rms * (1 - 1e-12)
    if sigma == rms:
        assert noise == pytest.approx(rms, rel=1e-12)


def test_training_history_from_estimator(fitted_vae):
    display = TrainingHistoryDisplay.from_estimator(fitted_vae)
    assert isinstance(display, TrainingHistoryDisplay)
    assert display.axes_.shape == (2,)
    assert display.figure_ is display.axes_[0].figure
    assert sorted(display.lines_) == ["kl", "reconstruction"]
    n = fitted_vae.n_iter_
    rec, kl = display.lines_["reconstruction"], display.lines_["kl"]
    np.testing.assert_array_equal(rec.get_xdata(), np.arange(1, n + 1))
    np.testing.assert_allclose(rec.get_ydata(), equivalent_noise(fitted_vae.reconstruction_curve_))
    # kl_curve_ is per curve in nats, drawn as it is (no rescaling by the grid size)
    np.testing.assert_allclose(kl.get_ydata(), fitted_vae.kl_curve_)
    assert all(ax.get_yscale() == "log" for ax in display.axes_)
    assert all(ax.get_xlabel() == "epoch" for ax in display.axes_)
    assert "noise" in display.axes_[0].get_ylabel()
    assert "KL" in display.axes_[1].get_ylabel()
    assert (np.asarray(rec.get_ydata()) > 0).all()


def test_training_history_nll_units_use_symlog(fitted_vae):
    display = TrainingHistoryDisplay.from_estimator(fitted_vae, units="nll")
    assert display.axes_[0].get_yscale() == "symlog"
    np.testing.assert_allclose(
        display.lines_["reconstruction"].get_ydata(), fitted_vae.reconstruction_curve_
    )


def test_training_history_with_validation(vae_validation):
    display = TrainingHistoryDisplay.from_estimator(vae_validation)
    assert display.axes_.shape == (3,)
    assert sorted(display.lines_) == ["kl", "loss", "reconstruction", "validation"]
    np.testing.assert_allclose(
        display.lines_["validation"].get_ydata(),
        equivalent_noise(-np.asarray(vae_validation.validation_scores_)),
    )
    np.testing.assert_allclose(
        display.lines_["loss"].get_ydata(), equivalent_noise(vae_validation.loss_curve_)
    )
    labels = [t.get_text() for t in display.axes_[2].get_legend().get_texts()]
    assert labels == ["train", "validation"]


def test_training_history_on_given_axes_and_figure(fitted_vae):
    fig, axes = plt.subplots(1, 2)
    display = TrainingHistoryDisplay.from_estimator(fitted_vae, ax=axes)
    assert list(display.axes_) == list(axes)
    assert display.figure_ is fig
    fig = Figure()
    display = TrainingHistoryDisplay.from_estimator(fitted_vae, ax=fig)
    assert display.figure_ is fig and len(fig.axes) == 2


def test_training_history_from_a_matcher_uses_its_vae(matcher, fitted_vae):
    display = TrainingHistoryDisplay.from_estimator(matcher)
    assert len(display.lines_["kl"].get_xdata()) == fitted_vae.n_iter_


def test_training_history_bad_inputs(fitted_vae):
    with pytest.raises(ValueError, match="units"):
        TrainingHistoryDisplay.from_estimator(fitted_vae, units="log")
    with pytest.raises(ValueError, match="same length"):
        TrainingHistoryDisplay(reconstruction=[1.0, 0.5], kl=[1.0]).plot()
    with pytest.raises(ValueError, match="1-D"):
        TrainingHistoryDisplay(reconstruction=[], kl=[]).plot()
    with pytest.raises(ValueError, match="2 Axes"):
        _, axes = plt.subplots(1, 3)
        TrainingHistoryDisplay.from_estimator(fitted_vae, ax=axes)
    with pytest.raises(ValueError, match="not fitted"):
        TrainingHistoryDisplay.from_estimator(BetaCurveVAE())
    with pytest.raises(TypeError, match="training history"):
        TrainingHistoryDisplay.from_estimator(PCA(2).fit(np.eye(4)))


def test_training_history_single_epoch_is_visible():
    display = TrainingHistoryDisplay(reconstruction=[0.1], kl=[2.0]).plot()
    assert display.lines_["kl"].get_marker() == "o"


# ------------------------------------------------------------------------- latent space


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


# ----------------------------------------------------------------------- reconstruction


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


# ---------------------------------------------------------------------- latent traversal


def test_latent_traversal_from_estimator(fitted_vae):
    n = 4
    display = LatentTraversalDisplay.from_estimator(fitted_vae, n=n, z_range=(-2, 2))
    assert display.axes_.shape == (n, n) and display.lines_.shape == (n, n)
    values = np.linspace(-2, 2, n)
    # top-left panel: z1 smallest, z2 largest; bottom-right: z1 largest, z2 smallest
    corners = fitted_vae.inverse_transform(np.array([[values[0], values[-1]], [values[-1], 0]]))
    np.testing.assert_allclose(display.lines_[0, 0].get_ydata(), corners[0], rtol=1e-6)
    assert display.axes_[0, 0].get_title() == "-2.00, 2.00"
    assert display.axes_[-1, -1].get_title() == "2.00, -2.00"
    ylims = {ax.get_ylim() for ax in display.axes_.ravel()}
    assert len(ylims) == 1  # one y scale for every panel
    low, high = ylims.pop()
    for line in display.lines_.ravel():
        assert low <= np.min(line.get_ydata()) and np.max(line.get_ydata()) <= high
    for line in display.zero_lines_.ravel():
        np.testing.assert_array_equal(line.get_ydata(), [0.0, 0.0])
        assert line.get_linestyle() == "--"
    assert not display.axes_[0, 0].axison


def test_latent_traversal_pdf_and_options(fitted_vae):
    display = LatentTraversalDisplay.from_estimator(
        fitted_vae, n=3, pdf=True, zero_line=False, titles=False
    )
    curve = fitted_vae.inverse_transform(np.array([[0.0, 0.0]]))[0]
    np.testing.assert_allclose(display.lines_[1, 1].get_ydata(), np.exp(curve), rtol=1e-6)
    assert display.zero_lines_ is None
    assert display.axes_[0, 0].get_title() == ""


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


# ----------------------------------------------------------------------------- saving


def test_save_figures_writes_five_files(fitted_vae, matcher, curves, tmp_path):
    X = curves[1]
    before = plt.get_fignums()
    paths = save_figures(
        fitted_vae, X, tmp_path / "figs", matcher=matcher, n_targets=2, pdf=True, n_traversal=4
    )
    names = ["data", "training_history", "latent_space", "reconstruction", "latent_traversal"]
    assert [p.name for p in paths] == [f"{name}.png" for name in names]
    for path in paths:
        assert path.parent == tmp_path / "figs"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before  # pyplot's state is left alone


@pytest.mark.parametrize("which", ["1d", "3d"])
def test_save_figures_uses_the_displays_own_figure_sizes(which, vae_1d, vae_3d, small_curves):
    """Each saved figure has the size its Display picks with ax=None (no second copy of
    the sizing rules in save_figures)."""
    import tempfile

    from PIL import Image

    vae = vae_1d if which == "1d" else vae_3d
    dpi = 20
    with tempfile.TemporaryDirectory() as folder:
        paths = save_figures(vae, small_curves, folder, n_traversal=4, n_targets=3, dpi=dpi)
        sizes = {p.stem: Image.open(p).size for p in paths}
    expected = {
        "training_history": TrainingHistoryDisplay.from_estimator(vae),
        "latent_space": LatentSpaceDisplay.from_estimator(vae, small_curves),
        "reconstruction": ReconstructionDisplay.from_estimator(vae, small_curves[:3]),
        "latent_traversal": LatentTraversalDisplay.from_estimator(vae, n=4),
    }
    for name, display in expected.items():
        width, height = display.figure_.get_size_inches() * dpi
        assert sizes[name] == (round(width), round(height)), name


def test_save_figures_other_format_and_dims(vae_3d, small_curves, tmp_path):
    paths = save_figures(vae_3d, small_curves, tmp_path, format="svg", n_traversal=3)
    assert all(p.suffix == ".svg" and p.stat().st_size > 0 for p in paths)


def test_save_figures_bad_inputs(fitted_vae, curves, tmp_path):
    with pytest.raises(ValueError, match="n_targets"):
        save_figures(fitted_vae, curves[1], tmp_path, n_targets=0)
    with pytest.raises(ValueError, match="2-D"):
        save_figures(fitted_vae, curves[1][0], tmp_path)
