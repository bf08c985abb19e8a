"""pandas interoperability: feature names, set_output, ColumnTransformer, as_frame data."""

import copy

import numpy as np
import pandas as pd
import pytest
import sklearn
from _helpers import TINY_NET
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.exceptions import NotFittedError

import skvae
from skvae import BetaCurveVAE, make_beta_curves


@pytest.fixture(scope="module")
def frame():
    """200 curves as a DataFrame with a non-default index, and their parameters."""
    X, params = make_beta_curves(200, random_state=1, as_frame=True)
    index = pd.Index([f"curve{i}" for i in range(len(X))][::-1], name="id")
    X.index = index
    params.index = index
    return X, params


@pytest.fixture(scope="module")
def frame_vae(frame):
    return BetaCurveVAE(max_iter=2, **TINY_NET).fit(frame[0])


def test_make_beta_curves_as_frame():
    X, params = make_beta_curves(50, n_points=7, random_state=3, as_frame=True)
    X_np, params_np = make_beta_curves(50, n_points=7, random_state=3)
    assert isinstance(X, pd.DataFrame) and isinstance(params, pd.DataFrame)
    assert list(X.columns) == [f"x={g:.4f}" for g in skvae.datasets.beta_grid(7)]
    assert list(params.columns) == ["alpha", "beta"]
    assert (X.dtypes == np.float64).all() and (params.dtypes == np.float64).all()
    np.testing.assert_array_equal(X.to_numpy(), X_np)
    np.testing.assert_array_equal(params.to_numpy(), params_np)
    assert X.index.equals(params.index)


def test_feature_names_in(frame, frame_vae):
    X, _ = frame
    np.testing.assert_array_equal(frame_vae.feature_names_in_, X.columns.to_numpy())
    assert frame_vae.feature_names_in_.dtype == object
    assert frame_vae.n_features_in_ == X.shape[1]


def test_feature_name_mismatch(frame, frame_vae):
    X, _ = frame
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        Z = frame_vae.transform(X.to_numpy())
    np.testing.assert_array_equal(Z, frame_vae.transform(X))
    with pytest.raises(ValueError, match="feature names should match"):
        frame_vae.transform(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="feature names should match"):
        frame_vae.score_samples(X.rename(columns={X.columns[0]: "other"}))
    with pytest.raises(ValueError, match="missing:\n- x=0.9900"):
        frame_vae.transform(X.iloc[:, :-1])

    vae = BetaCurveVAE(max_iter=2, **TINY_NET).fit(X.to_numpy())
    assert not hasattr(vae, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        vae.transform(X)


def test_partial_fit_and_warm_start_check_feature_names(frame):
    X, _ = frame
    vae = BetaCurveVAE(max_iter=2, **TINY_NET).partial_fit(X)
    with pytest.raises(ValueError, match="feature names should match"):
        vae.partial_fit(X[X.columns[::-1]])
    assert vae.n_iter_ == 1
    warm = BetaCurveVAE(max_iter=2, **TINY_NET, warm_start=True).fit(X)
    with pytest.raises(ValueError, match="feature names should match"):
        warm.fit(X[X.columns[::-1]])


def test_set_output_pandas_keeps_index(frame, frame_vae):
    X, _ = frame
    vae = copy.deepcopy(frame_vae).set_output(transform="pandas")
    Z = vae.transform(X)
    assert isinstance(Z, pd.DataFrame)
    assert Z.index.equals(X.index)
    names = vae.get_feature_names_out()
    np.testing.assert_array_equal(names, ["betacurvevae0", "betacurvevae1"])
    assert list(Z.columns) == list(names)
    np.testing.assert_array_equal(Z.to_numpy(), frame_vae.transform(X))
    # numpy output is unchanged on the original, and a row subset keeps its labels
    assert isinstance(frame_vae.transform(X), np.ndarray)
    subset = X.iloc[[5, 2, 9]]
    assert list(vae.transform(subset).index) == list(subset.index)

    Z_fit = BetaCurveVAE(max_iter=2, **TINY_NET).set_output(transform="pandas").fit_transform(X)
    assert isinstance(Z_fit, pd.DataFrame) and Z_fit.index.equals(X.index)
    np.testing.assert_array_equal(Z_fit.to_numpy(), frame_vae.transform(X))


def test_global_transform_output_config(frame, frame_vae):
    X, _ = frame
    with sklearn.config_context(transform_output="pandas"):
        Z = frame_vae.transform(X)
    assert isinstance(Z, pd.DataFrame) and Z.index.equals(X.index)
    np.testing.assert_array_equal(
        frame_vae.get_feature_names_out(), ["betacurvevae0", "betacurvevae1"]
    )


def test_feature_names_out_needs_a_fit():
    with pytest.raises(NotFittedError):
        BetaCurveVAE(latent_dims=3).get_feature_names_out()


def test_inside_column_transformer(frame):
    X, params = frame
    data = pd.concat([params, X], axis=1)  # parameters first, curves after
    curve_columns = list(X.columns)
    ct = ColumnTransformer(
        [("vae", BetaCurveVAE(max_iter=2, **TINY_NET), make_column_selector(pattern=r"^x="))],
        remainder="passthrough",
    ).set_output(transform="pandas")
    out = ct.fit_transform(data)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(data.index)
    assert list(out.columns) == [
        "vae__betacurvevae0",
        "vae__betacurvevae1",
        "remainder__alpha",
        "remainder__beta",
    ]
    fitted = ct.named_transformers_["vae"]
    assert list(fitted.feature_names_in_) == curve_columns
    reference = BetaCurveVAE(max_iter=2, **TINY_NET).fit(X)
    np.testing.assert_array_equal(out.iloc[:, :2].to_numpy(), reference.transform(X))
    np.testing.assert_array_equal(out[["remainder__alpha", "remainder__beta"]], params)
    # new data with the columns in another order is selected by name
    shuffled = data[curve_columns[::-1] + ["beta", "alpha"]]
    np.testing.assert_array_equal(ct.transform(shuffled).to_numpy(), out.to_numpy())


def test_column_transformer_by_name_list(frame):
    X, params = frame
    data = pd.concat([X, params], axis=1)
    ct = ColumnTransformer([("vae", BetaCurveVAE(max_iter=2, **TINY_NET), list(X.columns))])
    Z = ct.fit_transform(data)
    assert isinstance(Z, np.ndarray) and Z.shape == (len(X), 2)
    np.testing.assert_array_equal(
        ct.get_feature_names_out(), ["vae__betacurvevae0", "vae__betacurvevae1"]
    )


def test_latent_matcher_set_output(frame, frame_vae):
    LatentMatcher = getattr(skvae, "LatentMatcher", None)
    if LatentMatcher is None:
        pytest.skip("skvae.LatentMatcher is not available")
    X, _ = frame
    subset = X.iloc[:20]
    matcher = LatentMatcher(frame_vae, prefit=True).fit(X)
    Z = matcher.transform(subset)
    matcher.set_output(transform="pandas")
    Z_frame = matcher.transform(subset)
    assert isinstance(Z_frame, pd.DataFrame)
    assert Z_frame.index.equals(subset.index)
    assert list(Z_frame.columns) == list(matcher.get_feature_names_out())
    assert len(Z_frame.columns) == frame_vae.latent_dims
    np.testing.assert_array_equal(Z_frame.to_numpy(), Z)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        matcher.transform(subset.to_numpy())
