"""Training controls: partial_fit, warm_start, early stopping, progress output,
KeyboardInterrupt and failed fits."""

import copy
import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import SMALL_NET
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

import skvae._vae
from skvae import BetaCurveVAE
from skvae._torch import loop as _training

# no hold-out unless a test asks for one: fit and partial_fit then train on the same curves
NO_HOLD_OUT = {**SMALL_NET, "early_stopping": False}
HELD_OUT = {**SMALL_NET, "early_stopping": True}


def weights(estimator) -> dict:
    return {k: v.clone() for k, v in estimator.module_.state_dict().items()}


def assert_same_weights(a, b, *, networks_only=False):
    """Bit-identical weights; ``networks_only`` leaves out the profiled noise, which
    partial_fit keeps as a running estimate and fit as the last epoch's."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        if not (networks_only and key == "log_sigma"):
            torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)


# ------------------------------------------------------------------------- partial_fit


def test_partial_fit_is_one_epoch_per_call(X):
    vae = BetaCurveVAE(max_iter=3, **NO_HOLD_OUT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning from partial_fit
        assert vae.partial_fit(X) is vae
    assert vae.n_iter_ == 1 and len(vae.loss_curve_) == 1
    assert vae.n_features_in_ == X.shape[1]
    vae.partial_fit(X[:50])  # any number of rows, the same grid
    vae.partial_fit(X)
    assert vae.n_iter_ == 3 and len(vae.loss_curve_) == 3


def test_partial_fit_calls_match_fit(X):
    """Three partial_fit calls continue one training run: they equal fit with max_iter=3."""
    stepped = BetaCurveVAE(max_iter=3, **NO_HOLD_OUT)
    noises = []
    for _ in range(3):
        stepped.partial_fit(X)
        noises.append(stepped.noise_)
    fitted = BetaCurveVAE(max_iter=3, **NO_HOLD_OUT).fit(X)
    assert stepped.loss_curve_ == fitted.loss_curve_
    assert_same_weights(stepped, fitted, networks_only=True)
    # the profiled noise: fit's is the last epoch's RMS error; partial_fit's is the RMS
    # error over the curves of all calls, so it keeps part of the earlier, larger errors
    assert noises[0] > noises[1] > noises[2] > fitted.noise_


def test_partial_fit_noise_is_a_running_estimate_not_the_last_calls(X):
    """One partial_fit call on a single curve moves the profiled noise by that curve's
    share of all curves counted, so the held-out score does not follow the last chunk."""
    vae = BetaCurveVAE(max_iter=5, **NO_HOLD_OUT).fit(X[:150])
    noise, score = vae.noise_, vae.score(X[150:])
    vae.partial_fit(X[:1])
    assert vae.noise_ == pytest.approx(noise, rel=0.02)
    assert vae.score(X[150:]) == pytest.approx(score, abs=0.02 * abs(score))


def test_partial_fit_width_mismatch_leaves_estimator_unchanged(X):
    vae = BetaCurveVAE(max_iter=3, **NO_HOLD_OUT).partial_fit(X)
    before = weights(vae)
    with pytest.raises(ValueError, match="features"):
        vae.partial_fit(X[:, :50])
    assert vae.n_iter_ == 1 and vae.n_features_in_ == X.shape[1]
    for key, value in weights(vae).items():
        assert torch.equal(value, before[key])


def test_partial_fit_after_fit_continues(X):
    vae = BetaCurveVAE(max_iter=2, **NO_HOLD_OUT).fit(X)
    first = list(vae.loss_curve_)
    last = first[-1]
    vae.partial_fit(X)
    assert vae.n_iter_ == 3 and vae.loss_curve_[:2] == first
    assert vae.loss_curve_[-1] < last + 0.1 * abs(last)


# -------------------------------------------------------------------------- warm_start


def test_warm_start_continues_training(X):
    vae = BetaCurveVAE(max_iter=4, warm_start=True, **NO_HOLD_OUT).fit(X)
    first = list(vae.loss_curve_)
    vae.fit(X)
    assert vae.n_iter_ == 8 and vae.loss_curve_[:4] == first
    # the second fit starts where the first ended, not from the initial loss
    assert abs(vae.loss_curve_[4] - first[-1]) < 0.5 * abs(first[0] - first[-1])
    assert vae.loss_curve_[-1] < first[-1]

    cold = BetaCurveVAE(max_iter=4, warm_start=False, **NO_HOLD_OUT).fit(X)
    assert cold.loss_curve_ == first
    cold.fit(X)  # without warm_start a second fit starts anew, identically
    assert cold.n_iter_ == 4 and cold.loss_curve_ == first


def test_warm_start_with_other_width_raises_and_keeps_model(X):
    vae = BetaCurveVAE(max_iter=2, warm_start=True, **NO_HOLD_OUT).fit(X)
    before = copy.deepcopy(vars(vae))
    with pytest.raises(ValueError, match="features"):
        vae.fit(X[:, :40])
    assert vae.n_iter_ == before["n_iter_"] and vae.n_features_in_ == X.shape[1]
    for key, value in weights(vae).items():
        assert torch.equal(value, before["module_"].state_dict()[key])


# ---------------------------------------------------------------------- early stopping


def held_out_score(vae, X_val) -> float:
    """The early-stopping score of ``vae`` on ``X_val``: the reconstruction
    log-likelihood per grid point at each curve's own noise, averaged over curves, of the
    encoder means' reconstructions."""
    codes = vae.latent_model().encode(X_val, return_std=False)
    mse = np.mean((vae.inverse_transform(codes) - X_val) ** 2, axis=1)
    return float(np.mean(-0.5 * (np.log(2 * np.pi * mse) + 1)))


def test_early_stopping_restores_the_best_weights(X):
    params = dict(
        max_iter=100,
        hidden_layer_sizes=(32,),
        batch_size=32,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=3,
        tol=0.0,
        random_state=0,
    )
    vae = BetaCurveVAE(**params).fit(X)
    scores = vae.validation_scores_
    # stopped early, but not in the first 80 % of the cosine schedule
    assert 0.8 * params["max_iter"] <= len(scores) == vae.n_iter_ < params["max_iter"]
    assert vae.best_validation_score_ == max(scores)  # an epoch beat the PCA start
    assert scores[-1] < vae.best_validation_score_ - 0.01  # the last epoch was worse
    # Rebuild the validation split as fit draws it (init seed, generator seed, permutation)
    rng = check_random_state(params["random_state"])
    rng.randint(np.iinfo(np.int32).max)
    rng.randint(np.iinfo(np.int32).max)
    X_val = X[rng.permutation(len(X))[:50]]
    # the restored weights score the best validation score, not the last one
    restored = held_out_score(vae, X_val)
    assert restored == pytest.approx(vae.best_validation_score_, abs=1e-4)
    assert restored > scores[-1] + 0.01

    # a warm-started fit holds out the same curves and reports its own restored best
    n_before = vae.n_iter_
    vae.set_params(warm_start=True).fit(X)
    assert len(vae.validation_scores_) == vae.n_iter_ > n_before
    assert vae.best_validation_score_ == max(vae.validation_scores_[n_before:])
    assert held_out_score(vae, X_val) == pytest.approx(vae.best_validation_score_, abs=1e-4)


@pytest.mark.parametrize(
    ("best_epoch", "epochs_run", "anneal_score", "anneals", "kept"),
    [
        (20, 80, 0.5, True, False),  # annealed, scored worse: the best weights return
        (20, 80, 2.0, True, True),  # annealed, scored better: kept
        (50, 90, 2.0, True, True),  # too little budget left for the full length
        (75, 80, 2.0, False, False),  # the best epoch's rate was already low
        (20, 100, 2.0, False, False),  # no budget left
    ],
)
def test_weights_restored_from_a_high_learning_rate_are_annealed(
    monkeypatch, best_epoch, epochs_run, anneal_score, anneals, kept
):
    """Restored weights from an epoch whose cosine rate was above a quarter of its peak
    are trained on from that rate down over half as many epochs as reached them (at
    least n_iter_no_change, within max_iter), and kept only if they score better."""
    vae = BetaCurveVAE(max_iter=100, n_iter_no_change=5)
    module = skvae._vae.VAEModule(
        n_features=6, hidden=[4], latent_dims=2, activation="silu", noise="profiled"
    )
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = _training.TrainingState(epoch=epochs_run, best_epoch=best_epoch, best_validation=1.0)
    config = _training.TrainingConfig(
        max_epochs=100, batch_size=8, learning_rate_init=1e-2, schedule="cosine",
        decay_rate=0.9, tol=0.0, n_iter_no_change=5, kl_weight=1.0,
    )  # fmt: skip
    runs = []

    def anneal(module, state, source, validation, config, generator, n_epochs, scaler, **_):
        runs.append((config, n_epochs))
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1.0)
        state.best_validation, state.best_epoch = anneal_score, state.epoch + 3
        state.epoch += n_epochs

    monkeypatch.setattr(vae, "_train", anneal)
    vae._anneal_from_best(module, state, None, None, config, None, None)
    assert len(runs) == anneals
    if anneals:
        run, n_epochs = runs[0]
        assert n_epochs == min(max(5, best_epoch // 2), 100 - epochs_run)
        rate = _training.learning_rate(config, best_epoch - 1)
        assert _training.learning_rate(run, epochs_run) == pytest.approx(rate)
        end = _training.learning_rate(run, epochs_run + n_epochs)
        assert end == pytest.approx(rate * _training.COSINE_FLOOR)
    changed = any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert changed == kept
    assert state.best_validation == (anneal_score if kept else 1.0)
    assert state.best_epoch == (epochs_run + 3 if kept else best_epoch)


def test_the_first_schedule_of_a_larger_max_iter_is_the_default_fit():
    """The first part of a restarted fit is what the default max_iter would run."""
    assert skvae._vae._FIRST_SCHEDULE == BetaCurveVAE().max_iter


def test_a_larger_max_iter_runs_the_default_fit_then_one_restart(X, monkeypatch):
    """A validated cosine fit on a small hold-out given more than the first schedule's
    epochs runs the fit of that schedule first (epoch for epoch); if that ran to its end,
    it restarts the schedule from the kept weights at the peak rate over the epochs left,
    and the weights kept never score below the first schedule's. A first schedule whose
    held-out score stalled ends the fit there."""
    monkeypatch.setattr(skvae._vae, "_FIRST_SCHEDULE", 20)
    runs = []
    train = _training.train

    def train_and_record(module, state, source, validation, config, *args, **kwargs):
        first = state.epoch
        reason = train(module, state, source, validation, config, *args, **kwargs)
        runs.append((first, config, state.best_validation))
        return reason

    monkeypatch.setattr(_training, "train", train_and_record)
    params = {**HELD_OUT, "n_iter_no_change": 50, "tol": 0.0, "random_state": 0}
    params["learning_rate_init"] = 2e-2  # the networks beat PCA within 20 epochs
    one_schedule = BetaCurveVAE(max_iter=20, **params).fit(X)
    assert one_schedule._state.best_epoch > 0 and one_schedule.n_iter_ == 20
    offset = max(score for *_, score in runs) - one_schedule.best_validation_score_
    assert len(runs) == 1  # no epoch left to anneal
    runs.clear()
    restarted = BetaCurveVAE(max_iter=70, **params).fit(X)
    first = one_schedule.validation_scores_
    assert restarted.validation_scores_[: len(first)] == first
    assert len(runs) == 2
    start, config, _ = runs[-1]
    assert (start, config.schedule_start, config.max_epochs) == (20, 20, 50)
    assert _training.learning_rate(config, start) == config.learning_rate_init == 2e-2
    assert config.min_epochs == start + math.ceil(0.8 * config.max_epochs)
    assert len(restarted.validation_scores_) == restarted.n_iter_ == 70
    kept = restarted.best_validation_score_ + offset
    assert any(kept == pytest.approx(score) for *_, score in runs)
    assert restarted.best_validation_score_ >= one_schedule.best_validation_score_
    # a max_iter just above the first schedule restarts over the few epochs left
    runs.clear()
    BetaCurveVAE(max_iter=25, **params).fit(X)
    assert [(s, c.max_epochs) for s, c, _ in runs] == [(0, 20), (20, 5)]
    # a first schedule stopped by a stalled held-out score is the whole fit
    stalls = {**params, "n_iter_no_change": 3}
    stopped = BetaCurveVAE(max_iter=20, **stalls).fit(X)
    assert stopped.n_iter_ < 20 and stopped._state.best_epoch > 0
    runs.clear()
    longer = BetaCurveVAE(max_iter=70, **stalls).fit(X)
    assert longer.validation_scores_ == stopped.validation_scores_
    assert all(c.max_epochs <= 20 for _, c, _ in runs)
    # with as many held-out curves as the rank test needs, one schedule spans max_iter
    monkeypatch.setattr(skvae._vae, "_MIN_DECISION_CURVES", 20)
    runs.clear()
    BetaCurveVAE(max_iter=70, **params).fit(X)
    assert runs[0][1].max_epochs == 70 and all(c.max_epochs < 70 for _, c, _ in runs[1:])


def test_a_diverged_restart_keeps_the_first_schedule_and_warns(X, monkeypatch):
    """A restart that diverges is a run that did not beat the kept weights: the fit
    returns the first schedule's best weights, with the epochs that completed in its
    history, and says in a warning what diverged and what it kept."""
    monkeypatch.setattr(skvae._vae, "_FIRST_SCHEDULE", 20)
    params = {**HELD_OUT, "n_iter_no_change": 50, "tol": 0.0, "random_state": 0}
    params["learning_rate_init"] = 2e-2  # the networks beat PCA within 20 epochs
    first = BetaCurveVAE(max_iter=20, **params).fit(X)
    assert first._state.best_epoch > 0
    real = _training.run_epoch
    calls = {"n": 0}

    def run_epoch(module, *args, **kwargs):  # the restart's fifth epoch blows up
        calls["n"] += 1
        result = real(module, *args, **kwargs)
        return (math.inf, *result[1:]) if calls["n"] == 25 else result

    monkeypatch.setattr(_training, "run_epoch", run_epoch)
    with pytest.warns(UserWarning, match=r"diverged at epoch 25 .*keeps the best weights"):
        vae = BetaCurveVAE(max_iter=70, **params).fit(X)
    assert_same_weights(vae, first)
    assert vae.n_iter_ == 24 and vae.validation_scores_[:20] == first.validation_scores_
    assert vae.best_validation_score_ == first.best_validation_score_
    assert vae._state.best_epoch == first._state.best_epoch
    np.testing.assert_array_equal(vae.transform(X), first.transform(X))


def plane_curves() -> np.ndarray:
    """90 curves on a plane plus noise: no network beats PCA there."""
    rng = np.random.default_rng(0)
    X_plane = rng.normal(size=(90, 2)) @ rng.normal(size=(2, 30))
    return X_plane + 0.05 * rng.normal(size=X_plane.shape)


@pytest.mark.parametrize("decided_on", ["hold-out", "folds"])
def test_pca_winning_the_first_schedule_ends_the_fit_without_a_convergence_warning(
    X, monkeypatch, decided_on
):
    """When the PCA start wins the first schedule, on the hold-out or on the folds, the
    fit returns PCA without a restart; the epochs of max_iter it did not use are no
    reason to ask for more."""
    monkeypatch.setattr(skvae._vae, "_FIRST_SCHEDULE", 10)
    if decided_on == "hold-out":
        params = {**HELD_OUT, "n_iter_no_change": 3, "tol": 0.0, "random_state": 0}
    else:
        X = plane_curves()
        params = {**SMALL_NET, "early_stopping": "auto", "tol": 0.0, "n_iter_no_change": 50}
    with pytest.warns(ConvergenceWarning):  # the same schedule, as the whole of max_iter
        BetaCurveVAE(max_iter=10, **params).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        vae = BetaCurveVAE(max_iter=45, **params).fit(X)
    assert vae._state.best_epoch == 0 and vae.n_iter_ == 10


@pytest.mark.parametrize(
    ("run_score", "passes_test", "kept"),
    [(2.0, True, True), (2.0, False, False), (0.5, True, False)],
)
def test_a_restart_is_kept_only_if_it_beats_the_kept_weights(
    monkeypatch, run_score, passes_test, kept
):
    """A restart's weights replace the kept ones only with a higher mean held-out score
    and a passed test on the per-curve gains (scored with the kept weights loaded, then
    the restart's)."""
    vae = BetaCurveVAE()
    module = skvae._vae.VAEModule(
        n_features=6, hidden=[4], latent_dims=2, activation="silu", noise="profiled"
    )
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = _training.TrainingState(epoch=40, best_epoch=30, best_validation=1.0)
    config = _training.TrainingConfig(
        max_epochs=80, batch_size=8, learning_rate_init=1e-2, schedule="cosine",
        decay_rate=0.9, tol=0.0, n_iter_no_change=5, kl_weight=1.0,
    )  # fmt: skip

    def restart(module, state, source, validation, config, generator, n_epochs, scaler, **_):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1.0)
        state.best_validation, state.best_epoch = run_score, state.epoch + 3
        state.epoch += n_epochs
        return "converged"

    class HeldOut:  # per-curve scores: the restarted weights differ from ``before``
        def per_curve(self, module):
            moved = any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
            return torch.full((5,), 3.0 if moved else 1.0, dtype=torch.float64)

    tested = []

    def beats(gains):
        tested.append(gains.tolist())
        return passes_test

    monkeypatch.setattr(vae, "_train", restart)
    reason = vae._train_if_better(module, state, None, HeldOut(), config, None, None, beats=beats)
    assert reason == "converged"
    assert tested == ([[2.0] * 5] if run_score > 1.0 else [])
    changed = any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert changed == kept
    assert (state.best_validation, state.best_epoch) == ((2.0, 43) if kept else (1.0, 30))
    assert state.epoch == 120


def test_no_early_stopping_has_no_validation_scores(X):
    vae = BetaCurveVAE(max_iter=2, **NO_HOLD_OUT).fit(X)
    assert vae.validation_scores_ is None
    assert vae.best_validation_score_ is None


def spy_on_pca_decision(monkeypatch) -> list:
    """The number of per-curve gains of every rank test against the PCA start."""
    pooled = []
    decide = skvae._vae._beats_pca_start

    def spy(gains):
        pooled.append(len(gains))
        return decide(gains)

    monkeypatch.setattr(skvae._vae, "_beats_pca_start", spy)
    return pooled


def test_early_stopping_auto_holds_out_curves_when_there_are_enough(X, monkeypatch):
    params = {**SMALL_NET, "early_stopping": "auto"}
    pooled = spy_on_pca_decision(monkeypatch)
    # 19 curves: too few to hold out by default (and partial_fit never holds out)
    assert BetaCurveVAE(max_iter=2, **params).fit(X[:19]).validation_scores_ is None
    # 59 curves: too few for three folds of 20, one hold-out of min(20, 59 // 4)
    assert BetaCurveVAE(max_iter=2, **params).fit(X[:59])._state.squared_error_count == 45
    assert pooled == [14]  # the best trained epoch always meets the start's rank test
    # 500 curves hold out 50, enough for the rank test: one hold-out, as early_stopping=True
    X_large = np.concatenate([X, X + 0.01, X - 0.01])[:500]
    vae = BetaCurveVAE(max_iter=2, **params).fit(X_large)
    assert vae._state.squared_error_count == 450 and pooled == [14, 50]
    assert len(vae.validation_scores_) == vae.n_iter_ == 2


def test_early_stopping_true_holds_out_at_least_20_curves(X):
    # small sets hold out at least min(20, n // 4) curves: 10 % of 40 would be 4
    vae = BetaCurveVAE(max_iter=2, **HELD_OUT).fit(X[:40])
    assert vae._state.squared_error_count == 40 - 10


@pytest.mark.parametrize("restores", [True, False], ids=["restore wins", "schedule end"])
def test_early_stopping_auto_cross_validates_the_pca_start_on_small_sets(X, monkeypatch, restores):
    """Under 50 held-out curves, every curve is held out by one of three folds and their
    gains over the PCA start meet in one rank test; when the networks win it, the fit
    trains on every curve, with no hold-out. If the folds' last epochs do not beat their
    kept weights by the same test, it stops at the epoch of the folds' best held-out
    score averaged over every curve, then anneals; if they do, it trains to the end."""
    pooled, runs, restore_tests = spy_on_pca_decision(monkeypatch), [], []
    train = _training.train

    def train_and_record(module, state, source, validation, config, generator, n_epochs, **kw):
        held_out = None if validation is None else validation.n_rows
        reason = train(module, state, source, validation, config, generator, n_epochs, **kw)
        runs.append((source.n_samples, held_out, n_epochs, list(state.validation), config))
        return reason

    def decide_restore(gains):
        restore_tests.append(len(gains))
        return not restores

    monkeypatch.setattr(_training, "train", train_and_record)
    monkeypatch.setattr(skvae._vae, "_beats_kept_epoch", decide_restore)
    params = {**SMALL_NET, "early_stopping": "auto", "n_iter_no_change": 5, "tol": 0.0}
    params["random_state"] = 0
    vae = BetaCurveVAE(max_iter=60, **params).fit(X)
    assert pooled == [len(X)] == restore_tests  # one test each, on every curve's gain
    folds = runs[:3]
    assert sorted(run[1] for run in folds) == [66, 67, 67]
    assert all(n_train + n_held_out == len(X) for n_train, n_held_out, *_ in folds)
    n_common = min(len(run[3]) for run in folds)
    pooled_scores = np.average(
        [run[3][:n_common] for run in folds], axis=0, weights=[run[1] for run in folds]
    )
    stop = int(np.argmax(pooled_scores)) + 1
    assert runs[3][:3] == (len(X), None, stop if restores else 60)  # every curve, no hold-out
    assert vae.validation_scores_ is None and vae.best_validation_score_ is None
    if restores and len(runs) == 5:  # stopped where the rate is high: annealed from there
        anneal = runs[4][4]
        assert runs[4][:2] == (len(X), None) and anneal.schedule_start == stop
        assert anneal.learning_rate_init < params.get("learning_rate_init", 1e-3)
        assert vae.n_iter_ == stop + anneal.max_epochs
    else:
        assert len(runs) == 4 and vae.n_iter_ == runs[3][2]
    pca = PCA(2).fit(X)
    vae_error = np.linalg.norm(vae.inverse_transform(vae.transform(X)) - X)
    assert vae_error < 0.9 * np.linalg.norm(pca.inverse_transform(pca.transform(X)) - X)


@pytest.mark.parametrize("diverges", [False, True], ids=["anneal", "diverged anneal"])
def test_a_run_the_folds_stop_early_is_annealed_from_there(X, monkeypatch, diverges):
    """A run on every curve stopped by the folds where the "cosine" rate is still high
    anneals from that epoch's rate over half as many epochs (at least n_iter_no_change),
    with no hold-out and no ConvergenceWarning. An anneal that diverges keeps the weights
    trained before that epoch, and says so."""
    monkeypatch.setattr(skvae._vae, "_beats_kept_epoch", lambda gains: False)
    monkeypatch.setattr(skvae._vae, "_best_pooled_epoch", lambda scores, weights: 10)
    runs = []
    train = _training.train

    def train_and_record(module, state, source, validation, config, generator, n_epochs, **kw):
        runs.append((source.n_samples, validation is None, n_epochs, config))
        return train(module, state, source, validation, config, generator, n_epochs, **kw)

    monkeypatch.setattr(_training, "train", train_and_record)
    params = {**SMALL_NET, "early_stopping": "auto", "n_iter_no_change": 5, "random_state": 0}
    params["learning_rate_init"] = 2e-2  # the networks beat PCA on the folds
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reference = BetaCurveVAE(max_iter=60, **params).fit(X)
    stopped, anneal = runs[3], runs[4][3]
    assert stopped[:3] == (len(X), True, 10) and runs[4][:3] == (len(X), True, 5)
    assert anneal.schedule_start == 10 and anneal.max_epochs == 5
    assert anneal.learning_rate_init == pytest.approx(_training.learning_rate(stopped[3], 9))
    assert reference.n_iter_ == 15 and len(runs) == 5
    if not diverges:
        return
    real, calls = _training.run_epoch, {"n": 0}

    def count(module, *args, **kwargs):
        calls["n"] += 1
        return real(module, *args, **kwargs)

    monkeypatch.setattr(_training, "run_epoch", count)
    BetaCurveVAE(max_iter=60, **params).fit(X)  # the same fit, counting its epochs
    n_epochs_in_all, calls["n"] = calls["n"], 0

    def run_epoch(module, *args, **kwargs):  # the anneal's third epoch blows up
        calls["n"] += 1
        result = real(module, *args, **kwargs)
        return (math.inf, *result[1:]) if calls["n"] == n_epochs_in_all - 2 else result

    monkeypatch.setattr(_training, "run_epoch", run_epoch)
    with pytest.warns(UserWarning, match=r"diverged at epoch 13 .*weights trained before"):
        vae = BetaCurveVAE(max_iter=60, **params).fit(X)
    assert vae.n_iter_ == 12 and vae._state.loss == reference._state.loss[:12]
    assert np.isfinite(vae.transform(X)).all()


def test_the_folds_best_epoch_is_pooled_over_every_held_out_curve():
    """The stop epoch is the argmax of the folds' scores weighted by their held-out
    curves, over the epochs every fold ran; a non-finite average never wins."""
    scores = [[0.0, 1.0, 0.5, 9.0], [0.0, 0.0, 2.0], [0.0, 0.5, 0.6]]
    assert skvae._vae._best_pooled_epoch(scores, [1, 1, 1]) == 3  # means 0, 0.5, 1.03
    assert skvae._vae._best_pooled_epoch(scores, [10, 1, 1]) == 2  # 0, 0.875, 0.63
    assert skvae._vae._best_pooled_epoch([[np.nan, 1.0, 0.0]], [5]) == 2


def test_a_schedule_trained_on_every_curve_does_not_use_a_larger_max_iter(X, monkeypatch):
    """When the folds' last epochs beat their kept weights, the fit trains every curve
    for a schedule of the first schedule's length, the one the folds judged: a larger
    max_iter is not used, and is no reason for a ConvergenceWarning."""
    monkeypatch.setattr(skvae._vae, "_FIRST_SCHEDULE", 20)
    monkeypatch.setattr(skvae._vae, "_beats_kept_epoch", lambda gains: True)
    runs = []
    train = _training.train

    def train_and_record(module, state, source, validation, config, *args, **kwargs):
        runs.append((source.n_samples, validation is None, config.max_epochs))
        return train(module, state, source, validation, config, *args, **kwargs)

    monkeypatch.setattr(_training, "train", train_and_record)
    params = {**SMALL_NET, "early_stopping": "auto", "tol": 0.0, "random_state": 0}
    params["learning_rate_init"] = 2e-2  # the networks beat PCA within 20 epochs
    with pytest.warns(ConvergenceWarning):  # the same schedule, as the whole of max_iter
        BetaCurveVAE(max_iter=20, **params).fit(X)
    runs.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        vae = BetaCurveVAE(max_iter=70, **params).fit(X)
    assert [run[2] for run in runs] == [20] * 4  # three folds, then every curve
    assert runs[3][:2] == (len(X), True) and vae.n_iter_ == 20


def test_the_folds_compare_their_kept_weights_with_their_last_epochs(X, monkeypatch):
    """The restore test ranks each held-out curve's score at the fold's last epoch minus
    its score at the fold's kept weights: zero for a fold whose best epoch was its last,
    and not all zero for one that kept an earlier epoch."""
    gains, folds = [], []
    train = _training.train

    def train_and_record(module, state, *args, **kwargs):
        reason = train(module, state, *args, **kwargs)
        folds.append((state.best_epoch, state.epoch))
        return reason

    def record(fold_gains):
        gains.append(fold_gains.clone())
        return True

    monkeypatch.setattr(_training, "train", train_and_record)
    monkeypatch.setattr(skvae._vae, "_beats_kept_epoch", record)
    params = {**SMALL_NET, "early_stopping": "auto", "random_state": 0}
    BetaCurveVAE(max_iter=40, learning_rate_init=5e-2, n_iter_no_change=3, **params).fit(X)
    sizes = [len(part) for part in np.array_split(np.arange(len(X)), 3)]
    per_fold = torch.split(gains[0], sizes)
    assert len(per_fold) == 3
    for (best, last), fold_gains in zip(folds[:3], per_fold):
        assert torch.equal(fold_gains, torch.zeros_like(fold_gains)) == (best == last)
    assert any(best < last for best, last in folds[:3])  # an earlier epoch was kept


def test_early_stopping_auto_returns_pca_of_every_curve_when_the_folds_do_not_beat_it():
    """Curves on a plane plus noise: no network beats PCA there, so the fit returns PCA of
    every curve, with the first fold's training history."""
    X_plane = plane_curves()
    vae = BetaCurveVAE(max_iter=20, **{**SMALL_NET, "early_stopping": "auto"}).fit(X_plane)
    assert vae._state.best_epoch == 0
    assert len(vae.validation_scores_) == vae.n_iter_ > 0
    assert vae._state.squared_error_count == 60  # the first fold trained on two thirds
    # the first fold's history, and the score of its PCA start on the curves it held out
    assert vae.best_validation_score_ > max(vae.validation_scores_)
    pca = PCA(2).fit(X_plane)
    expected = pca.inverse_transform(pca.transform(X_plane))
    np.testing.assert_allclose(vae.inverse_transform(vae.transform(X_plane)), expected, atol=1e-3)


# ---------------------------------------------------------------------------- progress


def test_verbose_0_is_silent(X, capsys):
    BetaCurveVAE(max_iter=2, verbose=0, **NO_HOLD_OUT).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_2_prints_one_line_per_epoch(X, capsys):
    vae = BetaCurveVAE(max_iter=3, verbose=2, **NO_HOLD_OUT).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["Epoch 1", "Epoch 2", "Epoch 3"]
    assert all("loss=" in line and "kl=" in line for line in lines)
    vae.partial_fit(X)
    assert capsys.readouterr().out.startswith("Epoch 4,")


def test_verbose_1_shows_a_tqdm_bar(X, capsys):
    pytest.importorskip("tqdm")
    BetaCurveVAE(max_iter=3, verbose=1, **NO_HOLD_OUT).fit(X)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "BetaCurveVAE" in captured.err and "epoch" in captured.err


def test_verbose_1_without_tqdm_prints_a_few_lines(X, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if not installed
    BetaCurveVAE(max_iter=20, verbose=1, **NO_HOLD_OUT).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert 2 <= len(lines) <= 11
    assert lines[-1].startswith("Epoch 20,")


# ------------------------------------------------------------------- KeyboardInterrupt


def interrupt_run_epoch(monkeypatch, on_call: int):
    """Make the ``on_call``-th epoch raise KeyboardInterrupt (as Ctrl-C would) mid-epoch."""
    original = _training.run_epoch
    calls = {"n": 0}

    def run_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == on_call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(_training, "run_epoch", run_epoch)


def test_keyboard_interrupt_keeps_completed_epochs(X, monkeypatch):
    interrupt_run_epoch(monkeypatch, on_call=3)
    vae = BetaCurveVAE(max_iter=10, **NO_HOLD_OUT)
    with pytest.warns(UserWarning, match="interrupted by the user after 2 epochs"):
        vae.fit(X)
    monkeypatch.undo()
    check_is_fitted(vae)
    assert vae.n_iter_ == 2 and len(vae.loss_curve_) == 2
    assert vae.transform(X[:4]).shape == (4, 2)
    # the model is exactly the one after two epochs of this training run
    reference = BetaCurveVAE(max_iter=10, **NO_HOLD_OUT)
    reference.partial_fit(X).partial_fit(X)
    assert_same_weights(vae, reference, networks_only=True)
    assert vae.loss_curve_ == reference.loss_curve_
    vae.partial_fit(X)  # and it can keep training
    assert vae.n_iter_ == 3


def test_keyboard_interrupt_in_progress_callback_keeps_that_epoch(X, monkeypatch, capsys):
    from skvae import _vae as _vae_fitting

    original = _vae_fitting.make_progress_callback

    def interrupting_progress(*args):
        on_epoch, close = original(*args)

        def callback(state):
            on_epoch(state)
            if state.epoch == 2:
                raise KeyboardInterrupt

        return callback, close

    monkeypatch.setattr(_vae_fitting, "make_progress_callback", interrupting_progress)
    vae = BetaCurveVAE(max_iter=10, verbose=2, **NO_HOLD_OUT)
    with pytest.warns(UserWarning, match="after 2 epochs"):
        vae.fit(X)
    monkeypatch.undo()
    assert capsys.readouterr().out.count("Epoch") == 2
    reference = BetaCurveVAE(max_iter=10, **NO_HOLD_OUT)
    reference.partial_fit(X).partial_fit(X)
    assert vae.n_iter_ == 2
    assert_same_weights(vae, reference, networks_only=True)


def test_keyboard_interrupt_with_early_stopping_keeps_the_best(X, monkeypatch):
    interrupt_run_epoch(monkeypatch, on_call=4)
    vae = BetaCurveVAE(max_iter=10, validation_fraction=0.25, **HELD_OUT)
    with pytest.warns(UserWarning, match="interrupted"):
        vae.fit(X)
    assert vae.n_iter_ == 3 and len(vae.validation_scores_) == 3
    # the best of the three epochs, or the PCA start that competes as epoch 0 (kept
    # unless an epoch beats it by the rank test, not merely on the mean score)
    if vae._state.best_epoch:
        assert vae.best_validation_score_ == max(vae.validation_scores_)
    else:
        pca = PCA(vae.latent_dims).fit(X)  # refitted on all the curves
        np.testing.assert_allclose(
            vae.inverse_transform(vae.transform(X)),
            pca.inverse_transform(pca.transform(X)),
            atol=1e-4 * np.abs(X).max(),
        )


def test_keyboard_interrupt_before_any_epoch_propagates(X, monkeypatch):
    interrupt_run_epoch(monkeypatch, on_call=1)
    vae = BetaCurveVAE(max_iter=10, **NO_HOLD_OUT)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(X)
    assert vars(vae) == vars(BetaCurveVAE(max_iter=10, **NO_HOLD_OUT))  # still unfitted
    with pytest.raises(NotFittedError):
        vae.transform(X)


def test_keyboard_interrupt_while_cross_validating_propagates(X, monkeypatch):
    """On 200 curves "auto" first trains three folds: none is a model to keep, so an
    interrupt in the second fold leaves the estimator as it was."""
    interrupt_run_epoch(monkeypatch, on_call=5)  # the second fold's second epoch
    vae = BetaCurveVAE(max_iter=3, **{**SMALL_NET, "early_stopping": "auto"})
    with pytest.raises(KeyboardInterrupt):
        vae.fit(X)
    assert vars(vae) == vars(BetaCurveVAE(max_iter=3, **{**SMALL_NET, "early_stopping": "auto"}))


# ------------------------------------------------------------------------ failed fits


def snapshot(estimator) -> dict:
    return dict(vars(estimator))


def assert_unchanged(estimator, before: dict):
    after = vars(estimator)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] is value, key


def test_failed_refit_leaves_a_fitted_estimator_as_it_was(X):
    frame = pd.DataFrame(X, columns=[f"t{i}" for i in range(X.shape[1])])
    vae = BetaCurveVAE(max_iter=2, **NO_HOLD_OUT).fit(frame)
    Z = vae.transform(frame)
    before = snapshot(vae)

    with pytest.raises(ValueError, match="NaN"):
        vae.fit(np.full((20, 30), np.nan))  # fails in validation, after resetting names
    assert_unchanged(vae, before)

    vae.set_params(early_stopping=True, validation_fraction=0.1)
    before = snapshot(vae)
    with pytest.raises(ValueError, match="early_stopping"):
        vae.fit(X[:3, :30])  # fails after validation: too few curves to hold out
    assert_unchanged(vae, before)
    assert vae.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(vae.feature_names_in_, frame.columns)
    np.testing.assert_array_equal(vae.transform(frame), Z)


def test_failed_first_fit_leaves_the_estimator_unfitted(X):
    vae = BetaCurveVAE(max_iter=2, **HELD_OUT)
    with pytest.raises(ValueError, match="early_stopping"):
        vae.fit(X[:3])
    assert not hasattr(vae, "n_features_in_")
    with pytest.raises(NotFittedError):
        check_is_fitted(vae)


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(latent_dims=3), "latent_dims"),
        (dict(hidden_layer_sizes=(8,)), "hidden_layer_sizes"),
        (dict(activation="tanh"), "activation"),
        (dict(residual=False, hidden_layer_sizes=(32, 32)), "hidden_layer_sizes, residual"),
        (dict(noise=0.5), "noise"),
        (dict(noise="learned"), "noise"),
    ],
)
def test_continuing_with_another_architecture_raises_and_keeps_the_model(X, change, named):
    vae = BetaCurveVAE(max_iter=2, warm_start=True, **NO_HOLD_OUT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X)
    before, n_iter = weights(vae), vae.n_iter_
    vae.set_params(**change)
    with pytest.raises(ValueError, match=f"warm_start=True continues .* but {named} changed"):
        vae.fit(X)
    with pytest.raises(ValueError, match=f"partial_fit continues .* but {named} changed"):
        vae.partial_fit(X)
    assert vae.n_iter_ == n_iter and vae.transform(X[:2]).shape == (2, 2)
    for key, value in weights(vae).items():
        assert torch.equal(value, before[key])
    vae.set_params(warm_start=False).fit(X)  # a fresh fit takes the new architecture
    assert vae.module_.config["latent_dims"] == vae.latent_dims


def test_validation_scores_stay_aligned_with_the_loss_curve(X):
    """Epochs without a hold-out (partial_fit) get NaN, so that validation_scores_ has one
    entry per epoch; none at all is None, never []."""
    vae = BetaCurveVAE(max_iter=3, n_iter_no_change=1, **HELD_OUT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X)
    n = vae.n_iter_
    best = vae.best_validation_score_
    vae.partial_fit(X)
    assert len(vae.validation_scores_) == len(vae.loss_curve_) == n + 1
    assert np.isnan(vae.validation_scores_[-1])
    assert not np.isnan(vae.validation_scores_[:n]).any()
    assert vae.best_validation_score_ == pytest.approx(max(vae.validation_scores_[:n]))
    assert best >= vae.best_validation_score_ - 1e-12
    streamed = BetaCurveVAE(**HELD_OUT).partial_fit(X)
    assert streamed.validation_scores_ is None and streamed.best_validation_score_ is None
    # an early-stopping warm start after partial_fit: NaN for the unvalidated epoch
    streamed.set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed.fit(X)
    scores = streamed.validation_scores_
    assert len(scores) == len(streamed.loss_curve_) == 3 and np.isnan(scores[0])
    assert not np.isnan(scores[1:]).any()
