"""One chunked, row-independent, memory-bounded evaluator of torch functions.

Matrix products can round differently depending on how many rows they see, so a row's
output could change with the batch it arrives in. Everything here evaluates inputs in
chunks of exactly ``chunk_size`` rows (the last one zero-padded), which makes each row's
result bit-identical whatever the batch, its order or its size on a given device, and
bounds the memory used by intermediate results. The staging buffers are allocated once
per call and reused for every chunk (no allocation churn in the loop).

:func:`apply_in_chunks` evaluates numpy rows (staged and scaled on the way in);
:func:`apply_to_tensors` evaluates rows of tensors already on the device into
caller-owned buffers (the matcher's inner loop). Both walk the chunks with
:func:`_evaluate_chunks`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

#: Rows per chunk on the CPU: large enough to amortise the call overhead, small enough
#: to stay in cache.
CPU_CHUNK_SIZE = 512
#: Rows per chunk on an accelerator, where larger matrix products are what pays.
ACCELERATOR_CHUNK_SIZE = 65536


def chunk_size_for(device: torch.device | str) -> int:
    """Rows per fixed-size chunk on ``device``.

    Parameters
    ----------
    device : torch.device or str

    Returns
    -------
    chunk_size : int

    Examples
    --------
    >>> chunk_size_for("cpu")
    512
    """
    return CPU_CHUNK_SIZE if torch.device(device).type == "cpu" else ACCELERATOR_CHUNK_SIZE


def _evaluate_chunks(
    n_rows: int,
    buffers: Sequence[torch.Tensor],
    load: Callable[[int, int], None],
    function: Callable[..., torch.Tensor],
    out: torch.Tensor,
) -> None:
    """``out[i] = function(*buffers)[row of i]``, one fixed-size chunk of rows at a time.

    ``load(start, stop)`` writes rows ``start:stop`` of the inputs into the first
    ``stop - start`` rows of ``buffers``; the rest of a last, partial chunk is zeroed, so
    that ``function`` always sees exactly ``len(buffers[0])`` rows.
    """
    chunk_size = buffers[0].shape[0]
    for start in range(0, n_rows, chunk_size):
        stop = min(start + chunk_size, n_rows)
        load(start, stop)
        if stop - start < chunk_size:
            for buffer in buffers:
                buffer[stop - start :].zero_()
        out[start:stop] = function(*buffers)[: stop - start]


@torch.no_grad()
def apply_to_tensors(
    function: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor],
    out: torch.Tensor,
) -> torch.Tensor:
    """Evaluate ``function`` on rows of tensors in fixed-size chunks, into ``out``.

    Nothing is allocated per chunk: each input's rows are copied into its buffer
    (allocated once by the caller, ``chunk_size`` rows each, zero-padded at the end) and
    ``function``'s first rows are copied into ``out``.

    Parameters
    ----------
    function : callable
        Maps the buffers (one positional argument each) to a tensor whose first axis has
        ``chunk_size`` rows, row by row.
    inputs : sequence of Tensor
        Tensors with the same number of rows.
    buffers : sequence of Tensor
        One per input, of shape (chunk_size, ...) with that input's trailing shape.
    out : Tensor
        Receives the result, one row per input row.

    Returns
    -------
    out : Tensor

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(5.0)
    >>> apply_to_tensors(lambda b: 2 * b, [x], [torch.empty(2)], torch.empty(5))
    tensor([0., 2., 4., 6., 8.])
    """

    def load(start: int, stop: int) -> None:
        for buffer, tensor in zip(buffers, inputs):
            buffer[: stop - start] = tensor[start:stop]

    _evaluate_chunks(inputs[0].shape[0], buffers, load, function, out)
    return out


def _output_shape(n_rows: int, n_outputs: int) -> tuple[int, ...]:
    return (n_rows, n_outputs) if n_outputs else (n_rows,)


def _stage_on_host(X, start, stop, scaler, stage, buffer) -> None:
    """Rows ``start:stop`` of ``X`` into ``buffer``, scaled by numpy in a reused buffer."""
    rows = stage[: stop - start]
    if scaler is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # reported by the caller
            np.subtract(X[start:stop], scaler.mean, out=rows)
            rows /= scaler.scale
    else:
        rows[...] = X[start:stop]
    buffer[: stop - start].copy_(torch.from_numpy(rows))


def _stage_on_device(X, start, stop, scaler, buffer) -> None:
    """Rows ``start:stop`` of ``X`` into ``buffer``: the raw rows are moved to the device
    and scaled there (float64, so bit-identical to :func:`_stage_on_host`): no pass over
    the data on the host, which would otherwise limit an accelerator's throughput."""
    with warnings.catch_warnings():  # read-only arrays are only read here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        rows = torch.from_numpy(np.ascontiguousarray(X[start:stop])).to(buffer.device)
    if scaler is not None:
        rows = scaler.to_model_on_device(rows)
    buffer[: stop - start].copy_(rows)


@torch.no_grad()
def apply_in_chunks(
    function: Callable[[torch.Tensor], torch.Tensor],
    X: np.ndarray,
    n_outputs: int,
    *,
    scaler=None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    chunk_size: int | None = None,
    non_finite_error: str | None = None,
    stage_on_device: bool | None = None,
) -> np.ndarray:
    """Evaluate ``function`` on the rows of a numpy array and return a float64 array.

    Parameters
    ----------
    function : callable
        Maps a tensor of shape (chunk_size, n_in) on ``device`` to one of shape
        (chunk_size, n_outputs) (or (chunk_size,) when ``n_outputs`` is 0), row by row.
    X : ndarray of shape (n_samples, n_in)
        Input rows (any float dtype, any memory order; read-only arrays are fine).
    n_outputs : int
        Width of the output; 0 for a 1-D output.
    scaler : CurveScaler, optional
        If given, each chunk is converted to model units (in a reused buffer) first.
    dtype : torch.dtype, default=torch.float32
        The dtype of the tensor passed to ``function``.
    device : torch.device or str, default="cpu"
        Where ``function`` computes.
    chunk_size : int, optional
        Rows per chunk (default: :func:`chunk_size_for` ``device``).
    non_finite_error : str, optional
        If given, raise ``ValueError(non_finite_error)`` when ``function`` returned a
        non-finite value (inputs too large for float32), instead of returning it.
    stage_on_device : bool, optional
        Scale the rows on ``device`` rather than with numpy on the host (default: on
        accelerators). Both give bit-identical results.

    Returns
    -------
    result : ndarray of shape (n_samples, n_outputs) or (n_samples,), float64

    Examples
    --------
    >>> import numpy as np
    >>> apply_in_chunks(lambda t: t.sum(dim=1), np.ones((3, 4)), 0)
    array([4., 4., 4.])
    """
    device = torch.device(device)
    chunk_size = chunk_size or chunk_size_for(device)
    if stage_on_device is None:
        stage_on_device = device.type != "cpu"
    n_samples = X.shape[0]
    out = np.empty(_output_shape(n_samples, n_outputs), dtype=np.float64)
    buffer = torch.zeros((chunk_size, X.shape[1]), dtype=dtype, device=device)
    if stage_on_device:

        def load(start: int, stop: int) -> None:
            _stage_on_device(X, start, stop, scaler, buffer)

    else:
        stage = np.empty((min(chunk_size, n_samples), X.shape[1]), dtype=np.float64)

        def load(start: int, stop: int) -> None:
            _stage_on_host(X, start, stop, scaler, stage, buffer)

    _evaluate_chunks(n_samples, [buffer], load, function, torch.from_numpy(out))
    if non_finite_error is not None and not np.isfinite(out).all():
        raise ValueError(non_finite_error)
    return out
