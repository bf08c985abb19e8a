"""The dask building blocks (skvae._dask) on a real LocalCluster of two process workers.

Estimator-level behaviour (dask arrays through the estimators' own methods) is tested in
test_dask_estimators.py.
"""

import logging
import os

import numpy as np
import pytest
import torch

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from _helpers import TINY, run_in_fresh_process  # noqa: E402

from skvae import BetaCurveVAE, LatentMatcher  # noqa: E402
from skvae._dask import (  # noqa: E402
    DaskBlockBatches,
    check_dask_curves,
    dask_scaler,
    dask_training_data,
    dask_validation_scorer,
    is_dask_array,
    map_rows,
    split_blocks,
)
from skvae._networks import VAEModule  # noqa: E402
from skvae._scaling import CurveScaler  # noqa: E402
from skvae._training import validation_elbo  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 process workers with one thread each, the default scheduler.

    Nannies write their workers' environment (``OMP_NUM_THREADS=1``,
    ``MALLOC_TRIM_THRESHOLD_``...) into this process's ``os.environ``: it is restored
    afterwards, so that processes started by later tests do not inherit it.
    """
    saved = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(saved)


class CountingReader:
    """An array-like that records every non-empty read (for ``da.from_array``)."""

    def __init__(self, X):
        self.X, self.shape, self.dtype, self.ndim = X, X.shape, X.dtype, X.ndim
        self.reads = []

    def __getitem__(self, key):
        out = self.X[key]
        if out.size:
            self.reads.append(out.shape)
        return out


# ---------------------------------------------------------------------------- detection


def test_is_dask_array():
    X = np.zeros((3, 2))
    assert not is_dask_array(X)
    assert not is_dask_array(X.tolist())
    assert not is_dask_array(np.memmap)
    assert is_dask_array(da.from_array(X))
    assert not is_dask_array(da.from_array(X).compute())


def test_numpy_path_imports_no_dask():
    script = """
import sys
import numpy as np
import skvae
from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
from skvae._dask import is_dask_array
X, _ = make_beta_curves(50, random_state=0)
vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X)
vae.partial_fit(X)
matcher = LatentMatcher(vae, prefit=True, max_iter=5).fit(X)
vae.inverse_transform(matcher.transform(X[:2]))
vae.score_samples(X[:2])
assert not is_dask_array(X)
print(sorted(m for m in sys.modules if m == "dask" or m.startswith(("dask.", "distributed"))))
"""
    assert run_in_fresh_process(script).strip() == "[]"


# ------------------------------------------------------------------------------ map_rows


def test_map_rows_transform_on_cluster(client, fitted_vae, curves):
    X = curves[0]
    dX = da.from_array(X, chunks=(250, 40))  # columns split: rechunked to one block
    Z = map_rows(fitted_vae.transform, dX, fitted_vae.latent_dims)
    assert is_dask_array(Z)
    assert Z.shape == (600, 2) and Z.dtype == np.float64
    assert Z.chunks == ((250, 250, 100), (2,))
    computed = Z.compute()
    assert computed.dtype == np.float64
    np.testing.assert_array_equal(computed, fitted_vae.transform(X))  # bit-identical


def test_map_rows_inverse_and_1d_output(client, fitted_vae, curves):
    X = curves[1]
    Z = fitted_vae.transform(X)
    curves_out = map_rows(fitted_vae.inverse_transform, da.from_array(Z, chunks=30), 100)
    assert curves_out.chunks == ((30, 30, 30, 10), (100,))
    np.testing.assert_array_equal(curves_out.compute(), fitted_vae.inverse_transform(Z))
    scores = map_rows(fitted_vae.score_samples, da.from_array(X, chunks=(45, 100)), 0)
    assert scores.shape == (100,) and scores.chunks == ((45, 45, 10),)
    np.testing.assert_array_equal(scores.compute(), fitted_vae.score_samples(X))
    # scikit-learn wraps transform: names must still differ between methods and calls
    names = {map_rows(f, da.from_array(X), 2).name for f in (fitted_vae.transform,) * 2}
    names.add(map_rows(fitted_vae.score_samples, da.from_array(X), 0).name)
    assert len(names) == 3


def test_map_rows_matcher_with_nan_targets(client, fitted_vae, curves):
    X = curves[1][:40].copy()
    X[::2, ::3] = np.nan  # half the targets are partial
    matcher = LatentMatcher(fitted_vae, prefit=True, max_iter=50).fit(curves[0])
    codes = map_rows(matcher.transform, da.from_array(X, chunks=(15, 100)), 2)
    assert codes.chunks == ((15, 15, 10), (2,))
    np.testing.assert_array_equal(codes.compute(), matcher.transform(X))


def test_map_rows_to_zarr_round_trip(client, fitted_vae, curves, tmp_path):
    pytest.importorskip("zarr")
    X = curves[0]
    path = str(tmp_path / "curves.zarr")
    da.from_array(X, chunks=(200, 100)).to_zarr(path)
    dX = da.from_zarr(path)
    codes_path = str(tmp_path / "codes.zarr")
    map_rows(fitted_vae.transform, dX, 2).to_zarr(codes_path)  # declared shape is right
    np.testing.assert_array_equal(da.from_zarr(codes_path).compute(), fitted_vae.transform(X))


def test_map_rows_unknown_and_empty_chunks(client, fitted_vae, curves):
    X = curves[1]
    dX = da.from_array(X, chunks=(25, 100))
    unknown = dX[dX[:, 0] > -np.inf]  # same rows, chunk sizes unknown until computed
    assert np.isnan(unknown.shape[0])
    Z = map_rows(fitted_vae.transform, unknown, 2)
    np.testing.assert_array_equal(Z.compute(), fitted_vae.transform(X))
    empty = dX[dX[:, 0] > np.inf]
    assert map_rows(fitted_vae.transform, empty, 2).compute().shape == (0, 2)


def test_map_rows_checks(fitted_vae):
    dX = da.zeros((10, 100), chunks=5)
    with pytest.raises(ValueError, match="shape"):
        map_rows(fitted_vae.transform, dX, 3).compute(scheduler="sync")
    with pytest.raises(ValueError, match="non-negative int"):
        map_rows(fitted_vae.transform, dX, -1)
    with pytest.raises(ValueError, match="2D"):
        map_rows(fitted_vae.transform, da.zeros(10), 2)
    with pytest.raises(ValueError, match="real numbers"):
        map_rows(fitted_vae.transform, da.zeros((4, 100), dtype=complex), 2)
    with pytest.raises(ValueError, match="has 100 features, but the estimator is expecting 7"):
        check_dask_curves(dX, 7)


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


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_dask_scaler_rejects_non_finite(bad):
    X = np.ones((20, 4))
    X[13, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
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
    expected = scaler.to_model(X).astype(np.float32)
    order = np.lexsort(rows.T)
    np.testing.assert_array_equal(rows[order], expected[np.lexsort(expected.T)])
    assert not np.array_equal(rows, expected)  # shuffled


def test_block_batches_shuffle_blocks_and_rows():
    X = np.arange(200.0)[:, None] * np.ones((1, 3))  # row i holds i
    source, scaler = _source(X, (50, 3))
    seen = []
    with dask.config.set(scheduler="sync"):
        for seed in range(3):
            rows = scaler.to_data(
                torch.cat(list(source.batches(50, torch.Generator().manual_seed(seed)))).numpy()
            )
            index = np.rint(rows[:, 0]).astype(int)
            blocks = index.reshape(4, 50) // 50
            assert (blocks == blocks[:, :1]).all()  # each batch of 50 is one whole block
            assert not np.array_equal(index[:50], np.sort(index[:50]))  # rows shuffled
            seen.append(tuple(blocks[:, 0]))
        again = torch.cat(list(source.batches(50, torch.Generator().manual_seed(0))))
    assert len(set(seen)) > 1  # block order depends on the generator
    first = scaler.to_data(again.numpy())[:, 0]
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
    X[25, 1] = np.nan
    source, _ = _source(np.ones((40, 3)), (10, 3))
    bad = DaskBlockBatches(split_blocks(da.from_array(X, chunks=10), None, None)[0], source.scaler)
    with pytest.raises(ValueError, match="NaN or infinity"):
        list(bad.batches(8, torch.Generator().manual_seed(0)))
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
    tensor = torch.as_tensor(scaler.to_model(X), dtype=torch.float32)
    expected = validation_elbo(module, tensor.double(), 0.5)
    for cache in (False, True):
        score = dask_validation_scorer(blocks, scaler, "cpu", kl_weight=0.5, cache=cache)
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
        dX, scaler, validation_fraction=0.2, rng=np.random.RandomState(0), kl_weight=1.0
    )
    assert source.n_samples == 500 and validation is not None
    source, validation = dask_training_data(
        dX, scaler, validation_fraction=None, rng=np.random.RandomState(0)
    )
    assert source.n_samples == 600 and validation is None


# ------------------------------------------------------------------- model selection


def test_worker_torch_threads(client):
    assert set(client.run(torch.get_num_threads).values()) == {1}


def test_grid_search_on_dask_backend_matches_default(client, curves):
    joblib = pytest.importorskip("joblib")
    from sklearn.model_selection import GridSearchCV

    X = curves[0][:200]
    grid = {"latent_dims": [1, 2]}
    params = {**TINY, "max_iter": 3}

    def results(n_jobs):
        search = GridSearchCV(BetaCurveVAE(**params), grid, cv=2, n_jobs=n_jobs).fit(X)
        return {k: v for k, v in search.cv_results_.items() if "time" not in k}, search

    default, _ = results(None)
    with joblib.parallel_config(backend="dask"):
        on_dask, search = results(2)
    assert default.keys() == on_dask.keys()
    for key in default:
        if key == "params":
            assert default[key] == on_dask[key]
        else:
            np.testing.assert_array_equal(default[key], on_dask[key])
    assert search.best_estimator_.n_iter_ == 3


# ------------------------------------------------ the estimators (wired by the lead)


def _refuse_materialising(*args, **kwargs):
    raise AssertionError("the whole dask array was converted to numpy")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vae_methods_take_and_return_dask_arrays(client, fitted_vae, curves, dtype):
    X = curves[0].astype(dtype)
    dX = da.from_array(X, chunks=(250, 40))
    Z = fitted_vae.transform(dX)
    back = fitted_vae.inverse_transform(Z)
    scores = fitted_vae.score_samples(dX)
    assert all(map(is_dask_array, (Z, back, scores)))
    assert Z.chunks == ((250, 250, 100), (2,)) and Z.dtype == np.float64
    assert back.chunks == ((250, 250, 100), (100,)) and back.dtype == np.float64
    assert scores.chunks == ((250, 250, 100),) and scores.dtype == np.float64
    Z_np = fitted_vae.transform(X)
    z, b, s = dask.compute(Z, back, scores)
    np.testing.assert_array_equal(z, Z_np)
    np.testing.assert_array_equal(b, fitted_vae.inverse_transform(Z_np))
    np.testing.assert_array_equal(s, fitted_vae.score_samples(X))
    with pytest.raises(ValueError, match="features"):
        fitted_vae.transform(dX[:, :50])  # at once, not at compute time
    with pytest.raises(ValueError, match="features"):
        fitted_vae.inverse_transform(dX)


def test_matcher_takes_and_returns_dask_arrays(client, fitted_vae, curves):
    X = curves[1][:40].copy()
    X[::2, ::3] = np.nan
    matcher = LatentMatcher(fitted_vae, prefit=True, max_iter=50).fit(curves[0])
    codes = matcher.transform(da.from_array(X, chunks=(15, 100)))
    completed = matcher.inverse_transform(codes)
    assert is_dask_array(codes) and is_dask_array(completed)
    assert codes.chunks == ((15, 15, 10), (2,)) and completed.shape == (40, 100)
    expected = matcher.transform(X)
    np.testing.assert_array_equal(codes.compute(), expected)
    np.testing.assert_array_equal(completed.compute(), matcher.inverse_transform(expected))


def test_estimator_results_to_zarr(client, fitted_vae, curves, tmp_path):
    pytest.importorskip("zarr")
    X = curves[0]
    da.from_array(X, chunks=(200, 100)).to_zarr(str(tmp_path / "curves.zarr"))
    dX = da.from_zarr(str(tmp_path / "curves.zarr"))
    fitted_vae.transform(dX).to_zarr(str(tmp_path / "codes.zarr"))
    codes = da.from_zarr(str(tmp_path / "codes.zarr"))
    np.testing.assert_array_equal(codes.compute(), fitted_vae.transform(X))
    fitted_vae.inverse_transform(codes).to_zarr(str(tmp_path / "decoded.zarr"))
    decoded = da.from_zarr(str(tmp_path / "decoded.zarr")).compute()
    np.testing.assert_array_equal(decoded, fitted_vae.inverse_transform(codes.compute()))


def test_fit_dask_streams_blocks_without_materialising(curves, monkeypatch):
    X = curves[0]
    reader = CountingReader(X)
    dX = da.from_array(reader, chunks=(150, 50), asarray=True, lock=False)
    monkeypatch.setattr(type(dX), "__array__", _refuse_materialising)
    with dask.config.set(scheduler="sync"):
        vae = BetaCurveVAE(**{**TINY, "max_iter": 3, "batch_size": 64}).fit(dX)
    # one pass of statistics, then one pass per epoch; never more than a block at a time
    assert len(reader.reads) == 4 * 2 * (1 + 3)
    assert set(reader.reads) == {(150, 50)}
    assert vae.n_features_in_ == 100 and vae.n_iter_ == 3
    expected = CurveScaler.fit(X)
    np.testing.assert_allclose(vae.mean_, expected.mean, rtol=1e-12)
    assert vae.scale_ == pytest.approx(expected.scale, rel=1e-12)
    assert np.isfinite(vae.loss_curve_).all()


def test_fit_dask_is_deterministic_and_learns(curves):
    X, X_test = curves[0], curves[1]
    dX = da.from_array(X, chunks=(100, 100))
    params = {"hidden_layer_sizes": (32,), "max_iter": 15, "batch_size": 64, "random_state": 0}
    with dask.config.set(scheduler="sync"):
        first = BetaCurveVAE(**params).fit(dX)
        second = BetaCurveVAE(**params).fit(dX)
    for name, value in first.module_.state_dict().items():
        assert torch.equal(value, second.module_.state_dict()[name]), name
    assert first.loss_curve_ == second.loss_curve_
    assert first.loss_curve_[-1] < first.loss_curve_[0]
    in_memory = BetaCurveVAE(**params).fit(X)  # another shuffle, comparable quality

    def error(vae):
        return np.sqrt(np.mean((vae.inverse_transform(vae.transform(X_test)) - X_test) ** 2))

    assert error(first) < 1.5 * error(in_memory)


def test_fit_dask_early_stopping_on_held_out_blocks(curves):
    dX = da.from_array(curves[0], chunks=(100, 100))
    params = {**TINY, "max_iter": 4, "early_stopping": True, "validation_fraction": 0.2}
    with dask.config.set(scheduler="sync"):
        vae = BetaCurveVAE(**params).fit(dX)
        assert len(vae.validation_scores_) == vae.n_iter_ == 4
        assert vae.best_validation_score_ == max(vae.validation_scores_)
        unfitted = BetaCurveVAE(**params)
        with pytest.raises(ValueError, match="rechunk"):
            unfitted.fit(dX.rechunk({0: -1}))
    assert not hasattr(unfitted, "n_features_in_")  # a failed fit changes nothing


def test_partial_fit_dask_continues(curves):
    X = curves[0]
    dX = da.from_array(X, chunks=(100, 100))
    with dask.config.set(scheduler="sync"):
        vae = BetaCurveVAE(**TINY).partial_fit(dX)
        assert vae.scale_ == pytest.approx(CurveScaler.fit(X).scale, rel=1e-12)  # all blocks
        vae.partial_fit(dX[:200], y=("", 1))
        assert vae.n_iter_ == 2
        with pytest.raises(ValueError, match="features"):
            vae.partial_fit(dX[:, :10])
    assert vae.n_iter_ == 2


@pytest.mark.parametrize("y", [("", 0), np.arange(3), "ignored", None])
def test_partial_fit_ignores_y(curves, y):
    X = curves[0][:200]
    reference = BetaCurveVAE(**TINY).partial_fit(X)
    with_y = BetaCurveVAE(**TINY).partial_fit(X, y)
    for name, value in reference.module_.state_dict().items():
        assert torch.equal(value, with_y.module_.state_dict()[name]), name
