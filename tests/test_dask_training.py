"""The out-of-core training pieces (skvae._dask) on dask arrays: the scaler's statistics,
``split_blocks``, ``DaskBlockBatches``, the validation scorer and ``dask_training_data``;
some on a real LocalCluster of two process workers (the ``client`` fixture of conftest.py).

Fitting the estimators on dask arrays is tested in test_dask_estimators.py.
"""

import numpy as np
import pytest
import torch

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from _helpers import CountingReader  # noqa: E402

from skvae._dask import (  # noqa: E402
    DaskBlockBatches,
    DaskCurves,
    dask_scaler,
    dask_training_data,
    dask_validation_scorer,
    split_blocks,
)
from skvae._scaling import CurveScaler  # noqa: E402
from skvae._torch.loop import reconstruction_log_likelihood  # noqa: E402
from skvae._torch.networks import VAEModule  # noqa: E402

# --------------------------------------------------------------------------- dask_scaler


@pytest.mark.parametrize(
    "X",
    [
        np.random.default_rng(0).normal(3.0, 2.0, size=(500, 7)) * np.arange(1, 8),
        np.full((40, 3), 5.0),  # constant curves: the scale falls back to their level
        np.zeros((10, 4)),
        np.random.default_rng(1).normal(size=(60, 5)) * 1e200,  # squares overflow
        np.random.default_rng(2).normal(size=(1, 5)),
    ],
    ids=["normal", "constant", "zeros", "huge", "one-row"],
)
def test_dask_scaler_matches_curve_scaler(client, X):
    expected = CurveScaler.fit(X)
    scaler = dask_scaler(da.from_array(X, chunks=(23, 2)))
    np.testing.assert_allclose(scaler.mean, expected.mean, rtol=1e-12, atol=1e-300)
    assert scaler.scale == pytest.approx(expected.scale, rel=1e-10)


def test_dask_scaler_reads_every_block_once():
    X = np.random.default_rng(0).normal(size=(100, 6))
    reader = CountingReader(X)
    with dask.config.set(scheduler="sync"):
        dask_scaler(da.from_array(reader, chunks=(25, 3), asarray=True, lock=False))
    assert sorted(reader.reads) == [(25, 3)] * 8  # 4 row blocks x 2 column blocks, once


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_dask_scaler_rejects_infinity(bad):
    X = np.ones((20, 4))
    X[13, 2] = bad
    with pytest.raises(ValueError, match="infinity"):
        dask_scaler(da.from_array(X, chunks=5))
    with pytest.raises(ValueError, match="0 sample"):
        dask_scaler(da.zeros((0, 4)))


# -------------------------------------------------------------------------- split_blocks


def test_split_blocks():
    dX = da.zeros((100, 3), chunks=(10, 3))
    train, val = split_blocks(dX, 0.25, np.random.RandomState(0))
    assert sum(b.shape[0] for b in val) == 20  # the closest to 25 rows
    assert sum(b.shape[0] for b in train) == 80
    assert sum(b.shape[0] for b in split_blocks(dX, 0.26, np.random.RandomState(0))[1]) == 30
    assert all(b.numblocks == (1, 1) for b in train + val)
    again = split_blocks(dX, 0.25, np.random.RandomState(0))
    assert [b.name for b in again[1]] == [b.name for b in val]
    other = split_blocks(dX, 0.25, np.random.RandomState(1))
    assert [b.name for b in other[1]] != [b.name for b in val]
    assert split_blocks(dX, 0.999, np.random.RandomState(0))[0]  # one block stays to train
    assert len(split_blocks(dX, 1e-6, np.random.RandomState(0))[1]) == 1
    train, val = split_blocks(dX, None, None)
    assert len(train) == 10 and val == []


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.26, 0.5])
def test_dask_curves_count_the_held_out_curves_split_blocks_aims_at(fraction):
    """The fit's count of held-out curves (which decides how a long schedule is spent)
    is within half a block of the rows that split_blocks holds out."""
    dX = da.zeros((100, 3), chunks=(10, 3))
    held = sum(b.shape[0] for b in split_blocks(dX, fraction, np.random.RandomState(0))[1])
    assert abs(DaskCurves(dX).n_held_out(fraction) - held) <= 5


def test_split_blocks_errors():
    with pytest.raises(ValueError, match="rechunk"):
        split_blocks(da.zeros((100, 3), chunks=(100, 3)), 0.1, np.random.RandomState(0))
    dX = da.zeros((100, 3), chunks=(10, 3))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        split_blocks(dX[dX[:, 0] == 0], 0.1, np.random.RandomState(0))


# ---------------------------------------------------------------------- DaskBlockBatches


def _source(X, chunks, device="cpu"):
    dX = da.from_array(X, chunks=chunks)
    scaler = CurveScaler.fit(X)
    return DaskBlockBatches(split_blocks(dX, None, None)[0], scaler, device), scaler


def test_block_batches_one_epoch_covers_every_row(client):
    X = np.random.default_rng(0).normal(size=(230, 5))
    source, scaler = _source(X, (70, 5))
    assert (source.n_samples, source.n_features) == (230, 5)
    batches = list(source.batches(32, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [32] * 7 + [6]  # batches run across blocks
    assert all(b.dtype == torch.float32 and b.device.type == "cpu" for b in batches)
    rows = torch.cat(batches).numpy()
    expected = scaler.data_to_model(X).astype(np.float32)
    order = np.lexsort(rows.T)
    np.testing.assert_array_equal(rows[order], expected[np.lexsort(expected.T)])
    assert not np.array_equal(rows, expected)  # shuffled


def test_block_batches_shuffle_blocks_and_rows():
    X = np.arange(200.0)[:, None] * np.ones((1, 3))  # row i holds i
    source, scaler = _source(X, (50, 3))
    seen = []
    with dask.config.set(scheduler="sync"):
        for seed in range(3):
            rows = scaler.model_to_data(
                torch.cat(list(source.batches(50, torch.Generator().manual_seed(seed)))).numpy()
            )
            index = np.rint(rows[:, 0]).astype(int)
            blocks = index.reshape(4, 50) // 50
            assert (blocks == blocks[:, :1]).all()  # each batch of 50 is one whole block
            assert not np.array_equal(index[:50], np.sort(index[:50]))  # rows shuffled
            seen.append(tuple(blocks[:, 0]))
        again = torch.cat(list(source.batches(50, torch.Generator().manual_seed(0))))
    assert len(set(seen)) > 1  # block order depends on the generator
    first = scaler.model_to_data(again.numpy())[:, 0]
    assert tuple(np.rint(first).astype(int).reshape(4, 50)[:, 0] // 50) == seen[0]


def test_block_batches_hold_at_most_two_blocks():
    X = np.random.default_rng(0).normal(size=(400, 4))
    reader = CountingReader(X)
    dX = da.from_array(reader, chunks=(50, 4), asarray=True, lock=False)
    source = DaskBlockBatches(split_blocks(dX, None, None)[0], CurveScaler.fit(X))
    with dask.config.set(scheduler="sync"):
        batches = source.batches(10, torch.Generator().manual_seed(0))
        next(batches)
        import time

        time.sleep(0.2)  # let the prefetch finish
        assert len(reader.reads) <= 2  # the current block and the next one
        n_batches = 1 + sum(1 for _ in batches)
    assert n_batches == 40 and len(reader.reads) == 8


def test_block_batches_reject_bad_blocks():
    X = np.ones((40, 3))
    X[25, 1] = np.inf
    source, _ = _source(np.ones((40, 3)), (10, 3))
    bad = DaskBlockBatches(split_blocks(da.from_array(X, chunks=10), None, None)[0], source.scaler)
    with pytest.raises(ValueError, match="infinity"):
        list(bad.batches(8, torch.Generator().manual_seed(0)))
    X[25] = np.nan
    blocks = split_blocks(da.from_array(X, chunks=10), None, None)[0]
    empty = DaskBlockBatches(blocks, source.scaler)
    with pytest.raises(ValueError, match=r"row block of X has 1 curve\(s\).*rows \[5\]"):
        list(empty.batches(8, torch.Generator().manual_seed(0)))
    huge = DaskBlockBatches(
        split_blocks(da.from_array(np.full((20, 3), 1e300), chunks=10), None, None)[0],
        CurveScaler(np.zeros(3), 1.0),
    )
    with pytest.raises(ValueError, match="overflow float32"):
        list(huge.batches(8, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="at least one block"):
        DaskBlockBatches([], source.scaler)


# ------------------------------------------------------------------------ validation


def test_validation_scorer_matches_in_memory(client, curves):
    X = curves[1]
    scaler = CurveScaler.fit(curves[0])
    dX = da.from_array(X, chunks=(30, 100))
    module = VAEModule(n_features=100, hidden=[16], latent_dims=2, activation="silu", noise=None)
    module.reset_parameters(torch.Generator().manual_seed(0))
    blocks = split_blocks(dX, None, None)[0]
    tensor = torch.as_tensor(scaler.data_to_model(X), dtype=torch.float32)
    expected = reconstruction_log_likelihood(module, tensor.double()).mean()
    for cache in (False, True):
        score = dask_validation_scorer(blocks, scaler, "cpu", cache=cache)
        for _ in range(2):
            value = score(module)
            assert value.shape == () and value.dtype == torch.float64
            assert float(value) == pytest.approx(float(expected), rel=1e-6)


def test_validation_scorer_cache_reads_once():
    X = np.random.default_rng(0).normal(size=(60, 6))
    module = VAEModule(n_features=6, hidden=[8], latent_dims=2, activation="silu", noise=None)
    for cache, expected_reads in ((True, 3), (False, 9)):
        reader = CountingReader(X)
        dX = da.from_array(reader, chunks=(20, 6), asarray=True, lock=False)
        score = dask_validation_scorer(
            split_blocks(dX, None, None)[0], CurveScaler.fit(X), cache=cache
        )
        with dask.config.set(scheduler="sync"):
            values = {float(score(module)) for _ in range(3)}
        assert len(values) == 1 and len(reader.reads) == expected_reads


def test_training_data(curves):
    X = curves[0]
    dX = da.from_array(X, chunks=(100, 100))
    scaler = dask_scaler(dX)
    source, validation = dask_training_data(
        dX, scaler, validation_fraction=0.2, rng=np.random.RandomState(0)
    )
    assert source.n_samples == 500 and validation is not None
    source, validation = dask_training_data(
        dX, scaler, validation_fraction=None, rng=np.random.RandomState(0)
    )
    assert source.n_samples == 600 and validation is None
