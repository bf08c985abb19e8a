"""Dask arrays in inference (skvae._dask): detecting them, and ``map_rows`` on a real
LocalCluster of two process workers (the ``client`` fixture of conftest.py).

The numpy path imports no dask. Estimator-level behaviour (dask arrays through the
estimators' own methods) is tested in test_dask_estimators.py.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from _helpers import run_in_fresh_process  # noqa: E402

from skvae import LatentMatcher  # noqa: E402
from skvae._dask import check_dask_curves, is_dask_array, map_rows  # noqa: E402

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
matcher = LatentMatcher(vae, prefit=True, maxiter=5).fit(X)
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
    matcher = LatentMatcher(fitted_vae, prefit=True, maxiter=50).fit(curves[0])
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
