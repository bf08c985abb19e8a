"""Run settings shared by every section: :class:`Mode` (quick or full, threads, device, seeds).

Sections read their sizes from the mode, so that one flag (``--quick``) shrinks every section
at once. Quick mode exercises the same code paths on fewer epochs, rows and targets; its
numbers are indicative only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Mode:
    """What a run measures and where.

    Attributes
    ----------
    quick : bool
        Small sizes (a few minutes on 2 cores) instead of the full benchmark.
    threads : int
        Torch, BLAS and OpenMP threads, here and in every child process.
    device : {"cpu", "cuda"}
        The accelerator compared with the CPU in the ``gpu`` section. The other sections
        measure on the CPU.
    seeds : tuple of int
        ``random_state`` values of the repeated default fits.
    baseline : bool
        Run skvae 0.1.0 side by side in child processes (``--no-baseline`` turns it off).
    out : Path or None
        Output folder (figures are written there).
    """

    quick: bool = False
    threads: int = 1
    device: str = "cpu"
    seeds: tuple[int, ...] = (0, 1, 2)
    baseline: bool = True
    out: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return "quick" if self.quick else "full"

    # -------------------------------------------------------------- data and fits
    @property
    def n_train(self) -> int:
        return 10_000

    @property
    def n_test(self) -> int:
        return 2_000

    @property
    def fit_params(self) -> dict:
        """Overrides of BetaCurveVAE's defaults in every "default" fit (empty in full mode)."""
        return {"max_iter": 30} if self.quick else {}

    @property
    def ttq_max_iters(self) -> tuple[int, ...]:
        """Time to quality: ``max_iter`` of the separate shorter fits."""
        return (5, 15) if self.quick else (25, 50, 100, 200)

    # ----------------------------------------------------------------- inference
    @property
    def inference_rows(self) -> int:
        """Rows of the transform / inverse_transform / score_samples throughput runs."""
        return 200_000 if self.quick else 1_000_000

    @property
    def inference_repeats(self) -> int:
        return 2 if self.quick else 3

    @property
    def match_targets(self) -> int:
        """Targets of the LatentMatcher throughput runs on the CPU."""
        return 2_000 if self.quick else 20_000

    @property
    def scipy_targets(self) -> int:
        """Targets of the per-target scipy loops (their cost per target is constant)."""
        return 20 if self.quick else 200

    # ------------------------------------------------------------ other sections
    @property
    def recipe_budget_s(self) -> float:
        """Training seconds of the blog post's recipe."""
        return 10.0 if self.quick else 60.0

    @property
    def kpca_fit_n(self) -> int:
        return 2_000 if self.quick else 5_000

    @property
    def memory_rows(self) -> int:
        return 200_000 if self.quick else 1_000_000

    @property
    def memory_match_rows(self) -> int:
        return 10_000 if self.quick else 100_000

    @property
    def gpu_train_rows(self) -> int:
        """Curves of the training-throughput fits of the gpu section."""
        return 100_000 if self.quick else 1_000_000

    @property
    def gpu_inference_rows(self) -> int:
        return 200_000 if self.quick else 2_000_000

    @property
    def gpu_match_targets(self) -> int:
        return 20_000 if self.quick else 1_000_000
