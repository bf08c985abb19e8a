"""save_figures: write the seed's five figures for a fitted model to a folder."""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np

from ._base import _check_grid, _exp, _underlying_vae
from ._history import TrainingHistoryDisplay
from ._latent import LatentSpaceDisplay, _default_pairs, _layout
from ._reconstruction import ReconstructionDisplay
from ._traversal import LatentTraversalDisplay

__all__ = ["save_figures"]

#: Number of training curves drawn in the data figure.
_N_DATA_CURVES = 5


def _rows(X, stop: int):
    """The first ``stop`` rows of an array or DataFrame, keeping its type."""
    return X.iloc[:stop] if hasattr(X, "iloc") else X[:stop]


def _data_figure(Figure, X: np.ndarray, grid: np.ndarray, pdf: bool):
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for k, curve in enumerate(_exp(X[:_N_DATA_CURVES], pdf)):
        ax.plot(grid, curve, label=f"curve {k}")
    ax.set_xlabel("x")
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
    dpi=100,
    format="png",
):
    """Write the five figures of a fitted model to ``folder``, one file each.

    The figures follow the analysis of the seed notebook: ``data`` (the first curves of
    ``X``), ``training_history`` (:class:`TrainingHistoryDisplay`), ``latent_space``
    (:class:`LatentSpaceDisplay` of ``X``), ``reconstruction``
    (:class:`ReconstructionDisplay` of the first ``n_targets`` curves, matched by
    ``matcher`` when given, else encoded and decoded by ``estimator``) and
    ``latent_traversal`` (:class:`LatentTraversalDisplay`, 10 x 10 by default). The
    figures are built with :class:`matplotlib.figure.Figure` directly, so this works with
    any backend, leaves pyplot's state alone and is safe on a machine without a display.

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
        (densities, for log-pdf curves as in the seed).
    grid : array-like of shape (n_features,), default=None
        x values of the points; ``beta_grid(n_features)`` by default.
    max_points : int, default=5000
        At most this many curves (the first ones) are encoded for the latent-space figure.
    n_traversal : int, default=10
        Size of the traversal grid: ``n_traversal`` x ``n_traversal`` decoded curves.
    dpi : int, default=100
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
    >>> from skvae.plotting import save_figures
    >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = save_figures(vae, X, folder, pdf=True)
    ...     [p.name for p in paths]
    ['data.png', 'training_history.png', 'latent_space.png', 'reconstruction.png', \
'latent_traversal.png']
    """
    from matplotlib.figure import Figure

    vae = _underlying_vae(estimator)
    checks = (("n_targets", n_targets), ("max_points", max_points), ("n_traversal", n_traversal))
    for name, value in checks:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or len(values) == 0:
        raise ValueError(f"X must be a non-empty 2-D array of curves, got {values.shape}.")
    grid = _check_grid(grid, values.shape[1])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    figures = [("data", _data_figure(Figure, values, grid, pdf))]

    with_validation = bool(getattr(vae, "validation_scores_", None))
    n_panels = 3 if with_validation else 2
    fig = Figure(figsize=(4.2 * n_panels, 3.6))
    TrainingHistoryDisplay.from_estimator(vae, ax=fig)
    figures.append(("training_history", fig))

    Z = np.asarray(vae.transform(_rows(X, max_points)))
    latent_dims = Z.shape[1]
    (n_rows, n_cols), _ = _layout(latent_dims, len(_default_pairs(latent_dims)))
    fig = Figure(figsize=(3.6 * n_cols, 3.4 * n_rows))
    LatentSpaceDisplay(Z, estimator_name=type(vae).__name__).plot(ax=fig)
    figures.append(("latent_space", fig))

    n_rows = min(n_targets, len(values))
    fig = Figure(figsize=(10, 3.4 * n_rows))
    ReconstructionDisplay.from_estimator(
        matcher if matcher is not None else vae, _rows(X, n_rows), grid=grid, pdf=pdf, ax=fig
    )
    figures.append(("reconstruction", fig))

    fig = Figure(figsize=(8, 8) if latent_dims > 1 else (12, 1.6))
    LatentTraversalDisplay.from_estimator(vae, n=n_traversal, grid=grid, pdf=pdf, ax=fig)
    figures.append(("latent_traversal", fig))

    paths = []
    for name, fig in figures:
        path = folder / f"{name}.{format}"
        fig.savefig(path, dpi=dpi, format=format)
        paths.append(path)
    return paths
