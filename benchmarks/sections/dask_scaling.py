"""Dask: throughput on a LocalCluster against in-process, and the out-of-core fit's memory.

Throughput: the fitted default model (first seed) encodes (``transform``) and matches
(``LatentMatcher.transform``) independent Beta log-pdf curves read from a zarr store on
disk, on a ``LocalCluster`` of 2 process workers with one torch thread each, against the
same calls on numpy arrays in this process (1 and 2 torch threads). The cluster runs
twice: with Dask's default worker environment (``MALLOC_TRIM_THRESHOLD_=65536``, which
makes repeated large allocations slow) and without that variable. Times include reading
the store and exclude starting the cluster and the first (warm-up) call.

Memory: ``BetaCurveVAE.fit`` on a dask array over a zarr store larger than the memory the
fitting process may use: a fresh process caps its address space (``RLIMIT_AS``) at what it
has mapped after its imports plus an allowance smaller than the array, checks that
materialising the array fails under the cap, then fits out of core and reports its peak
RSS (``VmHWM``) above the baseline.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import REPO_ROOT
from benchmarks.harness.modes import Mode

TITLE = "Dask: LocalCluster throughput and out-of-core fit memory"

#: Rows per zarr chunk and dask block.
BLOCK = 50_000
_MB = 1024.0**2


def _sizes(mode: Mode) -> dict:
    if mode.quick:
        return {"encode_rows": 200_000, "match_rows": 2_000, "fit_rows": 600_000}
    return {"encode_rows": 1_000_000, "match_rows": 20_000, "fit_rows": 2_000_000}


def _curves(n_rows: int, seed: int = 0) -> np.ndarray:
    from benchmarks.workloads.data import large_beta_curves

    return large_beta_curves(n_rows, seed)


def _write_store(path: str, n_rows: int, dtype=np.float64) -> float:
    """Write ``n_rows`` curves to a zarr store block by block; return its size in MB."""
    import zarr

    from benchmarks.workloads.data import independent_beta_curves

    base, _ = independent_beta_curves(BLOCK, seed=0)
    array = zarr.open_array(
        path, mode="w", shape=(n_rows, base.shape[1]), chunks=(BLOCK, base.shape[1]), dtype=dtype
    )
    rng = np.random.default_rng(0)
    for start in range(0, n_rows, BLOCK):
        stop = min(start + BLOCK, n_rows)
        array[start:stop] = base[: stop - start] + rng.normal(scale=1e-3, size=(stop - start, 100))
    return n_rows * base.shape[1] * np.dtype(dtype).itemsize / _MB


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _in_process(vae, matcher, X_encode, X_match, threads: int) -> dict:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        vae.transform(X_encode[:BLOCK])  # warm-up
        encode = _timed(lambda: vae.transform(X_encode))
        match = _timed(lambda: matcher.transform(X_match))
    finally:
        torch.set_num_threads(before)
    return {
        "where": f"in process, {threads} torch thread{'s' if threads > 1 else ''}",
        "encode_per_s": len(X_encode) / encode,
        "match_per_s": len(X_match) / match,
    }


def _on_cluster(vae, matcher, store: str, n_match: int, malloc_trim: bool) -> dict:
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if not malloc_trim:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # the nanny writes pre-spawn-environ into this process's os.environ: restore it after
    saved = dict(os.environ)
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        return _run_cluster(vae, matcher, store, n_match, malloc_trim, environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_cluster(vae, matcher, store, n_match, malloc_trim, environ) -> dict:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        threads = sorted(set(client.run(lambda: __import__("torch").get_num_threads()).values()))
        trim = set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values())
        dX = da.from_zarr(store)
        # warm-up: every worker imports torch and skvae, and runs a block of each method
        client.run(lambda: __import__("skvae") and None)
        vae.transform(dX[: 2 * BLOCK]).compute()
        matcher.transform(dX[:64].rechunk(32)).compute()
        encode = _timed(lambda: vae.transform(dX).compute())
        X_match = dX[:n_match].rechunk({0: max(1, n_match // 4)})  # 4 blocks, 2 per worker
        match = _timed(lambda: matcher.transform(X_match).compute())
    label = "default env" if malloc_trim else "without MALLOC_TRIM_THRESHOLD_"
    return {
        "where": f"LocalCluster 2 workers x 1 thread ({label})",
        "encode_per_s": dX.shape[0] / encode,
        "match_per_s": n_match / match,
        "worker_torch_threads": threads,
        "worker_malloc_trim_threshold": sorted(map(str, trim)),
    }


def _throughput(mode: Mode, sizes: dict, workdir: Path) -> list[dict]:
    from benchmarks.workloads import fits
    from skvae import LatentMatcher

    vae = fits.fitted_model(mode)
    X = _curves(sizes["encode_rows"])
    matcher = LatentMatcher(vae, prefit=True).fit(X[:10])
    store = str(workdir / "encode.zarr")
    import dask.array as da

    da.from_array(X, chunks=(BLOCK, X.shape[1])).to_zarr(store)
    X_match = X[: sizes["match_rows"]]
    rows = [_in_process(vae, matcher, X, X_match, t) for t in (1, 2)]
    del X
    for malloc_trim in (True, False):
        rows.append(_on_cluster(vae, matcher, store, sizes["match_rows"], malloc_trim))
    return rows


# ------------------------------------------------------------- out-of-core fit (child)


def _vm_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _fit_child(store: str, allowance_mb: float, max_iter: int) -> dict:
    """Run in a fresh process: cap the address space, then fit out of core."""
    import gc
    import resource
    import warnings

    import dask
    import dask.array as da
    import torch

    from skvae import BetaCurveVAE

    torch.set_num_threads(1)
    dX = da.from_zarr(store)
    vae = BetaCurveVAE(max_iter=max_iter, random_state=0)
    with dask.config.set(scheduler="sync"):
        vae.partial_fit(dX[:BLOCK])  # warm-up: torch's allocator, dask's imports
    baseline_mb = _vm_kb("VmRSS") / 1024
    cap = int((_vm_kb("VmSize") / 1024 + allowance_mb) * _MB)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        with dask.config.set(scheduler="sync"):
            dX.compute()
        refused = None
    except Exception as exc:  # MemoryError, or a codec's error when its buffer fails
        refused = type(exc).__name__
    gc.collect()
    baseline_mb = _vm_kb("VmRSS") / 1024
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak RSS to the current RSS
    start = time.perf_counter()
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = BetaCurveVAE(max_iter=max_iter, random_state=0).fit(dX)
    seconds = time.perf_counter() - start
    return {
        "rows": int(dX.shape[0]),
        "array_mb": dX.nbytes / _MB,
        "block_mb": BLOCK * dX.shape[1] * dX.dtype.itemsize / _MB,
        "allowance_mb": allowance_mb,
        "materialising_failed": refused is not None,
        "materialising_error": refused,
        "baseline_rss_mb": baseline_mb,
        "peak_over_baseline_mb": _vm_kb("VmHWM") / 1024 - baseline_mb,
        "epochs": vae.n_iter_,
        "fit_seconds": seconds,
        "rows_per_s": dX.shape[0] * vae.n_iter_ / seconds,
        "final_loss": vae.loss_curve_[-1],
    }


def _out_of_core_fit(sizes: dict, workdir: Path, threads: int) -> dict:
    store = str(workdir / "fit.zarr")
    _write_store(store, sizes["fit_rows"])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    allowance = 400.0  # MB: less than the array in both modes
    command = [sys.executable, "-m", "benchmarks.sections.dask_scaling", store, str(allowance), "1"]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3000
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit status {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- section


def measure(mode: Mode) -> dict:
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
        import zarr  # noqa: F401
    except ModuleNotFoundError as exc:
        return {"skipped": f"needs skvae[dask] ({exc.name} is not installed)"}
    sizes = _sizes(mode)
    with tempfile.TemporaryDirectory() as workdir:
        throughput = _throughput(mode, sizes, Path(workdir))
        fit = _out_of_core_fit(sizes, Path(workdir), mode.threads)
    return {"sizes": sizes, "throughput": throughput, "fit": fit}


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(results: dict) -> str:
    sizes, rows = results["sizes"], results["throughput"]
    reference = rows[0]
    lines = [
        f"Encoding {sizes['encode_rows']:,} curves (transform) and matching "
        f"{sizes['match_rows']:,} (LatentMatcher.transform), curves per second; on the cluster "
        f"the curves are read from a zarr store ({BLOCK:,}-row chunks).",
        "",
        "| where | encode curves/s | × in-process (1 thread) | match curves/s "
        "| × in-process (1 thread) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['where']} | {_fmt(row['encode_per_s'])} "
            f"| {row['encode_per_s'] / reference['encode_per_s']:.2f} "
            f"| {_fmt(row['match_per_s'])} | {row['match_per_s'] / reference['match_per_s']:.2f} |"
        )
    fit = results["fit"]
    lines.append("")
    if "error" in fit:
        lines.append(f"Out-of-core fit: failed ({fit['error']}).")
        return "\n".join(lines)
    lines += [
        f"Out-of-core `fit` of a dask array over a zarr store of {fit['rows']:,} curves "
        f"({_fmt(fit['array_mb'])} MB, blocks of {_fmt(fit['block_mb'])} MB) in a process whose "
        f"address space is capped at {_fmt(fit['allowance_mb'])} MB above its mapped memory "
        "after imports:",
        "",
        "| materialising the array fails | peak RSS − baseline MB | array MB | epochs "
        "| seconds | curves/s | final loss |",
        "|---|---|---|---|---|---|---|",
        f"| {_fmt(fit['materialising_failed'])} | {_fmt(fit['peak_over_baseline_mb'])} "
        f"| {_fmt(fit['array_mb'])} | {fit['epochs']} | {_fmt(fit['fit_seconds'])} "
        f"| {_fmt(fit['rows_per_s'])} | {fit['final_loss']:.3f} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # the fit's child process
    store_path, allowance_arg, max_iter_arg = sys.argv[1:4]
    print(json.dumps(_fit_child(store_path, float(allowance_arg), int(max_iter_arg))))
