"""
==================================================
How sure is a match? (α, β) with intervals
==================================================

A matched latent code is a point estimate. The VAE also defines a likelihood (Gaussian,
with the fitted observation noise ``noise_``) and a prior (N(0, I)), so each match has a
*posterior*: here we approximate it by a Gaussian at the most probable code (the Laplace
approximation), turn it into intervals for the parameters :math:`(\\alpha, \\beta)` of
noisy Beta log-density curves, check how often those intervals contain the true values
on held-out curves, and draw the band of curves that a partial target leaves possible.

The model is trained on 2,000 noisy curves for 60 epochs to keep the example short.
"""

# %%
# A VAE of noisy curves
# ---------------------
# Every value of the curves carries Gaussian noise of standard deviation 1. The fitted
# ``noise_`` is the VAE's RMS training error: the noise's standard deviation plus the
# model's own small error. ``make_beta_curves`` with the same
# ``random_state`` and no noise gives the clean curves, kept here to check the results.
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import chi2
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
from skvae.datasets import beta_grid

NOISE = 1.0
X, y = make_beta_curves(n_samples=2_300, noise=NOISE, random_state=0)
X_clean, _ = make_beta_curves(n_samples=2_300, random_state=0)
split = train_test_split(X, X_clean, y, test_size=300, random_state=0)
X_train, X_test, _, X_test_clean, y_train, y_test = split

vae = BetaCurveVAE(max_iter=60, batch_size=128, random_state=0).fit(X_train)
print(f"added noise {NOISE}, fitted noise_ {vae.noise_:.3f}")

# %%
# Most probable codes and their covariance
# ----------------------------------------
# For a target ``x`` with observed points ``m``, the negative log-posterior of a code is
#
# .. math::
#
#     E(z) = \frac{\lVert m \odot (g(z) - x) \rVert^2}{2 \sigma^2}
#     + \frac{\lVert z \rVert^2}{2}
#
# with ``g`` the decoder and σ the VAE's ``noise_``. ``LatentMatcher`` with
# ``objective="posterior"`` finds its minimum ``ẑ`` by Nelder-Mead from the encoder's
# guess, ``polish="gauss-newton"`` refines it with a few damped Gauss-Newton steps, and
# ``match`` returns the inverse of the Gauss-Newton Hessian there,
# :math:`\Sigma = (J^\top M J / \sigma^2 + I)^{-1}`: the covariance of the Laplace
# approximation :math:`N(\hat z, \Sigma)`. ``vae.latent_model()`` gives the fitted
# networks with their units; its ``decode`` turns codes into curves (the user guide's
# :ref:`latent-model` describes it).
model = vae.latent_model()  # decodes codes to curves in data units (see below)
matcher = LatentMatcher(vae, prefit=True, objective="posterior", polish="gauss-newton")
matcher.fit(X_train)


def posterior(X):
    """MAP codes and Laplace covariances of curves X (NaN: missing points)."""
    result = matcher.match(X)
    return result.codes, result.covariance


Z_train, _ = posterior(X_train)
Z_test, C_test = posterior(X_test)
print(f"median posterior sd of a code: {np.median(np.sqrt(C_test[:, [0, 1], [0, 1]])):.3f}")

# %%
# Are the ellipses calibrated? The code of the *clean* version of a held-out curve
# stands in for its true code: it should fall inside the 68.3 % and 95 % ellipses of
# the noisy curve's posterior (Mahalanobis distance below the χ²(2) quantile) about as
# often.
Z_clean, _ = posterior(X_test_clean)
error = Z_clean - Z_test
mahalanobis = np.einsum("ni,ni->n", error, np.linalg.solve(C_test, error[:, :, None])[..., 0])
for level in (0.683, 0.95):
    coverage = np.mean(mahalanobis <= chi2.ppf(level, df=2))
    print(f"{level:.1%} ellipses contain the clean curve's code for {coverage:.1%} of curves")

# %%
# From codes to (α, β), with intervals
# ------------------------------------
# A regressor learns (α, β) from the training curves' codes: the codes are 2-D and the
# map is smooth, so polynomial features and a ridge regression do. For a held-out curve
# we draw codes from its posterior, predict (α, β) for each, and take the central 90 %
# of the predictions as its interval.
regressor = make_pipeline(PolynomialFeatures(7), StandardScaler(), Ridge(alpha=1e-6))
regressor.fit(Z_train, y_train)
rng = np.random.default_rng(0)
n_draws = 200
L = np.linalg.cholesky(C_test)
draws = Z_test[:, None, :] + np.einsum("nij,nkj->nki", L, rng.standard_normal((300, n_draws, 2)))
predictions = regressor.predict(draws.reshape(-1, 2)).reshape(300, n_draws, 2)
lower, upper = np.percentile(predictions, [5, 95], axis=1)
inside = (lower <= y_test) & (y_test <= upper)
for k, name in enumerate(["α", "β"]):
    print(
        f"{name}: 90% intervals contain the true value for {inside[:, k].mean():.0%} of "
        f"held-out curves (median width {np.median(upper[:, k] - lower[:, k]):.2f})"
    )

# %%
# The intervals are honest but a little short of 90 %: they carry the uncertainty of the
# match, which is calibrated, but not the regressor's own error (it learned from codes of
# noisy curves), nor the model's. Both are small next to the noise here; with less noise
# they dominate, and the intervals would need them added.
#
# The intervals against the truth for the first 40 held-out curves:
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
point = regressor.predict(Z_test[:40])
for k, name in enumerate(["α", "β"]):
    ax = axes[k]
    rank = np.argsort(y_test[:40, k])
    ax.errorbar(
        np.arange(40),
        point[rank, k],
        yerr=[point[rank, k] - lower[rank, k], upper[rank, k] - point[rank, k]],
        fmt="o",
        markersize=3,
        label="prediction, 90% interval",
    )
    ax.plot(np.arange(40), y_test[rank, k], "kx", label="true value")
    ax.set(xlabel="held-out curve (sorted)", ylabel=name, title=f"{name} with intervals")
    ax.legend()
fig.tight_layout()

# %%
# Missing points widen the band
# -----------------------------
# Hide the right 70 % of a curve. The posterior of its code is wider, and decoding codes
# drawn from it gives the band of curves that the observed points leave possible: the
# uncertainty of the decoded curve itself (the noise of new observations would come on
# top). The grey line is the clean curve.
grid = beta_grid(X.shape[1])
target = X_test[:1].copy()
partial = target.copy()
partial[:, 30:] = np.nan
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, curve, title in zip(axes, [target, partial], ["all points", "left 30% observed"]):
    code, covariance = posterior(curve)
    draws = rng.multivariate_normal(code[0], covariance[0], size=n_draws)
    band = np.percentile(model.decode(draws), [5, 95], axis=0)
    ax.plot(grid, X_test_clean[0], color="grey", linewidth=4, alpha=0.5, label="clean curve")
    ax.plot(grid, curve[0], ".", color="k", markersize=3, label="observed (noisy)")
    ax.fill_between(grid, band[0], band[1], alpha=0.4, label="90% band")
    ax.plot(grid, model.decode(code)[0], label="decoded MAP code")
    ax.set(xlabel="x", title=f"{title}: trace of Σ = {np.trace(covariance[0]):.3f}")
axes[0].set_ylabel("log-density")
axes[0].legend()
fig.tight_layout()
plt.show()
