"""The pickle-free skvae format (``skvae.save``, ``skvae.load``): bit-identical round
trips that keep training identically, the trust model (no pickle runs, crafted files are
refused), version and corruption errors, and the matcher."""

import copy
import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import TINY_NET, assert_same_outputs, rewrite, saved_bytes
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimators_pickle
from sklearn.utils.validation import check_is_fitted

import skvae
from skvae import BetaCurveVAE


def test_round_trip_is_bit_identical(fitted_vae, curves, tmp_path):
    path = tmp_path / "model.skvae"
    skvae.save(fitted_vae, path)
    for source in (path, str(path), io.BytesIO(path.read_bytes())):
        loaded = skvae.load(source)
        assert type(loaded) is BetaCurveVAE
        assert loaded.get_params() == fitted_vae.get_params()
        assert_same_outputs(fitted_vae, loaded, curves[1])
    for name in ("n_iter_", "loss_curve_", "kl_curve_", "noise_", "scale_", "n_features_in_"):
        assert getattr(loaded, name) == getattr(fitted_vae, name)
    np.testing.assert_array_equal(loaded.mean_, fitted_vae.mean_)
    assert all(t.device.type == "cpu" for t in loaded.module_.state_dict().values())


def test_loaded_estimator_continues_training_identically(curves):
    X = curves[0][:200]
    original = BetaCurveVAE(max_iter=2, **TINY_NET).fit(X)
    loaded = skvae.load(io.BytesIO(saved_bytes(original)))
    reference = copy.deepcopy(original)
    reference.partial_fit(X)
    loaded.partial_fit(X)  # optimizer moments and generator state were saved too
    assert loaded.n_iter_ == reference.n_iter_ == 3
    assert loaded.loss_curve_ == reference.loss_curve_
    assert_same_outputs(reference, loaded, X)


def test_loading_runs_no_pickle(fitted_vae, curves, monkeypatch):
    data = saved_bytes(fitted_vae)

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    for module, name in [
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (torch, "load"),
        (np, "load"),
    ]:
        monkeypatch.setattr(module, name, forbidden)
    loaded = skvae.load(io.BytesIO(data))
    np.testing.assert_array_equal(loaded.transform(curves[1]), fitted_vae.transform(curves[1]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        arrays = [n for n in archive.namelist() if n != "skvae.json"]
        assert arrays and all(n.startswith("arrays/") and n.endswith(".npy") for n in arrays)


def test_unfitted_and_parameter_types_round_trip():
    vae = BetaCurveVAE(
        latent_dims=np.int64(3),
        hidden_layer_sizes=[8, 4],
        noise=0.25,
        random_state=np.random.RandomState(5),
    )
    loaded = skvae.load(io.BytesIO(saved_bytes(vae)))
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    params = {k: v for k, v in vae.get_params().items() if k != "random_state"}
    assert {k: v for k, v in loaded.get_params().items() if k != "random_state"} == params
    assert type(loaded.latent_dims) is np.int64 and loaded.hidden_layer_sizes == [8, 4]
    assert type(BetaCurveVAE().hidden_layer_sizes) is tuple
    assert type(skvae.load(io.BytesIO(saved_bytes(BetaCurveVAE()))).hidden_layer_sizes) is tuple
    np.testing.assert_array_equal(
        loaded.random_state.get_state()[1], vae.random_state.get_state()[1]
    )
    assert loaded.random_state.randint(1000) == vae.random_state.randint(1000)


def test_dataframe_fit_fixed_noise_early_stopping_and_set_output_round_trip():
    X, _ = skvae.make_beta_curves(150, random_state=2, as_frame=True)
    vae = BetaCurveVAE(**{**TINY_NET, "max_iter": 3}, noise=0.1, early_stopping=True)
    vae.fit(X).set_output(transform="pandas")
    loaded = skvae.load(io.BytesIO(saved_bytes(vae)))
    np.testing.assert_array_equal(loaded.feature_names_in_, vae.feature_names_in_)
    assert loaded.feature_names_in_.dtype == object
    assert loaded.validation_scores_ == vae.validation_scores_
    assert loaded.best_validation_score_ == vae.best_validation_score_
    Z = loaded.transform(X)
    assert isinstance(Z, pd.DataFrame)
    pd.testing.assert_frame_equal(Z, vae.transform(X))
    assert loaded.noise_ == vae.noise_
    assert not isinstance(loaded.module_.log_sigma, torch.nn.Parameter)


def test_unsupported_estimators_and_values_raise_type_error(tmp_path):
    class MyVAE(BetaCurveVAE):
        pass

    with pytest.raises(TypeError, match="BetaCurveVAE"):
        skvae.save(MyVAE(), tmp_path / "a.skvae")
    with pytest.raises(TypeError, match="random_state"):
        skvae.save(BetaCurveVAE(random_state=np.random.default_rng(0)), tmp_path / "b.skvae")
    with pytest.raises(TypeError, match="LinearRegression"):
        from sklearn.linear_model import LinearRegression

        skvae.save(LinearRegression(), tmp_path / "c.skvae")


def test_incompatible_format_version(fitted_vae, tmp_path):
    data = rewrite(saved_bytes(fitted_vae), lambda m: m.update(format_version=3))
    path = tmp_path / "future.skvae"
    path.write_bytes(data)
    message = r"format version 3 \(written by skvae 0\.\d.*reads format versions 1 and 2 only"
    with pytest.raises(ValueError, match=message):
        skvae.load(path)
    for versions in ("x", None, [], {"skvae": 5}):  # any JSON, not only a dict
        data = rewrite(
            saved_bytes(fitted_vae), lambda m, v=versions: m.update(format_version=0, versions=v)
        )
        with pytest.raises(ValueError, match=r"version 0 \(written by skvae an unknown version\)"):
            skvae.load(data)
    data = rewrite(saved_bytes(fitted_vae), lambda m: m.update(format="other"))
    with pytest.raises(ValueError, match="not an skvae file"):
        skvae.load(io.BytesIO(data))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file(fitted_vae, fraction, tmp_path):
    data = saved_bytes(fitted_vae)
    path = tmp_path / "truncated.skvae"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=r"truncated\.skvae.*(truncated|corrupted)"):
        skvae.load(path)


def test_corrupted_file(fitted_vae):
    data = saved_bytes(fitted_vae)
    weights = data.index(b"\x93NUMPY") + 200  # inside the first array's values
    metadata = data.index(b"skvae.json") + 40  # inside the compressed JSON
    for position in (weights, metadata):
        corrupted = bytearray(data)
        corrupted[position] ^= 0xFF
        with pytest.raises(ValueError, match="corrupted"):
            skvae.load(io.BytesIO(bytes(corrupted)))
    with pytest.raises(ValueError, match="not an skvae file"):
        skvae.load(io.BytesIO(b"not a zip archive at all" * 10))
    with pytest.raises(ValueError, match="not an skvae file"):
        skvae.load(io.BytesIO(pickle.dumps(fitted_vae)))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["root"].update({"class": "os.system"}), "unknown estimator class"),
        (lambda m: m["root"]["attributes"].update(transform=1), "would shadow"),
        (lambda m: m["root"]["attributes"].update(__class__=1), "invalid attribute name"),
        (lambda m: m["root"].update(type="function"), "holds no estimator"),
        (lambda m: m["root"]["params"].update(x={"type": "pickle", "data": ""}), "unknown node"),
        (lambda m: m["arrays"].append("arrays/999.npy"), "do not match"),
    ],
)
def test_crafted_files_are_refused(fitted_vae, edit, message):
    data = rewrite(saved_bytes(fitted_vae), edit)
    with pytest.raises(ValueError, match=message):
        skvae.load(io.BytesIO(data))


def test_crafted_network_shape_is_refused(fitted_vae):
    def widen(metadata):
        module = metadata["root"]["attributes"]["module_"]
        module["config"]["hidden"] = [10**9]

    with pytest.raises(ValueError, match="weights do not match its configuration"):
        skvae.load(io.BytesIO(rewrite(saved_bytes(fitted_vae), widen)))


def test_latent_matcher_round_trip(fitted_vae, curves):
    LatentMatcher = getattr(skvae, "LatentMatcher", None)
    if LatentMatcher is None:
        pytest.skip("skvae.LatentMatcher is not available")
    X = curves[1][:20]
    prefit = LatentMatcher(fitted_vae, prefit=True).fit(X)
    own = LatentMatcher(BetaCurveVAE(max_iter=2, **TINY_NET)).fit(curves[0][:200])
    for matcher in (prefit, own):
        loaded = skvae.load(io.BytesIO(saved_bytes(matcher)))
        assert type(loaded) is LatentMatcher
        assert repr(loaded) == repr(matcher)
        np.testing.assert_array_equal(loaded.transform(X), matcher.transform(X))
        Z = matcher.transform(X)
        np.testing.assert_array_equal(loaded.inverse_transform(Z), matcher.inverse_transform(Z))
        assert (loaded.estimator_ is loaded.estimator) == (matcher.estimator_ is matcher.estimator)
        # pickle too
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(matcher)).transform(X), Z)
    check_estimators_pickle(
        "LatentMatcher", LatentMatcher(BetaCurveVAE(max_iter=2, **TINY_NET)), readonly_memmap=True
    )


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_file_naming_an_absent_gpu_loads_and_says_how_to_use_it(fitted_vae, curves):
    """The stored state is device-free: a model saved with ``device="cuda:7"`` loads on a
    machine without that GPU, and using it raises the ValueError that ``device="cuda"``
    raises without CUDA, naming the device and ``set_params(device="cpu")``."""
    X = curves[1][:20]
    vae = copy.deepcopy(fitted_vae)
    matcher = skvae.LatentMatcher(vae, prefit=True).fit(X)
    expected = [vae.transform(X), matcher.transform(X)]
    vae.set_params(device="cuda:7")
    for estimator, Z in zip((vae, matcher), expected):
        loaded = skvae.load(saved_bytes(estimator))
        loaded_vae = getattr(loaded, "estimator_", loaded)
        assert loaded_vae.device == "cuda:7"
        assert all(t.device.type == "cpu" for t in loaded_vae.module_.state_dict().values())
        with pytest.raises(ValueError, match=r"device='cuda:7'.*set_params\(device='cpu'\)"):
            loaded.transform(X)
        loaded_vae.set_params(device="cpu")
        np.testing.assert_array_equal(loaded.transform(X), Z)
