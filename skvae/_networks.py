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


def make_mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """MLP mapping a curve to the mean and log-variance of a diagonal Gaussian posterior."""

    def __init__(self, n_features: int, hidden: list[int], latent_dims: int, activation: str):
        super().__init__()
        self.body = make_mlp([n_features, *hidden], activation)
        self.body.append(ACTIVATIONS[activation]())
        self.mean = nn.Linear(hidden[-1], latent_dims)
        self.logvar = nn.Linear(hidden[-1], latent_dims)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        raw = self.logvar(h)
        return self.mean(h), LOGVAR_BOUND * torch.tanh(raw / LOGVAR_BOUND)


class Decoder(nn.Module):
    """MLP mapping a latent code to a curve (the mean of the Gaussian likelihood)."""

    def __init__(self, latent_dims: int, hidden: list[int], n_features: int, activation: str):
        super().__init__()
        self.net = make_mlp([latent_dims, *hidden, n_features], activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VAEModule(nn.Module):
    """Encoder, decoder and the observation noise of the Gaussian likelihood.

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
        Fixed observation noise standard deviation, or None to learn one shared σ.
    """

    def __init__(
        self,
        n_features: int,
        hidden: list[int],
        latent_dims: int,
        activation: str,
        noise: float | None,
    ):
        super().__init__()
        # Construction draws default initial weights from torch's global generator; do it
        # in a forked RNG so that user code's global random stream is left untouched.
        # The estimator then calls ``reset_parameters`` with its own generator.
        with torch.random.fork_rng(devices=[]):
            self.encoder = Encoder(n_features, hidden, latent_dims, activation)
            self.decoder = Decoder(latent_dims, hidden[::-1], n_features, activation)
        log_sigma = torch.tensor(0.0 if noise is None else math.log(noise))
        if noise is None:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

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
