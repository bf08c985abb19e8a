"""
==================================================
Scaling out: encode and match a zarr store on Dask
==================================================

Fitted skvae estimators take :class:`dask.array.Array` inputs and return lazy dask
arrays with the right shape, chunks and dtype, bit-identical row by row to the numpy
results. The work runs wherever Dask runs it: here on a
:class:`~distributed.LocalCluster` of two worker processes, reading from and writing to
`zarr <https://zarr.dev>`_ stores on disk, so that no process ever holds all the curves.

This example writes a store of ``N_CURVES`` Beta log-density curves, encodes all of them,
matches the first ``N_MATCHED`` of them with :class:`~skvae.LatentMatcher`, and prints
the throughput reached. It runs in the documentation build on two shared cores in under a
minute, which is why it matches only 2% of the store: matching runs a Nelder-Mead search
per curve and costs several times more than encoding (the ratio on this machine is
printed at the end of the run). To match the whole store, set
``N_MATCHED = N_CURVES``; on a bigger machine raise ``N_WORKERS``, or connect a
:class:`~distributed.Client` to an existing cluster: blocks are independent, so the
throughput grows with the number of workers.
"""

# %%
# Settings
# --------
N_CURVES = 1_000_000  # curves written to the store and encoded
N_MATCHED = 20_000  # curves matched (the first ones of the store)
BLOCK = 50_000  # curves per zarr chunk and per dask block
N_WORKERS = 2  # worker processes of the local cluster (one torch thread each)

# %%
# A store of curves
# -----------------
# The curves are Beta log-densities on a grid of 100 points, with
# :math:`\alpha, \beta \sim U(0, 5)` drawn by dask itself, block by block on the workers
# (the Beta log-density is affine in :math:`(\log x, \log(1 - x), 1)`). The store holds
# float32, which halves the disk traffic; the estimators compute in float64 either way.
import logging
import tempfile
import time
from pathlib import Path

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from dask.distributed import Client, LocalCluster
from scipy.special import betaln

from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
from skvae.datasets import beta_grid

GRID = beta_grid(100)


def write_curves(path: str) -> None:
    rng = da.random.default_rng(0)
    alpha = rng.uniform(0.0, 5.0, size=N_CURVES, chunks=BLOCK)
    beta = rng.uniform(0.0, 5.0, size=N_CURVES, chunks=BLOCK)
    curves = (
        (alpha[:, None] - 1) * np.log(GRID)
        + (beta[:, None] - 1) * np.log1p(-GRID)
        - betaln(alpha, beta)[:, None]
    )
    start = time.perf_counter()
    curves.astype(np.float32).to_zarr(path)
    print(f"wrote {N_CURVES:,} curves in {time.perf_counter() - start:.1f} s")


# %%
# Encode and match
# ----------------
# ``transform`` returns at once: a lazy array of the latent codes, declared with the
# shape, chunks and dtype it will have. Writing it to zarr runs the graph: each worker
# reads a block of curves, encodes it with its copy of the model (sent by pickle) and
# writes the block of codes. Matching refines each code by a Nelder-Mead search in the
# latent space; its result is lazy too, and row by row identical to
# ``matcher.transform`` on a numpy array.
def encode_and_match(store: Path, vae, matcher) -> None:
    """Encode all curves, match the first ones, and print both throughputs."""
    X = da.from_zarr(str(store / "curves.zarr"))
    codes = vae.transform(X)
    print(codes)
    start = time.perf_counter()
    codes.to_zarr(str(store / "codes.zarr"))
    seconds = time.perf_counter() - start
    encode_rate = N_CURVES / seconds
    print(
        f"encoded {N_CURVES:,} curves in {seconds:.1f} s: "
        f"{encode_rate:,.0f} curves/s on {N_WORKERS} workers"
    )
    start = time.perf_counter()
    matcher.transform(X[:N_MATCHED]).to_zarr(str(store / "matched.zarr"))
    seconds = time.perf_counter() - start
    match_rate = N_MATCHED / seconds
    print(
        f"matched {N_MATCHED:,} curves in {seconds:.1f} s: "
        f"{match_rate:,.0f} curves/s on {N_WORKERS} workers"
    )
    print(f"a match costs {encode_rate / match_rate:.1f} times as much as an encoding here")


# %%
# Read the results back
# ---------------------
# The stores hold plain arrays: decode a few matched codes (lazily again) and compare
# them with their curves; the first block is also checked against numpy matching.
def check_and_plot(store: Path, vae, matcher) -> None:
    first = da.from_zarr(str(store / "curves.zarr"))[:500].compute()
    matched = da.from_zarr(str(store / "matched.zarr"))
    assert np.array_equal(matched[:500].compute(), matcher.transform(first))
    decoded = vae.inverse_transform(matched[:4]).compute()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i in range(4):
        ax.plot(GRID, first[i], color=f"C{i}", lw=4, alpha=0.3)
        ax.plot(GRID, decoded[i], color=f"C{i}", lw=1)
    ax.plot([], [], color="grey", lw=4, alpha=0.3, label="curve in the store")
    ax.plot([], [], color="grey", lw=1, label="decoded matched code")
    ax.legend(fontsize="small")
    ax.set(
        xlabel="x",
        ylabel="log-density",
        title="Four curves of the store and their matches, read back from zarr",
    )
    plt.show()


# %%
# Run on a local cluster
# ----------------------
# Process-based workers start by importing the script that created them, so a script
# must create its cluster under ``if __name__ == "__main__":``. The model is fitted in
# memory on 3,000 curves (``fit`` also takes a dask array, and then trains out of core
# by streaming blocks: see the user guide's "Scaling out").
if __name__ == "__main__":
    X_train, _ = make_beta_curves(3_000, random_state=0)
    vae = BetaCurveVAE(hidden_layer_sizes=(64, 64), max_iter=30, random_state=0).fit(X_train)
    matcher = LatentMatcher(vae, prefit=True).fit(X_train)
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalCluster(
            n_workers=N_WORKERS,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster),
    ):
        store = Path(workdir)
        write_curves(str(store / "curves.zarr"))
        encode_and_match(store, vae, matcher)
        check_and_plot(store, vae, matcher)
