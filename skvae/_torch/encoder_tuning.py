"""Tuning a mask-aware encoder on its training curves completed by the model.

Pure torch. A mask-aware encoder (:class:`~skvae._torch.networks.Encoder` with
``mask_aware=True``) learns to read the patterns of missing points that training shows
it: the curves' own gaps, with more points hidden by
:func:`~skvae._torch.masking.draw_hidden_points`. When every training curve has a gap,
it never reads a complete curve, nor one with only scattered points missing, and it
reads them poorly: on 10,000 Gaussian-bump curves, each with a gap of 30 % of the grid,
its means of complete curves decode to a median whole-curve error 7 times that of its
means of the gappy ones, and ``score_samples`` rates complete damped oscillations far
below gappy ones.

:func:`tune_encoder` closes that hole after training, the decoder and the noise fixed,
in two stages:

1. Each training curve is completed by the decoder at its code (the encoder's mean
   refined against the decoder: what ``transform`` returns), and the encoder trains on
   the training loss (the ELBO of the observed points, each curve's noise profiled),
   reading half of the curves as given and half completed, the completed ones with
   points hidden as training hides them. The likelihood scores only observed points,
   so the ELBO remains a bound on their log-likelihood whatever the encoder reads.
2. The encoder's variance head alone is fitted to the ELBO that ``score_samples``
   reports (the shared noise, KL weight 1) on both views: stage 1's profiled loss
   leaves posterior variances that this ELBO finds too wide.
"""

from __future__ import annotations

import contextlib
import math

import torch

from .loop import Refine, negative_elbo
from .masking import draw_hidden_points
from .networks import VAEModule
from .step import TrainingStep, make_optimizer, uses_cuda_graph

#: Stage 1 takes this share of the fit's own optimizer steps, at most
#: :data:`MAX_TUNING_STEPS`.
TUNING_SHARE = 0.25
MAX_TUNING_STEPS = 1000
#: Largest mini-batch of the tuning (the fit's, when smaller): on 10,000 curves, 256
#: curves a step gained nearly as much as the fit's 512, in half the time.
TUNING_BATCH = 256
#: Stage 1's learning rate starts at this share of the fit's initial one and falls to 0
#: along a half cosine (after a linear warm-up over :data:`WARMUP_STEPS` steps, so that
#: Adam's first steps, about one learning rate in every coordinate, stay small).
TUNING_RATE_SHARE = 0.25
WARMUP_STEPS = 100
#: Share of each mini-batch's curves that the encoder reads completed by the model.
COMPLETED_SHARE = 0.5
#: Stage 2 takes this share of stage 1's steps, at Adam's learning rate
#: :data:`VARIANCE_RATE` (a linear head on fixed features).
VARIANCE_STEPS_SHARE = 0.25
VARIANCE_RATE = 1e-2


def tuning_steps(training_steps: int) -> int:
    """Stage 1's optimizer steps after a fit of ``training_steps`` steps.

    Examples
    --------
    >>> tuning_steps(200), tuning_steps(5040)
    (50, 1000)
    """
    return min(MAX_TUNING_STEPS, math.ceil(TUNING_SHARE * training_steps))


@torch.no_grad()
def completed_curves(module: VAEModule, X: torch.Tensor, refine: Refine) -> torch.Tensor:
    """Curves ``X`` (model units, NaN at missing points) with each missing point set to
    the decoder's value at the curve's code: the encoder's mean refined by ``refine``.

    Examples
    --------
    >>> net = VAEModule(n_features=5, hidden=[8], latent_dims=2, activation="silu",
    ...                 noise="profiled", mask_aware=True)
    >>> X = torch.tensor([[0.1, float("nan"), 0.3, 0.2, float("nan")]])
    >>> filled = completed_curves(net, X, lambda module, curves, codes: codes)
    >>> kept = [0, 2, 3]
    >>> bool(torch.isfinite(filled).all()), filled[0, kept].tolist() == X[0, kept].tolist()
    (True, True)
    """
    module.eval()
    codes = module.encoder(X)[0]
    codes = refine(module, X, codes)
    return torch.where(torch.isnan(X), module.decoder(codes.to(torch.float32)), X)


def tune_encoder(
    module: VAEModule,
    X: torch.Tensor,
    refine: Refine,
    generator: torch.Generator,
    *,
    n_steps: int,
    batch_size: int,
    learning_rate_init: float,
    kl_weight: float,
) -> None:
    """Tune ``module``'s encoder, the decoder and noise fixed, on curves ``X`` (model
    units, NaN at missing points, on the module's device) shown as given and completed
    by :func:`completed_curves`, in place.

    Stage 1 takes ``n_steps`` Adam steps, each on ``batch_size`` curves (at most
    :data:`TUNING_BATCH`, all of them when fewer) drawn with replacement,
    :data:`COMPLETED_SHARE` of them shown completed with points hidden as training hides
    them, lowering the ELBO of their observed points (``kl_weight``; a profiled noise at
    each curve's maximum-likelihood value) by :class:`~skvae._torch.step.TrainingStep`.
    Stage 2 fits the variance head to :func:`~skvae._torch.loop.negative_elbo` of the
    curves of each draw in both views, each scored as ``score_samples`` scores it (a
    completed curve on every point).
    Every draw comes from ``generator`` (CPU).

    Examples
    --------
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> net = VAEModule(n_features=6, hidden=[8], latent_dims=2, activation="silu",
    ...                 noise="profiled", mask_aware=True)
    >>> X = torch.randn(20, 6)
    >>> X[:, 2:4] = float("nan")
    >>> decoder_before = [p.clone() for p in net.decoder.parameters()]
    >>> tune_encoder(net, X, lambda module, curves, codes: codes, torch.Generator(),
    ...              n_steps=8, batch_size=16, learning_rate_init=1e-3, kl_weight=1.0)
    >>> all(torch.equal(a, b) for a, b in zip(decoder_before, net.decoder.parameters()))
    True
    """
    n_samples, n_features = X.shape
    device = X.device
    latent_dims = module.config["latent_dims"]
    batch_size = min(batch_size, TUNING_BATCH, n_samples)
    filled = completed_curves(module, X, refine)
    observed = ~torch.isnan(X)

    def draw() -> torch.Tensor:
        return torch.randint(n_samples, (batch_size,), generator=generator).to(device)

    use_graph = uses_cuda_graph(device)
    optimizer = make_optimizer(module, learning_rate_init, capturable=use_graph)
    average = torch.zeros((), device=device)
    with _training_only(module, "encoder."):
        step = TrainingStep(module, optimizer, batch_size, kl_weight, average, use_graph=use_graph)
        module.train()
        for i in range(n_steps):
            warm_up = min(1.0, (i + 1) / WARMUP_STEPS)
            cosine = 0.5 * (1.0 + math.cos(math.pi * i / n_steps))
            step.set_learning_rate(TUNING_RATE_SHARE * learning_rate_init * warm_up * cosine)
            rows = draw()
            shown = (torch.rand(batch_size, generator=generator) < COMPLETED_SHARE).to(device)
            eps = torch.randn(batch_size, latent_dims, generator=generator).to(device)
            # points are hidden from the completed curves only: the curves as given keep
            # their own gaps, which hiding more blurs (measured on 30 % gaps)
            hidden = draw_hidden_points(batch_size, n_features, generator).to(device)
            hidden &= shown[:, None]
            batch = torch.where(shown[:, None], filled[rows], X[rows])
            step.load(batch, eps, hidden, observed=observed[rows])
            step()
    with _training_only(module, "encoder.logvar."):
        head = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(head, lr=VARIANCE_RATE)
        for _ in range(math.ceil(VARIANCE_STEPS_SHARE * n_steps)):
            rows = draw()
            loss = negative_elbo(module, torch.cat([X[rows], filled[rows]])).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    module.eval()


@contextlib.contextmanager
def _training_only(module: VAEModule, prefix: str):
    """Within the block, only ``module``'s parameters whose names start with ``prefix``
    take gradients; every parameter takes them again afterwards."""
    frozen = [p for name, p in module.named_parameters() if not name.startswith(prefix)]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
