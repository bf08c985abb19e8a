"""Markdown tables of sections 5 (matching) and 6 (peak memory)."""

from __future__ import annotations

from benchmarks.tables import _error, fmt, table


def matching(r: dict, plot=None) -> list[str]:
    m = r.get("matching")
    if (err := _error(m)) is not None:
        return err
    lines = [
        f"LatentMatcher matches all {m['n_targets']:,} held-out targets; the scipy loops run "
        f"on the first {m['scipy_targets']} (their cost per target is constant, so the "
        "rate extrapolates). The second scipy row uses skvae's own decoder, separating the "
        "algorithm from the model. L2 is each method's matched reconstruction error.",
        "",
        *table(
            ["method", "targets", "seconds", "targets/s", "mean f-evals", "median L2", "p90 L2"],
            [
                [
                    x["method"],
                    x["n_targets"],
                    x["seconds"],
                    x["targets_per_second"],
                    x.get("mean_nfev"),
                    x["median_l2"],
                    x["p90_l2"],
                ]
                for x in m["rows"]
            ],
        ),
        "",
    ]
    if not m.get("available"):
        return lines + ["_skvae.LatentMatcher is not available in this checkout._"]
    rate = m["matcher_targets_per_second"]
    lines += [
        f"LatentMatcher: **{fmt(rate)} targets/s**, **{fmt(m['ratio_vs_seed_loop'])}×** the "
        f"seed's loop and {fmt(m['ratio_vs_scipy_same_decoder'])}× scipy on the same decoder; "
        f"matched median L2 **{fmt(m['rows'][-1]['median_l2'])}** (encoder alone on the "
        f"subset: {fmt(m['encoder_on_subset']['median_l2'])}, matcher on the subset: "
        f"{fmt(m['matcher_on_subset']['median_l2'])}). Issue 3's targets: ≥ 10,000 targets/s → "
        f"{fmt(rate >= 1e4)}; ≥ 100× the scipy loop → {fmt(m['ratio_vs_seed_loop'] >= 100)}; "
        f"median L2 ≤ 0.01 → {fmt(m['rows'][-1]['median_l2'] <= 0.01)}.",
        "",
        "**Partial targets** (half the points set to NaN; the error is of the completed curve "
        "on *all* 100 points). *Every other point*: the odd-indexed points are missing. "
        "*Random half*: 50 points per curve drawn at random (numpy seed 0). The PCA rows fit "
        "the components to the observed points by least squares.",
        "",
        *table(
            ["missing", "method", "median L2 (all points)", "p90 L2", "targets/s"],
            [
                [
                    x["pattern"],
                    x["method"],
                    x["median_l2"],
                    x["p90_l2"],
                    x.get("targets_per_second"),
                ]
                for x in m.get("partial", [])
            ],
        ),
    ]
    return lines


def memory(r: dict, plot=None) -> list[str]:
    rows = r.get("memory")
    if (err := _error(rows)) is not None:
        return err
    body = []
    for x in rows:
        if "error" in x:
            body.append([x["task"]] + ["–"] * 8 + [f"failed: {x['error']}"])
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
    return [
        "Each row runs in a fresh process: baseline RSS after importing torch/skvae and "
        "loading the fitted model, *before* any data exists; the input is then built "
        "(1,000,000 × 100 float64 curves = 10,000 distinct curves tiled with N(0, 10⁻³) "
        "noise, filled block by block); the peak RSS is reset to the current RSS "
        "(Linux `clear_refs`) and read after the call. Working memory = peak − baseline "
        "− input − output. Budget (issue 6) = input + output + 200 MB above the baseline. "
        "For fit, output is the network's parameters.",
        "",
        *table(
            [
                "task",
                "rows",
                "seconds",
                "baseline RSS MB",
                "input MB",
                "output MB",
                "peak − baseline MB",
                "working MB",
                "budget MB",
                "within budget",
            ],
            body,
        ),
    ]
