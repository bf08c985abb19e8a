"""Benchmark data: independent Beta log-pdf curves and other two-parameter families.

Every generator here uses only numpy and scipy (never ``skvae.make_beta_curves``), so the
benchmarks do not test skvae on data made by skvae, and the same code runs unchanged in the
child processes that import skvae 0.1.0. Every function returns ``(X, params)``: ``X`` of
shape ``(n, n_points)`` in float64 and the generating parameters of shape ``(n, 2)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

#: The Beta family's grid: 100 points on [0.01, 0.99] (the blog post's grid).
BETA_GRID = np.linspace(0.01, 0.99, 100)
#: The other families' grid: 100 points on [0, 1].
UNIT_GRID = np.linspace(0.0, 1.0, 100)
#: Seeds of the training and held-out splits used throughout the benchmarks.
TRAIN_SEED, TEST_SEED = 0, 1


def independent_beta_curves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Beta(α, β) log-pdf curves with α, β ~ U(0, 5), from ``scipy.stats.beta.logpdf``.

    Examples
    --------
    >>> X, params = independent_beta_curves(3, seed=0)
    >>> X.shape, params.shape
    ((3, 100), (3, 2))
    """
    params = np.random.default_rng(seed).uniform(0.0, 5.0, size=(n, 2))
    X = stats.beta.logpdf(BETA_GRID[None, :], params[:, :1], params[:, 1:])
    return np.ascontiguousarray(X, dtype=np.float64), params


def beta_pdf_curves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Beta(α, β) densities (not their logs), α, β ~ U(0, 5), on :data:`BETA_GRID`."""
    params = np.random.default_rng(seed).uniform(0.0, 5.0, size=(n, 2))
    X = stats.beta.pdf(BETA_GRID[None, :], params[:, :1], params[:, 1:])
    return np.ascontiguousarray(X, dtype=np.float64), params


def gaussian_bumps(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """exp(−(t − c)² / (2 w²)) with centre c ~ U(0.2, 0.8) and width w ~ U(0.03, 0.2)."""
    rng = np.random.default_rng(seed)
    params = np.column_stack([rng.uniform(0.2, 0.8, n), rng.uniform(0.03, 0.2, n)])
    centre, width = params[:, :1], params[:, 1:]
    return np.exp(-((UNIT_GRID - centre) ** 2) / (2 * width**2)), params


def smoothed_steps(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logistic steps 1 / (1 + exp(−k (t − l))), location l ~ U(0.2, 0.8), steepness ~ U(5, 60)."""
    rng = np.random.default_rng(seed)
    params = np.column_stack([rng.uniform(0.2, 0.8, n), rng.uniform(5.0, 60.0, n)])
    location, steepness = params[:, :1], params[:, 1:]
    return 1.0 / (1.0 + np.exp(-steepness * (UNIT_GRID - location))), params


def damped_oscillations(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """exp(−d t) cos(2π f t), frequency f ~ U(1, 5) cycles per unit, damping d ~ U(0.5, 5)."""
    rng = np.random.default_rng(seed)
    params = np.column_stack([rng.uniform(1.0, 5.0, n), rng.uniform(0.5, 5.0, n)])
    frequency, damping = params[:, :1], params[:, 1:]
    return np.exp(-damping * UNIT_GRID) * np.cos(2 * np.pi * frequency * UNIT_GRID), params


#: Every family by name; "beta_logpdf" is the main benchmark family.
FAMILIES: dict[str, Callable[[int, int], tuple[np.ndarray, np.ndarray]]] = {
    "beta_logpdf": independent_beta_curves,
    "beta_pdf": beta_pdf_curves,
    "gaussian_bumps": gaussian_bumps,
    "smoothed_steps": smoothed_steps,
    "damped_oscillations": damped_oscillations,
}


def family_split(family: str, n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Training curves (seed :data:`TRAIN_SEED`) and held-out curves (seed :data:`TEST_SEED`)."""
    if family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r}; expected one of {sorted(FAMILIES)}.")
    make = FAMILIES[family]
    return make(n_train, TRAIN_SEED)[0], make(n_test, TEST_SEED)[0]


def tiled(base: np.ndarray, n_rows: int, noise: float = 1e-3, seed: int = 0) -> np.ndarray:
    """``n_rows`` curves: ``base`` repeated, plus N(0, noise²) per point, built block by block.

    Used for the large inputs (1M rows) of the throughput and memory benchmarks: filling one
    preallocated array keeps the peak at the array plus one block.
    """
    rng = np.random.default_rng(seed)
    X = np.empty((n_rows, base.shape[1]), dtype=np.float64)
    for start in range(0, n_rows, len(base)):
        stop = min(start + len(base), n_rows)
        X[start:stop] = base[: stop - start]
        X[start:stop] += rng.normal(scale=noise, size=(stop - start, base.shape[1]))
    return X


def large_beta_curves(n_rows: int, seed: int = 0) -> np.ndarray:
    """``n_rows`` Beta log-pdf curves: 10,000 independent curves tiled with N(0, 10⁻⁶) noise."""
    base, _ = independent_beta_curves(min(10_000, n_rows), seed)
    return tiled(base, n_rows, seed=seed)
