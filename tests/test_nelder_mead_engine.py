"""The batched Nelder-Mead engine's own contract (``skvae._matching.nelder_mead``), in torch:
batched calls that converged problems drop out of, results independent of the batch,
never worse than the start, non-finite values, initial simplices, result types, input
validation, and tensors in and out.
"""

import dataclasses

import numpy as np
import pytest
import torch
from _nelder_mead_cases import _default_simplex, _quadratics, _rowsum, _run, _t
from numpy.testing import assert_allclose, assert_array_equal

from skvae._matching.nelder_mead import NelderMeadResult, batched_nelder_mead


def test_max_iter_cap_sets_not_converged():
    fun, _, x0 = _quadratics(5, 2, seed=4)
    res = _run(fun, x0, max_iter=3)
    assert_array_equal(res.nit, 3)
    assert not res.converged.any()


def test_fun_is_batched_and_converged_problems_drop_out():
    n, d = 200, 2
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(n, d))
    # Spread of starting distances and scales: problems converge at different times.
    x0 = centres + rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-3, 1, size=(n, 1))
    scales = _t(10.0 ** rng.uniform(-1, 1, size=(n, d)))
    c = _t(centres)
    calls = []

    def fun(X, idx):
        assert X.dtype == torch.float64 and X.ndim == 2 and X.shape == (idx.numel(), d)
        assert idx.dtype == torch.int64
        calls.append(idx.numpy().copy())
        return _rowsum(scales[idx] * (X - c[idx]) ** 2)

    res = _run(fun, x0, xatol=1e-6, fatol=1e-10)
    assert res.converged.all()
    sizes = np.array([c.size for c in calls])
    assert sizes[0] == n * (d + 1)  # whole initial simplices in one call
    assert len(calls) <= 3 * res.nit.max()  # at most 3 calls per iteration
    assert 20 * len(calls) < res.nfev.sum()
    # Every evaluation is accounted for: converged problems are not evaluated again.
    counts = np.bincount(np.concatenate(calls), minlength=n)
    assert_array_equal(counts, res.nfev)
    last_call = np.array([max(k for k, c in enumerate(calls) if i in c) for i in range(n)])
    assert np.unique(last_call).size > 10  # problems finish at many different steps
    assert sizes[-10:].max() < n // 4  # late calls only involve stragglers


def test_problems_are_independent_of_the_batch():
    # Same problem, same trajectory whatever else is in the batch (subset, order).
    fun, _, x0 = _quadratics(40, 3, seed=8)
    full = _run(fun, x0)
    rows = np.random.default_rng(9).permutation(40)[:13]
    part = _run(lambda X, idx: fun(X, torch.as_tensor(rows)[idx]), x0[rows])
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(part, field.name), getattr(full, field.name)[rows])


def test_never_worse_than_start():
    rng = np.random.default_rng(6)
    x0 = rng.uniform(-4, 4, size=(50, 3))

    def rastrigin(X, idx):
        return _rowsum(X**2 - 10.0 * torch.cos(2 * np.pi * X)) + 30.0

    for max_iter in (2, 10, None):
        res = _run(rastrigin, x0, max_iter=max_iter)
        assert np.all(res.fun <= rastrigin(_t(x0), None).numpy())
        assert_allclose(res.fun, rastrigin(_t(res.x), None).numpy())


def test_non_finite_values_are_treated_as_inf():
    target = np.array([1.0, 2.0])

    def fun(X, idx):
        f = _rowsum((X - _t(target)) ** 2)
        f[X[:, 0] < 0.5] = np.nan  # NaN region next to the minimum
        f[X[:, 1] > 2.6] = -np.inf  # -inf must not be mistaken for a minimum
        f[idx == 2] = np.nan  # a problem that is NaN everywhere
        return f

    x0 = np.array([[3.0, 0.0], [0.6, 0.6], [1.0, 1.0]])
    res = _run(fun, x0, xatol=1e-8, fatol=1e-12)
    assert not np.isnan(res.fun).any()
    assert res.converged[:2].all()
    assert_allclose(res.x[:2], [target, target], atol=1e-6)
    assert res.fun[2] == np.inf and not res.converged[2]
    assert_array_equal(res.x[2], x0[2])
    assert res.nfev[2] == 400  # default cap 200 * d: runs until the budget is spent


@pytest.mark.parametrize("form", ["scalar", "per-dim", "per-problem"])
def test_initial_step_forms(form):
    n, d = 4, 3
    x0 = np.zeros((n, d))  # non-degenerate even at zero
    step = {
        "scalar": 0.3,
        "per-dim": np.array([0.1, 0.2, 0.3]),
        "per-problem": np.linspace(0.1, 1.2, n * d).reshape(n, d),
    }[form]
    first = []

    def fun(X, idx):
        if not first:
            first.append(X.reshape(n, d + 1, d).numpy())
        return _rowsum((X - 1.0) ** 2)

    res = _run(fun, x0, initial_step=step)
    assert_array_equal(first[0], _default_simplex(x0, step))
    same = _run(fun, x0, initial_simplex=_default_simplex(x0, step))
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(res, field.name), getattr(same, field.name))


def test_deterministic_and_result_types():
    fun, _, x0 = _quadratics(30, 3, seed=7)
    a = _run(fun, x0, adaptive=True)
    b = _run(fun, x0, adaptive=True)
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(a, field.name), getattr(b, field.name))
    assert a.x.shape == (30, 3) and a.fun.shape == a.nit.shape == (30,)
    assert a.nit.dtype.kind == a.nfev.dtype.kind == "i" and a.converged.dtype == bool
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.x = None


def test_empty_batch_does_not_call_fun():
    def fun(X, idx):
        raise AssertionError("fun must not be called")

    res = _run(fun, np.zeros((0, 2)))
    assert res.x.shape == (0, 2) and res.fun.shape == res.converged.shape == (0,)


def _sq(X, idx):
    return _rowsum(X**2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x0": np.zeros(3)}, "x0 must be a 2-D array"),
        ({"x0": np.zeros((2, 0))}, "x0 must be a 2-D array"),
        ({"x0": np.array([[0.0, np.nan]])}, "x0 must contain only finite"),
        ({"initial_step": 0.0}, "strictly positive"),
        ({"initial_step": -0.1}, "strictly positive"),
        ({"initial_step": np.array([0.1, -0.1])}, "strictly positive"),
        ({"initial_step": np.ones(3)}, r"initial_step must be a scalar or have shape"),
        ({"initial_step": np.ones((3, 2))}, r"initial_step must be a scalar or have shape"),
        ({"initial_simplex": np.zeros((2, 2, 2))}, "initial_simplex must have shape"),
        ({"initial_simplex": np.full((2, 3, 2), np.inf)}, "initial_simplex must contain"),
        ({"xatol": -1.0}, "xatol must be a non-negative"),
        ({"fatol": np.nan}, "fatol must be a non-negative"),
        ({"max_iter": 0}, "max_iter must be None or an integer >= 1"),
        ({"max_fev": 2.5}, "max_fev must be None or an integer >= 1"),
        ({"fun": lambda X, idx: torch.zeros((len(X), 1))}, r"fun must return an array of shape"),
        ({"sync_every": 0}, "sync_every must be an integer >= 1"),
    ],
)
def test_invalid_inputs(kwargs, match):
    params = {"fun": _sq, "x0": np.zeros((2, 2))} | kwargs
    with pytest.raises(ValueError, match=match):
        _run(params.pop("fun"), params.pop("x0"), **params)


def test_tensor_inputs_and_outputs():
    fun, centres, x0 = _quadratics(6, 2, seed=11)
    res = batched_nelder_mead(fun, torch.as_tensor(x0, dtype=torch.float32), xatol=1e-8)
    assert all(isinstance(v, torch.Tensor) for v in vars(res).values())
    assert res.x.dtype == res.fun.dtype == torch.float64 and res.converged.dtype == torch.bool
    assert_allclose(res.x.numpy(), centres, atol=1e-4)
    # float32 starts are converted exactly: same as the float64 run from the same points.
    same = _run(fun, np.asarray(x0, dtype=np.float32).astype(np.float64), xatol=1e-8)
    assert_array_equal(res.x.numpy(), same.x)
