"""The search of :class:`~skvae.LatentMatcher` (a mixin): from target curves to codes.

Start points and their initial simplices (the encoder's, ``z = 0``, the shared extra
starts), the multi-start batched Nelder-Mead over blocks of targets on the VAE's device,
the optional Gauss-Newton polish, and the :class:`~sklearn.utils.Bunch` of per-target
results and diagnostics that :meth:`~skvae.LatentMatcher.match` returns.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import Bunch

from .nelder_mead import batched_nelder_mead
from .objective import Objective, covariance, encoder_start, extra_starts, polish

#: Targets optimised together on the CPU and on other devices: bounds memory on huge
#: inputs (results do not depend on it).
BLOCK_SIZE, DEVICE_BLOCK_SIZE = 8192, 1 << 20
#: ``initial_step="auto"`` edges (latent prior units) for partial targets' encoder starts
#: and for the zero and random starts.
PARTIAL_STEP, PRIOR_STEP = 0.1, 0.5
#: Damped Gauss-Newton steps of ``polish="gauss-newton"``.
GAUSS_NEWTON_STEPS = 5


class LatentMatcherSearchMixin:
    """Matching machinery of the latent matcher (private methods only)."""

    def _starts(self, model, X: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start points and initial steps, both of shape (n_samples, n_starts, latent_dims)."""
        (n, d), k = (X.shape[0], model.latent_dims), self.n_starts
        if self.start == "encoder":
            first, std = encoder_start(model, X, observed)
            complete = observed.all(axis=1)[:, None]
            auto = np.where(complete, np.maximum(std, 10 * self.xatol), PARTIAL_STEP)
        else:
            first, auto = np.zeros((n, d)), np.full((n, d), PRIOR_STEP)
        extra = extra_starts(k - 1, d, self.random_state)
        starts = np.concatenate([first[:, None], np.broadcast_to(extra, (n, k - 1, d))], axis=1)
        if self.initial_step == "auto":
            steps = np.concatenate([auto[:, None], np.full((n, k - 1, d), PRIOR_STEP)], axis=1)
        else:
            steps = np.full((n, k, d), float(self.initial_step))
        return starts, steps

    def _optimise(self, model, X: np.ndarray, observed: np.ndarray, diagnostics: bool) -> Bunch:
        """Match every target from its starts, block by block: the results of :meth:`match`."""
        starts, steps = self._starts(model, X, observed)
        n, k, d = starts.shape
        device = model.device
        tolerances = {"xatol": self.xatol, "fatol": self.fatol, "max_iter": self.max_iter}
        sigma = model.noise if self.noise is None else float(self.noise)
        out = Bunch(codes=np.empty((n, d)), objective=np.empty(n), converged=np.empty(n, bool))
        out.n_iter, out.n_fev = np.empty(n, np.int64), np.empty(n, np.int64)
        if diagnostics:
            out.start_codes = starts[:, 0].copy()
            out.residuals, out.start_residuals, out.start_objective = np.empty((3, n))
            out.covariance = np.empty((n, d, d))
        block = BLOCK_SIZE if device.type == "cpu" else DEVICE_BLOCK_SIZE
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            objective = Objective(
                model, X[lo:hi], self.prior_weight, kind=self.objective, sigma=sigma
            )
            res = batched_nelder_mead(
                lambda Z, problems, f=objective: f(
                    Z, torch.div(problems, k, rounding_mode="floor")
                ),
                torch.as_tensor(starts[lo:hi].reshape(-1, d), device=device),
                initial_step=torch.as_tensor(steps[lo:hi].reshape(-1, d), device=device),
                **tolerances,
            )
            rows = torch.arange(hi - lo, device=device)
            best = rows * k + torch.argmin(res.fun.view(-1, k), dim=1)
            codes, values = res.x[best], res.fun[best]
            if self.polish is not None:
                codes, values = polish(objective, codes, values, rows, GAUSS_NEWTON_STEPS)
            out.codes[lo:hi], out.objective[lo:hi] = codes.cpu().numpy(), values.cpu().numpy()
            out.n_iter[lo:hi] = res.nit[best].cpu().numpy()
            out.n_fev[lo:hi] = res.nfev[best].cpu().numpy()
            out.converged[lo:hi] = res.converged[best].cpu().numpy()
            if diagnostics:
                first = torch.as_tensor(starts[lo:hi, 0], device=device)
                out.residuals[lo:hi] = objective.residuals(codes, rows).cpu().numpy()
                out.start_residuals[lo:hi] = objective.residuals(first, rows).cpu().numpy()
                out.start_objective[lo:hi] = objective(first, rows).cpu().numpy()
                out.covariance[lo:hi] = covariance(objective, codes).cpu().numpy()
        return out
