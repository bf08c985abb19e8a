"""Matching: LatentMatcher against the blog post's per-target scipy loop; partial targets.

* The blog post's loop: one ``scipy.optimize.minimize(method="Nelder-Mead")`` per target from
  z = 0, one torch decoder call per evaluation, on the blog recipe's decoder
  (``benchmarks/workloads/blog_post.py``) and on skvae's decoder (same model as LatentMatcher: the
  ratio of algorithms alone), on the first ``mode.scipy_targets`` held-out curves (their
  cost per target is constant, so the rate extrapolates).
* LatentMatcher (``prefit=True``, defaults) of both versions: targets/s from the inference
  section's child processes, median L2 on all 2,000 held-out curves.
* Partial targets (this checkout): half of each held-out curve set to NaN, either every other
  point or a random half per curve; the completed curve's error on all points, next to
  PCA(2)/PCA(3) completions by least squares on the observed points.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed
from benchmarks.harness.measure import l2_summary
from benchmarks.harness.modes import Mode
from benchmarks.workloads import blog_post, fits
from benchmarks.workloads.baselines import pca_completion
from benchmarks.workloads.data import family_split

TITLE = "Matching: LatentMatcher vs the blog post's scipy loop"


def skvae_decode_one(vae):
    """Per-point decoding in data units with skvae's decoder, in the blog loop's style."""
    decoder, scale, mean = vae.decoder_, float(vae.scale_), vae.mean_

    def decode(z: np.ndarray) -> np.ndarray:
        return decoder(torch.FloatTensor(z)).detach().numpy() * scale + mean

    return decode


def missing_masks(shape: tuple[int, int], random_state: int = 0) -> dict[str, np.ndarray]:
    """Boolean masks of *missing* points: every other point, and a random half per curve."""
    n, p = shape
    every_other = np.zeros(shape, dtype=bool)
    every_other[:, 1::2] = True
    rng = np.random.default_rng(random_state)
    random_half = np.argsort(rng.random(shape), axis=1) < p // 2
    return {"every other point": every_other, "random half": random_half}


def measure(mode: Mode) -> dict:
    from skvae import LatentMatcher

    X_train, X_test = family_split("beta_logpdf", mode.n_train, mode.n_test)
    subset = X_test[: mode.scipy_targets]
    vae = fits.fitted_model(mode)
    recipe = blog_post.trained(mode)["model"]
    rows = []
    loop = blog_post.scipy_match(blog_post.blog_decode_one(recipe), subset, 2)
    X_hat = recipe.decoder(torch.FloatTensor(loop["codes"])).detach().numpy()
    rows.append(
        {"method": "blog loop: scipy Nelder-Mead from z=0, blog recipe's decoder"}
        | {k: loop[k] for k in ("targets_per_second", "mean_nfev")}
        | {"n_targets": len(subset)}
        | l2_summary(subset, X_hat)
    )
    latent_dims = vae.get_params()["latent_dims"]
    loop = blog_post.scipy_match(skvae_decode_one(vae), subset, latent_dims)
    rows.append(
        {"method": "scipy Nelder-Mead from z=0, skvae's decoder (this checkout)"}
        | {k: loop[k] for k in ("targets_per_second", "mean_nfev")}
        | {"n_targets": len(subset)}
        | l2_summary(subset, vae.inverse_transform(loop["codes"]))
    )
    for version in versions.versions(mode):
        result = fits.default_fit(mode, mode.seeds[0], version)
        if failed(result):
            rows.append({"method": f"LatentMatcher {version}", "error": failed(result)})
            continue
        inference = result.get("inference") or {}
        rows.append(
            {
                "method": f"LatentMatcher {version} (batched Nelder-Mead from the encoder's mean)",
                "n_targets": inference.get("match_targets"),
                "targets_per_second": inference.get("matcher_targets_per_s"),
            }
            | (result.get("matcher") or {})
        )
    matcher = LatentMatcher(vae, prefit=True).fit(X_train)
    partial = []
    for name, missing in missing_masks(X_test.shape).items():
        X_partial = np.where(missing, np.nan, X_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            codes = matcher.transform(X_partial)
            seconds = time.perf_counter() - start
        partial.append(
            {"missing": name, "method": "LatentMatcher (now)"}
            | {"targets_per_second": len(X_test) / seconds}
            | l2_summary(X_test, matcher.inverse_transform(codes))
        )
        for k in (2, 3):
            partial.append({"missing": name} | pca_completion(X_train, X_partial, X_test, k))
    return {
        "rows": rows,
        "partial": partial,
        "scipy_targets": len(subset),
        "baseline_note": versions.baseline_note(mode),
    }


def table(results: dict) -> str:
    rows = results["rows"]
    blog = rows[0]["targets_per_second"]
    same = rows[1]["targets_per_second"]
    body = [
        [
            r["method"],
            r.get("n_targets"),
            r.get("targets_per_second"),
            md.ratio(r.get("targets_per_second"), blog),
            md.ratio(r.get("targets_per_second"), same),
            r.get("mean_nfev"),
            r.get("median_l2"),
            r.get("error"),
        ]
        for r in rows
    ]
    partial = [
        [p["missing"], p["method"], p["median_l2"], p["p90_l2"], p.get("targets_per_second")]
        for p in results["partial"]
    ]
    return "\n\n".join(
        [
            f"The scipy loops run on the first {results['scipy_targets']} held-out targets; "
            "LatentMatcher rates come from the inference section's runs, L2 on all held-out "
            "curves. " + results["baseline_note"],
            md.table(
                [
                    "method",
                    "targets",
                    "targets/s",
                    "× blog loop",
                    "× scipy, same decoder",
                    "mean f-evals",
                    "median L2",
                    "error",
                ],
                body,
            ),
            "**Partial targets** (half the points NaN; error of the completed curve on all "
            "points; the PCA rows fit the components to the observed points by least squares):",
            md.table(["missing", "method", "median L2", "p90 L2", "targets/s"], partial),
        ]
    )
