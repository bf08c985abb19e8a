"""The PCA start, the restore that returns PCA unless training clearly beats it, and the
budget that adapts to the number of curves."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from skvae import BetaCurveVAE, make_beta_curves
from skvae._latent_model import refined_codes
from skvae._torch.networks import VAEModule
from skvae._vae import _beats_pca_start


def nearly_linear_curves(n_samples: int, seed: int = 0) -> np.ndarray:
    """Curves from two smooth components and a mean, with independent noise: PCA(2) is
    the model that generated them."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, 40)
    basis = np.stack([np.sin(np.pi * t), t**2 - 0.5])
    codes = rng.normal(size=(n_samples, 2)) * [3.0, 1.0]
    return 5.0 + np.cos(t) + codes @ basis + 0.3 * rng.normal(size=(n_samples, len(t)))


def relative_error(X, X_hat) -> np.ndarray:
    return np.linalg.norm(X_hat - X, axis=1) / np.linalg.norm(X - X.mean(axis=0), axis=1)


def test_module_started_at_pca_reconstructs_as_pca():
    X = nearly_linear_curves(200)
    module = VAEModule(40, [16, 16], 2, "silu", "profiled", residual=True, linear=True)
    module.reset_parameters(torch.Generator().manual_seed(0))
    X_model = torch.as_tensor(X, dtype=torch.float32)
    module.start_at_pca([X_model[:70], X_model[70:]])  # chunks: one streamed pass
    with torch.no_grad():
        mean, logvar = module.encoder(X_model)
        reconstruction = module.decoder(mean).double().numpy()
    pca = PCA(2).fit(X)
    expected = pca.inverse_transform(pca.transform(X))
    np.testing.assert_allclose(reconstruction, expected, atol=1e-4 * np.abs(X).max())
    # whitened codes, as the prior's; probabilistic PCA's posterior variance below 1
    np.testing.assert_allclose(mean.std(dim=0).numpy(), 1.0, rtol=1e-3)
    assert (logvar < 0).all()


def test_start_at_pca_needs_the_linear_path():
    module = VAEModule(10, [8], 2, "silu", "profiled")
    with pytest.raises(ValueError, match="linear=True"):
        module.start_at_pca([torch.zeros(5, 10)])


def test_fit_that_does_not_beat_pca_returns_pca_of_every_curve():
    X = nearly_linear_curves(120)
    vae = BetaCurveVAE(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X)
    assert vae._state.best_epoch == 0  # no epoch beat the start by the margin
    pca = PCA(2).fit(X)  # refitted on all the curves, the held-out ones included
    np.testing.assert_allclose(
        vae.inverse_transform(vae.transform(X)),
        pca.inverse_transform(pca.transform(X)),
        atol=1e-4 * np.abs(X).max(),
    )
    assert vae.best_validation_score_ > max(vae.validation_scores_)


def test_a_consistent_gain_beats_the_start_despite_one_heavy_loss():
    """Nineteen held-out curves fit better, one much worse, the mean gain still positive:
    the rank test keeps the trained model, where a t statistic (0.25 here) would not."""
    gains = torch.tensor([0.1] * 19 + [-1.5])
    assert gains.mean() / (gains.std() / math.sqrt(len(gains))) < 1.0
    assert _beats_pca_start(gains)


@pytest.mark.parametrize(
    "gains",
    [
        [0.0] * 20,  # no curve changed
        [0.1] * 15 + [-1.0] * 5,  # most curves better, but a worse mean
        [1.0, -1.0, 2.0, -2.0, 3.0, -2.9, 0.5, -0.5],  # a positive mean by chance
        [0.2, 0.3],  # too few curves for the test to reach its level
        [0.1] * 19 + [float("nan")],  # a held-out score that could not be computed
    ],
)
def test_the_start_is_kept_unless_clearly_beaten(gains):
    assert not _beats_pca_start(torch.tensor(gains))


def test_more_iterations_are_never_worse_on_held_out_curves():
    X = nearly_linear_curves(160, seed=1)
    X_train, X_test = X[:120], X[120:]
    errors = []
    for max_iter in (10, 50):
        vae = BetaCurveVAE(hidden_layer_sizes=(16,), max_iter=max_iter, random_state=0)
        vae.fit(X_train)
        errors.append(
            np.median(relative_error(X_test, vae.inverse_transform(vae.transform(X_test))))
        )
    pca = PCA(2).fit(X_train)
    pca_error = np.median(relative_error(X_test, pca.inverse_transform(pca.transform(X_test))))
    assert errors[1] <= errors[0] * 1.02
    assert max(errors) <= pca_error * 1.02


@pytest.mark.parametrize(
    ("n_samples", "expected"), [(10, 10), (100, 16), (1000, 125), (10_000, 512)]
)
def test_auto_batch_size_gives_at_least_eight_steps_per_epoch(n_samples, expected):
    vae = BetaCurveVAE()
    assert vae._batch_size(n_samples) == expected
    assert math.ceil(n_samples / expected) >= min(8, math.ceil(n_samples / 16))
    # an integer is used as given (clipped to the curves)
    assert BetaCurveVAE(batch_size=64)._batch_size(n_samples) == min(64, n_samples)


def test_auto_batch_size_sets_the_steps_of_a_fit(monkeypatch):
    from skvae._torch import loop

    sizes = []
    original = loop.run_epoch

    def run_epoch(module, step, source, config, *args):
        sizes.append(config.batch_size)
        return original(module, step, source, config, *args)

    monkeypatch.setattr(loop, "run_epoch", run_epoch)
    X = nearly_linear_curves(200)
    BetaCurveVAE(hidden_layer_sizes=(8,), max_iter=1, early_stopping=False).fit(X)
    assert sizes == [25]  # 200 curves: 8 steps of 25


def test_start_or_best_epoch_is_decided_on_the_codes_transform_gives(fitted_vae, curves):
    """The held-out scores of the restore decision use the codes of ``transform``: the
    encoder's means refined against the decoder, at the module's own noise."""
    import functools

    from skvae._latent_model import refined_codes
    from skvae._torch.loop import HeldOutCurves
    from skvae._torch.networks import split_missing

    X = curves[1][:40].copy()
    X[::3, 10:40] = np.nan  # partial curves too
    model = fitted_vae.latent_model()
    X_model = torch.as_tensor(model.scaler.data_to_model(X), dtype=torch.float32)
    module = model.module
    filled, observed = split_missing(X_model.double())
    with torch.no_grad():
        means, _ = module.encoder(filled.float(), observed.float())
    codes = refined_codes(module, X_model, means, n_steps=fitted_vae.refine_steps)
    # float32 curves here, float64 in transform: the partial curves' codes, refined from
    # a screened prior point in a few steps, agree less closely than the complete ones'
    complete = ~np.isnan(X).any(axis=1)
    transformed = fitted_vae.transform(X)
    np.testing.assert_allclose(codes.numpy()[complete], transformed[complete], atol=1e-4)
    np.testing.assert_allclose(codes.numpy(), transformed, atol=1e-3)

    plain = HeldOutCurves(lambda: X_model.split(16), len(X))
    refine = functools.partial(refined_codes, n_steps=fitted_vae.refine_steps)
    refined = HeldOutCurves(lambda: X_model.split(16), len(X), refine=refine)
    before, after = plain.per_curve(module), refined.per_curve(module)
    assert torch.all(after >= before - 1e-6) and after.mean() > before.mean()
    assert torch.equal(refined(module), plain(module))  # every epoch: the encoder's means


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("refine_steps", [0, 2])
def test_fit_decides_start_or_best_epoch_with_its_own_refine_steps(monkeypatch, refine_steps):
    """A fit with a hold-out scores its restore decision at the codes its ``transform``
    gives: refined by ``refine_steps`` Gauss-Newton steps, the encoder's means at 0."""
    from skvae import _vae

    calls = []

    def spy(module, X, Z, *, n_steps):
        calls.append((len(X), n_steps))
        return refined_codes(module, X, Z, n_steps=n_steps)

    monkeypatch.setattr(_vae, "refined_codes", spy)
    X, _ = make_beta_curves(120, random_state=0)  # non-linear: epochs beat the start
    vae = BetaCurveVAE(
        hidden_layer_sizes=(16,),
        max_iter=20,
        refine_steps=refine_steps,
        early_stopping=True,  # one hold-out ("auto" cross-validates on 120 curves)
        random_state=0,
    ).fit(X)
    if refine_steps == 0:
        assert calls == []
        assert vae._state.best_epoch > 0  # the decision was reached, and kept training
    else:  # the 20 held-out curves, scored at the start and at the best epoch
        assert calls and {n_steps for _, n_steps in calls} == {refine_steps}
        assert sum(n for n, _ in calls) == 2 * 20


class ScriptedHeldOutCurves:
    """Held-out scores written in advance: ``means[i]`` is the score at the encoder's
    means of the start (i = 0) and of epoch i, and :meth:`per_curve` the per-curve scores
    at refined codes of the trained weights (``trained``) or the start's (``start``)."""

    def __init__(self, means, trained, start, start_weights):
        self.means, self.trained, self.start = iter(means), trained, start
        self.start_weights = start_weights
        self.n_rows = len(start)

    def __call__(self, module):
        return torch.tensor(next(self.means), dtype=torch.float64)

    def per_curve(self, module):
        at_start = all(
            torch.equal(v, self.start_weights[k]) for k, v in module.state_dict().items()
        )
        return torch.tensor(self.start if at_start else self.trained, dtype=torch.float64)


@pytest.mark.parametrize("trained_gain, kept_epoch", [(0.1, 2), (-0.1, 0)])
def test_the_start_competes_at_refined_codes_even_when_it_wins_at_the_means(
    trained_gain, kept_epoch
):
    """Every trained epoch scores below the start at the encoder's means; the best of them
    (epoch 2) still replaces the start if its per-curve scores at refined codes beat the
    start's by the rank test, and is otherwise dropped for the start."""
    from skvae._torch import loop as _training

    module = VAEModule(6, [4], 2, "silu", "profiled")
    module.reset_parameters(torch.Generator().manual_seed(0))
    start = {k: v.clone() for k, v in module.state_dict().items()}
    scores_at_start = np.linspace(-1.0, 1.0, 20)
    validation = ScriptedHeldOutCurves(
        [0.0, -0.9, -0.2, -0.6], scores_at_start + trained_gain, scores_at_start, start
    )
    config = _training.TrainingConfig(
        max_epochs=3, batch_size=8, learning_rate_init=1e-2, schedule="cosine",
        decay_rate=0.9, tol=0.0, n_iter_no_change=10, kl_weight=1.0,
        beats_start=_beats_pca_start,
    )  # fmt: skip
    weights = {}

    def remember(state):
        weights[state.epoch] = {k: v.clone() for k, v in module.state_dict().items()}

    state = _training.TrainingState()
    source = _training.TensorBatches(torch.randn(16, 6, generator=torch.Generator().manual_seed(1)))
    reason = _training.train(
        module, state, source, validation, config, torch.Generator().manual_seed(2), 3,
        on_epoch=remember,
    )  # fmt: skip
    assert reason == "max_epochs" and state.epoch == 3
    assert state.best_epoch == kept_epoch
    kept = weights[2] if kept_epoch else start
    assert all(torch.equal(v, kept[k]) for k, v in module.state_dict().items())
    expected = -0.2 if kept_epoch else float(np.mean(scores_at_start))
    assert state.best_validation == pytest.approx(expected)
