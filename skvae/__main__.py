"""The main job: ``python -m skvae``.

Fits a default :class:`~skvae.BetaCurveVAE` on Beta log-pdf curves (10,000 by default, as
in the original blog post), then reports the held-out median reconstruction error of the
encoder and of :class:`~skvae.LatentMatcher` next to PCA with two components, the fit
time, and writes the blog post's figures (data, training history, latent space, a matched
target, latent traversal) to a folder.

Every option is checked before any work starts: a bad value ends the job at once with
exit status 2 and a one-line message, and the figures folder is created (and checked
writable) before the fit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from . import BetaCurveVAE, LatentMatcher, make_beta_curves

#: Fewest training curves: PCA(n_components=2) and a 10 % validation split need them.
MIN_TRAIN = 10
#: Most curves per set: a billion curves of 100 points already take 800 GB.
MAX_CURVES = 10**9
#: ``--random-state`` and ``--random-state + 1`` must both be valid numpy seeds.
MAX_RANDOM_STATE = 2**32 - 2

_DESCRIPTION = """\
Fit a default BetaCurveVAE on Beta log-pdf curves and compare its held-out median
reconstruction error (encoder, and LatentMatcher's Nelder-Mead search) with
PCA(n_components=2); report the fit time and write the figures of the fitted model
(data, training history, latent space, a matched target, latent traversal) to a folder.
"""


def _int_in(low: int, high: int | None = None):
    """An argparse ``type``: an integer in ``[low, high]``, with a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m skvae", description=_DESCRIPTION)
    parser.add_argument(
        "--n-train",
        type=_int_in(MIN_TRAIN, MAX_CURVES),
        default=10_000,
        metavar="N",
        help=f"number of training curves, {MIN_TRAIN} to {MAX_CURVES:,} (default: %(default)s)",
    )
    parser.add_argument(
        "--n-test",
        type=_int_in(1, MAX_CURVES),
        default=2_000,
        metavar="N",
        help=f"number of held-out curves, 1 to {MAX_CURVES:,} (default: %(default)s)",
    )
    parser.add_argument(
        "--max-iter",
        type=_int_in(1),
        default=None,
        metavar="N",
        help="training epochs, at least 1 (default: the estimator's default)",
    )
    parser.add_argument(
        "--random-state",
        type=_int_in(0, MAX_RANDOM_STATE),
        default=0,
        metavar="SEED",
        help="seed of the data and of the fit (default: %(default)s)",
    )
    parser.add_argument(
        "--figures",
        default="figures",
        metavar="FOLDER",
        help="folder for the figures, created if needed; '' skips them (default: %(default)s)",
    )
    return parser


def _check_figures_folder(parser: argparse.ArgumentParser, folder: str) -> None:
    """Create ``folder`` and check that a file can be written there, or exit with status 2."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        parser.error(f"argument --figures: {folder!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        parser.error(f"argument --figures: cannot write figures to {folder!r} ({reason})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; exits with status 2 on a bad option."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.figures:
        _check_figures_folder(parser, args.figures)
    return args


def _median_l2(X: np.ndarray, X_hat: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(X_hat - X, axis=1)))


def main(argv: list[str] | None = None) -> dict:
    """Run the main job; ``argv`` defaults to the command line. Returns the measures."""
    parser = _parser()
    args = parse_args(argv)
    try:
        X, _ = make_beta_curves(args.n_train, random_state=args.random_state)
        X_test, _ = make_beta_curves(args.n_test, random_state=args.random_state + 1)
    except MemoryError:
        parser.error(
            f"arguments --n-train/--n-test: {args.n_train} + {args.n_test} curves do not fit "
            "in memory"
        )
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
        from .datasets import beta_grid
        from .plotting import save_figures

        grid = beta_grid(X_test.shape[1])
        paths = save_figures(vae, X_test, args.figures, matcher=matcher, grid=grid)
        folder = Path(args.figures).resolve()
        print(f"figures written to {folder}: " + ", ".join(p.name for p in paths))
    return results


if __name__ == "__main__":
    main()
