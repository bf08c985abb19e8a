"""The fixed-shape training step (what a CUDA graph captures) and its optimizer state.

The step runs eagerly on the CPU, so these tests check exactly the computation that a GPU
captures and replays; the capture itself is checked by the CUDA tests at the end, which
skip where no GPU exists.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from _helpers import SMALL_NET

from skvae import BetaCurveVAE
from skvae._torch import loop as _training
from skvae._torch import step as _training_step
from skvae._torch.networks import VAEModule
from skvae._torch.step import TrainingStep, make_optimizer, optimizer_state_on_cpu

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available")
N_FEATURES, LATENT = 12, 2


def module(noise="profiled", seed=0, mask_aware=False) -> VAEModule:
    net = VAEModule(
        n_features=N_FEATURES,
        hidden=[16, 16],
        latent_dims=LATENT,
        activation="silu",
        noise=noise,
        residual=True,
        mask_aware=mask_aware,
    )
    net.reset_parameters(torch.Generator().manual_seed(seed))
    return net


def data(rows: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn(rows, N_FEATURES, generator=generator)
    return batch, torch.randn(rows, LATENT, generator=generator)


def reference_step(net, optimizer, batch, eps, average, kl_weight=1.0, floor_share=0.0):
    """The step written plainly, on exactly the given complete rows (no buffers, no
    padding)."""
    optimizer.zero_grad(set_to_none=True)
    squared_error, kl = net(batch, eps)
    floor = floor_share * torch.exp(2 * net.log_sigma) if net.profiled else 0.0
    nll = net.reconstruction_nll(squared_error, N_FEATURES, floor)
    loss = (nll.sum() + kl_weight * kl.sum()) / batch.numel()
    loss.backward()
    _training_step.clip_gradients([p for p in net.parameters() if p.requires_grad], average)
    optimizer.step()
    points = torch.tensor(float(batch.numel()))
    totals = [nll.sum(), kl.sum(), points, squared_error.sum(), points]
    return torch.stack(totals).detach().double()


def stepped(sizes, noise="profiled", kl_weight=1.0, floor_share=0.0):
    """Run batches of the given sizes through a TrainingStep (capacity max(sizes)) and
    through the plain reference; return both modules, both totals and both averages."""
    nets = module(noise), module(noise)
    optimizers = [make_optimizer(net, 1e-2) for net in nets]
    averages = [torch.zeros(()), torch.zeros(())]
    step = TrainingStep(nets[0], optimizers[0], max(sizes), kl_weight, averages[0], use_graph=False)
    step.set_floor_share(floor_share)
    reference_totals = torch.zeros(5, dtype=torch.float64)
    for i, rows in enumerate(sizes):
        batch, eps = data(rows, seed=i)
        step.load(batch, eps)
        step()
        reference_totals += reference_step(
            nets[1], optimizers[1], batch, eps, averages[1], kl_weight, floor_share
        )
    return nets, (step.totals, reference_totals), averages


@pytest.mark.parametrize(
    "noise, floor_share", [("profiled", 0.0), ("profiled", 0.7), (None, 0.7), (0.5, 0.0)]
)
def test_padded_short_batches_step_like_the_plain_batch(noise, floor_share):
    """Zero rows of weight 0 change nothing: parameters, optimizer moments, clipping
    average and loss sums equal those of a plain step on the real rows only (with the
    noise floor too)."""
    sizes = [32, 32, 7, 32, 1, 32]
    (net, plain), (totals, reference_totals), (average, reference_average) = stepped(
        sizes, noise, floor_share=floor_share
    )
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    torch.testing.assert_close(totals, reference_totals, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(average, reference_average, rtol=1e-6, atol=0)


def test_full_batches_are_bit_identical_to_the_plain_step():
    (net, plain), (totals, reference_totals), _ = stepped([16, 16, 16], kl_weight=0.5)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0, msg=key)
    torch.testing.assert_close(totals, reference_totals, rtol=0, atol=0)


def test_the_noise_floor_changes_the_step_only_for_a_profiled_noise():
    """A floor share reweights the curves of a profiled noise (so the step differs from
    the plain one) and leaves a learned noise's step bit for bit as it was."""
    for noise, changed in (("profiled", True), (None, False)):
        (net, _), _, _ = stepped([16, 16], noise)
        (floored, _), _, _ = stepped([16, 16], noise, floor_share=1.0)
        same = all(
            torch.equal(value, floored.state_dict()[key]) for key, value in net.state_dict().items()
        )
        assert same is not changed, noise


def test_the_noise_floor_share_falls_to_zero_at_its_fraction_of_the_epochs():
    config = _training.TrainingConfig(
        max_epochs=200,
        batch_size=8,
        learning_rate_init=1e-3,
        schedule="cosine",
        decay_rate=0.9,
        tol=0.0,
        n_iter_no_change=10,
        kl_weight=1.0,
    )
    shares = [_training.noise_floor_share(config, epoch) for epoch in range(400)]
    end = round(_training.NOISE_FLOOR_EPOCHS * config.max_epochs)
    assert shares[0] == _training.NOISE_FLOOR_SHARE
    assert all(a > b for a, b in zip(shares[: end - 1], shares[1:end]))
    assert shares[end // 2] == pytest.approx(_training.NOISE_FLOOR_SHARE / 2)
    assert all(share == 0.0 for share in shares[end:])  # partial_fit beyond max_iter too


def test_padding_is_reset_by_the_next_full_batch():
    net = module()
    step = TrainingStep(net, make_optimizer(net, 1e-3), 8, 1.0, torch.zeros(()), use_graph=False)
    step.load(*data(3))
    assert step.weight.tolist() == [1.0] * 3 + [0.0] * 5
    assert step.clean.tolist() == [1.0] * 3 + [0.0] * 5
    assert not step.batch[3:].any() and not step.eps[3:].any()
    assert step.observed.all() and step.seen.all()  # padding rows: fully observed
    batch, eps = data(8)
    step.load(batch, eps)
    assert step.weight.tolist() == [1.0] * 8
    assert step.clean.tolist() == [1.0] * 8
    torch.testing.assert_close(step.batch, batch, rtol=0, atol=0)


def test_missing_and_hidden_points_fill_the_mask_buffers():
    """NaN points are zeroed and unobserved; hidden points are observed (scored) but not
    seen by the encoder, and their rows leave the noise estimate."""
    net = module()
    step = TrainingStep(net, make_optimizer(net, 1e-3), 4, 1.0, torch.zeros(()), use_graph=False)
    batch, eps = data(4)
    batch[0, :3] = float("nan")
    hidden = torch.zeros(4, N_FEATURES, dtype=torch.bool)
    hidden[1, 5:9] = True
    step.load(batch, eps, hidden)
    assert step.batch[0, :3].tolist() == [0.0] * 3 and torch.isfinite(step.batch).all()
    assert step.observed.sum(dim=1).tolist() == [N_FEATURES - 3] + [N_FEATURES] * 3
    assert step.seen.sum(dim=1).tolist() == [N_FEATURES - 3, N_FEATURES - 4] + [N_FEATURES] * 2
    assert step.clean.tolist() == [1.0, 0.0, 1.0, 1.0]
    step()
    nll, kl, n_observed, squared_error, n_clean = step.totals.tolist()
    assert n_observed == 4 * N_FEATURES - 3 and n_clean == 3 * N_FEATURES - 3


def test_points_outside_observed_are_read_by_the_encoder_but_not_scored():
    """With ``observed``, a finite point outside it (a value the model filled in) is
    seen by the encoder and left out of the likelihood: the step's squared error and
    point count are those of the observed points only."""
    net = module(mask_aware=True)
    step = TrainingStep(net, make_optimizer(net, 1e-3), 2, 1.0, torch.zeros(()), use_graph=False)
    batch, eps = data(2)
    observed = torch.ones(2, N_FEATURES, dtype=torch.bool)
    observed[0, 4:9] = False
    step.load(batch, eps, observed=observed)
    assert step.seen.all() and step.observed.sum().item() == 2 * N_FEATURES - 5
    net.eval()
    with torch.no_grad():
        squared_error, _ = net(step.batch, step.eps, step.observed, step.seen)
        mean, logvar = net.encoder.encode_finite(batch[:1])  # reads every point of row 0
        decoded = net.decoder(mean + torch.exp(0.5 * logvar) * eps[:1])
    expected = ((batch[0] - decoded[0]) ** 2)[observed[0]].sum()
    torch.testing.assert_close(squared_error[0], expected, rtol=1e-5, atol=1e-6)


def test_the_step_minimises_the_masked_elbo_per_observed_point():
    """The step's loss (read from its gradient) is the ELBO summed over the observed
    points only, divided by their number: the same as the complete rows' sub-grids
    written out by hand, row by row."""
    batch, eps = data(3)
    batch[0, ::2] = float("nan")
    batch[2, -5:] = float("nan")
    nets = module(0.5, mask_aware=True), module(0.5, mask_aware=True)
    step = TrainingStep(
        nets[0], make_optimizer(nets[0], 1e-2), 3, 1.0, torch.zeros(()), use_graph=False
    )
    step.load(batch, eps)
    step()
    optimizer = make_optimizer(nets[1], 1e-2)
    optimizer.zero_grad()
    total, points = 0.0, 0
    for row, noise in zip(batch, eps):
        kept = ~torch.isnan(row)
        x = torch.where(kept, row, 0.0)[None]
        mean, logvar = nets[1].encoder(x, kept[None].float())
        z = mean + torch.exp(0.5 * logvar) * noise
        decoded = nets[1].decoder(z)[0, kept]
        sigma = 0.5
        nll = ((row[kept] - decoded) ** 2).sum() / (2 * sigma**2) + kept.sum() * (
            np.log(sigma) + 0.5 * np.log(2 * np.pi)
        )
        total = total + nll + _kl(mean, logvar)
        points += int(kept.sum())
    (total / points).backward()
    _training_step.clip_gradients([p for p in nets[1].parameters()], torch.zeros(()))
    optimizer.step()
    for key, value in nets[1].state_dict().items():
        torch.testing.assert_close(nets[0].state_dict()[key], value, rtol=1e-5, atol=1e-6)


def _kl(mean, logvar):
    return 0.5 * (mean**2 + torch.exp(logvar) - 1 - logvar).sum()


def test_learning_rate_is_set_for_the_next_steps():
    net = module()
    optimizer = make_optimizer(net, 1e-3)
    step = TrainingStep(net, optimizer, 8, 1.0, torch.zeros(()), use_graph=False)
    step.set_learning_rate(0.25)
    assert [group["lr"] for group in optimizer.param_groups] == [0.25]


def test_saved_optimizer_state_is_device_free_and_reloads():
    net = module()
    optimizer = make_optimizer(net, 1e-3)
    step = TrainingStep(net, optimizer, 8, 1.0, torch.zeros(()), use_graph=False)
    step.load(*data(8))
    step()
    saved = optimizer_state_on_cpu(optimizer)
    [group] = saved["param_groups"]
    assert type(group["lr"]) is float and group["capturable"] is False
    for values in saved["state"].values():
        assert all(v.device.type == "cpu" for v in values.values() if torch.is_tensor(v))
    reloaded = make_optimizer(module(), 5e-3, copy.deepcopy(saved))
    assert reloaded.param_groups[0]["lr"] == 5e-3  # the run's rate, not the saved one
    for before, after in zip(saved["state"].values(), reloaded.state_dict()["state"].values()):
        torch.testing.assert_close(after["exp_avg"], before["exp_avg"], rtol=0, atol=0)
        torch.testing.assert_close(after["step"], before["step"], rtol=0, atol=0)


@pytest.fixture
def made_steps(monkeypatch) -> list:
    """The TrainingStep objects that training builds, in order."""
    made = []
    real = _training_step.TrainingStep

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(_training, "TrainingStep", spy)
    return made


def test_cpu_training_never_uses_a_graph(made_steps, curves):
    BetaCurveVAE(max_iter=1, hidden_layer_sizes=(8,), random_state=0).fit(curves[0][:50])
    assert [step.use_graph for step in made_steps] == [False]


def test_a_failed_capture_warns_and_training_goes_on_eagerly(monkeypatch):
    """The warm-up steps and the fallback, with torch.cuda's stream and graph API replaced
    by stand-ins (this machine has no GPU) and a capture that fails: the same parameters as
    steps that never tried a graph, and one RuntimeWarning naming the failure."""
    import contextlib

    class Stream:
        def wait_stream(self, other):
            pass

    def failing_graph(graph):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", object)
    monkeypatch.setattr(torch.cuda, "graph", failing_graph)
    nets = module(), module()
    steps = [
        TrainingStep(net, make_optimizer(net, 1e-2), 16, 1.0, torch.zeros(()), use_graph=graph)
        for net, graph in zip(nets, (True, False))
    ]
    with pytest.warns(RuntimeWarning, match="capture of the training step failed") as record:
        for i in range(_training_step.WARMUP_STEPS + 3):
            for step in steps:
                step.load(*data(16 if i % 2 else 5, seed=i))
                step()
    assert len(record) == 1
    assert steps[0].eager_steps == _training_step.WARMUP_STEPS and steps[0].graph is None
    assert not steps[0].use_graph
    for key, value in nets[1].state_dict().items():
        torch.testing.assert_close(nets[0].state_dict()[key], value, rtol=0, atol=0, msg=key)
    torch.testing.assert_close(steps[0].totals, steps[1].totals, rtol=0, atol=0)


# ------------------------------------------------------------------------ CUDA graphs


def fit_cuda(X, monkeypatch, *, graphs: bool, **params):
    with monkeypatch.context() as patch, warnings.catch_warnings():
        patch.setattr(_training, "uses_cuda_graph", lambda device: graphs)
        warnings.simplefilter("error", RuntimeWarning)  # a failed capture warns
        return BetaCurveVAE(
            device="cuda", **{**SMALL_NET, "hidden_layer_sizes": (32, 32), "max_iter": 4, **params}
        ).fit(X)


@needs_cuda
@pytest.mark.parametrize("n_rows", [256, 250], ids=["full batches", "short last batch"])
def test_cuda_graph_training_matches_eager_cuda_training(curves, monkeypatch, made_steps, n_rows):
    X = curves[0][:n_rows]
    graphed = fit_cuda(X, monkeypatch, graphs=True)
    assert made_steps[0].graph is not None  # captured (after the warm-up steps), not eager
    eager = fit_cuda(X, monkeypatch, graphs=False)
    np.testing.assert_allclose(graphed.loss_curve_, eager.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(graphed.transform(X), eager.transform(X), atol=1e-4)


@needs_cuda
def test_cuda_graph_training_is_deterministic_and_continues_anywhere(curves, monkeypatch):
    X = curves[0][:300]
    first = fit_cuda(X, monkeypatch, graphs=True, warm_start=True)
    second = fit_cuda(X, monkeypatch, graphs=True)
    assert first.loss_curve_ == second.loss_curve_
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    first.fit(X)  # warm start on the GPU from the device-free optimizer state
    first.set_params(device="cpu").partial_fit(X)  # and on the CPU
    assert first.n_iter_ == 2 * 4 + 1
    assert np.isfinite(first.loss_curve_).all()


def test_the_profiled_loss_weighs_each_curve_by_its_mse_plus_the_floor():
    """The gradient of the per-curve profiled loss in each squared error is
    1 / (2 (MSEᵢ + floor)): the floor caps the weight of the curves fitted best."""
    from skvae._torch.networks import PROFILE_FLOOR, profiled_nll

    squared_error = torch.tensor([1e-4, 1e-2, 1.0], dtype=torch.float64, requires_grad=True)
    for floor in (0.0, 0.05):
        (gradient,) = torch.autograd.grad(
            profiled_nll(squared_error, 10, floor).sum(), squared_error
        )
        expected = 0.5 / (squared_error.detach() / 10 + PROFILE_FLOOR + floor)
        torch.testing.assert_close(gradient, expected, rtol=1e-12, atol=0)
