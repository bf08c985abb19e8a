"""Small helpers shared by the estimators: transactional fits, torch threads, and the
check that every training curve has an observed point."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


@contextlib.contextmanager
def unchanged_on_failure(estimator: Any) -> Iterator[None]:
    """Undo every attribute change of ``estimator`` when the block raises.

    ``validate_data`` sets ``n_features_in_`` and ``feature_names_in_`` before anything can
    fail, and a fit assigns its results one by one: restoring the instance dictionary
    leaves the estimator exactly as it was, fitted or not, whatever the block raised
    (``KeyboardInterrupt`` included).

    Parameters
    ----------
    estimator : object
        The estimator whose attributes the block may change.

    Yields
    ------
    None
    """
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


#: Guards the thread count saved by the first of overlapping :func:`one_torch_thread`
#: blocks, and how many blocks are open.
_THREADS_LOCK = threading.Lock()
_threads_state = {"saved": 1, "inside": 0}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the caller's setting (as KMeans limits BLAS).

    Small repeated network calls (matching) are slower on several threads, which
    synchronise at every operation, and orders of magnitude slower when other processes
    share the cores. torch's thread count is shared by the threads of a process (unless
    OpenMP gave a thread its own), so blocks opened by several Python threads at once
    (dask's threaded scheduler, a thread pool) must not save one another's setting: a
    block that finds the count at 1 while others are open restores the count saved by
    the first of them. Every block restores the count on exit, so no thread is left at 1.

    Yields
    ------
    None
    """
    with _THREADS_LOCK:
        current = torch.get_num_threads()
        if _threads_state["inside"] == 0:
            _threads_state["saved"] = current
        restore = _threads_state["saved"] if current == 1 else current
        _threads_state["inside"] += 1
        torch.set_num_threads(1)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_state["inside"] -= 1
            torch.set_num_threads(restore)


def check_observed_rows(X: np.ndarray, where: str = "X") -> None:
    """Raise a ValueError naming the rows of ``X`` with no observed point (all NaN).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Curves; NaN marks missing points.
    where : str, default="X"
        What ``X`` is, for the message (row indices count from its first row).
    """
    empty = np.flatnonzero(np.isnan(X).all(axis=1))
    if empty.size:
        shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
        raise ValueError(
            f"{where} has {empty.size} curve(s) with no observed point (every value NaN), "
            f"rows [{shown}]: there is nothing to learn from them. Drop those rows before "
            "fitting."
        )
