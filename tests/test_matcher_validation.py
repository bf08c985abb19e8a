"""Bad and unusual inputs to LatentMatcher: each gets a correct result or a clear error.

Also: invalid hyper-parameters are rejected at ``fit``, and a failed ``fit`` leaves the
matcher (and its VAE) exactly as it was.
"""

import copy

import numpy as np
import pytest
from _helpers import TINY, assert_identical, fitted_state
from _inputs import BAD_X, BAD_Z, FIT_BAD, GOOD_X, with_value
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

import skvae
from skvae import BetaCurveVAE

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

LatentMatcher = getattr(skvae, "LatentMatcher", None)
needs_matcher = pytest.mark.skipif(LatentMatcher is None, reason="skvae.LatentMatcher missing")


@pytest.fixture(scope="module")
def matcher(fitted_vae, curves):
    return LatentMatcher(fitted_vae, prefit=True).fit(curves[0])


MATCHER_BAD_X = BAD_X + [
    (
        "wrong width",
        lambda X: X[:, :50],
        ValueError,
        "50 features, but LatentMatcher is expecting 100",
    ),
]


@needs_matcher
@pytest.mark.parametrize("method", ["transform", "match"])
@pytest.mark.parametrize(
    "make, error, match", [c[1:] for c in MATCHER_BAD_X], ids=[c[0] for c in MATCHER_BAD_X]
)
def test_matcher_bad_X(matcher, X_test, method, make, error, match):
    with pytest.raises(error, match=match):
        getattr(matcher, method)(make(X_test[:4]))


@needs_matcher
@pytest.mark.parametrize("make, reference", [c[1:] for c in GOOD_X], ids=[c[0] for c in GOOD_X])
def test_matcher_good_X_variants(matcher, X_test, make, reference):
    X_in = make(X_test[:4])
    Z = matcher.transform(X_in)
    assert Z.shape == (len(X_in), 2) and Z.dtype == np.float64 and np.isfinite(Z).all()
    if reference is not None:
        np.testing.assert_array_equal(Z, matcher.transform(reference(X_test[:4])))


@needs_matcher
def test_matcher_nan_means_missing_point(matcher, X_test):
    X = X_test[:4].copy()
    X[:, ::3] = np.nan
    X[1, :90] = np.nan  # only 10 points observed
    result = matcher.match(X)
    for name in ("codes", "reconstructions", "residuals", "objective"):
        assert np.isfinite(result[name]).all(), name
    assert result.reconstructions.shape == (4, 100)
    assert (result.residuals <= result.start_residuals).all()
    X[2] = np.nan  # no observed point at all: a warning, and still finite codes
    with pytest.warns(UserWarning, match="no observed point"):
        Z = matcher.transform(X)
    assert np.isfinite(Z).all()


@needs_matcher
@pytest.mark.parametrize("factor", [1e30, -1e25])
def test_matcher_huge_targets_finite_objective(matcher, X_test, factor):
    result = matcher.match(X_test[:3] * factor)
    assert np.isfinite(result.objective).all() and np.isfinite(result.residuals).all()


@needs_matcher
@pytest.mark.parametrize("start", ["zero", "encoder"])
def test_matcher_targets_beyond_float32_raise(fitted_vae, X_test, start):
    matcher = LatentMatcher(fitted_vae, prefit=True, start=start).fit(X_test)
    with pytest.raises(ValueError, match="too large in magnitude"):
        matcher.match(X_test[:3] * 1e40)


@needs_matcher
@pytest.mark.parametrize("Z, error, match", [c[1:] for c in BAD_Z], ids=[c[0] for c in BAD_Z])
def test_matcher_inverse_transform_bad_input(matcher, Z, error, match):
    with pytest.raises(error, match=match):
        matcher.inverse_transform(Z)


MATCHER_FIT_BAD = [
    pytest.param(*c[1:], id=c[0])
    for c in FIT_BAD
    if c[0] not in {"overflowing mean", "curve with no observed point"}
] + [
    pytest.param(lambda X: np.full(X.shape, np.nan), ValueError, "all NaN", id="every row empty"),
]


@needs_matcher
@pytest.mark.parametrize("make, error, match", MATCHER_FIT_BAD)
def test_matcher_fit_bad_input(curves, make, error, match):
    matcher = LatentMatcher(BetaCurveVAE(**TINY))
    with pytest.raises(error, match=match):
        matcher.fit(make(curves[0][:40]))
    assert fitted_state(matcher) == {}


@needs_matcher
def test_matcher_prefit_errors(fitted_vae, curves):
    with pytest.raises(ValueError, match="prefit=True needs a fitted estimator"):
        LatentMatcher(prefit=True).fit(curves[0])
    with pytest.raises(NotFittedError, match="prefit=True.*fitted BetaCurveVAE"):
        LatentMatcher(BetaCurveVAE(), prefit=True).fit(curves[0])
    with pytest.raises(ValueError, match="50 features.*prefit estimator"):
        LatentMatcher(fitted_vae, prefit=True).fit(curves[0][:, :50])


MATCHER_INVALID_PARAMS = {
    "estimator": ["vae", 3, BetaCurveVAE],
    "prefit": ["yes", 1],
    "start": ["random", None],
    "n_candidates": [-1, 2.5, None],
    "n_starts": [0, 1.5, None],
    "initial_step": [0, -1.0, "big", np.nan],
    "prior_weight": [-1.0, np.inf, "1"],
    "objective": ["map", None],
    "noise": [0.0, -1.0, np.inf, "high"],
    "polish": ["newton", True],
    "xatol": [-1e-4, np.nan, "tight"],
    "fatol": [-1e-4, np.nan, "tight"],
    "maxiter": [0, 2.5, "many"],
    "random_state": ["seed", -1],
}


@needs_matcher
def test_matcher_every_parameter_has_invalid_cases():
    assert set(MATCHER_INVALID_PARAMS) == set(LatentMatcher().get_params(deep=False))


@needs_matcher
@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in MATCHER_INVALID_PARAMS.items() for value in values],
)
def test_matcher_invalid_parameter_rejected_at_fit(fitted_vae, curves, name, value):
    params = {"estimator": fitted_vae, "prefit": True, name: value}
    with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of LatentMatcher"):
        LatentMatcher(**params).fit(curves[0][:20])


@pytest.fixture(scope="module")
def fitted_matcher(curves):
    vae = BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    return LatentMatcher(vae, random_state=0).fit(curves[0][:60])


@needs_matcher
@pytest.mark.parametrize(
    "params, make, error, match",
    [
        ({}, lambda X: with_value(X, (0, 0), np.inf), ValueError, "infinity"),
        ({}, lambda X: with_value(X, (slice(None), 0), np.nan), ValueError, "no observed value"),
        ({"n_starts": 0}, None, InvalidParameterError, "n_starts"),
        ({"estimator__learning_rate_init": 1e12}, None, ValueError, "diverged"),
        ({"estimator__max_iter": 0}, None, InvalidParameterError, "max_iter"),
        ({}, lambda X: np.full((3, 50), np.nan), ValueError, "all NaN"),
        ({"estimator__learning_rate_init": 1e12}, lambda X: X[:, :50], ValueError, "diverged"),
    ],
    ids=[
        "inf",
        "grid point never observed",
        "invalid parameter",
        "diverged",
        "invalid VAE parameter",
        "no observed point, other width",
        "diverged, other width",
    ],
)
def test_matcher_failed_fit_keeps_previous_state(
    fitted_matcher, curves, params, make, error, match
):
    matcher = copy.deepcopy(fitted_matcher).set_params(**params)
    before = fitted_state(matcher)
    X = curves[0][:60] if make is None else make(curves[0][:60])
    with pytest.raises(error, match=match):
        matcher.fit(X)
    assert_identical(fitted_state(matcher), before)
    assert_identical(fitted_state(matcher.estimator_), fitted_state(fitted_matcher.estimator_))
