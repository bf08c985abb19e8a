"""Child process of the benchmarks: runs jobs with whichever skvae is first on PYTHONPATH.

Started by :func:`benchmarks.harness.versions.run_jobs` (never by hand): it reads
``{"threads": int, "jobs": [job, ...]}`` as JSON on stdin and prints one line
``@@skvae-benchmark-result@@ [result, ...]``. It uses only skvae's public API, so the same
code measures this checkout and skvae 0.1.0.

Job kinds
---------
``fit``
    Fit ``BetaCurveVAE(random_state, device, **params)`` on a family's training split
    (after an untimed one-epoch warm-up fit on 256 curves, so that torch's one-time start-up
    is not charged) and report: fit seconds, epochs, ``loss_curve_``, spike epochs, the
    warnings emitted (category, file, whether attributed to this file, i.e. the caller's
    line); optionally held-out L2 of the encoder and of ``LatentMatcher(prefit=True)``,
    inference throughput on large tiled inputs, and a pickle of the fitted model.
``throughput``
    Fits of a fixed number of epochs on ``rows`` tiled curves; steady-state training
    throughput is ``rows × (e2 − e1) / (t2 − t1)`` between two epoch counts.
``real``
    Fit ``BetaCurveVAE`` on the training split of a real curve set
    (``benchmarks.workloads.real_curves``; ``max_iter_factor`` multiplies the version's
    default ``max_iter``) and report fit seconds, epochs, optimizer steps (counted by a
    torch hook), the warnings and the held-out and training median relative L2 of the
    encoder's reconstruction.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
import traceback
import warnings
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Run as a script, Python puts benchmarks/harness/ first on sys.path: drop it, so that skvae
# and the benchmarks package come from PYTHONPATH in the order the parent chose.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402

from benchmarks.harness.measure import l2_summary  # noqa: E402
from benchmarks.harness.versions import RESULT_MARK  # noqa: E402

SPIKE_AFTER, SPIKE_THRESHOLD = 20, math.log(2.0)


def spike_epochs(loss_curve: list[float]) -> list[int]:
    """1-based epochs after epoch 20 whose loss exceeds the running minimum by more than log 2."""
    spikes, best = [], math.inf
    for epoch, loss in enumerate(loss_curve, start=1):
        if epoch > SPIKE_AFTER and loss - best > SPIKE_THRESHOLD:
            spikes.append(epoch)
        best = min(best, loss)
    return spikes


def _warning_rows(caught) -> list[dict]:
    return [
        {
            "category": w.category.__name__,
            "file": Path(w.filename).name,
            "at_caller": Path(w.filename).resolve() == Path(__file__).resolve(),
            "message": str(w.message)[:300],
        }
        for w in caught
    ]


def _median_seconds(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def _estimator(job: dict, **overrides):
    from skvae import BetaCurveVAE

    params = {"random_state": job.get("random_state", 0), "device": job.get("device", "cpu")}
    params.update(job.get("params", {}))
    params.update(overrides)
    return BetaCurveVAE(**params)


def _warm_up(job: dict, X: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _estimator(job, random_state=0, max_iter=1).fit(X[:256])


def _inference(vae, X_train: np.ndarray, X_test: np.ndarray, spec: dict) -> dict:
    """Rows per second of transform, inverse_transform, score_samples and LatentMatcher."""
    from benchmarks.workloads.data import large_beta_curves, tiled
    from skvae import LatentMatcher

    rows, repeats = spec["rows"], spec["repeats"]
    X = large_beta_curves(rows) if spec.get("beta", True) else tiled(X_train, rows)
    out: dict = {"rows": rows, "repeats": repeats}
    vae.transform(X[:1000])  # warm-up
    seconds, Z = _median_seconds(lambda: vae.transform(X), repeats)
    out["transform_rows_per_s"] = rows / seconds
    vae.inverse_transform(Z[:1000])
    seconds, _ = _median_seconds(lambda: vae.inverse_transform(Z), repeats)
    out["inverse_transform_rows_per_s"] = rows / seconds
    vae.score_samples(X[:1000])
    seconds, _ = _median_seconds(lambda: vae.score_samples(X), repeats)
    out["score_samples_rows_per_s"] = rows / seconds
    X = Z = None  # free the large inputs before matching
    targets = tiled(X_test, spec["match_targets"], seed=1)
    out["match_targets"] = len(targets)

    def match() -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matcher = LatentMatcher(vae, prefit=True).fit(X_train)
            matcher.transform(targets[:100])
            match_repeats = spec.get("match_repeats", repeats)
            seconds, _ = _median_seconds(lambda: matcher.transform(targets), match_repeats)
        return {"matcher_targets_per_s": len(targets) / seconds}

    found = _guarded(match)
    out.update(found if "error" not in found else {"matcher_error": found["error"]})
    return out


def _device_check(vae, X_train: np.ndarray, X_test: np.ndarray) -> dict:
    """The same fitted model on the CPU: agreement of transform and of the matcher."""
    from skvae import LatentMatcher

    twin = pickle.loads(pickle.dumps(vae))
    twin.set_params(device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes = LatentMatcher(vae, prefit=True).fit(X_train).transform(X_test)
        cpu_codes = LatentMatcher(twin, prefit=True).fit(X_train).transform(X_test)
    return {
        "transform_max_abs_diff": float(
            np.max(np.abs(vae.transform(X_test) - twin.transform(X_test)))
        ),
        "matcher_codes_max_abs_diff": float(np.max(np.abs(codes - cpu_codes))),
        "matcher": l2_summary(X_test, vae.inverse_transform(codes)),
        "matcher_cpu": l2_summary(X_test, twin.inverse_transform(cpu_codes)),
    }


def _guarded(function, *args) -> dict:
    """``function(*args)``, or ``{"error": ...}`` (with the traceback on stderr) if it fails,
    so that a broken part (e.g. the matcher of a work-in-progress checkout) keeps the fit's
    other numbers."""
    try:
        return function(*args)
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


def _matcher(vae, X_train: np.ndarray, X_test: np.ndarray, result: dict) -> dict:
    """Held-out L2 of LatentMatcher(prefit=True); its seconds and warnings go into result."""
    from skvae import LatentMatcher

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matcher = LatentMatcher(vae, prefit=True).fit(X_train)
        start = time.perf_counter()
        codes = matcher.transform(X_test)
        result["matcher_seconds"] = time.perf_counter() - start
    result["matcher_warnings"] = _warning_rows(caught)
    return l2_summary(X_test, matcher.inverse_transform(codes))


def fit_job(job: dict) -> dict:
    from benchmarks.workloads.data import family_split, large_beta_curves

    if job.get("large_rows"):
        X_train, X_test = large_beta_curves(job["large_rows"]), None
    else:
        X_train, X_test = family_split(job["family"], job["n_train"], job["n_test"])
    _warm_up(job, X_train)
    vae = _estimator(job)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        vae.fit(X_train)
        seconds = time.perf_counter() - start
    losses = [float(v) for v in vae.loss_curve_]
    spikes = spike_epochs(losses)
    result: dict = {
        "fit_seconds": seconds,
        "n_iter": int(vae.n_iter_),
        "seconds_per_epoch": seconds / max(1, int(vae.n_iter_)),
        "curves_per_s": len(X_train) * int(vae.n_iter_) / seconds,
        "loss_curve": losses,
        "spikes": len(spikes),
        "spike_epochs": spikes,
        "warnings": _warning_rows(caught),
        "params": {k: v for k, v in vae.get_params().items() if k != "verbose"},
    }
    if X_test is not None and job.get("evaluate", True):
        result["encoder"] = l2_summary(X_test, vae.inverse_transform(vae.transform(X_test)))
    if X_test is not None and job.get("matcher", False):
        result["matcher"] = _guarded(_matcher, vae, X_train, X_test, result)
    if job.get("inference"):
        result["inference"] = _guarded(_inference, vae, X_train, X_test, job["inference"])
    if job.get("device_check") and X_test is not None:
        result["device_check"] = _guarded(_device_check, vae, X_train, X_test)
    if job.get("save_model"):
        Path(job["save_model"]).write_bytes(pickle.dumps(vae))
        result["model_path"] = job["save_model"]
    return result


def throughput_job(job: dict) -> dict:
    """Fits of ``epochs[0]`` and ``epochs[1]`` epochs; the difference is steady-state training."""
    from benchmarks.workloads.data import large_beta_curves

    X = large_beta_curves(job["rows"])
    _warm_up(job, X)
    fits = []
    for epochs in job["epochs"]:
        vae = _estimator(job, max_iter=epochs)
        if "n_iter_no_change" in vae.get_params():
            vae.set_params(n_iter_no_change=epochs + 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            vae.fit(X)
            seconds = time.perf_counter() - start
        fits.append({"epochs": int(vae.n_iter_), "seconds": seconds})
    (a, b) = fits[0], fits[-1]
    steady = len(X) * (b["epochs"] - a["epochs"]) / max(b["seconds"] - a["seconds"], 1e-9)
    return {"rows": len(X), "fits": fits, "curves_per_s": steady}


def _counting_optimizer_steps():
    """A list whose first item counts every torch optimizer step from now on (a global
    post-step hook, exact on the CPU whatever the version measured), and the hook's handle."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    count = [0]

    def hook(optimizer, args, kwargs):
        count[0] += 1

    return count, register_optimizer_step_post_hook(hook)


def real_job(job: dict) -> dict:
    """One fit on a real set; see the module docstring."""
    from benchmarks.workloads.real_curves import real_split, relative_l2, relative_l2_per_curve
    from skvae import BetaCurveVAE

    X_train, X_test = real_split(job["set"])
    params = dict(job.get("params", {}))
    if job.get("max_iter_factor"):
        default = params.get("max_iter", BetaCurveVAE().get_params()["max_iter"])
        params["max_iter"] = int(job["max_iter_factor"] * default)
    _warm_up(job, X_train)
    vae = _estimator(job, **params)
    steps, handle = _counting_optimizer_steps()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            vae.fit(X_train)
            seconds = time.perf_counter() - start
    finally:
        handle.remove()
    mean = X_train.mean(axis=0)
    fitted = vae.get_params()
    heldout = relative_l2_per_curve(X_test, vae.inverse_transform(vae.transform(X_test)), mean)
    return {
        "set": job["set"],
        "n_train": len(X_train),
        "n_test": len(X_test),
        "n_points": X_train.shape[1],
        "fit_seconds": seconds,
        "n_iter": int(vae.n_iter_),
        "max_iter": int(fitted["max_iter"]),
        "steps": steps[0],
        "heldout": float(np.median(heldout)),
        "heldout_per_curve": heldout.tolist(),
        "train": relative_l2(X_train, vae.inverse_transform(vae.transform(X_train)), mean),
        "warnings": _warning_rows(caught),
        "params": {k: v for k, v in fitted.items() if k != "verbose"},
    }


def main() -> None:
    request = json.loads(sys.stdin.read())
    threads = int(request["threads"])
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    limits = threadpool_limits(threads)  # noqa: F841  (kept alive for the whole process)
    import skvae

    about = {"skvae_version": skvae.__version__, "skvae_path": str(Path(skvae.__file__).parent)}
    results = []
    for job in request["jobs"]:
        function = {"fit": fit_job, "throughput": throughput_job, "real": real_job}[job["kind"]]
        results.append({**function(job), **about})
    print(RESULT_MARK + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
