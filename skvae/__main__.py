"""The main job: ``python -m skvae``.

Fits a default :class:`~skvae.BetaCurveVAE` on the seed's data (10,000 Beta log-pdf curves),
then reports the held-out median reconstruction error of the encoder and of
:class:`~skvae.LatentMatcher` next to PCA with two components, the fit time, and writes the
seed's figures (data, training history, latent space, a matched target, latent traversal)
to a folder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from . import BetaCurveVAE, LatentMatcher, make_beta_curves


def _median_l2(X: np.ndarray, X_hat: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(X_hat - X, axis=1)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m skvae", description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=10_000, help="training curves")
    parser.add_argument("--n-test", type=int, default=2_000, help="held-out curves")
    parser.add_argument("--max-iter", type=int, default=None, help="epochs (default: estimator's)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--figures", default="figures", help="folder for the figures ('' to skip them)"
    )
    args = parser.parse_args(argv)

    X, _ = make_beta_curves(args.n_train, random_state=args.random_state)
    X_test, _ = make_beta_curves(args.n_test, random_state=args.random_state + 1)
    params = {} if args.max_iter is None else {"max_iter": args.max_iter}
    vae = BetaCurveVAE(random_state=args.random_state, **params)
    start = time.perf_counter()
    vae.fit(X)
    fit_seconds = time.perf_counter() - start
    pca = PCA(n_components=2).fit(X)
    matcher = LatentMatcher(vae, prefit=True).fit(X)
    start = time.perf_counter()
    Z_matched = matcher.transform(X_test)
    match_seconds = time.perf_counter() - start
    results = {
        "fit_seconds": fit_seconds,
        "match_targets_per_second": len(X_test) / match_seconds,
        "vae_median_l2": _median_l2(X_test, vae.inverse_transform(vae.transform(X_test))),
        "matcher_median_l2": _median_l2(X_test, vae.inverse_transform(Z_matched)),
        "pca2_median_l2": _median_l2(X_test, pca.inverse_transform(pca.transform(X_test))),
    }
    print(
        f"BetaCurveVAE fit on {args.n_train} curves in {fit_seconds:.1f} s ({vae.n_iter_} epochs)"
    )
    print(f"held-out median L2 reconstruction error over {args.n_test} curves:")
    print(f"  BetaCurveVAE encoder:        {results['vae_median_l2']:.4f}")
    print(
        f"  LatentMatcher (Nelder-Mead):  {results['matcher_median_l2']:.4f}"
        f"  ({results['match_targets_per_second']:,.0f} targets/s)"
    )
    print(f"  PCA(n_components=2):         {results['pca2_median_l2']:.4f}")
    if args.figures:
        from .plotting import save_figures

        paths = save_figures(vae, X_test, args.figures, matcher=matcher)
        folder = Path(args.figures).resolve()
        print(f"figures written to {folder}: " + ", ".join(p.name for p in paths))
    return results


if __name__ == "__main__":
    main()
