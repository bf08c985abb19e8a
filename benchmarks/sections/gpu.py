"""GPU end to end: ``--device cuda`` against the same machine's CPU.

For each device (the CPU always; CUDA with ``--device cuda``), in child processes of this
checkout with ``device=<device>``:

* the default fit on 10,000 Beta log-pdf curves (first seed): fit seconds and held-out
  median L2 of the encoder and LatentMatcher (the CPU side is the training section's fit);
* steady-state training throughput on ``gpu_train_rows`` curves (1M; quick 100k):
  ``rows × (e₂ − e₁) / (t₂ − t₁)`` between fits of e₁ = 1 and e₂ = 3 epochs, which leaves out
  the per-fit set-up (data transfer, graph capture, compilation);
* transform / inverse_transform / score_samples rows/s on large tiled inputs (CPU: the
  inference section's sizes; CUDA: 2M rows), numpy in and out;
* LatentMatcher targets/s (CPU: 20k targets; CUDA: 1M) -- and, on the CUDA-trained model,
  the matcher's held-out median L2 on CUDA and on the CPU (the same model with
  ``device="cpu"``) with the largest code difference, so the GPU rate is read at the CPU
  matcher's accuracy.

``--device cpu`` runs the CPU side only (this runs anywhere), with skvae 0.1.0 on the same CPU
beside it; ``--device cuda`` (no 0.1.0 column, to keep the GPU run short) on a machine where
``torch.cuda.is_available()`` is False skips the section with a message.
"""

from __future__ import annotations

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed
from benchmarks.harness.modes import Mode
from benchmarks.workloads import fits

TITLE = "GPU vs this machine's CPU"
#: Targets on one H100.
TARGETS = {
    "fit_speedup": 8.0,
    "train_curves_per_s": 5e6,
    "transform_rows_per_s": 20e6,
    "matcher_targets_per_s": 1e6,
}


def _throughput(mode: Mode, device: str, version: str = versions.NOW) -> dict:
    job = {
        "kind": "throughput",
        "rows": mode.gpu_train_rows,
        "epochs": [1, 2] if mode.quick else [1, 3],
        "params": {},
        "random_state": mode.seeds[0],
        "device": device,
    }
    return versions.run_job(version, job, mode.threads)


def _fit(mode: Mode, device: str, version: str = versions.NOW) -> dict:
    if device == "cpu":
        return fits.default_fit(mode, mode.seeds[0], version)
    job = fits.default_fit_job(mode, mode.seeds[0], versions.NOW, device=device)
    job["inference"] = {
        "rows": mode.gpu_inference_rows,
        "repeats": mode.inference_repeats,
        "match_targets": mode.gpu_match_targets,
        "match_repeats": 2,
    }
    job["device_check"] = True
    return versions.run_job(versions.NOW, job, mode.threads)


def measure(mode: Mode) -> dict:
    import torch

    devices = ["cpu"]
    if mode.device == "cuda":
        if not torch.cuda.is_available():
            return {"skipped": "--device cuda, but torch.cuda.is_available() is False here"}
        devices.append("cuda")
    out: dict = {"devices": {}, "gpu": None}
    if "cuda" in devices:
        out["gpu"] = torch.cuda.get_device_name(0)
    columns = [(device, device, versions.NOW) for device in devices]
    if mode.device == "cpu" and mode.baseline:
        columns.append(("cpu_0.1.0", "cpu", versions.BASELINE))
    for column, device, version in columns:
        fit = _fit(mode, device, version)
        entry = {"fit": {"error": failed(fit)}} if failed(fit) else {}
        if not failed(fit):
            entry["fit"] = {k: fit.get(k) for k in ("fit_seconds", "n_iter", "encoder", "matcher")}
            entry["fit"]["warnings"] = fit.get("warnings", [])
            entry["inference"] = fit.get("inference")
            entry["device_check"] = fit.get("device_check")
        entry["throughput"] = _throughput(mode, device, version)
        out["devices"][column] = entry
    return out


def _get(entry: dict, *keys):
    for key in keys:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry


def table(results: dict) -> str:
    cpu = results["devices"].get("cpu", {})
    gpu = results["devices"].get("cuda", {})
    old = results["devices"].get("cpu_0.1.0", {})
    specs = [
        ("default 10k fit, seconds", ("fit", "fit_seconds"), None),
        ("epochs", ("fit", "n_iter"), None),
        ("encoder held-out median L2", ("fit", "encoder", "median_l2"), None),
        ("LatentMatcher held-out median L2", ("fit", "matcher", "median_l2"), None),
        ("training curves/s (steady state)", ("throughput", "curves_per_s"), "train"),
        ("transform rows/s", ("inference", "transform_rows_per_s"), "transform"),
        ("inverse_transform rows/s", ("inference", "inverse_transform_rows_per_s"), None),
        ("score_samples rows/s", ("inference", "score_samples_rows_per_s"), None),
        ("LatentMatcher targets/s", ("inference", "matcher_targets_per_s"), "matcher"),
    ]
    rows = []
    for label, keys, target in specs:
        c, g = _get(cpu, *keys), _get(gpu, *keys)
        speedup = (
            md.ratio(g, c) if "rows" in label or "curves" in label or "targets" in label else None
        )
        if keys[-1] == "fit_seconds":
            speedup = md.ratio(c, g)
        goal = {
            "train": f"≥ {TARGETS['train_curves_per_s']:,.0f}",
            "transform": f"≥ {TARGETS['transform_rows_per_s']:,.0f}",
            "matcher": f"≥ {TARGETS['matcher_targets_per_s']:,.0f}",
        }.get(target)
        if keys[-1] == "fit_seconds":
            goal = f"≥ {TARGETS['fit_speedup']:.0f}× faster"
        rows.append([label, _get(old, *keys), c, g, speedup, goal])
    parts = [
        f"GPU: {results.get('gpu') or 'none (run with --device cuda on a GPU machine)'}. "
        "CPU and GPU on the same machine, this checkout; the CPU 0.1.0 column (CPU runs "
        "only, when 0.1.0 is available) is skvae 0.1.0 on the same CPU.",
        md.table(["", "CPU 0.1.0", "CPU", "CUDA", "CUDA gain", "target (CUDA)"], rows),
    ]
    sizes = []
    for device, entry in results["devices"].items():
        inference = entry.get("inference") or {}
        thr = entry.get("throughput") or {}
        targets = md.fmt(inference.get("match_targets"))
        sizes.append(
            f"{device}: training {md.fmt(thr.get('rows'))} curves, inference "
            f"{md.fmt(inference.get('rows'))} rows, matcher {targets} targets"
            + (f" -- {failed(thr)}" if failed(thr) else "")
        )
    parts.append("Sizes: " + "; ".join(sizes) + ".")
    check = gpu.get("device_check")
    if check:
        parts.append(
            "Same CUDA-trained model on both devices: transform max |Δ| "
            f"{md.fmt(check['transform_max_abs_diff'])}; matcher codes max |Δ| "
            f"{md.fmt(check['matcher_codes_max_abs_diff'])}; matcher held-out median L2 "
            f"{md.fmt(check['matcher']['median_l2'])} on CUDA vs "
            f"{md.fmt(check['matcher_cpu']['median_l2'])} on the CPU."
        )
    if _get(gpu, "fit", "warnings"):
        parts.append(f"Warnings of the CUDA fit: {md.warnings_summary(gpu['fit']['warnings'])}.")
    return "\n\n".join(parts)
