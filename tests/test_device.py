"""``device="cpu" | "cuda" | "auto"``: CUDA tests run where a GPU exists and skip elsewhere."""

import pickle

import numpy as np
import pytest
import torch
from _helpers import SMALL_NET, run_in_fresh_process

import skvae
from skvae import BetaCurveVAE

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available")
without_cuda = pytest.mark.skipif(HAS_CUDA, reason="CUDA is available")


def assert_on_cpu(vae):
    assert all(t.device.type == "cpu" for t in vae.module_.state_dict().values())
    for state in vae._state.optimizer_state["state"].values():
        assert all(v.device.type == "cpu" for v in state.values() if torch.is_tensor(v))
    assert vae._generator_state.device.type == "cpu"


def test_device_parameter_is_validated(X):
    with pytest.raises(ValueError, match="device"):
        BetaCurveVAE(device="tpu").fit(X)


def test_invalid_device_set_on_a_fitted_model_is_refused_at_inference(X):
    from sklearn.utils._param_validation import InvalidParameterError

    vae = BetaCurveVAE(max_iter=3, **SMALL_NET).fit(X)
    vae.set_params(device="garbage")
    for call in (lambda: vae.transform(X[:2]), lambda: vae.score_samples(X[:2]), vae.latent_model):
        with pytest.raises(InvalidParameterError, match="'device' parameter"):
            call()


@without_cuda
def test_cuda_without_cuda_raises_a_clear_error(X):
    vae = BetaCurveVAE(device="cuda", max_iter=3, **SMALL_NET)
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA device.*device='cpu'"):
        vae.fit(X)
    assert not hasattr(vae, "n_features_in_")  # the failed fit left it unfitted
    cpu = BetaCurveVAE(max_iter=3, **SMALL_NET).fit(X)
    before = dict(vars(cpu))
    with pytest.raises(ValueError, match="no CUDA device"):
        cpu.set_params(device="cuda").partial_fit(X)
    assert all(vars(cpu)[k] is v for k, v in before.items() if k != "device")


@without_cuda
def test_auto_falls_back_to_cpu(X):
    auto = BetaCurveVAE(device="auto", max_iter=3, **SMALL_NET).fit(X)
    cpu = BetaCurveVAE(device="cpu", max_iter=3, **SMALL_NET).fit(X)
    assert_on_cpu(auto)
    np.testing.assert_array_equal(auto.transform(X), cpu.transform(X))
    assert auto.loss_curve_ == cpu.loss_curve_


@needs_cuda
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_cuda_training_ends_on_the_cpu(X, device):
    vae = BetaCurveVAE(device=device, max_iter=3, **SMALL_NET).fit(X)
    assert_on_cpu(vae)
    assert_on_cpu(pickle.loads(pickle.dumps(vae)))  # the pickle holds only CPU tensors
    cpu = BetaCurveVAE(device="cpu", max_iter=3, **SMALL_NET).fit(X)
    # the same random stream on both devices: the models agree up to float rounding
    np.testing.assert_allclose(vae.loss_curve_, cpu.loss_curve_, rtol=1e-2)
    np.testing.assert_allclose(vae.transform(X), cpu.transform(X), atol=1e-2)


@needs_cuda
def test_cuda_early_stopping_partial_fit_and_warm_start(X):
    vae = BetaCurveVAE(
        device="cuda", early_stopping=True, warm_start=True, max_iter=3, **SMALL_NET
    ).fit(X)
    assert len(vae.validation_scores_) == vae.n_iter_
    vae.partial_fit(X)
    vae.fit(X)
    assert vae.n_iter_ == 2 * 3 + 1
    assert_on_cpu(vae)
    vae.set_params(device="cpu").partial_fit(X)  # continues on the CPU
    assert vae.n_iter_ == 2 * 3 + 2


@needs_cuda
def test_model_trained_on_gpu_loads_on_a_cpu_only_machine(X, tmp_path):
    vae = BetaCurveVAE(device="cuda", max_iter=3, **SMALL_NET).fit(X)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(vae))
    skvae.save(vae, tmp_path / "model.skvae")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Z.npy", vae.transform(X))
    script = """
import pickle, sys
from pathlib import Path
import numpy as np, torch
import skvae
folder = Path(sys.argv[1])
assert not torch.cuda.is_available()
X, Z = np.load(folder / "X.npy"), np.load(folder / "Z.npy")
pickled = pickle.loads((folder / "model.pkl").read_bytes())
for model in (pickled, skvae.load(folder / "model.skvae")):
    assert model.device == "cuda"
    try:
        model.transform(X)
    except ValueError as exc:
        assert "device='cpu'" in str(exc)
    else:
        raise AssertionError("device='cuda' computed without CUDA")
    Z_cpu = model.set_params(device="cpu").transform(X)
    assert np.allclose(Z_cpu, Z, atol=1e-3), abs(Z_cpu - Z).max()
    model.partial_fit(X)
print("ok")
"""
    run_in_fresh_process(script, tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})


@needs_cuda
def test_inference_runs_on_the_device_and_returns_numpy(X):
    vae = BetaCurveVAE(device="cuda", max_iter=3, **SMALL_NET).fit(X)
    model = vae.latent_model()
    assert model.device.type == "cuda" and next(model.module.parameters()).is_cuda
    assert_on_cpu(vae)  # the device copy is a cache, not the fitted state
    Z = vae.transform(X)
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float64
    curves = vae.inverse_transform(Z)
    elbo = vae.score_samples(X)
    assert isinstance(curves, np.ndarray) and isinstance(elbo, np.ndarray)
    cpu = pickle.loads(pickle.dumps(vae)).set_params(device="cpu")
    # CPU and GPU agree within float32 rounding of the networks (documented tolerance)
    np.testing.assert_allclose(Z, cpu.transform(X), atol=1e-4)
    np.testing.assert_allclose(curves, cpu.inverse_transform(Z), atol=1e-3)
    np.testing.assert_allclose(elbo, cpu.score_samples(X), rtol=1e-4, atol=1e-2)


@needs_cuda
def test_cuda_rows_independent_and_fits_deterministic(X):
    first = BetaCurveVAE(device="cuda", max_iter=3, **SMALL_NET).fit(X)
    second = BetaCurveVAE(device="cuda", max_iter=3, **SMALL_NET).fit(X)
    assert first.loss_curve_ == second.loss_curve_
    Z = first.transform(X)
    np.testing.assert_array_equal(Z, second.transform(X))
    np.testing.assert_array_equal(Z[17:33], first.transform(X[17:33]))
    np.testing.assert_array_equal(first.score_samples(X)[::-1], first.score_samples(X[::-1]))
