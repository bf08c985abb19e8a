"""Curves with missing points (NaN): the scaling, the masked ELBO, the mask-aware encoder
and its training gaps, fits on incomplete curves, and filling the gaps in."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.impute import KNNImputer
from sklearn.pipeline import make_pipeline

import skvae._vae as vae_module
from skvae import BetaCurveVAE, CurveImputer, LatentMatcher
from skvae._imputer import _hide_gaps, _whole_runs
from skvae._latent_model import _refinement_sigma, refinement_candidates
from skvae._matching.laplace import gauss_newton_polish
from skvae._matching.problem import MatchProblem
from skvae._matching.screening import screened_codes
from skvae._neighbour_blend import (
    _conditional_scatter,
    blend_lags,
    blended_fill,
    bounded_least_squares,
    distance_to_observed,
    fit_blend_weights,
    fit_donor_gaussian,
    fit_neighbour_shares,
    gaussian_fill,
    nearest_curves_fill,
    neighbour_mixed_fill,
)
from skvae._scaling import CurveScaler
from skvae._torch.masking import HIDING_SHARE, MAX_HIDDEN, draw_hidden_points
from skvae._torch.networks import VAEModule, sigma_points
from tests._helpers import TINY_NET

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

#: The conftest's gap_aware_vae settings: a usable model in a few seconds.
QUICK = dict(max_iter=40, batch_size=128, learning_rate_init=3e-3, random_state=0)


def with_missing(X, share, seed=0):
    """A copy of ``X`` with a ``share`` of its points, drawn at random, set to NaN."""
    X = np.array(X, dtype=float)
    X[np.random.default_rng(seed).random(X.shape) < share] = np.nan
    return X


def with_gap(X, length, seed=0):
    """A copy of ``X`` with one contiguous gap of ``length`` points per row, at random."""
    X = np.array(X, dtype=float)
    starts = np.random.default_rng(seed).integers(0, X.shape[1] - length + 1, len(X))
    for row, start in zip(X, starts):
        row[start : start + length] = np.nan
    return X


def median_l2(A, B):
    return float(np.median(np.linalg.norm(A - B, axis=1)))


@pytest.fixture(scope="module")
def gap_aware_vae(curves):
    """The conftest's ``fitted_vae`` with a gap-aware encoder, trained on complete curves."""
    return BetaCurveVAE(
        max_iter=40,
        batch_size=128,
        learning_rate_init=3e-3,
        early_stopping=False,
        gap_aware=True,
        random_state=0,
    ).fit(curves[0])


@pytest.fixture(scope="module")
def partial_vae(curves):
    """The conftest's gap_aware_vae, trained on its curves with 30 % of the points missing."""
    return BetaCurveVAE(**QUICK).fit(with_missing(curves[0], 0.3))


# ---------------------------------------------------------------------------- scaling


def test_scaler_statistics_come_from_the_observed_values():
    X = np.random.default_rng(0).normal(2.0, 3.0, size=(50, 6))
    X_missing = with_missing(X, 0.4)
    scaler = CurveScaler.fit(X_missing)
    np.testing.assert_allclose(scaler.mean, np.nanmean(X_missing, axis=0), rtol=1e-14)
    expected = math.sqrt(np.mean(np.nanvar(X_missing, axis=0)))
    assert scaler.scale == pytest.approx(expected, rel=1e-12)
    # the missing points change nothing: the same observed values in other rows agree
    observed_once = np.where(np.isnan(X_missing), np.nan, X)
    assert CurveScaler.fit(observed_once).scale == scaler.scale


def test_scaler_names_grid_points_never_observed():
    X = np.ones((5, 4))
    X[:, [1, 3]] = np.nan
    with pytest.raises(ValueError, match=r"2 grid point\(s\), columns \[1, 3\]"):
        CurveScaler.fit(X)


def test_dask_scaler_ignores_missing_points():
    da = pytest.importorskip("dask.array")
    from skvae._dask import dask_scaler

    X = with_missing(np.random.default_rng(1).normal(size=(60, 5)) * 4 + 1, 0.3)
    expected = CurveScaler.fit(X)
    scaler = dask_scaler(da.from_array(X, chunks=(17, 5)))
    np.testing.assert_allclose(scaler.mean, expected.mean, rtol=1e-12)
    assert scaler.scale == pytest.approx(expected.scale, rel=1e-10)


# ------------------------------------------------------------------------- the ELBO


def test_score_samples_is_the_elbo_of_the_observed_sub_grid(partial_vae, curves):
    """The masked ELBO equals the ELBO written out by hand on each curve's observed
    points: unscented expectation of the Gaussian log-density of those points only (in
    data units, with noise_), minus the KL of the encoder's posterior."""
    X = with_missing(curves[1][:5], 0.4, seed=3)
    X[0] = curves[1][0]  # one complete curve among them
    module = partial_vae.module_
    sigma, mean_curve, scale = partial_vae.noise_, partial_vae.mean_, partial_vae.scale_
    eps = sigma_points(2).double()
    expected = []
    for row in X:
        kept = ~np.isnan(row)
        x = torch.tensor(np.where(kept, (row - mean_curve) / scale, 0.0), dtype=torch.float32)
        with torch.no_grad():
            mu, logvar = module.encoder(x[None], torch.tensor(kept, dtype=torch.float32)[None])
            codes = (mu + torch.exp(0.5 * logvar) * eps.float()).double()
            decoded = module.decoder(codes.float()).double().numpy() * scale + mean_curve
        mu, var = mu.double().numpy()[0], np.exp(logvar.double().numpy()[0])
        log_density = [
            -0.5 * np.sum((row[kept] - g[kept]) ** 2) / sigma**2
            - kept.sum() * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
            for g in decoded
        ]
        kl = 0.5 * np.sum(mu**2 + var - 1 - np.log(var))
        expected.append(np.mean(log_density) - kl)
    np.testing.assert_allclose(partial_vae.score_samples(X), expected, rtol=1e-5)


def test_missing_points_are_not_scored(partial_vae, curves):
    """Changing the value of a point that is missing changes nothing; marking it missing
    takes its term out of the bound."""
    X = curves[1][:4].copy()
    X[:, 10:20] = np.nan
    score = partial_vae.score_samples(X)
    assert np.isfinite(score).all()
    X_complete = curves[1][:4]
    assert not np.allclose(score, partial_vae.score_samples(X_complete))


# ------------------------------------------------------------------------- training


def test_curves_with_no_observed_point_are_named(curves):
    X = curves[0][:30].copy()
    X[[4, 17]] = np.nan
    for method in ("fit", "partial_fit"):
        with pytest.raises(ValueError, match=r"2 curve\(s\) with no observed point.*\[4, 17\]"):
            getattr(BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=2), method)(X)


def test_fit_with_missing_points_is_deterministic(curves):
    X = with_missing(curves[0][:200], 0.3)
    params = dict(hidden_layer_sizes=(16,), max_iter=3, batch_size=64, random_state=0)
    a, b = BetaCurveVAE(**params).fit(X), BetaCurveVAE(**params).fit(X)
    for key, value in a.module_.state_dict().items():
        torch.testing.assert_close(b.module_.state_dict()[key], value, rtol=0, atol=0)
    assert a.loss_curve_ == b.loss_curve_


def test_fit_on_incomplete_curves_is_close_to_the_complete_fit(partial_vae, gap_aware_vae, curves):
    """30 % of the training points missing: the decoder's curves, and the encoder's
    codes of incomplete curves, are nearly as good as those of the model trained on the
    complete curves (the conftest's gap_aware_vae, same settings)."""
    X_test = curves[1]
    X_partial = with_missing(X_test, 0.3, seed=1)
    complete = median_l2(gap_aware_vae.inverse_transform(gap_aware_vae.transform(X_test)), X_test)
    from_partial = median_l2(
        partial_vae.inverse_transform(partial_vae.transform(X_partial)), X_test
    )
    assert from_partial < 3 * complete
    assert gap_aware_vae.noise_ / 3 < partial_vae.noise_ < 3 * gap_aware_vae.noise_


def test_dask_fit_accepts_missing_points(curves):
    da = pytest.importorskip("dask.array")
    X = with_missing(curves[0][:200], 0.3)
    params = dict(hidden_layer_sizes=(16,), max_iter=2, batch_size=64, random_state=0)
    vae = BetaCurveVAE(**params).fit(da.from_array(X, chunks=(50, 100)))
    assert np.isfinite(vae.loss_curve_).all()
    np.testing.assert_allclose(vae.mean_, np.nanmean(X, axis=0), rtol=1e-12)
    X[3] = np.nan
    with pytest.raises(ValueError, match="no observed point"):
        BetaCurveVAE(**params).fit(da.from_array(X, chunks=(50, 100)))


# ------------------------------------------------------------- the mask-aware encoder


def test_gap_aware_encoders_read_the_mask(gap_aware_vae):
    config = gap_aware_vae.module_.config
    assert config["mask_aware"] is True
    shapes = VAEModule.parameter_shapes(config)
    assert shapes["encoder.body.0.weight"] == (128, 2 * config["n_features"])
    old = {key: value for key, value in config.items() if key != "mask_aware"}
    assert VAEModule.parameter_shapes(old)["encoder.body.0.weight"] == (128, 100)


def test_gap_aware_auto_follows_the_training_curves(fitted_vae, partial_vae):
    assert fitted_vae.gap_aware == partial_vae.gap_aware == "auto"
    assert fitted_vae.module_.config["mask_aware"] is False  # complete curves
    assert partial_vae.module_.config["mask_aware"] is True


def test_continued_fits_keep_the_first_fits_encoder(curves):
    X = curves[0][:200]
    vae = BetaCurveVAE(**TINY_NET)
    vae.partial_fit(X)
    vae.partial_fit(with_missing(X, 0.3))  # "auto" follows the first call's curves
    assert vae.module_.config["mask_aware"] is False
    vae.set_params(gap_aware=True)
    with pytest.raises(ValueError, match="gap_aware changed"):
        vae.partial_fit(X)
    assert vae.module_.config["mask_aware"] is False


def test_an_encoder_trained_on_gappy_curves_is_tuned_to_read_complete_ones(curves, monkeypatch):
    """Every training curve has a gap, so training never shows the encoder a complete
    curve; the tuning that ends the fit teaches it to read them (and keeps the gappy
    ones as well read) without touching the decoder."""
    X, X_test = with_gap(curves[0], 30), curves[1]
    X_gappy = with_gap(X_test, 30, seed=1)
    params = dict(QUICK, max_iter=150)
    tuned = BetaCurveVAE(**params).fit(X)
    monkeypatch.setattr(vae_module, "tune_encoder", lambda *args, **kwargs: None)
    plain = BetaCurveVAE(**params).fit(X)
    for key, value in plain.module_.decoder.state_dict().items():
        torch.testing.assert_close(tuned.module_.decoder.state_dict()[key], value, rtol=0, atol=0)

    def means_error(vae, X_read):
        model = vae.latent_model()
        return median_l2(model.decode(model.encode(X_read, return_std=False)), X_test)

    assert means_error(tuned, X_test) < 0.6 * means_error(plain, X_test)
    assert means_error(tuned, X_gappy) < 1.05 * means_error(plain, X_gappy)
    assert tuned.score(X_test) > plain.score(X_test)
    assert tuned.score(X_gappy) > plain.score(X_gappy) - 1.0


def test_only_fits_in_memory_on_incomplete_curves_tune_the_encoder(curves, monkeypatch):
    calls = []
    monkeypatch.setattr(vae_module, "tune_encoder", lambda *args, **kwargs: calls.append(1))
    X = with_missing(curves[0][:200], 0.3)
    BetaCurveVAE(**TINY_NET, max_iter=2).fit(curves[0][:200])  # complete curves
    BetaCurveVAE(**TINY_NET, max_iter=2, gap_aware=True).fit(curves[0][:200])
    BetaCurveVAE(**TINY_NET).partial_fit(X)
    assert calls == []
    BetaCurveVAE(**TINY_NET, max_iter=2, early_stopping=False).fit(X)
    assert calls == [1]


def test_the_encoder_reads_the_mask_not_a_zero(gap_aware_vae, curves):
    """A missing point differs from a point observed on the mean curve."""
    X = curves[1][:3].copy()
    X[:, 30:60] = np.nan
    on_mean = np.where(np.isnan(X), gap_aware_vae.mean_, X)
    assert not np.allclose(gap_aware_vae.transform(X), gap_aware_vae.transform(on_mean))


def test_transform_of_partial_curves_is_deterministic_and_row_independent(gap_aware_vae, curves):
    X = with_gap(curves[1], 30)
    Z = gap_aware_vae.transform(X)
    np.testing.assert_array_equal(Z, gap_aware_vae.transform(X))
    np.testing.assert_array_equal(Z[7:12], gap_aware_vae.transform(X[7:12]))
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(Z[order], gap_aware_vae.transform(X[order]))


def test_encoder_completes_curves_with_gaps(gap_aware_vae, curves):
    """Trained on complete curves only, the encoder codes curves with a 30 % gap or
    30 % of scattered points missing nearly as well as complete ones."""
    X_test = curves[1]
    complete = median_l2(gap_aware_vae.inverse_transform(gap_aware_vae.transform(X_test)), X_test)
    for X in (with_gap(X_test, 30), with_missing(X_test, 0.3)):
        error = median_l2(gap_aware_vae.inverse_transform(gap_aware_vae.transform(X)), X_test)
        assert error < 4 * complete


def _refinement_energies(vae, X):
    """The refinement's objective at transform's codes, at the codes refined from the
    encoder's means alone, and at the best of the screened candidates."""
    model = vae.latent_model()
    sigma = _refinement_sigma(model.noise / float(model.scaler.scale))
    problem = MatchProblem.from_curves(model, X, sigma, kind="posterior", prior_weight=0.0)
    rows = torch.arange(len(X))
    means = torch.as_tensor(model.encode(X, return_std=False))
    plain = gauss_newton_polish(problem, means, n_steps=vae.refine_steps)
    candidates = torch.as_tensor(refinement_candidates(vae.latent_dims))
    _, best = screened_codes(problem, means, candidates.numpy())
    best_candidate = candidates[
        problem.best_of_curves(candidates, problem.decoder(candidates.float()), rows)
    ]
    return (
        problem(torch.as_tensor(vae.transform(X)), rows).numpy(),
        problem(plain, rows).numpy(),
        problem(best_candidate, rows).numpy(),
        best.numpy(),
    )


def test_transform_screens_the_codes_of_partial_curves(gap_aware_vae, curves):
    """A curve with a gap gets the better of two refinements: from the encoder's mean and
    from the best of the candidate codes, where that one fits its observed points better."""
    X = with_gap(curves[1], 50)
    transformed, plain, best_candidate, moved = _refinement_energies(gap_aware_vae, X)
    assert moved.any()
    assert np.all(transformed <= plain * (1 + 1e-6))
    assert np.all(transformed[moved] <= best_candidate[moved] * (1 + 1e-6))
    assert np.any(transformed < 0.5 * plain)  # a start in a poor basin, rescued


def test_complete_curves_are_refined_from_the_encoders_mean_alone(gap_aware_vae, curves):
    transformed, plain, _, _ = _refinement_energies(gap_aware_vae, curves[1])
    np.testing.assert_array_equal(transformed, plain)


def test_hidden_points_follow_the_documented_draws():
    hidden = draw_hidden_points(20_000, 50, torch.Generator().manual_seed(0))
    again = draw_hidden_points(20_000, 50, torch.Generator().manual_seed(0))
    assert torch.equal(hidden, again) and hidden.dtype == torch.bool
    hiding = hidden.any(dim=1)
    assert float(hiding.float().mean()) == pytest.approx(HIDING_SHARE, abs=0.02)
    shares = hidden[hiding].float().mean(dim=1)
    assert float(shares.mean()) == pytest.approx(MAX_HIDDEN / 2, abs=0.03)
    # about half the hiding rows hide one contiguous run, of at most MAX_HIDDEN
    runs = (hidden[hiding, 1:] & ~hidden[hiding, :-1]).sum(dim=1) + hidden[hiding, 0]
    assert 0.45 < float((runs == 1).float().mean()) < 0.7
    many_points = hiding.nonzero()[:, 0][runs > 1]
    assert float(hidden[many_points].float().mean(dim=1).max()) > MAX_HIDDEN  # scattered
    long_runs = hidden[hiding][runs == 1].float().mean(dim=1)
    assert float(long_runs.max()) <= MAX_HIDDEN + 0.01


def test_an_encoder_without_mask_reads_missing_points_interpolated():
    module = VAEModule(n_features=5, hidden=[4], latent_dims=2, activation="silu", noise=None)
    module.reset_parameters(torch.Generator().manual_seed(0))
    x = torch.tensor([[0.5, float("nan"), -1.0, float("nan"), 2.0]])
    interpolated = torch.tensor([[0.5, -0.25, -1.0, 0.5, 2.0]])
    with torch.no_grad():
        torch.testing.assert_close(module.encoder(x), module.encoder(interpolated))


# ------------------------------------------------------------------------ filling in


@pytest.fixture(scope="module", params=["match", "encode"])
def imputer(request, gap_aware_vae, curves):
    return CurveImputer(gap_aware_vae, method=request.param, prefit=True).fit(curves[0])


def test_imputer_keeps_observed_points_and_fills_the_rest(imputer, gap_aware_vae, curves):
    X = with_gap(curves[1][:20], 25)
    filled = imputer.transform(X)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(filled[observed], X[observed])
    assert np.isfinite(filled).all()
    if imputer.method == "encode":
        completed = gap_aware_vae.inverse_transform(gap_aware_vae.transform(X))
    else:
        matcher = LatentMatcher(gap_aware_vae, prefit=True).fit(X)
        completed = matcher.inverse_transform(matcher.transform(X))
    lags, weights = imputer.blend_lags_, imputer.blend_weights_
    blended = blended_fill(X, completed, lags, weights)
    average = KNNImputer(n_neighbors=5, keep_empty_features=True).fit(curves[0]).transform(X)
    combined = nearest_curves_fill(curves[0], X, 20, blended)
    shares = imputer.neighbour_shares_
    assert shares.shape == (len(lags), 3)
    conditional = blended  # the Gaussian's fill, where it takes a share
    if shares[:, 2].any():
        gaussian = fit_donor_gaussian(curves[0], curves[0])
        for fitted, expected_part in zip(imputer.donor_gaussian_, gaussian):
            np.testing.assert_array_equal(fitted, expected_part)
        conditional = gaussian_fill(X, *gaussian, blended)
    else:
        assert imputer.donor_gaussian_ is None
    expected = neighbour_mixed_fill(X, blended, [average, combined, conditional], lags, shares)
    np.testing.assert_array_equal(filled[~observed], expected[~observed])
    # complete training curves are the donors as they are
    np.testing.assert_array_equal(imputer.neighbour_curves_, curves[0])
    np.testing.assert_array_equal(imputer.completed_neighbour_curves_, curves[0])
    # without the blend and the nearest curves, the fill is the decoded curve
    plain = CurveImputer(
        gap_aware_vae, method=imputer.method, neighbour_blend=False, n_neighbors=None, prefit=True
    ).fit(curves[0])
    assert not plain.neighbour_shares_.any() and plain.neighbour_curves_.shape == (0, 100)
    assert plain.completed_neighbour_curves_.shape == (0, 100)
    assert not plain.blend_weights_.any() and plain.blend_weights_.shape == weights.shape
    np.testing.assert_array_equal(plain.transform(X)[~observed], completed[~observed])


def interpolated_rows(X):
    """Each row's missing points linearly interpolated along the grid (held beyond its ends)."""
    out = X.copy()
    for row in out:
        missing = np.isnan(row)
        row[missing] = np.interp(np.flatnonzero(missing), np.flatnonzero(~missing), row[~missing])
    return out


def rmse_missing(filled, truth, X):
    missing = np.isnan(X)
    return float(np.sqrt(np.mean((filled - truth)[missing] ** 2)))


def test_neighbour_blend_carries_a_smooth_misfit_into_the_gaps(gap_aware_vae, curves):
    X = with_missing(curves[1][:60], 0.3)
    blended, plain = (
        CurveImputer(gap_aware_vae, neighbour_blend=flag, n_neighbors=None, prefit=True).fit(
            curves[0][:300]
        )
        for flag in (True, False)
    )
    weights = blended.blend_weights_
    assert weights[0, 0] > 0.5 and np.all((weights >= 0) & (weights <= 1))
    errors = [rmse_missing(i.transform(X), curves[1][:60], X) for i in (blended, plain)]
    assert errors[0] < 0.5 * errors[1]


def test_neighbour_blend_of_a_poor_model_beats_its_curve_and_interpolation(curves):
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(curves[0])
    imputer = CurveImputer(vae, n_neighbors=None, prefit=True).fit(with_missing(curves[0], 0.3))
    assert imputer.blend_weights_[0, 0] > 0.9  # the misfit carries over to a neighbour
    X = with_missing(curves[1][:100], 0.3)
    plain = CurveImputer(vae, neighbour_blend=False, n_neighbors=None, prefit=True).fit(curves[0])
    errors = {
        "blend": rmse_missing(imputer.transform(X), curves[1][:100], X),
        "decoded": rmse_missing(plain.transform(X), curves[1][:100], X),
        "interpolation": rmse_missing(interpolated_rows(X), curves[1][:100], X),
    }
    assert errors["blend"] < min(errors["interpolation"], 0.5 * errors["decoded"])


def test_neighbour_blend_leaves_noise_out(gap_aware_vae, curves):
    clean = curves[0][:300]
    noisy = clean + np.random.default_rng(0).normal(0.0, 1.0, size=clean.shape)
    weights = [
        CurveImputer(gap_aware_vae, method="encode", n_neighbors=None, prefit=True)
        .fit(X)
        .blend_weights_
        for X in (clean, noisy)
    ]
    # independent noise does not carry over to a neighbour: the residuals' weights fall
    assert weights[0][0, 0] > 0.5 and np.all(weights[1][:, 0] < 0.2)


def test_hidden_gaps_take_the_patterns_of_other_curves():
    X = with_gap(np.arange(40 * 30, dtype=float).reshape(40, 30), 8)
    X[::2] = np.arange(30.0)  # half the curves are complete
    source, hidden, masked = _hide_gaps(X, 500, np.random.RandomState(0))
    missing = np.isnan(X)
    assert len(source) == 500 and not (hidden & missing[source]).any()
    np.testing.assert_array_equal(np.isnan(masked), hidden | missing[source])
    np.testing.assert_array_equal(masked[~np.isnan(masked)], X[source][~np.isnan(masked)])
    # each draw hides (part of) the 8-point gap of one of the curves that have one
    patterns = missing[np.isnan(X).any(axis=1)]
    within = (hidden[:, None, :] & ~patterns[None, :, :]).any(axis=2)  # (draw, pattern)
    assert (~within).any(axis=1).all() and hidden.any(axis=1).mean() > 0.9
    # complete curves get one contiguous gap of up to half the grid
    source, hidden, masked = _hide_gaps(X[::2], 500, np.random.RandomState(0))
    starts = (hidden[:, 1:] & ~hidden[:, :-1]).sum(axis=1) + hidden[:, 0]
    assert (starts == 1).all() and 1 <= hidden.sum(axis=1).min()
    assert hidden.sum(axis=1).max() == 15


def test_draws_of_curves_with_missing_points_miss_about_as_many_as_the_curves():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 60))
    X[rng.random(X.shape) < 0.6] = np.nan
    source, hidden, masked = _hide_gaps(X, 2_000, np.random.RandomState(0))
    assert not (hidden & np.isnan(X)[source]).any()
    # the whole pattern of another curve on top of a curve's own would miss 84 %
    assert abs(np.isnan(masked).mean() - np.isnan(X).mean()) < 0.08
    assert hidden.any(axis=1).mean() > 0.95


def test_whole_runs_are_taken_until_the_count():
    candidates = np.array([[1, 1, 0, 1, 0, 1, 1, 1, 0, 1], [0, 0, 1, 1, 1, 1, 0, 0, 0, 0]], bool)
    runs = [[(0, 2), (3, 4), (5, 8), (9, 10)], [(2, 6)]]
    seen = set()
    for seed in range(40):
        kept = _whole_runs(candidates, np.array([3, 1]), np.random.RandomState(seed))
        assert not (kept & ~candidates).any()
        np.testing.assert_array_equal(kept[1], candidates[1])  # one run stays whole
        chosen = [(a, b) for a, b in runs[0] if kept[0, a:b].all()]
        assert sum(b - a for a, b in chosen) == kept[0].sum()  # only whole runs
        lengths = [b - a for a, b in chosen]
        assert sum(lengths) >= 3 and min(sum(lengths) - n for n in lengths) < 3
        seen.update(chosen)
    assert seen == set(runs[0])


def held_out_blend_case(misfit, noise=0.0):
    """Smooth curves, draws of them with hidden gaps, and three folds, for
    ``_cross_fitted_blend``: the fold models decode the draws as ``misfit`` times the
    curves and decode held-out curves as that plus N(0, noise²) per point."""
    grid = np.linspace(0, 1, 50)
    rng = np.random.default_rng(0)
    curves = np.sin(6 * grid + rng.uniform(0, 3, (90, 1))) * rng.uniform(0.5, 2, (90, 1))
    source, hidden, masked = _hide_gaps(curves, 900, np.random.RandomState(0))
    folds = [  # (training rows, draws of the held-out rows)
        (np.setdiff1d(np.arange(90), rows), np.isin(source, rows))
        for rows in np.array_split(np.arange(90), 3)
    ]
    held_decoded = (
        misfit * curves + rng.normal(0.0, noise, curves.shape) if noise else misfit * curves
    )
    return curves, held_decoded, folds, source, hidden, masked, misfit * curves[source]


def test_blend_weights_fitted_to_held_out_decodings_replace_the_models_own_where_they_fill_better():
    imputer = CurveImputer()
    imputer.blend_lags_ = lags = blend_lags(50)
    curves, held_decoded, folds, source, hidden, masked, decoded = held_out_blend_case(0.9)
    # the fold models' own weights (0) keep their smooth misfit of new curves; weights
    # fitted to their decodings of the curves they did not train on carry it over
    own = blended_fill(masked, decoded, lags, np.zeros((len(lags), 2)))
    weights, crossed = imputer._cross_fitted_blend(
        curves, held_decoded, folds, source, hidden, masked, decoded, own
    )
    np.testing.assert_allclose(weights, fit_blend_weights(curves, held_decoded, lags))
    assert weights[0, 0] > 0.99
    truth = curves[source]
    errors = [np.sqrt(np.mean((fill - truth)[hidden] ** 2)) for fill in (crossed, own)]
    assert errors[0] < 0.6 * errors[1]
    # each fold's draws are blended with the weights fitted without its curves
    first = folds[0][1]
    without = fit_blend_weights(curves[30:], held_decoded[30:], lags)
    expected = blended_fill(masked[first], decoded[first], lags, without)
    np.testing.assert_allclose(crossed[first], expected)
    # where the held-out decodings' residuals are noise, weights fitted to them fill no
    # better than the own weights of fold models that fill the draws exactly
    curves, held_decoded, folds, source, hidden, masked, decoded = held_out_blend_case(1.0, 0.3)
    exact = np.where(hidden, curves[source], masked)
    assert (
        imputer._cross_fitted_blend(
            curves, held_decoded, folds, source, hidden, masked, decoded, exact
        )
        is None
    )


def test_a_gain_on_a_few_curves_does_not_replace_the_models_own_blend_weights():
    imputer = CurveImputer()
    imputer.blend_lags_ = lags = blend_lags(50)
    curves, held_decoded, folds, source, hidden, masked, decoded = held_out_blend_case(0.9)
    own = blended_fill(masked, decoded, lags, np.zeros((len(lags), 2)))
    crossed = imputer._cross_fitted_blend(
        curves, held_decoded, folds, source, hidden, masked, decoded, own
    )[1]
    # the own weights fill every curve but one better, by a little; that one, twenty
    # times larger than the rest, makes most of the squared error, which the
    # cross-fitted weights lower: the curves, not the total, decide
    big = source == 0
    truth = curves[source]
    own = np.where(hidden, truth + 0.5 * (crossed - truth), masked)
    own[big] = np.where(hidden[big], truth[big] + 20 * (crossed[big] - truth[big]), masked[big])
    totals = [np.sum((fill - truth)[hidden] ** 2) for fill in (crossed, own)]
    assert totals[0] < totals[1]
    assert (
        imputer._cross_fitted_blend(
            curves, held_decoded, folds, source, hidden, masked, decoded, own
        )
        is None
    )


def test_nearest_curves_combine_to_follow_a_smooth_family():
    # straight lines a + b t: each partial line is an affine combination of nearby lines,
    # which the locally linear weights find and the plain average of KNNImputer misses
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 30)
    donors = rng.uniform(-1, 1, (400, 1)) + rng.uniform(-1, 1, (400, 1)) * t
    truth = rng.uniform(-0.8, 0.8, (50, 1)) + rng.uniform(-0.8, 0.8, (50, 1)) * t
    X = with_gap(truth, 12, seed=1)
    X[0] = np.nan  # an empty row takes the fallback
    fallback = np.full(X.shape, 7.0)
    filled = nearest_curves_fill(donors, X, 20, fallback)
    np.testing.assert_array_equal(filled[0], fallback[0])
    average = KNNImputer(n_neighbors=20).fit(donors).transform(X[1:])
    error = rmse_missing(filled[1:], truth[1:], X[1:])
    assert error < 0.2 * rmse_missing(average, truth[1:], X[1:])
    # more neighbours than donors: all of them combine
    few = nearest_curves_fill(donors[:5], X[1:], 20, fallback[1:])
    np.testing.assert_allclose(few, nearest_curves_fill(donors[:5], X[1:], 5, fallback[1:]))


def test_donor_gaussian_fills_a_linear_family_from_its_observed_points():
    # curves on a 4-dimensional linear space (as near-linear spectra are): the Gaussian of
    # the donors, whose gaps the model filled 5 % off, gives each partial curve's missing
    # points from its observed ones, at long gaps too, where the nearest curves only
    # approximate them
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 40)
    basis = np.stack([np.ones_like(t), t, np.sin(4 * t), np.exp(-5 * t)])
    curves = rng.normal(size=(300, 4)) @ basis
    donors = with_missing(curves, 0.3)
    model_fill = curves * (1 + 0.05 * rng.normal(size=curves.shape))
    completed = np.where(np.isnan(donors), model_fill, donors)
    mean, components, variances, noise = fit_donor_gaussian(donors, completed)
    n_components = len(variances)
    assert components.shape == (n_components, 40) and n_components >= 4
    np.testing.assert_allclose(components @ components.T, np.eye(n_components), atol=1e-10)
    assert np.all(np.diff(variances) <= 0) and 0 < noise < variances[-1]
    # the four leading components span the family, the rest hold what the refits left
    # of the model's misfit
    leading = components[:4]
    np.testing.assert_allclose(basis @ leading.T @ leading, basis, atol=1e-2)
    assert variances[4:].sum() < 1e-3 * variances[:4].sum()
    truth = rng.normal(size=(50, 4)) @ basis
    X = with_gap(truth, 16, seed=1)
    X[0] = np.nan  # an empty row takes the fallback
    fallback = np.full(X.shape, 7.0)
    filled = gaussian_fill(X, mean, components, variances, noise, fallback)
    np.testing.assert_array_equal(filled[0], fallback[0])
    error = rmse_missing(filled[1:], truth[1:], X[1:])
    assert error < 3e-3 * np.std(truth)
    combined = nearest_curves_fill(completed, X[1:], 20, fallback[1:])
    assert error < 0.05 * rmse_missing(combined, truth[1:], X[1:])
    # the refits matter: the Gaussian of the model's fill alone errs ten times more
    once = np.cov(completed, rowvar=False)
    variances_once, vectors = np.linalg.eigh(once)
    top, spread = vectors[:, ::-1].T, variances_once[::-1]
    unrefitted = gaussian_fill(X, completed.mean(axis=0), top, spread, noise, fallback)
    assert rmse_missing(unrefitted[1:], truth[1:], X[1:]) > 5 * error


def test_conditional_scatter_sums_the_missing_points_conditional_covariance():
    # against the textbook formula on the full covariance, row by row:
    # Cov[x_m | x_o] = S_mm - S_mo S_oo^-1 S_om
    rng = np.random.default_rng(0)
    n_features = 12
    components = np.linalg.qr(rng.normal(size=(n_features, 3)))[0].T
    variances, noise = np.array([4.0, 2.0, 0.5]), 0.01
    covariance = components.T @ np.diag(variances) @ components + noise * np.eye(n_features)
    missing = rng.random((7, n_features)) < 0.4
    missing[0] = False  # a complete row adds nothing
    expected = np.zeros((n_features, n_features))
    for row in missing:
        m, o = np.flatnonzero(row), np.flatnonzero(~row)
        conditional = covariance[np.ix_(m, m)] - covariance[np.ix_(m, o)] @ np.linalg.solve(
            covariance[np.ix_(o, o)], covariance[np.ix_(o, m)]
        )
        expected[np.ix_(m, m)] += conditional
    scatter = _conditional_scatter(missing, components, variances, noise)
    np.testing.assert_allclose(scatter, expected, rtol=1e-9, atol=1e-12)


def test_imputer_leans_on_the_donor_gaussian_for_a_linear_family():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 40)
    basis = np.stack([np.ones_like(t), t, np.sin(4 * t), np.exp(-5 * t)])
    curves = with_missing(rng.normal(size=(240, 4)) @ basis, 0.3)
    truth = rng.normal(size=(40, 4)) @ basis
    X = with_missing(truth, 0.3, seed=1)
    imputer = CurveImputer(BetaCurveVAE(**QUICK), random_state=0).fit(curves)
    assert np.all(imputer.neighbour_shares_[:, 2] > 0.9)
    error = rmse_missing(imputer.transform(X), truth, X)
    without = rmse_missing(
        CurveImputer(BetaCurveVAE(**QUICK), n_neighbors=None, random_state=0)
        .fit(curves)
        .transform(X),
        truth,
        X,
    )
    assert error < 0.05 * without


@pytest.mark.parametrize("exact", [True, False])
def test_gaussian_fill_takes_a_share_only_where_it_fills_the_draws_better(exact):
    # the draws' hidden points: the model's fill errs by 0.3, the nearest curves' average
    # and combination by 0.2; the Gaussian's fill is exact (kept), or the model's own
    # moved by noise that tells nothing of the truth (a share fitted to it would be
    # noise: all its shares stay 0)
    rng = np.random.default_rng(0)
    n_curves, n_features, n_draws = 60, 30, 600
    curves = rng.normal(size=(n_curves, n_features))
    source = rng.integers(0, n_curves, n_draws)
    truth = curves[source]
    hidden = rng.random((n_draws, n_features)) < 0.3
    masked = np.where(hidden, np.nan, truth)
    filled = truth + 0.3 * rng.normal(size=truth.shape)
    neighbours = [truth + 0.2 * rng.normal(size=truth.shape) for _ in range(2)]
    neighbours.append(truth if exact else filled + 0.05 * rng.normal(size=truth.shape))
    imputer = CurveImputer()
    imputer.blend_lags_ = blend_lags(n_features)
    shares = imputer._fill_shares(curves, source, hidden, masked, filled, neighbours)
    assert shares.shape == (len(imputer.blend_lags_), 3)
    if not exact:
        assert not shares[:, 2].any()
        expected = fit_neighbour_shares(
            truth[hidden],
            filled[hidden],
            np.stack([fill[hidden] for fill in neighbours[:2]], axis=1),
            distance_to_observed(hidden)[hidden],
            imputer.blend_lags_,
        )
        np.testing.assert_array_equal(shares[:, :2], expected)
    else:
        assert shares[0, 2] > 0.9


@pytest.mark.parametrize("columns", ["independent", "a zero column", "a repeated column"])
def test_bounded_least_squares_on_the_normal_equations_matches_lsq_linear(columns):
    from scipy.optimize import lsq_linear

    rng = np.random.default_rng(0)
    for _ in range(20):
        n_rows, n_columns = int(rng.integers(5, 2000)), int(rng.integers(2, 30))
        design = rng.normal(size=(n_rows, n_columns)) * rng.lognormal(size=n_columns)
        if columns == "a zero column":
            design[:, 1] = 0.0
        elif columns == "a repeated column":
            design[:, 1] = design[:, 0]
        # a solution with coordinates below 0 and above 1: the bounds are active
        target = design @ rng.uniform(-0.5, 1.5, n_columns) + 0.1 * rng.normal(size=n_rows)
        x = bounded_least_squares(design.T @ design, design.T @ target)
        assert x.shape == (n_columns,) and np.all((x >= 0) & (x <= 1))
        reference = lsq_linear(design, target, bounds=(0.0, 1.0)).x
        residual = [np.sum((design @ v - target) ** 2) for v in (x, reference)]
        np.testing.assert_allclose(residual[0], residual[1], rtol=1e-7)
        if columns == "independent":  # the minimiser is unique
            np.testing.assert_allclose(x, reference, atol=1e-6)
    # no column: every x fits as well, and lsq_linear returns 0 there too
    np.testing.assert_array_equal(bounded_least_squares(np.zeros((2, 2)), np.zeros(2)), 0.0)


def test_shares_summed_block_by_block_equal_those_of_every_point_at_once(monkeypatch):
    rng = np.random.default_rng(1)
    distance = rng.integers(1, 40, 5000).astype(float)
    truth = rng.normal(size=5000)
    filled = truth + rng.normal(size=5000)
    neighbours = truth[:, None] + rng.normal(size=(5000, 3)) * [0.5, 1.0, 2.0]
    lags = blend_lags(100)
    whole = fit_neighbour_shares(truth, filled, neighbours, distance, lags)
    monkeypatch.setattr("skvae._neighbour_blend.SHARES_BLOCK", 777)
    blocks = fit_neighbour_shares(truth, filled, neighbours, distance, lags)
    assert whole[:, 0].max() > 0.1  # the least noisy fill takes a share
    np.testing.assert_allclose(blocks, whole, atol=1e-9)


def test_shares_beyond_the_draws_distances_hold_the_last_estimated_ones():
    # scattered gaps only reach a few points from an observed one: the shares further
    # out are not estimated but held, so a long gap at transform takes the nearest
    # estimated share, not whatever the solver left there
    rng = np.random.default_rng(0)
    distance = rng.integers(1, 4, 3000)
    filled, truth = np.zeros(3000), rng.normal(size=3000)
    neighbours = np.stack([truth + rng.normal(size=3000), truth / 2], axis=1)
    lags = np.array([1, 2, 3, 6, 12, 24])
    shares = fit_neighbour_shares(truth, filled, neighbours, distance, lags)
    assert shares.shape == (6, 2) and np.all(shares[:3, 1] > 0.9)
    np.testing.assert_array_equal(shares[3:], np.repeat(shares[2:3], 3, axis=0))
    # no distance with enough points: no shares
    assert not fit_neighbour_shares(
        truth[:50], filled[:50], neighbours[:50], distance[:50], lags
    ).any()


def nearest_curve_errors(vae, train, truth, X):
    """RMSE on the missing points of X: the imputer with and without the nearest curves,
    and KNNImputer; and the imputer's shares."""
    imputer, plain = (
        CurveImputer(vae, n_neighbors=k, prefit=True, random_state=0).fit(train) for k in (5, None)
    )
    nearest = KNNImputer(n_neighbors=5).fit(train).transform(X)
    errors = {
        "mixed": rmse_missing(imputer.transform(X), truth, X),
        "model": rmse_missing(plain.transform(X), truth, X),
        "nearest": rmse_missing(nearest, truth, X),
    }
    return errors, imputer.neighbour_shares_


def test_nearest_curves_take_over_deep_in_gaps_that_the_model_cannot_fill(curves):
    # a model that has learnt almost nothing: the nearest training curves fill far better
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(curves[0])
    # 300 curves: few enough for the Gaussian's expectation-maximisation
    train, X = with_gap(curves[0][:300], 40, seed=1), with_gap(curves[1], 40, seed=2)
    errors, shares = nearest_curve_errors(vae, train, curves[1], X)
    assert shares.shape == (11, 3) and np.all((shares >= 0) & (shares <= 1))
    # Beta log-pdf curves lie in a 3-D linear subspace: the training curves' Gaussian
    # takes over at every distance from the observed points, and the nearest curves'
    # average and combination add little
    assert np.all(shares[:, 2] > 0.95) and np.all(shares[:, :2] < 0.1)
    assert errors["mixed"] < 0.6 * errors["model"]
    # the model also completes the training curves that the Gaussian is fitted to, poorly
    # here; expectation-maximisation recovers the subspace from the curves' observed
    # points all the same (two refits to the Gaussian's own fills erred about as
    # KNNImputer's average of the nearest curves' observed values)
    assert errors["mixed"] < 0.05 * errors["nearest"]
    # the same draws give the same shares
    again = CurveImputer(vae, prefit=True, random_state=0).fit(train)
    np.testing.assert_array_equal(again.neighbour_shares_, shares)


def test_a_linear_family_is_filled_by_the_training_curves_gaussian(curves):
    train, X = with_gap(curves[0], 40, seed=1), with_gap(curves[1], 40, seed=2)
    imputer, plain = (
        CurveImputer(BetaCurveVAE(**QUICK), n_neighbors=k, random_state=0).fit(train)
        for k in (5, None)
    )
    # Beta log-pdf curves lie in a 3-D linear subspace, which the Gaussian of training
    # curves that the model completed well follows: it takes over at every distance from
    # the observed points and fills far better than the model alone, which has two latent
    # dimensions; the plain average of the nearest curves adds nothing
    shares = imputer.neighbour_shares_
    assert np.all(shares[:, 2] > 0.95) and np.all(shares[:, 0] < 0.05)
    errors = [rmse_missing(i.transform(X), curves[1], X) for i in (imputer, plain)]
    nearest = KNNImputer(n_neighbors=5).fit(train).transform(X)
    assert errors[0] < 0.2 * errors[1] < 0.05 * rmse_missing(nearest, curves[1], X)


def test_nearest_curve_shares_are_cross_fitted_on_small_sets(curves, monkeypatch):
    folds = []
    fold_fit = CurveImputer._fold

    def spy(self, X):
        folds.append(X)
        return fold_fit(self, X)

    monkeypatch.setattr(CurveImputer, "_fold", spy)
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    train = with_gap(curves[0][:90], 30)
    imputer = CurveImputer(vae, random_state=0).fit(train)
    # three folds, each fitted on the other two thirds of the curves
    assert [len(X) for X in folds] == [60, 60, 60]
    rows = [{tuple(np.nan_to_num(x, nan=-1.0)) for x in X} for X in folds]
    assert len(rows[0] | rows[1] | rows[2]) == 90 and not rows[0] & rows[1] & rows[2]
    assert imputer.neighbour_shares_.shape == (len(imputer.blend_lags_), 3)
    # a large set, and one of fewer than 60 curves, fill with the fitted model itself
    folds.clear()
    CurveImputer(vae, random_state=0).fit(train[:59])
    monkeypatch.setattr("skvae._imputer.CROSS_FIT_BELOW", 90)
    CurveImputer(vae, random_state=0).fit(train)
    assert folds == []


def test_fold_models_train_as_long_as_the_fitted_vae_on_every_curve(curves, monkeypatch):
    made = []
    fold_estimator = CurveImputer._fold_estimator

    def spy(self):
        made.append(fold_estimator(self))
        return made[-1]

    monkeypatch.setattr(CurveImputer, "_fold_estimator", spy)
    train = with_gap(curves[0][:60], 30)
    small = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
    # trained on every curve, 4 epochs and one more: the folds train 5 epochs on all of
    # theirs, without the cross-validation of a fresh fit
    every = BetaCurveVAE(early_stopping=False, **small).fit(train).partial_fit(train)
    assert every.validation_scores_ is None and every.n_iter_ == 5
    CurveImputer(every, prefit=True, random_state=0).fit(train)
    assert [(e.early_stopping, e.max_iter) for e in made] == [(False, 5)] * 3
    assert all(not hasattr(e, "module_") for e in made)
    # a VAE that held curves out: the folds keep its parameters
    made.clear()
    held = BetaCurveVAE(early_stopping=True, **small).fit(train)
    CurveImputer(held, prefit=True, random_state=0).fit(train)
    assert len(made) == 3 and all(e.get_params() == held.get_params() for e in made)


def test_matched_fill_is_closer_to_the_observed_points_than_the_encoders(gap_aware_vae, curves):
    X = with_gap(curves[1][:40], 50)
    observed = ~np.isnan(X)
    matched, encoded = (
        CurveImputer(gap_aware_vae, method=method, n_neighbors=None, prefit=True)
        .fit(X)
        .transform(X)
        for method in ("match", "encode")
    )
    decoded = {}
    for name, codes in (
        ("match", LatentMatcher(gap_aware_vae, prefit=True).fit(X).transform(X)),
        ("encode", gap_aware_vae.transform(X)),
    ):
        decoded[name] = np.where(observed, gap_aware_vae.inverse_transform(codes) - X, 0.0)
    means = gap_aware_vae.latent_model().encode(X, return_std=False)
    decoded["means"] = np.where(observed, gap_aware_vae.inverse_transform(means) - X, 0.0)
    errors = {name: np.linalg.norm(diff, axis=1) for name, diff in decoded.items()}
    # transform's refined codes fit the observed points better than the encoder's means
    # (up to the faint prior), the matcher's at least as well as both
    assert np.all(errors["encode"] <= errors["means"] + 1e-3)
    assert errors["encode"].mean() < 0.9 * errors["means"].mean()
    assert np.all(errors["match"] <= errors["encode"] + 1e-5)
    assert not np.array_equal(matched, encoded)


def test_imputer_band_is_zero_on_observed_points(imputer, curves):
    X = with_gap(curves[1][:10], 40)
    filled, std = imputer.transform(X, return_std=True)
    np.testing.assert_array_equal(filled, imputer.transform(X))
    missing = np.isnan(X)
    assert (std[~missing] == 0).all() and (std[missing] >= imputer.estimator_.noise_).all()
    # the truth lies inside ±3 std at most filled points
    inside = np.abs(curves[1][:10] - filled)[missing] <= 3 * std[missing]
    assert inside.mean() > 0.5


def test_imputer_fits_its_own_vae_and_drops_empty_rows(curves):
    X = with_missing(curves[0][:100], 0.2)
    X[5] = np.nan
    imputer = CurveImputer(BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=2, random_state=0))
    filled = imputer.fit_transform(X)
    assert imputer.estimator_ is not imputer.estimator and imputer.n_features_in_ == 100
    assert np.isfinite(filled).all()
    # the matcher screens the codes of the training curves (the empty row left out)
    assert imputer.matcher_.estimator_ is imputer.estimator_
    expected = imputer.estimator_.transform(np.delete(X, 5, axis=0))
    np.testing.assert_allclose(imputer.matcher_.reference_codes_, expected)


def test_imputer_checks_a_prefit_vae(gap_aware_vae, curves):
    with pytest.raises(ValueError, match="50 features.*100 points"):
        CurveImputer(gap_aware_vae, prefit=True).fit(curves[0][:, :50])
    with pytest.raises(ValueError, match="needs a fitted estimator"):
        CurveImputer(prefit=True).fit(curves[0])
    with pytest.raises(ValueError, match="'method' parameter of CurveImputer"):
        CurveImputer(gap_aware_vae, method="knn", prefit=True).fit(curves[0])


def test_imputer_is_a_drop_in_for_knn_imputer_in_a_pipeline(gap_aware_vae, curves):
    X = with_gap(curves[1][:30], 20)
    for imputer in (KNNImputer(n_neighbors=5), CurveImputer(gap_aware_vae, prefit=True)):
        out = make_pipeline(imputer, PCA(n_components=2)).fit_transform(X)
        assert out.shape == (30, 2) and np.isfinite(out).all()
    names = CurveImputer(gap_aware_vae, prefit=True).fit(X).get_feature_names_out()
    assert list(names) == [f"x{i}" for i in range(100)]


def test_imputer_round_trips_through_the_skvae_format(curves, tmp_path):
    from skvae import load, save

    X = with_gap(curves[1][:10], 30)
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    imputer = CurveImputer(vae).fit(with_missing(curves[0][:100], 0.2))
    path = tmp_path / "imputer.skvae"
    save(imputer, path)
    loaded = load(path)
    assert type(loaded) is CurveImputer and loaded.get_params()["prefit"] is False
    np.testing.assert_array_equal(loaded.transform(X), imputer.transform(X))
    assert loaded.matcher_.estimator_ is loaded.estimator_  # stored once


def test_matcher_fit_keeps_incomplete_rows(curves):
    X = with_missing(curves[0][:120], 0.3)  # every row has missing points
    X[7] = np.nan
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    matcher = LatentMatcher(vae).fit(X)
    assert matcher.estimator_.n_features_in_ == 100
    np.testing.assert_allclose(
        matcher.estimator_.mean_, np.nanmean(np.delete(X, 7, axis=0), axis=0), rtol=1e-12
    )
    with pytest.raises(ValueError, match="all NaN"):
        LatentMatcher(vae).fit(np.full((3, 100), np.nan))


def test_matcher_starts_partial_targets_at_the_encoders_code(gap_aware_vae, curves):
    X = with_gap(curves[1][:20], 30)
    matcher = LatentMatcher(gap_aware_vae, prefit=True, n_candidates=0)
    result = matcher.fit(curves[0]).match(X)
    np.testing.assert_array_equal(result.start_codes, gap_aware_vae.transform(X))
    assert np.all(result.residuals <= result.start_residuals)
