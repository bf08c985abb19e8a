"""Shared fixtures: small data sets, quickly fitted estimators, a dask cluster."""

import logging
import os

import matplotlib
import numpy as np
import pytest
import torch
from _helpers import _tiny_vae

from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves

matplotlib.use("Agg")

#: Scripts, not tests: the 0.1.0 fixture writer runs only under skvae 0.1.0.
collect_ignore = ["data/make_v010_fixtures.py"]


@pytest.fixture(scope="session")
def curves():
    """600 training and 100 held-out Beta log-pdf curves (100 points) with their (α, β)."""
    X, params = make_beta_curves(700, random_state=0)
    return X[:600], X[600:], params[:600], params[600:]


@pytest.fixture(scope="session")
def fitted_vae(curves):
    """A BetaCurveVAE trained briefly (about a second) on all the training curves (no
    hold-out); do not modify it in tests."""
    X_train = curves[0]
    return BetaCurveVAE(
        max_iter=40, batch_size=128, learning_rate_init=3e-3, early_stopping=False, random_state=0
    ).fit(X_train)


@pytest.fixture(scope="module")
def X(curves):
    """200 training curves: enough for small fits to learn something."""
    return curves[0][:200]


@pytest.fixture(scope="module")
def X_test(curves):
    """20 curves the shared fits never saw."""
    return curves[1][:20]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session", autouse=True)
def torch_on_one_thread():
    """Run the whole suite on one torch thread, then restore the setting.

    The test networks are small: one thread is as fast on an idle machine, and many times
    faster on busy shared cores, where torch's spinning thread pool contends with other
    processes. Multi-process behaviour (joblib workers) is tested in subprocesses, which
    pick their own thread counts.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


# ------------------------------------------------- small models for test_plotting_*


@pytest.fixture(scope="module")
def small_curves():
    return make_beta_curves(120, n_points=20, random_state=1)[0]


@pytest.fixture(scope="module")
def vae_1d(small_curves):
    return _tiny_vae(small_curves, latent_dims=1)


@pytest.fixture(scope="module")
def vae_3d(small_curves):
    return _tiny_vae(small_curves, latent_dims=3)


@pytest.fixture(scope="module")
def matcher(fitted_vae, curves):
    return LatentMatcher(fitted_vae, prefit=True).fit(curves[0])


@pytest.fixture
def close_figures():
    """Close every pyplot figure after the test (the test_plotting_* modules' pytestmark)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# ------------------------------------------------------- a dask cluster for test_dask_*


def _restore_environ(saved):
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def dask_cluster():
    """A LocalCluster of 2 process workers with one thread each, for the test_dask_* modules.

    Started once, for the first of them (seconds, and each worker imports torch on its
    first task), and closed after the last one (by ``client``): left running, even idle,
    it slowed the tests after it by a quarter or more on two shared cores. Nannies write
    their workers' environment (``OMP_NUM_THREADS=1``, ``MALLOC_TRIM_THRESHOLD_``...) into
    this process's ``os.environ`` when they start a worker: it is restored at once and
    again afterwards, so that processes started by later tests do not inherit it.
    """
    distributed = pytest.importorskip("distributed")
    saved = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    _restore_environ(saved)
    yield cluster
    cluster.close()  # does nothing if closed already
    _restore_environ(saved)


@pytest.fixture(scope="module")
def client(request, dask_cluster):
    """A client of the session's cluster: the default scheduler until its module ends.

    The last module that uses the cluster closes it.
    """
    distributed = pytest.importorskip("distributed")
    client = distributed.Client(dask_cluster)
    yield client
    client.close()
    items = request.session.items
    last = max(i for i, item in enumerate(items) if getattr(item, "module", None) is request.module)
    if not any("dask_cluster" in getattr(item, "fixturenames", ()) for item in items[last + 1 :]):
        dask_cluster.close()
