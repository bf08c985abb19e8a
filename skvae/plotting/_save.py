"""save_figures: write the five figures of the original analysis for a fitted model."""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np

from ._base import _exp, _grid_label, _resolve_grid, _underlying_vae, detached_figures
from ._history import TrainingHistoryDisplay
from ._latent import LatentSpaceDisplay
from ._reconstruction import ReconstructionDisplay
from ._traversal import LatentTraversalDisplay

__all__ = ["save_figures"]

#: The files save_figures writes, in order (also what the docs count).
FIGURE_NAMES = ("data", "training_history", "latent_space", "reconstruction", "latent_traversal")

#: Number of training curves drawn in the data figure.
_N_DATA_CURVES = 5


def _rows(X, stop: int):
    """The first ``stop`` rows of an array or DataFrame, keeping its type."""
    return X.iloc[:stop] if hasattr(X, "iloc") else X[:stop]


def _data_figure(X: np.ndarray, grid: np.ndarray | None, grid_label: str, pdf: bool):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    x = np.arange(X.shape[1]) if grid is None else grid
    for k, curve in enumerate(_exp(X[:_N_DATA_CURVES], pdf)):
        ax.plot(x, curve, label=f"curve {k}")
    ax.set_xlabel(grid_label)
    ax.set_ylabel("exp(curve)" if pdf else "curve")
    ax.set_title(f"The first {min(len(X), _N_DATA_CURVES)} curves of the data")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_figures(
    estimator,
    X,
    folder,
    *,
    matcher=None,
    n_targets=1,
    pdf=False,
    grid=None,
    max_points=5000,
    n_traversal=10,
    dpi=150,
    format="png",
):
    """Write the five figures of a fitted model to ``folder``, one file each.

    The figures follow the analysis of the original blog post (Beta-distribution curves
    and a two-dimensional VAE): ``data`` (the first curves of
    ``X``), ``training_history`` (:class:`TrainingHistoryDisplay`), ``latent_space``
    (:class:`LatentSpaceDisplay` of ``X``), ``reconstruction``
    (:class:`ReconstructionDisplay` of the first ``n_targets`` curves, matched by
    ``matcher`` when given, else encoded and decoded by ``estimator``) and
    ``latent_traversal`` (:class:`LatentTraversalDisplay`, 10 x 10 by default). Each
    figure has the size and layout its Display chooses with ``ax=None``, but is built
    outside pyplot, so this works with any backend, leaves pyplot's state alone and is
    safe on a machine without a display.

    Parameters
    ----------
    estimator : BetaCurveVAE
        A fitted estimator (a fitted :class:`~skvae.LatentMatcher` is accepted too: its
        ``estimator_`` is used).
    X : array-like of shape (n_samples, n_features)
        Complete curves to draw, for example the training curves.
    folder : str or path-like
        Destination folder, created if needed. Existing files of the same names are
        overwritten.
    matcher : LatentMatcher, default=None
        A fitted matcher; when given, the reconstruction figure shows its matched curves.
    n_targets : int, default=1
        Number of curves of ``X`` (the first ones) in the reconstruction figure.
    pdf : bool, default=False
        Draw ``exp`` of the curves in the data, reconstruction and traversal figures
        (densities, for log-pdf curves as in the original blog post).
    grid : array-like of shape (n_features,), default=None
        x values of the points, for example ``beta_grid(n_features)`` for curves made by
        :func:`~skvae.make_beta_curves`. By default, the column names of the DataFrame
        the estimator was fitted on when they are numbers, else the point index.
    max_points : int, default=5000
        At most this many curves (the first ones) are encoded for the latent-space figure.
    n_traversal : int, default=10
        Size of the traversal grid: ``n_traversal`` x ``n_traversal`` decoded curves.
    dpi : int, default=150
        Resolution of raster formats.
    format : str, default="png"
        File format and extension, any that matplotlib writes (``"png"``, ``"pdf"``,
        ``"svg"``, ...).

    Returns
    -------
    paths : list of pathlib.Path
        The files written, in the order above.

    Examples
    --------
    >>> import tempfile
    >>> from skvae import BetaCurveVAE, make_beta_curves
    >>> from skvae.datasets import beta_grid
    >>> from skvae.plotting import save_figures
    >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = save_figures(vae, X, folder, pdf=True, grid=beta_grid(X.shape[1]))
    ...     [p.name for p in paths]
    ['data.png', 'training_history.png', 'latent_space.png', 'reconstruction.png', \
'latent_traversal.png']
    """
    vae = _underlying_vae(estimator)
    checks = (("n_targets", n_targets), ("max_points", max_points), ("n_traversal", n_traversal))
    for name, value in checks:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or len(values) == 0:
        raise ValueError(f"X must be a non-empty 2-D array of curves, got {values.shape}.")
    grid_label = _grid_label(grid, vae)
    grid = _resolve_grid(grid, vae, values.shape[1])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    n_rows = min(n_targets, len(values))
    reconstructor = matcher if matcher is not None else vae
    with detached_figures():  # each Display sizes its own figure, outside pyplot
        displays = (
            TrainingHistoryDisplay.from_estimator(vae),
            LatentSpaceDisplay.from_estimator(vae, _rows(X, max_points)),
            ReconstructionDisplay.from_estimator(
                reconstructor, _rows(X, n_rows), grid=grid, grid_label=grid_label, pdf=pdf
            ),
            LatentTraversalDisplay.from_estimator(
                vae, n=n_traversal, grid=grid, grid_label=grid_label, pdf=pdf
            ),
        )
    figures = [_data_figure(values, grid, grid_label, pdf)]
    figures += [display.figure_ for display in displays]

    paths = []
    for name, fig in zip(FIGURE_NAMES, figures):
        path = folder / f"{name}.{format}"
        fig.savefig(path, dpi=dpi, format=format)
        paths.append(path)
    return paths
