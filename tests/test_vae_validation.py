"""Bad and unusual inputs to BetaCurveVAE: each gets a correct result or a clear error.

Also: invalid hyper-parameters are rejected at ``fit`` with scikit-learn's
InvalidParameterError, and a failed ``fit`` leaves the estimator exactly as it was.
"""

import copy
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from _helpers import TINY, assert_identical, fitted_state
from _inputs import BAD_X, BAD_Z, FIT_BAD, GOOD_X, read_only, with_value
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skvae import BetaCurveVAE

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


# ------------------------------------------------------------- X-taking methods


@pytest.mark.parametrize("method", ["transform", "score_samples"])
@pytest.mark.parametrize("make, error, match", [c[1:] for c in BAD_X], ids=[c[0] for c in BAD_X])
def test_bad_X_raises_clear_error(fitted_vae, X_test, method, make, error, match):
    with pytest.raises(error, match=match):
        getattr(fitted_vae, method)(make(X_test))


@pytest.mark.parametrize("method", ["transform", "score_samples", "score"])
def test_wrong_width_raises(fitted_vae, X_test, method):
    with pytest.raises(ValueError, match="X has 50 features, but BetaCurveVAE is expecting 100"):
        getattr(fitted_vae, method)(X_test[:, :50])


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples", "sample"])
def test_unfitted_raises_not_fitted(X_test, method):
    argument = 3 if method == "sample" else X_test
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(BetaCurveVAE(), method)(argument)


@pytest.mark.parametrize("method", ["transform", "score_samples"])
@pytest.mark.parametrize("make, reference", [c[1:] for c in GOOD_X], ids=[c[0] for c in GOOD_X])
def test_good_X_variants(fitted_vae, X_test, method, make, reference):
    X_in = make(X_test)
    out = getattr(fitted_vae, method)(X_in)
    n = len(X_in)
    assert out.shape == ((n, 2) if method == "transform" else (n,))
    assert out.dtype == np.float64
    assert np.isfinite(out).all()
    if reference is not None:  # the same numbers in another container: the same result
        np.testing.assert_array_equal(out, getattr(fitted_vae, method)(reference(X_test)))


def test_input_is_not_modified(fitted_vae, X_test):
    X = X_test.copy()
    Z = fitted_vae.transform(X)
    fitted_vae.score_samples(X)
    fitted_vae.inverse_transform(Z)
    np.testing.assert_array_equal(X, X_test)


def test_read_only_memmap(fitted_vae, X_test, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, X_test)
    X_mm = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(fitted_vae.transform(X_mm), fitted_vae.transform(X_test))
    vae = BetaCurveVAE(**TINY).fit(X_mm)
    assert np.isfinite(vae.transform(X_mm)).all()


# ------------------------------------------------------------ inverse_transform


@pytest.mark.parametrize("Z, error, match", [c[1:] for c in BAD_Z], ids=[c[0] for c in BAD_Z])
def test_inverse_transform_bad_input(fitted_vae, Z, error, match):
    with pytest.raises(error, match=match):
        fitted_vae.inverse_transform(Z)


@pytest.mark.parametrize(
    "make",
    [
        lambda Z: Z.astype(np.float32).astype(float),
        lambda Z: np.asfortranarray(Z),
        lambda Z: read_only(Z),
        lambda Z: Z.tolist(),
        lambda Z: pd.DataFrame(Z, columns=["vae0", "vae1"]),
        lambda Z: Z.astype(object),
    ],
    ids=["float32-representable", "Fortran", "read-only", "list", "DataFrame", "object"],
)
def test_inverse_transform_containers(fitted_vae, make):
    Z = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32).astype(float)
    expected = fitted_vae.inverse_transform(Z)
    assert expected.shape == (7, 100) and expected.dtype == np.float64
    np.testing.assert_array_equal(fitted_vae.inverse_transform(make(Z)), expected)


@pytest.mark.parametrize("Z", [np.zeros((1, 2), dtype=np.int64), np.full((3, 2), 1e-30)])
def test_inverse_transform_int_and_tiny_codes(fitted_vae, Z):
    out = fitted_vae.inverse_transform(Z)
    assert out.shape == (len(Z), 100) and np.isfinite(out).all()


@pytest.mark.parametrize("value", [1e10, 1e30, -1e30, 1e38])
def test_inverse_transform_huge_codes_finite_or_clear_error(fitted_vae, value):
    try:
        out = fitted_vae.inverse_transform(np.full((3, 2), value))
    except ValueError as exc:
        assert "non-finite curves" in str(exc) and "too large" in str(exc)
    else:
        assert out.shape == (3, 100) and np.isfinite(out).all()


# ----------------------------------------------------------------------- sample


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, True, "3", None, np.float64(2.0), [2]])
def test_sample_bad_n_samples(fitted_vae, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        fitted_vae.sample(n_samples)


@pytest.mark.parametrize("random_state", ["seed", -1, 1.5, 2**40])
def test_sample_bad_random_state(fitted_vae, random_state):
    with pytest.raises(ValueError, match="(?i)seed"):
        fitted_vae.sample(2, random_state=random_state)


@pytest.mark.parametrize(
    "n_samples, random_state",
    [(1, 0), (np.int64(3), 1), (600, np.random.RandomState(0)), (5, None)],
)
def test_sample_good_arguments(fitted_vae, n_samples, random_state):
    out = fitted_vae.sample(n_samples, random_state=random_state)
    assert out.shape == (int(n_samples), 100) and out.dtype == np.float64
    assert np.isfinite(out).all()


# -------------------------------------------------------------------------- fit


@pytest.mark.parametrize(
    "make, error, match", [c[1:] for c in FIT_BAD], ids=[c[0] for c in FIT_BAD]
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_fit_bad_input_leaves_unfitted(curves, make, error, match, method):
    vae = BetaCurveVAE(**TINY)
    with pytest.raises(error, match=match):
        getattr(vae, method)(make(curves[0][:40]))
    assert fitted_state(vae) == {}  # nothing learned, nothing half-set
    with pytest.raises(NotFittedError):
        vae.transform(curves[1][:2])


@pytest.mark.parametrize("make, reference", [c[1:] for c in GOOD_X], ids=[c[0] for c in GOOD_X])
def test_fit_good_input_variants(curves, make, reference):
    X = curves[0][:40]
    vae = BetaCurveVAE(**TINY).fit(make(X))
    X_check = np.asarray(make(X), dtype=float)
    assert np.isfinite(vae.transform(X_check)).all()
    assert np.isfinite(vae.score_samples(X_check)).all()
    assert np.isfinite(vae.inverse_transform(vae.transform(X_check))).all()
    if reference is not None:  # same numbers, other container: the very same model
        other = BetaCurveVAE(**TINY).fit(reference(X))
        assert_identical(vae.module_, other.module_)
        np.testing.assert_array_equal(vae.mean_, other.mean_)


def test_fit_dataframe_records_feature_names(curves):
    columns = [f"x{i}" for i in range(100)]
    X = pd.DataFrame(curves[0][:40], columns=columns)
    vae = BetaCurveVAE(**TINY).fit(X)
    np.testing.assert_array_equal(vae.feature_names_in_, columns)
    with pytest.raises(ValueError, match="feature names should match"):
        vae.transform(X[columns[::-1]])


def test_fit_one_sample_and_early_stopping(curves):
    vae = BetaCurveVAE(**TINY).fit(curves[0][:1])
    assert np.isfinite(vae.transform(curves[1])).all()
    with pytest.raises(ValueError, match="at least one training and one validation curve"):
        BetaCurveVAE(**TINY, early_stopping=True).fit(curves[0][:1])


# ------------------------------------------------------------ invalid parameters

INVALID_PARAMS = {
    "latent_dims": [0, -1, 1.5, "2", None],
    "hidden_layer_sizes": [0, -3, 1.5, "abc", None],
    "activation": ["sigmoid", 1, None],
    "max_iter": [0, -1, 1.5, None],
    "batch_size": [0, -1, 1.5, "all"],
    "learning_rate_init": [0, -1e-3, np.inf, np.nan, "0.1"],
    "learning_rate": ["adaptive", None, 0.1],
    "decay_rate": [0, -0.5, 1.5, np.nan],
    "tol": [-1e-4, np.inf, np.nan, None],
    "n_iter_no_change": [0, 1.5, None],
    "early_stopping": ["yes", 1, None],
    "validation_fraction": [0, 1, 1.5, -0.1],
    "noise": [0, -1, "fixed", np.inf, np.nan],
    "kl_weight": [-1, np.inf, np.nan, "1"],
    "warm_start": ["no", 0, None],
    "residual": ["yes", 0, None],
    "gap_aware": ["yes", "always", 0, None],
    "refine_steps": [-1, 2.5, "3", None],
    "verbose": [-1, "loud", 0.5],
    "random_state": ["seed", -1, 1.5],
    "device": ["tpu", None, 0],
}


def test_every_parameter_has_invalid_cases():
    assert set(INVALID_PARAMS) == set(BetaCurveVAE().get_params())


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in INVALID_PARAMS.items() for value in values],
)
def test_invalid_parameter_rejected_at_fit(curves, named_vae, name, value):
    vae = BetaCurveVAE(**{**TINY, name: value})  # __init__ validates nothing
    assert vae.get_params()[name] is value
    match = rf"The '{name}' parameter of BetaCurveVAE must be .* Got .* instead"
    with pytest.raises(InvalidParameterError, match=match):
        vae.fit(curves[0][:20])
    with pytest.raises(InvalidParameterError, match=match):
        vae.partial_fit(curves[0][:20])
    # also when continuing a fitted estimator (sklearn's _fit_context skips that check)
    fitted = copy.deepcopy(named_vae).set_params(**{name: value})
    X_df = pd.DataFrame(curves[0][:20], columns=named_vae.feature_names_in_)
    for method in ("partial_fit", "fit"):
        with pytest.raises(InvalidParameterError, match=match):
            getattr(fitted, method)(X_df)


@pytest.mark.parametrize("sizes", [(), [], (0,), (4, 0), (2.5,), (True,)])
def test_bad_hidden_layer_sizes_contents(curves, sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a non-empty sequence"):
        BetaCurveVAE(**{**TINY, "hidden_layer_sizes": sizes}).fit(curves[0][:20])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_without_cuda(curves):
    with pytest.raises(ValueError, match="device='cuda'.*no CUDA device"):
        BetaCurveVAE(**TINY, device="cuda").fit(curves[0][:20])


def test_noise_not_representable_at_data_scale(curves):
    with pytest.raises(ValueError, match="noise=.* is not representable"):
        BetaCurveVAE(**TINY, noise=1e-300).fit(curves[0][:20] * 1e30)


@pytest.mark.parametrize("noise", [1e300, 1e-300, 1e25])
def test_noise_out_of_the_float32_range_is_refused(curves, noise):
    """A fixed noise whose log σ the float32 networks cannot hold (relative to the data's
    scale, about 2.4 here) is refused, instead of fitting with noise_ = inf or 0."""
    with pytest.raises(ValueError, match=rf"noise={re.escape(repr(noise))} is not representable"):
        BetaCurveVAE(**TINY, noise=noise).fit(curves[0][:20])
    vae = BetaCurveVAE(**TINY, noise=1e10).fit(curves[0][:20])  # inside the range
    assert vae.noise_ == pytest.approx(1e10, rel=1e-6)


# --------------------------------------- a failed fit leaves the estimator as it was


@pytest.fixture(scope="module")
def named_vae(curves):
    """A small model fitted on a DataFrame (so it has feature_names_in_)."""
    X = pd.DataFrame(curves[0][:60], columns=[f"x{i}" for i in range(100)])
    return BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X)


def _empty_row(X):
    return with_value(X, (0, slice(None)), np.nan)


FAILED_FITS = [
    ("empty row", {}, "fit", _empty_row, ValueError, "no observed point"),
    (
        "empty row, DataFrame",
        {},
        "fit",
        lambda X: pd.DataFrame(_empty_row(X)),
        ValueError,
        "no observed point",
    ),
    ("sparse", {}, "fit", sp.csr_matrix, TypeError, "Sparse"),
    ("1-D", {}, "fit", lambda X: X[0], ValueError, "Expected 2D"),
    ("words", {}, "fit", lambda X: np.full(X.shape, "a"), ValueError, "convert string"),
    ("invalid parameter", {"max_iter": 0}, "fit", None, InvalidParameterError, "max_iter"),
    ("bad hidden sizes", {"hidden_layer_sizes": (0,)}, "fit", None, ValueError, "hidden"),
    ("noise", {"noise": 1e-300}, "fit", lambda X: X * 1e30, ValueError, "not representable"),
    ("early stopping", {"early_stopping": True}, "fit", lambda X: X[:1], ValueError, "validation"),
    (
        "diverged, other width",
        {"learning_rate_init": 1e12},
        "fit",
        lambda X: X[:, :50],
        ValueError,
        "diverged.*learning_rate_init",
    ),
    (
        "diverged, warm start",
        {"learning_rate_init": 1e12, "warm_start": True},
        "fit",
        None,
        ValueError,
        "diverged.*learning_rate_init",
    ),
    ("warm start, other width", {"warm_start": True}, "fit", lambda X: X[:, :50], ValueError, "50"),
    ("partial_fit, other width", {}, "partial_fit", lambda X: X[:, :50], ValueError, "50"),
    ("partial_fit, empty row", {}, "partial_fit", _empty_row, ValueError, "no observed point"),
    ("infinity", {}, "fit", lambda X: with_value(X, (2, 3), np.inf), ValueError, "infinity"),
    (
        "partial_fit, invalid",
        {"batch_size": 0},
        "partial_fit",
        None,
        InvalidParameterError,
        "batch",
    ),
]


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize(
    "params, method, make, error, match",
    [c[1:] for c in FAILED_FITS],
    ids=[c[0] for c in FAILED_FITS],
)
def test_failed_fit_keeps_previous_state(named_vae, curves, params, method, make, error, match):
    vae = copy.deepcopy(named_vae).set_params(**params)
    before = fitted_state(vae)
    X = curves[0][:60]
    X = pd.DataFrame(X, columns=named_vae.feature_names_in_) if make is None else make(X)
    with pytest.raises(error, match=match):
        getattr(vae, method)(X)
    assert_identical(fitted_state(vae), before)
    X_df = pd.DataFrame(curves[1][:5], columns=named_vae.feature_names_in_)
    np.testing.assert_array_equal(vae.transform(X_df), named_vae.transform(X_df))


def test_diverged_partial_fit_keeps_previous_state(named_vae, curves):
    vae = copy.deepcopy(named_vae).set_params(learning_rate_init=1e12)
    X = pd.DataFrame(curves[0][:60], columns=named_vae.feature_names_in_)
    for _ in range(5):  # absurd steps are taken until an epoch's loss is not finite
        before = fitted_state(vae)
        try:
            vae.partial_fit(X)
        except ValueError as exc:
            assert re.search(r"diverged at epoch \d+.*Lower learning_rate_init", str(exc))
            break
    else:
        pytest.fail("partial_fit at learning_rate_init=1e12 did not diverge")
    assert_identical(fitted_state(vae), before)
