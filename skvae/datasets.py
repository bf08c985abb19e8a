"""Synthetic families of curves: the Beta distribution sampled on a grid.

The Beta family is the running example of the original blog post (*Variational
Autoencoders: variational autoencoders applied to mathematical functions*) that skvae
started from. The estimators fit any family of curves sampled on a common grid.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["make_beta_curves", "beta_grid"]


@validate_params(
    {
        "n_points": [Interval(Integral, 2, None, closed="left")],
        "low": [Interval(Real, 0, 1, closed="neither")],
        "high": [Interval(Real, 0, 1, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def beta_grid(n_points: int = 100, *, low: float = 0.01, high: float = 0.99) -> np.ndarray:
    """Return the evaluation grid used by :func:`make_beta_curves`.

    Parameters
    ----------
    n_points : int, default=100
        Number of equally spaced points.
    low, high : float, default=0.01, 0.99
        End points of the grid, strictly inside (0, 1) so that every log-pdf is finite.

    Returns
    -------
    grid : ndarray of shape (n_points,)
        The points ``x`` at which the curves are evaluated.

    Examples
    --------
    >>> from skvae.datasets import beta_grid
    >>> beta_grid(3)
    array([0.01, 0.5 , 0.99])
    """
    if not low < high:
        raise ValueError(f"low must be smaller than high, got low={low!r}, high={high!r}.")
    return np.linspace(low, high, n_points)


def _check_range(name: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers, got {value!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
        raise ValueError(f"{name} must satisfy 0 <= low < high < inf, got {value!r}.")
    return lo, hi


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_points": [Interval(Integral, 2, None, closed="left")],
        "alpha_range": [tuple, list],
        "beta_range": [tuple, list],
        "kind": [StrOptions({"logpdf", "pdf"})],
        "noise": [Interval(Real, 0, None, closed="left")],
        "as_frame": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_beta_curves(
    n_samples: int = 10_000,
    n_points: int = 100,
    *,
    alpha_range: tuple[float, float] = (0.0, 5.0),
    beta_range: tuple[float, float] = (0.0, 5.0),
    kind: str = "logpdf",
    noise: float = 0.0,
    as_frame: bool = False,
    random_state=None,
):
    """Generate Beta-distribution curves sampled on a regular grid.

    Each curve is the log-density (or density) of a Beta(α, β) distribution evaluated at
    ``n_points`` equally spaced points of [0.01, 0.99] (see :func:`beta_grid`), with α and β
    drawn uniformly from ``alpha_range`` and ``beta_range``.

    Parameters
    ----------
    n_samples : int, default=10_000
        Number of curves.
    n_points : int, default=100
        Number of grid points per curve.
    alpha_range, beta_range : pair of float, default=(0.0, 5.0)
        Bounds of the uniform distributions of α and β. A lower bound of 0 is
        excluded (the draw is on the open interval), so all curves are finite.
    kind : {"logpdf", "pdf"}, default="logpdf"
        Whether to return the log-density or the density.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to every value.
    as_frame : bool, default=False
        If True, return pandas DataFrames: the curves with columns named by the
        grid points (``"x=0.0100"``, ...) and the parameters with columns
        ``"alpha"`` and ``"beta"``.
    random_state : int, RandomState instance or None, default=None
        Controls the random draws of α, β and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_points) or DataFrame
        The curves (float64, all finite).
    params : ndarray of shape (n_samples, 2) or DataFrame
        The (α, β) of each curve.

    Examples
    --------
    >>> from skvae import make_beta_curves
    >>> X, params = make_beta_curves(n_samples=5, random_state=0)
    >>> X.shape, params.shape
    ((5, 100), (5, 2))
    >>> bool(((params > 0) & (params < 5)).all())
    True
    """
    a_lo, a_hi = _check_range("alpha_range", alpha_range)
    b_lo, b_hi = _check_range("beta_range", beta_range)
    rng = check_random_state(random_state)
    grid = beta_grid(n_points)
    # uniform(low, high) may return low itself; keep the interval open so every curve is finite.
    alpha = np.maximum(rng.uniform(a_lo, a_hi, size=n_samples), np.nextafter(a_lo, np.inf))
    beta = np.maximum(rng.uniform(b_lo, b_hi, size=n_samples), np.nextafter(b_lo, np.inf))
    curves = stats.beta.logpdf(grid[None, :], alpha[:, None], beta[:, None])
    if kind == "pdf":
        curves = np.exp(curves)
    if not np.isfinite(curves).all():
        raise ValueError(
            "Some curves are not finite: the parameter ranges are too extreme for float64. "
            "Narrow alpha_range/beta_range."
        )
    if noise > 0:
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            curves = curves + rng.normal(scale=noise, size=curves.shape)
        if not np.isfinite(curves).all():
            raise ValueError(
                f"Some curves are not finite after adding noise={noise!r}: the noise is too "
                "large for float64. Choose a smaller noise."
            )
    params = np.column_stack([alpha, beta])
    if as_frame:
        import pandas as pd

        columns = [f"x={g:.4f}" for g in grid]
        return (
            pd.DataFrame(curves, columns=columns),
            pd.DataFrame(params, columns=["alpha", "beta"]),
        )
    return curves, params
