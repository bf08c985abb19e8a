"""Shared, session-scoped fixtures: small data sets and quickly fitted estimators."""

import matplotlib
import numpy as np
import pytest
import torch

from skvae import BetaCurveVAE, make_beta_curves

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
    """A BetaCurveVAE trained briefly (about a second); do not modify it in tests."""
    X_train = curves[0]
    return BetaCurveVAE(max_iter=40, batch_size=128, learning_rate_init=3e-3, random_state=0).fit(
        X_train
    )


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
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
