"""Persistence: pickle/joblib in a fresh process, CPU-only loading, and the pickle-free
skvae format (round trip, trust model, version and corruption errors)."""

import copy
import dataclasses
import io
import json
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import run_in_fresh_process
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimators_pickle
from sklearn.utils.validation import check_is_fitted

import skvae
from skvae import BetaCurveVAE
from skvae._networks import VAEModule

SMALL = dict(max_iter=2, hidden_layer_sizes=(16,), batch_size=64, random_state=0)


def outputs(estimator, X):
    """Everything a fitted BetaCurveVAE computes, for bit-for-bit comparisons."""
    Z = estimator.transform(X)
    return {
        "transform": Z,
        "inverse_transform": estimator.inverse_transform(Z),
        "score_samples": estimator.score_samples(X),
        "sample": estimator.sample(7, random_state=0),
    }


def assert_same_outputs(a, b, X):
    expected, actual = outputs(a, X), outputs(b, X)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert a.score(X) == b.score(X)


def saved_bytes(estimator) -> bytes:
    buffer = io.BytesIO()
    skvae.save(estimator, buffer)
    return buffer.getvalue()


def rewrite(data: bytes, edit) -> bytes:
    """Rewrite an skvae archive with ``edit(metadata)`` applied to its JSON."""
    source = zipfile.ZipFile(io.BytesIO(data))
    metadata = json.loads(source.read("skvae.json"))
    edit(metadata)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("skvae.json", json.dumps(metadata), zipfile.ZIP_DEFLATED)
        for name in source.namelist():
            if name != "skvae.json":
                target.writestr(name, source.read(name))
    return out.getvalue()


# --------------------------------------------------------------------- pickle and joblib


def test_pickle_joblib_and_skvae_format_in_a_fresh_cpu_only_process(fitted_vae, curves, tmp_path):
    X = curves[1]
    np.savez(tmp_path / "expected.npz", X=X, **outputs(fitted_vae, X))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(fitted_vae))
    joblib.dump(fitted_vae, tmp_path / "model.joblib")
    skvae.save(fitted_vae, tmp_path / "model.skvae")
    script = """
import pickle, sys
from pathlib import Path
import joblib, numpy as np, torch
import skvae
folder = Path(sys.argv[1])
assert not torch.cuda.is_available()
expected = np.load(folder / "expected.npz")
X = expected["X"]
models = [
    pickle.loads((folder / "model.pkl").read_bytes()),
    joblib.load(folder / "model.joblib"),
    skvae.load(folder / "model.skvae"),
]
for model in models:
    Z = model.transform(X)
    got = {"transform": Z, "inverse_transform": model.inverse_transform(Z),
           "score_samples": model.score_samples(X), "sample": model.sample(7, random_state=0)}
    for name, value in got.items():
        assert np.array_equal(value, expected[name]), (type(model), name)
print("ok")
"""
    output = run_in_fresh_process(script, tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert output.strip() == "ok"


def test_fitted_state_lives_on_the_cpu(fitted_vae):
    """What makes a model trained on a GPU load on a CPU-only machine (see test_device)."""
    assert all(t.device.type == "cpu" for t in fitted_vae.module_.state_dict().values())
    for state in fitted_vae._state.optimizer_state["state"].values():
        assert all(v.device.type == "cpu" for v in state.values() if torch.is_tensor(v))
    assert fitted_vae._generator_state.device.type == "cpu"
    assert b"cuda" not in pickle.dumps(fitted_vae)


def test_joblib_readonly_memmap(fitted_vae, curves, tmp_path):
    joblib.dump(fitted_vae, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    assert not loaded.mean_.flags.writeable
    assert_same_outputs(fitted_vae, loaded, curves[1])
    loaded.set_params(warm_start=True, max_iter=1).fit(curves[1])  # keeps training
    assert loaded.n_iter_ == fitted_vae.n_iter_ + 1


def test_check_estimators_pickle_readonly_memmap():
    check_estimators_pickle("BetaCurveVAE", BetaCurveVAE(**SMALL), readonly_memmap=True)


# ------------------------------------------------------------------- the skvae format


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
    original = BetaCurveVAE(**SMALL).fit(X)
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
    vae = BetaCurveVAE(**{**SMALL, "max_iter": 3}, noise=0.1, early_stopping=True)
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
    for versions in ("x", None, [], {"skvae": 5}):  # 0.1.0 raised AttributeError for "x"
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
    own = LatentMatcher(BetaCurveVAE(**SMALL)).fit(curves[0][:200])
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
        "LatentMatcher", LatentMatcher(BetaCurveVAE(**SMALL)), readonly_memmap=True
    )


# ------------------------------------------------- networks, training state, old files

DATA = Path(__file__).parent / "data"


def test_network_is_saved_as_its_config_and_rebuilt_from_it(curves):
    """The file holds ``module.config`` (any keys, e.g. ``residual``), not layer shapes."""
    X = curves[0][:100]
    vae = BetaCurveVAE(**SMALL).fit(X)
    config = {**vae.module_.config, "hidden": [16, 16], "residual": True}
    vae.module_ = VAEModule(**config)
    vae.module_.reset_parameters(torch.Generator().manual_seed(0))
    vae._state = dataclasses.replace(vae._state, optimizer_state=None)
    data = saved_bytes(vae)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        node = json.loads(archive.read("skvae.json"))["root"]["attributes"]["module_"]
    assert node["config"] == config and "architecture" not in node
    loaded = skvae.load(data)
    assert loaded.module_.config == config
    assert_same_outputs(vae, loaded, curves[1])


def test_training_state_saves_the_optimizer_state_dict(fitted_vae):
    loaded = skvae.load(saved_bytes(fitted_vae))
    assert type(loaded._state) is type(fitted_vae._state)
    for field in dataclasses.fields(fitted_vae._state):
        if field.name != "optimizer_state":
            assert getattr(loaded._state, field.name) == getattr(fitted_vae._state, field.name)
    expected, actual = fitted_vae._state.optimizer_state, loaded._state.optimizer_state
    assert actual["param_groups"] == expected["param_groups"]
    assert expected["state"].keys() == actual["state"].keys()
    for index, entry in expected["state"].items():
        for name, value in entry.items():
            assert torch.equal(actual["state"][index][name], value), (index, name)


def test_loss_curves_are_stored_as_arrays(fitted_vae):
    """Metadata stay small however many epochs ran (they are capped when loading)."""
    with zipfile.ZipFile(io.BytesIO(saved_bytes(fitted_vae))) as archive:
        metadata = json.loads(archive.read("skvae.json"))
    assert metadata["root"]["attributes"]["loss_curve_"]["type"] == "list"
    assert len(json.dumps(metadata)) < 20_000


def test_loading_bytes_and_refusing_what_load_would_refuse(fitted_vae, monkeypatch):
    data = saved_bytes(fitted_vae)
    assert skvae.load(data).get_params() == fitted_vae.get_params()
    assert skvae.load(bytearray(data)).n_iter_ == fitted_vae.n_iter_
    monkeypatch.setattr(skvae._persistence, "MAX_ARRAY_BYTES", len(data) // 2)
    with pytest.raises(ValueError, match="too large for the skvae format: .* bytes of arrays"):
        skvae.save(fitted_vae, io.BytesIO())
    with pytest.raises(ValueError, match=r"arrays declare [\d,]+ bytes in all, more than"):
        skvae.load(data)


def test_files_written_by_skvae_0_1_0_load_identically():
    """tests/data/v010_*.skvae were written by skvae 0.1.0 (commit f855892, format 1)."""
    expected = np.load(DATA / "v010_expected.npz")
    X = expected["X"]
    vae = skvae.load(DATA / "v010_vae.skvae")
    Z = vae.transform(X)
    np.testing.assert_array_equal(Z, expected["vae_transform"])
    np.testing.assert_array_equal(vae.inverse_transform(Z), expected["vae_inverse_transform"])
    np.testing.assert_array_equal(vae.score_samples(X), expected["vae_score_samples"])
    assert vae.kl_curve_[0] > 0.1  # 0.1.0 recorded it per grid point, now per curve (12)
    # the optimizer moments and the generator state carry over, so training continues
    moments = vae._state.optimizer_state["state"]
    np.testing.assert_array_equal(moments[0]["exp_avg"].numpy(), expected["vae_exp_avg_0"])
    np.testing.assert_array_equal(moments[10]["exp_avg_sq"].numpy(), expected["vae_exp_avg_sq_10"])
    np.testing.assert_array_equal(vae._generator_state.numpy(), expected["vae_generator_state"])
    X_train, _ = skvae.make_beta_curves(120, n_points=12, random_state=0)
    vae.partial_fit(X_train)
    assert vae.n_iter_ == 4  # (0.2's loop draws its noise differently: not 0.1.0's 4th loss)
    assert vae.loss_curve_[:3] == list(expected["vae_partial_fit_loss"][:3])
    assert abs(vae.loss_curve_[3] - expected["vae_partial_fit_loss"][3]) < 0.05

    fixed = skvae.load(DATA / "v010_fixed_noise.skvae")
    assert fixed.noise == 0.1 and fixed.early_stopping and not fixed.module_.config["residual"]
    assert fixed.feature_names_in_.dtype == object and len(fixed.feature_names_in_) == 12
    X_fixed = pd.DataFrame(expected["fixed_X"], columns=fixed.feature_names_in_)
    np.testing.assert_array_equal(fixed.transform(X_fixed), expected["fixed_transform"])

    matcher = skvae.load(DATA / "v010_matcher.skvae")
    assert matcher.estimator_ is matcher.estimator and matcher.n_starts == 2
    assert not hasattr(matcher, "n_iter_")  # 0.1.0's copy of the VAE's epochs, dropped
    np.testing.assert_array_equal(matcher.estimator_.transform(X), expected["vae_transform"])
    unfitted = skvae.load(DATA / "v010_unfitted.skvae")
    # parameters that 0.1.0 lacked take the value that reproduces 0.1.0 (residual=False)
    assert " ".join(repr(unfitted).split()) == (
        "BetaCurveVAE(hidden_layer_sizes=[5, 4], latent_dims=3, max_iter=400,"
        " noise='learned', residual=False, tol=0.0001)"
    )
    assert vae.residual is False and fixed.residual is False


def test_old_file_with_a_broken_training_state_names_its_version():
    with zipfile.ZipFile(DATA / "v010_vae.skvae") as archive:
        metadata = json.loads(archive.read("skvae.json"))
    assert metadata["format_version"] == 1
    data = rewrite(
        (DATA / "v010_vae.skvae").read_bytes(),
        lambda m: m["root"]["attributes"]["_state"]["fields"].update(momentum=1),
    )
    with pytest.raises(ValueError, match=r"unknown training state fields \['momentum'\]"):
        skvae.load(data)
