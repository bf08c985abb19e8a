"""Model selection with real scikit-learn tools: unsupervised and supervised grid search,
cross-validation in parallel workers (and their torch threads), clone."""

import os

import joblib
import numpy as np
import pytest
import torch
from _helpers import SMALL_NET
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from skvae import BetaCurveVAE


@pytest.fixture(scope="module")
def data(curves):
    X_train, _, params, _ = curves
    return X_train[:300], params[:300]


class ThreadProbe(TransformerMixin, BaseEstimator):
    """Passes data through; records where it was fitted and torch's thread count there."""

    def fit(self, X, y=None):
        self.n_threads_ = torch.get_num_threads()
        self.pid_ = os.getpid()
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X


def test_grid_search_without_y_uses_score(data):
    X, _ = data
    search = GridSearchCV(BetaCurveVAE(max_iter=3, **SMALL_NET), {"latent_dims": [1, 2]}, cv=2).fit(
        X
    )
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert search.best_params_["latent_dims"] == [1, 2][int(np.argmax(scores))]
    assert search.best_estimator_.transform(X[:3]).shape == (3, search.best_params_["latent_dims"])
    # each split's score is the held-out fold's mean ELBO from a fit on the other fold
    train, test = next(KFold(2).split(X))
    manual = BetaCurveVAE(max_iter=3, **SMALL_NET, latent_dims=2).fit(X[train]).score(X[test])
    assert search.cv_results_["split0_test_score"][1] == manual
    assert search.score(X) == search.best_estimator_.score(X)


def test_cross_val_score(data):
    X, _ = data
    scores = cross_val_score(BetaCurveVAE(max_iter=3, **SMALL_NET), X, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    train, test = list(KFold(3).split(X))[2]
    assert scores[2] == BetaCurveVAE(max_iter=3, **SMALL_NET).fit(X[train]).score(X[test])


def test_supervised_pipeline_parallel_grid_search(data):
    X, params = data
    pipe = Pipeline(
        [
            ("vae", BetaCurveVAE(max_iter=3, **SMALL_NET)),
            ("probe", ThreadProbe()),
            ("reg", LinearRegression()),
        ]
    )
    grid = {"vae__latent_dims": [2, 3]}
    parallel = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X, params)
    serial = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, params)
    # worker processes train the same models as the main process
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_allclose(parallel.cv_results_[key], serial.cv_results_[key], rtol=1e-6)
    assert parallel.best_params_ == serial.best_params_
    assert parallel.predict(X[:5]).shape == (5, 2)
    assert parallel.cv_results_["mean_test_score"].max() > 0.3  # R² of (α, β) from the codes

    # joblib's loky workers start with OMP_NUM_THREADS = cpu_count // n_jobs (unless the
    # variable is set), which torch honours: two workers do not oversubscribe the cores.
    expected = int(os.environ.get("OMP_NUM_THREADS", max(joblib.cpu_count() // 2, 1)))
    result = cross_validate(pipe, X, params, cv=2, n_jobs=2, return_estimator=True)
    probes = [est.named_steps["probe"] for est in result["estimator"]]
    assert all(probe.pid_ != os.getpid() for probe in probes)  # fitted in workers
    assert [probe.n_threads_ for probe in probes] == [expected, expected]


def test_clone_of_fitted_estimator_is_unfitted(fitted_vae):
    cloned = clone(fitted_vae)
    assert cloned.get_params() == fitted_vae.get_params()
    with pytest.raises(NotFittedError):
        cloned.transform(np.zeros((1, fitted_vae.n_features_in_)))
    with pytest.raises(NotFittedError):
        check_is_fitted(cloned)
    learned = [k for k in vars(cloned) if k.endswith("_") or k in ("_state", "_generator_state")]
    assert learned == []
    check_is_fitted(fitted_vae)  # the original is untouched
    # a clone trains exactly like a new estimator with the same parameters
    X = np.asarray(fitted_vae.sample(50, random_state=0))
    refit = clone(fitted_vae).set_params(max_iter=2).fit(X)
    fresh = BetaCurveVAE(**{**fitted_vae.get_params(), "max_iter": 2}).fit(X)
    np.testing.assert_array_equal(refit.transform(X), fresh.transform(X))


def test_score_is_the_elbo_whatever_kl_weight(data):
    """kl_weight weights the KL in training only: the score of a fitted model does not
    depend on it, so a search over kl_weight compares ELBOs."""
    X = data[0]
    vae = BetaCurveVAE(kl_weight=0.25, max_iter=3, **SMALL_NET).fit(X)
    scores = vae.score_samples(X)
    vae.set_params(kl_weight=1.0)
    np.testing.assert_array_equal(vae.score_samples(X), scores)
    # the ELBO: the expected log-likelihood minus the whole KL
    vae.set_params(kl_weight=0.0)
    np.testing.assert_array_equal(vae.score_samples(X), scores)


def test_early_stopping_tracks_the_score(data):
    """The validation score of early stopping is the held-out reconstruction
    log-likelihood per point at each curve's own noise, whatever kl_weight."""
    X = data[0]
    vae = BetaCurveVAE(kl_weight=0.1, early_stopping=True, max_iter=20, **SMALL_NET).fit(X)
    assert vae._state.best_epoch > 0  # an epoch beat the PCA start: its weights are kept
    held_out = np.random.RandomState(0)  # the fit's first draw seeds the weights
    held_out.randint(np.iinfo(np.int32).max)
    held_out.randint(np.iinfo(np.int32).max)
    order = held_out.permutation(len(X))[: int(round(0.1 * len(X)))]
    X_val = X[order]
    codes = vae.latent_model().encode(X_val, return_std=False)  # the encoder's means
    mse = np.mean((vae.inverse_transform(codes) - X_val) ** 2, axis=1)
    expected = np.mean(-0.5 * (np.log(2 * np.pi * mse) + 1))
    assert vae.best_validation_score_ == pytest.approx(expected, rel=1e-4)
