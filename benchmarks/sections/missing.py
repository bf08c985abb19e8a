"""Missing points: a VAE trained on incomplete curves fills the gaps of held-out ones.

For each data set and mask, the same mask kind hides points of the training and of the
held-out curves: 30 % of the points at random, one contiguous gap of 30 % of the grid at a
random position, or 60 % of the points at random. A default ``BetaCurveVAE`` (this
checkout, ``random_state`` the first seed) is fitted on the masked training curves; the
held-out curves' missing points are then filled by the decoded curves of its encoder's
means (``refine_steps=0``), of its ``transform`` (the means, screened against prior
points, refined by Gauss-Newton steps on the observed points), of
``LatentMatcher(prefit=True)``'s codes, by ``CurveImputer(prefit=True)`` (the matcher's
decoded curves blended with the nearest observed points and moved toward the average and
the locally linear combination of the nearest training curves and toward the conditional
mean under the training curves' Gaussian, the imputer's defaults), and by
three baselines fitted on the same masked training curves: row-wise linear interpolation
along the grid (the nearest observed value beyond the ends), ``KNNImputer(n_neighbors=5)``
and ``IterativeImputer(random_state=0)``. The score is the RMSE over the missing points
only.

Data: the non-linear synthetic families of ``benchmarks/workloads/data.py`` (Beta *pdf*
-- the log-pdf lies in a 3-D linear subspace where linear imputers are exact --, Gaussian
bumps, logistic steps, damped oscillations) and three real sets shipped with sktime
(Tecator spectra, GunPoint motion, ItalyPowerDemand daily loads; an optional package: the
real sets are skipped without it), split as in the real-curves section
(``benchmarks/workloads/real_curves.py``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer

from benchmarks.harness import markdown as md
from benchmarks.harness.modes import Mode
from benchmarks.workloads.data import family_split
from benchmarks.workloads.real_curves import REAL_SETS as REAL_SET_NAMES
from benchmarks.workloads.real_curves import real_split
from skvae import BetaCurveVAE, CurveImputer, LatentMatcher

TITLE = "Missing points: filling gaps, VAE vs imputers"
FAMILIES = ("beta_pdf", "gaussian_bumps", "smoothed_steps", "damped_oscillations")
REAL_SETS = ("tecator", "gunpoint", "italy_power")
MASKS = ("random30", "gap30", "random60")
BASELINES = ("interpolation", "KNNImputer(5)", "IterativeImputer")
METHODS = ("VAE encoder means", "VAE transform", "LatentMatcher", "CurveImputer")


def masked(X: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """A copy of ``X`` with the points of mask ``kind`` set to NaN."""
    rng = np.random.default_rng(seed)
    X = np.array(X, dtype=np.float64)
    if kind.startswith("random"):
        X[rng.random(X.shape) < int(kind[6:]) / 100] = np.nan
        return X
    length = round(int(kind[3:]) / 100 * X.shape[1])
    for row, start in zip(X, rng.integers(0, X.shape[1] - length + 1, len(X))):
        row[start : start + length] = np.nan
    return X


def interpolate_rows(X: np.ndarray) -> np.ndarray:
    """Each row's missing points linearly interpolated along the grid index."""
    out = X.copy()
    index = np.arange(X.shape[1])
    for row in out:
        missing = np.isnan(row)
        if missing.any() and not missing.all():
            row[missing] = np.interp(index[missing], index[~missing], row[~missing])
    return out


def _rmse(filled: np.ndarray, truth: np.ndarray, missing: np.ndarray) -> float:
    return float(np.sqrt(np.mean((filled[missing] - truth[missing]) ** 2)))


def compare(X_train, X_test, kind: str, mode: Mode) -> dict:
    """RMSE on the held-out missing points of every method, and the encoder/matcher times."""
    seed = mode.seeds[0]
    train, test = masked(X_train, kind, seed), masked(X_test, kind, seed + 1)
    missing = np.isnan(test)
    out: dict = {"rmse": {}}
    out["rmse"]["interpolation"] = _rmse(interpolate_rows(test), X_test, missing)
    for name, imputer in (
        ("KNNImputer(5)", KNNImputer(n_neighbors=5)),
        ("IterativeImputer", IterativeImputer(random_state=0)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filled = imputer.fit(train).transform(test)
        out["rmse"][name] = _rmse(filled, X_test, missing)
    start = time.perf_counter()
    vae = BetaCurveVAE(random_state=seed, **mode.fit_params).fit(train)
    out["fit_seconds"] = time.perf_counter() - start
    whole, out["seconds"] = {}, {}
    refine_steps = vae.refine_steps
    for name, steps in (("VAE encoder means", 0), ("VAE transform", refine_steps)):
        vae.set_params(refine_steps=steps)
        start = time.perf_counter()
        whole[name] = vae.inverse_transform(vae.transform(test))
        out["seconds"][name] = time.perf_counter() - start
    matcher = LatentMatcher(vae, prefit=True).fit(train)
    start = time.perf_counter()
    whole["LatentMatcher"] = matcher.inverse_transform(matcher.transform(test))
    out["seconds"]["LatentMatcher"] = time.perf_counter() - start
    for name, curves in whole.items():
        out["rmse"][name] = _rmse(curves, X_test, missing)
    start = time.perf_counter()
    imputer = CurveImputer(vae, prefit=True, random_state=seed).fit(train)
    out["rmse"]["CurveImputer"] = _rmse(imputer.transform(test), X_test, missing)
    out["seconds"]["CurveImputer"] = time.perf_counter() - start
    out["blend_weights"] = imputer.blend_weights_.tolist()
    out["neighbour_shares"] = imputer.neighbour_shares_.tolist()
    out["median_l2_whole_curve"] = {
        name: float(np.median(np.linalg.norm(curves - X_test, axis=1)))
        for name, curves in whole.items()
    }
    return out


def measure(mode: Mode) -> dict:
    n_train, n_test = (2_000, 500) if mode.quick else (mode.n_train, mode.n_test)
    data = {family: family_split(family, n_train, n_test) for family in FAMILIES}
    left_out = None
    try:
        for name in REAL_SETS:
            data[name] = real_split(name)
    except ModuleNotFoundError as exc:
        left_out = f"real sets left out: needs the optional package {exc.name!r}"
    results = {"quick": mode.quick, "random_state": mode.seeds[0], "left_out": left_out}
    results["sets"] = {}
    for name, (X_train, X_test) in data.items():
        results["sets"][name] = {
            "shape": [len(X_train), len(X_test), X_train.shape[1]],
            "masks": {kind: compare(X_train, X_test, kind, mode) for kind in MASKS},
        }
    return results


def table(results: dict) -> str:
    rows = []
    for name, entry in results["sets"].items():
        name = REAL_SET_NAMES.get(name, name)
        for kind, r in entry["masks"].items():
            rmse = r["rmse"]
            best = min(rmse[b] for b in BASELINES)
            whole, seconds = r["median_l2_whole_curve"], r["seconds"]
            rows.append(
                [
                    name,
                    kind,
                    *(rmse[b] for b in BASELINES),
                    *(rmse[m] for m in METHODS),
                    md.ratio(rmse["VAE transform"], best),
                    md.ratio(rmse["LatentMatcher"], best),
                    md.ratio(rmse["CurveImputer"], best),
                    md.ratio(whole["VAE encoder means"], whole["LatentMatcher"]),
                    md.ratio(whole["VAE transform"], whole["LatentMatcher"]),
                    md.ratio(seconds["LatentMatcher"], seconds["VAE encoder means"]),
                    md.ratio(seconds["LatentMatcher"], seconds["VAE transform"]),
                    r["fit_seconds"],
                    seconds["CurveImputer"],
                ]
            )
    note = f" {results['left_out']}." if results.get("left_out") else ""
    return (
        f"Default `BetaCurveVAE(random_state={results['random_state']})` trained on the masked "
        "training curves"
        + (" (quick mode: 2,000 curves, few epochs)" if results["quick"] else "")
        + "; RMSE over the held-out missing points. 'VAE encoder means' fills with the "
        "decoded encoder means (`refine_steps=0`), 'VAE transform' with "
        "`inverse_transform(transform(X))` (the means, screened against prior points, "
        "refined on the observed points), "
        "'LatentMatcher' with the default matcher's codes, 'CurveImputer' with "
        "`CurveImputer(prefit=True, random_state=0)` (the matcher's curves blended with the "
        "nearest observed points, with the average and the combination of the nearest "
        "training curves and with the training curves' Gaussian where it fills the fit's "
        "draws better; its time includes its fit "
        "on the training curves, which fits the blend's weights and the nearest curves' "
        "shares, with three more fits of the VAE on 60-1,999 curves: for the VAE's "
        "`n_iter_` epochs on every curve where the VAE trained on every curve). "
        "Ratios below 1 favour the VAE; whole-curve L2: median over the held-out curves of "
        "the error on all points; speed-ups: the matcher's time over the means' and over "
        "transform's, on the same curves (decoding included); 'VAE fit s': the VAE's "
        "fit, 'CurveImputer s': the imputer's fit and fill, after it."
        + note
        + "\n\n"
        + md.table(
            [
                "data",
                "mask",
                *BASELINES,
                *METHODS,
                "transform / best baseline",
                "matcher / best baseline",
                "imputer / best baseline",
                "whole-curve L2, means / matcher",
                "whole-curve L2, transform / matcher",
                "speed-up of the means",
                "speed-up of transform",
                "VAE fit s",
                "CurveImputer s",
            ],
            rows,
        )
    )
