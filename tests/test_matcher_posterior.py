"""LatentMatcher's posterior objective, Laplace covariance and Gauss-Newton polish."""

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2

from skvae import LatentMatcher

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


@pytest.fixture(scope="module")
def partial_targets(curves):
    X = curves[1][:60].copy()
    X[::3, ::2] = np.nan  # every third target half observed
    return X


def test_posterior_objective_is_the_negative_log_posterior(fitted_vae, partial_targets):
    for noise, sigma in [(None, fitted_vae.noise_), (0.3, 0.3)]:
        est = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=noise)
        res = est.fit(partial_targets).match(partial_targets)
        squared = np.nansum((res.reconstructions - partial_targets) ** 2, axis=1)
        expected = squared / (2 * sigma**2) + 0.5 * np.sum(res.codes**2, axis=1)
        assert_allclose(res.objective, expected, rtol=1e-4)
        assert np.all(res.objective <= res.start_objective)
        assert_allclose(res.residuals, np.sqrt(squared), rtol=1e-4)
        assert_array_equal(res.codes, est.transform(partial_targets))
        assert_array_equal(res.codes[4:6], est.transform(partial_targets[4:6]))


def test_posterior_with_large_noise_pulls_codes_to_the_prior(fitted_vae, partial_targets):
    l2 = LatentMatcher(fitted_vae, prefit=True).fit(partial_targets).transform(partial_targets)
    small = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=1e-3)
    assert_allclose(small.fit(partial_targets).transform(partial_targets), l2, atol=2e-3)
    large = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=30.0)
    norms = np.linalg.norm(large.fit(partial_targets).transform(partial_targets), axis=1)
    assert np.mean(norms) < 0.5 * np.mean(np.linalg.norm(l2, axis=1))


def test_covariance(fitted_vae, curves):
    X = np.vstack([curves[1][:20], curves[1][:20]])
    X[20:, ::2] = np.nan  # the same partial_targets, half observed
    X[5] = np.nan  # nothing observed: the prior
    est = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=0.2).fit(X)
    with pytest.warns(UserWarning, match="no observed point"):
        res = est.match(X)
    cov = res.covariance
    assert cov.shape == (40, 2, 2) and cov.dtype == np.float64
    assert_allclose(cov, cov.transpose(0, 2, 1), atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert_allclose(cov[5], np.eye(2), atol=1e-12)
    # Fewer observed points, wider posterior; more noise, wider too.
    det = np.linalg.det(cov)
    keep = np.arange(20) != 5
    assert np.all(det[20:][keep] > det[:20][keep])
    noisy = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=0.4).fit(X)
    with pytest.warns(UserWarning):
        assert np.all(np.linalg.det(noisy.match(X).covariance)[:20][keep] > det[:20][keep])
    # The L2 matcher reports the Laplace covariance at its codes with the VAE's noise.
    l2 = LatentMatcher(fitted_vae, prefit=True).fit(X).match(X[:3])
    assert l2.covariance.shape == (3, 2, 2)


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "half missing"])
def test_laplace_ellipses_are_calibrated(fitted_vae, missing):
    # Codes from the prior, decoded and observed with known noise well above the model's
    # own error: the true code is a draw from the exact posterior, so the Laplace
    # ellipses must contain it at their nominal rates.
    rng = np.random.default_rng(0)
    n, sigma = 2000, 0.5
    Z = rng.standard_normal((n, 2))
    X = fitted_vae.inverse_transform(Z) + sigma * rng.standard_normal((n, 100))
    if missing:
        for row in X:
            row[rng.choice(100, 50, replace=False)] = np.nan
    est = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=sigma)
    res = est.fit(X[:5]).match(X)
    diff = res.codes - Z
    q = np.einsum("ni,nij,nj->n", diff, np.linalg.inv(res.covariance), diff)
    for level in (0.683, 0.95):
        assert abs(np.mean(q <= chi2.ppf(level, 2)) - level) <= 0.03, level


def test_gauss_newton_polish(fitted_vae, partial_targets):
    # Nelder-Mead from the encoder's unrefined means, so that its loose tolerance leaves a gap
    vae = copy.deepcopy(fitted_vae).set_params(refine_steps=0)
    params = {"estimator": vae, "prefit": True, "objective": "posterior", "noise": 0.2}
    plain = (
        LatentMatcher(**params, xatol=1e-2, fatol=1e-2).fit(partial_targets).match(partial_targets)
    )
    polished = LatentMatcher(**params, xatol=1e-2, fatol=1e-2, polish="gauss-newton")
    polished = polished.fit(partial_targets).match(partial_targets)
    exact = (
        LatentMatcher(**params, xatol=1e-9, fatol=1e-12).fit(partial_targets).match(partial_targets)
    )
    assert np.all(polished.objective <= plain.objective)
    assert_array_equal(polished.n_iter, plain.n_iter)  # same Nelder-Mead run first
    gap_plain = plain.objective - exact.objective
    gap_polished = polished.objective - exact.objective
    assert np.mean(np.abs(gap_polished)) < 0.1 * np.mean(np.abs(gap_plain))
    assert_allclose(polished.codes, exact.codes, atol=1e-3)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"objective": "posterior", "prior_weight": 1.0}, "prior_weight applies"),
        ({"polish": "gauss-newton"}, "use it with objective='posterior'"),
    ],
)
def test_inconsistent_parameters(fitted_vae, partial_targets, params, match):
    est = LatentMatcher(fitted_vae, prefit=True, **params)
    with pytest.raises(ValueError, match=match):
        est.fit(partial_targets)
    assert not hasattr(est, "estimator_")


@pytest.mark.parametrize("noise", [1e300, 1e-300])
def test_noise_out_of_the_representable_range_is_refused(fitted_vae, partial_targets, noise):
    est = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=noise)
    with pytest.raises(ValueError, match=r"noise=1e[+-]300 is out of the range"):
        est.fit(partial_targets)
    assert not hasattr(est, "estimator_")
    fitted = LatentMatcher(fitted_vae, prefit=True, objective="posterior").fit(partial_targets)
    with pytest.raises(ValueError, match="noise"):
        fitted.set_params(noise=noise).transform(partial_targets)


def test_noise_at_the_ends_of_the_range_gives_finite_results(fitted_vae, partial_targets):
    from skvae._matching.problem import NOISE_RANGE

    scale = fitted_vae.latent_model().scaler.scale
    for noise in (NOISE_RANGE[0] * scale * 1.01, NOISE_RANGE[1] * scale * 0.99):
        est = LatentMatcher(fitted_vae, prefit=True, objective="posterior", noise=noise)
        res = est.fit(partial_targets).match(partial_targets[:4])
        assert np.all(np.isfinite(res.objective)) and np.all(np.isfinite(res.covariance))
