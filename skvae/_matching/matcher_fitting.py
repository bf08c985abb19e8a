"""The fitting checks of :class:`~skvae.LatentMatcher` (a mixin): which VAE it matches with.

The combinations of the objective's parameters that make no sense, the check of a prefit
VAE, and the fit of a clone of the VAE on the complete rows of ``X``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._vae import BetaCurveVAE


class LatentMatcherFittingMixin:
    """Fitting machinery of the latent matcher (private methods only)."""

    def _check_objective(self) -> None:
        """Combinations of the objective's parameters that make no sense."""
        if self.objective == "posterior" and self.prior_weight != 0:
            raise ValueError(
                "prior_weight applies to objective='l2'; the posterior objective has its "
                f"own N(0, I) prior term. Got prior_weight={self.prior_weight!r}."
            )
        if self.polish is not None and self.objective != "posterior":
            raise ValueError(
                "polish='gauss-newton' refines the posterior objective: use it with "
                "objective='posterior'."
            )

    def _prefit_estimator(self, X: np.ndarray) -> BetaCurveVAE:
        """The prefit ``estimator``, checked to be fitted on curves as wide as ``X``."""
        if self.estimator is None:
            raise ValueError("prefit=True needs a fitted estimator; got estimator=None.")
        try:
            check_is_fitted(self.estimator)
        except NotFittedError as exc:
            raise NotFittedError(
                "When prefit=True, estimator must be a fitted BetaCurveVAE; fit it "
                "first or use prefit=False."
            ) from exc
        if self.estimator.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the prefit estimator was fitted "
                f"on curves with {self.estimator.n_features_in_} points."
            )
        return self.estimator

    def _fit_estimator(self, X: np.ndarray) -> BetaCurveVAE:
        """A clone of ``estimator`` (or a default VAE) fitted on the complete rows of X."""
        complete = ~np.isnan(X).any(axis=1)
        if not complete.any():
            raise ValueError(
                "Every row of X has missing points (NaN), but fitting the VAE needs "
                "complete curves. Fit on complete curves, or pass a fitted VAE with "
                "prefit=True to match partial curves."
            )
        estimator = (
            BetaCurveVAE(random_state=self.random_state)
            if self.estimator is None
            else clone(self.estimator)
        )
        return estimator.fit(X[complete])
