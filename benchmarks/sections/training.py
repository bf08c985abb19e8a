"""Training: default fits of this checkout and of skvae 0.1.0, side by side.

On 10,000 independent Beta log-pdf curves
(``benchmarks.workloads.data.independent_beta_curves``) with 2,000 held-out curves, for
every ``random_state`` in ``mode.seeds``, each version fits
``BetaCurveVAE(random_state=seed)`` with its own defaults (quick mode: ``max_iter=30``) in a
fresh child process; versions alternate their order from seed to seed. Reported per fit:
wall time, epochs, held-out median L2 of the encoder and of ``LatentMatcher(prefit=True)``,
spike epochs (after epoch 20, ``loss_curve_`` above its running minimum by more than log 2)
and every warning the fit emitted, with the file it is attributed to.

Time to quality: separate fits with smaller ``max_iter`` (each with its own schedule, what a
user gets by asking for fewer epochs) of the first seed, plus the default fits.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed, median, ratio, warnings_summary
from benchmarks.harness.modes import Mode
from benchmarks.workloads import fits

TITLE = "Training: default fits, now vs 0.1.0"

#: Acceptance targets (worst over random_state 0-2, full mode).
TARGETS = {"encoder": 0.010, "matcher": 0.007, "time_ratio": 0.75, "spikes": 2, "warnings": 0}


def _ttq_jobs(mode: Mode) -> list[dict]:
    base = fits.default_fit_job(mode, mode.seeds[0], versions.NOW)
    return [
        base
        | {
            "params": {**mode.fit_params, "max_iter": k},
            "matcher": False,
            "inference": None,
            "save_model": None,
        }
        for k in mode.ttq_max_iters
    ]


def measure(mode: Mode) -> dict:
    runs = fits.default_fits(mode)
    keep = ("inference", "model_path")
    runs = {
        v: [{k: x for k, x in r.items() if k not in keep} for r in rs] for v, rs in runs.items()
    }
    ttq = {}
    for version in versions.versions(mode, 1):
        results = versions.run_jobs(version, _ttq_jobs(mode), mode.threads)
        ttq[version] = [
            {"max_iter": k} | {key: r.get(key) for key in ("fit_seconds", "n_iter", "encoder")}
            if not failed(r)
            else {"max_iter": k, "error": failed(r)}
            for k, r in zip(mode.ttq_max_iters, results, strict=True)
        ]
    return {
        "fits": runs,
        "time_to_quality": ttq,
        "baseline_note": versions.baseline_note(mode),
        "quick": mode.quick,
        "n_train": mode.n_train,
        "n_test": mode.n_test,
        "fit_params": mode.fit_params,
    }


def _ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if not failed(r)]


def _l2(result: dict, part: str) -> float | None:
    """Held-out median L2 of ``part`` ("encoder" or "matcher"), None if it failed."""
    return (result.get(part) or {}).get("median_l2")


def _summary(runs: list[dict]) -> dict:
    runs = _ok(runs)
    if not runs:
        return {}
    warns = [w for r in runs for w in r["warnings"]]
    matchers = [_l2(r, "matcher") for r in runs]
    return {
        "fit_seconds": median([r["fit_seconds"] for r in runs]),
        "epochs": median([r["n_iter"] for r in runs]),
        "encoder": max(r["encoder"]["median_l2"] for r in runs),
        "matcher": None if None in matchers else max(matchers),
        "spikes": max(r["spikes"] for r in runs),
        "warnings": len(warns),
        "at_caller": all(w["at_caller"] for w in warns) if warns else None,
    }


def _defaults(now: list[dict], old: list[dict]) -> str:
    """The fits' parameters (``get_params()``), and those that differ between versions."""
    p_now = next((r["params"] for r in _ok(now)), None)
    p_old = next((r["params"] for r in _ok(old)), None)
    if p_now is None:
        return ""
    shown = {k: v for k, v in p_now.items() if k != "random_state"}
    text = "Parameters of the fits (now): `" + ", ".join(f"{k}={v}" for k, v in shown.items())
    text += "`."
    if p_old is not None:
        changed = [
            f"{k}: {p_old.get(k, '–')} → {p_now.get(k, '–')}"
            for k in sorted(set(p_now) | set(p_old))
            if p_now.get(k) != p_old.get(k)
        ]
        text += " Changed since 0.1.0: " + ("; ".join(changed) if changed else "none") + "."
    return text


def table(results: dict) -> str:
    runs = results["fits"]
    now, old = runs.get(versions.NOW, []), runs.get(versions.BASELINE, [])
    parts = [
        f"`BetaCurveVAE(random_state=s).fit(X)` on {results['n_train']:,} independent Beta "
        f"log-pdf curves; held-out median L2 on {results['n_test']:,} curves ('encoder': "
        "`inverse_transform(transform(X))`, which refines the encoder's means by "
        "`refine_steps` Gauss-Newton steps in this checkout, not in 0.1.0). "
        + (
            f"**Quick mode: {results['fit_params']}** -- the targets apply to full mode."
            if results["quick"]
            else "Each version with its own defaults."
        ),
        results["baseline_note"],
    ]
    parts.append(_defaults(now, old))
    by_seed = {r.get("random_state"): r for r in old}
    rows = []
    for version, group in ((versions.BASELINE, old), (versions.NOW, now)):
        for r in group:
            if failed(r):
                rows.append([version, r.get("random_state"), failed(r)] + [None] * 7)
                continue
            base = by_seed.get(r["random_state"], {})
            rows.append(
                [
                    version,
                    r["random_state"],
                    r["fit_seconds"],
                    ratio(r["fit_seconds"], base.get("fit_seconds"))
                    if version == versions.NOW
                    else None,
                    r["n_iter"],
                    r["seconds_per_epoch"],
                    _l2(r, "encoder"),
                    _l2(r, "matcher") or (r.get("matcher") or {}).get("error"),
                    r["spikes"],
                    warnings_summary(r["warnings"]),
                ]
            )
    parts.append(
        md.table(
            [
                "version",
                "random_state",
                "fit s",
                "× 0.1.0 time",
                "epochs",
                "s/epoch",
                "encoder median L2",
                "matcher median L2",
                "spike epochs",
                "warnings during fit",
            ],
            rows,
        )
    )
    s_now, s_old = _summary(now), _summary(old)
    if s_now:
        t = TARGETS
        time_ratio = ratio(s_now["fit_seconds"], s_old.get("fit_seconds"))
        summary = [
            ["median fit seconds", s_old.get("fit_seconds"), s_now["fit_seconds"], None],
            ["fit time, now / 0.1.0 (medians)", None, time_ratio, f"≤ {t['time_ratio']}"],
            [
                "worst encoder median L2",
                s_old.get("encoder"),
                s_now["encoder"],
                f"≤ {t['encoder']}",
            ],
            [
                "worst matcher median L2",
                s_old.get("matcher"),
                s_now["matcher"],
                f"≤ {t['matcher']}",
            ],
            [
                "most spike epochs in a fit",
                s_old.get("spikes"),
                s_now["spikes"],
                f"≤ {t['spikes']}",
            ],
            ["warnings, all fits", s_old.get("warnings"), s_now["warnings"], "0"],
            ["all warnings at the caller's line", s_old.get("at_caller"), s_now["at_caller"], None],
        ]
        met = [
            time_ratio is not None and time_ratio <= t["time_ratio"],
            s_now["encoder"] <= t["encoder"],
            (s_now["matcher"] or float("inf")) <= t["matcher"],
            s_now["spikes"] <= t["spikes"],
            s_now["warnings"] == t["warnings"],
        ]
        parts.append(md.table(["worst over seeds", "0.1.0", "now", "target"], summary))
        parts.append(
            f"Targets met by this run: {sum(met)} of {len(met)}"
            + (" (quick mode: not meaningful)." if results["quick"] else ".")
        )
    ttq_rows = [
        [
            v,
            p["max_iter"],
            p.get("n_iter"),
            p.get("fit_seconds"),
            (p.get("encoder") or {}).get("median_l2"),
            p.get("error"),
        ]
        for v, points in results["time_to_quality"].items()
        for p in points
    ]
    parts.append(
        "**Time to quality** (`time_to_quality.png`): separate fits with a smaller `max_iter` "
        "(first seed), each with its own full schedule, next to the default fits above.\n\n"
        + md.table(
            ["version", "max_iter", "epochs", "fit s", "encoder median L2", "error"], ttq_rows
        )
        + "\n\n![time to quality](time_to_quality.png)\n\n![loss curves](loss_curves.png)"
    )
    return "\n\n".join(parts)


def figures(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {versions.BASELINE: "C3", versions.NOW: "C0"}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for version, points in results["time_to_quality"].items():
        defaults = _ok(results["fits"].get(version, []))
        line = [p for p in points if "error" not in p and p.get("encoder")]
        line += defaults[:1]
        line.sort(key=lambda p: p["fit_seconds"])
        ax.plot(
            [p["fit_seconds"] for p in line],
            [p["encoder"]["median_l2"] for p in line],
            "-o",
            c=colours.get(version),
            label=f"{version}: max_iter = {', '.join(str(p['max_iter']) for p in points)}, default",
        )
        ax.plot(
            [r["fit_seconds"] for r in defaults],
            [r["encoder"]["median_l2"] for r in defaults],
            "*",
            ms=11,
            c=colours.get(version),
            label=f"{version}: default fits, random_state {[r['random_state'] for r in defaults]}",
        )
    ax.axhline(TARGETS["encoder"], c="grey", ls=":", lw=1, label="target, encoder")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("fit wall seconds")
    ax.set_ylabel("held-out median L2 (encoder)")
    ax.set_title("Time to quality, independent Beta log-pdf, 10k curves", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5)
    fig.tight_layout()
    fig.savefig(out / "time_to_quality.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for version, runs in results["fits"].items():
        for index, r in enumerate(_ok(runs)):
            curve = r["loss_curve"]
            epochs = range(1, len(curve) + 1)
            label = f"{version}" if index == 0 else None
            ax.plot(epochs, curve, c=colours.get(version), lw=0.8, alpha=0.8, label=label)
            spikes = r["spike_epochs"]
            ax.plot(spikes, [curve[e - 1] for e in spikes], "x", c=colours.get(version), ms=4)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss_curve_ (x: spike epochs)")
    ax.set_title("Training loss of the default fits (all seeds)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=120)
    plt.close(fig)
    return ["time_to_quality.png", "loss_curves.png"]
