"""LatentTraversalDisplay: decoded curves over a regular grid of latent codes."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ._base import (
    _axes_grid,
    _check_dims,
    _check_grid,
    _exp,
    _figure_of,
    _grid_label,
    _resolve_grid,
    _underlying_vae,
)

__all__ = ["LatentTraversalDisplay"]


class LatentTraversalDisplay:
    """Curves decoded on a regular grid of latent codes, one small panel per code.

    Two latent dimensions are swept over the same values; panel ``(row, col)`` shows the
    curve decoded at ``z[dims[0]] = z_values[col]`` and ``z[dims[1]] = z_values[-1 - row]``
    (the first dimension grows to the right, the second upwards). Every panel has the same
    x and y ranges and a dashed zero line, so shapes and heights compare at a glance, which
    shows what each latent direction encodes. The values of the first dimension head the
    columns and those of the second label the rows on the right; only the outer panels
    carry tick labels, so that the figure reads at any size. With a single latent dimension
    the panels form one row.

    Use :meth:`from_estimator` to decode the grid and draw it; all parameters are stored
    as attributes.

    Parameters
    ----------
    grid : array-like of shape (n_features,), default=None
        The x value of each curve point; None draws the curves against the point index.
    z_values : array-like of shape (n,)
        The values taken by each traversed latent dimension.
    curves : array-like of shape (n, n, n_features) or (n, n_features)
        ``curves[i, j]`` is the curve decoded at ``z[dims[0]] = z_values[i]`` and
        ``z[dims[1]] = z_values[j]``; a 2-D array is a traversal of one dimension.
    dims : tuple of int, default=(0, 1)
        The traversed latent dimensions (0-based), used for the labels.
    estimator_name : str, default=None
        Name shown in the figure title.
    grid_label : str, default=None
        Name of the curves' x axis, shown in the figure title: by default the grid's name
        (a pandas Series or Index), else ``"x"``, or "grid point" without a grid.

    Attributes
    ----------
    lines_ : ndarray of matplotlib Line2D
        The decoded curve of each panel, laid out as ``axes_``.
    zero_lines_ : ndarray of matplotlib Line2D or None
        The zero line of each panel (None when ``zero_line=False``).
    axes_ : ndarray of matplotlib Axes of shape (n, n) or (1, n)
        The panels.
    figure_ : matplotlib Figure
        Figure containing the panels.

    See Also
    --------
    LatentSpaceDisplay : Where the training curves' codes lie.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import BetaCurveVAE, make_beta_curves
    >>> from skvae.plotting import LatentTraversalDisplay
    >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> display = LatentTraversalDisplay.from_estimator(vae, n=4, pdf=True)
    >>> display.axes_.shape
    (4, 4)
    """

    def __init__(
        self, *, z_values, curves, grid=None, dims=(0, 1), estimator_name=None, grid_label=None
    ):
        self.grid = grid
        self.grid_label = grid_label
        self.z_values = z_values
        self.curves = curves
        self.dims = dims
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, pdf=False, zero_line=True, titles=False, line_kwargs=None):
        """Draw the grid of decoded curves.

        Parameters
        ----------
        ax : array-like of matplotlib Axes, matplotlib Figure or None, default=None
            ``n * n`` Axes (``n`` for one traversed dimension), read row by row from the
            top. A Figure or SubFigure gets the panels made in it; None creates a new
            figure.
        pdf : bool, default=False
            Draw ``exp`` of the curves (densities, for log-pdf curves).
        zero_line : bool, default=True
            Draw a dashed grey line at zero in every panel.
        titles : bool, default=False
            Title every panel with its latent coordinates (small print; by default only
            the columns and rows are labelled).
        line_kwargs : dict, default=None
            Keyword arguments passed to ``Axes.plot`` for the curves.

        Returns
        -------
        display : LatentTraversalDisplay
            The display, with ``lines_``, ``zero_lines_``, ``axes_`` and ``figure_`` set.
        """
        z_values = np.asarray(self.z_values, dtype=np.float64).ravel()
        curves = np.asarray(self.curves, dtype=np.float64)
        n = len(z_values)
        if curves.ndim == 2:
            curves = curves[:, None, :]
        if curves.ndim != 3 or curves.shape[0] != n or curves.shape[1] not in (1, n):
            raise ValueError(
                f"curves must have shape (n, n, n_features) or (n, n_features) with "
                f"n = len(z_values) = {n}, got {np.shape(self.curves)}."
            )
        dims = tuple(int(d) for d in self.dims)
        two_dims = len(dims) == 2 and curves.shape[1] == n
        grid = _check_grid(self.grid, curves.shape[2])
        shown = _exp(curves, pdf)
        finite = shown[np.isfinite(shown)]
        if finite.size == 0:
            raise ValueError("The curves have no finite value to draw.")
        low, high = min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)
        margin = 0.05 * (high - low) or 1.0

        shape = (n, n) if two_dims else (1, n)
        axes, created = _axes_grid(
            ax,
            shape,
            "LatentTraversalDisplay",
            figsize=(_side(n), _side(n)) if two_dims else (min(1.4 * n, 10.0), 2.2),
            sharex=True,
            sharey=True,
        )
        line_kwargs = {"color": "tab:blue", "linewidth": 1.0, **(line_kwargs or {})}
        lines = np.empty(shape, dtype=object)
        zero_lines = np.empty(shape, dtype=object) if zero_line else None
        for i in range(n):
            for j in range(curves.shape[1]):
                row, col = (n - 1 - j, i) if two_dims else (0, i)
                axis = axes[row, col]
                (lines[row, col],) = axis.plot(grid, shown[i, j], **line_kwargs)
                if zero_line:
                    (zero_lines[row, col],) = axis.plot(
                        grid[[0, -1]], [0.0, 0.0], color="grey", linestyle="--", linewidth=0.8
                    )
                axis.set_ylim(low - margin, high + margin)
                _quiet_panel(axis)
                if titles:
                    text = f"{z_values[i]:.2f}"
                    if two_dims:
                        text += f", {z_values[j]:.2f}"
                    axis.set_title(text, fontsize=6, pad=2)
        labels = [f"$z_{{{d + 1}}}$" for d in dims]
        for col in range(n):  # column headers: the first dimension's values
            if not titles:
                axes[0, col].set_title(f"{z_values[col]:.2g}", fontsize="small", pad=3)
        if two_dims:
            for row in range(n):  # row labels, on the right: the second dimension's values
                right = axes[row, -1]
                right.yaxis.set_label_position("right")
                right.set_ylabel(
                    f"{z_values[n - 1 - row]:.2g}", fontsize="small", rotation=0, ha="left"
                )
        for axis in axes.ravel():
            axis.label_outer(remove_inner_ticks=True)
        figure = _figure_of(axes)
        if created:
            grid_name = _grid_label(self.grid, grid_label=self.grid_label)
            figure.supxlabel(
                f"{labels[0]}: columns, left to right (each panel: the curve against {grid_name})",
                fontsize="medium",
            )
            if two_dims and len(labels) > 1:
                figure.supylabel(f"{labels[1]}: rows, bottom to top", fontsize="medium")
            if self.estimator_name:
                figure.suptitle(f"Curves decoded by {self.estimator_name}", fontsize="large")
            figure.tight_layout()
        self.lines_ = lines
        self.zero_lines_ = zero_lines
        self.axes_ = axes
        self.figure_ = figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        n=10,
        z_range=(-3.0, 3.0),
        dims=(0, 1),
        center=None,
        grid=None,
        pdf=False,
        ax=None,
        zero_line=True,
        titles=False,
        line_kwargs=None,
        grid_label=None,
    ):
        """Decode an ``n`` x ``n`` grid of latent codes with a fitted estimator and draw it.

        Parameters
        ----------
        estimator : BetaCurveVAE or LatentMatcher
            A fitted estimator with ``inverse_transform`` from latent codes to curves.
        n : int, default=10
            Number of values per traversed dimension.
        z_range : (float, float), default=(-3.0, 3.0)
            Range of the traversed latent values, in prior standard deviations.
        dims : tuple of int, default=(0, 1)
            The two latent dimensions to traverse (0-based). With ``latent_dims=1`` the
            traversal is one row over dimension 0 and ``dims`` is ignored.
        center : array-like of shape (latent_dims,), default=None
            Latent code through which the traversal passes: the dimensions not in ``dims``
            keep its values. Zeros (the prior mean) by default.
        grid : array-like of shape (n_features,), default=None
            x values of the points. By default, the column names of the DataFrame the
            estimator was fitted on when they are numbers (such as ``"x=0.0100"``),
            else the point index 0, 1, ...
        pdf, ax, zero_line, titles, line_kwargs
            See :meth:`plot`.
        grid_label : str, default=None
            Name of the curves' x axis: by default the grid's name (a pandas Series or
            Index), the name in the estimator's column names (``"x"`` for
            ``"x=0.0100"``), else ``"x"``, or "grid point" without a grid.

        Returns
        -------
        display : LatentTraversalDisplay
            The display, drawn.
        """
        vae = _underlying_vae(estimator)
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
        try:
            low, high = (float(v) for v in z_range)
        except (TypeError, ValueError):
            raise ValueError(f"z_range must be a pair of numbers, got {z_range!r}.") from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"z_range must be finite with low < high, got {z_range!r}.")
        latent_dims = _latent_width(vae)
        dims = (0,) if latent_dims == 1 else _check_dims(dims, latent_dims, 2, "dims")
        base = np.zeros(latent_dims) if center is None else np.asarray(center, dtype=float)
        if base.shape != (latent_dims,) or not np.isfinite(base).all():
            raise ValueError(
                f"center must be a finite latent code of shape ({latent_dims},), "
                f"got {np.shape(center)}."
            )
        z_values = np.linspace(low, high, n)
        if len(dims) == 2:
            zi, zj = np.meshgrid(z_values, z_values, indexing="ij")
            codes = np.tile(base, (n * n, 1))
            codes[:, dims[0]], codes[:, dims[1]] = zi.ravel(), zj.ravel()
        else:
            codes = np.tile(base, (n, 1))
            codes[:, dims[0]] = z_values
        curves = np.asarray(estimator.inverse_transform(codes), dtype=np.float64)
        curves = curves.reshape(n, n, -1) if len(dims) == 2 else curves
        display = cls(
            grid=_resolve_grid(grid, vae, curves.shape[-1]),
            z_values=z_values,
            curves=curves,
            dims=dims,
            estimator_name=type(vae).__name__,
            grid_label=_grid_label(grid, vae, grid_label),
        )
        return display.plot(
            ax=ax, pdf=pdf, zero_line=zero_line, titles=titles, line_kwargs=line_kwargs
        )


def _side(n: int) -> float:
    """Width and height, in inches, of an n x n traversal figure."""
    return float(min(max(6.0, 0.9 * n + 1.0), 11.0))


def _quiet_panel(axis) -> None:
    """Light frame, few small ticks: many small panels stay readable."""
    from matplotlib.ticker import MaxNLocator

    for spine in axis.spines.values():
        spine.set_color("0.75")
    axis.tick_params(labelsize="x-small", color="0.6", length=2, pad=1)
    axis.xaxis.set_major_locator(MaxNLocator(3, steps=[1, 2, 2.5, 5, 10]))
    axis.yaxis.set_major_locator(MaxNLocator(3, steps=[1, 2, 2.5, 5, 10]))


def _latent_width(vae) -> int:
    """Number of latent dimensions of a fitted estimator (its number of output features)."""
    if hasattr(vae, "get_feature_names_out"):
        return len(vae.get_feature_names_out())
    return int(vae.latent_dims)
