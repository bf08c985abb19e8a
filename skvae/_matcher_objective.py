"""The matching problem of LatentMatcher: its objective, encoder start points, one thread.

Everything here is deterministic and row-independent: decoder and encoder calls see
fixed-size chunks, so a target's result does not depend on the batch it is matched in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ._inference import apply_in_chunks

#: Rows per decoder call. Fixed, so every point's objective value is bit-identical
#: whatever the batch it is evaluated in (row-independent, deterministic results).
CHUNK_SIZE = 256
#: Refinements of partial targets' encoder fill (see :func:`encoder_start`).
N_REFINE = 4
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Objective:
    """``f(z) = ‖m ⊙ (decode(z) − x)‖₂ + λ/2 ‖z‖²`` for many (point, target row) pairs.

    Targets are scaled to the decoder's units once; points are decoded in fixed chunks of
    ``CHUNK_SIZE`` rows (float32, the decoder's precision) and their squared errors summed
    in float64, so that targets far from the training curves give a large, finite value.

    Parameters
    ----------
    vae : BetaCurveVAE
        The fitted VAE whose decoder is searched.
    X : ndarray of shape (n_targets, n_features)
        Target curves in data units; NaN marks missing points.
    prior_weight : float
        Weight ``λ`` of the prior term.

    Raises
    ------
    ValueError
        If observed target values, centred and scaled like the training curves, are too
        large for float32, in which the decoder computes.
    """

    def __init__(self, vae, X: np.ndarray, prior_weight: float):
        observed = ~np.isnan(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported just below
            targets = np.where(observed, (X - vae.mean_) / vae.scale_, 0.0)
        if not np.all(np.abs(targets) <= _FLOAT32_MAX):
            raise ValueError(
                "X has values too large in magnitude to match: centred by mean_ and divided "
                f"by scale_={vae.scale_:g} they overflow float32, in which the fitted decoder "
                "computes. Check that X is in the training curves' units."
            )
        self.targets = torch.as_tensor(targets, dtype=torch.float64)
        self.mask = None if observed.all() else torch.as_tensor(observed, dtype=torch.float64)
        self.decoder = vae.decoder_
        self.scale = float(vae.scale_)
        self.prior_weight = float(prior_weight)

    @torch.no_grad()
    def residuals(self, Z: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """L2 norm, in data units, of ``decode(Z[i]) - X[rows[i]]`` over observed points."""
        n = Z.shape[0]
        out = np.empty(n, dtype=np.float64)
        z = torch.zeros((CHUNK_SIZE, Z.shape[1]), dtype=torch.float32)
        index = torch.zeros(CHUNK_SIZE, dtype=torch.long)
        for start in range(0, n, CHUNK_SIZE):
            stop = min(start + CHUNK_SIZE, n)
            z.zero_()
            index.zero_()
            z[: stop - start] = torch.from_numpy(np.ascontiguousarray(Z[start:stop]))
            index[: stop - start] = torch.from_numpy(np.asarray(rows[start:stop]))
            diff = self.decoder(z).double() - self.targets[index]
            if self.mask is not None:
                diff *= self.mask[index]
            out[start:stop] = diff.square_().sum(dim=1)[: stop - start].numpy()
        return np.sqrt(out) * self.scale

    def __call__(self, Z: np.ndarray, rows: np.ndarray) -> np.ndarray:
        values = self.residuals(Z, rows)
        if self.prior_weight:
            values += 0.5 * self.prior_weight * np.einsum("ij,ij->i", Z, Z)
        return values


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the caller's setting (as KMeans limits BLAS).

    The decoder calls are small: several threads synchronise at every operation, which
    is slower, and orders of magnitude slower when other processes share the cores.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


def encode(vae, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of complete curves (row-independent)."""
    d = vae._n_features_out
    out = apply_in_chunks(
        lambda t: torch.cat(vae.encoder_(t), dim=1), X, 2 * d, prepare=vae._scale_in
    )
    if not np.all(np.isfinite(out)):
        raise ValueError(
            "Encoding the targets produced non-finite values: X has values too large in "
            "magnitude for the fitted VAE. Check that X is in the training curves' units."
        )
    return out[:, :d], np.exp(0.5 * out[:, d:])


def encoder_start(
    vae, X: np.ndarray, observed: np.ndarray, n_refine: int = N_REFINE
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std of the targets, whose missing points are filled with the
    mean curve, then ``n_refine`` times with the decoded curve of the current code."""
    filled = np.where(observed, X, vae.mean_)
    partial = np.flatnonzero(~observed.all(axis=1))
    for _ in range(n_refine if partial.size else 0):
        decoded = vae._decode(encode(vae, filled[partial])[0])
        filled[partial] = np.where(observed[partial], X[partial], decoded)
    return encode(vae, filled)
