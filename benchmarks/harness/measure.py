"""Measurement helpers: machine description, threads, reconstruction errors, process memory.

Memory is measured as the resident set size (RSS) of a separate Python process, read from
``/proc/self/status`` (``VmRSS`` now, ``VmHWM`` the peak). RSS counts everything the process
touches -- numpy buffers, torch's CPU allocator, libraries -- which is more honest for torch
than ``tracemalloc`` (which only sees Python's allocator). Where ``/proc`` is missing the
peak falls back to ``resource.getrusage(...).ru_maxrss``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.harness import REPO_ROOT

MB = 1024.0**2


# ------------------------------------------------------------------------------ machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _affinity_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    """CPU, cores, memory, library versions and the date, for the results header."""
    import scipy
    import sklearn
    import torch

    import skvae

    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": _affinity_cores(),
        "torch_threads": torch.get_num_threads(),
        "threadpools": blas_threads(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "skvae": skvae.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    info["git_commit"] = _git_commit()
    return info


def _git_commit() -> str | None:
    """HEAD's short hash, with ``-dirty`` appended (as ``git describe --dirty`` does) when
    tracked files differ from it, so that results are never credited to a commit that
    does not hold the code measured; None without git."""
    try:
        commit, status = (
            subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            for args in (
                ("rev-parse", "--short", "HEAD"),
                ("status", "--porcelain", "--untracked-files=no"),
            )
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if not commit:
        return None
    return f"{commit}-dirty" if status else commit


def set_threads(n_threads: int) -> None:
    """Use ``n_threads`` for torch, BLAS and OpenMP here and in child processes."""
    import torch
    from threadpoolctl import threadpool_limits

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(n_threads)  # inherited by the memory workers
    _LIMITS.append(threadpool_limits(n_threads))  # keep the limit alive for the run
    torch.set_num_threads(n_threads)


_LIMITS: list = []


def blas_threads() -> dict:
    from threadpoolctl import threadpool_info

    return {f"{i['internal_api']}": i["num_threads"] for i in threadpool_info()}


# ------------------------------------------------------------------------------- errors


def l2_errors(X: np.ndarray, X_hat: np.ndarray) -> np.ndarray:
    """Per-curve Euclidean reconstruction error ``‖x̂ − x‖₂`` over all grid points."""
    return np.linalg.norm(np.asarray(X_hat, dtype=np.float64) - X, axis=1)


def l2_summary(X: np.ndarray, X_hat: np.ndarray) -> dict:
    """Median and 90th percentile of the per-curve L2 errors (NaN reconstructions count as inf)."""
    errors = l2_errors(X, X_hat)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    return {
        "median_l2": float(np.median(errors)),
        "p90_l2": float(np.percentile(errors, 90)),
        "n_curves": int(len(errors)),
    }


# ------------------------------------------------------------------------------- memory


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def current_rss_mb() -> float | None:
    """Resident set size of this process now, in MiB."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process (since start or the last reset), in MiB."""
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if sys.platform == "darwin":  # bytes there, kilobytes on Linux
            kb /= 1024.0
    return kb / 1024.0


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux ``/proc/self/clear_refs``); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def run_memory_worker(arguments: list[str], timeout: float = 900.0) -> dict:
    """Run ``python -m benchmarks.harness.memory_worker ARGUMENTS`` in a fresh process.

    Returns the worker's JSON report.

    The child gets the repository root on ``PYTHONPATH`` so that it imports this checkout's
    ``skvae`` and ``benchmarks``. Failures are returned as ``{"error": ...}``, not raised.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "benchmarks.harness.memory_worker", *arguments]
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        return {"error": f"exit status {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])
