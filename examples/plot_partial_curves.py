"""
======================================
Matching and completing partial curves
======================================

:class:`~skvae.LatentMatcher` finds, for each target curve, the latent code whose decoded
curve is closest to it. Only the observed points count, so a target may have missing
values (NaN): the decoded curve at the matched code then *completes* it, on the whole
grid. This example completes Beta log-densities from a part of their values, and shows
when a prior weight helps.

The model is trained on 3,000 curves for 80 epochs to keep the example short.
"""

# %%
# A model and held-out targets
# ----------------------------
import matplotlib.pyplot as plt
import numpy as np

from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
from skvae.datasets import beta_grid
from skvae.plotting import ReconstructionDisplay

X, _ = make_beta_curves(n_samples=3_000, random_state=0)
X_test, _ = make_beta_curves(n_samples=200, random_state=3)
n_test, n_points = X_test.shape

vae = BetaCurveVAE(max_iter=80, random_state=0).fit(X)
matcher = LatentMatcher(vae, prefit=True).fit(X)

# %%
# Three ways to lose points
# -------------------------
# Keep the left 40% of each curve (the right part must be extrapolated), every tenth
# point (10 points, interpolation), or 3 points at random.
rng = np.random.default_rng(0)
masks = {"left 40%": np.zeros((n_test, n_points), dtype=bool)}
masks["left 40%"][:, :40] = True
masks["every 10th point"] = np.zeros((n_test, n_points), dtype=bool)
masks["every 10th point"][:, ::10] = True
masks["3 random points"] = np.zeros((n_test, n_points), dtype=bool)
for row in masks["3 random points"]:
    row[rng.choice(n_points, size=3, replace=False)] = True


def completion_errors(matcher, X_partial, X_true):
    """L2 error of the completed curves over all points and over the missing ones."""
    completed = matcher.inverse_transform(matcher.transform(X_partial))
    missing = np.isnan(X_partial)
    all_points = np.linalg.norm(completed - X_true, axis=1)
    hidden = np.linalg.norm(np.where(missing, completed - X_true, 0.0), axis=1)
    return all_points, hidden


reference = np.linalg.norm(matcher.inverse_transform(matcher.transform(X_test)) - X_test, axis=1)
print(f"{'complete targets':18s} median L2 error {np.median(reference):.4f}")
partial = {}
for name, mask in masks.items():
    partial[name] = np.where(mask, X_test, np.nan)
    all_points, hidden = completion_errors(matcher, partial[name], X_test)
    print(
        f"{name:18s} median L2 error {np.median(all_points):.4f} "
        f"(on the missing points alone: {np.median(hidden):.4f})"
    )

# %%
# Even three points pin down a member of the two-parameter family most of the time: the
# decoder only produces Beta-like curves, so the matcher's job is to pick the right one.
# One target of each kind, as densities (the dots are the observed points):
examples = np.vstack([partial[name][k] for k, name in enumerate(masks)])
grid = beta_grid(n_points)
display = ReconstructionDisplay.from_estimator(matcher, examples, grid=grid, pdf=True)
for k, name in enumerate(masks):
    ax = display.axes_[k, 0]
    ax.plot(grid, np.exp(X_test[k]), color="grey", alpha=0.5, linewidth=4, zorder=0)
    ax.set_title(f"{name} (grey: the whole true curve)")

# %%
# Few noisy points: a prior weight helps
# --------------------------------------
# With ``prior_weight`` :math:`\lambda > 0` the matcher minimises the L2 distance plus
# :math:`\lambda \lVert z \rVert^2 / 2`, the prior's negative log-density: codes far from
# the origin must earn their place. Clean targets need no such help, but when the few
# observed points are also noisy, the unpenalised search can chase the noise into
# unlikely corners of the latent space. Here 5 points per curve carry Gaussian noise of
# standard deviation 1.
noisy = X_test + rng.normal(scale=1.0, size=X_test.shape)
mask = np.zeros((n_test, n_points), dtype=bool)
for row in mask:
    row[rng.choice(n_points, size=5, replace=False)] = True
noisy_partial = np.where(mask, noisy, np.nan)

weights = [0.0, 0.03, 0.1, 0.3, 1.0, 3.0]
mean_errors = []
for weight in weights:
    penalised = LatentMatcher(vae, prefit=True, prior_weight=weight).fit(X)
    all_points, _ = completion_errors(penalised, noisy_partial, X_test)
    mean_errors.append(all_points.mean())
    print(f"prior_weight={weight:<5}: mean L2 error of the completed curves {mean_errors[-1]:.2f}")

fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(weights[1:], mean_errors[1:], marker="o", label="prior_weight > 0")
ax.axhline(mean_errors[0], color="grey", linestyle="--", label="prior_weight = 0")
ax.set_xscale("log")
ax.set_xticks(weights[1:], labels=[f"{w:g}" for w in weights[1:]])
ax.minorticks_off()
ax.set(
    xlabel="prior_weight",
    ylabel="mean L2 error (all points)",
    title="Completing curves from 5 noisy points",
)
ax.legend()
fig.tight_layout()
plt.show()
