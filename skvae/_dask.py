"""Dask arrays in and out, and the pieces of an out-of-core fit.

Importing this module imports no dask (dask is imported by the functions that need it,
which only run once a dask array has arrived), so the estimators can import
:func:`is_dask_array` at module level and the numpy path never imports dask.

Inference maps a fitted estimator's numpy method over row blocks (:func:`map_rows`). An
out-of-core fit takes its scaling from one pass of dask reductions (:func:`dask_scaler`),
holds out whole blocks for early stopping (:func:`split_blocks`,
:func:`dask_validation_scorer`) and streams the training blocks in shuffled order
(:class:`DaskBlockBatches`), so that at most a couple of blocks are in memory at a time;
:class:`DaskCurves` gathers these for the estimator. With ``set_output(transform="pandas")``
a dask input gives a lazy dask DataFrame (:func:`keep_dask_output_lazy`).
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ._utils import check_observed_rows

__all__ = [
    "DaskBlockBatches",
    "DaskCurves",
    "check_dask_curves",
    "dask_scaler",
    "dask_training_data",
    "dask_validation_scorer",
    "is_dask_array",
    "keep_dask_output_lazy",
    "map_rows",
    "split_blocks",
    "validate_dask_data",
]


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a :class:`dask.array.Array`, without importing dask.

    A dask array can only exist once ``dask.array`` has been imported, so the check looks
    the class up in :data:`sys.modules` and never triggers an import itself.

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import is_dask_array
    >>> is_dask_array(np.ones((2, 3))), is_dask_array(da.ones((2, 3)))
    (False, True)
    """
    core = sys.modules.get("dask.array.core")
    array_class = getattr(core, "Array", None)
    return array_class is not None and isinstance(X, array_class)


def check_dask_curves(dX: Any, n_features: int | None = None, *, name: str = "X") -> Any:
    """Check a dask array of curves and give it one block along the columns.

    Parameters
    ----------
    dX : dask.array.Array of shape (n_samples, n_features)
        Curves, one per row, with rows in chunks.
    n_features : int, optional
        The width the estimator expects (``n_features_in_``); None accepts any width.
    name : str, default="X"
        How error messages call the array.

    Returns
    -------
    dX : dask.array.Array
        The same array, rechunked to a single block along the columns when needed.

    Raises
    ------
    ValueError
        If ``dX`` is not 2-D, not real-valued, or has the wrong number of columns.
        An object array is converted to float64 lazily, as numpy inputs are.

    Examples
    --------
    >>> import dask.array as da
    >>> from skvae._dask import check_dask_curves
    >>> check_dask_curves(da.zeros((10, 6), chunks=(5, 2))).chunks
    ((5, 5), (6,))
    """
    if dX.ndim != 2:
        raise ValueError(
            f"Expected a 2D dask array for {name}, got an array of shape {dX.shape}: "
            "one curve per row, one grid point per column."
        )
    if dX.dtype.kind == "O":  # as check_array does for numpy: converted (lazily here)
        dX = dX.astype(np.float64)
    if dX.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers; got a dask array of dtype {dX.dtype}.")
    width = dX.shape[1]
    if n_features is not None and width != n_features:
        raise ValueError(
            f"{name} has {width} features, but the estimator is expecting {n_features} "
            "features as input."
        )
    if len(dX.chunks[1]) > 1:
        dX = dX.rechunk({1: -1})
    return dX


def validate_dask_data(estimator: Any, dX: Any, *, reset: bool = True) -> Any:
    """What scikit-learn's ``validate_data`` does for an estimator, for a dask array of
    curves: :func:`check_dask_curves` against ``n_features_in_`` (unless ``reset``), and
    with ``reset`` sets ``n_features_in_`` and drops ``feature_names_in_`` (a dask array
    has no column names). The array is never materialised.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.base import BaseEstimator
    >>> from skvae._dask import validate_dask_data
    >>> estimator = BaseEstimator()
    >>> validate_dask_data(estimator, da.zeros((10, 6), chunks=(5, 2))).chunks
    ((5, 5), (6,))
    >>> estimator.n_features_in_
    6
    """
    dX = check_dask_curves(dX, None if reset else estimator.n_features_in_)
    if reset:
        estimator.n_features_in_ = int(dX.shape[1])
        estimator.__dict__.pop("feature_names_in_", None)
    return dX


def _apply_block(block: np.ndarray, function: Callable, n_outputs: int, dtype) -> np.ndarray:
    """Run ``function`` on one block of rows and check the shape of what it returns."""
    shape = (block.shape[0], n_outputs) if n_outputs else (block.shape[0],)
    if block.shape[0] == 0:  # estimators refuse empty inputs; nothing to compute
        return np.empty(shape, dtype=dtype)
    result = np.asarray(function(block), dtype=dtype)
    if result.shape != shape:
        raise ValueError(
            f"map_rows: the function returned shape {result.shape} for a block of "
            f"{block.shape[0]} rows, expected {shape}."
        )
    return result


def map_rows(
    function: Callable,
    dX: Any,
    n_outputs: int,
    *,
    dtype=np.float64,
    n_features: int | None = None,
) -> Any:
    """Lazily apply a row-wise numpy ``function`` to every row block of a dask array.

    ``function`` maps an ndarray of shape (n_rows, n_features) to one of shape
    (n_rows, n_outputs), row by row (a fitted estimator's ``transform``,
    ``inverse_transform`` or ``score_samples``). The result declares its true shape,
    chunks and dtype, so it can be written with ``to_zarr`` before anything is computed.
    A bound method carries its fitted estimator to the workers by pickle.

    Parameters
    ----------
    function : callable
        Row-wise map from numpy blocks to numpy results.
    dX : dask.array.Array of shape (n_samples, n_features)
        Input rows, in any row chunks; the columns are rechunked to one block if needed.
    n_outputs : int
        Width of the output; 0 for a 1-D output of length ``n_samples``.
    dtype : numpy dtype, default=np.float64
        Dtype of the result.
    n_features : int, optional
        The input width ``function`` expects; a different width raises at once (not
        when the result is computed).

    Returns
    -------
    result : dask.array.Array of shape (n_samples, n_outputs) or (n_samples,)
        Lazy, with the row chunks of ``dX``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import map_rows
    >>> dX = da.arange(12.0, chunks=4).reshape(6, 2).rechunk((3, 1))
    >>> totals = map_rows(lambda block: block.sum(axis=1), dX, 0)
    >>> totals.shape, totals.chunks
    ((6,), ((3, 3),))
    >>> totals.compute()
    array([ 1.,  5.,  9., 13., 17., 21.])
    """
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int | np.integer) or n_outputs < 0:
        raise ValueError(f"n_outputs must be a non-negative int, got {n_outputs!r}.")
    dX = check_dask_curves(dX, n_features)
    dtype = np.dtype(dtype)
    if n_outputs:
        chunks, drop_axis = (dX.chunks[0], (int(n_outputs),)), None
        meta = np.empty((0, 0), dtype=dtype)
    else:
        chunks, drop_axis = (dX.chunks[0],), 1
        meta = np.empty((0,), dtype=dtype)
    # a fresh name for every call: dask's tokens of bound methods can coincide across methods
    # (scikit-learn wraps ``transform``) and miss in-place refits, and equal names would
    # silently share results
    label = getattr(function, "__name__", "map_rows")
    return dX.map_blocks(
        _apply_block,
        function,
        int(n_outputs),
        dtype,
        chunks=chunks,
        drop_axis=drop_axis,
        dtype=dtype,
        meta=meta,
        name=f"{label}-{uuid.uuid4().hex}",
    )


def _invalid_values_error(name: str = "X") -> ValueError:
    return ValueError(f"Input {name} contains infinity.")


def dask_scaler(dX: Any, return_counts: bool = False):
    """The :class:`~skvae._scaling.CurveScaler` of all rows of ``dX``, from dask reductions.

    Per-feature means, variances, minima, maxima and counts of the observed values (NaN
    marks a missing point) come from one ``dask.compute`` over the array (one read of
    every block); the result equals ``CurveScaler.fit`` on the same data to float
    precision.

    Parameters
    ----------
    dX : dask.array.Array of shape (n_samples, n_features)
        Training curves (finite or NaN).
    return_counts : bool, default=False
        Also return the number of observed values per grid point.

    Returns
    -------
    scaler : CurveScaler
    counts : ndarray of shape (n_features,)
        Only with ``return_counts``.

    Raises
    ------
    ValueError
        If ``dX`` has no rows, contains infinity, or has a grid point with no observed
        value.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import dask_scaler
    >>> from skvae._scaling import CurveScaler
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> scaler = dask_scaler(da.from_array(X, chunks=(30, 5)))
    >>> bool(np.isclose(scaler.scale, CurveScaler.fit(X).scale))
    True
    """
    import dask
    import dask.array as da

    from ._scaling import CurveScaler, check_observed_points

    dX = check_dask_curves(dX)
    if dX.shape[0] == 0:
        raise ValueError(
            "Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required."
        )
    dX = dX.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, variance, low, high, counts = dask.compute(
            da.nanmean(dX, axis=0),
            da.nanvar(dX, axis=0),
            da.nanmin(dX, axis=0),
            da.nanmax(dX, axis=0),
            (~da.isnan(dX)).sum(axis=0),
        )
        check_observed_points(counts)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise _invalid_values_error()
        peak = float(np.max(np.maximum(high - mean, mean - low)))
        if not (np.isfinite(mean).all() and np.isfinite(variance).all() and math.isfinite(peak)):
            # finite values whose sums overflow: a second pass on data divided by their extent
            extent = float(max(np.max(np.abs(low)), np.max(np.abs(high))))
            mean, variance = dask.compute(
                da.nanmean(dX / extent, axis=0), da.nanvar(dX / extent, axis=0)
            )
            mean = mean * extent
            peak = float(np.max(np.maximum(high - mean, mean - low)))
            variance = variance * (extent / peak) ** 2 if peak > 0 else variance
        elif peak > 0:
            variance = variance / peak**2
    scaler = CurveScaler.from_moments(mean, float(np.mean(variance)), peak)
    return (scaler, counts) if return_counts else scaler


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
    _check_known_sizes(sizes)
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


def _check_known_sizes(sizes: Sequence[float]) -> None:
    if any(math.isnan(s) for s in sizes):
        raise ValueError(
            "X has row blocks of unknown size; call X.compute_chunk_sizes() before fitting."
        )


def _load_block(block: Any, scaler, device: torch.device) -> torch.Tensor:
    """Compute one block and return it in model units as float32 on ``device`` (NaN at
    missing points).

    Scaled in slices of rows, so that the float64 temporaries stay small beside the block.
    """
    values = np.asarray(block.compute(), dtype=np.float64)
    if np.isinf(values).any():
        raise _invalid_values_error()
    check_observed_rows(values, where="A row block of X")
    return scaler.data_to_model_float32(values, device)


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
    cache: bool = False,
):
    """The held-out curves of an out-of-core fit: :class:`~skvae._torch.loop.HeldOutCurves`
    read from row blocks.

    The blocks are read one at a time and scored in chunks of
    :func:`~skvae._chunks.chunk_size_for` rows, or kept as float32 tensors after the first
    evaluation when ``cache``.

    Parameters
    ----------
    val_blocks : sequence of dask.array.Array
        Held-out row blocks.
    scaler : CurveScaler
        Maps curves to model units.
    device : torch.device or str, default="cpu"
        Where the evaluation runs.
    cache : bool, default=False
        Keep the held-out rows in memory after the first evaluation (for small hold-outs).

    Returns
    -------
    held_out : HeldOutCurves
        ``held_out(module)``: the held-out reconstruction log-likelihood per curve and
        grid point, a 0-d float64 tensor on ``device``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import dask_scaler, dask_validation_scorer
    >>> from skvae._torch.networks import VAEModule
    >>> dX = da.from_array(np.random.default_rng(0).normal(size=(40, 6)), chunks=(10, 6))
    >>> score = dask_validation_scorer([dX.blocks[0], dX.blocks[1]], dask_scaler(dX))
    >>> module = VAEModule(n_features=6, hidden=[8], latent_dims=2, activation="silu", noise=None)
    >>> score(module).shape
    torch.Size([])
    """
    from ._chunks import chunk_size_for
    from ._torch.loop import HeldOutCurves

    if not val_blocks:
        raise ValueError("dask_validation_scorer needs at least one held-out block.")
    blocks = list(val_blocks)
    device = torch.device(device)
    chunk_size = chunk_size_for(device)
    cached: list[torch.Tensor] = []

    def chunks() -> Iterator[torch.Tensor]:
        if cached:
            for tensor in cached:
                yield from tensor.split(chunk_size)
            return
        loaded = []
        for block in blocks:
            tensor = _load_block(block, scaler, device)
            if cache:
                loaded.append(tensor)
            yield from tensor.split(chunk_size)
        cached.extend(loaded)

    return HeldOutCurves(chunks, sum(int(b.shape[0]) for b in blocks))


def dask_training_data(
    dX: Any,
    scaler,
    *,
    validation_fraction: float | None,
    rng,
    device: torch.device | str = "cpu",
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
    return source, dask_validation_scorer(val, scaler, device, cache=cache)


class DaskCurves:
    """Training curves in a dask array, for an out-of-core fit (never materialised).

    The in-memory counterpart is the estimator's ndarray of curves; both give the fit its
    scaling (:meth:`fit_scaler`) and its mini-batches and held-out curves
    (:meth:`training_data`). Row blocks of unknown size are refused here, before any
    pass over the data, and empty row blocks (left by boolean filtering) are dropped.

    Parameters
    ----------
    dX : dask.array.Array of shape (n_samples, n_features)
        Curves checked by :func:`check_dask_curves`.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvae._dask import DaskCurves
    >>> dX = da.zeros((40, 3), chunks=((20, 0, 20), (3,)))
    >>> DaskCurves(dX).dX.chunks[0], DaskCurves(dX).n_samples
    ((20, 20), 40)
    """

    def __init__(self, dX: Any):
        import dask.array as da

        sizes = dX.chunks[0]
        _check_known_sizes(sizes)
        if 0 in sizes and any(sizes):  # dask's reductions fail on empty blocks
            dX = da.concatenate([dX.blocks[i] for i, size in enumerate(sizes) if size])
        self.dX = dX
        #: whether some curve has a missing point: known after :meth:`fit_scaler`, assumed
        #: before it
        self.has_missing = True
        self.n_samples = int(sum(sizes))
        self.n_features = int(dX.shape[1])

    def fit_scaler(self):
        """The :class:`~skvae._scaling.CurveScaler` of all curves (one pass of reductions);
        also sets :attr:`has_missing`."""
        scaler, counts = dask_scaler(self.dX, return_counts=True)
        self.has_missing = bool((counts < self.n_samples).any())
        return scaler

    def n_held_out(self, validation_fraction: float) -> int:
        """About how many curves ``validation_fraction`` holds out: the number that
        :func:`split_blocks` aims at (it holds out whole blocks)."""
        return round(validation_fraction * self.n_samples)

    def training_data(self, scaler, validation_fraction: float | None, rng, device):
        """``(source, held_out)``: see :func:`dask_training_data`."""
        return dask_training_data(
            self.dX, scaler, validation_fraction=validation_fraction, rng=rng, device=device
        )


def keep_dask_output_lazy(method: Callable) -> Callable:
    """Wrap a ``set_output``-wrapped ``transform`` so that a dask input stays lazy.

    scikit-learn's ``set_output(transform="pandas")`` builds a pandas DataFrame from what
    ``transform`` returns, which computes a dask array. For a dask input this returns a
    dask DataFrame instead (:func:`dask.dataframe.from_dask_array`, columns from
    ``get_feature_names_out``); with the default output, the lazy dask array. Other
    inputs and output containers (and pandas output where ``dask.dataframe`` cannot be
    imported: it needs pyarrow) go through ``method``, which computes. Of a tuple of
    outputs (a fill and its band), the first alone becomes a DataFrame, as scikit-learn
    wraps tuples.

    Parameters
    ----------
    method : callable
        The estimator's ``transform`` as scikit-learn wrapped it (``method.__wrapped__`` is
        the unwrapped one).

    Returns
    -------
    transform : callable
    """
    import functools

    unwrapped = getattr(method, "__wrapped__", method)

    @functools.wraps(unwrapped)
    def transform(self, X, *args, **kwargs):
        if not is_dask_array(X):
            return method(self, X, *args, **kwargs)
        from sklearn.utils._set_output import _get_output_config

        result = unwrapped(self, X, *args, **kwargs)
        container = _get_output_config("transform", self)["dense"]
        if container == "default":
            return result
        if container == "pandas":
            try:
                import dask.dataframe as dd
            except ImportError:  # dask.dataframe needs pyarrow: computed as pandas then
                return method(self, X, *args, **kwargs)
            columns = list(self.get_feature_names_out())
            if isinstance(result, tuple):  # as scikit-learn: only the first output is wrapped
                return (dd.from_dask_array(result[0], columns=columns), *result[1:])
            return dd.from_dask_array(result, columns=columns)
        return method(self, X, *args, **kwargs)  # other containers are computed

    return transform
