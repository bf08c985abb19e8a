"""Small helpers shared by the estimators: transactional fits, torch threads, and the
check that every training curve has an observed point."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the caller's setting (as KMeans limits BLAS).

    Small repeated network calls (matching) are slower on several threads, which
    synchronise at every operation, and orders of magnitude slower when other processes
    share the cores.

    Yields
    ------
    None
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


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
