"""Row-independent, memory-bounded evaluation of torch functions on numpy arrays.

Matrix products on CPU can round differently depending on how many rows they see, so a
row's output could change with the batch it arrives in. Every call here evaluates inputs
in chunks of exactly ``CHUNK_SIZE`` rows (the last one zero-padded), which makes each row's
result bit-identical whatever the batch, its order or its size, and bounds the memory used
by intermediate results.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

CHUNK_SIZE = 512


@torch.no_grad()
def apply_in_chunks(
    function: Callable[[torch.Tensor], torch.Tensor],
    X: np.ndarray,
    n_outputs: int,
    *,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    dtype: torch.dtype = torch.float32,
    non_finite_error: str | None = None,
) -> np.ndarray:
    """Evaluate ``function`` on the rows of ``X`` and return a float64 array.

    Parameters
    ----------
    function : callable
        Maps a tensor of shape (CHUNK_SIZE, n_in) to one of shape (CHUNK_SIZE, n_outputs)
        (or (CHUNK_SIZE,) when ``n_outputs`` is 0), row by row.
    X : ndarray of shape (n_samples, n_in)
        Input rows (any float dtype, any memory order).
    n_outputs : int
        Width of the output; 0 for a 1-D output.
    prepare : callable, optional
        Numpy preprocessing applied to each chunk (for example scaling) before conversion.
    dtype : torch.dtype, default=torch.float32
        The dtype of the tensor passed to ``function``.
    non_finite_error : str, optional
        If given, raise ``ValueError(non_finite_error)`` as soon as ``function`` returns a
        non-finite value (inputs too large for float32), instead of returning it.
    """
    n_samples = X.shape[0]
    out = np.empty((n_samples, n_outputs) if n_outputs else (n_samples,), dtype=np.float64)
    buffer = torch.zeros((CHUNK_SIZE, X.shape[1]), dtype=dtype)
    for start in range(0, n_samples, CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, n_samples)
        chunk = np.asarray(X[start:stop], dtype=np.float64)
        if prepare is not None:
            chunk = prepare(chunk)
        buffer.zero_()
        chunk = np.ascontiguousarray(chunk)
        if not chunk.flags.writeable:  # torch warns about read-only arrays (e.g. memmaps)
            chunk = chunk.copy()
        buffer[: stop - start] = torch.from_numpy(chunk).to(dtype)
        result = function(buffer)[: stop - start]
        if non_finite_error is not None and not bool(torch.isfinite(result).all()):
            raise ValueError(non_finite_error)
        out[start:stop] = result.double().numpy()
    return out


def non_finite_message(method: str, scale: float, what: str = "X") -> str:
    """Message of the ValueError raised when finite inputs overflow the float32 networks.

    Parameters
    ----------
    method : str
        The estimator method that failed.
    scale : float
        The fitted ``scale_`` of the curves.
    what : {"X", "Z"}, default="X"
        Whether the inputs were curves (encoded) or latent codes (decoded).

    Returns
    -------
    message : str
    """
    degenerate = (
        "or the fitted weights are degenerate (a fit that was diverging: refit with a "
        "lower learning_rate_init)."
    )
    if what == "X":
        return (
            f"{method} produced non-finite values. Either X has values too large in "
            "magnitude for the fitted model, which computes in float32 on curves centred by "
            f"mean_ and divided by scale_={scale:g} (check that X is in the training "
            f"curves' units), {degenerate}"
        )
    return (
        f"{method} produced non-finite curves. Either the latent codes are too large in "
        f"magnitude for the float32 decoder (the prior's codes are of order 1), {degenerate}"
    )
