"""Model selection on a real LocalCluster of two process workers (the ``client`` fixture
of conftest.py): the workers' torch threads, and a grid search on joblib's dask backend.
"""

import numpy as np
import pytest
import torch

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from _helpers import TINY  # noqa: E402

from skvae import BetaCurveVAE  # noqa: E402


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
