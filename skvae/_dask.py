"""Dask arrays in and out, and the pieces of an out-of-core fit.

Importing this module imports no dask (dask is imported by the functions that need it,
which only run once a dask array has arrived), so the estimators can import
:func:`is_dask_array` at module level and the numpy path never imports dask.

Inference maps a fitted estimator's numpy method over row blocks (:func:`map_rows`). An
out-of-core fit takes its scaling from one pass of dask reductions (:func:`dask_scaler`),
holds out whole blocks for early stopping (:func:`split_blocks`,
:func:`dask_validation_scorer`) and streams the training blocks in shuffled order
(:class:`DaskBlockBatches`), so that at most a couple of blocks are in memory at a time;
those training pieces live in :mod:`skvae._dask_training`.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "DaskBlockBatches",
    "check_dask_curves",
    "dask_scaler",
    "dask_training_data",
    "dask_validation_scorer",
    "is_dask_array",
    "map_rows",
    "split_blocks",
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
    return ValueError(f"Input {name} contains NaN or infinity.")


def dask_scaler(dX: Any):
    """The :class:`~skvae._scaling.CurveScaler` of all rows of ``dX``, from dask reductions.

    Per-feature means, variances, minima and maxima come from one ``dask.compute`` over
    the array (one read of every block); the result equals ``CurveScaler.fit`` on the
    same data to float precision.

    Parameters
    ----------
    dX : dask.array.Array of shape (n_samples, n_features)
        Training curves (finite).

    Returns
    -------
    scaler : CurveScaler

    Raises
    ------
    ValueError
        If ``dX`` has no rows, or contains NaN or infinity.

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

    from ._scaling import CurveScaler

    dX = check_dask_curves(dX)
    if dX.shape[0] == 0:
        raise ValueError(
            "Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required."
        )
    dX = dX.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, variance, low, high = dask.compute(
            dX.mean(axis=0), dX.var(axis=0), dX.min(axis=0), dX.max(axis=0)
        )
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise _invalid_values_error()
        peak = float(np.max(np.maximum(high - mean, mean - low)))
        if not (np.isfinite(mean).all() and np.isfinite(variance).all() and math.isfinite(peak)):
            # finite values whose sums overflow: a second pass on data divided by their extent
            extent = float(max(np.max(np.abs(low)), np.max(np.abs(high))))
            mean, variance = dask.compute((dX / extent).mean(axis=0), (dX / extent).var(axis=0))
            mean = mean * extent
            peak = float(np.max(np.maximum(high - mean, mean - low)))
            variance = variance * (extent / peak) ** 2 if peak > 0 else variance
        elif peak > 0:
            variance = variance / peak**2
    return CurveScaler.from_moments(mean, float(np.mean(variance)), peak)


# the out-of-core training pieces live in their own module; importable from here too
from ._dask_training import (  # noqa: E402
    DaskBlockBatches,
    dask_training_data,
    dask_validation_scorer,
    split_blocks,
)
