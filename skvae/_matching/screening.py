"""Screening: start codes moved to the best of a shared set of candidate codes.

A code from the encoder (for a curve with a long gap, say) or a search's start can lie
in the basin of a poor local minimum of a matching objective. Scoring one shared set of
candidate codes -- quasi-random points of the N(0, I) prior, codes of reference curves
-- against every target costs one decoding of the candidates and one matrix product per
block of targets, and moves each start wherever a candidate fits its target better.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from scipy.stats import qmc
from sklearn.utils import check_random_state

from .problem import MatchProblem

#: Targets scored against the candidate codes at once (bounds the (targets, candidates)
#: matrix of :func:`screened_codes`).
SCREEN_BLOCK = 4096


def extra_starts(n_extra: int, latent_dims: int, random_state) -> np.ndarray:
    """The ``n_extra`` start points shared by all targets, shape (n_extra, latent_dims).

    With ``random_state=None``: fixed quasi-random points of the N(0, I) prior, the
    unscrambled Halton sequence (without its first point, the origin) mapped through the
    normal quantile function, so that every call uses the same starts. Otherwise: draws
    from N(0, I) seeded by ``random_state``.
    """
    if random_state is None:
        halton = qmc.Halton(latent_dims, scramble=False)
        halton.fast_forward(1)
        return stats.norm.ppf(halton.random(n_extra))
    return check_random_state(random_state).standard_normal((n_extra, latent_dims))


@torch.no_grad()
def screened_codes(
    problem: MatchProblem,
    starts: torch.Tensor,
    candidates: np.ndarray,
    rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each start replaced by the best of the ``candidates`` where that scores lower.

    Parameters
    ----------
    problem : MatchProblem
        The targets and the objective.
    starts : torch.Tensor of shape (n, latent_dims)
        One start code per target row, on the problem's device.
    candidates : ndarray of shape (n_candidates, latent_dims)
        Codes shared by all targets, decoded once.
    rows : torch.Tensor of shape (n,), default=None
        The target row of each start; None: start ``i`` goes with target ``i``.

    Returns
    -------
    codes : torch.Tensor of shape (n, latent_dims)
        The starts, with the moved ones replaced (``starts``' dtype).
    moved : torch.Tensor of shape (n,), bool
        Where a candidate scored lower than the start.
    """
    device = problem.device
    if rows is None:
        rows = torch.arange(len(starts), device=device)
    codes = torch.as_tensor(candidates, device=device)
    curves = torch.cat(
        [problem.decoder(c) for c in codes.to(problem.dtype).split(problem.chunk_size)]
    )
    start_values = problem(starts, rows)
    out, moved = starts.clone(), torch.zeros(len(starts), dtype=torch.bool, device=device)
    for lo in range(0, len(starts), SCREEN_BLOCK):
        block = slice(lo, lo + SCREEN_BLOCK)
        chosen = codes[problem.best_of_curves(codes, curves, rows[block])].to(starts.dtype)
        better = problem(chosen, rows[block]) < start_values[block]
        moved[block] = better
        out[block][better] = chosen[better]
    return out, moved
