"""
==========================================
Beta curves end to end: the five figures
==========================================

This example walks through the analysis of the original blog post that skvae grew out of
(*Variational Autoencoders*, on Beta-distribution curves): train a VAE with two latent
dimensions on the log-densities of Beta distributions, check that the latent codes look
like draws from the prior, find the code of a new curve by Nelder-Mead, and look at what
the two latent coordinates mean.

It produces the five figures of that analysis, each with one call to skvae. To stay well
under a minute on two CPU cores it trains on 4,000 curves for 100 epochs; the original
used 10,000 curves (``python -m skvae`` fits that size with the default ``max_iter``).
"""

# %%
# The data
# --------
# :func:`~skvae.make_beta_curves` draws :math:`\alpha` and :math:`\beta` uniformly in
# :math:`(0, 5)` and returns :math:`\log \mathrm{Beta}(x; \alpha, \beta)` at 100 points of
# :math:`[0.01, 0.99]`. The model works on log-densities; we look at densities.
import time

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from sklearn.decomposition import PCA

from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
from skvae.datasets import beta_grid
from skvae.plotting import (
    LatentSpaceDisplay,
    LatentTraversalDisplay,
    ReconstructionDisplay,
    TrainingHistoryDisplay,
)

X, params = make_beta_curves(n_samples=4_000, random_state=0)
X_test, params_test = make_beta_curves(n_samples=1_000, random_state=1)
grid = beta_grid(X.shape[1])

fig, ax = plt.subplots(figsize=(7, 4))
for curve, (a, b) in zip(X[:5], params[:5]):
    ax.plot(grid, np.exp(curve), label=f"α = {a:.2f}, β = {b:.2f}")
ax.set(xlabel="x", ylabel="density", title="Five training curves, as densities")
ax.legend()
fig.tight_layout()

# %%
# Training
# --------
# The default estimator: an MLP encoder and decoder, an observation noise fitted to the
# data and a cosine learning-rate schedule. All randomness comes from ``random_state``.
vae = BetaCurveVAE(max_iter=100, random_state=0)
start = time.perf_counter()
vae.fit(X)
print(f"{vae.n_iter_} epochs in {time.perf_counter() - start:.1f} s")
print(f"observation noise noise_: {vae.noise_:.4f} (units of the log-density)")

# %%
# Figure 2: the training history. The left panel is the reconstruction term, drawn as
# the equivalent noise level (positive even when the log-likelihood is not); the right
# panel is the KL divergence between each posterior and the prior, in nats per curve.
# The KL term grows while the encoder learns to use its two dimensions. Whether it has
# levelled off by the end of this short fit is printed below, from the fitted history.
history = TrainingHistoryDisplay.from_estimator(vae)
kl = np.asarray(vae.kl_curve_)
late_change = kl[-1] / kl[-11] - 1
print(f"KL term: {kl[0]:.2f} nats after the first epoch, {kl[-1]:.2f} after the last")
print(
    f"over the last 10 epochs it changed by {late_change:+.1%}: "
    + ("still rising" if late_change > 0.01 else "levelled off")
)

# %%
# The latent space
# ----------------
# Figure 3: the posterior means of the training curves. Each dimension should look
# roughly like the N(0, 1) density drawn over it, and the codes should fill the region
# around the origin without holes: that is what lets us decode any code near the origin
# into a sensible curve. How close the codes of this short fit come to that ideal is
# printed below, next to what the prior itself would give.
latent = LatentSpaceDisplay.from_estimator(vae, X)
Z = vae.transform(X)
radius = np.linalg.norm(Z, axis=1)
print(
    f"codes within radius 3: {np.mean(radius <= 3):.1%} "
    f"(under the prior N(0, I): {stats.chi2.cdf(9, df=2):.1%})"
)
for k, (low, high) in enumerate(zip(Z.min(axis=0), Z.max(axis=0)), start=1):
    print(f"z{k} ranges from {low:.1f} to {high:.1f}")

# %%
# Matching a new curve
# --------------------
# We take the parameters the original blog post drew for its test, compute that Beta
# log-density exactly, and search the latent space for the code whose decoded curve is
# closest in L2 distance. :class:`~skvae.LatentMatcher` starts from the encoder's
# guess and refines it by Nelder-Mead.
alpha, beta = 2.2155, 2.5044
target = stats.beta.logpdf(grid, alpha, beta)[None, :]

matcher = LatentMatcher(vae, prefit=True).fit(X)
result = matcher.match(target)
print(f"matched code z = {np.round(result.codes[0], 3)}")
print(
    f"L2 error: {result.start_residuals[0]:.4f} from the encoder, "
    f"{result.residuals[0]:.4f} after {result.n_iter[0]} Nelder-Mead iterations"
)

# %%
# Figure 4: the target and the matched curve as densities, and their difference. The
# figure draws densities, so the L2 in its title is the distance between the two
# densities, not the distance between log-densities printed above; both are printed.
display = ReconstructionDisplay.from_estimator(matcher, target, grid=grid, pdf=True)
display.axes_[0, 0].set_title(f"target: Beta(x; {alpha}, {beta})")
print(
    f"L2 between log-densities: {result.residuals[0]:.4f}; "
    f"between densities (the figure's title): {display.errors_[0]:.4f}"
)

# %%
# The same comparison over 1,000 held-out curves, with PCA as the linear reference.
# Matching never does worse than the encoder it starts from. A fair comparison needs
# both PCA(2) and PCA(3): Beta log-densities are affine in
# :math:`(\log x, \log(1 - x), 1)`, so they lie in a three-dimensional linear subspace
# and PCA with three components reconstructs them exactly (up to rounding). The VAE's
# two coordinates beat PCA's two; what they add over PCA(3) is a description with one
# coordinate fewer that only produces members of the family.
matched = matcher.inverse_transform(matcher.transform(X_test))
encoded = vae.inverse_transform(vae.transform(X_test))
reconstructions = {"encoder": encoded, "matcher": matched}
for k in (2, 3):
    pca = PCA(n_components=k).fit(X)
    reconstructions[f"PCA({k})"] = pca.inverse_transform(pca.transform(X_test))
for name, X_hat in reconstructions.items():
    error = np.median(np.linalg.norm(X_hat - X_test, axis=1))
    print(f"median L2 reconstruction error, {name:8s}: {error:.3g}")

# %%
# What the latent coordinates mean
# --------------------------------
# Figure 5: curves decoded on a 10 x 10 grid of codes from -3 to 3 in each dimension.
# Moving along one axis changes the shape of the density smoothly — where its mass
# sits and how peaked it is — which is the two-parameter family the VAE has learned.
# All panels share one y scale, and the dashed line is zero.
traversal = LatentTraversalDisplay.from_estimator(vae, n=10, z_range=(-3, 3), grid=grid, pdf=True)
plt.show()
