"""Markdown tables of results.md, one builder per section: ``builder(results, plot) -> lines``."""

from __future__ import annotations

import math


def fmt(value, digits: int = 3) -> str:
    """Numbers with ``digits`` significant digits; booleans as yes/no; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 10 ** (digits + 3) or abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
        return f"{value:,.{decimals}f}"
    return str(value)


def table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return lines


def _error(section) -> list[str] | None:
    if section is None:
        return ["_Not run._"]
    if isinstance(section, dict) and "error" in section:
        return [f"_Failed: {section['error']}_"]
    return None


def machine_table(m: dict) -> list[str]:
    cores = f"{m.get('logical_cores')} logical, {m.get('usable_cores')} usable"
    rows = [
        ["date", m.get("date")],
        ["CPU", m.get("cpu")],
        ["cores", cores],
        ["torch threads", m.get("torch_threads")],
        ["thread pools", ", ".join(f"{k}: {v}" for k, v in (m.get("threadpools") or {}).items())],
        ["memory (GB)", m.get("memory_gb")],
        ["1-min load average at start", m.get("load_average_1m")],
        ["platform", m.get("platform")],
        [
            "Python / torch / scikit-learn",
            f"{m.get('python')} / {m.get('torch')} / {m.get('sklearn')}",
        ],
        ["numpy / scipy / skvae", f"{m.get('numpy')} / {m.get('scipy')} / {m.get('skvae')}"],
        ["git commit", m.get("git_commit")],
    ]
    return table(["", ""], rows)


def default_fit(r: dict, plot=None) -> list[str]:
    d = r.get("default_fit")
    if (err := _error(d)) is not None:
        return err
    params = ", ".join(f"{k}={v}" for k, v in d["params"].items())
    n = len(d["all_fit_seconds"])
    return [
        f"`BetaCurveVAE(random_state=0).fit(X)` on {fmt(r.get('data', {}).get('n_train'))} "
        f"curves. Parameters: `{params}`.",
        "",
        *table(
            ["fit seconds", "epochs", "s/epoch", "held-out median L2", "p90 L2", "σ (noise)"],
            [
                [
                    d["fit_seconds"],
                    d["n_iter"],
                    d["seconds_per_epoch"],
                    d["median_l2"],
                    d["p90_l2"],
                    d["noise"],
                ]
            ],
        ),
        "",
        f"Fit time is the median of {n} fit(s) ({', '.join(fmt(t) for t in d['all_fit_seconds'])}"
        " s). Issue 2's targets: fit ≤ 30 s → "
        f"{fmt(d['meets_time_target'])}; held-out median L2 ≤ 0.02 → {fmt(d['meets_l2_target'])}.",
    ]


def throughput(r: dict, plot=None) -> list[str]:
    t = r.get("throughput")
    if (err := _error(t)) is not None:
        return err
    seed = (t.get("seed_recipe") or {}).get("curves_per_second")
    params = (r.get("default_fit") or {}).get("params", {})
    sizes = params.get("hidden_layer_sizes", [])
    sizes = [sizes] if isinstance(sizes, int) else sizes
    network = "×".join(map(str, sizes)) + f" {params.get('activation', '?')}"
    if len(set(sizes)) == 1 and len(sizes) > 1:
        network = f"{len(sizes)}×{sizes[0]} {params.get('activation', '?')}"
    specs = [
        (
            "skvae_default",
            "BetaCurveVAE defaults (one-tensor batches)",
            network,
            params.get("batch_size"),
        ),
        ("skvae_loop_seed_network", "BetaCurveVAE loop with the seed's network", "3×32 tanh", 256),
        ("seed_recipe", "seed recipe (per-item Dataset + DataLoader)", "3×32 tanh", 256),
    ]
    rows = []
    for key, name, net, batch in specs:
        if key in t:
            cps = t[key]["curves_per_second"]
            rows.append(
                [name, net, batch, t[key]["seconds_per_epoch"], cps, cps / seed if seed else None]
            )
    return [
        "Training curves per second (training curves × epochs / training seconds).",
        "",
        *table(["setup", "network", "batch", "s/epoch", "curves/s", "× seed"], rows),
    ]


def _trajectory_rows(points: list[dict], keep: int = 12) -> list[list]:
    if len(points) > keep:
        step = math.ceil(len(points) / keep)
        points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
    return [[p["epoch"], p["seconds"], p["median_l2"], p["p90_l2"]] for p in points]


def time_to_quality(r: dict, plot=None) -> list[str]:
    t = r.get("time_to_quality")
    if (err := _error(t)) is not None:
        return err
    lines = [f"![time to quality]({plot})", ""] if plot else []
    lines += [
        "Seconds are training wall time only: the clock is paused while held-out curves are "
        "evaluated. skvae's cosine learning-rate schedule spans `max_iter`, so two views:",
        "",
        "* **separate fits** at several `max_iter` (each its own full schedule): what a user "
        "gets by asking for fewer epochs; the last point is the default fit of section 1;",
        "* **checkpoints of one default run** (full mode): `partial_fit` one epoch at a time "
        "with the default `max_iter`, which follows the default fit's own schedule, "
        "initialisation and random stream -- the curve a user watching the default fit sees.",
        "",
        "The seed recipe is trained for a wall budget "
        f"({fmt(r.get('seed_recipe', {}).get('seconds'))} s, "
        f"{fmt(r.get('seed_recipe', {}).get('epochs'))} epochs) and evaluated along the way "
        "(reconstruction from the encoder's mean).",
        "",
    ]
    ends = list(t.get("skvae_endpoints") or [])
    if t.get("skvae_default_fit"):
        d = t["skvae_default_fit"]
        ends.append({"max_iter": "default", "epochs": d["epochs"], **d})
    if ends:
        lines += ["**BetaCurveVAE, separate fits**", ""]
        lines += table(
            ["max_iter", "epochs", "seconds", "median L2", "p90 L2"],
            [[e["max_iter"], e["epochs"], e["seconds"], e["median_l2"], e["p90_l2"]] for e in ends],
        )
        lines.append("")
    if "trajectory_reproduces_fit" in t:
        lines += [
            "The last checkpoint of the `partial_fit` run equals the default fit's result "
            f"exactly: {fmt(t['trajectory_reproduces_fit'])}.",
            "",
        ]
    for key, title in (
        ("skvae_trajectory", "BetaCurveVAE, checkpoints of the default run"),
        ("seed_trajectory", "Seed recipe"),
    ):
        if isinstance(t.get(key), list) and t[key]:
            lines += [f"**{title}** (a selection of the evaluations; all in results.json)", ""]
            lines += table(["epoch", "seconds", "median L2", "p90 L2"], _trajectory_rows(t[key]))
            lines.append("")
    return lines


def final(r: dict, plot=None) -> list[str]:
    rows = r.get("final")
    if (err := _error(rows)) is not None:
        return err
    return [
        "All methods on the same 2,000 held-out curves. The Beta log-pdf is "
        "log f = (α−1)·log x + (β−1)·log(1−x) − log B(α, β): exactly linear in the three "
        "functions (log x, log(1−x), 1), so **PCA(3) reconstructs it exactly** (up to "
        "rounding) and is the right tool for this family. The 2-latent VAE competes with "
        "the 2-dimensional methods: its value is a 2-D manifold (α, β have two degrees of "
        "freedom) and families that are non-linear in their parameters (section 8).",
        "",
        *table(
            ["method", "latent dims", "fit seconds", "median L2", "p90 L2", "note"],
            [
                [
                    x["method"],
                    x["latent_dims"],
                    x["fit_seconds"],
                    x["median_l2"],
                    x["p90_l2"],
                    x.get("note", ""),
                ]
                for x in rows
            ],
        ),
    ]


def scaling(r: dict, plot=None) -> list[str]:
    s = r.get("scaling")
    if (err := _error(s)) is not None:
        return err
    lines = [
        "**n_samples** (the same fixed number of epochs for both, so time per epoch is "
        "comparable; skvae's time includes its per-fit set-up):",
        "",
        *table(
            [
                "n_samples",
                "epochs",
                "skvae s/epoch",
                "skvae curves/s",
                "seed s/epoch",
                "seed curves/s",
            ],
            [
                [
                    x["n_samples"],
                    x["epochs"],
                    x["skvae_seconds_per_epoch"],
                    x["skvae_curves_per_second"],
                    x["seed_seconds_per_epoch"],
                    x["seed_curves_per_second"],
                ]
                for x in s["n_samples"]
            ],
        ),
        "",
        "**n_points** (10,000 curves on a grid of n_points; default fits with held-out "
        "error in full mode, fixed epochs and timing only in quick mode; RMS per point = "
        "median L2 / √n_points, comparable across grids):",
        "",
        *table(
            [
                "n_points",
                "epochs",
                "fit seconds",
                "s/epoch",
                "median L2",
                "p90 L2",
                "median RMS/point",
            ],
            [
                [
                    x["n_points"],
                    x["n_iter"],
                    x["fit_seconds"],
                    x["seconds_per_epoch"],
                    x.get("median_l2"),
                    x.get("p90_l2"),
                    x.get("median_rms_per_point"),
                ]
                for x in s["n_points"]
            ],
        ),
    ]
    return lines


def beta_pdf(r: dict, plot=None) -> list[str]:
    p = r.get("beta_pdf")
    if (err := _error(p)) is not None:
        return err
    norm = p["median_curve_norm"]
    return [
        'Beta **pdf** curves (`make_beta_curves(kind="pdf")`, same α, β ranges and splits). '
        "Unlike the log-pdf, the pdf is not a fixed linear combination of a few basis "
        "functions, so PCA needs more components; a 2-latent model can still be exact in "
        f"principle. Median held-out ‖x‖₂ = {fmt(norm)} for scale (relative = median L2 / that). "
        f"The VAE trained {p['n_iter']} epochs with default parameters.",
        "",
        *table(
            ["method", "latent dims", "fit seconds", "median L2", "relative", "p90 L2"],
            [
                [
                    x["method"],
                    x["latent_dims"],
                    x["fit_seconds"],
                    x["median_l2"],
                    x["median_l2"] / norm,
                    x["p90_l2"],
                ]
                for x in p["rows"]
            ],
        ),
    ]
