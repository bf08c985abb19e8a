"""Child process for peak-memory measurements.

Started by :func:`benchmarks.harness.measure.run_memory_worker`.

Each task runs in a fresh interpreter so that its peak resident set size (RSS) is its own:

1. import numpy, torch and skvae, and load the fitted model (if any);
2. read the *baseline* RSS -- before any data exists;
3. build the input (independent Beta log-pdf curves tiled block by block, so building them
   adds no peak of its own beyond the input array);
4. reset the peak RSS to the current RSS (Linux ``clear_refs``), run the operation once,
   and read the peak.

It prints one JSON line. Usage::

    python -m benchmarks.harness.memory_worker fit --n-rows 10000 [--max-iter 200]
    python -m benchmarks.harness.memory_worker transform --model vae.pkl --n-rows 1000000
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
import warnings

import numpy as np

from benchmarks.harness.measure import MB, current_rss_mb, peak_rss_mb, reset_peak_rss
from benchmarks.workloads.data import large_beta_curves

#: Working memory allowed on top of input + output: the memory budget of each operation.
HEADROOM_MB = 200.0


def _operation(args: argparse.Namespace, model):
    """Return (input array, callable running the operation once)."""
    task, n_rows = args.task, args.n_rows
    if task == "fit":
        from skvae import BetaCurveVAE

        X = large_beta_curves(n_rows)
        params = {} if args.max_iter is None else {"max_iter": args.max_iter}
        return X, lambda: BetaCurveVAE(random_state=0, **params).fit(X)
    if task == "inverse_transform":
        Z = np.random.default_rng(0).standard_normal((n_rows, model.get_params()["latent_dims"]))
        return Z, lambda: model.inverse_transform(Z)
    X = large_beta_curves(n_rows)
    if task == "match":
        from skvae import LatentMatcher

        matcher = LatentMatcher(model, prefit=True).fit(X[:100])
        return X, lambda: matcher.transform(X)
    method = getattr(model, task)
    return X, lambda: method(X)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "task", choices=["fit", "transform", "inverse_transform", "score_samples", "match"]
    )
    parser.add_argument("--model", help="pickled fitted BetaCurveVAE (all tasks but fit)")
    parser.add_argument("--n-rows", type=int, required=True)
    parser.add_argument("--max-iter", type=int, default=None, help="fit only (default: default)")
    args = parser.parse_args(argv)

    import torch  # noqa: F401  (counted in the baseline, as in any user process)

    import skvae  # noqa: F401

    model = None
    if args.task != "fit":
        with open(args.model, "rb") as handle:
            model = pickle.load(handle)
    baseline = current_rss_mb()

    X, run = _operation(args, model)
    before = current_rss_mb()
    reset = reset_peak_rss()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run()
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()

    input_mb = X.nbytes / MB
    output_mb = result.nbytes / MB if isinstance(result, np.ndarray) else 0.0
    if args.task == "fit":
        output_mb = sum(p.numel() * p.element_size() for p in result.module_.parameters()) / MB
    over_baseline = peak - baseline
    budget = input_mb + output_mb + HEADROOM_MB
    report = {
        "task": args.task,
        "n_rows": args.n_rows,
        "seconds": seconds,
        "rows_per_second": args.n_rows / seconds if args.task != "fit" else None,
        "baseline_rss_mb": baseline,
        "rss_before_op_mb": before,
        "peak_rss_mb": peak,
        "peak_reset": reset,
        "input_mb": input_mb,
        "output_mb": output_mb,
        "peak_over_baseline_mb": over_baseline,
        "working_mb": over_baseline - input_mb - output_mb,
        "budget_mb": budget,
        "within_budget": bool(over_baseline <= budget),
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
