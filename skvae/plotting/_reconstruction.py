"""ReconstructionDisplay: target curves next to the curves a model gives back for them."""

from __future__ import annotations

import numpy as np

from ._base import (
    _axes_grid,
    _check_curves,
    _check_grid,
    _exp,
    _figure_of,
    _grid_label,
    _readable_ticks,
    _resolve_grid,
)

__all__ = ["ReconstructionDisplay"]

#: More targets than this make an unreadable figure; pass a slice instead.
_MAX_TARGETS = 20


def _format_code(z: np.ndarray) -> str:
    return "z = (" + ", ".join(f"{v:.2f}" for v in z) + ")"


class ReconstructionDisplay:
    """Target curves, their reconstructions, and the difference between the two.

    Each target gets one row of two panels: on the left the target and the decoded curve
    over the grid, on the right their difference (target minus decoded). The
    reconstruction may come from a :class:`~skvae.BetaCurveVAE` (encode, then decode the
    posterior mean) or from a :class:`~skvae.LatentMatcher` (the latent code found by
    optimisation, then decoded). Targets may have missing points (NaN) when they come
    with a matcher: the observed points are drawn as markers, the decoded curve covers
    the whole grid, and the difference and its L2 norm use the observed points only.

    An optional ``band=(lower, upper)`` is shaded around each decoded curve, for example
    a pointwise uncertainty interval of the reconstruction.

    With ``pdf=True`` the curves (and the band) are exponentiated before drawing, which
    turns log-pdf curves (the default of :func:`~skvae.make_beta_curves`) into densities,
    as in the figures of the original blog post; the difference is then taken between the
    densities.

    Use :meth:`from_estimator` to compute and draw the reconstructions; all parameters
    are stored as attributes.

    Parameters
    ----------
    grid : array-like of shape (n_features,), default=None
        The x value of each curve point; None draws the curves against the point index
        0, 1, ..., ``n_features - 1``.
    target : array-like of shape (n_targets, n_features) or (n_features,)
        Target curves; NaN marks a missing point.
    reconstruction : array-like of the same shape as ``target``
        The curves given back by the model, on the whole grid.
    latent : array-like of shape (n_targets, latent_dims), default=None
        Latent code of each reconstruction, shown in the legend.
    source : str, default=None
        What made the reconstructions, shown in the legend (for example
        ``"BetaCurveVAE"``).
    band : (array-like, array-like), default=None
        ``(lower, upper)``, each of the same shape as ``reconstruction``: a band shaded
        between them around each decoded curve (``Axes.fill_between``), in the units of
        the curves. ``lower <= upper`` everywhere.
    grid_label : str, default=None
        Label of the x axis. By default the grid's name when it has one (a pandas Series
        or Index), else ``"x"``, or "grid point" without a grid.

    Attributes
    ----------
    target_lines_ : list of matplotlib Line2D
        One per target (markers only when the target has missing points).
    reconstruction_lines_ : list of matplotlib Line2D
        One per target.
    residual_lines_ : list of matplotlib Line2D
        The difference target - reconstruction, one per target.
    bands_ : list of matplotlib PolyCollection or None
        The shaded band of each target, or None without ``band``.
    errors_ : ndarray of shape (n_targets,)
        L2 norm of each difference over the observed points, in the units drawn.
    axes_ : ndarray of matplotlib Axes of shape (n_targets, 2)
        Curve panel and difference panel of each target.
    figure_ : matplotlib Figure
        Figure containing the panels.

    See Also
    --------
    skvae.LatentMatcher : Finds the latent code that best matches a target.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import BetaCurveVAE, make_beta_curves
    >>> from skvae.plotting import ReconstructionDisplay
    >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> display = ReconstructionDisplay.from_estimator(vae, X[:2], pdf=True)
    >>> display.axes_.shape, display.errors_.shape
    ((2, 2), (2,))
    """

    def __init__(
        self,
        *,
        target,
        reconstruction,
        grid=None,
        latent=None,
        source=None,
        band=None,
        grid_label=None,
    ):
        self.grid = grid
        self.grid_label = grid_label
        self.target = target
        self.reconstruction = reconstruction
        self.latent = latent
        self.source = source
        self.band = band

    def plot(
        self,
        ax=None,
        *,
        pdf=False,
        target_kwargs=None,
        reconstruction_kwargs=None,
        band_kwargs=None,
    ):
        """Draw the targets, the reconstructions and their differences.

        Parameters
        ----------
        ax : array-like of matplotlib Axes, matplotlib Figure or None, default=None
            ``2 * n_targets`` Axes, read row by row (curve, difference, curve, ...).
            A Figure or SubFigure gets the panels made in it; None creates a new figure.
        pdf : bool, default=False
            Draw ``exp`` of the curves (densities, for log-pdf curves).
        target_kwargs : dict, default=None
            Keyword arguments passed to ``Axes.plot`` for the targets.
        reconstruction_kwargs : dict, default=None
            Keyword arguments passed to ``Axes.plot`` for the reconstructions.
        band_kwargs : dict, default=None
            Keyword arguments passed to ``Axes.fill_between`` for the band (by default
            the reconstruction's colour, translucent, labelled ``"band"``).

        Returns
        -------
        display : ReconstructionDisplay
            The display, with its lines, ``errors_``, ``axes_`` and ``figure_`` set.
        """
        target = _check_curves(self.target, "target", allow_nan=True)
        reconstruction = _check_curves(self.reconstruction, "reconstruction")
        if target.shape != reconstruction.shape:
            raise ValueError(
                f"target and reconstruction must have the same shape, got {target.shape} "
                f"and {reconstruction.shape}."
            )
        n_targets, n_features = target.shape
        if n_targets > _MAX_TARGETS:
            raise ValueError(
                f"ReconstructionDisplay draws one row per target; got {n_targets} targets, "
                f"more than {_MAX_TARGETS}. Pass a few, for example X[:5]."
            )
        if np.isnan(target).all(axis=1).any():
            raise ValueError("Every target needs at least one observed (non-NaN) point.")
        grid = _check_grid(self.grid, n_features)
        latent = None
        if self.latent is not None:
            latent = np.atleast_2d(np.asarray(self.latent, dtype=np.float64))
            if latent.ndim != 2 or len(latent) != n_targets:
                raise ValueError(
                    f"latent must have one row (latent code) per target ({n_targets}), "
                    f"got shape {latent.shape}."
                )

        band = _check_band(self.band, reconstruction.shape)

        shown_target = _exp(target, pdf)
        shown_rec = _exp(reconstruction, pdf)
        residual = shown_target - shown_rec
        observed = ~np.isnan(target)
        errors = np.sqrt(np.nansum(residual**2, axis=1))

        axes, created = _axes_grid(
            ax, (n_targets, 2), "ReconstructionDisplay", figsize=(9.0, 3.3 * n_targets)
        )
        source = self.source or "model"
        x_label = _grid_label(self.grid, grid_label=self.grid_label)
        target_lines, rec_lines, residual_lines = [], [], []
        bands = [] if band is not None else None
        for k in range(n_targets):
            ax_curve, ax_res = axes[k]
            partial = not observed[k].all()
            t_kwargs = {"color": "black", "label": "target"}
            if partial:
                t_kwargs.update(marker="o", linestyle="none", markersize=4)
                t_kwargs["label"] = f"target ({observed[k].sum()} observed points)"
            t_kwargs.update(target_kwargs or {})
            (t_line,) = ax_curve.plot(grid, shown_target[k], **t_kwargs)
            label = f"{source}"
            if latent is not None:
                label += f", {_format_code(latent[k])}"
            r_kwargs = {"color": "tab:blue", "linestyle": "--", "label": label}
            r_kwargs.update(reconstruction_kwargs or {})
            (r_line,) = ax_curve.plot(grid, shown_rec[k], **r_kwargs)
            if band is not None:
                b_kwargs = {"color": r_line.get_color(), "alpha": 0.25, "linewidth": 0}
                b_kwargs.update({"label": "band", **(band_kwargs or {})})
                lower, upper = (_exp(side[k], pdf) for side in band)
                bands.append(ax_curve.fill_between(grid, lower, upper, **b_kwargs))
            ax_curve.set_xlabel(x_label)
            ax_curve.set_ylabel("exp(curve)" if pdf else "curve")
            ax_curve.legend(fontsize="small")
            res_style = {"marker": "o", "markersize": 3} if partial else {}
            (res_line,) = ax_res.plot(grid, residual[k], color="tab:red", **res_style)
            ax_res.axhline(0.0, color="grey", linestyle=":", linewidth=1)
            ax_res.set_xlabel(x_label)
            ax_res.set_ylabel("target - reconstruction")
            ax_res.set_title(f"difference (L2 = {errors[k]:.3g})", fontsize="medium")
            for axis in (ax_curve, ax_res):
                _readable_ticks(axis)
            target_lines.append(t_line)
            rec_lines.append(r_line)
            residual_lines.append(res_line)

        figure = _figure_of(axes)
        if created:
            figure.tight_layout()
        self.target_lines_ = target_lines
        self.reconstruction_lines_ = rec_lines
        self.residual_lines_ = residual_lines
        self.bands_ = bands
        self.errors_ = errors
        self.axes_ = axes
        self.figure_ = figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        grid=None,
        grid_label=None,
        band=None,
        pdf=False,
        ax=None,
        target_kwargs=None,
        reconstruction_kwargs=None,
        band_kwargs=None,
    ):
        """Reconstruct curves with a fitted estimator and draw them against the targets.

        The latent codes are ``estimator.transform(X)`` and the reconstructions
        ``estimator.inverse_transform`` of them: the encoder's posterior means decoded,
        for a :class:`~skvae.BetaCurveVAE`; the matched codes decoded, for a
        :class:`~skvae.LatentMatcher` (which also accepts targets with NaN). Any fitted
        transformer with ``inverse_transform`` works, for example a
        :class:`~sklearn.decomposition.PCA`.

        Parameters
        ----------
        estimator : BetaCurveVAE or LatentMatcher
            The fitted model.
        X : array-like of shape (n_targets, n_features)
            Target curves (a few: one row of panels each).
        grid : array-like of shape (n_features,), default=None
            x values of the points. By default, the column names of the DataFrame the
            estimator was fitted on when they are numbers (such as ``"x=0.0100"``),
            else the point index 0, 1, ...
        grid_label : str, default=None
            Label of the x axis: by default the grid's name (a pandas Series or Index),
            the name in the estimator's column names (``"x"`` for ``"x=0.0100"``), else
            ``"x"``, or "grid point" without a grid.
        band : (array-like, array-like), default=None
            ``(lower, upper)`` around the reconstructions, each of shape
            ``(n_targets, n_features)``; see the class description.
        pdf, ax, target_kwargs, reconstruction_kwargs, band_kwargs
            See :meth:`plot`.

        Returns
        -------
        display : ReconstructionDisplay
            The display, drawn.
        """
        Z = np.asarray(estimator.transform(X), dtype=np.float64)
        reconstruction = np.asarray(estimator.inverse_transform(Z), dtype=np.float64)
        target = np.asarray(X, dtype=np.float64)
        display = cls(
            grid=_resolve_grid(grid, estimator, np.atleast_2d(target).shape[1]),
            target=target,
            reconstruction=reconstruction,
            latent=Z,
            source=type(estimator).__name__,
            band=band,
            grid_label=_grid_label(grid, estimator, grid_label),
        )
        return display.plot(
            ax=ax,
            pdf=pdf,
            target_kwargs=target_kwargs,
            reconstruction_kwargs=reconstruction_kwargs,
            band_kwargs=band_kwargs,
        )


def _check_band(band, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``band`` as two finite float64 arrays of ``shape`` with lower <= upper."""
    if band is None:
        return None
    try:
        lower, upper = band
    except (TypeError, ValueError):
        raise ValueError(
            f"band must be a pair (lower, upper) of arrays shaped like the reconstructions "
            f"{shape}, got {type(band).__name__}."
        ) from None
    sides = []
    for name, side in (("lower", lower), ("upper", upper)):
        side = np.asarray(side, dtype=np.float64)
        if side.ndim == 1:
            side = side[None, :]
        if side.shape != shape:
            raise ValueError(
                f"band's {name} side must have the shape of the reconstructions {shape}, "
                f"got {side.shape}."
            )
        if not np.isfinite(side).all():
            raise ValueError(f"band's {name} side contains NaN or infinite values.")
        sides.append(side)
    if (sides[0] > sides[1]).any():
        raise ValueError("band must satisfy lower <= upper at every point.")
    return sides[0], sides[1]
