"""One optimisation step on fixed-shape buffers, replayed as a CUDA graph on a GPU.

Pure torch. The step (forward, backward, gradient clipping, Adam) always runs on the same
memory with the same shapes: a mini-batch is copied into the step's buffers, and a short
last batch is padded with zero rows of weight 0. On a CUDA device that lets the whole step
be captured once in a CUDA graph and then replayed -- one launch per step instead of about
a hundred small kernels, which is what limits small networks on a GPU. Elsewhere the
same code runs eagerly, so the CPU test suite exercises exactly what a graph captures.
"""

from __future__ import annotations

import math

import torch

from .._warnings import warn_at_caller
from .networks import VAEModule

#: Gradient norms are clipped at this multiple of their running average (see clip_gradients).
CLIP_FACTOR = 2.0
CLIP_DECAY = 0.98
#: Eager steps, on a side stream, before a CUDA graph is captured (as torch's documentation
#: of whole-network capture prescribes: lazy initialisations must not happen in a capture).
#: They are ordinary training steps on real batches.
WARMUP_STEPS = 3


def clip_gradients(parameters: list[torch.Tensor], average: torch.Tensor) -> None:
    """Clip the gradients' global norm at ``CLIP_FACTOR`` times its running ``average``.

    With a learned observation noise the gradients grow as the noise shrinks, and one
    batch with an unusually poor fit can yield a gradient many times the usual size; Adam
    turns such an outlier into a step of several learning rates in every coordinate.
    Clipping relative to the running norm tames those steps and leaves ordinary ones
    untouched. ``average`` (a 0-d float32 tensor on the device; 0 means "no step seen
    yet") is updated in place; nothing is read back to the host.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    limit = torch.where(average > 0, CLIP_FACTOR * average, torch.full_like(average, math.inf))
    torch._foreach_mul_(grads, torch.clamp(limit / (norm + 1e-6), max=1.0))
    seen = torch.minimum(norm, limit)
    updated = torch.where(average > 0, CLIP_DECAY * average + (1 - CLIP_DECAY) * seen, seen)
    average.copy_(torch.where(torch.isfinite(norm), updated, average))


def uses_cuda_graph(device: torch.device) -> bool:
    """Whether training steps on ``device`` are captured in a CUDA graph."""
    return device.type == "cuda"


def make_optimizer(
    module: VAEModule,
    learning_rate_init: float,
    state: dict | None = None,
    *,
    capturable: bool = False,
) -> torch.optim.Adam:
    """Adam over ``module``'s parameters, continuing from ``state`` when given.

    ``capturable`` (CUDA graphs): the step counters live on the device and the learning
    rate is a 0-d device tensor, set in place each epoch, so a captured step reads the
    current rate. A saved ``state`` never holds either (see :func:`optimizer_state_on_cpu`),
    so it loads into both kinds.
    """
    device = next(module.parameters()).device
    lr = torch.tensor(learning_rate_init, device=device) if capturable else learning_rate_init
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, foreach=True, capturable=capturable)
    if state is not None:
        optimizer.load_state_dict(state)  # moves the moments to the parameters' device
        for group in optimizer.param_groups:  # the saved groups replace ours: restore
            group["capturable"], group["lr"] = capturable, lr
        if capturable:  # the saved (non-capturable) state kept its step counters on the CPU
            for values in optimizer.state.values():
                values["step"] = values["step"].to(device, torch.float32)
    return optimizer


def optimizer_state_on_cpu(optimizer: torch.optim.Optimizer) -> dict:
    """A detached copy of ``optimizer``'s state dict with every tensor on the CPU, float
    learning rates and ``capturable=False`` (a device-free state that any optimizer loads)."""

    def to_cpu(value):
        if torch.is_tensor(value):
            return value.detach().to("cpu", copy=True)
        if isinstance(value, dict):
            return {k: to_cpu(v) for k, v in value.items()}
        if isinstance(value, list):
            return [to_cpu(v) for v in value]
        return value

    state = to_cpu(optimizer.state_dict())
    for group in state["param_groups"]:
        group["lr"] = float(group["lr"])
        group["capturable"] = False
    return state


class TrainingStep:
    """Forward, backward, clipping and Adam update of one mini-batch on fixed buffers.

    Call :meth:`load` with a batch and its reparametrisation noise, then call the step.
    The loss per observed point of the batch's real rows is minimised (with a profiled
    noise, each curve's noise variance is raised by :attr:`floor`, see
    :meth:`set_floor_share`); the batch's sums
    accumulate in :attr:`totals` (float64, on the device): the reconstruction term, the
    KL, the observed points, and the squared error and observed points of the rows that
    hid no point from the encoder (from which the shared noise is estimated). With
    ``use_graph`` (CUDA devices) the first :data:`WARMUP_STEPS` steps run eagerly on a
    side stream, the next one is captured in a CUDA graph, and every later step replays
    it. If the capture fails, training goes on eagerly with a warning.

    Parameters
    ----------
    module : VAEModule
        The networks, on the training device.
    optimizer : torch.optim.Adam
        Over ``module``'s parameters; ``capturable`` when ``use_graph``.
    batch_size : int
        Rows of the buffers (the largest batch).
    kl_weight : float
        Weight of the KL term in the loss.
    average : torch.Tensor
        Running gradient norm (0-d, on the device), updated in place by each step.
    use_graph : bool
        Capture and replay the step as a CUDA graph.
    complete : bool, default=False
        Every batch is complete (no NaN) and hides nothing from the encoder: the step
        neither masks nor interpolates.

    Examples
    --------
    >>> net = VAEModule(n_features=6, hidden=[8], latent_dims=2, activation="silu",
    ...                 noise="profiled")
    >>> step = TrainingStep(net, make_optimizer(net, 1e-3), batch_size=4, kl_weight=1.0,
    ...                     average=torch.zeros(()), use_graph=False)
    >>> batch = torch.randn(3, 6)
    >>> batch[0, :2] = float("nan")  # two missing points
    >>> step.load(batch, torch.randn(3, 2))  # a short batch: one padding row
    >>> step.weight.tolist(), step.observed.sum(dim=1).tolist()
    ([1.0, 1.0, 1.0, 0.0], [4.0, 6.0, 6.0, 6.0])
    >>> step()
    >>> bool(torch.isfinite(step.totals).all())
    True
    """

    def __init__(
        self,
        module: VAEModule,
        optimizer: torch.optim.Adam,
        batch_size: int,
        kl_weight: float,
        average: torch.Tensor,
        *,
        use_graph: bool,
        complete: bool = False,
    ):
        device = average.device
        self.complete = complete
        n_features, latent_dims = module.config["n_features"], module.config["latent_dims"]
        self.module, self.optimizer, self.average = module, optimizer, average
        self.kl_weight, self.n_features = kl_weight, n_features
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self.batch = torch.zeros(batch_size, n_features, device=device)  # 0 where missing
        self.observed = torch.ones(batch_size, n_features, device=device)  # 1 where observed
        self.seen = torch.ones(batch_size, n_features, device=device)  # what the encoder reads
        self.eps = torch.zeros(batch_size, latent_dims, device=device)
        self.weight = torch.ones(batch_size, device=device)  # 0 for padding rows
        self.clean = torch.ones(batch_size, device=device)  # 0 also where points were hidden
        self.totals = torch.zeros(5, dtype=torch.float64, device=device)
        # variance added to every curve's profiled noise one (see set_floor_share)
        self.floor = torch.zeros((), device=device)
        self.rows = batch_size
        self.use_graph = use_graph
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0

    def set_learning_rate(self, lr: float) -> None:
        """Set the learning rate of the next steps (in place when a graph reads it)."""
        for group in self.optimizer.param_groups:
            if torch.is_tensor(group["lr"]):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    def set_floor_share(self, share: float) -> None:
        """Add ``share`` times the module's shared noise variance ``exp(2 log_sigma)`` (with
        a profiled noise: the last epoch's mean squared error per point, PCA's at a fresh
        start) to every curve's profiled noise variance in the next steps (:attr:`floor`,
        set in place on the device, so that a graph reads it and nothing is read back)."""
        torch.mul(torch.exp(2 * self.module.log_sigma.detach()), share, out=self.floor)

    def load(
        self,
        batch: torch.Tensor,
        eps: torch.Tensor,
        hidden: torch.Tensor | None = None,
        observed: torch.Tensor | None = None,
    ) -> None:
        """Copy a batch (at most ``batch_size`` rows, NaN at missing points), its noise and
        the points hidden from the encoder (boolean, default none) into the buffers.

        ``observed`` (boolean, default: the finite points of ``batch``) marks the points
        the likelihood scores; the encoder reads every finite point of ``batch`` that is
        not hidden, so finite points outside ``observed`` are shown to the encoder
        without being scored (values filled in by the model).
        """
        n = len(batch)
        if self.complete:
            self.batch[:n].copy_(batch)
            self.clean[:n].fill_(1.0)
        else:
            missing = torch.isnan(batch)
            self.batch[:n].copy_(batch.masked_fill(missing, 0.0))
            self.observed[:n].copy_(~missing if observed is None else observed)
            if hidden is None:
                self.seen[:n].copy_(~missing)
                self.clean[:n].fill_(1.0)
            else:
                self.seen[:n].copy_(~(missing | hidden))
                self.clean[:n].copy_(~hidden.any(dim=1))
        self.eps[:n].copy_(eps)
        if n != self.rows:  # pad: finite zero rows, fully observed, that carry no weight
            self.batch[n:].zero_()
            self.observed[n:].fill_(1.0)
            self.seen[n:].fill_(1.0)
            self.eps[n:].zero_()
            self.weight[:n].fill_(1.0)
            self.weight[n:].zero_()
            self.rows = n
        self.clean[n:].zero_()

    def _compute(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.complete:  # ``observed`` stays all ones
            squared_error, kl = self.module(self.batch, self.eps)
        else:
            squared_error, kl = self.module(self.batch, self.eps, self.observed, self.seen)
        n_observed = self.observed.sum(dim=1)
        nll = self.module.reconstruction_nll(squared_error, n_observed, self.floor)
        sums = [(term * self.weight).sum() for term in (nll, kl, n_observed)]
        sums += [(term * self.clean).sum() for term in (squared_error, n_observed)]
        loss = (sums[0] + self.kl_weight * sums[1]) / sums[2]
        loss.backward()
        clip_gradients(self.parameters, self.average)
        self.optimizer.step()
        self.totals += torch.stack(sums).detach().double()

    def __call__(self) -> None:
        """Run one step on the loaded batch."""
        if self.graph is not None:
            self.graph.replay()
        elif not self.use_graph:
            self._compute()
        elif self.eager_steps < WARMUP_STEPS:
            self._warm_up()
        else:
            self._capture_and_replay()

    def _warm_up(self) -> None:
        current = torch.cuda.current_stream(self.batch.device)
        side = torch.cuda.Stream(self.batch.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            self._compute()
        current.wait_stream(side)
        self.eager_steps += 1

    def _capture_and_replay(self) -> None:
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # gradients then live in the graph's pool
        try:
            with torch.cuda.graph(graph):
                self._compute()  # recorded, not run
        except RuntimeError as exc:
            self.use_graph = False
            self.optimizer.zero_grad(set_to_none=True)
            warn_at_caller(
                f"CUDA graph capture of the training step failed ({exc}); training goes on "
                "without CUDA graphs, which is slower.",
                RuntimeWarning,
            )
            self._compute()
            return
        self.graph = graph
        graph.replay()
