"""Run a measurement with this checkout's skvae ("now") or with skvae 0.1.0, in a child process.

Side-by-side comparisons with the previous release happen in ONE benchmark run: skvae 0.1.0
(commit ``f855892``) is extracted once with ``git archive f855892 skvae | tar -x`` into a
temporary folder, and the same job (``benchmarks/harness/child.py``) runs in a fresh Python process
with ``PYTHONPATH=<that folder>:<repository root>``, so that ``import skvae`` finds 0.1.0 and
``import benchmarks`` finds this checkout's measuring code. The "now" jobs run the same way
with this checkout's skvae, so both sides pay the same process start-up (excluded from the
timings) and run with the same number of threads.

Where git or the commit is unavailable (a shallow clone, a copy without ``.git``), the 0.1.0
jobs return ``{"skipped": reason}`` and the tables say so.

Results are memoised per (version, threads, job) for the whole run, so sections that need the
same fit (e.g. the seed-0 default fit) share one child process.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import REPO_ROOT

CHILD = Path(__file__).resolve().parent / "child.py"
RESULT_MARK = "@@skvae-benchmark-result@@ "

NOW = "now"
BASELINE = "0.1.0"
BASELINE_COMMIT = "f855892"

_CACHE: dict[tuple, object] = {}
_WORK: list[Path] = []
_BASELINE: dict[str, object] = {}


def work_dir() -> Path:
    """A temporary folder for this run (child processes' cwd, saved models, 0.1.0's code)."""
    if not _WORK:
        path = Path(tempfile.mkdtemp(prefix="skvae-bench-"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _WORK.append(path)
    return _WORK[0]


def _extract_baseline() -> tuple[Path | None, str]:
    target = work_dir() / f"skvae-{BASELINE}"
    try:
        verify = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{BASELINE_COMMIT}^{{commit}}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if verify.returncode != 0:
            return None, (
                f"commit {BASELINE_COMMIT} (skvae {BASELINE}) is not in this clone "
                "(a shallow clone or a copy without history?)"
            )
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", BASELINE_COMMIT, "skvae"],
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=60,
        )
        if archive.returncode != 0:
            return None, f"git archive failed: {archive.stderr.decode(errors='replace')[:200]}"
        untar = subprocess.run(
            ["tar", "-x", "-C", str(target)], input=archive.stdout, capture_output=True, timeout=60
        )
        if untar.returncode != 0:
            return None, f"tar failed: {untar.stderr.decode(errors='replace')[:200]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"git is unavailable ({type(exc).__name__}: {exc})"
    if not (target / "skvae" / "__init__.py").is_file():
        return None, f"git archive of {BASELINE_COMMIT} holds no skvae package"
    return target, f"skvae {BASELINE} = commit {BASELINE_COMMIT}, extracted with git archive"


def baseline_root() -> tuple[Path | None, str]:
    """(folder holding 0.1.0's ``skvae`` package, description) or (None, why it is missing)."""
    if "root" not in _BASELINE:
        _BASELINE["root"], _BASELINE["why"] = _extract_baseline()
    return _BASELINE["root"], _BASELINE["why"]  # type: ignore[return-value]


def baseline_note(mode) -> str:
    """One sentence for the tables: what the 0.1.0 rows are, or why they are missing."""
    if not mode.baseline:
        return "0.1.0 rows: not run (--no-baseline)."
    root, why = baseline_root()
    if root is None:
        return f"0.1.0 rows skipped: {why}."
    return (
        f"0.1.0 rows: {why}; every measurement runs in a fresh child process for both versions "
        f"with the same {mode.threads} thread(s); timings exclude process start-up."
    )


def versions(mode, index: int = 0) -> list[str]:
    """The versions to measure, alternating their order with ``index`` (drift cancels)."""
    if not mode.baseline or baseline_root()[0] is None:
        return [NOW]  # baseline_note() says why
    order = [NOW, BASELINE]
    return order if index % 2 == 0 else order[::-1]


def run_jobs(version: str, jobs: list[dict], threads: int, timeout: float = 1800.0) -> list[dict]:
    """Run ``jobs`` in one child process with skvae ``version``; memoised for the run.

    Returns one result dict per job; on failure every entry is ``{"error": ...}`` (or
    ``{"skipped": ...}`` when 0.1.0 is unavailable) -- never raises for a broken child.
    """
    key = (version, threads, json.dumps(jobs, sort_keys=True))
    if key in _CACHE:
        return _CACHE[key]  # type: ignore[return-value]
    if version == NOW:
        root: Path | None = REPO_ROOT
    else:
        root, why = baseline_root()
        if root is None:
            return [{"skipped": why} for _ in jobs]
    paths = [str(root)] + ([str(REPO_ROOT)] if root != REPO_ROOT else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    payload = json.dumps({"threads": threads, "jobs": jobs})
    try:
        done = subprocess.run(
            [sys.executable, str(CHILD)],
            input=payload,
            cwd=work_dir(),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        results = [{"error": f"child timed out after {timeout:.0f} s"} for _ in jobs]
    else:
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if done.returncode != 0 or not lines:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-4:])
            print(f"    child ({version}) failed: {tail}", file=sys.stderr, flush=True)
            results = [{"error": f"exit status {done.returncode}: {tail}"} for _ in jobs]
        else:
            results = json.loads(lines[-1][len(RESULT_MARK) :])
            if "Traceback" in done.stderr:  # a guarded part failed: show why
                print(f"    child ({version}): {done.stderr.strip()[-800:]}", file=sys.stderr)
    _CACHE[key] = results  # failures too: the same job would fail again
    return results


def run_job(version: str, job: dict, threads: int, timeout: float = 1800.0) -> dict:
    """:func:`run_jobs` for one job."""
    return run_jobs(version, [job], threads, timeout)[0]
