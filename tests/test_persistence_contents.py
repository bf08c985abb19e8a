"""What an skvae file holds: the network as its config, the training state with the
optimizer's, loss curves as arrays, size limits; and files written by skvae 0.1.0."""

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import TINY_NET, assert_same_outputs, rewrite, saved_bytes

import skvae
from skvae import BetaCurveVAE
from skvae._torch.networks import VAEModule

DATA = Path(__file__).parent / "data"


def test_network_is_saved_as_its_config_and_rebuilt_from_it(curves):
    """The file holds ``module.config`` (any keys, e.g. ``residual``), not layer shapes."""
    X = curves[0][:100]
    vae = BetaCurveVAE(max_iter=2, **TINY_NET).fit(X)
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
    monkeypatch.setattr(skvae._persistence.archive, "MAX_ARRAY_BYTES", len(data) // 2)
    with pytest.raises(ValueError, match="too large for the skvae format: .* bytes of arrays"):
        skvae.save(fitted_vae, io.BytesIO())
    with pytest.raises(ValueError, match=r"arrays declare [\d,]+ bytes in all, more than"):
        skvae.load(data)


def assert_computed_close(actual, expected):
    """Outputs computed by the float32 networks, against values computed on another machine:
    equal up to float32 rounding, which differs between x86 CPUs (vector widths, fused
    multiply-adds). Stored state is compared exactly."""
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def stored_attributes(path):
    """The fitted attributes of a file's root estimator as stored: JSON, arrays by key."""
    with zipfile.ZipFile(path) as archive:
        attributes = json.loads(archive.read("skvae.json"))["root"]["attributes"]
        arrays = {
            n: np.load(io.BytesIO(archive.read(n)))
            for n in archive.namelist()
            if n.endswith(".npy")
        }
    return attributes, arrays


def check_v010_vae(expected):
    vae = skvae.load(DATA / "v010_vae.skvae")
    assert vae.residual is False  # parameters that 0.1.0 lacked take its behaviour
    # the weights, the scaler and the noise load bit for bit
    stored, arrays = stored_attributes(DATA / "v010_vae.skvae")
    assert vae.scale_ == stored["scale_"] and vae.noise_ == stored["noise_"]
    np.testing.assert_array_equal(vae.mean_, arrays[stored["mean_"]["array"]], strict=True)
    weights = vae.module_.state_dict()
    assert weights.keys() == stored["module_"]["state"].keys()
    for name, node in stored["module_"]["state"].items():
        np.testing.assert_array_equal(weights[name].numpy(), arrays[node["array"]], strict=True)
    X = expected["X"]
    Z = vae.transform(X)
    assert_computed_close(Z, expected["vae_transform"])
    assert_computed_close(vae.inverse_transform(Z), expected["vae_inverse_transform"])
    assert_computed_close(vae.score_samples(X), expected["vae_score_samples"])
    assert vae.kl_curve_[0] > 0.1  # format 1 records it per grid point, the estimator per curve
    # the optimizer moments and the generator state carry over, so training continues
    moments = vae._state.optimizer_state["state"]
    np.testing.assert_array_equal(moments[0]["exp_avg"].numpy(), expected["vae_exp_avg_0"])
    np.testing.assert_array_equal(moments[10]["exp_avg_sq"].numpy(), expected["vae_exp_avg_sq_10"])
    np.testing.assert_array_equal(vae._generator_state.numpy(), expected["vae_generator_state"])
    X_train, _ = skvae.make_beta_curves(120, n_points=12, random_state=0)
    vae.partial_fit(X_train)
    assert vae.n_iter_ == 4
    assert vae.loss_curve_[:3] == list(expected["vae_partial_fit_loss"][:3])  # stored
    # a new epoch (the loop draws its noise in another order than 0.1.0's)
    assert abs(vae.loss_curve_[3] - expected["vae_partial_fit_loss"][3]) < 0.05


def check_v010_fixed_noise(expected):
    fixed = skvae.load(DATA / "v010_fixed_noise.skvae")
    assert fixed.noise == 0.1 and fixed.early_stopping and not fixed.module_.config["residual"]
    assert fixed.residual is False
    assert fixed.feature_names_in_.dtype == object and len(fixed.feature_names_in_) == 12
    X_fixed = pd.DataFrame(expected["fixed_X"], columns=fixed.feature_names_in_)
    assert_computed_close(fixed.transform(X_fixed), expected["fixed_transform"])


def check_v010_matcher(expected):
    matcher = skvae.load(DATA / "v010_matcher.skvae")
    assert matcher.estimator_ is matcher.estimator and matcher.n_starts == 2
    assert not hasattr(matcher, "n_iter_")  # format 1's copy of the VAE's epochs, dropped
    assert_computed_close(matcher.estimator_.transform(expected["X"]), expected["vae_transform"])


def check_v010_unfitted(expected):
    unfitted = skvae.load(DATA / "v010_unfitted.skvae")
    # parameters that 0.1.0 lacked take the value that reproduces 0.1.0 (refine_steps=0,
    # residual=False);
    # those whose default changed since keep the file's value (batch_size, early_stopping)
    assert " ".join(repr(unfitted).split()) == (
        "BetaCurveVAE(batch_size=512, early_stopping=False, hidden_layer_sizes=[5, 4],"
        " latent_dims=3, max_iter=400, noise='learned', refine_steps=0, residual=False,"
        " tol=0.0001)"
    )


@pytest.mark.parametrize(
    "check", [check_v010_vae, check_v010_fixed_noise, check_v010_matcher, check_v010_unfitted]
)
def test_files_written_by_skvae_0_1_0_load(check):
    """tests/data/v010_*.skvae were written by skvae 0.1.0 (commit f855892, format 1), with
    the outputs of v010_expected.npz (make_v010_fixtures.py); one check per file."""
    check(np.load(DATA / "v010_expected.npz"))


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
