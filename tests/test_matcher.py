"""Tests for LatentMatcher (``skvae._matching.matcher``)."""

import copy
import functools
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize
from scipy.stats import norm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import skvae
from skvae import BetaCurveVAE, LatentMatcher
from skvae._matching import matcher as _matcher
from skvae._matching.problem import MatchProblem

# Train on one thread here: on shared, busy cores torch's multi-threaded small kernels
# are many times slower (the matcher itself always matches on one thread).
pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


def _objective(matcher_or_vae, X, prior_weight=0.0):
    """The matcher's objective on numpy codes and rows (float64 in, float64 out)."""
    vae = getattr(matcher_or_vae, "estimator_", matcher_or_vae)
    model = vae.latent_model()
    objective = MatchProblem.from_curves(
        model, X, model.noise / model.scaler.scale, kind="l2", prior_weight=prior_weight
    )

    def call(Z, rows, *, part=objective):
        return part(torch.as_tensor(Z, dtype=torch.float64), torch.as_tensor(rows)).numpy()

    call.objective = objective
    return call


@pytest.fixture(scope="module")
def matcher(fitted_vae, curves):
    return LatentMatcher(fitted_vae, prefit=True).fit(curves[0])


@pytest.fixture(scope="module")
def targets(curves):
    return curves[1]


@pytest.fixture(scope="module")
def result(matcher, targets):
    return matcher.match(targets)


def _half_missing(X, seed=0):
    rng = np.random.default_rng(seed)
    X = X.copy()
    for row in X:
        row[rng.choice(X.shape[1], X.shape[1] // 2, replace=False)] = np.nan
    return X


def _simplex(x0, step):
    sim = np.repeat(x0[None, :], x0.size + 1, axis=0)
    sim[np.arange(x0.size) + 1, np.arange(x0.size)] += step
    return sim


def test_match_diagnostics(matcher, result, targets):
    n, d = targets.shape[0], 2
    assert result.codes.shape == result.start_codes.shape == (n, d)
    assert result.codes.dtype == np.float64
    assert result.reconstructions.shape == targets.shape
    assert_array_equal(result.codes, matcher.transform(targets))
    assert_array_equal(result.reconstructions, matcher.inverse_transform(result.codes))
    for name in ("residuals", "objective", "start_residuals", "start_objective"):
        assert result[name].shape == (n,) and np.all(np.isfinite(result[name]))
    # prior_weight=0: the objective is the L2 error, as the reconstructions show
    assert_array_equal(result.objective, result.residuals)
    errors = np.linalg.norm(result.reconstructions - targets, axis=1)
    assert_allclose(result.residuals, errors, rtol=1e-4, atol=1e-5)
    assert result.converged.all()
    assert np.all(result.n_iter >= 1) and np.all(result.n_fev >= d + 1)


def test_never_worse_than_start_and_better_than_encoder(fitted_vae, result, targets):
    assert np.all(result.residuals <= result.start_residuals)
    encoded = fitted_vae.transform(targets)
    encoder_error = np.linalg.norm(fitted_vae.inverse_transform(encoded) - targets, axis=1)
    # The start is the encoder's code, unless a screened candidate is closer to the target.
    kept = np.all(np.abs(result.start_codes - encoded) <= 1e-12, axis=1)
    assert kept.mean() >= 0.6
    assert_allclose(result.start_residuals[kept], encoder_error[kept], rtol=1e-4, atol=1e-5)
    assert np.all(result.start_residuals[~kept] < encoder_error[~kept])
    # transform refines the encoder's means toward the decoder's best codes; the search
    # closes the rest of the encoder's gap
    means = fitted_vae.latent_model().encode(targets, return_std=False)
    means_error = np.linalg.norm(fitted_vae.inverse_transform(means) - targets, axis=1)
    assert result.residuals.mean() < 0.95 * means_error.mean()
    assert np.median(result.residuals) <= np.median(encoder_error) * (1 + 1e-9)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "zero", "n_candidates": 0},
        {"start": "zero"},
        {"prior_weight": 1.0},
        {"n_starts": 3, "random_state": 0},
    ],
)
def test_never_worse_than_start_other_settings(fitted_vae, targets, params):
    res = LatentMatcher(fitted_vae, prefit=True, **params).fit(targets).match(targets[:40])
    assert np.all(res.objective <= res.start_objective)
    if params.get("n_candidates") == 0:
        assert_array_equal(res.start_codes, 0.0)


def _screening_inputs(matcher, targets):
    """Targets with one long gap each, and the objective of the candidates for them."""
    X = targets[:30].copy()
    for i, row in enumerate(X):
        row[(3 * i) % 40 : (3 * i) % 40 + 60] = np.nan
    model = matcher.estimator_.latent_model()
    problem = MatchProblem.from_curves(model, X, 1.0, kind="l2", prior_weight=0.0)
    codes = torch.as_tensor(_matcher.extra_starts(64, 2, None))
    curves = model.decoder(codes.float()).detach()
    return X, problem, codes, curves


@pytest.mark.parametrize(
    "kind, sigma, prior_weight", [("l2", 1.0, 0.0), ("l2", 1.0, 0.5), ("posterior", 0.3, 0.0)]
)
def test_best_of_curves_picks_the_lowest_objective(matcher, targets, kind, sigma, prior_weight):
    X, _, codes, curves = _screening_inputs(matcher, targets)
    X[::4] = targets[:30:4]  # complete and partial targets mixed
    problem = MatchProblem.from_curves(
        matcher.estimator_.latent_model(), X, sigma, kind=kind, prior_weight=prior_weight
    )
    rows = torch.arange(len(X))
    best = problem.best_of_curves(codes, curves, rows).numpy()
    pairs = problem(codes.double().repeat(len(X), 1), rows.repeat_interleave(len(codes)))
    pairs = pairs.view(len(X), -1).numpy()
    # ranked in float32: the chosen code is the best one, up to float32 rounding
    chosen = pairs[np.arange(len(X)), best]
    assert_allclose(chosen, pairs.min(axis=1), rtol=1e-4)
    assert np.mean(best == pairs.argmin(axis=1)) >= 0.9
    assert_array_equal(problem.best_of_curves(codes, curves, rows[7:9]).numpy(), best[7:9])


def test_screened_start_is_the_better_of_start_and_best_candidate(matcher, targets, curves):
    X, problem, _, _ = _screening_inputs(matcher, targets)
    # A short search, so that where a search starts still shows in where it ends (a full
    # search from the encoder's start often finds the same optimum as from the screened one).
    short = {"maxiter": 10}
    # starts at the encoder's means: transform's refinement screens partial curves itself
    estimator = copy.deepcopy(matcher.estimator_).set_params(refine_steps=0)
    plain = LatentMatcher(estimator, prefit=True, n_candidates=0, **short).fit(X)
    screened = LatentMatcher(estimator, prefit=True, n_candidates=64, **short).fit(curves[0])
    # the prior points, then the codes of 64 of the fitting curves
    codes = torch.as_tensor(screened._candidates(2))
    assert codes.shape == (128, 2)
    curves = matcher.estimator_.latent_model().decoder(codes.float()).detach()
    before, after = plain.match(X), screened.match(X)
    rows = torch.arange(len(X))
    chosen = codes.double()[problem.best_of_curves(codes, curves, rows)]
    best = problem(chosen, rows).numpy()
    moved = best < before.start_objective
    assert moved.any()  # with 60 % of the curve hidden, the encoder is not always best
    assert_array_equal(after.start_objective, np.minimum(best, before.start_objective))
    assert_array_equal(after.start_codes[~moved], before.start_codes[~moved])
    assert_array_equal(after.start_codes[moved], chosen.numpy()[moved])
    assert np.all(after.objective <= after.start_objective)
    # the unscreened start is searched too: never worse than without screening
    assert np.all(after.objective <= before.objective)
    assert np.mean(after.objective) < np.mean(before.objective)
    # Screening is per target: a target's result does not depend on the others.
    assert_array_equal(screened.transform(X[3:5]), after.codes[3:5])


def test_reference_codes_are_codes_of_evenly_spaced_fitting_curves(fitted_vae, curves):
    X = curves[0][:49].copy()
    X[8] = np.nan  # no observed point: left out
    X[16, ::2] = np.nan  # partial curves are encoded as transform encodes them
    matcher = LatentMatcher(fitted_vae, prefit=True, n_candidates=7).fit(X)
    rows = [0, 16, 24, 32, 40, 48]
    assert_allclose(matcher.reference_codes_, fitted_vae.transform(X[rows]), atol=1e-12)
    few = LatentMatcher(fitted_vae, prefit=True).fit(X[:10])
    assert few.reference_codes_.shape == (9, 2)
    off = LatentMatcher(fitted_vae, prefit=True, n_candidates=0).fit(X)
    assert off.reference_codes_.shape == (0, 2)
    assert off._candidates(2) is None


def test_reference_codes_find_basins_that_the_prior_points_miss(fitted_vae, curves):
    """Partial targets screened against the codes of the fitting curves match at least as
    well as the codes of the complete curves they were cut from, where a few prior points
    (all near the origin) do worse (a short search from z = 0 shows the screened start)."""
    codes = fitted_vae.transform(curves[0])
    outer = np.argsort(np.linalg.norm(codes, axis=1))[-10:]  # the prior's sparse tails
    X = curves[0][np.sort(outer)]
    params = {"prefit": True, "n_candidates": 10, "start": "zero", "maxiter": 2}
    matcher = LatentMatcher(fitted_vae, **params).fit(X)
    targets = X.copy()
    for i, row in enumerate(targets):
        row[(7 * i) % 40 : (7 * i) % 40 + 60] = np.nan
    objective = _objective(matcher, targets)
    at_reference = objective(matcher.reference_codes_, np.arange(len(targets)))
    result = matcher.match(targets)
    assert np.all(result.objective <= at_reference * (1 + 1e-9))
    prior_only = LatentMatcher(fitted_vae, **params).fit(X)
    prior_only.reference_codes_ = np.empty((0, 2))
    assert np.mean(result.objective) < np.mean(prior_only.match(targets).objective)


def test_agrees_with_scipy(fitted_vae, targets, monkeypatch):
    """Same start and simplex, same objective: scipy's Nelder-Mead reaches the same codes."""
    X, step = targets[:12], 0.05
    est = LatentMatcher(fitted_vae, prefit=True, initial_step=step, n_candidates=0).fit(X)
    res = est.match(X)
    objective = _objective(fitted_vae, X)

    def seed_objective(z, x):  # the blog post's function: decode one code, L2 distance
        return np.linalg.norm(fitted_vae.inverse_transform(z[None])[0] - x)

    # numpy's default argsort may be unstable (SIMD); the engine breaks ties stably.
    monkeypatch.setattr(np, "argsort", functools.partial(np.argsort, kind="stable"))
    for i, x in enumerate(X):
        options = {"initial_simplex": _simplex(res.start_codes[i], step)}
        exact = minimize(
            lambda z, i=i: objective(z[None], np.array([i]))[0],
            res.start_codes[i],
            method="Nelder-Mead",
            options=options,
        )
        assert_allclose(res.codes[i], exact.x, atol=1e-10)
        # both runs happen here, on the same floats: the counts agree exactly on any CPU
        assert res.n_fev[i] == exact.nfev and res.n_iter[i] == exact.nit
        seed = minimize(
            seed_objective, res.start_codes[i], args=(x,), method="Nelder-Mead", options=options
        )
        assert abs(seed.fun - res.residuals[i]) <= 1e-3 * max(seed.fun, 1.0)
        assert_allclose(res.codes[i], seed.x, atol=5e-3)


def test_partial_targets_count_only_observed_points(matcher, result, targets):
    X_partial = _half_missing(targets)
    observed = ~np.isnan(X_partial)
    res = matcher.match(X_partial)
    errors = np.sqrt(np.nansum((res.reconstructions - X_partial) ** 2, axis=1))
    assert_allclose(res.residuals, errors, rtol=1e-4, atol=1e-5)
    assert np.all(res.residuals <= res.start_residuals)
    # The missing values do not matter: any values there, masked out, give the same codes.
    X_other = np.where(observed, targets, 1e3)
    objective = _objective(matcher, X_partial)
    other = _objective(matcher, X_other)
    other.objective.weights = objective.objective.weights
    rows = np.arange(len(targets))
    assert_array_equal(objective(res.codes, rows), other(res.codes, rows))
    # Completion from half the points is nearly as good as matching the whole curve.
    completed = np.linalg.norm(matcher.inverse_transform(res.codes) - targets, axis=1)
    assert np.median(completed) <= 1.5 * np.median(result.residuals)
    assert np.median(completed) < np.median(
        np.linalg.norm(matcher.estimator_.sample(len(targets), random_state=0) - targets, axis=1)
    )


def test_prior_weight_pulls_codes_toward_zero(fitted_vae, result, targets):
    res = LatentMatcher(fitted_vae, prefit=True, prior_weight=1.0).fit(targets).match(targets)
    norms, free_norms = (np.linalg.norm(Z, axis=1) for Z in (res.codes, result.codes))
    assert np.all(norms <= free_norms + 1e-3)
    assert norms.mean() < free_norms.mean()
    penalty = 0.5 * np.sum(res.codes**2, axis=1)
    assert_allclose(res.objective, res.residuals + penalty, rtol=1e-12)
    assert np.all(res.residuals >= result.residuals - 1e-6)  # closer to 0, farther from x


def test_deterministic_and_row_independent(matcher, targets, monkeypatch):
    X = _half_missing(targets)
    X[::2] = targets[::2]  # complete and partial targets mixed
    Z = matcher.transform(X)
    assert_array_equal(Z, matcher.transform(X))
    perm = np.random.default_rng(0).permutation(len(X))
    assert_array_equal(Z[perm], matcher.transform(X[perm]))
    assert_array_equal(Z[:7], matcher.transform(X[:7]))
    assert_array_equal(Z[3:4], matcher.transform(X[3:4]))
    monkeypatch.setattr(_matcher, "BLOCK_SIZE", 9)  # targets optimised in small blocks
    assert_array_equal(Z, matcher.transform(X))
    assert_array_equal(Z, pickle.loads(pickle.dumps(matcher)).transform(X))


def test_multi_start_is_deterministic_and_no_worse(matcher, result, targets):
    est = LatentMatcher(matcher.estimator_, prefit=True, n_starts=4, random_state=0)
    est.fit(targets)
    res = est.match(targets)
    assert_array_equal(res.codes, est.transform(targets))
    assert_array_equal(res.codes[5:9], est.transform(targets[5:9]))
    assert np.all(res.objective <= result.objective)
    other = LatentMatcher(matcher.estimator_, prefit=True, n_starts=4, random_state=1)
    other = other.fit(targets).transform(targets)
    assert_allclose(other, res.codes, atol=0.05)  # same minima, found from other starts


def test_multi_start_without_random_state_is_deterministic(matcher, result, targets):
    est = LatentMatcher(matcher.estimator_, prefit=True, n_starts=4).fit(targets)
    assert est.__sklearn_tags__().non_deterministic is False
    res = est.match(targets)
    assert_array_equal(res.codes, est.transform(targets))
    again = LatentMatcher(matcher.estimator_, prefit=True, n_starts=4).fit(targets[:5])
    assert_array_equal(res.codes, again.transform(targets))
    assert_array_equal(res.codes[5:9], est.transform(targets[5:9]))
    assert np.all(res.objective <= result.objective)
    # The extra starts: the unscrambled Halton points 1, 2, 3 through the normal quantiles.
    halton = np.array([[1 / 2, 1 / 3], [1 / 4, 2 / 3], [3 / 4, 1 / 9]])
    extra_starts = _matcher.extra_starts
    assert_allclose(extra_starts(3, 2, None), norm.ppf(halton), rtol=1e-12)
    assert_array_equal(extra_starts(3, 2, 0), extra_starts(3, 2, 0))
    assert not np.array_equal(extra_starts(3, 2, 0), extra_starts(3, 2, 1))


def test_torch_threads_restored(matcher, targets):
    n_threads = torch.get_num_threads()
    matcher.transform(targets[:3])
    assert torch.get_num_threads() == n_threads


def test_prefit_semantics(fitted_vae, curves):
    X = curves[0][:50]
    weights = [p.detach().clone() for p in fitted_vae.module_.parameters()]
    est = LatentMatcher(fitted_vae, prefit=True).fit(X)
    assert est.estimator_ is fitted_vae
    assert not hasattr(est, "n_iter_")  # it held the VAE's epochs: misleading
    for before, after in zip(weights, fitted_vae.module_.parameters()):
        assert torch.equal(before, after)
    with pytest.raises(NotFittedError, match="prefit=True"):
        LatentMatcher(BetaCurveVAE(), prefit=True).fit(X)
    with pytest.raises(ValueError, match="estimator=None"):
        LatentMatcher(prefit=True).fit(X)
    with pytest.raises(ValueError, match="prefit estimator was fitted on curves with 100"):
        LatentMatcher(fitted_vae, prefit=True).fit(X[:, :50])
    with pytest.raises(NotFittedError):
        LatentMatcher(fitted_vae, prefit=True).transform(X)


def test_fit_clones_and_keeps_incomplete_rows(curves):
    X = curves[0][:60].copy()
    X[:10, ::3] = np.nan
    X[10] = np.nan  # no observed point: left out
    vae = BetaCurveVAE(max_iter=3, random_state=0)
    est = LatentMatcher(vae).fit(X)
    assert not hasattr(vae, "module_") and est.estimator_ is not vae
    reference = BetaCurveVAE(max_iter=3, random_state=0).fit(np.delete(X, 10, axis=0))
    assert_allclose(est.estimator_.transform(X[11:]), reference.transform(X[11:]))
    assert est.transform(X[11:]).shape == (49, 2)
    default = LatentMatcher(random_state=0).set_params(estimator=None)
    assert default.fit(X[11:20]).estimator_.random_state == 0
    X[:, 0] = np.nan
    with pytest.raises(ValueError, match="no observed value"):
        LatentMatcher(vae).fit(X)


def test_bad_inputs(matcher, targets):
    with pytest.raises(ValueError, match="features"):
        matcher.transform(targets[:, :50])
    with pytest.raises(ValueError, match="latent_dims"):
        matcher.inverse_transform(np.zeros((2, 3)))
    X = targets[:3].copy()
    X[1, 4] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        matcher.transform(X)
    with pytest.raises(ValueError, match="too large"):
        matcher.transform(targets[:3] * 1e38)
    with pytest.raises(ValueError, match="n_starts"):
        clone(matcher).set_params(n_starts=0).fit(targets)
    with pytest.raises(ValueError, match="start"):
        clone(matcher).set_params(start="median").fit(targets)


def test_target_without_observed_points_warns(matcher, targets):
    X = targets[:3].copy()
    X[1] = np.nan
    with pytest.warns(UserWarning, match="1 target") as record:
        res = matcher.match(X)
    assert record[0].filename == __file__  # the caller's line, not skvae's or sklearn's
    with pytest.warns(UserWarning, match="1 target") as record:
        matcher.transform(X)  # through scikit-learn's set_output wrapper
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="1 target") as record:
        matcher.fit_transform(X[[0, 1]])
    assert record[0].filename == __file__
    assert res.residuals[1] == 0.0
    assert_array_equal(res.codes[1], res.start_codes[1])
    assert_array_equal(res.codes[[0, 2]], matcher.transform(targets[[0, 2]]))


def test_maxiter_caps_iterations(matcher, targets):
    res = LatentMatcher(matcher.estimator_, prefit=True, maxiter=2).fit(targets)
    res = res.match(targets[:20])
    assert np.all(res.n_iter <= 2) and not res.converged.all()
    assert np.all(res.objective <= res.start_objective)


def test_max_iter_is_not_a_parameter_of_the_matcher(matcher):
    # the Nelder-Mead cap is named as scipy names it; ``max_iter`` would make scikit-learn
    # take the matcher's fit for an iterative one
    assert "maxiter" in matcher.get_params() and "max_iter" not in matcher.get_params()
    with pytest.raises(TypeError, match="max_iter"):
        LatentMatcher(matcher.estimator_, prefit=True, max_iter=2)


def test_a_saved_matcher_with_max_iter_loads_with_maxiter(matcher, targets, tmp_path):
    import json
    import zipfile

    path = tmp_path / "matcher.skvae"
    saved = LatentMatcher(matcher.estimator_, prefit=True, maxiter=2).fit(targets)
    skvae.save(saved, path)
    renamed = tmp_path / "renamed.skvae"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(renamed, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".json") and b'"maxiter"' in data:
                data = data.replace(b'"maxiter"', b'"max_iter"')
                assert "max_iter" in json.loads(data)["root"]["params"]
            target.writestr(info, data)
    loaded = skvae.load(renamed)
    assert loaded.maxiter == 2
    assert_array_equal(loaded.transform(targets[:5]), saved.transform(targets[:5]))


def test_feature_names_out_and_fit_transform(matcher, targets):
    assert_array_equal(matcher.get_feature_names_out(), ["latentmatcher0", "latentmatcher1"])
    Z = LatentMatcher(matcher.estimator_, prefit=True).fit_transform(targets[:9])
    assert_array_equal(Z, matcher.transform(targets[:9]))


@pytest.mark.parametrize("latent_dims", [1, 3])
def test_other_latent_dims(curves, latent_dims):
    X = curves[0][:80]
    vae = BetaCurveVAE(latent_dims, max_iter=3, random_state=0).fit(X)
    est = LatentMatcher(vae, prefit=True).fit(X)
    res = est.match(X[:10])
    assert res.codes.shape == (10, latent_dims)
    assert np.all(res.residuals <= res.start_residuals)
    assert_array_equal(res.codes[2:5], est.transform(X[2:5]))


@pytest.fixture
def shared_thread_count(monkeypatch):
    """torch's thread count as one value shared by every thread of the process."""
    count = {"value": 3}
    monkeypatch.setattr(torch, "get_num_threads", lambda: count["value"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: count.update(value=n))
    return count


def test_one_torch_thread_restores_the_count_when_threads_overlap(shared_thread_count):
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from skvae._utils import one_torch_thread

    # The second block opens at one thread (set by the first) and closes last.
    events = {name: threading.Event() for name in ("a_in", "b_in", "a_out")}

    def first():
        with one_torch_thread():
            events["a_in"].set()
            events["b_in"].wait(5)
        events["a_out"].set()

    def second():
        events["a_in"].wait(5)
        with one_torch_thread():
            assert shared_thread_count["value"] == 1
            events["b_in"].set()
            events["a_out"].wait(5)

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(first), pool.submit(second)]:
            future.result()
    assert shared_thread_count["value"] == 3

    def work(i):
        with one_torch_thread():
            time.sleep(0.0002 * (i % 3))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(400)))
    assert shared_thread_count["value"] == 3


def test_transform_from_several_threads(matcher, targets):
    from concurrent.futures import ThreadPoolExecutor

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(matcher.transform, [targets[i : i + 2] for i in range(0, 16, 2)])
            )
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert_array_equal(np.vstack(results), matcher.transform(targets[:16]))
