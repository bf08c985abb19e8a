"""The match problem's objective: row-independent, buffered, bit-identical to the decoder."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn
from torch.profiler import ProfilerActivity, profile

from skvae._matching.problem import BufferedDecoder, MatchProblem
from skvae._torch.networks import Decoder, Residual

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _MLP(nn.Module):
    def __init__(self, activation):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Linear(2, 16), activation, nn.Linear(16, 16), activation, nn.Linear(16, 5)
        )

    def forward(self, z):
        return self.net(z)


class _Shifted(_MLP):  # same layers, another forward: the plan must not be used
    def forward(self, z):
        return self.net(z) + 1.0


class _ResidualMLP(_MLP):  # the VAE's hidden stacks with residual blocks
    def __init__(self, activation):
        super().__init__(activation)
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.Linear(2, 16),
            activation,
            Residual(16, "tanh"),
            Residual(16, "relu"),
            nn.Linear(16, 5),
        )


ACTIVATIONS = [nn.Tanh(), nn.ReLU(), nn.SiLU(), nn.ELU(0.5), nn.GELU("tanh"), nn.Softplus(2.0)]


@pytest.mark.parametrize("network", [_MLP, _ResidualMLP])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: type(a).__name__)
def test_buffered_decoder_is_bit_identical(network, activation):
    decoder = network(activation).eval()
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    buffered = BufferedDecoder(decoder, z)
    assert buffered.plan is not None
    assert torch.equal(buffered(z), decoder(z))
    assert torch.equal(buffered(2 * z), decoder(2 * z))  # buffers reused, not stale


def test_buffered_decoder_replays_the_linear_path():
    """The VAE's decoder adds a bias-free linear map of the code to its MLP's output."""
    decoder = Decoder(2, [16, 16], 5, "silu", residual=True, linear=True).eval()
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    buffered = BufferedDecoder(decoder, z)
    assert buffered.plan is not None and buffered.plan[-1][1] is decoder.linear
    assert torch.equal(buffered(z), decoder(z))
    assert torch.equal(buffered(2 * z), decoder(2 * z))


@pytest.mark.parametrize(
    "decoder", [_Shifted(nn.Tanh()), nn.Sequential(nn.Linear(2, 5, bias=False)), nn.Tanh()]
)
def test_buffered_decoder_falls_back_to_the_module(decoder):
    z = torch.randn(8, 2, generator=torch.Generator().manual_seed(2))
    buffered = BufferedDecoder(decoder, z)
    assert buffered.plan is None
    assert torch.equal(buffered(z), decoder(z))


def _problem(model, X, prior_weight, chunk_size=None):
    return MatchProblem.from_curves(
        model, X, 1.0, kind="l2", prior_weight=prior_weight, chunk_size=chunk_size
    )


@pytest.fixture(scope="module")
def objective_inputs(fitted_vae, curves):
    X = curves[1][:40].copy()
    X[::3, ::4] = np.nan
    return fitted_vae.latent_model(), X


def test_objective_is_row_independent(objective_inputs):
    model, X = objective_inputs
    objective = _problem(model, X, 0.5, 16)
    rng = np.random.default_rng(0)
    Z = torch.as_tensor(rng.normal(size=(100, model.latent_dims)))
    rows = torch.as_tensor(rng.integers(0, len(X), size=100))
    values = objective(Z, rows)
    perm = torch.as_tensor(rng.permutation(100))
    assert torch.equal(objective(Z[perm], rows[perm]), values[perm])
    assert torch.equal(objective(Z[7:9], rows[7:9]), values[7:9])
    # The same targets matched in another block: row numbers change, values do not.
    other = _problem(model, X[10:], 0.5, 16)
    keep = rows >= 10
    assert torch.equal(other(Z[keep], rows[keep] - 10), values[keep])
    # The value is the L2 error over observed points in data units, plus the prior term.
    curves = model.decode(Z.numpy())
    expected = np.sqrt(np.nansum((curves - X[rows.numpy()]) ** 2, axis=1))
    expected += 0.25 * np.sum(Z.numpy() ** 2, axis=1)
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-5)


def test_objective_does_not_allocate_in_its_inner_loop(objective_inputs):
    # Allocating each chunk's activations afresh makes matching slower under glibc's fixed
    # trim threshold (Dask workers): the only allocation is the output.
    model, X = objective_inputs
    objective = _problem(model, X, 0.0, 256)
    Z = torch.zeros((2000, model.latent_dims), dtype=torch.float64)
    rows = torch.arange(2000) % len(X)
    expected = objective(Z, rows)
    assert objective.buffered_decoder.plan is not None  # the VAE's decoder runs in buffers
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        values = objective(Z, rows)
    allocated = [e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0]
    assert max(allocated) <= 2000 * 8 and sum(allocated) <= 2 * 2000 * 8
    assert_array_equal(values, expected)


@CUDA
def test_objective_on_cuda_agrees_with_cpu(fitted_vae, objective_inputs):
    model, X = objective_inputs
    Z = torch.as_tensor(np.random.default_rng(3).normal(size=(50, model.latent_dims)))
    rows = torch.arange(50) % len(X)
    cpu = _problem(model, X, 0.0)(Z, rows)
    gpu_model = fitted_vae.set_params(device="cuda").latent_model()
    gpu = _problem(gpu_model, X, 0.0)(Z.cuda(), rows.cuda())
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-4)
