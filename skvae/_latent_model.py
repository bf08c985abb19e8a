"""The fitted VAE as matchers see it: networks on the compute device, units, chunking.

:class:`LatentModel` is the small contract between :class:`~skvae.BetaCurveVAE` and
code that searches its latent space (:class:`~skvae.LatentMatcher`, the Laplace
posterior): the encoder and decoder on the estimator's device, the scaler between data
and model units, the noise, and the chunk size that keeps results row-independent. It
also refines encoder codes against the decoder (semi-amortised encoding, what
:meth:`BetaCurveVAE.transform` returns).
"""

from __future__ import annotations

import copy
import math
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ._chunks import apply_in_chunks, chunk_size_for
from ._matching.laplace import gauss_newton_polish
from ._matching.problem import MatchProblem
from ._matching.screening import extra_starts, screened_codes
from ._scaling import CurveScaler
from ._torch.networks import VAEModule

#: Per-device copies of fitted modules, keyed weakly by the fitted (CPU) module: the
#: estimator's own attributes are never touched by inference, and nothing here pickles.
_DEVICE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Weight of the N(0, I) prior in the refinement of codes, relative to the Gaussian
#: likelihood of the observed points at the noise ``σ``. Faint, so that a refined code
#: is all but the least-squares fit of the observed points (the reconstruction users
#: measure; PCA's projection, to three digits, where a fit kept its PCA start), yet
#: every Gauss-Newton step stays well-posed however few points a curve has. A weight of
#: 1 (the posterior mode) shrinks codes toward 0: measured on the 10k damped-oscillation
#: curves with 30 % gaps, median whole-curve L2 0.0040 against 0.0033 here.
REFINE_PRIOR_WEIGHT = 0.01
#: Curves per block of a refinement (bounds the float64 copy of the targets).
REFINE_BLOCK = 65536
#: Candidate codes that the codes of curves with missing points are screened against
#: before their refinement (see :func:`refinement_candidates`): an encoder reading a long
#: gap can put a code in the basin of a poor fit. Measured on 4,000 curves with one gap
#: of 30 % of the grid, RMSE on the missing points: damped oscillations 0.067 -> 0.0059
#: (LatentMatcher's 0.0059), at about twice the time of the refinement alone.
REFINE_CANDIDATES = 1024
#: Spread of the candidates: quasi-random points of N(0, s² I), wider than the prior,
#: because the codes of curves spread wider than the prior where the likelihood
#: outweighs the KL term (Beta densities: 10 % of the matched codes beyond |z| = 3.5).
#: On 10,000 Beta densities with 30 % gaps, RMSE on the missing points 0.062 at s = 1,
#: 0.020 at 2, 0.0106 at 3 (LatentMatcher 0.0104); four other families and three real
#: sets within ±5 % of s = 1.
REFINE_CANDIDATE_SPREAD = 3.0


def module_on(module: VAEModule, device: torch.device) -> VAEModule:
    """``module`` itself on the CPU, else a cached eval-mode copy on ``device``."""
    if device.type == "cpu":
        return module
    copies = _DEVICE_COPIES.setdefault(module, {})
    if device not in copies:
        copies[device] = copy.deepcopy(module).to(device).eval()
    return copies[device]


def _refinement_sigma(noise: float) -> float | None:
    """The σ of the refinement's posterior objective at model-unit ``noise``.

    ``noise · √w`` (``w`` :data:`REFINE_PRIOR_WEIGHT`): with the unit N(0, I) prior of
    the posterior objective, the prior then weighs ``w`` against the likelihood at
    ``noise``. None where that is not a positive finite number (nothing to refine with).
    """
    sigma = noise * math.sqrt(REFINE_PRIOR_WEIGHT)
    return sigma if 0 < sigma < math.inf else None


def refined_codes(
    module: VAEModule, X: torch.Tensor, Z: torch.Tensor, *, n_steps: int
) -> torch.Tensor:
    """Codes ``Z`` of model-unit curves ``X`` (NaN missing, on the module's device)
    refined as :meth:`LatentModel.refine` refines data-unit ones, at the module's own
    noise ``exp(log_sigma)``: what ``transform`` would return for a fit ending with
    these weights. Returns codes of ``Z``'s dtype, on the device."""
    sigma = _refinement_sigma(math.exp(float(module.log_sigma)))
    if n_steps == 0 or len(X) == 0 or sigma is None:
        return Z
    problem = MatchProblem(module.decoder, X, None, sigma, chunk_size_for(X.device))
    return _refine(problem, Z.to(problem.acc), n_steps).to(Z.dtype)


def refinement_candidates(latent_dims: int) -> np.ndarray:
    """The fixed codes, shape (:data:`REFINE_CANDIDATES`, ``latent_dims``), that the
    codes of curves with missing points are screened against: quasi-random points of
    N(0, s² I), s :data:`REFINE_CANDIDATE_SPREAD`."""
    return REFINE_CANDIDATE_SPREAD * extra_starts(REFINE_CANDIDATES, latent_dims, None)


def _refine(problem: MatchProblem, Z: torch.Tensor, n_steps: int) -> torch.Tensor:
    """``n_steps`` Gauss-Newton steps from codes ``Z`` (one per target of ``problem``).

    The codes of targets with a missing point are also screened against
    :func:`refinement_candidates`; where one fits better, it is refined too, and
    the refined code of lower objective is kept. Complete targets are refined from their
    code alone.
    """
    refined = gauss_newton_polish(problem, Z, n_steps=n_steps)
    if problem.weights is None:
        return refined
    partial = torch.nonzero((problem.weights < 1).any(dim=1)).flatten()
    if len(partial) == 0:
        return refined
    candidates = refinement_candidates(Z.shape[1])
    screened, moved = screened_codes(problem, Z[partial], candidates, partial)
    rows = partial[moved]
    if len(rows):
        again = gauss_newton_polish(problem, screened[moved], rows, n_steps=n_steps)
        better = problem(again, rows) < problem(refined[rows], rows)
        refined[rows[better]] = again[better]
    return refined


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

    def refine(self, X: np.ndarray, Z: np.ndarray, n_steps: int) -> np.ndarray:
        """Codes ``Z`` of curves ``X`` (data units, NaN missing) refined against the decoder.

        Each code takes ``n_steps`` damped Gauss-Newton steps (from
        :func:`~skvae._matching.laplace.gauss_newton_polish`) on
        ``‖m ⊙ (g(z) − x)‖² / (2σ²) + (w / 2) ‖z‖²``: ``g`` the decoder, ``m`` the observed
        points, ``σ`` the noise and ``w`` :data:`REFINE_PRIOR_WEIGHT`. A step is kept only
        where it lowers that objective, so a refined code never fits a curve's observed
        points worse (up to the faint prior) than the code it started from. The code of a
        curve with missing points is also screened against
        :func:`refinement_candidates`; where one fits the observed points better, it is
        refined too and the better of the two refined codes kept. Rows are independent;
        a curve without observed points moves toward the prior's mode.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        Z : ndarray of shape (n_samples, latent_dims)
            Start codes (the encoder's means).
        n_steps : int
            Gauss-Newton steps; 0 returns ``Z``.

        Returns
        -------
        Z_refined : ndarray of shape (n_samples, latent_dims), float64
        """
        sigma = _refinement_sigma(self.noise / float(self.scaler.scale))
        if n_steps == 0 or len(X) == 0 or sigma is None:
            return Z
        out = np.empty_like(Z, dtype=np.float64)
        for start in range(0, len(X), REFINE_BLOCK):
            block = slice(start, start + REFINE_BLOCK)
            problem = MatchProblem.from_curves(
                self, X[block], sigma, kind="posterior", prior_weight=0.0
            )
            codes = torch.as_tensor(Z[block], dtype=problem.acc, device=problem.device)
            out[block] = _refine(problem, codes, n_steps).cpu().numpy()
        return out

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
