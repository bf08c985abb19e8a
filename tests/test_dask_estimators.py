"""The estimators on dask arrays: their methods take and return dask arrays (on a real
LocalCluster of two process workers, the ``client`` fixture of conftest.py), and
``fit``/``partial_fit`` stream the blocks without materialising the whole array.

The building blocks they use (skvae._dask) are tested in test_dask_inference.py and
test_dask_training.py.
"""

import copy

import numpy as np
import pytest
import torch

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from _helpers import TINY, CountingReader  # noqa: E402

from skvae import BetaCurveVAE, CurveImputer, LatentMatcher  # noqa: E402
from skvae._dask import is_dask_array  # noqa: E402
from skvae._scaling import CurveScaler  # noqa: E402


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
    matcher = LatentMatcher(fitted_vae, prefit=True, maxiter=50).fit(curves[0])
    codes = matcher.transform(da.from_array(X, chunks=(15, 100)))
    completed = matcher.inverse_transform(codes)
    assert is_dask_array(codes) and is_dask_array(completed)
    assert codes.chunks == ((15, 15, 10), (2,)) and completed.shape == (40, 100)
    expected = matcher.transform(X)
    np.testing.assert_array_equal(codes.compute(), expected)
    np.testing.assert_array_equal(completed.compute(), matcher.inverse_transform(expected))


def test_matcher_fit_reads_only_the_reference_rows_when_prefit(fitted_vae, curves, monkeypatch):
    reader = CountingReader(curves[0])
    dX = da.from_array(reader, chunks=(150, 100), asarray=True, lock=False)
    monkeypatch.setattr(type(dX), "__array__", _refuse_materialising)
    with dask.config.set(scheduler="sync"):
        matcher = LatentMatcher(fitted_vae, prefit=True, n_candidates=20).fit(dX)
        assert len(reader.reads) <= 4 and matcher.n_features_in_ == 100  # each block once
        expected = LatentMatcher(fitted_vae, prefit=True, n_candidates=20).fit(curves[0])
        np.testing.assert_array_equal(matcher.reference_codes_, expected.reference_codes_)
        with pytest.raises(ValueError, match="features"):
            LatentMatcher(fitted_vae, prefit=True).fit(dX[:, :50])
    assert not hasattr(matcher, "feature_names_in_")


def test_matcher_fits_its_vae_out_of_core(curves, monkeypatch):
    X = curves[0][:300].copy()
    X[::7, 3] = np.nan  # missing points: the VAE trains on these rows too
    X[5] = np.nan  # no observed point: left out
    reader = CountingReader(X)
    dX = da.from_array(reader, chunks=(100, 100), asarray=True, lock=False)
    monkeypatch.setattr(type(dX), "__array__", _refuse_materialising)
    vae = BetaCurveVAE(**{**TINY, "max_iter": 2, "batch_size": 64})
    with dask.config.set(scheduler="sync"):
        matcher = LatentMatcher(vae).fit(dX)
    assert set(reader.reads) == {(100, 100)}  # block by block, never the whole array
    assert matcher.estimator_.n_iter_ == 2 and matcher.n_features_in_ == 100
    kept = np.delete(X, 5, axis=0)
    np.testing.assert_allclose(matcher.estimator_.mean_, np.nanmean(kept, axis=0), rtol=1e-10)


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
    # one pass of statistics, one for the PCA start, then one pass per epoch; never more
    # than a block at a time
    assert len(reader.reads) == 4 * 2 * (2 + 3)
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
        # the best epoch's score, or the PCA start's when no epoch beat it clearly
        assert vae.best_validation_score_ >= max(vae.validation_scores_)
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


def test_fit_dask_with_empty_row_blocks(curves):
    """Boolean filtering, then compute_chunk_sizes(), leaves empty row blocks: the fit
    trains on the other blocks exactly as on the array without them."""
    X = curves[0][:200]
    keep = np.ones(len(X), dtype=bool)
    keep[100:150] = False
    filtered = da.from_array(X, chunks=(25, 100))[da.from_array(keep, chunks=25)]
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"unknown size; call X.compute_chunk_sizes\(\)"):
            BetaCurveVAE(**TINY).fit(filtered)
        filtered.compute_chunk_sizes()
        assert 0 in filtered.chunks[0]
        vae = BetaCurveVAE(**TINY).fit(filtered)
        reference = BetaCurveVAE(**TINY).fit(da.from_array(X[keep], chunks=(25, 100)))
    assert vae.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(vae.mean_, reference.mean_)


def test_object_arrays_are_accepted_from_dask_as_from_numpy(client, fitted_vae, curves):
    X = curves[0][:60].astype(object)
    Z = fitted_vae.transform(X)
    np.testing.assert_array_equal(fitted_vae.transform(da.from_array(X, chunks=30)).compute(), Z)
    with dask.config.set(scheduler="sync"):
        vae = BetaCurveVAE(**TINY).fit(da.from_array(X, chunks=30))
    assert vae.n_iter_ == 2


def test_transform_pandas_output_of_a_dask_array_stays_lazy(client, fitted_vae, curves):
    dd = pytest.importorskip("dask.dataframe")
    X = curves[0][:90]
    vae = copy.deepcopy(fitted_vae).set_output(transform="pandas")
    frame = vae.transform(da.from_array(X, chunks=(30, 100)))
    assert isinstance(frame, dd.DataFrame) and frame.npartitions == 3
    assert list(frame.columns) == list(vae.get_feature_names_out())
    np.testing.assert_array_equal(frame.compute().to_numpy(), vae.transform(X).to_numpy())


def test_matcher_pandas_output_of_a_dask_array_stays_lazy(client, fitted_vae, curves):
    dd = pytest.importorskip("dask.dataframe")
    X = curves[1][:30]
    matcher = LatentMatcher(fitted_vae, prefit=True, maxiter=20).fit(X)
    matcher.set_output(transform="pandas")
    frame = matcher.transform(da.from_array(X, chunks=(10, 100)))
    assert isinstance(frame, dd.DataFrame) and frame.npartitions == 3
    assert list(frame.columns) == ["latentmatcher0", "latentmatcher1"]
    np.testing.assert_array_equal(frame.compute().to_numpy(), matcher.transform(X).to_numpy())


def _gappy(X: np.ndarray) -> np.ndarray:
    """``X`` with scattered points, a gap, and one whole row missing."""
    X = X.copy()
    X[::3, 40:70] = np.nan
    X[1::4, ::5] = np.nan
    X[4] = np.nan
    return X


def test_imputer_takes_and_returns_dask_arrays(client, fitted_vae, curves):
    X = _gappy(curves[0][:120])
    dX = da.from_array(X, chunks=(50, 40))
    imputer = CurveImputer(fitted_vae, prefit=True, random_state=0).fit(X)
    on_blocks = CurveImputer(fitted_vae, prefit=True, random_state=0).fit(dX)
    for name in ("blend_weights_", "neighbour_shares_", "neighbour_curves_"):
        np.testing.assert_array_equal(getattr(on_blocks, name), getattr(imputer, name))
    np.testing.assert_array_equal(
        on_blocks.matcher_.reference_codes_, imputer.matcher_.reference_codes_
    )
    filled = imputer.transform(dX)
    band = imputer.transform(dX, return_std=True)
    assert is_dask_array(filled) and all(map(is_dask_array, band))
    assert filled.chunks == ((50, 50, 20), (100,)) and filled.dtype == np.float64
    expected, expected_std = imputer.transform(X, return_std=True)
    np.testing.assert_array_equal(filled.compute(), expected)
    f, s = dask.compute(*band)
    np.testing.assert_array_equal(f, expected)
    np.testing.assert_array_equal(s, expected_std)
    with pytest.raises(ValueError, match="features"):
        imputer.transform(dX[:, :50])  # at once, not at compute time


def test_imputer_fits_its_vae_out_of_core(curves, monkeypatch):
    X = _gappy(curves[0][:150])
    reader = CountingReader(X)
    dX = da.from_array(reader, chunks=(50, 100), asarray=True, lock=False)
    monkeypatch.setattr(type(dX), "__array__", _refuse_materialising)
    vae = BetaCurveVAE(**{**TINY, "batch_size": 32})
    with dask.config.set(scheduler="sync"):
        imputer = CurveImputer(vae, n_neighbors=None, random_state=0).fit(dX)
        filled = imputer.transform(dX).compute()
    assert set(reader.reads) == {(50, 100)}  # block by block, never the whole array
    kept = np.delete(X, 4, axis=0)  # the row with no observed point is left out
    assert imputer.estimator_.n_iter_ == 2 and imputer.n_features_in_ == 100
    np.testing.assert_allclose(imputer.estimator_.mean_, np.nanmean(kept, axis=0), rtol=1e-10)
    observed = ~np.isnan(X)
    assert np.isfinite(filled).all() and np.array_equal(filled[observed], X[observed])
    with pytest.raises(ValueError, match="Every row of X is missing"):
        CurveImputer(vae).fit(da.full((6, 100), np.nan, chunks=3))


def test_imputer_pandas_output_of_a_dask_array_stays_lazy(client, fitted_vae, curves):
    dd = pytest.importorskip("dask.dataframe")
    X = _gappy(curves[1][:30])
    imputer = CurveImputer(fitted_vae, prefit=True, n_neighbors=None).fit(curves[0][:60])
    imputer.set_output(transform="pandas")
    frame, band = imputer.transform(da.from_array(X, chunks=(10, 100)), return_std=True)
    assert isinstance(frame, dd.DataFrame) and frame.npartitions == 3 and is_dask_array(band)
    expected, expected_std = imputer.transform(X, return_std=True)
    np.testing.assert_array_equal(frame.compute().to_numpy(), expected.to_numpy())
    np.testing.assert_array_equal(band.compute(), expected_std)
