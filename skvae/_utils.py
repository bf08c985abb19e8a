"""Small helpers shared by the estimators: transactional fits and torch threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

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
