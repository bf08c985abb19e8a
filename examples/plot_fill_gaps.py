r"""
================================
Filling gaps in measured spectra
================================

Measured curves often have holes: a detector band is cut out, a sensor drops out for a
while. This example hides one contiguous stretch of 30 % of the grid, at a random place,
in every Tecator near-infrared spectrum (the measured curves of
:ref:`sphx_glr_auto_examples_plot_real_spectra.py`; the data ship inside the `sktime
<https://www.sktime.net>`_ package, which this example needs and skvae does not), trains
:class:`~skvae.CurveImputer` on the gappy training spectra as they are, and fills the
gaps of held-out spectra, each filled point with a standard deviation. Row-wise linear
interpolation and scikit-learn's :class:`~sklearn.impute.KNNImputer` fill the same gaps
for comparison. :ref:`missing_points` explains the model behind it.
"""

# %%
# Spectra with a gap each
# -----------------------
# The spectra are split 75 % / 25 % in a fixed random order, as in the real-spectra
# example. Every curve, in training and held out, then loses one contiguous stretch of
# 30 points of its 100 (set to ``NaN``) at a random position: no spectrum is complete,
# and the hidden stretch falls anywhere from one end of the grid to the other.
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.impute import KNNImputer
from sktime.datasets import load_tecator

from skvae import BetaCurveVAE, CurveImputer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # sktime's notices about its loaders' arguments
    X, fat = load_tecator(return_type="numpy2D")
X, fat = X.astype(np.float64), fat.astype(np.float64)
wavelength = np.linspace(850.0, 1050.0, X.shape[1])

order = np.random.default_rng(0).permutation(len(X))
n_train = round(0.75 * len(X))
train, test = order[:n_train], order[n_train:]
X_train, X_test, fat_train, fat_test = X[train], X[test], fat[train], fat[test]


def with_a_gap(X, seed, share=0.3):
    """A copy of ``X`` with one contiguous stretch of ``share`` of each row set to NaN."""
    rng = np.random.default_rng(seed)
    X = X.copy()
    length = round(share * X.shape[1])
    for row, start in zip(X, rng.integers(0, X.shape[1] - length + 1, len(X))):
        row[start : start + length] = np.nan
    return X


X_train_gappy = with_a_gap(X_train, seed=0)
X_test_gappy = with_a_gap(X_test, seed=1)
hidden = np.isnan(X_test_gappy)
print(
    f"{len(X_train)} training and {len(X_test)} held-out spectra, "
    f"{hidden.mean():.0%} of the points hidden"
)

# %%
# The imputer
# -----------
# :class:`~skvae.CurveImputer` trains a :class:`~skvae.BetaCurveVAE` (here with its
# defaults) on the curves it is given, gaps included: the VAE's likelihood counts the
# observed points only. Because these training curves have missing points, the VAE's
# ``gap_aware="auto"`` makes its encoder *gap-aware*: it reads which points are missing
# and, in training, learns to encode curves from which further random gaps are hidden,
# so it encodes any part of a spectrum in one forward pass. No complete spectrum is
# needed, to train or to fill in.
start = time.perf_counter()
imputer = CurveImputer(BetaCurveVAE(random_state=0)).fit(X_train_gappy)
print(f"fitted in {time.perf_counter() - start:.1f} s ({imputer.estimator_.n_iter_} epochs)")

# %%
# :meth:`~skvae.CurveImputer.transform` returns the curves with their gaps filled and
# their observed points untouched; with ``return_std=True`` it also returns, for each
# filled point, the standard deviation of its value under the model (0 at observed
# points). The baselines: linear interpolation along the grid within each spectrum (the
# nearest observed value beyond the ends), and :class:`~sklearn.impute.KNNImputer`,
# which averages the five training spectra closest on the observed points.
X_vae, X_std = imputer.transform(X_test_gappy, return_std=True)


def interpolate_rows(X):
    """Each row's missing points linearly interpolated along the grid."""
    out = X.copy()
    for row in out:
        missing = np.isnan(row)
        row[missing] = np.interp(wavelength[missing], wavelength[~missing], row[~missing])
    return out


X_interp = interpolate_rows(X_test_gappy)
X_knn = KNNImputer(n_neighbors=5).fit(X_train_gappy).transform(X_test_gappy)


def rmse_hidden(X_filled):
    return float(np.sqrt(np.mean((X_filled[hidden] - X_test[hidden]) ** 2)))


rmse = {
    "VAE (CurveImputer)": rmse_hidden(X_vae),
    "linear interpolation": rmse_hidden(X_interp),
    "KNNImputer(5)": rmse_hidden(X_knn),
}
for name, value in rmse.items():
    print(f"RMSE over the hidden points, {name}: {value:.4f}")
best_baseline = min(rmse["linear interpolation"], rmse["KNNImputer(5)"])
print(f"VAE's RMSE / the better baseline's: {rmse['VAE (CurveImputer)'] / best_baseline:.2f}")

# %%
# A 30-point gap is long for these spectra: it often covers the absorbance maximum
# around 970 nm or the shoulder near 930 nm that fat leaves. Interpolation draws a
# straight line across it, which misses any bump inside;
# :class:`~sklearn.impute.KNNImputer` averages spectra that resemble this one on its
# observed points, but treats the grid points as unrelated features and copies their
# values as they are, whatever their overall level. The VAE's fill-in is a spectrum of
# the family it learnt, encoded from this spectrum's observed points, so it follows the
# shape of the curve across the gap; near the edges of the gap it leans on the observed
# points next to it, as far as the training spectra show that they predict a hidden
# point (``neighbour_blend``), and it moves toward three fills from the training
# spectra (``n_neighbors``): the average of the nearest ones, the combination of them
# that best reconstructs this spectrum's observed points, and the conditional mean of
# the hidden points given the observed ones under the training spectra's Gaussian, each
# as far as the training spectra show that it helps. Absorbance spectra are nearly
# linear in a handful of dimensions, more than the VAE's two latent ones, so here the
# Gaussian takes most of the fill (``neighbour_shares_``, last column). The ratio
# printed above compares the result with the better of the two baselines.

# %%
# Four held-out spectra
# ---------------------
# The first four held-out spectra (not chosen): the observed points, the hidden ones
# (the truth, never shown to any method), and the three fill-ins; the shaded band is
# the VAE's fill-in ± 2 standard deviations. The fill-in is the decoded curve of the
# code that fits the observed points best (found by :class:`~skvae.LatentMatcher`, see
# :ref:`matching`), blended with the observed points at the edges of the gap, which it
# therefore joins.
fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
for ax, i in zip(axes.flat, range(4)):
    gap = hidden[i]
    ax.plot(wavelength, X_test_gappy[i], color="black", linewidth=1.2, label="observed")
    ax.plot(wavelength[gap], X_test[i, gap], "o", color="black", markersize=2.5, label="hidden")
    ax.fill_between(
        wavelength[gap],
        X_vae[i, gap] - 2 * X_std[i, gap],
        X_vae[i, gap] + 2 * X_std[i, gap],
        color="tab:blue",
        alpha=0.25,
        label="VAE ± 2 std",
    )
    ax.plot(wavelength[gap], X_vae[i, gap], color="tab:blue", label="VAE")
    ax.plot(wavelength[gap], X_interp[i, gap], "--", color="tab:orange", label="interpolation")
    ax.plot(wavelength[gap], X_knn[i, gap], ":", color="tab:green", label="KNNImputer")
    ax.set_title(f"held-out spectrum {i}", fontsize=10)
for ax in axes[1]:
    ax.set_xlabel("wavelength (nm)")
for ax in axes[:, 0]:
    ax.set_ylabel("absorbance")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()

# %%
# How far to trust the band: the share of the hidden points that fall within ± 2
# standard deviations of the VAE's fill-in. A calibrated Gaussian band holds about 95 %
# of them. This one combines the spread of the decoded curves over the code's posterior
# (the matcher's Laplace approximation) with a single noise level shared by all points,
# and the blend with the neighbours moves the fill-in without changing it, so it is an
# approximate band, and the printed share says how close it comes on these spectra.
inside = np.abs(X_vae[hidden] - X_test[hidden]) <= 2 * X_std[hidden]
print(f"hidden points inside the VAE's ± 2 std band: {inside.mean():.0%}")

# %%
# A drop-in imputer
# -----------------
# :class:`~skvae.CurveImputer` follows scikit-learn's imputer contract, so it takes
# :class:`~sklearn.impute.KNNImputer`'s place in a pipeline. Here both impute the gappy
# spectra before PCA and a linear regression of the fat content; ``prefit=True`` reuses
# the VAE fitted above. The R² on the gappy held-out spectra says how much of the fat
# content each imputation keeps.
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

for name, first_step in (
    ("CurveImputer", CurveImputer(imputer.estimator_, prefit=True)),
    ("KNNImputer(5)", KNNImputer(n_neighbors=5)),
):
    pipeline = make_pipeline(first_step, PCA(n_components=5), LinearRegression())
    r2 = pipeline.fit(X_train_gappy, fat_train).score(X_test_gappy, fat_test)
    print(f"R² of fat content from gappy held-out spectra, {name} + PCA(5): {r2:.2f}")

plt.show()
