"""LatentMatcher on the estimator's device: a GPU with device="cuda" (skipped without one)."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from skvae import LatentMatcher

pytestmark = [
    pytest.mark.usefixtures("torch_on_one_thread"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def matchers(fitted_vae, curves):
    gpu_vae = clone(fitted_vae).set_params(device="cuda")
    gpu_vae.__dict__.update({k: v for k, v in vars(fitted_vae).items() if k.endswith("_")})
    cpu = LatentMatcher(fitted_vae, prefit=True).fit(curves[0])
    gpu = LatentMatcher(gpu_vae, prefit=True).fit(curves[0])
    return cpu, gpu


def test_cuda_matching_returns_numpy_and_agrees_with_cpu(matchers, curves):
    cpu, gpu = matchers
    assert gpu.estimator_.latent_model().device.type == "cuda"
    X = curves[1].copy()
    X[::2, ::3] = np.nan
    res_cpu, res_gpu = cpu.match(X), gpu.match(X)
    for name in ("codes", "reconstructions", "residuals", "objective", "n_iter"):
        assert isinstance(res_gpu[name], np.ndarray), name
    # Same algorithm; the decoder rounds differently on the GPU: same minima.
    assert_allclose(res_gpu.objective, res_cpu.objective, rtol=1e-3, atol=1e-4)
    assert_allclose(res_gpu.codes, res_cpu.codes, atol=2e-2)
    assert np.all(res_gpu.residuals <= res_gpu.start_residuals)


def test_cuda_matching_is_deterministic_and_row_independent(matchers, curves):
    _, gpu = matchers
    X = curves[1][:50]
    Z = gpu.transform(X)
    assert_array_equal(Z, gpu.transform(X))
    assert_array_equal(Z[10:13], gpu.transform(X[10:13]))
    perm = np.random.default_rng(0).permutation(len(X))
    assert_array_equal(Z[perm], gpu.transform(X[perm]))
