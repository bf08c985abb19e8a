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
# The KL term rises while the encoder learns to use its two dimensions, then settles.
history = TrainingHistoryDisplay.from_estimator(vae)

# %%
# The latent space
# ----------------
# Figure 3: the posterior means of the training curves. Each dimension should look
# roughly like the N(0, 1) density drawn over it, and the codes should fill the disc
# of radius 3 or so without holes: that is what lets us decode any code near the
# origin into a sensible curve.
latent = LatentSpaceDisplay.from_estimator(vae, X)

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
# Figure 4: the target and the matched curve as densities, and their difference.
display = ReconstructionDisplay.from_estimator(matcher, target, grid=grid, pdf=True)
display.axes_[0, 0].set_title(f"target: Beta(x; {alpha}, {beta})")

# %%
# The same comparison over 1,000 held-out curves, with PCA (2 components) as a linear
# reference. Matching never does worse than the encoder it starts from.
matched = matcher.inverse_transform(matcher.transform(X_test))
encoded = vae.inverse_transform(vae.transform(X_test))
pca = PCA(n_components=2).fit(X)
linear = pca.inverse_transform(pca.transform(X_test))
for name, X_hat in [("encoder", encoded), ("matcher", matched), ("PCA(2)", linear)]:
    error = np.median(np.linalg.norm(X_hat - X_test, axis=1))
    print(f"median L2 reconstruction error, {name:8s}: {error:.4f}")

# %%
# What the latent coordinates mean
# --------------------------------
# Figure 5: curves decoded on a 10 x 10 grid of codes from -3 to 3 in each dimension.
# Moving along one axis changes the shape of the density smoothly — where its mass
# sits and how peaked it is — which is the two-parameter family the VAE has learned.
# All panels share one y scale, and the dashed line is zero.
traversal = LatentTraversalDisplay.from_estimator(vae, n=10, z_range=(-3, 3), grid=grid, pdf=True)
plt.show()
