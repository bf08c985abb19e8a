"""The out-of-core fit on a dask array: held-out blocks, streamed batches, validation.

:func:`split_blocks` holds out whole row blocks for early stopping,
:class:`DaskBlockBatches` streams the training blocks in shuffled order (a ``BatchSource``
of the training loop) and :func:`dask_validation_scorer` scores the held-out blocks;
:func:`dask_training_data` puts them together for the estimator. Nothing here imports
dask: the blocks are dask arrays that the caller made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ._dask import _invalid_values_error, check_dask_curves

__all__ = ["DaskBlockBatches", "dask_training_data", "dask_validation_scorer", "split_blocks"]

#: Rows per forward pass when scoring held-out blocks (bounds the memory of the sigma points).
SCORE_CHUNK = 4096


def split_blocks(dX: Any, validation_fraction: float | None, rng) -> tuple[list, list]:
    """Split the row blocks of ``dX`` into training and held-out validation blocks.

    Whole blocks are held out (a block is the unit that is read): blocks are drawn in
    random order while adding one brings the held-out rows closer to
    ``validation_fraction`` of all rows, keeping at least one block on each side.

    Parameters
    ----------
    dX : dask.array.Array of shape (n_samples, n_features)
        Curves; rechunked to one block along the columns when needed.
    validation_fraction : float or None
        Fraction of rows to hold out; None or 0 holds out nothing.
    rng : numpy.random.RandomState or numpy.random.Generator
        Draws which blocks are held out.

    Returns
    -------
    train_blocks, val_blocks : list of dask.array.Array
        Single-block dask arrays, in the order of ``dX`` (``val_blocks`` may be empty).

    Raises
    ------
    ValueError
        If a validation set is asked for but ``dX`` has fewer than 2 row blocks, or has
        row blocks of unknown size.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import split_blocks
    >>> dX = da.zeros((100, 3), chunks=(10, 3))
    >>> train, val = split_blocks(dX, 0.2, np.random.RandomState(0))
    >>> len(train), len(val), sum(b.shape[0] for b in val)
    (8, 2, 20)
    """
    dX = check_dask_curves(dX)
    sizes = dX.chunks[0]
    if any(math.isnan(s) for s in sizes):
        raise ValueError(
            "X has row blocks of unknown size; call X.compute_chunk_sizes() before fitting."
        )
    blocks = [dX.blocks[i] for i in range(len(sizes))]
    if not validation_fraction:
        return blocks, []
    if len(sizes) < 2:
        raise ValueError(
            "early_stopping with a dask array holds out whole row blocks, but X has a "
            f"single block of {sizes[0]} rows: rechunk it into several row blocks, for "
            "example X.rechunk({0: n_rows_per_block}), or set early_stopping=False."
        )
    target = validation_fraction * sum(sizes)
    held, rows = set(), 0
    for index in rng.permutation(len(sizes)):
        size = sizes[index]
        if held and abs(rows + size - target) >= abs(rows - target):
            break  # adding this block would move the hold-out away from the target
        if len(held) == len(sizes) - 1:
            break
        held.add(int(index))
        rows += size
    train = [b for i, b in enumerate(blocks) if i not in held]
    val = [b for i, b in enumerate(blocks) if i in held]
    return train, val


def _load_block(block: Any, scaler, device: torch.device) -> torch.Tensor:
    """Compute one block and return it in model units as float32 on ``device``.

    Scaled in slices of rows, so that the float64 temporaries stay small beside the block.
    """
    values = np.asarray(block.compute(), dtype=np.float64)
    if not np.isfinite(values).all():
        raise _invalid_values_error()
    return scaler.to_model_tensor(values, device)


class DaskBlockBatches:
    """Mini-batches streamed from the row blocks of dask arrays (a ``BatchSource``).

    Each epoch visits the blocks in a random order and each block's rows in a random
    order; batches run across block boundaries, so every batch but an epoch's last has
    ``batch_size`` rows. The next block is computed in a background thread while the
    current one trains, so at most two blocks are held in memory.

    Parameters
    ----------
    blocks : sequence of dask.array.Array
        Row blocks of shape (n_rows_i, n_features) with known sizes.
    scaler : CurveScaler
        Maps curves to model units.
    device : torch.device or str, default="cpu"
        Where the batches go.

    Attributes
    ----------
    n_samples : int
        Total number of rows.
    n_features : int
        Number of columns.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import torch
    >>> from skvae._dask import DaskBlockBatches, dask_scaler, split_blocks
    >>> dX = da.from_array(np.random.default_rng(0).normal(size=(50, 4)), chunks=(20, 4))
    >>> train, _ = split_blocks(dX, None, None)
    >>> source = DaskBlockBatches(train, dask_scaler(dX))
    >>> [len(b) for b in source.batches(16, torch.Generator().manual_seed(0))]
    [16, 16, 16, 2]
    """

    def __init__(self, blocks: Sequence[Any], scaler, device: torch.device | str = "cpu"):
        if not blocks:
            raise ValueError("DaskBlockBatches needs at least one block.")
        self.blocks = list(blocks)
        self.scaler = scaler
        self.device = torch.device(device)
        self.sizes = [int(b.shape[0]) for b in self.blocks]
        self.n_samples = sum(self.sizes)
        self.n_features = int(self.blocks[0].shape[1])

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Yield one epoch of float32 batches in model units on the device.

        Parameters
        ----------
        batch_size : int
            Rows per batch (the epoch's last batch may be smaller).
        generator : torch.Generator
            CPU generator drawing the block order and the row orders.

        Yields
        ------
        batch : torch.Tensor of shape (n_rows, n_features)
        """
        order = torch.randperm(len(self.blocks), generator=generator).tolist()
        pending: list[torch.Tensor] = []
        n_pending = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(_load_block, self.blocks[order[0]], self.scaler, self.device)
            for position in range(len(order)):
                block = future.result()
                if position + 1 < len(order):
                    following = self.blocks[order[position + 1]]
                    future = pool.submit(_load_block, following, self.scaler, self.device)
                rows = torch.randperm(len(block), generator=generator).to(self.device)
                start = 0
                while start < len(block):
                    take = min(batch_size - n_pending, len(block) - start)
                    piece = block[rows[start : start + take]]
                    start += take
                    if take == batch_size:
                        yield piece
                        continue
                    pending.append(piece)
                    n_pending += take
                    if n_pending == batch_size:
                        yield torch.cat(pending)
                        pending, n_pending = [], 0
                del block
        if pending:
            yield torch.cat(pending)


def dask_validation_scorer(
    val_blocks: Sequence[Any],
    scaler,
    device: torch.device | str = "cpu",
    *,
    kl_weight: float = 1.0,
    cache: bool = False,
) -> Callable[[torch.nn.Module], torch.Tensor]:
    """A validation function: the ELBO per point of held-out blocks, in model units.

    The returned callable computes :func:`skvae._training.validation_elbo` (what the
    training loop tracks for early stopping) over all rows of ``val_blocks``, reading one
    block at a time, or from a float32 copy kept after the first call when ``cache``.

    Parameters
    ----------
    val_blocks : sequence of dask.array.Array
        Held-out row blocks.
    scaler : CurveScaler
        Maps curves to model units.
    device : torch.device or str, default="cpu"
        Where the evaluation runs.
    kl_weight : float, default=1.0
        Weight of the KL term (the estimator's ``kl_weight``).
    cache : bool, default=False
        Keep the held-out rows in memory after the first evaluation (for small hold-outs).

    Returns
    -------
    score : callable
        ``score(module)``: a 0-d float64 tensor on ``device`` (the training loop reads
        it back once per epoch, with the epoch's other numbers).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import dask_scaler, dask_validation_scorer
    >>> from skvae._networks import VAEModule
    >>> dX = da.from_array(np.random.default_rng(0).normal(size=(40, 6)), chunks=(10, 6))
    >>> score = dask_validation_scorer([dX.blocks[0], dX.blocks[1]], dask_scaler(dX))
    >>> module = VAEModule(n_features=6, hidden=[8], latent_dims=2, activation="silu", noise=None)
    >>> score(module).shape
    torch.Size([])
    """
    from ._training import validation_elbo

    if not val_blocks:
        raise ValueError("dask_validation_scorer needs at least one held-out block.")
    blocks = list(val_blocks)
    device = torch.device(device)
    n_rows = sum(int(b.shape[0]) for b in blocks)
    cached: list[torch.Tensor] = []

    def tensors() -> Iterator[torch.Tensor]:
        if cached:
            yield from cached
            return
        loaded = []
        for block in blocks:
            tensor = _load_block(block, scaler, device)
            if cache:
                loaded.append(tensor)
            yield tensor
        cached.extend(loaded)

    @torch.no_grad()
    def score(module: torch.nn.Module) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64, device=device)
        for tensor in tensors():
            for start in range(0, len(tensor), SCORE_CHUNK):
                chunk = tensor[start : start + SCORE_CHUNK]
                # the loop's own per-point validation ELBO, weighted by the chunk's rows
                total += validation_elbo(module, chunk, kl_weight).double() * len(chunk)
        return total / n_rows

    return score


def dask_training_data(
    dX: Any,
    scaler,
    *,
    validation_fraction: float | None,
    rng,
    device: torch.device | str = "cpu",
    kl_weight: float = 1.0,
) -> tuple[DaskBlockBatches, Callable[[torch.nn.Module], torch.Tensor] | None]:
    """The batch source and validation function of an out-of-core fit on ``dX``.

    Parameters
    ----------
    dX : dask.array.Array of shape (n_samples, n_features)
        Training curves (checked with :func:`check_dask_curves` beforehand).
    scaler : CurveScaler
        The fit's scaling (:func:`dask_scaler` for a fresh fit, the fitted one when
        continuing).
    validation_fraction : float or None
        Held-out fraction for early stopping; None holds out nothing.
    rng : numpy.random.RandomState
        Draws the held-out blocks.
    device : torch.device or str, default="cpu"
        The training device.
    kl_weight : float, default=1.0
        The estimator's ``kl_weight`` (for the validation ELBO).

    Returns
    -------
    source : DaskBlockBatches
    validation : callable or None
        None when ``validation_fraction`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import dask_scaler, dask_training_data
    >>> dX = da.from_array(np.random.default_rng(0).normal(size=(40, 6)), chunks=(10, 6))
    >>> source, validation = dask_training_data(
    ...     dX, dask_scaler(dX), validation_fraction=0.25, rng=np.random.RandomState(0)
    ... )
    >>> source.n_samples, validation is not None
    (30, True)
    """
    train, val = split_blocks(dX, validation_fraction, rng)
    source = DaskBlockBatches(train, scaler, device)
    if not val:
        return source, None
    largest = max(source.sizes)
    cache = sum(int(b.shape[0]) for b in val) <= largest  # no more than one block's memory
    return source, dask_validation_scorer(val, scaler, device, kl_weight=kl_weight, cache=cache)
