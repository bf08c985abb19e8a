"""Linear and kernel baselines that a user would otherwise reach for: PCA, KernelPCA, FA.

Each baseline is fitted on the training curves and reconstructs held-out curves through its
low-dimensional code; the error is the same per-curve L2 as for the VAE.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.decomposition import PCA, FactorAnalysis, KernelPCA
from sklearn.exceptions import ConvergenceWarning

from benchmarks.harness.measure import l2_summary


def _row(name: str, latent_dims: int, seconds: float, X_test, X_hat, note: str = "") -> dict:
    return {
        "method": name,
        "latent_dims": latent_dims,
        "fit_seconds": seconds,
        **l2_summary(X_test, X_hat),
        "note": note,
    }


def pca_reconstruction(
    X_train: np.ndarray, X_test: np.ndarray, n_components: int
) -> tuple[np.ndarray, float]:
    """Held-out curves through PCA's code, and the seconds of the fit."""
    start = time.perf_counter()
    model = PCA(n_components=n_components).fit(X_train)
    seconds = time.perf_counter() - start
    return model.inverse_transform(model.transform(X_test)), seconds


def pca(X_train: np.ndarray, X_test: np.ndarray, n_components: int) -> dict:
    X_hat, seconds = pca_reconstruction(X_train, X_test, n_components)
    return _row(f"PCA({n_components})", n_components, seconds, X_test, X_hat)


def kernel_pca_reconstruction(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    gamma: float | None = None,
    alpha: float = 1.0,
    random_state: int = 0,
) -> tuple[np.ndarray, float]:
    """Held-out curves through RBF KernelPCA(2)'s code and its learned pre-image map
    (``fit_inverse_transform=True``), and the seconds of the fit.

    Inputs are standardised per point first (as the VAE scales internally); ``gamma``
    (None: 1 / points) and ``alpha`` (the ridge of the pre-image map) are scikit-learn's
    defaults unless given.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        KernelPCA(
            n_components=2,
            kernel="rbf",
            gamma=gamma,
            alpha=alpha,
            fit_inverse_transform=True,
            eigen_solver="randomized",
            random_state=random_state,
        ),
    )
    start = time.perf_counter()
    model.fit(X_train)
    seconds = time.perf_counter() - start
    return model.inverse_transform(model.transform(X_test)), seconds


def kernel_pca(X_train: np.ndarray, X_test: np.ndarray, n_fit: int, random_state: int = 0) -> dict:
    """RBF KernelPCA(2) (:func:`kernel_pca_reconstruction`, scikit-learn's defaults).

    Fitting stores an (n × n) kernel and solves an (n × n) kernel ridge system for the
    inverse map, so it is fitted on a random subsample of ``n_fit`` curves when the
    training set is larger.
    """
    rng = np.random.default_rng(random_state)
    subset = X_train
    note = ""
    if len(X_train) > n_fit:
        subset = X_train[np.sort(rng.choice(len(X_train), n_fit, replace=False))]
        note = f"fitted on a random {n_fit} of {len(X_train)} curves (O(n²) memory, O(n³) time)"
    X_hat, seconds = kernel_pca_reconstruction(subset, X_test, random_state=random_state)
    return _row("KernelPCA(2, rbf)", 2, seconds, X_test, X_hat, note)


#: EM iterations of FactorAnalysis. The log-pdf curves are noise-free and of rank 3, so
#: FA's per-point noise variances collapse toward 0 and EM does not meet its tolerance:
#: the default 1000 iterations take minutes on 10,000 curves for a median L2 within a few
#: percent of 100 iterations' (6.01 against 5.97 in a trial).
FA_MAX_ITER = 100


def factor_analysis(X_train: np.ndarray, X_test: np.ndarray, n_components: int = 2) -> dict:
    """FactorAnalysis has no ``inverse_transform``: reconstruct as mean + factors · loadings."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = FactorAnalysis(n_components, max_iter=FA_MAX_ITER, random_state=0).fit(X_train)
    seconds = time.perf_counter() - start
    X_hat = model.mean_ + model.transform(X_test) @ model.components_
    note = f"{model.n_iter_} EM iterations (capped; see README)"
    return _row(f"FactorAnalysis({n_components})", n_components, seconds, X_test, X_hat, note)


def all_baselines(X_train: np.ndarray, X_test: np.ndarray, kpca_fit_n: int) -> list[dict]:
    rows = [pca(X_train, X_test, k) for k in (1, 2, 3)]
    rows.append(kernel_pca(X_train, X_test, kpca_fit_n))
    rows.append(factor_analysis(X_train, X_test))
    return rows


def pca_completion(
    X_train: np.ndarray, X_partial: np.ndarray, X_full: np.ndarray, n_components: int
) -> dict:
    """Complete partial curves with PCA: least-squares fit of the components on observed points.

    The linear counterpart of matching a partial target: for each curve, solve
    ``min_c ‖(mean + c · components − x)[observed]‖₂`` and return the full curve.
    """
    model = PCA(n_components=n_components).fit(X_train)
    basis = model.components_  # (k, p)
    X_hat = np.empty_like(X_full)
    observed = ~np.isnan(X_partial)
    for i in range(len(X_partial)):
        mask = observed[i]
        coef, *_ = np.linalg.lstsq(
            basis[:, mask].T, X_partial[i, mask] - model.mean_[mask], rcond=None
        )
        X_hat[i] = model.mean_ + coef @ basis
    return {"method": f"PCA({n_components}) least squares", **l2_summary(X_full, X_hat)}
