"""TrainingHistoryDisplay and ``equivalent_noise``: the curves drawn, options, bad inputs."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from _helpers import _tiny_vae
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from skvae import BetaCurveVAE
from skvae.plotting import TrainingHistoryDisplay, equivalent_noise

#: Every test closes its pyplot figures (``close_figures`` in conftest.py).
pytestmark = pytest.mark.usefixtures("close_figures")


@pytest.fixture(scope="module")
def vae_validation(small_curves):
    return _tiny_vae(small_curves, max_iter=3, early_stopping=True, n_iter_no_change=50)


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


def test_log_axes_label_plain_numbers():
    """Narrow log ranges get minor tick labels: plain "3", "0.2", never "3×10⁰"."""
    display = TrainingHistoryDisplay(
        reconstruction=np.log(np.linspace(4.0, 2.0, 20)) + 0.5 * math.log(2 * math.pi * math.e),
        kl=np.linspace(0.25, 0.5, 20),
    ).plot()
    display.figure_.canvas.draw()
    for axis in display.axes_:
        labels = [t.get_text() for t in axis.get_yticklabels(which="both") if t.get_text()]
        assert labels, "a narrow log axis still shows some tick labels"
        assert not any("times" in label or "^" in label for label in labels), labels
    noise_labels = {t.get_text() for t in display.axes_[0].get_yticklabels(which="both")}
    assert {"2", "3"} <= noise_labels


def test_history_figure_fits_a_page(vae_validation):
    display = TrainingHistoryDisplay.from_estimator(vae_validation)
    assert len(display.axes_) == 3
    width, _ = display.figure_.get_size_inches()
    assert width <= 10
