"""Held-out reconstruction error of every method on the Beta log-pdf split.

skvae's default fit (first seed) of both versions, encoder and LatentMatcher; the blog
post's recipe at skvae's fit time and at the end of its budget; PCA(1-3), RBF KernelPCA(2)
(fitted on a subsample: O(n²) memory) and FactorAnalysis(2) (100 EM iterations), see
``benchmarks/workloads/baselines.py``.

The Beta log-pdf is (α−1)·log x + (β−1)·log(1−x) − log B(α, β): linear in three functions,
so PCA(3) is exact on this family. The 2-latent VAE competes with the 2-D methods; the
families section shows families that are non-linear in their parameters.
"""

from __future__ import annotations

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed
from benchmarks.harness.modes import Mode
from benchmarks.workloads import blog_post, fits
from benchmarks.workloads.baselines import all_baselines
from benchmarks.workloads.data import family_split

TITLE = "Held-out reconstruction error of every method (Beta log-pdf)"


def measure(mode: Mode) -> dict:
    rows = []
    for version in versions.versions(mode):
        result = fits.default_fit(mode, mode.seeds[0], version)
        if failed(result):
            rows.append({"method": f"BetaCurveVAE {version}", "note": failed(result)})
            continue
        common = {"latent_dims": 2, "fit_seconds": result["fit_seconds"]}
        note = f"{result['n_iter']} epochs, random_state={mode.seeds[0]}"
        rows.append({"method": f"BetaCurveVAE {version}, encoder"} | common | result["encoder"])
        rows[-1]["note"] = note
        rows.append({"method": f"BetaCurveVAE {version}, LatentMatcher"} | common)
        rows[-1] |= result["matcher"] | {"note": "prefit on that fit"}
    recipe = blog_post.trained(mode)
    now_fit = fits.default_fit(mode, mode.seeds[0]).get("fit_seconds")
    within = [p for p in recipe["trajectory"] if now_fit and p["seconds"] <= now_fit]
    points = ([within[-1]] if within and within[-1] is not recipe["trajectory"][-1] else []) + [
        recipe["trajectory"][-1]
    ]
    for point in points:
        rows.append(
            {"method": "blog post's recipe", "latent_dims": 2, "fit_seconds": point["seconds"]}
            | {k: point[k] for k in ("median_l2", "p90_l2")}
            | {"note": f"{point['epoch']} epochs"}
        )
    X_train, X_test = family_split("beta_logpdf", mode.n_train, mode.n_test)
    rows += all_baselines(X_train, X_test, mode.kpca_fit_n)
    return {"rows": rows}


def table(results: dict) -> str:
    return (
        "All methods on the same 2,000 held-out curves. PCA(3) is exact on the log-pdf "
        "(linear in log x, log(1−x), 1); compare the 2-latent VAE with the 2-D methods.\n\n"
        + md.table(
            ["method", "latent dims", "fit seconds", "median L2", "p90 L2", "note"],
            [
                [
                    r["method"],
                    r.get("latent_dims"),
                    r.get("fit_seconds"),
                    r.get("median_l2"),
                    r.get("p90_l2"),
                    r.get("note", ""),
                ]
                for r in results["rows"]
            ],
        )
    )
