"""The inputs of the Laplace functions, checked and laid out in chunks.

:class:`_Problem` validates the codes, targets, mask and noise, casts them to the
accumulation dtype (float64, float32 on devices without float64) and pads them with zero
rows to whole chunks of ``chunk_size`` rows on the decoder's device; :func:`_chunks`
walks those chunks, so that every decoder call sees the same number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from numbers import Integral, Real

import torch

#: A decoder: maps codes of shape (c, d) to curves of shape (c, D), row by row.
Decoder = Callable[[torch.Tensor], torch.Tensor]


def _decoder_dtype_device(decoder: Decoder, Z: torch.Tensor) -> tuple[torch.dtype, torch.device]:
    """dtype and device of the decoder's parameters (Z's when it has none)."""
    parameters = getattr(decoder, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    if first is None:
        dtype = Z.dtype if Z.dtype.is_floating_point else torch.get_default_dtype()
        return dtype, Z.device
    return first.dtype, first.device


def _accumulation_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


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
        raise ValueError(f"{name} has {T.shape[0]} rows, expected {n_rows} (one per code).")
    if n_cols is not None and T.shape[1] != n_cols:
        raise ValueError(f"{name} has {T.shape[1]} columns, expected {n_cols}.")
    return T


def _padded(T: torch.Tensor, n_padded: int, dtype: torch.dtype, device) -> torch.Tensor:
    """``T`` cast and moved, with zero rows appended up to ``n_padded`` rows."""
    out = torch.zeros((n_padded, *T.shape[1:]), dtype=dtype, device=device)
    out[: T.shape[0]] = T.to(device=device, dtype=dtype)
    return out


def _chunks(n_padded: int, chunk_size: int) -> Iterator[slice]:
    for start in range(0, n_padded, chunk_size):
        yield slice(start, start + chunk_size)


class _Problem:
    """Codes, targets, mask and noise, validated, padded to whole chunks, on the decoder's device.

    Missing points (mask 0, or a non-finite target) have target 0 and weight 0, so that
    they contribute exactly nothing, whatever the decoder returns there.
    """

    def __init__(self, decoder, Z, targets, mask, sigma, chunk_size):
        Z = _as_matrix("Z", Z)
        if not (Z.dtype.is_floating_point or Z.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"Z must be a floating point tensor, got dtype {Z.dtype}.")
        self.n, self.d = Z.shape
        self.chunk_size = _check_chunk_size(chunk_size)
        self.n_padded = -(-self.n // self.chunk_size) * self.chunk_size
        self.dtype, self.device = _decoder_dtype_device(decoder, Z)
        self.acc = _accumulation_dtype(self.device)
        self.decoder = decoder
        self.Z = _padded(Z, self.n_padded, self.acc, self.device)
        if targets is not None:
            targets = _as_matrix("targets", targets, n_rows=self.n)
            self.D = targets.shape[1]
            x = _padded(targets, self.n_padded, self.acc, self.device)
            weight = torch.isfinite(x)
            if mask is not None:
                mask = _as_matrix("mask", mask, n_rows=self.n, n_cols=self.D)
                weight &= _padded(mask, self.n_padded, torch.bool, self.device)
            self.x = torch.where(weight, x, torch.zeros((), dtype=self.acc, device=self.device))
            self.inv_sigma = self._inverse_sigma(sigma)
            # m / σ per point: the whitened residual is w ⊙ (g(z) - x).
            self.w = weight.to(self.acc) * self.inv_sigma

    def _inverse_sigma(self, sigma) -> torch.Tensor:
        if isinstance(sigma, Real) and not isinstance(sigma, bool):
            values = torch.full((self.n,), float(sigma), dtype=self.acc, device=self.device)
        elif isinstance(sigma, torch.Tensor) and sigma.numel() in (1, self.n) and sigma.ndim <= 1:
            values = sigma.to(device=self.device, dtype=self.acc).expand(self.n)
        else:
            raise TypeError(
                "sigma must be a positive number or a tensor of shape (n,) with one noise "
                f"level per code, got {sigma!r}."
            )
        if not bool(torch.all(torch.isfinite(values) & (values > 0))):
            raise ValueError(f"sigma must be positive and finite, got {sigma!r}.")
        inv = torch.ones((self.n_padded, 1), dtype=self.acc, device=self.device)
        inv[: self.n, 0] = 1.0 / values
        return inv

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.to(self.dtype)).to(self.acc)

    def energy(self, rows: slice, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Negative log-posterior (up to a constant) of each row of a chunk."""
        r = self.w[rows] * (g - self.x[rows])
        return 0.5 * (r.square().sum(dim=1) + z.square().sum(dim=1))
