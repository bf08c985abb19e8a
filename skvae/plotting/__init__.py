"""Figures for fitted skvae models, following scikit-learn's Display API.

Each Display stores the data it draws, draws it with ``plot(ax=None, ...)`` and keeps the
matplotlib objects it made in attributes ending with ``_`` (``axes_``, ``figure_``, the
lines...). The ``from_estimator`` class methods compute what to draw from a fitted
:class:`~skvae.BetaCurveVAE` or :class:`~skvae.LatentMatcher` and plot it in one call.

matplotlib is imported only when something is drawn: importing :mod:`skvae` or this
module does not import it.
"""

from ._history import TrainingHistoryDisplay, equivalent_noise
from ._latent import LatentSpaceDisplay
from ._reconstruction import ReconstructionDisplay
from ._save import save_figures
from ._traversal import LatentTraversalDisplay

__all__ = [
    "LatentSpaceDisplay",
    "LatentTraversalDisplay",
    "ReconstructionDisplay",
    "TrainingHistoryDisplay",
    "equivalent_noise",
    "save_figures",
]
