"""The inference methods of :class:`~skvae.BetaCurveVAE` (a mixin): encode, decode,
sample, score, and the :class:`LatentModel` contract that matchers use. Inputs may be
numpy arrays or dask arrays (mapped block by block); outputs are float64.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _training
from ._dask import is_dask_array, map_rows
from ._inference import apply_in_chunks
from ._latent_model import LatentModel
from ._scaling import CurveScaler
from ._vae_fitting import resolve_device


class CurveVAEInferenceMixin(TransformerMixin):
    """Inference of the curve VAE estimator (the public methods after ``fit``).

    A ``TransformerMixin``, so that scikit-learn's ``set_output`` wraps the ``transform``
    defined here (it wraps only methods a subclass of its mixin defines itself).
    """

    @property
    def encoder_(self) -> torch.nn.Module:
        return self.module_.encoder

    @property
    def decoder_(self) -> torch.nn.Module:
        return self.module_.decoder

    @property
    def scaler_(self) -> CurveScaler:
        """The fitted scaling between data units and the networks' model units."""
        return CurveScaler(self.mean_, self.scale_)

    @property
    def _n_features_out(self) -> int:  # AttributeError (so NotFittedError) until fitted
        return self.module_.config["latent_dims"]

    def latent_model(self) -> LatentModel:
        """The fitted networks on the estimator's device, with their units: the contract
        that matchers (:class:`~skvae.LatentMatcher`) use to search the latent space.

        Returns
        -------
        model : LatentModel
            Encoder, decoder, scaler, device, noise and the row-independent chunk size.

        Examples
        --------
        >>> from skvae import BetaCurveVAE, make_beta_curves
        >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
        >>> vae = BetaCurveVAE(max_iter=2, random_state=0).fit(X)
        >>> model = vae.latent_model()
        >>> model.latent_dims, model.n_features, model.device.type
        (2, 100, 'cpu')
        """
        check_is_fitted(self)
        device = resolve_device(self.device)
        return LatentModel.of(self.module_, self.scaler_, device, self.noise_)

    def transform(self, X):
        """Encode curves to their posterior means.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dims)
            Posterior mean of each curve's latent code (deterministic, row-independent).
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return map_rows(self.transform, X, self._n_features_out, n_features=self.n_features_in_)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        model = self.latent_model()
        return apply_in_chunks(
            lambda t: model.encoder(t)[0],
            X,
            model.latent_dims,
            scaler=model.scaler,
            device=model.device,
            non_finite_error=_non_finite_message("transform", self.scale_),
        )

    def _decode(self, Z: np.ndarray, method: str) -> np.ndarray:
        """Decode validated latent codes to curves in data units (row-independent)."""
        message = _non_finite_message(method, self.scale_, "Z")
        return self.latent_model().decode(Z, non_finite_error=message)

    def inverse_transform(self, X):
        """Decode latent codes to curves in the original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dims)
            Latent codes.

        Returns
        -------
        X_curves : ndarray of shape (n_samples, n_features_in_)
            Decoded curves (the means of the likelihood).
        """
        check_is_fitted(self)
        if is_dask_array(X):
            n_out, n_in = self.n_features_in_, self._n_features_out
            return map_rows(self.inverse_transform, X, n_out, n_features=n_in)
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects latent codes "
                f"with {self._n_features_out} features (latent_dims)."
            )
        return self._decode(Z, "inverse_transform")

    def sample(self, n_samples=1, random_state=None):
        """Generate curves by decoding latent codes drawn from the prior N(0, I).

        Parameters
        ----------
        n_samples : int, default=1
            Number of curves to generate.
        random_state : int, RandomState instance or None, default=None
            Seed of the latent draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Generated curves (noise-free likelihood means).
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(random_state)
        return self._decode(rng.standard_normal((n_samples, self._n_features_out)), "sample")

    def score_samples(self, X):
        """Evidence lower bound (ELBO) of each curve, in the data's units.

        The expected log-likelihood under the posterior is computed with the 2·latent_dims
        unscented-transform points (exact for cubic integrands), so the result is
        deterministic and row-independent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Lower bound of each curve's log-density (higher is better).
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return map_rows(self.score_samples, X, 0, n_features=self.n_features_in_)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        model = self.latent_model()
        neg = apply_in_chunks(
            lambda t: _training.negative_elbo(model.module, t, self.kl_weight),
            X,
            0,
            scaler=model.scaler,
            dtype=torch.float64,  # the networks run in float32, the likelihood in float64
            device=model.device,
            non_finite_error=_non_finite_message("score_samples", self.scale_),
        )
        return -neg - model.scaler.log_likelihood_offset(X.shape[1])

    def score(self, X, y=None):
        """Mean ELBO of the curves in ``X`` (higher is better; usable by GridSearchCV).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))


def _non_finite_message(method: str, scale: float, what: str = "X") -> str:
    """Message of the ValueError raised when finite inputs overflow the float32 networks."""
    degenerate = (
        "or the fitted weights are degenerate (a fit that was diverging: refit with a "
        "lower learning_rate_init)."
    )
    if what == "X":
        return (
            f"{method} produced non-finite values. Either X has values too large in "
            "magnitude for the fitted model, which computes in float32 on curves centred by "
            f"mean_ and divided by scale_={scale:g} (check that X is in the training "
            f"curves' units), {degenerate}"
        )
    return (
        f"{method} produced non-finite curves. Either the latent codes are too large in "
        f"magnitude for the float32 decoder (the prior's codes are of order 1), {degenerate}"
    )
