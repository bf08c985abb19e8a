"""CurveImputer: fill in the missing points of curves with a VAE trained on them."""

from __future__ import annotations

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from ._torch.networks import sigma_points
from ._utils import unchanged_on_failure
from ._vae import BetaCurveVAE

__all__ = ["CurveImputer"]


class CurveImputer(OneToOneFeatureMixin, TransformerMixin, MetaEstimatorMixin, BaseEstimator):
    """Impute the missing points of curves from a VAE of the curves.

    :meth:`fit` trains a :class:`BetaCurveVAE` on the curves, gaps included (the VAE's
    likelihood counts the observed points only). :meth:`transform` encodes each curve
    from its observed points with the VAE's mask-aware encoder, decodes the code into a
    whole curve, and fills the missing points with it; observed points are returned
    untouched. Unlike :class:`~sklearn.impute.KNNImputer` or
    :class:`~sklearn.impute.IterativeImputer`, which treat the grid points as unrelated
    features, the fill-in is a curve of the family the VAE learnt, so it follows the
    curve's shape across long gaps.

    Parameters
    ----------
    estimator : BetaCurveVAE, default=None
        The VAE; None means ``BetaCurveVAE(random_state=random_state)``.
    prefit : bool, default=False
        If True, ``estimator`` must be fitted already (on curves of the same grid) and is
        used as it is; :meth:`fit` only checks it against ``X``.
    random_state : int, RandomState instance or None, default=None
        Seeds the default VAE when ``estimator`` is None.

    Attributes
    ----------
    estimator_ : BetaCurveVAE
        The fitted VAE: a fitted clone of ``estimator``, or ``estimator`` itself when
        ``prefit=True``.
    n_features_in_ : int
        Number of grid points of the curves.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    sklearn.impute.KNNImputer, sklearn.impute.IterativeImputer : Imputers for features
        without an order.
    BetaCurveVAE : The VAE; ``inverse_transform(transform(X))`` gives the whole curves.
    LatentMatcher : Codes of partial curves by optimisation, with a Laplace band.

    Notes
    -----
    The missing points are assumed to be missing at random (whether a point is missing
    does not depend on its value) and the curves share one grid. Rows with no observed
    point carry nothing to learn and are left out of :meth:`fit`; :meth:`transform` fills
    them with the curve of the code that the encoder gives an empty curve (near the
    prior's mode).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import BetaCurveVAE, CurveImputer, make_beta_curves
    >>> X, _ = make_beta_curves(n_samples=300, kind="pdf", random_state=0)
    >>> X[:, 40:60] = np.where(np.arange(300)[:, None] % 3 == 0, np.nan, X[:, 40:60])
    >>> imputer = CurveImputer(BetaCurveVAE(max_iter=5, random_state=0)).fit(X)
    >>> X_filled = imputer.transform(X)
    >>> bool(np.isfinite(X_filled).all()), bool(np.all(X_filled[1] == X[1]))
    (True, True)
    >>> X_filled, X_std = imputer.transform(X[:3], return_std=True)
    >>> bool(X_std[0, 50] > 0), float(X_std[1, 50])
    (True, 0.0)
    """

    _parameter_constraints: dict = {
        "estimator": [BetaCurveVAE, None],
        "prefit": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, prefit=False, random_state=None):
        self.estimator = estimator
        self.prefit = prefit
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None) -> CurveImputer:
        """Fit the VAE on the curves (unless ``prefit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves on a shared grid; NaN marks a missing point.
        y : None
            Ignored.

        Returns
        -------
        self : CurveImputer
            The fitted imputer.
        """
        with unchanged_on_failure(self):
            X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
            self.estimator_ = self._prefit_estimator(X) if self.prefit else self._fit_estimator(X)
        return self

    def _prefit_estimator(self, X: np.ndarray) -> BetaCurveVAE:
        if self.estimator is None:
            raise ValueError("prefit=True needs a fitted estimator; got estimator=None.")
        try:
            check_is_fitted(self.estimator)
        except NotFittedError as exc:
            raise NotFittedError(
                "When prefit=True, estimator must be a fitted BetaCurveVAE; fit it first "
                "or use prefit=False."
            ) from exc
        if self.estimator.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the prefit estimator was fitted on "
                f"curves with {self.estimator.n_features_in_} points."
            )
        return self.estimator

    def _fit_estimator(self, X: np.ndarray) -> BetaCurveVAE:
        estimator = (
            BetaCurveVAE(random_state=self.random_state)
            if self.estimator is None
            else clone(self.estimator)
        )
        observed_rows = ~np.isnan(X).all(axis=1)
        if not observed_rows.any():
            raise ValueError("Every row of X is missing (all NaN): there is nothing to learn.")
        return estimator.fit(X[observed_rows])

    def transform(self, X, return_std: bool = False):
        """Fill in the missing points of each curve.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves; NaN marks a missing point.
        return_std : bool, default=False
            Also return, for each filled point, the standard deviation of its value under
            the model: the spread of the decoded curves over the encoder's posterior
            (evaluated at its unscented-transform points) and the observation noise
            ``noise_``, added in quadrature; 0 at the observed points.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            ``X`` with its missing points filled; observed points are unchanged.
        X_std : ndarray of shape (n_samples, n_features)
            Only with ``return_std``: the standard deviation of each filled point.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        missing = np.isnan(X)
        if not return_std:
            vae = self.estimator_
            filled = vae.inverse_transform(vae.transform(X))
            return np.where(missing, filled, X)
        filled, std = self._decoded_band(X)
        return np.where(missing, filled, X), np.where(missing, std, 0.0)

    def _decoded_band(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded posterior-mean curves and the predictive standard deviation per point."""
        model = self.estimator_.latent_model()
        mean, std = model.encode(X)
        eps = sigma_points(model.latent_dims).double().numpy()  # (2d, d)
        codes = mean[:, None, :] + std[:, None, :] * eps[None]
        curves = model.decode(codes.reshape(-1, model.latent_dims))
        curves = curves.reshape(len(X), len(eps), -1)
        variance = curves.var(axis=1) + model.noise**2
        return model.decode(mean), np.sqrt(variance)
