"""Helpers shared by the Display classes: lazy matplotlib, axes handling, input checks."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..datasets import beta_grid


def _pyplot(caller: str):
    """Import and return ``matplotlib.pyplot``, or raise an ImportError naming ``caller``."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed in the test env
        raise ImportError(
            f"{caller} requires matplotlib. Install it with `pip install matplotlib` "
            'or `pip install "skvae[plots]"`.'
        ) from exc
    return plt


def _is_figure(obj) -> bool:
    """Whether ``obj`` is a matplotlib Figure or SubFigure."""
    from matplotlib.figure import FigureBase

    return isinstance(obj, FigureBase)


def _axes_grid(ax, shape: tuple[int, int], caller: str, *, figsize=None, **subplots_kwargs):
    """Return ``(axes, created)``: a 2-D object array of Axes of ``shape``.

    ``ax`` is None (a new pyplot figure of ``figsize`` is made), a Figure or SubFigure (the
    Axes are made in it), or array-like of exactly ``shape[0] * shape[1]`` Axes (any
    nesting), used in row-major order. ``created`` says whether the Axes are new, in which
    case the display may lay out and title the figure.
    """
    if ax is None:
        plt = _pyplot(caller)
        _, axes = plt.subplots(*shape, squeeze=False, figsize=figsize, **subplots_kwargs)
        return axes, True
    if _is_figure(ax):
        return ax.subplots(*shape, squeeze=False, **subplots_kwargs), True
    flat = np.asarray(ax, dtype=object).ravel()
    axes = np.empty(len(flat), dtype=object)
    axes[:] = list(flat)
    n_needed = shape[0] * shape[1]
    if len(axes) != n_needed or not all(hasattr(a, "plot") for a in axes):
        raise ValueError(
            f"{caller} draws on {n_needed} Axes laid out as {shape[0]} x {shape[1]}; got "
            f"ax={ax!r}. Pass ax=None or a Figure to create them, or an array of "
            f"{n_needed} Axes (for example fig.subplots({shape[0]}, {shape[1]}))."
        )
    return axes.reshape(shape), False


def _as_1d_axes(ax, n: int, caller: str, **subplots_kwargs):
    """Like :func:`_axes_grid` for a row of ``n`` panels; a single Axes is accepted for n=1."""
    if ax is not None and n == 1 and hasattr(ax, "plot"):
        ax = [ax]
    axes, created = _axes_grid(ax, (1, n), caller, **subplots_kwargs)
    return axes.ravel(), created


def _figure_of(axes: np.ndarray):
    """The figure (or subfigure) holding the first Axes of ``axes``."""
    return np.ravel(axes)[0].figure


def _underlying_vae(estimator):
    """The fitted estimator whose decoder defines the curves (a matcher's ``estimator_``)."""
    inner = getattr(estimator, "estimator_", None)
    vae = inner if inner is not None else estimator
    if not hasattr(vae, "n_features_in_"):
        raise ValueError(
            f"{type(estimator).__name__} is not fitted yet: call fit before plotting it."
        )
    return vae


def _check_grid(grid, n_features: int) -> np.ndarray:
    """Return the x values of the curves: ``beta_grid(n_features)`` or the given grid."""
    if grid is None:
        return beta_grid(n_features)
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or len(grid) != n_features:
        raise ValueError(
            f"grid must be a 1-D array with one x value per curve point ({n_features}), "
            f"got shape {grid.shape}."
        )
    return grid


def _check_curves(curves, name: str, *, allow_nan: bool = False) -> np.ndarray:
    """Return ``curves`` as a float64 2-D array (a 1-D input is one row)."""
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim == 1:
        curves = curves[None, :]
    if curves.ndim != 2 or curves.shape[0] == 0 or curves.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {curves.shape}.")
    bad = ~np.isfinite(curves) if not allow_nan else np.isinf(curves)
    if bad.any():
        kind = "infinite values" if allow_nan else "NaN or infinite values"
        raise ValueError(f"{name} contains {kind}.")
    return curves


def _exp(values: np.ndarray, pdf: bool) -> np.ndarray:
    """``exp(values)`` when plotting in pdf space, else ``values`` unchanged."""
    if not pdf:
        return values
    with np.errstate(over="ignore"):
        return np.exp(values)


def _check_dims(dims, latent_dims: int, n: int, name: str) -> tuple[int, ...]:
    """Validate a tuple of ``n`` distinct latent dimension indices."""
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of {n} integers, got {dims!r}.") from None
    if (
        len(dims) != n
        or not all(isinstance(d, Integral) and not isinstance(d, bool) for d in dims)
        or not all(0 <= d < latent_dims for d in dims)
        or len(set(dims)) != n
    ):
        raise ValueError(
            f"{name} must be {n} distinct integers in [0, {latent_dims}) "
            f"(latent_dims={latent_dims}), got {dims!r}."
        )
    return tuple(int(d) for d in dims)
