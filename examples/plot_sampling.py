"""
=========================
Sampling new Beta curves
=========================

A VAE is a generator: decoding codes drawn from the prior :math:`\\mathcal{N}(0, I)`
gives new curves. This example draws curves with
:meth:`~skvae.BetaCurveVAE.sample` and checks how well they belong to the family the
model was trained on.

The Beta log-density is exactly affine in :math:`(\\log x, \\log(1-x), 1)`:

.. math::

    \\log \\mathrm{Beta}(x; \\alpha, \\beta) = (\\alpha - 1)\\log x
    + (\\beta - 1)\\log(1 - x) - \\log B(\\alpha, \\beta).

So a least-squares fit of each generated curve on those three functions reads off the
:math:`(\\alpha, \\beta)` it corresponds to, and the size of the least-squares residual
says how far the curve is from being any Beta log-density at all.

The model is trained on 3,000 curves for 80 epochs to keep the example short.
"""

# %%
# Train a model and draw curves
# -----------------------------
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import betaln

from skvae import BetaCurveVAE, make_beta_curves
from skvae.datasets import beta_grid

X, params = make_beta_curves(n_samples=3_000, random_state=0)
grid = beta_grid(X.shape[1])
vae = BetaCurveVAE(max_iter=80, random_state=0).fit(X)

new_curves = vae.sample(8, random_state=1)

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(grid, np.exp(new_curves.T), linewidth=1.2)
ax.set(xlabel="x", ylabel="density", title="Eight curves decoded from z ~ N(0, I)")
fig.tight_layout()

# %%
# Which Beta distributions are they?
# ----------------------------------
# Project many generated curves, and the training curves for comparison, on the three
# functions of the exact family.
basis = np.column_stack([np.log(grid), np.log1p(-grid), np.ones_like(grid)])


def project(curves):
    """Least-squares (alpha, beta), normalisation term, and RMS distance to the family."""
    coef, *_ = np.linalg.lstsq(basis, curves.T, rcond=None)
    rms = np.sqrt(np.mean((basis @ coef - curves.T) ** 2, axis=0))
    return coef[0] + 1, coef[1] + 1, coef[2], rms


samples = vae.sample(2_000, random_state=2)
a_new, b_new, c_new, rms_new = project(samples)
a_train, b_train, c_train, rms_train = project(X)
print(f"RMS distance to the Beta family, training curves: {np.median(rms_train):.2e}")
print(f"RMS distance to the Beta family, generated curves: {np.median(rms_new):.2e}")

# %%
# The training parameters fill the square :math:`(0, 5)^2` uniformly. The generated
# curves should cover the same square: regions the generator never reaches, or many
# points far outside it, would reveal a latent space with holes or a decoder that
# extrapolates. The coverage need not be exactly uniform: the model learns the
# distribution of the curves, and a few draws from the prior's tails land just outside.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
axes[0].scatter(a_train, b_train, s=3, alpha=0.4, color="tab:grey")
axes[0].set_title("training curves")
axes[1].scatter(a_new, b_new, s=3, alpha=0.4, color="tab:blue")
axes[1].set_title("generated curves")
for ax in axes:
    ax.plot([0, 5, 5, 0, 0], [0, 0, 5, 5, 0], color="black", linewidth=0.8)
    ax.set(xlabel="α (least squares)", ylabel="β (least squares)", aspect="equal")
    ax.set_xlim(-0.5, 6)
    ax.set_ylim(-0.5, 6)
fig.tight_layout()

# %%
# Are they densities?
# -------------------
# A Beta density integrates to one, so its log-density's constant term must equal
# :math:`-\log B(\alpha, \beta)`. The decoder never sees this constraint explicitly; it
# learns it from the data. The gap between the fitted constant and the one implied by
# the fitted :math:`(\alpha, \beta)` measures how far a generated curve is from being
# normalised (0 means a proper density; the gap is the log of the total mass).
inside = (a_new > 0) & (b_new > 0)
gap = c_new[inside] + betaln(a_new[inside], b_new[inside])
fig, ax = plt.subplots(figsize=(7, 4))
ax.hist(np.clip(gap, -0.25, 0.25), bins=50, color="tab:blue", alpha=0.7)
ax.set(
    xlabel="log of the total mass of a generated curve (clipped to ±0.25)",
    ylabel="number of curves",
    title="How far generated curves are from integrating to one",
)
fig.tight_layout()
print(f"{inside.mean():.0%} of the generated curves have α, β > 0 (those are drawn)")
print(f"median |log mass|: {np.median(np.abs(gap)):.3f}")
plt.show()
