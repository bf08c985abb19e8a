"""The machinery of a benchmark run, apart from what it measures.

``modes`` (run settings and sizes), ``versions`` and ``child`` (this checkout and skvae 0.1.0
side by side, each in a fresh child process), ``measure`` and ``memory_worker`` (machine
description, threads, errors, peak memory in a fresh process) and ``markdown`` (tables).
"""

from pathlib import Path

#: The repository root: the folder holding ``skvae/`` and ``benchmarks/``.
REPO_ROOT = Path(__file__).resolve().parents[2]
