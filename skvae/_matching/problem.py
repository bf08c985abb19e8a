r"""The match problem: targets, observed points and noise, and the objective of a code.

A target curve ``x`` with observed points ``m`` (a 0/1 mask) and a code ``z`` have, up to
a constant, the negative log-posterior (in nats)

.. math::

    E(z) = \frac{\lVert m \odot (g(z) - x) \rVert^2}{2 \sigma^2} + \frac{\lVert z \rVert^2}{2}

with ``g`` the decoder and ``σ`` the observation noise, both in the decoder's (model)
units. :class:`MatchProblem` holds the targets, the mask and ``σ`` once, on the decoder's
device, and evaluates ``E`` (:meth:`MatchProblem.energy`) or the L2 objective
``‖m ⊙ (g(z) − x)‖ + λ/2 ‖z‖²`` in data units for many (code, target row) pairs. Nelder-Mead
calls it at every step; the Laplace covariance and the Gauss-Newton polish
(:mod:`skvae._matching.laplace`) work on the same problem.

Everything here is deterministic and row-independent: codes are decoded in fixed-size
zero-padded chunks (:func:`skvae._chunks.apply_to_tensors`) in buffers allocated once, so a
code's value does not depend on the batch it is evaluated in, and the inner loop does not
allocate. Squared errors are summed in float64 (float32 on devices without float64), so
that targets far from the training curves give a large, finite value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._chunks import apply_to_tensors
from .._torch.networks import Residual

#: A function from codes of shape (c, d) to curves of shape (c, D), row by row.
CodesToCurves = Callable[[torch.Tensor], torch.Tensor]

#: Noise, relative to the curves' scale, within which ``1 / σ²`` and the whitened
#: Jacobians ``J / σ`` of the Laplace approximation stay far from float64's range.
NOISE_RANGE = (1e-100, 1e100)
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
    and unmapped at each call, which makes matching several times slower. When the
    decoder is a plain MLP (a sequence of linear layers and known activations), possibly
    with a bias-free linear path of the code added to its output (``module.linear``), its
    layers run here with ``out=`` buffers and in-place activations; the plan is used only if it
    reproduces the module's output bit for bit on a probe, otherwise the module is called.

    Parameters
    ----------
    module : torch.nn.Module or callable
        Maps (size, latent_dims) codes to (size, n_features) curves.
    probe : Tensor of shape (size, latent_dims)
        A chunk to plan and check the plan on.
    """

    def __init__(self, module: CodesToCurves, probe: torch.Tensor):
        self.module = module
        self.plan = self._plan(module, probe) if isinstance(module, nn.Module) else None
        if self.plan is not None:
            with torch.no_grad():
                if not torch.equal(self(probe), module(probe)):
                    self.plan = None

    @staticmethod
    def _plan(module: nn.Module, probe: torch.Tensor) -> list | None:
        linear_path = getattr(module, "linear", None)
        children = [child for child in module.children() if child is not linear_path]
        if linear_path is not None and not (
            isinstance(linear_path, nn.Linear) and linear_path.bias is None
        ):
            return None
        if isinstance(module, nn.Sequential):
            layers = list(module)  # iterating keeps repeated modules, children() does not
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
        if linear_path is not None:
            steps.append(("linear path", linear_path, buffer(linear_path)))
        return steps

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.plan is None:
            return self.module(z)
        x = z
        for kind, layer, buffer in self.plan:
            if kind == "linear":
                x = torch.addmm(layer.bias, x, layer.weight.t(), out=buffer)
            elif kind == "activation":
                _IN_PLACE[type(layer)](layer, x)
            elif kind == "linear path":  # the MLP's output plus W z, as the module adds them
                x += torch.mm(z, layer.weight.t(), out=buffer)
            else:  # h + act(W h + b), h overwritten in place
                linear = layer.linear
                h = torch.addmm(linear.bias, x, linear.weight.t(), out=buffer)
                x += _IN_PLACE[type(layer.activation)](layer.activation, h)
        return x


def squared_norms(Z: torch.Tensor) -> torch.Tensor:
    """``‖z‖²`` of each row, summed in order (a row's value does not depend on the batch)."""
    out = Z[:, 0] * Z[:, 0]
    for j in range(1, Z.shape[1]):
        out += Z[:, j] * Z[:, j]
    return out


def check_noise(noise: float, scale: float, name: str = "noise") -> float:
    """``noise`` (data units) in model units, or a ValueError if it is out of range."""
    low, high = NOISE_RANGE
    ratio_log10 = math.log10(noise) - math.log10(scale) if noise > 0 else -math.inf
    if not math.log10(low) <= ratio_log10 <= math.log10(high):
        raise ValueError(
            f"{name}={noise!r} is out of the range the posterior can be computed in: "
            f"relative to the curves' scale ({scale:g}) it must be within [{low:g}, {high:g}], "
            f"that is {name} in [{low * scale:g}, {high * scale:g}]."
        )
    return noise / scale


def _check_chunk_size(chunk_size) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    return int(chunk_size)


def _as_matrix(name: str, T, n_rows: int | None = None, n_cols: int | None = None) -> torch.Tensor:
    if not isinstance(T, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(T).__name__}.")
    if T.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(T.shape)}.")
    if n_rows is not None and T.shape[0] != n_rows:
        raise ValueError(f"{name} has {T.shape[0]} rows, expected {n_rows} (one per target).")
    if n_cols is not None and T.shape[1] != n_cols:
        raise ValueError(f"{name} has {T.shape[1]} columns, expected {n_cols}.")
    return T


def decoder_dtype_device(decoder: CodesToCurves) -> tuple[torch.dtype, torch.device]:
    """dtype and device of the decoder's parameters (the defaults when it has none)."""
    parameters = getattr(decoder, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    if first is None:
        return torch.get_default_dtype(), torch.device("cpu")
    return first.dtype, first.device


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64, where sums of squares and Hessians are accumulated (float32 on MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


class MatchProblem:
    """Target curves, their observed points and the noise, in model units, with a decoder.

    Missing points (mask False, or a non-finite target) have target 0 and weight 0, so
    that they contribute exactly nothing, whatever the decoder returns there. Codes are
    paired with target rows by index (``rows``), so many codes (several starts, simplex
    vertices) can be scored against the same target.

    Parameters
    ----------
    decoder : torch.nn.Module or callable
        Maps codes of shape (c, d) to curves of shape (c, D) in model units, row by row.
    targets : torch.Tensor of shape (n_targets, D)
        Target curves in model units; non-finite entries are missing points.
    mask : torch.Tensor of shape (n_targets, D) or None
        True (or 1) where a point is observed; None: every finite point is observed.
    sigma : float
        Observation noise standard deviation in model units.
    chunk_size : int
        Rows per decoder call.
    kind : {"posterior", "l2"}, default="posterior"
        What :meth:`__call__` evaluates: the negative log-posterior :meth:`energy`, or the
        L2 distance in data units plus ``prior_weight / 2 ‖z‖²``.
    prior_weight : float, default=0.0
        ``λ`` of the L2 objective.
    scale : float, default=1.0
        Data units per model unit (the L2 objective and :meth:`residuals` are in data
        units).

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.problem import MatchProblem
    >>> decoder = torch.nn.Linear(2, 3).double()
    >>> Z = torch.zeros(1, 2, dtype=torch.float64)
    >>> problem = MatchProblem(decoder, decoder(Z).detach() + 0.1, None, 0.1, chunk_size=8)
    >>> round(float(problem.energy(Z, torch.tensor([0]))[0]), 6)
    1.5
    """

    def __init__(
        self,
        decoder: CodesToCurves,
        targets: torch.Tensor,
        mask: torch.Tensor | None,
        sigma: float,
        chunk_size: int,
        *,
        kind: str = "posterior",
        prior_weight: float = 0.0,
        scale: float = 1.0,
    ):
        targets = _as_matrix("targets", targets)
        if isinstance(sigma, bool) or not isinstance(sigma, Real):
            raise TypeError(f"sigma must be a positive number, got {sigma!r}.")
        if not 0 < sigma < math.inf:
            raise ValueError(f"sigma must be positive and finite, got {sigma!r}.")
        self.chunk_size = _check_chunk_size(chunk_size)
        self.decoder = decoder
        self.dtype, self.device = decoder_dtype_device(decoder)
        self.acc = accumulation_dtype(self.device)
        self.kind, self.prior_weight, self.scale = kind, float(prior_weight), float(scale)
        self.sigma = float(sigma)
        self.n_targets, self.n_features = targets.shape
        x = targets.to(device=self.device, dtype=self.acc)
        observed = torch.isfinite(x)
        if mask is not None:
            mask = _as_matrix("mask", mask, n_rows=self.n_targets, n_cols=self.n_features)
            observed &= mask.to(device=self.device, dtype=torch.bool)
        zero = torch.zeros((), dtype=self.acc, device=self.device)
        #: Targets with 0 at missing points, and the 0/1 weights of observed points (None
        #: when every point is observed).
        self.targets = torch.where(observed, x, zero)
        self.weights = None if bool(observed.all()) else observed.to(self.acc)
        self._z = None  # buffers, allocated once for the codes' width

    @classmethod
    def from_curves(
        cls,
        model,
        X: np.ndarray,
        sigma: float,
        *,
        kind: str,
        prior_weight: float,
        chunk_size: int | None = None,
    ) -> MatchProblem:
        """The problem of matching curves ``X`` (data units, NaN missing) with ``model``.

        ``model`` is a fitted VAE's :class:`~skvae._latent_model.LatentModel`; ``sigma``
        is the noise in model units (see :func:`check_noise`); ``chunk_size`` defaults to
        the model's.

        Raises
        ------
        ValueError
            If observed target values, centred and scaled like the training curves, are
            too large for float32, in which the decoder computes.
        """
        scale = float(model.scaler.scale)
        with np.errstate(over="ignore", invalid="ignore"):  # reported just below
            targets = model.scaler.to_model(X)
        if not np.all(np.abs(targets[~np.isnan(X)]) <= _FLOAT32_MAX):
            raise ValueError(
                "X has values too large in magnitude to match: centred and scaled like the "
                f"training curves (scale {scale:g}) they overflow float32, in which the "
                "fitted decoder computes. Check that X is in the training curves' units."
            )
        return cls(
            model.decoder,
            torch.as_tensor(targets, dtype=torch.float64),
            None,
            sigma,
            model.chunk_size if chunk_size is None else chunk_size,
            kind=kind,
            prior_weight=prior_weight,
            scale=scale,
        )

    def _allocate_buffers(self, d: int) -> None:
        size, device = self.chunk_size, self.device
        if self._z is not None and self._z.shape[1] == d:
            return
        self._z = torch.zeros((size, d), dtype=self.dtype, device=device)
        self._rows = torch.zeros(size, dtype=torch.int64, device=device)
        self._diff = torch.empty((size, self.n_features), dtype=self.acc, device=device)
        self._gathered = torch.empty_like(self._diff)
        self._sums = torch.empty(size, dtype=self.acc, device=device)
        probe = torch.linspace(-3.0, 3.0, size * d, dtype=self.dtype, device=device)
        self.buffered_decoder = BufferedDecoder(self.decoder, probe.reshape(size, d))

    def _squared_errors_of_chunk(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        self._diff.copy_(self.buffered_decoder(z))
        self._diff -= torch.index_select(self.targets, 0, rows, out=self._gathered)
        if self.weights is not None:
            self._diff *= torch.index_select(self.weights, 0, rows, out=self._gathered)
        return torch.sum(self._diff.square_(), dim=1, out=self._sums)

    @torch.no_grad()
    def squared_errors(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``‖m ⊙ (g(Z[i]) − x[rows[i]])‖²`` in model units, one per code."""
        self._allocate_buffers(Z.shape[1])
        out = torch.empty(Z.shape[0], dtype=self.acc, device=self.device)
        return apply_to_tensors(
            self._squared_errors_of_chunk, (Z, rows), (self._z, self._rows), out
        )

    @torch.no_grad()
    def residuals(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """L2 norm, in data units, of ``g(Z[i]) − x[rows[i]]`` over the observed points."""
        return self.squared_errors(Z, rows).sqrt_().mul_(self.scale)

    @torch.no_grad()
    def energy(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The negative log-posterior ``E`` of each code given its target row."""
        values = self.squared_errors(Z, rows)
        values /= 2 * self.sigma**2
        return values.add_(squared_norms(Z.to(self.acc)), alpha=0.5)

    @torch.no_grad()
    def best_of_curves(
        self, codes: torch.Tensor, curves: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        """For each target row in ``rows``, the index of the code of lowest objective.

        ``curves`` (model units) are ``g(codes)``, decoded once by the caller, so scoring a
        shared set of codes against many targets costs no decoding: the squared errors over
        the observed points come from matrix products (targets are 0 at their missing
        points), in the decoder's precision, less each target's constant ``‖m ⊙ x‖²``.
        Ranks are therefore approximate where two codes' objectives nearly tie; evaluate
        the chosen codes with :meth:`__call__` for exact values.
        """
        curves = curves.to(self.dtype)
        targets = self.targets[rows].to(self.dtype)
        square = curves * curves
        if self.weights is None:
            bias = torch.sum(square, dim=1).expand(len(rows), -1)
        else:
            bias = self.weights[rows].to(self.dtype) @ square.T
        norms = squared_norms(codes.to(self.dtype))
        if self.kind == "posterior":  # 2 σ² E(z) − ‖m ⊙ x‖²
            bias = bias + self.sigma**2 * norms
        scores = torch.addmm(bias, targets, curves.T, alpha=-2.0)
        if self.kind == "l2" and self.prior_weight:
            errors = scores + torch.sum(targets * targets, dim=1, keepdim=True)
            scores = errors.clamp_(min=0.0).sqrt_().mul_(self.scale)
            scores += 0.5 * self.prior_weight * norms
        return torch.argmin(scores, dim=1)

    @torch.no_grad()
    def __call__(self, Z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The objective (``kind``) of each code given its target row."""
        if self.kind == "posterior":
            return self.energy(Z, rows)
        values = self.residuals(Z, rows)
        if self.prior_weight:
            values += 0.5 * self.prior_weight * squared_norms(Z.to(self.acc))
        return values
