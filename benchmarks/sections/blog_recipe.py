"""The original blog post's training recipe next to skvae.

The recipe is ``benchmarks/workloads/blog_post.py``.

The recipe (3×32 tanh, fixed η = 1 with a sampled reconstruction, Adam 1e-4, γ = 0.99 per
epoch, batches of 256 from a per-item DataLoader, unscaled inputs) trains on the Beta
log-pdf split for ``mode.recipe_budget_s`` training seconds, evaluated on the held-out
curves along the way (the clock pauses while evaluating). Its training throughput is set
against skvae's default fits of both versions (training curves × epochs / fit seconds).
"""

from __future__ import annotations

import math

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed
from benchmarks.harness.modes import Mode
from benchmarks.workloads import blog_post, fits

TITLE = "The blog post's recipe: time to quality and throughput"


def measure(mode: Mode) -> dict:
    recipe = blog_post.trained(mode)
    skvae = {}
    for version in versions.versions(mode):
        result = fits.default_fit(mode, mode.seeds[0], version)
        if not failed(result):
            skvae[version] = {
                k: result[k] for k in ("fit_seconds", "n_iter", "curves_per_s", "encoder")
            }
    return {
        "budget_s": mode.recipe_budget_s,
        "epochs": recipe["epochs"],
        "seconds": recipe["seconds"],
        "seconds_per_epoch": recipe["seconds_per_epoch"],
        "curves_per_s": recipe["curves_per_s"],
        "trajectory": recipe["trajectory"],
        "skvae": skvae,
    }


def table(results: dict) -> str:
    points = results["trajectory"]
    keep = 10
    if len(points) > keep:
        step = math.ceil(len(points) / keep)
        points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
    recipe_rate = results["curves_per_s"]
    rows = [["blog post's recipe (3×32 tanh, batch 256)", recipe_rate, 1.0, None, None]]
    for version, r in results["skvae"].items():
        rows.append(
            [
                f"BetaCurveVAE {version} default fit",
                r["curves_per_s"],
                md.ratio(r["curves_per_s"], recipe_rate),
                r["fit_seconds"],
                r["encoder"]["median_l2"],
            ]
        )
    return "\n\n".join(
        [
            f"Trained for {md.fmt(results['seconds'])} s ({results['epochs']} epochs; budget "
            f"{md.fmt(results['budget_s'])} s); held-out error along the way:",
            md.table(
                ["epoch", "training s", "median L2", "p90 L2"],
                [[p["epoch"], p["seconds"], p["median_l2"], p["p90_l2"]] for p in points],
            ),
            "Training throughput (training curves per second) and skvae's default fits:",
            md.table(
                ["setup", "curves/s", "× recipe", "fit s", "encoder median L2"],
                rows,
            ),
        ]
    )
