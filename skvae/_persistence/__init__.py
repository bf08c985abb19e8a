"""Persistence: :func:`skvae.save` and :func:`skvae.load`.

``archive`` holds the file format (a ZIP of JSON and ``.npy`` members, bounded reading),
``writer`` and ``reader`` turn an estimator tree into that content and back, and
``allowlist`` says what a file may hold.
"""

from .archive import load, save

__all__ = ["load", "save"]
