"""Uncertainty: calibration of the Laplace posterior, and the Gauss-Newton polish.

On the default fitted model (``benchmarks.fits.fitted_model``), in its own units:

* Calibration: codes z ~ N(0, I) decoded and observed with Gaussian noise of known σ, a
  multiple of the model's own error ``noise_`` (so the decoder is the true model and the
  noise dominates), complete or with a random half of the points missing. The MAP code
  is found by batched Nelder-Mead on the negative log-posterior from the encoder's start,
  then polished by Gauss-Newton steps; the share of true codes inside the 68.3 % and
  95 % Laplace ellipses (Mahalanobis distance under the χ²(d) quantile) is compared with
  the nominal levels, for the Nelder-Mead code alone and after the polish.
* Polish: accuracy and throughput of Nelder-Mead alone, Nelder-Mead followed by
  Gauss-Newton steps, and Gauss-Newton alone from the encoder's start, against a
  reference MAP (Nelder-Mead then 50 Gauss-Newton steps): the distance to it in posterior
  standard deviations (Mahalanobis under the reference's Laplace covariance) and the
  excess negative log-posterior.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.stats import chi2

from benchmarks import markdown as md
from benchmarks.modes import Mode

TITLE = "Uncertainty: Laplace posterior calibration and the Gauss-Newton polish"

#: σ of the observations, as multiples of the fitted model's noise_ (its own error).
NOISE_MULTIPLES = (3.0, 10.0)
LEVELS = (0.683, 0.95)
#: Nelder-Mead tolerances of the default matcher, and loose ones for a rough start.
TIGHT, LOOSE = 1e-4, 1e-2
POLISH_STEPS, REFERENCE_STEPS = 5, 50


class Problem:
    """Targets of known true codes in a fitted model's units, and the tools to match them."""

    def __init__(self, model, n: int, noise: float, missing: bool, seed: int):
        rng = np.random.default_rng(seed)
        d, D = model.latent_dims, model.n_features
        self.model, self.d = model, d
        self.Z_true = rng.standard_normal((n, d))
        X = model.decode(self.Z_true) + noise * rng.standard_normal((n, D))
        if missing:
            X[np.argsort(rng.random((n, D)), axis=1) < D // 2] = np.nan
        self.observed = ~np.isnan(X)
        self.X = X
        self.sigma = noise / model.scaler.scale  # model units
        targets = model.scaler.to_model(X)
        self.targets = torch.as_tensor(targets, device=model.device)
        self.args = (self.targets, None, self.sigma)

    def energy(self, Z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        from skvae._matching.laplace import negative_log_posterior

        given_tensor = torch.is_tensor(Z)  # the batched Nelder-Mead engine works on tensors
        targets = self.targets if rows is None else self.targets[torch.as_tensor(rows)]
        Z = torch.as_tensor(Z, device=self.model.device)
        value = negative_log_posterior(
            self.model.decoder, Z, targets, None, self.sigma, self.model.chunk_size
        )
        return value if given_tensor else value.cpu().numpy()

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """Encoder start (missing points filled with the mean curve) and simplex steps."""
        filled = np.where(self.observed, self.X, self.model.scaler.mean)
        mean, std = self.model.encode(filled)
        complete = self.observed.all(axis=1)[:, None]
        return mean, np.where(complete, np.maximum(std, 10 * TIGHT), 0.1)

    def nelder_mead(self, tolerance: float) -> np.ndarray:
        from skvae._matching.nelder_mead import batched_nelder_mead

        start, step = self.start()
        result = batched_nelder_mead(
            self.energy, start, initial_step=step, xatol=tolerance, fatol=tolerance
        )
        return np.asarray(torch.as_tensor(result.x).cpu())

    def polish(self, Z: np.ndarray, n_steps: int) -> np.ndarray:
        from skvae._matching.laplace import gauss_newton_polish

        Z = torch.as_tensor(Z, device=self.model.device)
        out = gauss_newton_polish(self.model.decoder, Z, *self.args, n_steps, self.model.chunk_size)
        return out.cpu().numpy()

    def covariance(self, Z: np.ndarray) -> np.ndarray:
        from skvae._matching.laplace import laplace_covariance

        Z = torch.as_tensor(Z, device=self.model.device)
        C = laplace_covariance(self.model.decoder, Z, *self.args, self.model.chunk_size)
        return C.cpu().numpy()


def mahalanobis(Z: np.ndarray, centre: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    error = Z - centre
    return np.einsum("ni,ni->n", error, np.linalg.solve(covariance, error[:, :, None])[..., 0])


def coverage(problem: Problem, Z_map: np.ndarray) -> dict:
    squared = mahalanobis(problem.Z_true, Z_map, problem.covariance(Z_map))
    inside = {level: squared <= chi2.ppf(level, problem.d) for level in LEVELS}
    return {f"{level:.3f}": float(np.mean(inside[level])) for level in LEVELS}


def calibration(model, mode: Mode, n: int) -> list[dict]:
    rows = []
    for multiple in NOISE_MULTIPLES:
        for missing in (False, True):
            problem = Problem(model, n, multiple * model.noise, missing, seed=mode.seeds[0])
            Z_nm = problem.nelder_mead(TIGHT)
            Z_gn = problem.polish(Z_nm, POLISH_STEPS)
            C = problem.covariance(Z_gn)
            rows.append(
                {
                    "noise_multiple": multiple,
                    "missing": "random half" if missing else "none",
                    "n_targets": n,
                    "nelder_mead": coverage(problem, Z_nm),
                    "nelder_mead_polished": coverage(problem, Z_gn),
                    "median_posterior_sd": float(np.median(np.sqrt(np.diagonal(C, 0, 1, 2)))),
                }
            )
    return rows


def timed(function, *args) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = function(*args)
    return out, time.perf_counter() - started


def polish_accuracy(model, mode: Mode, n: int) -> list[dict]:
    rows = []
    for missing in (False, True):
        problem = Problem(model, n, NOISE_MULTIPLES[0] * model.noise, missing, mode.seeds[0])
        start, _ = problem.start()
        Z_tight, t_tight = timed(problem.nelder_mead, TIGHT)
        Z_loose, t_loose = timed(problem.nelder_mead, LOOSE)
        methods = {
            f"Nelder-Mead (tol {TIGHT:g})": (Z_tight, t_tight),
            f"Nelder-Mead (tol {TIGHT:g}) + {POLISH_STEPS} GN steps": timed_polish(
                problem, Z_tight, t_tight
            ),
            f"Nelder-Mead (tol {LOOSE:g}) + {POLISH_STEPS} GN steps": timed_polish(
                problem, Z_loose, t_loose
            ),
            f"{2 * POLISH_STEPS} GN steps from the encoder's start": timed(
                problem.polish, start, 2 * POLISH_STEPS
            ),
        }
        reference = problem.polish(Z_tight, REFERENCE_STEPS)
        best = problem.energy(reference)
        C = problem.covariance(reference)
        for name, (Z, seconds) in methods.items():
            distance = np.sqrt(mahalanobis(Z, reference, C))
            excess = problem.energy(Z) - best
            rows.append(
                {
                    "method": name,
                    "missing": "random half" if missing else "none",
                    "n_targets": n,
                    "targets_per_second": n / seconds,
                    "median_distance_sd": float(np.median(distance)),
                    "p95_distance_sd": float(np.quantile(distance, 0.95)),
                    "median_excess_energy": float(np.median(excess)),
                    "share_excess_above_0.01": float(np.mean(excess > 0.01)),
                }
            )
    return rows


def timed_polish(problem: Problem, Z: np.ndarray, seconds: float) -> tuple[np.ndarray, float]:
    out, polish_seconds = timed(problem.polish, Z, POLISH_STEPS)
    return out, seconds + polish_seconds


def measure(mode: Mode) -> dict:
    from benchmarks import fits

    vae = fits.fitted_model(mode)
    model = vae.latent_model()
    n = 1_000 if mode.quick else 4_000
    with torch.no_grad():
        return {
            "latent_dims": model.latent_dims,
            "model_noise": model.noise,
            # First: it also pays forward-mode autograd's one-off set-up before any timing.
            "calibration": calibration(model, mode, n),
            "polish": polish_accuracy(model, mode, n),
        }


def table(results: dict) -> str:
    d, noise = results["latent_dims"], results["model_noise"]
    out = [
        f"Default model (latent_dims={d}, noise_={md.fmt(noise)}); codes z ~ N(0, I) decoded "
        "and observed with Gaussian noise σ = a multiple of noise_. Share of true codes inside "
        "the Laplace ellipses (nominal 68.3 % and 95 %):",
        "",
        md.table(
            ["σ / noise_", "missing", "targets", "NM: 68.3 %", "NM: 95 %", "NM+GN: 68.3 %"]
            + ["NM+GN: 95 %", "median posterior sd"],
            [
                [
                    md.fmt(row["noise_multiple"]),
                    row["missing"],
                    row["n_targets"],
                    *(f"{100 * row['nelder_mead'][k]:.1f} %" for k in ("0.683", "0.950")),
                    *(f"{100 * row['nelder_mead_polished'][k]:.1f} %" for k in ("0.683", "0.950")),
                    md.fmt(row["median_posterior_sd"]),
                ]
                for row in results["calibration"]
            ],
        ),
        "",
        f"Polish (σ = {md.fmt(NOISE_MULTIPLES[0])} noise_): distance to the reference MAP "
        f"(Nelder-Mead + {REFERENCE_STEPS} GN steps) in posterior standard deviations, "
        "excess negative log-posterior, and throughput on the CPU:",
        "",
        md.table(
            ["method", "missing", "targets/s", "median distance (sd)", "95th pct distance (sd)"]
            + ["median excess E", "share excess > 0.01"],
            [
                [
                    row["method"],
                    row["missing"],
                    md.fmt(row["targets_per_second"]),
                    md.fmt(row["median_distance_sd"]),
                    md.fmt(row["p95_distance_sd"]),
                    md.fmt(row["median_excess_energy"]),
                    f"{100 * row['share_excess_above_0.01']:.1f} %",
                ]
                for row in results["polish"]
            ],
        ),
    ]
    return "\n".join(out)
