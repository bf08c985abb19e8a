"""Random gaps hidden from a mask-aware encoder during training.

Pure torch. A mask-aware encoder (:class:`~skvae._torch.networks.Encoder` with
``mask_aware=True``) has to encode curves with any pattern of missing points. Training
shows it such curves: in each mini-batch a random share of the curves hide some of their
points from the encoder -- scattered points or one contiguous gap, up to most of the
curve -- while the likelihood still scores every observed point of those curves, so the
encoder learns the code of the whole curve from a part of it (and the ELBO stays a bound
on the log-likelihood of the observed points: any encoder output is a valid posterior).
"""

from __future__ import annotations

import torch

#: Share of the curves of a mini-batch that hide points from the encoder.
HIDING_SHARE = 0.5
#: Largest share of a curve's points hidden (drawn uniformly up to it).
MAX_HIDDEN = 0.8


def draw_hidden_points(n_rows: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
    """Points hidden from the encoder: a boolean tensor of shape (n_rows, n_features).

    Each row hides points with probability :data:`HIDING_SHARE`; a hiding row hides a
    fraction drawn uniformly in ``[0, MAX_HIDDEN]`` of its points, as one contiguous gap
    at a uniform position or as scattered points (each hidden with that probability),
    both equally likely. Every draw comes from ``generator`` (CPU), a fixed number of
    values per row, so the stream does not depend on the outcomes.

    Parameters
    ----------
    n_rows, n_features : int
        Shape of the mask.
    generator : torch.Generator
        A CPU generator.

    Returns
    -------
    hidden : torch.Tensor of shape (n_rows, n_features), bool, on the CPU

    Examples
    --------
    >>> hidden = draw_hidden_points(1000, 50, torch.Generator().manual_seed(0))
    >>> hidden.shape, 0.4 < float(hidden.any(dim=1).float().mean()) < 0.6
    (torch.Size([1000, 50]), True)
    """
    u = torch.rand(n_rows, 4, generator=generator, dtype=torch.float64)
    hiding = u[:, 0] < HIDING_SHARE
    fraction = u[:, 1] * MAX_HIDDEN
    contiguous = u[:, 2] < 0.5
    length = torch.round(fraction * n_features)
    first = torch.floor(u[:, 3] * (n_features - length + 1))
    position = torch.arange(n_features, dtype=torch.float64)
    gap = (position >= first[:, None]) & (position < (first + length)[:, None])
    scattered = torch.rand(n_rows, n_features, generator=generator) < fraction[:, None]
    return torch.where(contiguous[:, None], gap, scattered) & hiding[:, None]
