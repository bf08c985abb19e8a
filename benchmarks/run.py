"""Run every skvae benchmark in one process and write results.md, results.json and a plot.

Usage (from the repository root)::

    python benchmarks/run.py            # full mode, ~10-20 min on 2 quiet cores
    python benchmarks/run.py --quick    # ~3-5 min; writes to benchmarks/results/quick
    python benchmarks/run.py --smoke    # ~1 min plumbing check, meaningless numbers

See benchmarks/README.md for what each section measures.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import tempfile
import time
import traceback
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Run as a script, Python puts benchmarks/ first on sys.path: use the repository root
# instead, so that this checkout's skvae and the benchmarks package import (and nothing
# in benchmarks/ can shadow a top-level module).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.baselines import all_baselines  # noqa: E402
from benchmarks.matching import (  # noqa: E402
    make_matcher,
    match_section,
    matched_reconstruction,
    matcher_class,
)
from benchmarks.measure import (  # noqa: E402
    l2_summary,
    machine_info,
    run_memory_worker,
    set_threads,
)
from benchmarks.modes import MODES, Mode  # noqa: E402
from benchmarks.vae_sections import (  # noqa: E402
    default_fit,
    pdf_section,
    scaling_section,
    seed_at,
    seed_network_throughput,
    seed_run,
    skvae_endpoints,
    skvae_trajectory,
)
from skvae import make_beta_curves  # noqa: E402

_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


def guarded(results: dict, key: str, function, *args, **kwargs):
    """Run one section; on failure record the error in ``results[key]`` and carry on."""
    log(f"{key} ...")
    start = time.perf_counter()
    try:
        value = function(*args, **kwargs)
    except Exception as exc:  # a broken section must not hide the others
        traceback.print_exc()
        results[key] = {"error": f"{type(exc).__name__}: {exc}"}
        return None
    log(f"{key} done in {time.perf_counter() - start:.1f} s")
    return value


def final_rows(vae, default, seed, baselines, X_train, X_test) -> list[dict]:
    """Section 4: every method's held-out median and p90 L2 in one table."""
    rows = [
        {
            "method": "BetaCurveVAE encoder (defaults)",
            "latent_dims": vae._n_features_out,
            "fit_seconds": default["fit_seconds"],
            "median_l2": default["median_l2"],
            "p90_l2": default["p90_l2"],
            "note": f"{default['n_iter']} epochs",
        }
    ]
    if matcher_class() is not None:
        X_hat = matched_reconstruction(make_matcher(vae, X_train), X_test)
        rows.append(
            {
                "method": "LatentMatcher (on that fit)",
                "latent_dims": vae._n_features_out,
                "fit_seconds": default["fit_seconds"],
                **l2_summary(X_test, X_hat),
                "note": "batched Nelder-Mead from the encoder's mean",
            }
        )
    if seed is not None:
        same = seed_at(seed["trajectory"], default["fit_seconds"])
        if same is not None and seed["seconds"] > default["fit_seconds"]:
            rows.append(
                {
                    "method": "seed recipe, same wall time as skvae's fit",
                    "latent_dims": 2,
                    "fit_seconds": same["seconds"],
                    "median_l2": same["median_l2"],
                    "p90_l2": same["p90_l2"],
                    "note": f"{same['epoch']} epochs",
                }
            )
        last = seed["trajectory"][-1]
        rows.append(
            {
                "method": "seed recipe, end of its budget",
                "latent_dims": 2,
                "fit_seconds": last["seconds"],
                "median_l2": last["median_l2"],
                "p90_l2": last["p90_l2"],
                "note": f"{last['epoch']} epochs",
            }
        )
    return rows + baselines


def memory_section(vae, mode: Mode) -> list[dict]:
    """Section 6: peak RSS of fit and of the large-input methods, each in a fresh process."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "vae.pkl"
        model_path.write_bytes(pickle.dumps(vae))
        fit_args = ["fit", "--n-rows", str(mode.n_train)]
        if mode.memory_fit_max_iter is not None:
            fit_args += ["--max-iter", str(mode.memory_fit_max_iter)]
        jobs = [fit_args]
        for task in ("transform", "inverse_transform", "score_samples"):
            jobs.append([task, "--model", str(model_path), "--n-rows", str(mode.memory_rows)])
        if mode.memory_match_rows and matcher_class() is not None:
            jobs.append(
                ["match", "--model", str(model_path), "--n-rows", str(mode.memory_match_rows)]
            )
        for arguments in jobs:
            log(f"  memory: {' '.join(a for a in arguments if not a.startswith(tmp))}")
            row = run_memory_worker(arguments)
            row.setdefault("task", arguments[0])
            if arguments[0] == "fit":
                row["max_iter"] = mode.memory_fit_max_iter or "default"
            rows.append(row)
    return rows


def run(mode: Mode) -> dict:
    results: dict = {"mode": mode.name, "notes": list(mode.notes), "machine": machine_info()}
    log(f"mode={mode.name}  machine: {results['machine']['cpu']}")
    X_train, _ = make_beta_curves(mode.n_train, random_state=0)
    X_test, _ = make_beta_curves(mode.n_test, random_state=1)
    results["data"] = {
        "family": "Beta log-pdf, alpha and beta ~ U(0, 5), 100 points on [0.01, 0.99]",
        "n_train": mode.n_train,
        "n_test": mode.n_test,
        "train_random_state": 0,
        "test_random_state": 1,
    }

    fitted = guarded(results, "default_fit", default_fit, X_train, X_test, mode)
    vae, default = fitted if fitted else (None, None)
    if default is not None:
        results["default_fit"] = default

    skvae_seconds = default["fit_seconds"] if default else None
    seed = guarded(results, "seed_recipe", seed_run, X_train, X_test, mode, skvae_seconds)
    if seed is not None:
        results["seed_recipe"] = {k: v for k, v in seed.items() if k != "model"}

    ttq: dict = {}
    if vae is not None:
        ttq["skvae_default_fit"] = {
            "epochs": default["n_iter"],
            "seconds": default["fit_seconds"],
            "median_l2": default["median_l2"],
            "p90_l2": default["p90_l2"],
        }
        ttq["skvae_endpoints"] = guarded(ttq, "endpoints", skvae_endpoints, X_train, X_test, mode)
        if mode.trajectory:
            points = guarded(
                ttq, "trajectory", skvae_trajectory, X_train, X_test, default["n_iter"], mode
            )
            ttq["skvae_trajectory"] = points
            if points:
                # partial_fit should retrace the default fit exactly (same schedule,
                # initialisation and random stream): check it on the last checkpoint.
                ttq["trajectory_reproduces_fit"] = bool(
                    points[-1]["median_l2"] == default["median_l2"]
                    and points[-1]["p90_l2"] == default["p90_l2"]
                )
    if seed is not None:
        ttq["seed_trajectory"] = seed["trajectory"]
    results["time_to_quality"] = ttq

    throughput = guarded(results, "throughput", seed_network_throughput, X_train, mode)
    if throughput is not None:
        results["throughput"] = {"skvae_loop_seed_network": throughput}
        if default is not None:
            results["throughput"]["skvae_default"] = {
                "seconds_per_epoch": default["seconds_per_epoch"],
                "curves_per_second": mode.n_train / default["seconds_per_epoch"],
            }
        if seed is not None:
            results["throughput"]["seed_recipe"] = {
                "seconds_per_epoch": seed["seconds_per_epoch"],
                "curves_per_second": seed["curves_per_second"],
            }

    baselines = guarded(results, "baselines", all_baselines, X_train, X_test, mode.kpca_fit_n)
    if vae is not None:
        final = guarded(
            results, "final", final_rows, vae, default, seed, baselines or [], X_train, X_test
        )
        if final is not None:
            results["final"] = final
        if seed is not None:
            matching = guarded(
                results,
                "matching",
                match_section,
                vae,
                seed["model"],
                X_train,
                X_test,
                scipy_targets=mode.scipy_targets,
                repeats=mode.match_repeats,
            )
            if matching is not None:
                results["matching"] = matching
        memory = guarded(results, "memory", memory_section, vae, mode)
        if memory is not None:
            results["memory"] = memory
    scaling = guarded(results, "scaling", scaling_section, mode, default)
    if scaling is not None:
        results["scaling"] = scaling
    pdf = guarded(results, "beta_pdf", pdf_section, mode)
    if pdf is not None:
        results["beta_pdf"] = pdf
    results["total_seconds"] = time.perf_counter() - _START
    return results


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="~3-5 minute version")
    group.add_argument("--smoke", action="store_true", help="~1 minute plumbing check")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: benchmarks/results, or benchmarks/results/quick|smoke)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit torch/BLAS/OpenMP threads (default: the libraries' own, all cores)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        set_threads(args.threads)
    mode = MODES["quick" if args.quick else "smoke" if args.smoke else "full"]
    out = args.out or _HERE / "results" / ("" if mode.name == "full" else mode.name)
    out.mkdir(parents=True, exist_ok=True)

    results = _jsonable(run(mode))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot = report.plot_time_to_quality(results, out / "time_to_quality.png")
    (out / "results.md").write_text(report.markdown(results, plot_name=plot))
    log(f"wrote {out / 'results.md'}, results.json" + (f", {plot}" if plot else ""))
    return results


if __name__ == "__main__":
    main()
