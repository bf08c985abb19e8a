"""The fitted VAE as matchers see it: networks on the compute device, units, chunking.

:class:`LatentModel` is the small contract between :class:`~skvae.BetaCurveVAE` and
code that searches its latent space (:class:`~skvae.LatentMatcher`, the Laplace
posterior): the encoder and decoder on the estimator's device, the scaler between data
and model units, the noise, and the chunk size that keeps results row-independent.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ._chunks import apply_in_chunks, chunk_size_for
from ._scaling import CurveScaler
from ._torch.networks import VAEModule

#: Per-device copies of fitted modules, keyed weakly by the fitted (CPU) module: the
#: estimator's own attributes are never touched by inference, and nothing here pickles.
_DEVICE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def module_on(module: VAEModule, device: torch.device) -> VAEModule:
    """``module`` itself on the CPU, else a cached eval-mode copy on ``device``."""
    if device.type == "cpu":
        return module
    copies = _DEVICE_COPIES.setdefault(module, {})
    if device not in copies:
        copies[device] = copy.deepcopy(module).to(device).eval()
    return copies[device]


@dataclass(frozen=True, eq=False)
class LatentModel:
    """A fitted VAE's networks, units and device, for code that searches its latent space.

    Obtain it with :meth:`BetaCurveVAE.latent_model`.

    Attributes
    ----------
    module : VAEModule
        The networks and noise, eval mode, float32, on :attr:`device`.
    scaler : CurveScaler
        Between data units and the networks' model units.
    device : torch.device
        Where the estimator computes.
    chunk_size : int
        Rows per fixed-size chunk on :attr:`device` (row-independent results).
    noise : float
        Observation noise standard deviation in data units (``noise_``).
    """

    module: VAEModule
    scaler: CurveScaler
    device: torch.device
    chunk_size: int
    noise: float

    @classmethod
    def of(cls, module: VAEModule, scaler: CurveScaler, device: torch.device, noise: float):
        """The latent model of fitted ``module`` on ``device``."""
        return cls(module_on(module, device), scaler, device, chunk_size_for(device), noise)

    @property
    def encoder(self) -> torch.nn.Module:
        """Encoder: model-unit curves -> (mean, log-variance)."""
        return self.module.encoder

    @property
    def decoder(self) -> torch.nn.Module:
        """Decoder: codes -> model-unit curves."""
        return self.module.decoder

    @property
    def latent_dims(self) -> int:
        """Dimension of the latent space."""
        return self.module.config["latent_dims"]

    @property
    def n_features(self) -> int:
        """Points per curve."""
        return self.module.config["n_features"]

    def encode(
        self, X: np.ndarray, non_finite_error: str | None = None, *, return_std: bool = True
    ):
        """Posterior mean and standard deviation of curves ``X`` (data units).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        non_finite_error : str, optional
            Message of the ValueError raised if the result is not finite.
        return_std : bool, default=True
            Return the standard deviation too; False returns the mean alone.

        Returns
        -------
        mean, std : ndarray of shape (n_samples, latent_dims), float64
            ``mean`` alone when ``return_std`` is False.
        """
        d = self.latent_dims
        if return_std:
            outputs, n_outputs = (lambda t: torch.cat(self.encoder(t), dim=1)), 2 * d
        else:
            outputs, n_outputs = (lambda t: self.encoder(t)[0]), d
        out = apply_in_chunks(
            outputs,
            X,
            n_outputs,
            scaler=self.scaler,
            device=self.device,
            chunk_size=self.chunk_size,
            non_finite_error=non_finite_error,
        )
        if not return_std:
            return out
        std = out[:, d:]
        np.multiply(std, 0.5, out=std)
        np.exp(std, out=std)
        return out[:, :d], std

    def decode(self, Z: np.ndarray, non_finite_error: str | None = None) -> np.ndarray:
        """Decoded curves of codes ``Z``, in data units (float64)."""
        curves = apply_in_chunks(
            self.decoder,
            Z,
            self.n_features,
            device=self.device,
            chunk_size=self.chunk_size,
            non_finite_error=non_finite_error,
        )
        return self.scaler.model_to_data(curves, copy=False)
