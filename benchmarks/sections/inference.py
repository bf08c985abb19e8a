"""Inference speed, now vs 0.1.0: transform, inverse_transform, score_samples, LatentMatcher.

Measured in the child process of the first seed's default fit (``benchmarks/workloads/fits.py``), on
that fitted model, for both versions: ``rows`` Beta log-pdf curves (10,000 independent
curves tiled with N(0, 10⁻⁶) noise), each method timed as the median of ``repeats`` calls
after a small warm-up call; inverse_transform decodes the codes transform returned.
LatentMatcher (``prefit=True``, defaults) matches ``match_targets`` held-out curves tiled
with the same noise. Rows per second = rows / median seconds, numpy in and out.
"""

from __future__ import annotations

from benchmarks.harness import markdown as md
from benchmarks.harness import versions
from benchmarks.harness.markdown import failed
from benchmarks.harness.modes import Mode
from benchmarks.workloads import fits

TITLE = "Inference speed on the CPU, now vs 0.1.0"
METHODS = {
    "transform_rows_per_s": "transform (rows/s)",
    "inverse_transform_rows_per_s": "inverse_transform (rows/s)",
    "score_samples_rows_per_s": "score_samples (rows/s)",
    "matcher_targets_per_s": "LatentMatcher.transform (targets/s)",
}


def measure(mode: Mode) -> dict:
    out = {"baseline_note": versions.baseline_note(mode), "versions": {}}
    for version in versions.versions(mode):
        result = fits.default_fit(mode, mode.seeds[0], version)
        out["versions"][version] = (
            {"error": failed(result)} if failed(result) else result["inference"]
        )
    return out


def table(results: dict) -> str:
    now = results["versions"].get(versions.NOW, {})
    old = results["versions"].get(versions.BASELINE, {})
    rows = [
        [label, old.get(key), now.get(key), md.ratio(now.get(key), old.get(key))]
        for key, label in METHODS.items()
    ]
    about = now if "rows" in now else old
    notes = [
        f"{results['baseline_note']}",
        f"{md.fmt(about.get('rows'))} rows, {md.fmt(about.get('match_targets'))} matcher "
        f"targets, median of {about.get('repeats')} calls each.",
    ]
    for version, r in results["versions"].items():
        if "error" in r:
            notes.append(f"{version} failed: {r['error']}")
        if "matcher_error" in r:
            notes.append(f"{version} LatentMatcher failed: {r['matcher_error']}")
    return "\n\n".join(notes + [md.table(["method", "0.1.0", "now", "now / 0.1.0"], rows)])
