"""Section 5: LatentMatcher against the seed's per-target scipy Nelder-Mead loop.

Three matchers, all in the same run:

* ``LatentMatcher`` (batched Nelder-Mead from the encoder's mean) on all held-out targets;
* the seed's loop exactly as in the notebook -- the *seed recipe's* decoder, scipy from
  z = 0, one FloatTensor decoder call per objective evaluation -- on a subset of targets;
* the same scipy loop on *skvae's* decoder (same model as LatentMatcher, so the ratio
  isolates the algorithm from the model), on the same subset.

The scipy loops' rates are measured on the subset and stated as targets per second (the
loop's cost is the same for every target, so the rate extrapolates linearly).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from benchmarks.baselines import pca_completion
from benchmarks.measure import l2_summary, time_repeats
from benchmarks.seed_recipe import scipy_match, seed_decode_one


def matcher_class():
    """``skvae.LatentMatcher`` if this checkout has it, else None (sections then skip it)."""
    try:
        from skvae import LatentMatcher
    except ImportError:
        try:
            from skvae._matcher import LatentMatcher
        except ImportError:
            return None
    return LatentMatcher


def make_matcher(vae, X_fit: np.ndarray):
    """A default LatentMatcher reusing the fitted ``vae`` (``prefit=True``)."""
    cls = matcher_class()
    if cls is None:
        raise ImportError("skvae.LatentMatcher is not available in this checkout.")
    return cls(vae, prefit=True).fit(X_fit)


def matched_reconstruction(matcher, X: np.ndarray) -> np.ndarray:
    return matcher.inverse_transform(matcher.transform(X))


def skvae_decode_one(vae):
    """Per-point decoding in data units with skvae's decoder, in the seed loop's style."""
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
    return {"every other point missing": every_other, "random half missing": random_half}


def match_section(vae, seed_model, X_train, X_test, *, scipy_targets: int, repeats: int) -> dict:
    """Throughput, ratios and matched errors; partial targets with half the points missing."""
    out: dict = {"n_targets": len(X_test), "scipy_targets": scipy_targets}
    subset = X_test[:scipy_targets]
    rows = []

    seed_loop = scipy_match(seed_decode_one(seed_model), subset, 2)
    seed_X_hat = seed_model.decoder(torch.FloatTensor(seed_loop["codes"])).detach().numpy()
    rows.append(
        {
            "method": "seed loop: scipy Nelder-Mead from z=0, seed recipe's decoder",
            "n_targets": len(subset),
            "seconds": seed_loop["seconds"],
            "targets_per_second": seed_loop["targets_per_second"],
            "mean_nfev": seed_loop["mean_nfev"],
            **l2_summary(subset, seed_X_hat),
        }
    )
    ours_loop = scipy_match(skvae_decode_one(vae), subset, vae._n_features_out)
    rows.append(
        {
            "method": "scipy Nelder-Mead from z=0, skvae's decoder",
            "n_targets": len(subset),
            "seconds": ours_loop["seconds"],
            "targets_per_second": ours_loop["targets_per_second"],
            "mean_nfev": ours_loop["mean_nfev"],
            **l2_summary(subset, vae.inverse_transform(ours_loop["codes"])),
        }
    )
    encoder = l2_summary(subset, vae.inverse_transform(vae.transform(subset)))
    out["encoder_on_subset"] = encoder

    if matcher_class() is None:
        out["available"] = False
        out["rows"] = rows
        return out
    out["available"] = True
    matcher = make_matcher(vae, X_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, times, codes = time_repeats(lambda: matcher.transform(X_test), repeats)
        details = matcher.match(X_test)
    rate = len(X_test) / seconds
    rows.append(
        {
            "method": "LatentMatcher (batched Nelder-Mead from the encoder's mean)",
            "n_targets": len(X_test),
            "seconds": seconds,
            "all_seconds": times,
            "targets_per_second": rate,
            "mean_nfev": float(np.mean(details.n_fev)),
            "converged_fraction": float(np.mean(details.converged)),
            **l2_summary(X_test, matcher.inverse_transform(codes)),
        }
    )
    out["rows"] = rows
    out["matcher_targets_per_second"] = rate
    out["ratio_vs_seed_loop"] = rate / rows[0]["targets_per_second"]
    out["ratio_vs_scipy_same_decoder"] = rate / rows[1]["targets_per_second"]
    out["matcher_on_subset"] = l2_summary(subset, matcher.inverse_transform(codes[: len(subset)]))
    out["partial"] = partial_section(matcher, X_train, X_test)
    return out


def partial_section(matcher, X_train: np.ndarray, X_test: np.ndarray) -> list[dict]:
    """Match targets with half their points missing (NaN); error of the completion on all points."""
    rows = []
    for name, missing in missing_masks(X_test.shape).items():
        X_partial = np.where(missing, np.nan, X_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds, _, codes = time_repeats(lambda X=X_partial: matcher.transform(X), 1)
        rows.append(
            {
                "pattern": name,
                "method": "LatentMatcher",
                "targets_per_second": len(X_test) / seconds,
                **l2_summary(X_test, matcher.inverse_transform(codes)),
            }
        )
        for k in (2, 3):
            rows.append({"pattern": name, **pca_completion(X_train, X_partial, X_test, k)})
    return rows
