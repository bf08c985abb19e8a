"""Small helpers shared by the estimators: transactional fits, warnings, torch threads."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import sklearn
import torch

#: Directories whose frames are library internals when attributing a warning.
_INTERNAL_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (__file__, sklearn.__file__, contextlib.__file__)
)


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


def _is_internal(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_INTERNAL_DIRS)


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Emit a warning attributed to the user's line, not to skvae's or scikit-learn's.

    scikit-learn's ``_fit_context`` and ``set_output`` wrappers add frames between the
    user's call and the estimator's code, so a fixed ``stacklevel`` points into
    scikit-learn. This walks up to the first frame outside skvae, scikit-learn and
    ``contextlib`` (Python 3.12's ``skip_file_prefixes`` does the same; 3.10 lacks it).

    Parameters
    ----------
    message : str
        The warning's text.
    category : type of Warning, default=UserWarning
        The warning's class.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_at_caller("careful")
    >>> caught[0].message.args[0]
    'careful'
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    if frame is None:  # everything internal (e.g. called from skvae's own __main__)
        level = 2
    warnings.warn(message, category, stacklevel=level + 1)


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
