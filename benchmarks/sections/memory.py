"""Peak memory of fit and of the large-input methods, each in a fresh process.

Each row runs ``benchmarks/harness/memory_worker.py`` in a new interpreter: baseline RSS after
importing torch and skvae and loading the fitted model (this checkout's default fit of the
first seed), *before* any data exists; then the input is built (independent Beta log-pdf
curves tiled block by block); the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs``) and read after one call. RSS is used rather than tracemalloc
because it sees torch's allocator. Working memory = peak − baseline − input − output;
budget = input + output + 200 MB.
"""

from __future__ import annotations

from benchmarks.harness import markdown as md
from benchmarks.harness.measure import run_memory_worker
from benchmarks.harness.modes import Mode
from benchmarks.workloads import fits

TITLE = "Peak memory (fresh process per operation)"


def measure(mode: Mode) -> dict:
    model_path = fits.default_fit(mode, mode.seeds[0]).get("model_path")
    if model_path is None:
        return {"error": "the default fit of the first seed failed; no model to measure"}
    fit_args = ["fit", "--n-rows", str(mode.n_train)]
    if mode.quick:
        fit_args += ["--max-iter", "10"]  # memory does not grow with epochs
    jobs = [fit_args] + [
        [task, "--model", model_path, "--n-rows", str(mode.memory_rows)]
        for task in ("transform", "inverse_transform", "score_samples")
    ]
    jobs.append(["match", "--model", model_path, "--n-rows", str(mode.memory_match_rows)])
    rows = []
    for arguments in jobs:
        row = run_memory_worker(arguments)
        row.setdefault("task", arguments[0])
        if arguments[0] == "fit":
            row["max_iter"] = 10 if mode.quick else "default"
        rows.append(row)
    return {"rows": rows}


def table(results: dict) -> str:
    body = []
    for x in results["rows"]:
        if "error" in x:
            body.append([x["task"]] + [None] * 8 + [f"failed: {x['error']}"])
            continue
        label = x["task"] + (f" (max_iter={x['max_iter']})" if x["task"] == "fit" else "")
        body.append(
            [
                label,
                x["n_rows"],
                x["seconds"],
                x["baseline_rss_mb"],
                x["input_mb"],
                x["output_mb"],
                x["peak_over_baseline_mb"],
                x["working_mb"],
                x["budget_mb"],
                x["within_budget"],
            ]
        )
    headers = ["task", "rows", "seconds", "baseline RSS MB", "input MB", "output MB"]
    headers += ["peak − baseline MB", "working MB", "budget MB", "within budget"]
    return (
        "One fresh process per row; working = peak − baseline − input − output (MB); for fit, "
        "output is the network's parameters.\n\n" + md.table(headers, body)
    )
