"""Pure torch building blocks of the VAE: encoder, decoder and the ELBO pieces.

Nothing here knows about numpy or scikit-learn.
"""

from __future__ import annotations

import math

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


class Residual(nn.Module):
    """A hidden block ``h + act(W h + b)`` of constant width."""

    def __init__(self, width: int, activation: str):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.activation(self.linear(h))


def _layer_plan(sizes: list[int], residual: bool) -> list[tuple[str, int, int]]:
    """``(kind, n_in, n_out)`` of each affine layer of an MLP through ``sizes``: "linear"
    (followed by the activation, except the last) or "residual" (a :class:`Residual` block,
    used between two hidden layers of equal width when ``residual``)."""
    plan = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        inner = 0 < i < len(sizes) - 2
        plan.append(("residual" if residual and inner and n_in == n_out else "linear", n_in, n_out))
    return plan


def make_mlp(sizes: list[int], activation: str, residual: bool = False) -> nn.Sequential:
    """Affine layers through ``sizes`` with ``activation`` between them (none after the
    last); hidden-to-hidden layers of equal width are residual blocks when ``residual``."""
    layers: list[nn.Module] = []
    plan = _layer_plan(sizes, residual)
    for i, (kind, n_in, n_out) in enumerate(plan):
        if kind == "residual":
            layers.append(Residual(n_in, activation))
            continue
        layers.append(nn.Linear(n_in, n_out))
        if i < len(plan) - 1:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _mlp_shapes(prefix: str, sizes: list[int], residual: bool) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of :func:`make_mlp` without building it."""
    shapes: dict[str, tuple[int, ...]] = {}
    index = 0
    plan = _layer_plan(sizes, residual)
    for i, (kind, n_in, n_out) in enumerate(plan):
        name = f"{prefix}.{index}" + (".linear" if kind == "residual" else "")
        shapes[f"{name}.weight"] = (n_out, n_in)
        shapes[f"{name}.bias"] = (n_out,)
        index += 1 if kind == "residual" or i == len(plan) - 1 else 2
    return shapes


class Encoder(nn.Module):
    """MLP mapping a curve to the mean and log-variance of a diagonal Gaussian posterior."""

    def __init__(
        self,
        n_features: int,
        hidden: list[int],
        latent_dims: int,
        activation: str,
        residual: bool = False,
    ):
        super().__init__()
        self.body = make_mlp([n_features, *hidden], activation, residual)
        self.body.append(ACTIVATIONS[activation]())
        self.mean = nn.Linear(hidden[-1], latent_dims)
        self.logvar = nn.Linear(hidden[-1], latent_dims)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        raw = self.logvar(h)
        return self.mean(h), LOGVAR_BOUND * torch.tanh(raw / LOGVAR_BOUND)


class Decoder(nn.Module):
    """MLP mapping a latent code to a curve (the mean of the Gaussian likelihood)."""

    def __init__(
        self,
        latent_dims: int,
        hidden: list[int],
        n_features: int,
        activation: str,
        residual: bool = False,
    ):
        super().__init__()
        self.net = make_mlp([latent_dims, *hidden, n_features], activation, residual)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


#: Constructor arguments of :class:`VAEModule` and their defaults (None: required).
CONFIG_KEYS = {
    "n_features": None,
    "hidden": None,
    "latent_dims": None,
    "activation": None,
    "noise": None,
    "residual": False,
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
    noise : float or None
        Fixed observation noise standard deviation (model units), or None to learn one
        shared σ.
    residual : bool, default=False
        Hidden-to-hidden layers of equal width are residual blocks ``h + act(W h + b)``.

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
        noise: float | None,
        residual: bool = False,
    ):
        super().__init__()
        self.config = {
            "n_features": int(n_features),
            "hidden": [int(h) for h in hidden],
            "latent_dims": int(latent_dims),
            "activation": str(activation),
            "noise": None if noise is None else float(noise),
            "residual": bool(residual),
        }
        # Construction draws default initial weights from torch's global generator; do it
        # in a forked RNG so that user code's global random stream is left untouched.
        # The estimator then calls ``reset_parameters`` with its own generator.
        with torch.random.fork_rng(devices=[]):
            self.encoder = Encoder(n_features, hidden, latent_dims, activation, residual)
            self.decoder = Decoder(latent_dims, hidden[::-1], n_features, activation, residual)
        log_sigma = torch.tensor(0.0 if noise is None else math.log(noise))
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
        missing = {k for k, v in CONFIG_KEYS.items() if v is None and k != "noise"} - set(config)
        if unknown or missing:
            raise ValueError(
                f"invalid network config: unknown keys {sorted(unknown)}, "
                f"missing keys {sorted(missing)}."
            )
        n, hidden, d = config["n_features"], list(config["hidden"]), config["latent_dims"]
        residual = bool(config.get("residual", False))
        shapes = _mlp_shapes("encoder.body", [n, *hidden], residual)
        for head in ("mean", "logvar"):
            shapes[f"encoder.{head}.weight"] = (d, hidden[-1])
            shapes[f"encoder.{head}.bias"] = (d,)
        shapes.update(_mlp_shapes("decoder.net", [d, *hidden[::-1], n], residual))
        shapes["log_sigma"] = ()
        return shapes

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw every linear layer's weights as ``nn.Linear`` does, from ``generator``."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                # kaiming_uniform_ with a=sqrt(5) is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-curve negative log-likelihood and KL, with ``z = mean + std * eps``."""
        mean, logvar = self.encoder(x)
        z = mean + torch.exp(0.5 * logvar) * eps
        return gaussian_nll(x, self.decoder(z), self.log_sigma), gaussian_kl(mean, logvar)


def gaussian_nll(x: torch.Tensor, x_hat: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Per-row negative log-density of ``x`` under N(x_hat, σ² I), σ = exp(log_sigma)."""
    sq = ((x - x_hat) * torch.exp(-log_sigma)) ** 2
    return 0.5 * sq.sum(dim=-1) + x.shape[-1] * (log_sigma + 0.5 * _LOG_2PI)


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
