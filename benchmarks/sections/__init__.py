"""The benchmark sections, one module each, in run order.

Each module ``benchmarks/sections/<name>.py`` defines::

    TITLE: str
    def measure(mode: Mode) -> dict                     # JSON-able results
    def table(results: dict) -> str                     # markdown for results.md
    def figures(results: dict, out: Path) -> list[str]  # optional: writes images, returns names

with ``Mode`` from ``benchmarks.harness.modes``. Sections import skvae's public API only.

``measure`` may return ``{"skipped": "reason"}`` (e.g. no GPU); ``run.py`` then prints the
reason instead of calling ``table``. A section whose module is missing, or that raises
``ModuleNotFoundError`` for an optional dependency, is skipped with a message too.
"""

SECTIONS = [
    "training",  # default fits now vs 0.1.0, spikes, warnings, time to quality
    "families",  # non-Beta two-parameter families, VAE vs PCA(2)
    "real_curves",  # measured data sets (sktime, statsmodels), VAE vs PCA and KernelPCA
    "inference",  # transform / inverse_transform / score_samples / matcher speed, now vs 0.1.0
    "matching",  # LatentMatcher vs the blog post's per-target scipy loop; partial targets
    "missing",  # incomplete curves: VAE encoder and matcher vs imputers on the missing points
    "methods",  # held-out error of every method: VAE, blog recipe, PCA, KernelPCA, FA
    "blog_recipe",  # the blog post's training recipe: time to quality and throughput
    "memory",  # peak RSS of fit and inference on 1M rows, each in a fresh process
    "gpu",  # --device cuda against the same machine's CPU
    "dask_scaling",  # Dask LocalCluster throughput, out-of-core fit memory
    "uncertainty",  # Laplace posterior calibration, Gauss-Newton polish
]
