"""The training loop: mini-batches sliced from one tensor, Adam, a learning-rate schedule,
convergence and early-stopping bookkeeping. Pure torch; it never sees scikit-learn or numpy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._networks import VAEModule, gaussian_kl, gaussian_nll, sigma_points

#: The cosine schedule anneals to this fraction of the initial rate, then stays there
#: (so that ``partial_fit`` beyond ``max_iter`` epochs still learns).
COSINE_FLOOR = 0.01


class TrainingDiverged(FloatingPointError):
    """Raised when an epoch produces a non-finite loss or non-finite weights."""


@dataclass
class TrainingConfig:
    """Settings of the loop (the estimator's hyper-parameters, already validated)."""

    max_epochs: int
    batch_size: int
    learning_rate_init: float
    schedule: str  # "cosine", "exponential" or "constant"
    decay_rate: float
    tol: float
    n_iter_no_change: int
    kl_weight: float


#: Gradient norms are clipped at this multiple of their running average (see clip_gradients).
CLIP_FACTOR = 2.0
CLIP_DECAY = 0.98


def clip_gradients(parameters, average: float) -> float:
    """Clip the gradients' global norm at ``CLIP_FACTOR`` times its running ``average``.

    With a learned observation noise the gradients grow as the noise shrinks, and one
    batch with an unusually poor fit can yield a gradient many times the usual size; Adam
    turns such an outlier into a step of several learning rates in every coordinate.
    Clipping relative to the running norm tames those steps and leaves ordinary ones
    untouched. Returns the updated running average (0 means "no step seen yet").
    """
    limit = CLIP_FACTOR * average if average > 0 else math.inf
    norm = float(torch.nn.utils.clip_grad_norm_(parameters, limit))
    if not math.isfinite(norm):
        return average
    seen = min(norm, limit)
    return seen if average == 0 else CLIP_DECAY * average + (1 - CLIP_DECAY) * seen


@dataclass
class TrainingState:
    """Everything that carries over between epochs (and between ``partial_fit`` calls).

    Losses are per curve and per grid point, in the scaled space.
    """

    optimizer: torch.optim.Optimizer
    epoch: int = 0
    loss: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)
    best_loss: float = math.inf
    best_validation: float = -math.inf
    best_weights: dict | None = None
    no_improvement: int = 0
    grad_norm_average: float = 0.0


def make_optimizer(module: VAEModule, learning_rate_init: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(module.parameters(), lr=learning_rate_init, foreach=True)


def learning_rate(config: TrainingConfig, epoch: int) -> float:
    """Learning rate of a given epoch (0-based) under the configured schedule."""
    lr = config.learning_rate_init
    if config.schedule == "cosine":
        progress = min(epoch / config.max_epochs, 1.0)
        return lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    if config.schedule == "exponential":
        return lr * config.decay_rate**epoch
    return lr


def run_epoch(
    module: VAEModule,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    config: TrainingConfig,
    lr: float,
    generator: torch.Generator,
    state: TrainingState | None = None,
) -> tuple[float, float, float]:
    """One pass over ``X`` in shuffled mini-batches; returns mean (loss, recon, kl) per point.

    With ``state``, gradients are clipped relative to ``state.grad_norm_average``.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    module.train()
    n_samples, n_features = X.shape
    latent_dims = module.encoder.mean.out_features
    order = torch.randperm(n_samples, generator=generator)
    totals = torch.zeros(2, dtype=torch.float64, device=X.device)
    for start in range(0, n_samples, config.batch_size):
        batch = X[order[start : start + config.batch_size]]
        # drawn on the CPU generator, then moved: the same stream on every device
        eps = torch.randn(len(batch), latent_dims, generator=generator, dtype=X.dtype)
        eps = eps.to(X.device)
        nll, kl = module(batch, eps)
        loss = (nll.sum() + config.kl_weight * kl.sum()) / (len(batch) * n_features)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if state is not None:
            state.grad_norm_average = clip_gradients(module.parameters(), state.grad_norm_average)
        optimizer.step()
        totals += torch.stack([nll.detach().sum(), kl.detach().sum()]).double()
    recon, kl = (totals / (n_samples * n_features)).tolist()
    return recon + config.kl_weight * kl, recon, kl


@torch.no_grad()
def negative_elbo(module: VAEModule, X: torch.Tensor, kl_weight: float = 1.0) -> torch.Tensor:
    """Deterministic per-row negative ELBO (unscented estimate of the expected log-likelihood).

    The networks run in float32; the likelihood and KL are evaluated in ``X``'s dtype, so a
    float64 ``X`` far from the training data gets a finite (very low) ELBO where float32
    squares would overflow.
    """
    module.eval()
    mean, logvar = module.encoder(X.to(torch.float32))
    eps = sigma_points(mean.shape[1], dtype=mean.dtype).to(X.device)  # (2d, d)
    z = mean[:, None, :] + torch.exp(0.5 * logvar)[:, None, :] * eps[None]
    decoded = module.decoder(z.reshape(-1, z.shape[-1])).reshape(len(X), len(eps), -1)
    log_sigma = module.log_sigma.to(X.dtype)
    nll = gaussian_nll(X[:, None, :], decoded.to(X.dtype), log_sigma).mean(dim=1)
    return nll + kl_weight * gaussian_kl(mean.to(X.dtype), logvar.to(X.dtype))


def _is_finite(module: VAEModule) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.state_dict().values())


def train(
    module: VAEModule,
    state: TrainingState,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainingConfig,
    generator: torch.Generator,
    n_epochs: int,
    *,
    on_epoch: Callable[[TrainingState], None] | None = None,
) -> str:
    """Run up to ``n_epochs`` epochs, updating ``module`` and ``state`` in place.

    Returns why training stopped: ``"converged"`` (no improvement larger than ``tol`` for
    ``n_iter_no_change`` epochs, on the training loss or on the validation score when
    ``X_val`` is given), ``"max_epochs"``, or ``"interrupted"`` (KeyboardInterrupt; the
    weights are then those of the last completed epoch, or the best ones with ``X_val``).
    When ``X_val`` is given the best weights are restored before returning.

    Raises
    ------
    TrainingDiverged
        If an epoch yields a non-finite loss or weights. ``module`` and ``state`` are
        restored to how they were before that epoch.
    """
    reason = "max_epochs"
    in_epoch = False  # True while an epoch's updates are incomplete
    try:
        for _ in range(n_epochs):
            before = copy.deepcopy(module.state_dict())
            optimizer_before = copy.deepcopy(state.optimizer.state_dict())
            average_before = state.grad_norm_average
            in_epoch = True
            lr = learning_rate(config, state.epoch)
            loss, recon, kl = run_epoch(
                module, state.optimizer, X_train, config, lr, generator, state
            )
            if not (math.isfinite(loss) and _is_finite(module)):
                module.load_state_dict(before)
                state.optimizer.load_state_dict(optimizer_before)
                state.grad_norm_average = average_before
                learned = isinstance(module.log_sigma, torch.nn.Parameter)
                raise TrainingDiverged(
                    f"Training diverged at epoch {state.epoch + 1} (non-finite loss or weights). "
                    f"Lower learning_rate_init (currently {config.learning_rate_init:g}), "
                    + ("or use a fixed observation noise." if learned else "or increase noise.")
                )
            if X_val is not None:
                score = -float(negative_elbo(module, X_val, config.kl_weight).mean())
                score /= X_val.shape[1]
            state.epoch += 1
            state.loss.append(loss)
            state.reconstruction.append(recon)
            state.kl.append(kl)
            if X_val is not None:
                state.validation.append(score)
                improved = score > state.best_validation + config.tol
                if score > state.best_validation:
                    state.best_validation = score
                    state.best_weights = copy.deepcopy(module.state_dict())
            else:
                improved = loss < state.best_loss - config.tol
                state.best_loss = min(state.best_loss, loss)
            state.no_improvement = 0 if improved else state.no_improvement + 1
            in_epoch = False
            if on_epoch is not None:
                on_epoch(state)
            if state.no_improvement >= config.n_iter_no_change:
                reason = "converged"
                break
    except KeyboardInterrupt:
        if in_epoch:  # drop the half-finished epoch (not one completed before a callback)
            module.load_state_dict(before)
            state.optimizer.load_state_dict(optimizer_before)
            state.grad_norm_average = average_before
        reason = "interrupted"
    if X_val is not None and state.best_weights is not None:
        module.load_state_dict(state.best_weights)
    module.eval()
    return reason
