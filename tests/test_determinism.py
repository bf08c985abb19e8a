"""Determinism: the same data and random_state give bit-identical results across fits,
inference batch sizes and processes, and fitting leaves the global random streams alone."""

import json
import textwrap
import warnings

import numpy as np
import pytest
import torch
from _helpers import assert_identical, fitted_state, run_in_fresh_process
from sklearn.base import clone

import skvae
from skvae import BetaCurveVAE
from skvae._chunks import CPU_CHUNK_SIZE as CHUNK_SIZE

LatentMatcher = getattr(skvae, "LatentMatcher", None)

PARAMS = {"hidden_layer_sizes": (32, 16), "max_iter": 6, "batch_size": 64}


pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


def _outputs(vae, X):
    Z = vae.transform(X)
    return {
        "transform": Z,
        "inverse_transform": vae.inverse_transform(Z),
        "sample": vae.sample(7, random_state=3),
        "score_samples": vae.score_samples(X),
    }


@pytest.fixture(scope="module")
def X_train(curves):
    return curves[0][:200]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_refit_is_bit_identical(X_train, curves, early_stopping):
    params = {**PARAMS, "early_stopping": early_stopping, "random_state": 7}
    first = BetaCurveVAE(**params).fit(X_train)
    second = BetaCurveVAE(**params).fit(X_train)
    assert_identical(fitted_state(first), fitted_state(second))
    assert_identical(_outputs(first, curves[1]), _outputs(second, curves[1]))
    # refitting the same object, a clone, and a RandomState seeded alike: the same model
    assert_identical(fitted_state(first.fit(X_train)), fitted_state(second))
    assert_identical(fitted_state(clone(first).fit(X_train)), fitted_state(second))
    seeded = clone(first).set_params(random_state=np.random.RandomState(7)).fit(X_train)
    assert_identical(seeded.module_, second.module_)


def test_random_state_matters(X_train, curves):
    # without a hold-out: a short fit that does not beat its PCA start returns PCA, which
    # is the same for every random_state
    a = BetaCurveVAE(**PARAMS, early_stopping=False, random_state=0).fit(X_train)
    b = BetaCurveVAE(**PARAMS, early_stopping=False, random_state=1).fit(X_train)
    assert not np.array_equal(a.transform(curves[1]), b.transform(curves[1]))


def test_partial_fit_sequence_is_bit_identical(X_train):
    runs = []
    for _ in range(2):
        vae = BetaCurveVAE(**PARAMS, random_state=5)
        for _ in range(3):
            vae.partial_fit(X_train)
        runs.append(fitted_state(vae))
    assert_identical(*runs)


# --------------------------------------------------------- inference batch sizes


@pytest.fixture(scope="module")
def X_many(curves):
    """More rows than two inference chunks, so chunk boundaries and padding are exercised."""
    X = np.concatenate([curves[1]] * 12)[: 2 * CHUNK_SIZE + 77]
    return X + np.random.default_rng(0).normal(scale=0.01, size=X.shape)


def _row_subsets():
    edges = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 76]
    return edges + list(range(100, 2 * CHUNK_SIZE, 97))


@pytest.mark.parametrize("method", ["transform", "score_samples", "inverse_transform"])
def test_rows_independent_of_batch(fitted_vae, X_many, method):
    X = fitted_vae.transform(X_many) if method == "inverse_transform" else X_many
    function = getattr(fitted_vae, method)
    full = function(X)
    # row by row
    rows = _row_subsets()
    one_by_one = np.array([function(X[i : i + 1])[0] for i in rows])
    assert np.array_equal(one_by_one, full[rows])
    # shuffled rows in chunks of irregular sizes
    order = np.random.default_rng(1).permutation(len(X))
    bounds = [0, 3, 200, 700, 701, len(X)]
    parts = [function(X[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]
    shuffled = np.empty_like(full)
    shuffled[order] = np.concatenate(parts)
    assert np.array_equal(shuffled, full)
    # the same rows in reverse order and in Fortran memory order
    assert np.array_equal(function(X[::-1])[::-1], full)
    assert np.array_equal(function(np.asfortranarray(X)), full)


def test_sample_prefix_and_repeat(fitted_vae):
    big = fitted_vae.sample(CHUNK_SIZE + 10, random_state=4)
    assert np.array_equal(fitted_vae.sample(3, random_state=4), big[:3])
    assert np.array_equal(fitted_vae.sample(CHUNK_SIZE + 10, random_state=4), big)
    rng = np.random.RandomState(4)
    assert np.array_equal(fitted_vae.sample(5, random_state=rng), big[:5])
    assert not np.array_equal(fitted_vae.sample(5, random_state=rng), big[:5])  # advanced


def test_repeated_calls_identical(fitted_vae, X_many):
    assert_identical(_outputs(fitted_vae, X_many), _outputs(fitted_vae, X_many))


# ------------------------------------------------------------------ global RNGs


@pytest.mark.parametrize("early_stopping", [False, True])
def test_global_random_state_untouched(X_train, curves, early_stopping):
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the legacy global stream is what must stay put)
    torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    vae = BetaCurveVAE(**PARAMS, early_stopping=early_stopping, random_state=0).fit(X_train)
    vae.partial_fit(X_train)
    _outputs(vae, curves[1])
    vae.score(curves[1])
    assert torch.equal(torch.get_rng_state(), torch_before)
    numpy_after = np.random.get_state()  # noqa: NPY002
    assert numpy_after[0] == numpy_before[0] and np.array_equal(numpy_after[1], numpy_before[1])
    assert numpy_after[2:] == numpy_before[2:]


# --------------------------------------------------------------------- processes

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    torch.set_num_threads(int(sys.argv[1]))
    from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
    X, _ = make_beta_curves(260, random_state=0)
    params = json.loads(sys.argv[2])
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    vae = BetaCurveVAE(**params).fit(X[:200])
    Z = vae.transform(X[200:])
    np.savez(
        sys.argv[3],
        transform=Z,
        inverse_transform=vae.inverse_transform(Z),
        sample=vae.sample(7, random_state=3),
        score_samples=vae.score_samples(X[200:]),
        loss_curve=np.array(vae.loss_curve_),
        matched=LatentMatcher(vae, prefit=True, n_starts=2, random_state=0).fit(X).transform(
            np.where(np.arange(100) % 3 == 0, np.nan, X[200:210])
        ),
        **{k: v.numpy() for k, v in vae.module_.state_dict().items()},
    )
    """
)


def test_bit_identical_across_processes(tmp_path):
    from skvae import make_beta_curves

    params = {**PARAMS, "random_state": 11, "early_stopping": True}
    threads = torch.get_num_threads()
    out = tmp_path / "child.npz"
    run_in_fresh_process(SCRIPT, threads, json.dumps(params), out, cwd=tmp_path)
    X, _ = make_beta_curves(260, random_state=0)
    vae = BetaCurveVAE(**params).fit(X[:200])
    expected = {
        **_outputs(vae, X[200:]),
        "loss_curve": np.array(vae.loss_curve_),
        "matched": LatentMatcher(vae, prefit=True, n_starts=2, random_state=0)
        .fit(X)
        .transform(np.where(np.arange(100) % 3 == 0, np.nan, X[200:210])),
        **{k: v.numpy() for k, v in vae.module_.state_dict().items()},
    }
    with np.load(out) as child:
        assert set(child.files) == set(expected)
        for name, value in expected.items():
            assert np.array_equal(child[name], value), name


# ----------------------------------------------------------------- LatentMatcher


def _partial(X):
    X = X.copy()
    X[::2, ::3] = np.nan
    X[1, 10:] = np.nan
    return X


@pytest.mark.skipif(LatentMatcher is None, reason="skvae.LatentMatcher missing")
def test_matcher_rows_independent_of_batch(fitted_vae, curves):
    matcher = LatentMatcher(fitted_vae, prefit=True, n_starts=2, random_state=0).fit(curves[0])
    X = _partial(curves[1][:40])
    full = matcher.transform(X)
    rows = [0, 1, 2, 17, 39]
    assert np.array_equal(np.array([matcher.transform(X[i : i + 1])[0] for i in rows]), full[rows])
    order = np.random.default_rng(2).permutation(len(X))
    parts = [matcher.transform(X[order[a:b]]) for a, b in [(0, 9), (9, 10), (10, 40)]]
    shuffled = np.empty_like(full)
    shuffled[order] = np.concatenate(parts)
    assert np.array_equal(shuffled, full)
    result = matcher.match(X)
    assert np.array_equal(result.codes, full)
    assert np.array_equal(result.reconstructions, matcher.inverse_transform(full))


@pytest.mark.skipif(LatentMatcher is None, reason="skvae.LatentMatcher missing")
def test_matcher_refit_is_bit_identical(X_train, curves):
    X = _partial(curves[1][:20])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        torch_before = torch.get_rng_state()
        vae = BetaCurveVAE(**PARAMS, random_state=3)
        matcher = LatentMatcher(vae, n_starts=3, random_state=4).fit(X_train)
        runs.append((fitted_state(matcher.estimator_), matcher.match(X)))
        assert torch.equal(torch.get_rng_state(), torch_before)
    assert_identical(runs[0][0], runs[1][0])
    assert_identical(dict(runs[0][1]), dict(runs[1][1]))


@pytest.mark.parametrize(
    "layout",
    ["C float64", "C float32", "Fortran", "reversed rows", "read-only", "huge values"],
)
@pytest.mark.parametrize("scaled", [True, False])
def test_scaling_on_the_device_is_bit_identical_to_scaling_on_the_host(
    fitted_vae, curves, layout, scaled
):
    """Accelerators scale raw rows on the device; the CPU scales with numpy. Run both on
    the CPU: the same bits, for every input layout the estimators accept."""
    from skvae._chunks import apply_in_chunks

    X = curves[1][:70].copy()
    X = {
        "C float64": X,
        "C float32": X.astype(np.float32),
        "Fortran": np.asfortranarray(X),
        "reversed rows": X[::-1],
        "read-only": X,
        "huge values": X * 1e38,
    }[layout]
    if layout == "read-only":
        X.setflags(write=False)
    model = fitted_vae.latent_model()
    kwargs = dict(scaler=model.scaler if scaled else None, chunk_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from either path
        results = [
            apply_in_chunks(
                lambda t: model.encoder(t)[0], X, 2, stage_on_device=on_device, **kwargs
            )
            for on_device in (False, True)
        ]
    np.testing.assert_array_equal(results[0], results[1])
