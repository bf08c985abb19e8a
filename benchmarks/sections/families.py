"""Beyond the Beta log-pdf: two-parameter families that are non-linear in their
parameters, where PCA needs many components and a 2-latent VAE can still be exact.

Families (``benchmarks/workloads/data.py``; 10,000 training and 2,000 held-out curves each,
100 points): Beta pdf (α, β), Gaussian bumps (centre, width), smoothed logistic steps (location,
steepness) and damped oscillations (frequency, damping). For each, a default
``BetaCurveVAE(random_state=first seed)`` (this checkout, in a child process) with its encoder
and ``LatentMatcher(prefit=True)``, against PCA(2), PCA(3) and PCA(5) fitted here.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed
from benchmarks.harness.modes import Mode
from benchmarks.workloads.baselines import pca
from benchmarks.workloads.data import family_split

TITLE = "Other families: VAE vs PCA"
FAMILIES = ("beta_pdf", "gaussian_bumps", "smoothed_steps", "damped_oscillations")
DESCRIPTIONS = {
    "beta_pdf": "Beta(α, β) pdf, α, β ~ U(0, 5), on [0.01, 0.99]",
    "gaussian_bumps": "exp(−(t−c)²/2w²), c ~ U(0.2, 0.8), w ~ U(0.03, 0.2)",
    "smoothed_steps": "1/(1+exp(−k(t−l))), l ~ U(0.2, 0.8), k ~ U(5, 60)",
    "damped_oscillations": "exp(−d t)·cos(2π f t), f ~ U(1, 5), d ~ U(0.5, 5)",
}


def measure(mode: Mode) -> dict:
    seed = mode.seeds[0]
    jobs = [
        {
            "kind": "fit",
            "family": family,
            "n_train": mode.n_train,
            "n_test": mode.n_test,
            "params": mode.fit_params,
            "random_state": seed,
            "device": "cpu",
            "matcher": True,
        }
        for family in FAMILIES
    ]
    fitted = versions.run_jobs(versions.NOW, jobs, mode.threads)
    out = {"random_state": seed, "quick": mode.quick, "families": {}}
    for family, result in zip(FAMILIES, fitted, strict=True):
        X_train, X_test = family_split(family, mode.n_train, mode.n_test)
        rows = [pca(X_train, X_test, k) for k in (2, 3, 5)]
        vae = {k: result.get(k) for k in ("fit_seconds", "n_iter", "encoder", "matcher")}
        out["families"][family] = {
            "vae": vae if not failed(result) else {"error": failed(result)},
            "warnings": result.get("warnings", []),
            "pca": rows,
            "median_norm": float(np.median(np.linalg.norm(X_test, axis=1))),
        }
    return out


def table(results: dict) -> str:
    rows = []
    for family, r in results["families"].items():
        vae, pcas = r["vae"], {p["method"]: p for p in r["pca"]}
        pca2 = pcas["PCA(2)"]["median_l2"]
        encoder = (vae.get("encoder") or {}).get("median_l2")
        rows.append(
            [
                DESCRIPTIONS.get(family, family),
                r["median_norm"],
                vae.get("fit_seconds"),
                vae.get("n_iter"),
                encoder,
                (vae.get("matcher") or {}).get("median_l2"),
                pca2,
                pcas["PCA(3)"]["median_l2"],
                pcas["PCA(5)"]["median_l2"],
                md.ratio(pca2, encoder),
                md.warnings_summary(r["warnings"]) if "error" not in vae else vae["error"],
            ]
        )
    return (
        f"Default `BetaCurveVAE(random_state={results['random_state']})` (this checkout"
        + (", quick mode: few epochs" if results["quick"] else "")
        + ") against PCA on 2,000 held-out curves per family; median L2 per curve. "
        "Median ‖x‖₂ gives the scale of each family.\n\n"
        + md.table(
            [
                "family",
                "median ‖x‖₂",
                "VAE fit s",
                "epochs",
                "VAE encoder",
                "LatentMatcher",
                "PCA(2)",
                "PCA(3)",
                "PCA(5)",
                "PCA(2) / encoder",
                "warnings during fit",
            ],
            rows,
        )
    )
