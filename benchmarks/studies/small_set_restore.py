"""Small real sets: does the folds' restore test pick the better of restore and schedule end?

On 60 to 499 curves, ``early_stopping="auto"`` cross-validates the PCA decision on three
folds, and also ranks each held-out curve's gain of its fold's last epoch over the fold's
kept (restored) weights. When the last epochs win that one-sided Wilcoxon test, the fit
trains on every curve over the whole schedule instead of restoring an earlier epoch.

For six small real sets, three seeds each, this prints one JSON line per fit: the test's
p-value, the path taken, and the held-out median relative L2 over PCA(2)'s (the
``real_curves`` benchmark's split and measure) of the default fit and of the fit forced
onto the restore path (the behaviour before the test). One thread; about 12 minutes.

Measured 2026-12-07 (CPU, 1 thread), mean ratio to PCA(2) over seeds 0, 1, 2:

=========== ============ ======= ========================================
set         restore path default p-values (last epoch beats kept weights)
=========== ============ ======= ========================================
OSULeaf     0.803        0.761   0.071, 0.0003, 0.028
ArrowHead   0.738        0.738   0.92, 0.89, 0.81
ACSF1       0.759        0.759   0.87, 0.85, 0.51
Tecator     0.791        0.791   0.998, 0.92, 0.97
GunPoint    0.314        0.314   0.99, 0.86, 0.999
Covid3Month 0.149        0.149   1, 1, 0.085
=========== ============ ======= ========================================

Only OSULeaf's folds, which kept epochs 14-61 of 280 on the encoder-mean score, found the
schedule's end better; every other fit is unchanged to the digit. Training every set on
every curve instead gave OSULeaf 0.745 but ArrowHead 0.759 and Tecator 0.796.
Usage: ``python benchmarks/studies/small_set_restore.py`` from the repository root (needs
sktime and statsmodels, the ``benchmarks`` extra).
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon
from sklearn.decomposition import PCA

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import skvae._vae  # noqa: E402
from benchmarks.workloads.real_curves import (  # noqa: E402
    load_real,
    relative_l2_per_curve,
    split,
)
from skvae import BetaCurveVAE  # noqa: E402

SETS = ["OSULeaf", "ArrowHead", "ACSF1", "tecator", "gunpoint", "Covid3Month"]
SEEDS = (0, 1, 2)


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's 75 % / 25 % split of a real set."""
    if name in ("tecator", "gunpoint"):
        X, _ = load_real(name)
    else:
        from sktime.datasets import load_UCR_UEA_dataset

        X, _ = load_UCR_UEA_dataset(name, return_type="numpy2D")
    X = np.asarray(X, dtype=float)
    train, held_out = split(len(X))
    return X[train], X[held_out]


def ratio_to_pca(model, X_train: np.ndarray, X_test: np.ndarray) -> float:
    mean = X_train.mean(axis=0)
    vae = relative_l2_per_curve(X_test, model.inverse_transform(model.transform(X_test)), mean)
    pca = PCA(2).fit(X_train)
    linear = relative_l2_per_curve(X_test, pca.inverse_transform(pca.transform(X_test)), mean)
    return float(np.median(vae) / np.median(linear))


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    decide = skvae._vae._beats_kept_epoch
    for name in SETS:
        X_train, X_test = load(name)
        for seed in SEEDS:
            tests = []

            def spy(gains, tests=tests):
                values = gains.double().cpu().numpy()
                if values.any():  # all zero: every fold kept its last epoch
                    tests.append(float(wilcoxon(values, alternative="greater").pvalue))
                return decide(gains)

            skvae._vae._beats_kept_epoch = spy
            default = BetaCurveVAE(random_state=seed).fit(X_train)
            skvae._vae._beats_kept_epoch = lambda gains: False  # always restore
            restored = BetaCurveVAE(random_state=seed).fit(X_train)
            skvae._vae._beats_kept_epoch = decide
            row = {
                "set": name,
                "seed": seed,
                "p_last_beats_kept": tests[0] if tests else None,
                "trained_on_every_curve": default.validation_scores_ is None,
                "default_over_pca2": round(ratio_to_pca(default, X_train, X_test), 4),
                "restore_path_over_pca2": round(ratio_to_pca(restored, X_train, X_test), 4),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
