"""Small helpers shared by the estimators."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


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
