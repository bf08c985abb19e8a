"""The fits several sections share, each run once per benchmark run (memoised by versions).

* :func:`default_fit` -- ``BetaCurveVAE(random_state=seed)`` with its defaults (quick mode:
  fewer epochs) on 10,000 independent Beta log-pdf curves, evaluated on 2,000 held-out ones,
  in a child process of either version. The fit of the first seed also measures inference
  throughput on large inputs and, for this checkout, saves the fitted model.
* :func:`fitted_model` -- that saved model, loaded here (this checkout's skvae).
"""

from __future__ import annotations

import pickle

from benchmarks.harness import versions
from benchmarks.harness.modes import Mode


def inference_spec(mode: Mode) -> dict:
    return {
        "rows": mode.inference_rows,
        "repeats": mode.inference_repeats,
        "match_targets": mode.match_targets,
    }


def default_fit_job(mode: Mode, seed: int, version: str, device: str = "cpu") -> dict:
    first = seed == mode.seeds[0]
    job = {
        "kind": "fit",
        "family": "beta_logpdf",
        "n_train": mode.n_train,
        "n_test": mode.n_test,
        "params": mode.fit_params,
        "random_state": seed,
        "device": device,
        "matcher": True,
        "inference": inference_spec(mode) if first and device == "cpu" else None,
        "save_model": None,
    }
    if first and version == versions.NOW and device == "cpu":
        job["save_model"] = str(versions.work_dir() / f"vae-now-{mode.name}-{seed}.pkl")
    return job


def default_fit(mode: Mode, seed: int, version: str = versions.NOW) -> dict:
    """Result of the default fit of ``seed`` with ``version`` on the CPU (see module doc)."""
    return versions.run_job(version, default_fit_job(mode, seed, version), mode.threads)


def default_fits(mode: Mode) -> dict[str, list[dict]]:
    """Every seed's default fit for every version, versions alternating in order per seed."""
    out: dict[str, list[dict]] = {v: [] for v in versions.versions(mode)}
    for index, seed in enumerate(mode.seeds):
        for version in versions.versions(mode, index):
            out[version].append({"random_state": seed, **default_fit(mode, seed, version)})
    return out


def fitted_model(mode: Mode):
    """This checkout's fitted default model of the first seed (fits it if not done yet)."""
    result = default_fit(mode, mode.seeds[0])
    if "model_path" not in result:
        raise RuntimeError(f"The default fit failed: {result.get('error', result)}")
    with open(result["model_path"], "rb") as handle:
        return pickle.load(handle)
