"""Numerical safety: any finite data trains to finite weights and outputs, or fails clearly.

Scales from 1e-30 to 1e30, large offsets, constant features, forced divergence (with the
previous state kept), bounded log-variance, and overflow at inference reported, not returned.
"""

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from _helpers import SMALL_NET, TINY_NET, assert_identical, fitted_state
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skvae import BetaCurveVAE
from skvae._scaling import CurveScaler
from skvae._torch import loop as _training
from skvae._torch.networks import LOGVAR_BOUND

# no hold-out: every fit trains on the same curves, so the scalings compare like for like
NO_HOLD_OUT = {**SMALL_NET, "early_stopping": False}

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


def _rms(A):
    return float(np.sqrt(np.mean(np.square(A))))


def _weights_finite(vae):
    return all(bool(torch.isfinite(t).all()) for t in vae.module_.state_dict().values())


@pytest.fixture(scope="module")
def X_small(curves):
    return curves[0][:300]


@pytest.fixture(scope="module")
def reference(X_small):
    """The model at unit scale and its reconstruction error, relative to the data's spread."""
    vae = BetaCurveVAE(max_iter=20, **NO_HOLD_OUT).fit(X_small)
    error = _rms(vae.inverse_transform(vae.transform(X_small)) - X_small)
    return vae, error / _rms(X_small - X_small.mean(axis=0))


def test_reference_reconstruction_is_sensible(reference):
    vae, relative_error = reference
    assert _weights_finite(vae)
    assert relative_error < 0.75  # well below the spread of the curves after 20 epochs


@pytest.mark.parametrize("scale", [1e-30, 1e-6, 1e6, 1e30])
def test_training_is_scale_invariant(X_small, reference, scale):
    """Curves in other units give the same model, up to rounding: features are scaled inside."""
    vae_1, relative_error_1 = reference
    X = X_small * scale
    vae = BetaCurveVAE(max_iter=20, **NO_HOLD_OUT).fit(X)
    assert _weights_finite(vae)
    assert all(math.isfinite(v) for v in vae.loss_curve_)
    Z = vae.transform(X)
    X_rec = vae.inverse_transform(Z)
    samples = vae.sample(5, random_state=0)
    scores = vae.score_samples(X[:20])
    for out in (Z, X_rec, samples, scores):
        assert np.isfinite(out).all()
    relative_error = _rms(X_rec - X) / _rms(X - X.mean(axis=0))
    assert relative_error == pytest.approx(relative_error_1, rel=1e-4)
    np.testing.assert_allclose(Z, vae_1.transform(X_small), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(
        samples / scale, vae_1.sample(5, random_state=0), rtol=1e-3, atol=1e-3
    )
    assert vae.noise_ / scale == pytest.approx(vae_1.noise_, rel=1e-4)
    # a density in other units: log p(s·x) = log p(x) - n·log(s)
    expected = vae_1.score_samples(X_small[:20]) - X.shape[1] * math.log(scale)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


@pytest.mark.parametrize("offset", [1e6, -1e9])
def test_large_offset_small_variation(X_small, reference, offset):
    _, relative_error_1 = reference
    X = X_small * 1e-3 + offset
    vae = BetaCurveVAE(max_iter=20, **NO_HOLD_OUT).fit(X)
    X_rec = vae.inverse_transform(vae.transform(X))
    assert np.isfinite(X_rec).all()
    relative_error = _rms(X_rec - X) / _rms(X - X.mean(axis=0))
    # float64 rounds X at about 1e-4 of its variation here (offset 1e9, spread 1e-3): a
    # rounding-level change of the data moves a short training run by about a percent
    assert relative_error == pytest.approx(relative_error_1, rel=2e-2)


def test_constant_features(X_small):
    X = X_small.copy()
    X[:, :10] = 2.5  # constant columns (zero variance)
    X[:, -5:] = 0.0
    vae = BetaCurveVAE(max_iter=20, **NO_HOLD_OUT).fit(X)
    assert _weights_finite(vae)
    X_rec = vae.inverse_transform(vae.transform(X))
    assert np.isfinite(X_rec).all() and np.isfinite(vae.score_samples(X)).all()
    overall = _rms(X_rec - X)
    assert overall < vae.scale_
    # the constant columns are reconstructed about as well as the others
    assert _rms(X_rec[:, :10] - 2.5) < 2 * overall
    assert _rms(X_rec[:, -5:]) < 2 * overall


@pytest.mark.parametrize(
    "data, expected",
    [
        (np.tile(np.linspace(-3.0, 2.0, 100), (200, 1)), 3.0),  # rounding in the mean
        (np.full((20, 5), 1e-300), 1e-300),
        (np.zeros((4, 3)), 1.0),
    ],
)
def test_constant_data_fall_back_to_their_level(data, expected):
    scale = CurveScaler.fit(data).scale
    assert scale == pytest.approx(expected)
    assert scale >= np.finfo(np.float64).tiny


def test_constant_data_fit_and_reconstruct(curves):
    x = curves[0][0]
    vae = BetaCurveVAE(max_iter=2, **TINY_NET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(np.tile(x, (200, 1)))
    assert vae.scale_ == pytest.approx(np.max(np.abs(x)))
    assert np.all(np.isfinite(vae.inverse_transform(vae.transform(x[None]))))


@pytest.mark.parametrize("value", [0.0, 3.0, -1e6, 1e-6, 1e30])
def test_constant_data(value):
    C = np.full((40, 10), value)
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(C)
    assert _weights_finite(vae) and vae.scale_ > 0 and math.isfinite(vae.noise_)
    C_rec = vae.inverse_transform(vae.transform(C))
    assert np.isfinite(C_rec).all() and np.isfinite(vae.score_samples(C)).all()
    assert np.isfinite(vae.sample(3, random_state=0)).all()
    # errors relative to the data's own magnitude, not absolute (1e-6 data, 1e30 data)
    assert np.max(np.abs(C_rec - value)) <= 0.5 * max(abs(value), vae.scale_)


def test_single_outlier_curve(X_small):
    X = X_small.copy()
    X[0] *= 1e6
    vae = BetaCurveVAE(max_iter=20, **NO_HOLD_OUT).fit(X)
    assert _weights_finite(vae)
    assert np.isfinite(vae.transform(X)).all() and np.isfinite(vae.score_samples(X)).all()


# ------------------------------------------------------------------ divergence


def test_absurd_learning_rate_diverges_with_clear_error(X_small):
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=5, learning_rate_init=1e12)
    with pytest.raises(
        ValueError, match=r"diverged.*Lower learning_rate_init \(currently 1e\+12\)"
    ):
        vae.fit(X_small)
    assert fitted_state(vae) == {}
    with pytest.raises(NotFittedError):
        vae.transform(X_small)


def test_fixed_noise_far_too_small_names_noise(X_small):
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=3, noise=1e-12, random_state=0)
    with pytest.raises(ValueError, match="diverged.*or increase noise"):
        vae.fit(X_small)
    with pytest.raises(ValueError, match="noise=1e-30 is not representable"):
        vae.set_params(noise=1e-30).fit(X_small)


def _poisoning_run_epoch(at_call, monkeypatch, *, weights=True):
    """Make the ``at_call``-th epoch (1-based) of every later fit blow up."""
    real = _training.run_epoch
    calls = {"n": 0}

    def run_epoch(module, *args, **kwargs):
        calls["n"] += 1
        result = real(module, *args, **kwargs)
        if calls["n"] == at_call:
            if weights:
                with torch.no_grad():
                    next(module.parameters()).fill_(math.nan)
                return result
            return (math.inf, *result[1:])
        return result

    monkeypatch.setattr(_training, "run_epoch", run_epoch)
    return calls


@pytest.fixture(scope="module")
def fitted_small(X_small):
    return BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X_small)


@pytest.mark.parametrize("weights", [True, False], ids=["NaN weights", "infinite loss"])
@pytest.mark.parametrize(
    "params, method",
    [
        ({}, "fit"),
        ({"warm_start": True}, "fit"),
        ({"early_stopping": True}, "fit"),
        ({}, "partial_fit"),
    ],
    ids=["fit", "warm start", "early stopping", "partial_fit"],
)
def test_divergence_keeps_previous_state(
    X_small, fitted_small, monkeypatch, params, method, weights
):
    vae = copy.deepcopy(fitted_small).set_params(**params)
    before = fitted_state(vae)
    _poisoning_run_epoch(1 if method == "partial_fit" else 3, monkeypatch, weights=weights)
    epoch = fitted_small.n_iter_ + 1 if method == "partial_fit" else 3
    if method == "fit" and params.get("warm_start"):
        epoch += fitted_small.n_iter_
    with pytest.raises(ValueError, match=rf"diverged at epoch {epoch} .*learning_rate_init"):
        getattr(vae, method)(X_small)
    assert_identical(fitted_state(vae), before)
    np.testing.assert_array_equal(vae.transform(X_small), fitted_small.transform(X_small))


def test_training_after_divergence_is_clean(X_small, monkeypatch):
    """The model state is rolled back inside the loop too: a clean refit is unaffected."""
    _poisoning_run_epoch(2, monkeypatch)
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="diverged at epoch 2"):
        vae.fit(X_small)
    monkeypatch.undo()
    vae.fit(X_small)
    other = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X_small)
    assert_identical(vae.module_, other.module_)


# ------------------------------------------------- bounded variance and overflow


def test_log_variance_is_bounded(fitted_vae, curves):
    X = curves[1]
    for factor in (1.0, 1e10, -1e10, 1e30):
        scaled = torch.as_tensor(fitted_vae.scaler_.data_to_model(X * factor), dtype=torch.float32)
        with torch.no_grad():
            mean, logvar = fitted_vae.encoder_(scaled)
        assert torch.isfinite(logvar).all()
        assert (logvar.abs() <= LOGVAR_BOUND).all()


@pytest.mark.parametrize("factor", [1e10, 1e30, -1e30])
def test_far_off_curves_score_finite_and_low(fitted_vae, curves, factor):
    X = curves[1][:10]
    far = fitted_vae.score_samples(X * factor)
    assert np.isfinite(far).all()
    assert (far < fitted_vae.score_samples(X).min()).all()


def test_degenerate_weights_raise_instead_of_returning_nan(fitted_vae, curves):
    vae = copy.deepcopy(fitted_vae)
    with torch.no_grad():
        vae.encoder_.body[0].weight.fill_(math.inf)
        vae.decoder_.net[0].weight.fill_(math.inf)
    for method, argument in [
        ("transform", curves[1]),
        ("score_samples", curves[1]),
        ("inverse_transform", np.zeros((3, 2))),
        ("sample", 3),
    ]:
        with pytest.raises(ValueError, match="non-finite.*degenerate"):
            getattr(vae, method)(argument)


def test_long_training_on_exactly_reconstructable_data_stays_finite():
    """Learned noise on data the decoder fits exactly: sigma shrinks but nothing overflows."""
    C = np.zeros((16, 6))
    vae = BetaCurveVAE(hidden_layer_sizes=(4,), max_iter=300, batch_size=4, tol=0.0)
    vae.set_params(n_iter_no_change=300, random_state=0).fit(C)
    assert _weights_finite(vae) and vae.noise_ > 0
    assert np.isfinite(vae.score_samples(C)).all()
    assert np.abs(vae.inverse_transform(vae.transform(C))).max() < 0.1


def test_make_beta_curves_blames_noise_that_overflows():
    from skvae import make_beta_curves

    with pytest.raises(ValueError, match="after adding noise=1e.308.* smaller noise"):
        make_beta_curves(5, noise=1e308, random_state=0)


def test_history_display_of_a_huge_loss_shows_the_negative_log_likelihood(curves):
    """A fixed noise far below the reconstruction error gives losses of millions of nats
    per point, whose equivalent noise overflows: the panel shows the loss itself."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skvae.plotting import TrainingHistoryDisplay

    X = curves[0][:100]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = BetaCurveVAE(max_iter=2, noise=1e-3, hidden_layer_sizes=(8,), random_state=0).fit(X)
    assert min(vae.reconstruction_curve_) > 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        display = TrainingHistoryDisplay.from_estimator(vae)
    y = display.lines_["reconstruction"].get_ydata()
    np.testing.assert_allclose(y, vae.reconstruction_curve_)
    plt.close(display.figure_)
