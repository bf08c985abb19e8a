"""Pure torch building blocks of the VAE: encoder, decoder and the ELBO pieces.

Nothing here knows about numpy or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}

#: Soft bound on the encoder's log-variance: ``L * tanh(raw / L)`` keeps it in (-L, L),
#: so exp(log-variance) can neither overflow nor underflow to 0 during training.
LOGVAR_BOUND = 16.0
_LOG_2PI = math.log(2.0 * math.pi)
#: ``noise`` value of a module whose noise is profiled out in training.
PROFILED = "profiled"
#: Added to a curve's mean squared error (model units, where the data's variance is about
#: 1) before its log: noise levels below about 1e-5 of the data's scale are not resolved.
PROFILE_FLOOR = 1e-10


class Residual(nn.Module):
    """A hidden block ``h + act(W h + b)`` of constant width."""

    def __init__(self, width: int, activation: str):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.activation(self.linear(h))


def _is_residual(sizes: list[int], i: int, residual: bool) -> bool:
    """Whether layer ``i`` of a hidden stack through ``sizes`` is a residual block: every
    layer but the first whose width does not change, when ``residual``."""
    return residual and i > 0 and sizes[i] == sizes[i + 1]


def hidden_stack(sizes: list[int], activation: str, residual: bool = False) -> nn.Sequential:
    """Hidden layers through ``sizes``: ``Linear`` + activation, or a :class:`Residual`
    block ``h + act(W h + b)`` where the width stays the same (when ``residual``)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if _is_residual(sizes, i, residual):
            layers.append(Residual(n_in, activation))
        else:
            layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def _stack_shapes(prefix: str, sizes: list[int], residual: bool) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of :func:`hidden_stack` without building it."""
    shapes: dict[str, tuple[int, ...]] = {}
    index = 0
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        block = _is_residual(sizes, i, residual)
        name = f"{prefix}.{index}" + (".linear" if block else "")
        shapes[f"{name}.weight"] = (n_out, n_in)
        shapes[f"{name}.bias"] = (n_out,)
        index += 1 if block else 2
    return shapes


def split_missing(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(filled, observed)``: ``x`` with its missing points (NaN) set to 0 (the mean
    curve, in model units), and 1 at the observed points, 0 at the missing ones."""
    missing = torch.isnan(x)
    return x.masked_fill(missing, 0.0), (~missing).to(x.dtype)


def interpolate_missing(x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Curves ``x`` with each missing point replaced by the straight line between the
    nearest observed points on either side along the grid (the nearest observed value
    beyond the last one, 0 in a curve with none).

    Parameters
    ----------
    x : torch.Tensor of shape (n, n_features)
        Curves, finite (any value at the missing points).
    observed : torch.Tensor of shape (n, n_features)
        1 at the observed points, 0 at the missing ones.

    Returns
    -------
    filled : torch.Tensor of shape (n, n_features)

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0, 0.0, 0.0, 4.0, 0.0]])
    >>> interpolate_missing(x, torch.tensor([[0.0, 1, 0, 0, 1, 0]])).tolist()
    [[1.0, 1.0, 2.0, 3.0, 4.0, 4.0]]
    """
    n_features = x.shape[-1]
    seen = observed > 0
    index = torch.arange(n_features, device=x.device, dtype=x.dtype).expand_as(x)
    none = torch.full_like(x, -1.0)
    before = torch.cummax(torch.where(seen, index, none), dim=-1).values
    after = n_features - 1 - torch.cummax(torch.where(seen.flip(-1), index, none), dim=-1).values
    after = after.flip(-1)  # n_features where no observed point follows
    left = x.gather(-1, before.clamp(min=0).long())
    right = x.gather(-1, after.clamp(max=n_features - 1).long())
    has_left, has_right = before >= 0, after < n_features
    weight = (index - before) / torch.clamp(after - before, min=1.0)
    line = left + (right - left) * weight
    filled = torch.where(has_left, torch.where(has_right, line, left), right)
    filled = torch.where(has_left | has_right, filled, torch.zeros_like(x))
    return torch.where(seen, x, filled)


class Encoder(nn.Module):
    """MLP mapping a curve to the mean and log-variance of a diagonal Gaussian posterior.

    Missing points (NaN) are interpolated along the grid (:func:`interpolate_missing`).
    A ``mask_aware`` encoder also reads which points are missing: its input is the
    interpolated curve followed by the missing-point indicator, ``1 / sqrt(n_features)``
    where a point is missing and 0 elsewhere (``2 * n_features`` values). A missing point
    is never mistaken for an observed one, and a curve with scattered missing points looks
    to the network much like the complete curve. A complete curve's indicator is all
    zeros: its weights neither act nor train, so complete curves train as they would
    without them. The indicator's small value keeps the many weights it feeds, which Adam
    moves each by about one step whatever their gradient, from jolting the hidden units:
    with indicators of 1, an encoder trained on incomplete curves encodes complete ones
    poorly.

    With ``linear``, a bias-free linear map of the interpolated curve is added to the
    mean: the projection of PCA when the module starts at PCA, see
    :meth:`VAEModule.start_at_pca`.
    """

    def __init__(
        self,
        n_features: int,
        hidden: list[int],
        latent_dims: int,
        activation: str,
        residual: bool = False,
        mask_aware: bool = False,
        linear: bool = False,
    ):
        super().__init__()
        n_inputs = 2 * n_features if mask_aware else n_features
        self.mask_aware = mask_aware
        self.body = hidden_stack([n_inputs, *hidden], activation, residual)
        self.mean = nn.Linear(hidden[-1], latent_dims)
        self.logvar = nn.Linear(hidden[-1], latent_dims)
        self.linear = nn.Linear(n_features, latent_dims, bias=False) if linear else None

    def forward(
        self, x: torch.Tensor, observed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of curves ``x``.

        Without ``observed``, NaN entries of ``x`` are the missing points. With it (1 at
        the points the encoder may read, 0 elsewhere), ``x`` must be 0 at the others.
        """
        if observed is None:
            if not bool(torch.isnan(x).any()):  # complete curves: nothing to fill in
                return self.encode_finite(x)
            x, observed = split_missing(x)
        return self.encode_finite(interpolate_missing(x, observed), observed)

    def encode_finite(
        self, x: torch.Tensor, observed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` of curves ``x`` with every point finite: complete curves
        (``observed`` None) or curves whose missing points are already interpolated."""
        inputs = x
        if self.mask_aware:
            if observed is None:
                indicator = torch.zeros_like(x)
            else:
                indicator = (1.0 - observed) / math.sqrt(observed.shape[-1])
            inputs = torch.cat([x, indicator], dim=-1)
        h = self.body(inputs)
        raw = self.logvar(h)
        mean = self.mean(h)
        if self.linear is not None:
            mean = mean + self.linear(x)
        return mean, LOGVAR_BOUND * torch.tanh(raw / LOGVAR_BOUND)


class Decoder(nn.Module):
    """MLP mapping a latent code to a curve (the mean of the Gaussian likelihood).

    With ``linear``, a bias-free linear map of the code is added to the curve (PCA's
    reconstruction when the module starts at PCA, see :meth:`VAEModule.start_at_pca`).
    """

    def __init__(
        self,
        latent_dims: int,
        hidden: list[int],
        n_features: int,
        activation: str,
        residual: bool = False,
        linear: bool = False,
    ):
        super().__init__()
        self.net = hidden_stack([latent_dims, *hidden], activation, residual)
        self.net.append(nn.Linear(hidden[-1], n_features))
        self.linear = nn.Linear(latent_dims, n_features, bias=False) if linear else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.linear is None:
            return self.net(z)
        return self.net(z) + self.linear(z)


#: Constructor arguments of :class:`VAEModule` and their defaults (None: required).
CONFIG_KEYS = {
    "n_features": None,
    "hidden": None,
    "latent_dims": None,
    "activation": None,
    "noise": None,
    "residual": False,
    "mask_aware": False,
    "linear": False,
}


class VAEModule(nn.Module):
    """Encoder, decoder and the observation noise of the Gaussian likelihood.

    The module keeps its constructor arguments in :attr:`config` (JSON-compatible), so a
    saved module is rebuilt from its config, and :meth:`parameter_shapes` tells the
    tensors a config needs without building anything.

    Parameters
    ----------
    n_features : int
        Number of points per curve.
    hidden : list of int
        Hidden layer sizes of the encoder; the decoder mirrors them.
    latent_dims : int
        Dimension of the latent space.
    activation : str
        A key of :data:`ACTIVATIONS`.
    noise : float, None or "profiled"
        Fixed observation noise standard deviation (model units); None to learn one
        shared σ by gradient descent; ``"profiled"`` to set each curve's noise to its
        maximum-likelihood value during training (see :func:`profiled_nll`), with
        ``log_sigma`` a buffer that training sets to the shared value afterwards.
    residual : bool, default=False
        Hidden-to-hidden layers of equal width are residual blocks ``h + act(W h + b)``.
    mask_aware : bool, default=False
        The encoder reads the observation mask next to the curve (see :class:`Encoder`).
    linear : bool, default=False
        The encoder's mean and the decoder's output each add a bias-free linear map of
        their input to the MLP's (see :meth:`start_at_pca`).

    Examples
    --------
    >>> module = VAEModule(n_features=10, hidden=[8, 8], latent_dims=2, activation="silu",
    ...                    noise=None, residual=True)
    >>> module.config["residual"], VAEModule.parameter_shapes(module.config)["log_sigma"]
    (True, ())
    """

    def __init__(
        self,
        n_features: int,
        hidden: list[int],
        latent_dims: int,
        activation: str,
        noise: float | str | None,
        residual: bool = False,
        mask_aware: bool = False,
        linear: bool = False,
    ):
        super().__init__()
        if isinstance(noise, str) and noise != PROFILED:
            raise ValueError(f"noise must be a float, None or {PROFILED!r}, got {noise!r}.")
        self.config = {
            "n_features": int(n_features),
            "hidden": [int(h) for h in hidden],
            "latent_dims": int(latent_dims),
            "activation": str(activation),
            "noise": noise if noise is None or noise == PROFILED else float(noise),
            "residual": bool(residual),
            "mask_aware": bool(mask_aware),
            "linear": bool(linear),
        }
        # Construction draws default initial weights from torch's global generator; do it
        # in a forked RNG so that user code's global random stream is left untouched.
        # The estimator then calls ``reset_parameters`` with its own generator.
        with torch.random.fork_rng(devices=[]):
            self.encoder = Encoder(
                n_features, hidden, latent_dims, activation, residual, mask_aware, linear
            )
            self.decoder = Decoder(
                latent_dims, hidden[::-1], n_features, activation, residual, linear
            )
        log_sigma = torch.tensor(0.0 if noise is None or noise == PROFILED else math.log(noise))
        if noise is None:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @staticmethod
    def parameter_shapes(config: dict) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the state dict of ``VAEModule(**config)``, built from the
        config alone (no module, no memory proportional to the network).

        Parameters
        ----------
        config : dict
            Constructor arguments, as in :attr:`config`.

        Returns
        -------
        shapes : dict of str to tuple of int

        Raises
        ------
        ValueError
            If ``config`` has unknown or missing keys.
        """
        unknown = set(config) - set(CONFIG_KEYS)
        missing = {k for k, v in CONFIG_KEYS.items() if v is None} - set(config)
        if unknown or missing:
            raise ValueError(
                f"invalid network config: unknown keys {sorted(unknown)}, "
                f"missing keys {sorted(missing)}."
            )
        n, hidden, d = config["n_features"], list(config["hidden"]), config["latent_dims"]
        residual = bool(config.get("residual", False))
        n_inputs = 2 * n if config.get("mask_aware", False) else n
        shapes = _stack_shapes("encoder.body", [n_inputs, *hidden], residual)
        for head in ("mean", "logvar"):
            shapes[f"encoder.{head}.weight"] = (d, hidden[-1])
            shapes[f"encoder.{head}.bias"] = (d,)
        shapes.update(_stack_shapes("decoder.net", [d, *hidden[::-1]], residual))
        last = 2 * len(hidden) - sum(
            _is_residual([d, *hidden[::-1]], i, residual) for i in range(len(hidden))
        )
        shapes[f"decoder.net.{last}.weight"] = (n, hidden[0])
        shapes[f"decoder.net.{last}.bias"] = (n,)
        if config.get("linear", False):
            shapes["encoder.linear.weight"] = (d, n)
            shapes["decoder.linear.weight"] = (n, d)
        shapes["log_sigma"] = ()
        return shapes

    @torch.no_grad()
    def start_at_pca(self, batches: Iterable[torch.Tensor], variance_floor: float = 1e-12) -> None:
        """Start at probabilistic PCA of the curves in ``batches`` (needs ``linear``).

        The linear paths are set to PCA's projection and reconstruction with whitened
        codes (unit variance per component, as the prior's), the MLPs' output layers to
        zero weights with the curves' mean in the decoder's bias, and the encoder's
        log-variance to probabilistic PCA's posterior variance in those units, so the
        mean reconstruction is PCA's. A profiled or learned noise starts at PCA's RMS
        residual. The mean and covariance are accumulated in float64 over the batches
        (one pass; streamed data is never held in memory at once), missing points (NaN)
        interpolated along the grid (:func:`interpolate_missing`).

        Parameters
        ----------
        batches : iterable of Tensor of shape (n_rows_i, n_features)
            The curves, model units.
        variance_floor : float, default=1e-12
            Smallest variance (model units) given to a component or to the residual.
        """
        if self.encoder.linear is None:
            raise ValueError("start_at_pca needs a module built with linear=True.")
        n, d = self.config["n_features"], self.config["latent_dims"]
        device = self.encoder.linear.weight.device
        total = torch.zeros(n, dtype=torch.float64, device=device)
        outer = torch.zeros(n, n, dtype=torch.float64, device=device)
        count = 0
        for batch in batches:
            batch = batch.to(device=device, dtype=torch.float64)
            batch = interpolate_missing(*split_missing(batch))
            total += batch.sum(0)
            outer += batch.T @ batch
            count += len(batch)
        centre = total / count
        covariance = (outer - count * torch.outer(centre, centre)) / max(count - 1, 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        eigenvalues = eigenvalues.flip(0).clamp_min(variance_floor)
        components = eigenvectors.flip(1).T  # (n, n), rows by decreasing variance
        k = min(d, n)
        variances = torch.full((d,), float(eigenvalues[k - 1]), dtype=torch.float64, device=device)
        variances[:k] = eigenvalues[:k]
        V = torch.zeros(d, n, dtype=torch.float64, device=device)
        V[:k] = components[:k]
        std = variances.sqrt()
        residual = max(float(eigenvalues[k:].sum()) / n, variance_floor)
        self.encoder.linear.weight.copy_(V / std[:, None])
        self.decoder.linear.weight.copy_((V * std[:, None]).T)
        for layer in (self.encoder.mean, self.encoder.logvar, self.decoder.net[-1]):
            layer.weight.zero_()
        self.encoder.mean.bias.copy_(-(V @ centre) / std)
        self.decoder.net[-1].bias.copy_(centre)
        # probabilistic PCA's posterior variance of whitened codes, σ²/λ (at most the prior's)
        posterior = torch.log(residual / variances).clamp(-LOGVAR_BOUND / 2, 0.0)
        # the encoder's tanh bound: the raw log-variance that comes out as ``posterior``
        self.encoder.logvar.bias.copy_(LOGVAR_BOUND * torch.atanh(posterior / LOGVAR_BOUND))
        if self.config["noise"] is None or self.profiled:
            self.log_sigma.fill_(0.5 * math.log(residual))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw every linear layer's weights as ``nn.Linear`` does, from ``generator``.

        The first layer of a mask-aware encoder is drawn as if it read the curve alone
        (its fan-in is ``n_features``), so a complete curve starts as in an encoder
        without the indicator.
        """
        first = self.encoder.body[0]
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                fan_in = layer.in_features
                if layer is first and self.config["mask_aware"]:
                    fan_in = self.config["n_features"]
                bound = 1.0 / math.sqrt(fan_in)
                # kaiming_uniform_ with a=sqrt(5) is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)

    @property
    def profiled(self) -> bool:
        """Whether the noise is profiled (set to its maximum-likelihood value) in training."""
        return self.config["noise"] == PROFILED

    def forward(
        self,
        x: torch.Tensor,
        eps: torch.Tensor,
        observed: torch.Tensor | None = None,
        seen: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-curve squared reconstruction error (summed over the observed points) and KL,
        with ``z = mean + std * eps``.

        ``x`` is 0 at its missing points; ``observed`` is 1 at the points the likelihood
        scores, ``seen`` (default: ``observed``) at the points the encoder reads, a subset
        of them. Without ``observed`` the curves are complete: nothing is masked or
        interpolated.
        """
        if observed is None:
            mean, logvar = self.encoder.encode_finite(x)
            z = mean + torch.exp(0.5 * logvar) * eps
            return (x - self.decoder(z)).square().sum(dim=-1), gaussian_kl(mean, logvar)
        if seen is None:
            seen = observed
        mean, logvar = self.encoder(x * seen, seen)
        z = mean + torch.exp(0.5 * logvar) * eps
        squared_error = ((x - self.decoder(z)).square() * observed).sum(dim=-1)
        return squared_error, gaussian_kl(mean, logvar)

    def reconstruction_nll(
        self,
        squared_error: torch.Tensor,
        n_observed: int | torch.Tensor,
        floor: float | torch.Tensor = 0.0,
    ) -> torch.Tensor:
        """Per-curve negative log-likelihood from :meth:`forward`'s squared errors over
        ``n_observed`` points per curve: with the module's σ, or each curve's own
        maximum-likelihood σ when profiled (plus the variance ``floor``, see
        :func:`profiled_nll`)."""
        if self.profiled:
            return profiled_nll(squared_error, n_observed, floor)
        scaled = squared_error * torch.exp(-2 * self.log_sigma)
        return gaussian_nll_of_scaled_error(scaled, n_observed, self.log_sigma)


def profiled_nll(
    squared_error: torch.Tensor,
    n_features: int | torch.Tensor,
    floor: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Per-curve Gaussian negative log-likelihood at the curve's maximum-likelihood noise.

    With σᵢ² = MSEᵢ (the curve's mean squared error over its ``n_features`` observed
    points, a number or one per curve; Rybkin et al. 2021's "optimal σ", per curve) the
    negative log-likelihood is ``D/2 · (log(2π MSEᵢ) + 1)``. Its gradient
    is the squared error's divided by MSEᵢ: every curve's *relative* error counts, the
    step size follows the noise as it shrinks (no edge-of-stability spikes), and curves
    that span large ranges weigh no more than others. ``PROFILE_FLOOR`` keeps the log finite.

    ``floor`` (a number or a 0-d tensor, a variance in the curves' units) is added to
    every σᵢ²: each curve's gradient is then its squared error's divided by
    ``MSEᵢ + floor``, which caps the weight of the curves already fitted best.
    """
    mse = squared_error / n_features + PROFILE_FLOOR
    return 0.5 * n_features * (torch.log(mse + floor) + _LOG_2PI + 1.0)


def gaussian_nll_of_scaled_error(
    scaled_squared_error: torch.Tensor, n_features: int | torch.Tensor, log_sigma: torch.Tensor
) -> torch.Tensor:
    """Negative log-density under N(x_hat, σ² I), σ = exp(log_sigma), of curves of
    ``n_features`` points (a number, or one per curve) whose squared distance to ``x_hat``
    divided by σ² is ``scaled_squared_error``."""
    return 0.5 * scaled_squared_error + n_features * (log_sigma + 0.5 * _LOG_2PI)


def gaussian_nll(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    log_sigma: torch.Tensor,
    observed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row negative log-density of ``x`` under N(x_hat, σ² I), σ = exp(log_sigma),
    over the points where ``observed`` is 1 (default: all of them)."""
    scaled = ((x - x_hat) * torch.exp(-log_sigma)) ** 2  # scaled first: no overflow
    if observed is None:
        return gaussian_nll_of_scaled_error(scaled.sum(dim=-1), x.shape[-1], log_sigma)
    return gaussian_nll_of_scaled_error(
        (scaled * observed).sum(dim=-1), observed.sum(dim=-1), log_sigma
    )


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-row KL( N(mean, diag(exp(logvar))) || N(0, I) ) in closed form."""
    return 0.5 * (mean**2 + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)


def sigma_points(latent_dims: int, dtype=torch.float32) -> torch.Tensor:
    """The 2·d unscented-transform points ±√d·e_i of a standard normal, equal weights.

    Averaging ``f(mean + std * eps)`` over these points integrates polynomials of degree
    up to 3 exactly under N(mean, diag(std²)), deterministically.
    """
    eye = torch.eye(latent_dims, dtype=dtype) * math.sqrt(latent_dims)
    return torch.cat([eye, -eye])
