"""The main job: ``python -m skvae``.

Fits a default :class:`~skvae.BetaCurveVAE` on the seed's data (10,000 Beta log-pdf curves),
then reports the held-out median reconstruction error next to PCA with two components, and
the fit time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.decomposition import PCA

from . import BetaCurveVAE, make_beta_curves


def _median_l2(X: np.ndarray, X_hat: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(X_hat - X, axis=1)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m skvae", description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=10_000, help="training curves")
    parser.add_argument("--n-test", type=int, default=2_000, help="held-out curves")
    parser.add_argument("--max-iter", type=int, default=None, help="epochs (default: estimator's)")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    X, _ = make_beta_curves(args.n_train, random_state=args.random_state)
    X_test, _ = make_beta_curves(args.n_test, random_state=args.random_state + 1)
    params = {} if args.max_iter is None else {"max_iter": args.max_iter}
    vae = BetaCurveVAE(random_state=args.random_state, **params)
    start = time.perf_counter()
    vae.fit(X)
    fit_seconds = time.perf_counter() - start
    pca = PCA(n_components=2).fit(X)
    results = {
        "fit_seconds": fit_seconds,
        "vae_median_l2": _median_l2(X_test, vae.inverse_transform(vae.transform(X_test))),
        "pca2_median_l2": _median_l2(X_test, pca.inverse_transform(pca.transform(X_test))),
    }
    print(
        f"BetaCurveVAE fit on {args.n_train} curves in {fit_seconds:.1f} s ({vae.n_iter_} epochs)"
    )
    print(f"held-out median L2 reconstruction error over {args.n_test} curves:")
    print(f"  BetaCurveVAE(latent_dims=2): {results['vae_median_l2']:.4f}")
    print(f"  PCA(n_components=2):         {results['pca2_median_l2']:.4f}")
    return results


if __name__ == "__main__":
    main()
