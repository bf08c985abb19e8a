"""Settings of the three run modes: full (the published numbers), quick, and smoke (plumbing)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mode:
    name: str
    n_train: int = 10_000
    n_test: int = 2_000
    #: Overrides of BetaCurveVAE's defaults for every "default" fit (empty: true defaults).
    vae_params: dict = field(default_factory=dict)
    #: Section 1: repeats of the default fit (median time).
    fit_repeats: int = 1
    #: Section 3: a partial_fit trajectory of the default run, and separate fits at max_iter.
    trajectory: bool = False
    endpoints: tuple[int, ...] = (20, 50)
    #: Section 3: seed recipe, trained up to this many epochs or training seconds.
    seed_max_epochs: int = 2000
    seed_budget_s: float = 30.0
    eval_every: int = 10
    #: Section 2: epochs of skvae's loop with the seed's network (throughput only).
    seed_network_epochs: int = 5
    #: Section 4: KernelPCA fit subsample.
    kpca_fit_n: int = 2000
    #: Section 5: targets for the scipy loops; repeats of the LatentMatcher timing.
    scipy_targets: int = 50
    match_repeats: int = 3
    #: Section 6: rows of the large transform; max_iter of the fit measured (None: default).
    memory_rows: int = 1_000_000
    memory_fit_max_iter: int | None = 10
    memory_match_rows: int = 0
    #: Section 7: n_samples values (fixed epochs), n_points values, and whether the
    #: n_points runs are full default fits (else fixed epochs, timing only).
    scale_n_samples: tuple[int, ...] = (1_000, 10_000)
    scale_epochs: int = 10
    n_points: tuple[int, ...] = (50, 100, 400)
    n_points_default_fit: bool = False
    notes: tuple[str, ...] = ()


MODES = {
    "full": Mode(
        name="full",
        fit_repeats=3,
        trajectory=True,
        endpoints=(10, 25, 50, 100),
        seed_budget_s=300.0,
        eval_every=25,
        kpca_fit_n=5000,
        scipy_targets=200,
        match_repeats=5,
        memory_fit_max_iter=None,
        memory_match_rows=100_000,
        scale_n_samples=(1_000, 10_000, 100_000),
        n_points_default_fit=True,
    ),
    "quick": Mode(
        name="quick",
        notes=(
            "Quick mode: one default fit (no repeats); time-to-quality from separate fits "
            "at a few max_iter values only; the seed recipe gets a 30 s budget; the memory of "
            "fit is measured with max_iter=10; n_points scaling is timing only.",
        ),
    ),
    "smoke": Mode(
        name="smoke",
        n_train=1_000,
        n_test=200,
        vae_params={"max_iter": 5},
        trajectory=True,
        endpoints=(2,),
        seed_max_epochs=5,
        seed_budget_s=3.0,
        eval_every=2,
        seed_network_epochs=1,
        kpca_fit_n=500,
        scipy_targets=5,
        match_repeats=1,
        memory_rows=20_000,
        memory_fit_max_iter=2,
        memory_match_rows=2_000,
        scale_n_samples=(500, 1_000),
        scale_epochs=2,
        n_points_default_fit=True,
        notes=(
            "SMOKE MODE: checks the plumbing only -- tiny data, 5-epoch fits. "
            "The numbers mean nothing.",
        ),
    ),
}
