"""The matching problem of LatentMatcher: its objective, encoder start points, one thread.

Everything here is deterministic and row-independent: decoder and encoder calls see
fixed-size chunks, so a target's result does not depend on the batch it is matched in.
The matcher sees the VAE only through its latent-model contract (``vae.latent_model()``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from scipy.stats import qmc
from sklearn.utils import check_random_state
from torch import nn
from torch.nn import functional as F

from .._torch.networks import Residual
from .laplace import gauss_newton_polish, laplace_covariance

#: Rows per decoder call on the CPU. Fixed, so every point's objective value is
#: bit-identical whatever the batch it is evaluated in (row-independent, deterministic).
CPU_CHUNK_SIZE = 256
#: Refinements of partial targets' encoder fill (see :func:`encoder_start`).
N_REFINE = 4
_FLOAT32_MAX = float(np.finfo(np.float32).max)


#: In-place forms of the activations an MLP decoder may use (bit-identical to the modules).
_IN_PLACE = {
    nn.Tanh: lambda m, x: x.tanh_(),
    nn.ReLU: lambda m, x: x.relu_(),
    nn.SiLU: lambda m, x: F.silu(x, inplace=True),
    nn.ELU: lambda m, x: F.elu(x, m.alpha, inplace=True),
    nn.GELU: lambda m, x: torch._C._nn.gelu(x, approximate=m.approximate, out=x),
    nn.Softplus: lambda m, x: torch._C._nn.softplus(x, m.beta, m.threshold, out=x),
}


class BufferedDecoder:
    """The decoder on chunks of a fixed size, writing into buffers allocated once.

    Decoding allocates each layer's output afresh; with glibc's trim and mmap thresholds
    fixed (``MALLOC_TRIM_THRESHOLD_``, as Dask workers set it) every such block is mapped
    and unmapped at each call, which made matching several times slower. When the
    decoder is a plain MLP (a sequence of linear layers and known activations) its layers
    run here with ``out=`` buffers and in-place activations; the plan is used only if it
    reproduces the module's output bit for bit, otherwise the module is called.

    Parameters
    ----------
    decoder : torch.nn.Module
        Maps (size, latent_dims) float32 codes to (size, n_features) curves.
    probe : Tensor of shape (size, latent_dims)
        A chunk to check the plan on.
    """

    def __init__(self, decoder: nn.Module, probe: torch.Tensor):
        self.decoder = decoder
        self.plan = self._plan(decoder, probe)

    @staticmethod
    def _plan(decoder: nn.Module, probe: torch.Tensor) -> list | None:
        children = list(decoder.children())
        if isinstance(decoder, nn.Sequential):
            layers = list(decoder)  # iterating keeps repeated modules, children() does not
        elif len(children) == 1 and isinstance(children[0], nn.Sequential):
            layers = list(children[0])
        else:
            return None

        def buffer(linear: nn.Linear) -> torch.Tensor:
            shape = (probe.shape[0], linear.out_features)
            return torch.empty(shape, dtype=probe.dtype, device=probe.device)

        def plain(linear) -> bool:
            return isinstance(linear, nn.Linear) and linear.bias is not None

        steps = []
        for layer in layers:
            if plain(layer):
                steps.append(("linear", layer, buffer(layer)))
            elif type(layer) in _IN_PLACE:
                steps.append(("activation", layer, None))
            elif (
                isinstance(layer, Residual)
                and plain(layer.linear)
                and type(layer.activation) in _IN_PLACE
            ):
                steps.append(("residual", layer, buffer(layer.linear)))
            else:
                return None
        if not steps or steps[0][0] != "linear":  # the input chunk is never written to
            return None
        return steps

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.plan is None:
            return self.decoder(z)
        x = z
        for kind, layer, buffer in self.plan:
            if kind == "linear":
                x = torch.addmm(layer.bias, x, layer.weight.t(), out=buffer)
            elif kind == "activation":
                _IN_PLACE[type(layer)](layer, x)
            else:  # h + act(W h + b), h overwritten in place
                linear = layer.linear
                h = torch.addmm(linear.bias, x, linear.weight.t(), out=buffer)
                x += _IN_PLACE[type(layer.activation)](layer.activation, h)
        return x

    def check(self, probe: torch.Tensor) -> None:
        """Drop the plan unless it gives the module's output bit for bit on ``probe``."""
        if self.plan is not None:
            with torch.no_grad():
                if not torch.equal(self(probe), self.decoder(probe)):
                    self.plan = None


def chunk_size_for(model) -> int:
    """Rows per decoder call when matching with ``model`` (a LatentModel)."""
    return min(CPU_CHUNK_SIZE, model.chunk_size) if model.device.type == "cpu" else model.chunk_size


class Objective:
    """The matching objective for many (point, target row) pairs.

    ``"l2"``: ``f(z) = ‖m ⊙ (g(z) − x)‖₂ + λ/2 ‖z‖²`` (data units); ``"posterior"``:
    ``f(z) = ‖m ⊙ (g(z) − x)‖² / (2σ²) + ‖z‖²/2``, the negative log-posterior up to a
    constant (in nats; the same in data or model units once σ is converted).

    Targets are scaled to the decoder's units once and kept on the model's device; points
    are decoded in fixed chunks of ``chunk_size`` rows (float32, the decoder's precision,
    zero-padded) and their squared errors summed in float64 in buffers allocated once,
    so that targets far from the training curves give a large, finite value and the
    inner loop does not allocate large blocks.

    Parameters
    ----------
    model : LatentModel
        The fitted VAE's latent model (``vae.latent_model()``).
    X : ndarray of shape (n_targets, n_features)
        Target curves in data units; NaN marks missing points.
    prior_weight : float
        Weight ``λ`` of the prior term of the ``"l2"`` objective.
    kind : {"l2", "posterior"}, default="l2"
        Which objective.
    sigma : float, default=None
        Observation noise standard deviation in data units (``"posterior"`` only).
    chunk_size : int, default=None
        Rows per decoder call; None means :func:`chunk_size_for` the model.

    Raises
    ------
    ValueError
        If observed target values, centred and scaled like the training curves, are too
        large for float32, in which the decoder computes.
    """

    def __init__(
        self,
        model,
        X: np.ndarray,
        prior_weight: float,
        chunk_size: int | None = None,
        *,
        kind: str = "l2",
        sigma: float | None = None,
    ):
        observed = ~np.isnan(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported just below
            targets = np.where(observed, model.scaler.to_model(X), 0.0)
        if not np.all(np.abs(targets) <= _FLOAT32_MAX):
            raise ValueError(
                "X has values too large in magnitude to match: centred and scaled like the "
                f"training curves (scale {model.scaler.scale:g}) they overflow float32, in "
                "which the fitted decoder computes. Check that X is in the training curves' "
                "units."
            )
        device = model.device
        self.device = device
        self.targets = torch.as_tensor(targets, dtype=torch.float64, device=device)
        self.mask = (
            None
            if observed.all()
            else torch.as_tensor(observed, dtype=torch.float64, device=device)
        )
        self.scale = float(model.scaler.scale)
        self.prior_weight = float(prior_weight)
        self.kind = kind
        #: Noise in model units (the decoder's), where residuals are summed.
        self.sigma_model = None if sigma is None else float(sigma) / self.scale
        if kind == "posterior" and self.sigma_model is None:
            raise ValueError("The posterior objective needs the observation noise sigma.")
        size = chunk_size_for(model) if chunk_size is None else int(chunk_size)
        self.chunk_size = size
        n_features, d = X.shape[1], model.latent_dims
        self._z = torch.zeros((size, d), dtype=torch.float32, device=device)
        self._rows = torch.zeros(size, dtype=torch.int64, device=device)
        self._diff = torch.empty((size, n_features), dtype=torch.float64, device=device)
        self._gathered = torch.empty_like(self._diff)
        self._sums = torch.empty(size, dtype=torch.float64, device=device)
        probe = torch.linspace(-3.0, 3.0, size * d, device=device).reshape(size, d)
        self.decoder = model.decoder
        self.noise_model = float(model.noise) / self.scale
        self.decode = BufferedDecoder(model.decoder, probe)
        self.decode.check(probe)

    @torch.no_grad()
    def residuals(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """L2 norm, in data units, of ``decode(Z[i]) - X[rows[i]]`` over observed points."""
        return self.squared_errors(Z, rows).sqrt_().mul_(self.scale)

    @torch.no_grad()
    def squared_errors(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Squared L2 norm, in model units, of ``decode(Z[i]) - X[rows[i]]`` (observed)."""
        n, size = Z.shape[0], self._z.shape[0]
        out = torch.empty(n, dtype=torch.float64, device=self.device)
        for start in range(0, n, size):
            stop = min(start + size, n)
            if stop - start < size:  # zero-padded last chunk
                self._z.zero_()
                self._rows.zero_()
            self._z[: stop - start] = Z[start:stop]
            self._rows[: stop - start] = rows[start:stop]
            self._diff.copy_(self.decode(self._z))
            self._diff -= torch.index_select(self.targets, 0, self._rows, out=self._gathered)
            if self.mask is not None:
                self._diff *= torch.index_select(self.mask, 0, self._rows, out=self._gathered)
            torch.sum(self._diff.square_(), dim=1, out=self._sums)
            out[start:stop] = self._sums[: stop - start]
        return out

    def __call__(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.kind == "posterior":
            values = self.squared_errors(Z, rows)
            values /= 2 * self.sigma_model**2
            return values.add_(squared_norms(Z), alpha=0.5)
        values = self.residuals(Z, rows)
        if self.prior_weight:
            values += 0.5 * self.prior_weight * squared_norms(Z)
        return values


def squared_norms(Z: torch.Tensor) -> torch.Tensor:
    """``‖z‖²`` of each row, summed in order (a row's value does not depend on the batch)."""
    out = Z[:, 0] * Z[:, 0]
    for j in range(1, Z.shape[1]):
        out += Z[:, j] * Z[:, j]
    return out


def encode(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of complete curves (row-independent)."""
    return model.encode(
        X,
        non_finite_error=(
            "Encoding the targets produced non-finite values: X has values too large in "
            "magnitude for the fitted VAE. Check that X is in the training curves' units."
        ),
    )


def encoder_start(
    model, X: np.ndarray, observed: np.ndarray, n_refine: int = N_REFINE
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std of the targets, whose missing points are filled with the
    mean curve, then ``n_refine`` times with the decoded curve of the current code."""
    filled = np.where(observed, X, model.scaler.mean)
    partial = np.flatnonzero(~observed.all(axis=1))
    for _ in range(n_refine if partial.size else 0):
        decoded = model.decode(encode(model, filled[partial])[0])
        filled[partial] = np.where(observed[partial], X[partial], decoded)
    return encode(model, filled)


def _mask(objective: Objective) -> torch.Tensor | None:
    return None if objective.mask is None else objective.mask.bool()


def polish(
    objective: Objective,
    codes: torch.Tensor,
    values: torch.Tensor,
    rows: torch.Tensor,
    n_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Newton steps on the posterior from ``codes`` (with objective ``values`` at
    the target ``rows``), kept where the objective drops: the codes and their values."""
    polished = gauss_newton_polish(
        objective.decoder,
        codes,
        objective.targets,
        _mask(objective),
        objective.sigma_model,
        n_steps,
        objective.chunk_size,
    ).to(torch.float64)
    polished_values = objective(polished, rows)
    better = polished_values <= values
    return (
        torch.where(better[:, None], polished, codes),
        torch.where(better, polished_values, values),
    )


def covariance(objective: Objective, codes: torch.Tensor) -> torch.Tensor:
    """Laplace covariance of the posterior at ``codes`` (one per target row, in order),
    with the objective's noise, or the VAE's for the L2 objective."""
    sigma = objective.noise_model if objective.sigma_model is None else objective.sigma_model
    return laplace_covariance(
        objective.decoder, codes, objective.targets, _mask(objective), sigma, objective.chunk_size
    )


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
