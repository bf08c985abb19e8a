"""Persistence with pickle and joblib: models load in a fresh, CPU-only process (the
skvae format too), their fitted state lives on the CPU, and read-only memmaps work."""

import pickle

import joblib
import numpy as np
import torch
from _helpers import TINY_NET, assert_same_outputs, outputs, run_in_fresh_process
from sklearn.utils.estimator_checks import check_estimators_pickle

import skvae
from skvae import BetaCurveVAE


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
    for name, value in got.items():  # computed on this machine by both processes
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
    check_estimators_pickle(
        "BetaCurveVAE", BetaCurveVAE(max_iter=2, **TINY_NET), readonly_memmap=True
    )
