"""The training loop: mini-batches from a batch source, Adam, a learning-rate schedule,
gradient clipping, convergence and early-stopping bookkeeping.

Pure torch; it never sees scikit-learn or numpy. Nothing inside an epoch reads a tensor
back to the host: clipping statistics and loss sums stay on the device, and finiteness
is checked once per epoch, so a GPU is never stalled by a per-step synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

from .masking import draw_hidden_points
from .networks import (
    PROFILE_FLOOR,
    VAEModule,
    gaussian_kl,
    gaussian_nll,
    profiled_nll,
    sigma_points,
    split_missing,
)
from .step import (
    TrainingStep,
    make_optimizer,
    optimizer_state_on_cpu,
    uses_cuda_graph,
)

#: The cosine schedule anneals to this fraction of the initial rate, then stays there
#: (so that ``partial_fit`` beyond ``max_iter`` epochs still learns).
COSINE_FLOOR = 0.01
#: With a profiled noise, training starts with every curve's noise variance raised by
#: this share of the shared one, σᵢ² = MSEᵢ + s · σ², σ² the last epoch's mean squared
#: error (PCA's at a fresh start); ``s`` falls to 0 along a half cosine over the first
#: :data:`NOISE_FLOOR_EPOCHS` of the epochs, and the fit ends on the plain per-curve
#: profiled loss. The per-curve noise weighs each curve's squared error by 1 / MSEᵢ, so
#: from the start the curves fitted best get most of the gradient and the ones fitted
#: worst are nearly given up; the floor evens the weights while the fit takes shape.
#: (A floor from each mini-batch's own mean squared error did as well on real curves but
#: made the training loss spike on 10,000 Beta log-densities; σ² changes once an epoch.)
NOISE_FLOOR_SHARE = 1.0
#: Fraction of ``max_iter`` over which the floor of :data:`NOISE_FLOOR_SHARE` vanishes.
NOISE_FLOOR_EPOCHS = 0.5
#: Rows of reparametrisation noise drawn (and moved to the device) at a time.
NOISE_SLAB = 65536


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
    #: profiled noise: a running estimate over every call's curves (``partial_fit``)
    #: instead of the last epoch's RMS error
    running_noise: bool = False
    #: the stall rule never stops training before this epoch (counted over all fits)
    min_epochs: int = 0
    #: with a validation score, the starting weights compete as epoch 0 of a fresh fit:
    #: the best epoch replaces them only if this is True of its per-curve held-out
    #: gains over them (None: the start does not compete)
    beats_start: Callable[[torch.Tensor], bool] | None = None
    #: no training curve has a missing point: the steps of an encoder that hides none
    #: skip the masking
    complete_curves: bool = False
    #: the epoch at which the learning-rate schedule starts (an annealing run that
    #: continues a fit has its own schedule)
    schedule_start: int = 0


@dataclass
class TrainingState:
    """Everything that carries over between epochs and fits (plain values only).

    Losses are per curve and observed point (the KL per curve and grid point), in model
    units. ``optimizer_state`` is the
    optimizer's ``state_dict`` (CPU tensors between fits), not a live optimizer, so the
    state pickles and saves anywhere.
    """

    optimizer_state: dict | None = None
    epoch: int = 0
    loss: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)
    best_loss: float = math.inf
    best_validation: float = -math.inf
    no_improvement: int = 0
    grad_norm_average: float = 0.0
    #: profiled noise: the sum over curves of their mean squared error per point, and the
    #: number of curves summed, behind the shared σ (see :func:`update_profiled_noise`)
    squared_error_sum: float = 0.0
    squared_error_count: int = 0
    #: the epoch whose weights the last validated run kept (0: the starting weights)
    best_epoch: int = 0


class BatchSource(Protocol):
    """Where an epoch's mini-batches come from (in memory, or streamed from blocks)."""

    n_samples: int
    n_features: int

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Yield the epoch's shuffled mini-batches: float32, model units (NaN at missing
        points), on the device."""
        ...


class TensorBatches:
    """Mini-batches sliced from one device-resident tensor in a fresh random order.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Training curves in model units (NaN at missing points), on the training device.
    """

    def __init__(self, X: torch.Tensor):
        self.X = X
        self.n_samples, self.n_features = X.shape

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = to_device(torch.randperm(self.n_samples, generator=generator), self.X.device)
        for start in range(0, self.n_samples, batch_size):
            yield self.X[order[start : start + batch_size]]


def learning_rate(config: TrainingConfig, epoch: int) -> float:
    """Learning rate of a given epoch (0-based) under the configured schedule."""
    lr = config.learning_rate_init
    if config.schedule == "cosine":
        progress = min((epoch - config.schedule_start) / config.max_epochs, 1.0)
        return lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    if config.schedule == "exponential":
        return lr * config.decay_rate**epoch
    return lr


def noise_floor_share(config: TrainingConfig, epoch: int) -> float:
    """Share of the shared noise variance added to each curve's profiled noise variance
    in a given epoch (0-based): :data:`NOISE_FLOOR_SHARE`, falling along a half
    cosine to 0 at :data:`NOISE_FLOOR_EPOCHS` of ``max_epochs``, then 0."""
    progress = min(epoch / (NOISE_FLOOR_EPOCHS * config.max_epochs), 1.0)
    return NOISE_FLOOR_SHARE * 0.5 * (1.0 + math.cos(math.pi * progress))


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` (on the CPU) moved to ``device``; to a GPU through pinned memory without
    waiting, so that the host keeps queueing work."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def run_epoch(
    module: VAEModule,
    step: TrainingStep,
    source: BatchSource,
    config: TrainingConfig,
    lr: float,
    generator: torch.Generator,
    floor_share: float,
) -> torch.Tensor:
    """One pass over ``source`` in shuffled mini-batches, each through ``step``, at
    learning rate ``lr`` and noise floor share ``floor_share`` (see
    :meth:`~skvae._torch.step.TrainingStep.set_floor_share`).

    Returns a float64 tensor (on the device) of the loss and reconstruction term per
    observed point, the KL per curve and grid point, and the mean squared error per
    observed point of the curves that hid no point from the encoder (model units). A
    mask-aware encoder reads curves with points hidden by
    :func:`~skvae._torch.masking.draw_hidden_points`.
    """
    step.set_learning_rate(lr)
    step.set_floor_share(floor_share)
    module.train()
    latent_dims = module.config["latent_dims"]
    hiding = module.config["mask_aware"]
    device = step.totals.device
    n_features = source.n_features
    step.totals.zero_()
    # reparametrisation noise drawn on the CPU generator in slabs and moved a slab at a
    # time: the same stream on every device, few transfers, and memory that does not grow
    # with the number of curves (out-of-core fits)
    noise = torch.empty(0, latent_dims, device=device)
    used = n_seen = 0
    for batch in source.batches(config.batch_size, generator):
        if used + len(batch) > len(noise):
            fresh = torch.randn(max(NOISE_SLAB, len(batch)), latent_dims, generator=generator)
            noise, used = torch.cat([noise[used:], to_device(fresh, device)]), 0
        hidden = None
        if hiding:
            hidden = to_device(draw_hidden_points(len(batch), n_features, generator), device)
        step.load(batch, noise[used : used + len(batch)], hidden)
        used += len(batch)
        step()
        n_seen += len(batch)
    nll, kl, n_observed, squared_error, n_clean = step.totals
    recon = nll / n_observed
    loss = recon + config.kl_weight * kl / n_observed
    mse = squared_error / torch.clamp(n_clean, min=1.0)
    return torch.stack([loss, recon, kl / (n_seen * n_features), mse])


@torch.no_grad()
def update_profiled_noise(
    module: VAEModule, state: TrainingState, mse: torch.Tensor, n_curves: int, running: bool
) -> None:
    """Set a profiled module's shared σ, the one :func:`negative_elbo` uses, from an
    epoch's mean squared error per point ``mse`` (0-d, on the device) over ``n_curves``.

    Without ``running`` σ is the epoch's RMS error. With ``running`` (``partial_fit``) σ²
    is the curve-weighted mean of the squared errors of every epoch that ``state`` has
    counted since the last fresh estimate, this one included, as IncrementalPCA keeps
    running moments: one call on a few curves moves σ by their share of all curves seen.
    The host-side sums in ``state`` are updated by :func:`count_profiled_noise`.
    """
    if running and state.squared_error_count:
        total = state.squared_error_sum + mse * n_curves
        mse = total / (state.squared_error_count + n_curves)
    module.log_sigma.copy_(0.5 * torch.log(mse + PROFILE_FLOOR))


def count_profiled_noise(state: TrainingState, mse: float, n_curves: int, running: bool) -> None:
    """Record an epoch's mean squared error per point in the running sums of ``state``."""
    if not running:
        state.squared_error_sum, state.squared_error_count = 0.0, 0
    state.squared_error_sum += mse * n_curves
    state.squared_error_count += n_curves


def negative_elbo(module: VAEModule, X: torch.Tensor) -> torch.Tensor:
    """Deterministic per-row negative ELBO (unscented estimate of the expected log-likelihood),
    with the module's shared noise σ (for a profiled-noise module: the RMS training error).

    This is the true ELBO (KL weight 1), whatever weight training gave the KL term. It is
    differentiable (the encoder's variances are tuned on it); scoring calls it under
    ``torch.no_grad``.

    The networks run in float32; the likelihood and KL are evaluated in ``X``'s dtype, so a
    float64 ``X`` far from the training data gets a finite (very low) ELBO where float32
    squares would overflow.
    """
    module.eval()
    if bool(torch.isnan(X).any()):
        X, observed = split_missing(X)
        mean, logvar = module.encoder(X.to(torch.float32), observed.to(torch.float32))
        observed = observed[:, None, :]
    else:  # complete curves: no mask
        mean, logvar = module.encoder.encode_finite(X.to(torch.float32))
        observed = None
    eps = sigma_points(mean.shape[1], dtype=mean.dtype).to(X.device)  # (2d, d)
    z = mean[:, None, :] + torch.exp(0.5 * logvar)[:, None, :] * eps[None]
    decoded = module.decoder(z.reshape(-1, z.shape[-1])).reshape(len(X), len(eps), -1)
    log_sigma = module.log_sigma.to(X.dtype)
    nll = gaussian_nll(X[:, None, :], decoded.to(X.dtype), log_sigma, observed)
    return nll.mean(dim=1) + gaussian_kl(mean.to(X.dtype), logvar.to(X.dtype))


#: ``refine(module, X, Z) -> Z'``: codes ``Z`` of model-unit curves ``X`` (NaN missing)
#: refined against the module's decoder (see :class:`HeldOutCurves`).
Refine = Callable[[VAEModule, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def reconstruction_log_likelihood(
    module: VAEModule, X: torch.Tensor, refine: Refine | None = None
) -> torch.Tensor:
    """Per-row log-likelihood per observed point of ``X`` (NaN at missing points)
    reconstructed from the encoder's mean (refined by ``refine`` when given), at each
    row's maximum-likelihood noise: ``-½ (log(2π MSEᵢ) + 1)`` (float64).

    The reconstruction term of the profiled training loss (:func:`profiled_nll`) at the
    posterior mean: no sampling, no KL, so it ranks models by how well they reconstruct
    curves they never saw, each curve's relative error counting alike.
    """
    module.eval()
    filled, observed = split_missing(X.to(torch.float64))
    mean, _ = module.encoder(filled.to(torch.float32), observed.to(torch.float32))
    if refine is not None:
        mean = refine(module, X, mean)
    residual = (module.decoder(mean).to(torch.float64) - filled) * observed
    n_observed = observed.sum(dim=1)
    return -profiled_nll(residual.square().sum(dim=1), n_observed) / n_observed


class HeldOutCurves:
    """Curves held out for early stopping, scored by the reconstruction log-likelihood
    per observed point of their encoder-mean reconstruction (see
    :func:`reconstruction_log_likelihood`), averaged over curves.

    The curves come from a source, in memory or streamed from blocks, as model-unit
    tensors (NaN at missing points) on the training device, in chunks of a bounded number
    of rows.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` yields the held-out curves as float32 tensors of shape
        (n_rows_i, n_features), model units, on the training device.
    n_rows : int
        Number of held-out curves (the sum of the chunks' rows).
    refine : callable, default=None
        ``refine(module, X, Z)``: the codes ``Z`` of curves ``X`` refined as the fitted
        estimator's ``transform`` refines them. :meth:`per_curve`, which decides between
        the start and the best epoch once per fit, scores the reconstructions of those
        codes, what a user will get; the score of every epoch (:meth:`__call__`) keeps
        the encoder's means, which cost one network pass.
    """

    def __init__(
        self,
        chunks: Callable[[], Iterable[torch.Tensor]],
        n_rows: int,
        refine: Refine | None = None,
    ):
        self.chunks = chunks
        self.n_rows = n_rows
        self.refine = refine

    @torch.no_grad()
    def __call__(self, module: VAEModule) -> torch.Tensor:
        """The mean held-out score of ``module`` (0-d float64 tensor on the device; the
        training loop reads it back with the epoch's other numbers)."""
        total = None
        for chunk in self.chunks():
            part = reconstruction_log_likelihood(module, chunk).sum()
            total = part if total is None else total + part
        return total / self.n_rows

    @torch.no_grad()
    def per_curve(self, module: VAEModule) -> torch.Tensor:
        """Each held-out curve's score (float64, on the device) at its refined code; with
        no ``refine``, their mean is :meth:`__call__`'s."""
        return torch.cat(
            [reconstruction_log_likelihood(module, c, self.refine) for c in self.chunks()]
        )


def still_improving(
    losses: list[float], window: int, tol: float, higher_is_better: bool = False
) -> bool:
    """Whether the best of the last ``window`` values beats the best before them by more
    than ``tol`` per epoch on average, i.e. by more than ``tol * window`` (always True when
    fewer than ``window + 1`` values exist: too short to tell). NaN values are skipped."""
    losses = [v for v in losses if not math.isnan(v)]  # epochs without a hold-out
    if len(losses) <= window:
        return True
    sign = -1.0 if higher_is_better else 1.0
    before = min(sign * v for v in losses[:-window])
    recent = min(sign * v for v in losses[-window:])
    return recent < before - tol * window


def _clone(value):
    return value.clone() if torch.is_tensor(value) else value


def _snapshot(module: VAEModule, optimizer: torch.optim.Optimizer, average: torch.Tensor):
    """Copies, on the device, of what an epoch changes (no transfer to the host)."""
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        {p: {k: _clone(v) for k, v in s.items()} for p, s in optimizer.state.items()},
        average.clone(),
    )


def _restore(module, optimizer, average, snapshot) -> None:
    weights, optimizer_state, average_before = snapshot
    module.load_state_dict(weights)
    optimizer.state.clear()
    optimizer.state.update(optimizer_state)
    average.copy_(average_before)


def _is_finite(module: VAEModule) -> torch.Tensor:
    return torch.stack([torch.isfinite(p).all() for p in module.state_dict().values()]).all()


def _keep_start_unless_beaten(module, validation, state, start_weights, trained_best, beats):
    """The best trained epoch's weights if ``beats`` is True of their per-curve held-out
    gains over the start's scores, otherwise the start's (``state`` updated).

    ``trained_best`` is ``(epoch, score, weights)`` of the trained epoch with the best
    score at the encoder's means, which may be below the start's: the per-curve scores,
    at the codes ``transform`` gives, can still rank it above the start. On Tecator
    spectra, three fits in ten seeds each had a fold whose every epoch scored below its
    PCA start at the encoder's means; at the refined codes the three folds' networks
    won the pooled test (mean gains in log-likelihood per point 0.04, 0.07 and -0.02).
    """
    epoch, score, weights = trained_best
    module.load_state_dict(weights)
    best = validation.per_curve(module)
    module.load_state_dict(start_weights)
    start = validation.per_curve(module)
    if beats(best - start):
        state.best_epoch, state.best_validation = epoch, score
        return weights
    state.best_epoch, state.best_validation = 0, float(start.mean())
    return start_weights


def train(
    module: VAEModule,
    state: TrainingState,
    source: BatchSource,
    validation: Callable[[VAEModule], torch.Tensor] | None,
    config: TrainingConfig,
    generator: torch.Generator,
    n_epochs: int,
    *,
    on_epoch: Callable[[TrainingState], None] | None = None,
) -> str:
    """Run up to ``n_epochs`` epochs, updating ``module`` and ``state`` in place.

    ``module`` is on the training device; ``validation`` (or None) maps the module to its
    validation score per point (a 0-d tensor, model units; :class:`HeldOutCurves`).

    Returns why training stopped: ``"converged"`` (no improvement larger than ``tol`` for
    ``n_iter_no_change`` epochs, on the training loss or on the validation score when
    ``validation`` is given), ``"max_epochs"``, or ``"interrupted"`` (KeyboardInterrupt;
    the weights are then those of the last completed epoch, or the best ones with
    ``validation``). With ``validation``, the best weights are restored before returning;
    with ``config.beats_start`` too, a fresh run's starting weights compete as epoch 0
    (``state.best_epoch``), and are kept unless the best epoch beats them by that test.

    Raises
    ------
    TrainingDiverged
        If an epoch yields a non-finite loss or weights. ``module`` and ``state`` are
        restored to how they were before that epoch.
    """
    device = next(module.parameters()).device
    # CUDA graphs for in-memory data only: a streamed source moves blocks to the device
    # from a background thread, which must not run during a capture
    use_graph = uses_cuda_graph(device) and isinstance(source, TensorBatches)
    optimizer = make_optimizer(
        module, config.learning_rate_init, state.optimizer_state, capturable=use_graph
    )
    average = torch.tensor(state.grad_norm_average, dtype=torch.float32, device=device)
    step = TrainingStep(
        module,
        optimizer,
        config.batch_size,
        config.kl_weight,
        average,
        use_graph=use_graph,
        complete=config.complete_curves and not module.config["mask_aware"],
    )
    # convergence and early stopping are judged within this run (fit or partial_fit call)
    state.best_loss, state.best_validation, state.no_improvement = math.inf, -math.inf, 0
    best_weights = start_weights = trained_best = None
    if validation is not None and config.beats_start is not None and state.epoch == 0:
        start_weights = {k: v.clone() for k, v in module.state_dict().items()}
        best_weights = start_weights
        state.best_validation = float(validation(module))
    state.best_epoch = state.epoch
    reason = "max_epochs"
    in_epoch = False  # True while an epoch's updates are incomplete
    try:
        for _ in range(n_epochs):
            before = _snapshot(module, optimizer, average)
            in_epoch = True
            lr = learning_rate(config, state.epoch)
            share = noise_floor_share(config, state.epoch)
            result = run_epoch(module, step, source, config, lr, generator, share)
            if module.profiled:
                update_profiled_noise(
                    module, state, result[3], source.n_samples, config.running_noise
                )
            values = [torch.as_tensor(v, dtype=torch.float64, device=device) for v in result]
            values.append(_is_finite(module).to(torch.float64))
            if validation is not None:
                values.append(validation(module).to(torch.float64))
            values = torch.stack(values).tolist()  # the epoch's one host synchronisation
            loss, recon, kl, mse, finite = values[:5]
            if not (math.isfinite(loss) and finite):
                _restore(module, optimizer, average, before)
                fixed = isinstance(module.config["noise"], float)
                raise TrainingDiverged(
                    f"Training diverged at epoch {state.epoch + 1} (non-finite loss or weights). "
                    f"Lower learning_rate_init (currently {config.learning_rate_init:g}), "
                    + ("or increase noise." if fixed else "or use a fixed observation noise.")
                )
            state.epoch += 1
            state.loss.append(loss)
            state.reconstruction.append(recon)
            state.kl.append(kl)
            if module.profiled:
                count_profiled_noise(state, mse, source.n_samples, config.running_noise)
            if validation is not None:
                score = values[5]
                state.validation.append(score)
                improved = score > state.best_validation + config.tol
                if score > state.best_validation:
                    state.best_validation = score
                    state.best_epoch = state.epoch
                    best_weights = {k: v.clone() for k, v in module.state_dict().items()}
                if start_weights is not None and (trained_best is None or score > trained_best[1]):
                    # the best trained epoch, whose weights are copied above if it is also
                    # the best epoch (the start scoring lower)
                    if state.best_epoch == state.epoch:
                        weights = best_weights
                    else:
                        weights = {k: v.clone() for k, v in module.state_dict().items()}
                    trained_best = (state.epoch, score, weights)
            else:
                improved = loss < state.best_loss - config.tol
                state.best_loss = min(state.best_loss, loss)
            state.no_improvement = 0 if improved else state.no_improvement + 1
            in_epoch = False
            if on_epoch is not None:
                on_epoch(state)
            if state.no_improvement >= config.n_iter_no_change and state.epoch >= config.min_epochs:
                reason = "converged"
                break
    except KeyboardInterrupt:
        if in_epoch:  # drop the half-finished epoch (not one completed before a callback)
            _restore(module, optimizer, average, before)
        reason = "interrupted"
    if trained_best is not None:  # the start competes with the best trained epoch
        best_weights = _keep_start_unless_beaten(
            module, validation, state, start_weights, trained_best, config.beats_start
        )
    if best_weights is not None:
        module.load_state_dict(best_weights)
    module.eval()
    state.optimizer_state = optimizer_state_on_cpu(optimizer) if optimizer.state else None
    state.grad_norm_average = float(average)
    return reason
