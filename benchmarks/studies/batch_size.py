"""Larger batches on large data: held-out quality at equal epochs and at equal steps.

Fits ``BetaCurveVAE`` (defaults apart from ``batch_size``, ``learning_rate_init`` and
``max_iter``) on 100,000 Beta log-pdf curves and prints the held-out median L2 error of
2,000 others, one JSON line per setting. Quality does not depend on the device, so this runs
on a CPU (one thread; about 25 minutes in all). What it answers: on a GPU a captured
4096-row step costs about as much time as a 512-row one, so is it better to spend the
same number of steps on 8x larger batches?

Measured 2026-11-26 (CPU, 1 thread; seconds are on a shared 2-core machine):

====== ========== ====== ============= =========
batch  lr         epochs steps         median L2
====== ========== ====== ============= =========
512    0.004      30     5,880         0.0089
4096   0.004      30     750           0.0276
4096   0.0113     30     750           0.0280
4096   0.032      30     750           0.0629
16384  0.0226     30     210           0.136
4096   0.004      240    6,000         0.0068
4096   0.0113     240    6,000         0.0061
====== ========== ====== ============= =========

Larger batches at equal epochs lose (fewer steps); at equal steps they win, best with the
learning rate scaled by sqrt(batch_size / 512); scaling it linearly (x 8) is worse.
Usage: ``python benchmarks/studies/batch_size.py`` from the repository root.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from skvae import BetaCurveVAE, make_beta_curves  # noqa: E402

SETTINGS = [  # (batch_size, learning_rate_init, max_iter)
    (512, 4e-3, 30),
    (4096, 4e-3, 30),
    (4096, 4e-3 * 8**0.5, 30),
    (4096, 4e-3 * 8, 30),
    (16384, 4e-3 * 32**0.5, 30),
    (4096, 4e-3, 240),
    (4096, 4e-3 * 8**0.5, 240),
]


def main() -> None:
    torch.set_num_threads(1)
    X, _ = make_beta_curves(102_000, random_state=5)
    X_train, X_test = X[:100_000], X[100_000:]
    for batch_size, lr, epochs in SETTINGS:
        vae = BetaCurveVAE(
            random_state=0, max_iter=epochs, batch_size=batch_size, learning_rate_init=lr
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            vae.fit(X_train)
            seconds = time.perf_counter() - start
        errors = np.linalg.norm(vae.inverse_transform(vae.transform(X_test)) - X_test, axis=1)
        result = {
            "batch_size": batch_size,
            "learning_rate_init": round(lr, 5),
            "epochs": vae.n_iter_,
            "seconds": round(seconds, 1),
            "median_l2": float(np.median(errors)),
            "warnings": sorted({w.category.__name__ for w in caught}),
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
