"""Helpers shared by the Display classes: lazy matplotlib, axes handling, input checks.

Everything here is private to :mod:`skvae.plotting`; the Display modules and
:func:`~skvae.plotting.save_figures` use these helpers and nothing private of each other.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from numbers import Integral

import numpy as np

#: While set, a Display asked to make its own figure (``ax=None``) makes a plain
#: :class:`matplotlib.figure.Figure` of its own size instead of a pyplot figure.
_DETACHED = contextvars.ContextVar("skvae_plotting_detached_figures", default=False)


@contextlib.contextmanager
def detached_figures() -> Iterator[None]:
    """Within this block, Displays drawn with ``ax=None`` make figures outside pyplot.

    The figures have the size and layout the Display chooses for itself, but are not
    registered with pyplot (no GUI window, no global state), so they can be saved and
    dropped on any backend.
    """
    token = _DETACHED.set(True)
    try:
        yield
    finally:
        _DETACHED.reset(token)


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
        if _DETACHED.get():
            from matplotlib.figure import Figure

            figure = Figure(figsize=figsize)
            return figure.subplots(*shape, squeeze=False, **subplots_kwargs), True
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
    """Return the x values of the curves: the given grid, or the point index 0, 1, ...

    skvae's estimators fit any family of curves sampled on a common grid and do not know
    where the points lie; without a grid the curves are drawn against the point index.
    """
    if grid is None:
        return np.arange(n_features, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or len(grid) != n_features:
        raise ValueError(
            f"grid must be a 1-D array with one x value per curve point ({n_features}), "
            f"got shape {grid.shape}."
        )
    if not np.isfinite(grid).all():
        raise ValueError("grid must contain finite x values only.")
    return grid


def _grid_from_feature_names(estimator) -> np.ndarray | None:
    """The x values named by the columns the estimator was fitted on, if they are numbers.

    A DataFrame whose columns are numbers (``0.01``, ``"0.5"``) or ``"name=number"``
    (``"x=0.0100"``, as :func:`~skvae.make_beta_curves` with ``as_frame=True`` names
    them) carries its grid; the grid must be strictly monotone. Anything else gives None.
    """
    names = _feature_names(estimator)
    if names is None or len(names) < 2:
        return None
    try:
        grid = np.array([float(str(name).rpartition("=")[2]) for name in names])
    except ValueError:
        return None
    steps = np.diff(grid)
    if not np.isfinite(grid).all() or not ((steps > 0).all() or (steps < 0).all()):
        return None
    return grid


def _resolve_grid(grid, estimator, n_features: int) -> np.ndarray | None:
    """The x values for curves of ``estimator``: ``grid`` (checked) if given, else the
    estimator's numeric column names (see :func:`_grid_from_feature_names`), else None
    (the Displays then draw against the point index)."""
    if grid is not None:
        return _check_grid(grid, n_features)
    if estimator is None:
        return None
    named = _grid_from_feature_names(estimator)
    return named if named is not None and len(named) == n_features else None


def _grid_label(grid, estimator=None, grid_label=None) -> str:
    """Axis label for curves drawn against ``grid``: ``grid_label`` when given, else the
    grid's own name (a pandas Series or Index), else the name in the estimator's column
    names (``"t"`` for columns ``"t=0.5"``), else ``"x"``; "grid point" without a grid."""
    if grid_label is not None:
        return str(grid_label)
    name = getattr(grid, "name", None)
    if name is not None:
        return str(name)
    if grid is None:
        names = _feature_names(estimator)
        if names is not None and _grid_from_feature_names(estimator) is not None:
            prefix = str(names[0]).rpartition("=")[0]
            return prefix or "x"
        return "grid point"
    return "x"


def _feature_names(estimator):
    if estimator is None:
        return None
    names = getattr(estimator, "feature_names_in_", None)
    inner = getattr(estimator, "estimator_", None)
    if names is None and inner is not None:
        names = getattr(inner, "feature_names_in_", None)
    return names


def _plain_log_ticks(axis, which: str = "y") -> None:
    """Label the ticks of a log axis with plain numbers (``3``, ``0.02``), not ``3×10⁰``.

    Which ticks get a label is matplotlib's choice (every decade; the minor ticks too
    when the axis spans little more than a decade); only how a label reads changes.
    """
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.3g}"

    target = axis.yaxis if which == "y" else axis.xaxis
    target.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    target.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def _readable_ticks(axis, n: int = 5) -> None:
    """At most ``n`` ticks per axis, at round values."""
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(n, steps=[1, 2, 2.5, 5, 10]))
    axis.yaxis.set_major_locator(MaxNLocator(n, steps=[1, 2, 2.5, 5, 10]))


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
