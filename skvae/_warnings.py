"""Warnings attributed to the user's line (imports neither scikit-learn nor numpy).

scikit-learn's ``_fit_context`` and ``set_output`` wrappers add frames between the user's
call and the estimator's code, so a fixed ``stacklevel`` points into scikit-learn. The
pure-torch core warns through here too, which is why the library directories are found
without importing scikit-learn.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return os.path.dirname(os.path.abspath(spec.origin)) + os.sep


#: Directories whose frames are library internals when attributing a warning: skvae's,
#: scikit-learn's and contextlib's.
_INTERNAL_DIRS = tuple(
    path
    for path in (
        os.path.dirname(os.path.abspath(__file__)) + os.sep,
        _package_dir("sklearn"),
        os.path.dirname(os.path.abspath(contextlib.__file__)) + os.sep,
    )
    if path is not None
)


def _is_internal(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_INTERNAL_DIRS)


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Emit a warning attributed to the user's line, not to skvae's or scikit-learn's.

    This walks up to the first frame outside skvae, scikit-learn and
    ``contextlib`` (Python 3.12's ``skip_file_prefixes`` does the same; 3.10 lacks it).
    When that frame is ``runpy``'s (``python -m skvae``), the warning points at skvae's
    outermost line instead.

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
    if frame is None:  # everything internal: the first caller
        level = 2
    elif _is_runpy(frame.f_code.co_filename):  # ``python -m skvae``: skvae's own entry line
        level -= 1
    warnings.warn(message, category, stacklevel=level + 1)


def _is_runpy(filename: str) -> bool:
    """Whether ``filename`` is the module that runs ``python -m`` (frozen or not)."""
    return filename == "<frozen runpy>" or os.path.basename(filename) == "runpy.py"
