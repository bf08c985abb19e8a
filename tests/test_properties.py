"""Property-based tests (hypothesis): arbitrary inputs give a correct result or a clear
ValueError/TypeError, never another exception; every row's result ignores its batch."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import skvae
from skvae import BetaCurveVAE

LatentMatcher = getattr(skvae, "LatentMatcher", None)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = st.sampled_from(
    [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex128]
)


def _any_floats(width):
    return st.floats(width=width, allow_nan=True, allow_infinity=True)


@st.composite
def arrays(draw, n_features=None, max_rows=6):
    """Arrays of 0 to 3 dimensions, numeric dtypes, any values (NaN, inf, huge)."""
    dtype = np.dtype(draw(DTYPES))
    ndim = draw(st.sampled_from([0, 1, 2, 2, 2, 2, 3]))
    width = n_features if n_features is not None and draw(st.booleans()) else None
    shape = []
    for axis in range(ndim):
        if axis == 1 and width is not None:
            shape.append(width)
        else:
            shape.append(draw(st.integers(0, max_rows)))
    if dtype.kind == "f":
        elements = _any_floats(8 * dtype.itemsize)
    elif dtype.kind == "c":
        elements = st.complex_numbers(allow_nan=True, allow_infinity=True)
    else:
        elements = None
    return draw(hnp.arrays(dtype, tuple(shape), elements=elements))


@st.composite
def containers(draw, n_features=None):
    """An array, possibly as a nested list, as object dtype, or Fortran-ordered."""
    A = draw(arrays(n_features))
    kind = draw(st.sampled_from(["array", "list", "object", "fortran"]))
    if kind == "list":
        return A.tolist()
    if kind == "object":
        return A.astype(object)
    if kind == "fortran":
        return np.asfortranarray(A)
    return A


def _numeric_2d(A, n_features):
    """``A`` as a float64 array if it is 2-D, nonempty, numeric and ``n_features`` wide."""
    try:
        A = np.asarray(A)
        if A.dtype == object:
            A = A.astype(np.float64)
    except (ValueError, TypeError):
        return None
    if A.ndim == 2 and A.shape[0] >= 1 and A.shape[1] == n_features and A.dtype.kind in "biuf":
        return A.astype(np.float64)
    return None


def _is_good(A, n_features):
    """Whether a valid estimator must accept ``A`` (finite, 2-D, nonempty, right width)."""
    A = _numeric_2d(A, n_features)
    return A is not None and bool(np.isfinite(A).all())


def _call(function, A):
    """Call; return the result, or None after a ValueError/TypeError. Anything else fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return function(A)
        except (ValueError, TypeError) as exc:
            assert str(exc), "errors must say what is wrong"
            return None


@SETTINGS
@given(A=containers(n_features=100))
@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_methods_on_arbitrary_input(fitted_vae, method, A):
    result = _call(getattr(fitted_vae, method), A)
    event("rejected" if result is None else "accepted")
    if result is None:
        # the only finite, well-shaped inputs that may fail are those too large for float32
        if _is_good(A, 100):
            assert np.abs(np.asarray(A, dtype=float)).max() > 1e30
        return
    assert _is_good(A, 100)
    n = np.asarray(A).shape[0]
    assert result.shape == ((n, 2) if method == "transform" else (n,))
    assert result.dtype == np.float64 and np.isfinite(result).all()


@SETTINGS
@given(A=containers(n_features=2))
def test_inverse_transform_on_arbitrary_input(fitted_vae, A):
    result = _call(fitted_vae.inverse_transform, A)
    event("rejected" if result is None else "accepted")
    if result is None:
        if _is_good(A, 2):
            assert np.abs(np.asarray(A, dtype=float)).max() > 1e30
        return
    assert _is_good(A, 2)
    assert result.shape == (np.asarray(A).shape[0], 100)
    assert result.dtype == np.float64 and np.isfinite(result).all()


@SETTINGS
@given(
    n_samples=st.one_of(
        st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=2), st.none()
    ),
    random_state=st.one_of(st.integers(-2, 2**33), st.none()),
)
def test_sample_on_arbitrary_arguments(fitted_vae, n_samples, random_state):
    result = _call(lambda n: fitted_vae.sample(n, random_state=random_state), n_samples)
    valid_n = isinstance(n_samples, int) and not isinstance(n_samples, bool) and n_samples >= 1
    valid_seed = random_state is None or 0 <= random_state < 2**32
    if result is None:
        assert not (valid_n and valid_seed)
        return
    assert valid_n and valid_seed
    assert result.shape == (n_samples, 100) and np.isfinite(result).all()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    A=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 5)),
        elements=st.floats(-1e30, 1e30, allow_nan=False),
    ),
    params=st.fixed_dictionaries(
        {
            "latent_dims": st.integers(1, 3),
            "noise": st.sampled_from(["learned", 0.1, 10.0]),
            "batch_size": st.integers(1, 16),
        }
    ),
)
def test_fit_on_arbitrary_finite_data(A, params):
    """Finite data trains to a model with finite outputs, or fails with a clear ValueError."""
    vae = BetaCurveVAE(hidden_layer_sizes=(4,), max_iter=2, random_state=0, **params)
    try:
        vae.fit(A)
    except ValueError as exc:  # only a fixed noise far below the data's scale may fail
        event("rejected")
        assert params["noise"] != "learned"
        diverged = "diverged" in str(exc) and "increase noise" in str(exc)
        assert diverged or "is not representable" in str(exc)
        assert not hasattr(vae, "module_")
        return
    event("accepted")
    Z = vae.transform(A)
    assert Z.shape == (len(A), params["latent_dims"]) and np.isfinite(Z).all()
    assert np.isfinite(vae.inverse_transform(Z)).all()
    assert np.isfinite(vae.score_samples(A)).all()
    assert np.isfinite(vae.sample(2, random_state=0)).all()


@st.composite
def batches(draw, n_rows):
    """A selection of row indices (with repeats) in some order."""
    return draw(st.lists(st.integers(0, n_rows - 1), min_size=1, max_size=40))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(index=batches(n_rows=100), split=st.integers(1, 39))
@pytest.mark.parametrize("method", ["transform", "score_samples", "inverse_transform"])
def test_row_independence(fitted_vae, curves, method, index, split):
    X = curves[1]
    if method == "inverse_transform":
        X = fitted_vae.transform(X)
    function = getattr(fitted_vae, method)
    reference = function(X)
    index = np.asarray(index)
    assume(split < len(index) or len(index) == 1)
    assert np.array_equal(function(X[index]), reference[index])
    parts = [function(X[index[:split]]), function(X[index[split:]])] if split < len(index) else []
    if parts:
        assert np.array_equal(np.concatenate(parts), reference[index])


@st.composite
def targets(draw):
    """Curves with some points missing (NaN), others finite (possibly huge) or infinite."""
    A = draw(containers(n_features=100))
    if isinstance(A, np.ndarray) and A.dtype.kind == "f" and A.ndim == 2 and A.size:
        A = A.copy()
        A[draw(st.integers(0, len(A) - 1))] = np.linspace(-3, 1, A.shape[1])
    return A


def _is_good_target(A):
    """Like :func:`_is_good` for the matcher, where NaN (a missing point) is allowed."""
    A = _numeric_2d(A, 100)
    return A is not None and not np.isinf(A).any()


@pytest.fixture(scope="module")
def matcher(fitted_vae, curves):
    if LatentMatcher is None:
        pytest.skip("skvae.LatentMatcher missing")
    return LatentMatcher(fitted_vae, prefit=True, maxiter=20).fit(curves[0])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(A=targets())
def test_matcher_on_arbitrary_input(matcher, A):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # all-NaN targets warn
        result = _call(matcher.transform, A)
    event("rejected" if result is None else "accepted")
    if result is None:
        if _is_good_target(A):  # only targets too large for the float32 encoder may fail
            assert np.nanmax(np.abs(np.asarray(A, dtype=float))) > 1e30
        return
    assert _is_good_target(A)
    assert result.shape == (np.asarray(A).shape[0], 2) and np.isfinite(result).all()
