"""LatentSpaceDisplay: how the latent codes compare with the N(0, I) prior."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ._base import _axes_grid, _check_curves, _check_dims, _figure_of, _is_figure

__all__ = ["LatentSpaceDisplay"]

#: Beyond this many latent dimensions the default pairs are consecutive, not all.
_ALL_PAIRS_UP_TO = 4
#: Panels per row when the display lays out its own figure.
_MAX_COLUMNS = 5


def _default_pairs(latent_dims: int) -> list[tuple[int, int]]:
    if latent_dims <= _ALL_PAIRS_UP_TO:
        return list(itertools.combinations(range(latent_dims), 2))
    return [(i, i + 1) for i in range(latent_dims - 1)]


def _layout(latent_dims: int, n_pairs: int) -> tuple[tuple[int, int], list[int]]:
    """Grid shape and the flat slots used: histograms first, then pairs on new rows.

    Up to two dimensions everything fits on one row (as in the original blog post).
    """
    n_panels = latent_dims + n_pairs
    if latent_dims <= 2:
        return (1, n_panels), list(range(n_panels))
    n_cols = min(max(latent_dims, n_pairs), _MAX_COLUMNS)
    hist_rows = math.ceil(latent_dims / n_cols)
    pair_rows = math.ceil(n_pairs / n_cols)
    slots = list(range(latent_dims)) + [hist_rows * n_cols + i for i in range(n_pairs)]
    return (hist_rows + pair_rows, n_cols), slots


def _label(dim: int) -> str:
    return f"$z_{{{dim + 1}}}$"


class LatentSpaceDisplay:
    """Distribution of latent codes against the standard normal prior.

    A VAE pushes its posterior means towards the prior N(0, I). This display shows, for
    a set of curves, one histogram per latent dimension with the N(0, 1) density drawn
    over it, and scatter plots of pairs of dimensions with dashed circles at radii 1, 2,
    3 and 4 (standard deviations of the prior). With two latent dimensions this is the
    figure of the original blog post: two histograms and the z1-z2 plane.

    Use :meth:`from_estimator` to encode curves and draw them; all parameters are stored
    as attributes.

    Parameters
    ----------
    Z : array-like of shape (n_samples, latent_dims)
        Latent codes, for example ``vae.transform(X)`` (posterior means) or the codes
        found by :class:`~skvae.LatentMatcher`.
    estimator_name : str, default=None
        Name shown in the figure title.

    Attributes
    ----------
    pairs_ : list of tuple of int
        The pairs of dimensions drawn as scatter plots (0-based).
    hist_axes_ : ndarray of matplotlib Axes
        One panel per latent dimension.
    pair_axes_ : ndarray of matplotlib Axes
        One panel per pair in ``pairs_``.
    axes_ : ndarray of matplotlib Axes
        ``hist_axes_`` followed by ``pair_axes_``.
    histograms_ : list of matplotlib BarContainer
        The histogram bars of each dimension.
    density_lines_ : list of matplotlib Line2D
        The N(0, 1) density drawn on each histogram.
    scatters_ : list of matplotlib PathCollection
        The points of each pair panel.
    circles_ : list of list of matplotlib Circle
        The circles of each pair panel, one per radius.
    figure_ : matplotlib Figure
        Figure containing the panels.

    See Also
    --------
    LatentTraversalDisplay : Curves decoded over a grid of latent codes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import BetaCurveVAE, make_beta_curves
    >>> from skvae.plotting import LatentSpaceDisplay
    >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> display = LatentSpaceDisplay.from_estimator(vae, X)
    >>> len(display.hist_axes_), display.pairs_, len(display.circles_[0])
    (2, [(0, 1)], 4)
    """

    def __init__(self, Z, *, estimator_name=None):
        self.Z = Z
        self.estimator_name = estimator_name

    def plot(
        self,
        ax=None,
        *,
        pairs=None,
        bins=30,
        radii=(1, 2, 3, 4),
        hist_kwargs=None,
        scatter_kwargs=None,
    ):
        """Draw the histograms and the pair panels.

        Parameters
        ----------
        ax : array-like of matplotlib Axes, matplotlib Figure or None, default=None
            ``latent_dims + len(pairs)`` Axes: the histograms first, then the pairs.
            A Figure or SubFigure gets the panels made in it; None creates a new figure.
            The display lays out its own panels on one row for up to two dimensions,
            otherwise the histograms on the first rows and the pairs below.
        pairs : list of (int, int), default=None
            Pairs of latent dimensions (0-based) to scatter. By default all pairs when
            there are at most 4 dimensions, otherwise consecutive ones (z1-z2, z2-z3, ...).
            Pass ``[]`` for histograms only.
        bins : int, default=30
            Number of histogram bins.
        radii : sequence of float, default=(1, 2, 3, 4)
            Radii of the circles on the pair panels, in prior standard deviations.
        hist_kwargs : dict, default=None
            Keyword arguments passed to ``Axes.hist``.
        scatter_kwargs : dict, default=None
            Keyword arguments passed to ``Axes.scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
            The display, with its artists, ``axes_`` and ``figure_`` set.
        """
        from matplotlib.patches import Circle

        Z = _check_curves(self.Z, "Z")
        latent_dims = Z.shape[1]
        if pairs is None:
            pairs = _default_pairs(latent_dims)
        else:
            pairs = [_check_dims(pair, latent_dims, 2, "each pair") for pair in pairs]
        radii = [float(r) for r in radii]
        if any(not (math.isfinite(r) and r > 0) for r in radii):
            raise ValueError(f"radii must be positive numbers, got {radii!r}.")

        n_panels = latent_dims + len(pairs)
        if ax is None or _is_figure(ax):
            shape, slots = _layout(latent_dims, len(pairs))
            grid, created = _axes_grid(
                ax,
                shape,
                "LatentSpaceDisplay",
                figsize=(min(3.6 * shape[1], 10.0), min(3.4, 10.0 / shape[1] + 0.4) * shape[0]),
            )
            grid = grid.ravel()
            for i, axis in enumerate(grid):
                if i not in slots:
                    axis.set_visible(False)
            axes = grid[slots]
        else:
            axes, created = _axes_grid(ax, (1, n_panels), "LatentSpaceDisplay")
            axes = axes.ravel()

        hist_axes, pair_axes = axes[:latent_dims], axes[latent_dims:]
        hist_kwargs = {"bins": bins, "density": True, "alpha": 0.6, **(hist_kwargs or {})}
        scatter_kwargs = {"s": 6, "alpha": 0.5, "linewidths": 0, **(scatter_kwargs or {})}
        reach = max(4.0, float(np.max(np.abs(Z))))
        t = np.linspace(-reach, reach, 401)
        density = np.exp(-0.5 * t**2) / math.sqrt(2.0 * math.pi)

        histograms, density_lines = [], []
        for dim, axis in enumerate(hist_axes):
            _, _, bars = axis.hist(Z[:, dim], range=(-reach, reach), **hist_kwargs)
            histograms.append(bars)
            (line,) = axis.plot(t, density, color="black", linewidth=1.2, label="N(0, 1)")
            density_lines.append(line)
            axis.set_xlabel(_label(dim))
            axis.set_ylabel("density")
            axis.legend(loc="upper right", fontsize="small")

        scatters, circles = [], []
        for (i, j), axis in zip(pairs, pair_axes):
            scatters.append(axis.scatter(Z[:, i], Z[:, j], **scatter_kwargs))
            rings = []
            for r in radii:
                ring = Circle(
                    (0.0, 0.0), r, fill=False, linestyle="--", color="crimson", linewidth=0.9
                )
                axis.add_patch(ring)
                rings.append(ring)
            circles.append(rings)
            axis.set_aspect("equal", adjustable="datalim")
            axis.set_xlabel(_label(i))
            axis.set_ylabel(_label(j))

        figure = _figure_of(axes)
        if created:
            if self.estimator_name:
                figure.suptitle(f"Latent codes of {self.estimator_name}")
            figure.tight_layout()
        self.pairs_ = pairs
        self.hist_axes_ = hist_axes
        self.pair_axes_ = pair_axes
        self.axes_ = axes
        self.histograms_ = histograms
        self.density_lines_ = density_lines
        self.scatters_ = scatters
        self.circles_ = circles
        self.figure_ = figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        ax=None,
        pairs=None,
        bins=30,
        radii=(1, 2, 3, 4),
        hist_kwargs=None,
        scatter_kwargs=None,
    ):
        """Encode curves with a fitted estimator and draw their latent codes.

        Parameters
        ----------
        estimator : BetaCurveVAE or LatentMatcher
            A fitted estimator whose ``transform`` returns latent codes: the encoder's
            posterior means for a :class:`~skvae.BetaCurveVAE`, the matched codes for a
            :class:`~skvae.LatentMatcher`.
        X : array-like of shape (n_samples, n_features)
            Curves to encode.
        ax, pairs, bins, radii, hist_kwargs, scatter_kwargs
            See :meth:`plot`.

        Returns
        -------
        display : LatentSpaceDisplay
            The display, drawn.
        """
        Z = estimator.transform(X)
        display = cls(np.asarray(Z), estimator_name=type(estimator).__name__)
        return display.plot(
            ax=ax,
            pairs=pairs,
            bins=bins,
            radii=radii,
            hist_kwargs=hist_kwargs,
            scatter_kwargs=scatter_kwargs,
        )
