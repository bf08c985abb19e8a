"""Tests for the batched Nelder-Mead engine (``skvae._nelder_mead``), in torch.

The objectives below sum over coordinates column by column, in order, so that a point's
value does not depend on the batch it is evaluated in (the engine's contract).
"""

import dataclasses
import functools

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

from skvae._nelder_mead import NelderMeadResult, batched_nelder_mead

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _rowsum(T):
    out = T[:, 0].clone()
    for j in range(1, T.shape[1]):
        out += T[:, j]
    return out


def _np(res):
    """The result's fields as numpy arrays."""
    return NelderMeadResult(**{k: v.cpu().numpy() for k, v in vars(res).items()})


def _run(fun, x0, **kwargs):
    return _np(batched_nelder_mead(fun, x0, **kwargs))


def _default_simplex(x0, step=0.5):
    x0 = np.asarray(x0, dtype=float)
    n, d = x0.shape
    sim = np.repeat(x0[:, None, :], d + 1, axis=1)
    sim[:, np.arange(d) + 1, np.arange(d)] += np.broadcast_to(step, (n, d))
    return sim


def _scipy_reference(monkeypatch, fun, simplices, **options):
    """Run scipy's Nelder-Mead problem by problem on the given simplices.

    scipy sorts the simplex with ``np.argsort(fsim)`` (default kind). On
    AVX-512 CPUs numpy dispatches that to an *unstable* SIMD sort, so scipy's
    tie-breaking is machine dependent; the batched engine always uses a stable
    sort. Making numpy's argsort stable while scipy runs gives a deterministic
    reference that the engine reproduces exactly, ties included.
    """
    out = []
    with monkeypatch.context() as m:
        m.setattr(np, "argsort", functools.partial(np.argsort, kind="stable"))
        for i, sim in enumerate(simplices):
            idx = np.array([i])
            out.append(
                minimize(
                    lambda x, idx=idx: float(fun(_t(x[None, :]), torch.as_tensor(idx))[0]),
                    sim[0],
                    method="Nelder-Mead",
                    options=dict(initial_simplex=sim, **options),
                )
            )
    return out


def _quadratics(n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n, d))
    scales = _t(10.0 ** rng.uniform(-1.5, 1.5, size=(n, d)))
    c = _t(centres)

    def fun(X, idx):
        return _rowsum(scales[idx] * (X - c[idx]) ** 2)

    return fun, centres, rng.normal(size=(n, d))


def _rosenbrock(X, idx):
    return _rowsum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2)


def _problem(name):
    """(fun, x0, true minimisers or None, engine kwargs) for comparison tests."""
    if name == "quadratics-2d":
        fun, centres, x0 = _quadratics(12, 2, seed=0)
        return fun, x0, centres, {"xatol": 1e-6, "fatol": 1e-10}
    if name == "rosenbrock-2d":
        x0 = np.array([[-1.2, 1.0], [0.0, 0.0], [2.0, 2.0], [-1.5, -1.0], [1.5, 0.5]])
        return _rosenbrock, x0, np.ones_like(x0), {"xatol": 1e-7, "fatol": 1e-12}
    if name == "rosenbrock-3d":
        x0 = np.array([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.5], [1.3, 0.7, 0.8]])
        return _rosenbrock, x0, None, {"xatol": 1e-6, "fatol": 1e-10}
    if name == "quadratics-4d-adaptive":
        fun, centres, x0 = _quadratics(6, 4, seed=1)
        return fun, x0, centres, {"xatol": 1e-6, "fatol": 1e-10, "adaptive": True}
    if name == "ties":  # isotropic quadratics from 0: exactly tied vertex values
        centres = np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 2.0], [0.0, 1.0, -1.0], [3.0, 3.0, 0.0]])

        def fun(X, idx):
            return _rowsum((X - _t(centres)[idx]) ** 2)

        return fun, np.zeros_like(centres), centres, {"xatol": 1e-6, "fatol": 1e-10}
    rng = np.random.default_rng(10)
    if name == "rastrigin-3d":  # multimodal and non-convex: exercises shrink steps

        def fun(X, idx):
            return _rowsum(X**2 - 10.0 * torch.cos(2 * np.pi * X))

        return fun, rng.uniform(-3, 3, size=(10, 3)), None, {}
    if name == "plateaus-3d":  # piecewise constant: ties and shrinks everywhere
        centres = _t(rng.normal(size=(30, 3)))

        def fun(X, idx):
            return torch.floor(4.0 * _rowsum((X - centres[idx]).abs()))

        return fun, rng.normal(size=(30, 3)), None, {"adaptive": True}
    raise AssertionError(name)


PROBLEMS = [
    "quadratics-2d",
    "rosenbrock-2d",
    "rosenbrock-3d",
    "quadratics-4d-adaptive",
    "ties",
    "rastrigin-3d",
    "plateaus-3d",
]


def _assert_same_as_scipy(res, ref):
    # The algorithm is mirrored operation by operation, so even the floating
    # point results coincide; the tolerance only guards against libm changes.
    assert_array_equal(res.nit, [r.nit for r in ref])
    assert_array_equal(res.nfev, [r.nfev for r in ref])
    assert_array_equal(res.converged, [r.success for r in ref])
    assert_allclose(res.x, np.array([r.x for r in ref]), rtol=1e-12, atol=1e-12)
    assert_allclose(res.fun, [r.fun for r in ref], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", PROBLEMS)
def test_matches_scipy(monkeypatch, name):
    fun, x0, minimisers, kwargs = _problem(name)
    res = _run(fun, x0, **kwargs)
    options = {
        "xatol": kwargs.get("xatol", 1e-4),
        "fatol": kwargs.get("fatol", 1e-4),
        "adaptive": kwargs.get("adaptive", False),
    }
    ref = _scipy_reference(monkeypatch, fun, _default_simplex(x0), **options)
    _assert_same_as_scipy(res, ref)
    if minimisers is not None:
        assert res.converged.all()
        assert_allclose(res.x, minimisers, atol=1e-4)


def test_matches_scipy_with_explicit_initial_simplex(monkeypatch):
    fun, centres, _ = _quadratics(8, 3, seed=2)
    sim = np.random.default_rng(3).normal(size=(8, 4, 3))
    res = _run(fun, sim[:, 0], initial_simplex=sim, xatol=1e-6, fatol=1e-10)
    _assert_same_as_scipy(res, _scipy_reference(monkeypatch, fun, sim, xatol=1e-6, fatol=1e-10))
    assert_allclose(res.x, centres, atol=1e-4)


@pytest.mark.parametrize(
    "caps",
    [
        {"max_iter": 1},
        {"max_iter": 7},
        {"max_fev": 1},
        {"max_fev": 3},
        {"max_fev": 5},
        {"max_fev": 7},
        {"max_fev": 8},
        {"max_fev": 15},
        {"max_fev": 16},
        {"max_fev": 40},
        {"max_iter": 25, "max_fev": 40},
    ],
)
def test_caps_match_scipy(monkeypatch, caps):
    # Small evaluation budgets stop runs in every phase; 7, 8, 15 and 16 stop some
    # problems in the middle of a shrink step (1 or 2 of the 3 vertices evaluated).
    fun, x0, _, _ = _problem("rastrigin-3d")
    res = _run(fun, x0, **caps)
    options = {"maxiter": caps.get("max_iter"), "maxfev": caps.get("max_fev")}
    _assert_same_as_scipy(res, _scipy_reference(monkeypatch, fun, _default_simplex(x0), **options))
    assert not res.converged.any()
    assert np.all(res.nfev <= caps.get("max_fev", np.inf))
    assert np.all(res.nit <= caps.get("max_iter", np.inf))


def test_default_caps_match_scipy(monkeypatch):
    def unbounded(X, idx):  # never converges: the default caps (200 * d) stop it
        return X[:, 0] * 1.0 + X[:, 1] * -2.0 + X[:, 2] * 0.5

    x0 = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    res = _run(unbounded, x0)
    _assert_same_as_scipy(res, _scipy_reference(monkeypatch, unbounded, _default_simplex(x0)))
    assert not res.converged.any()
    assert np.all(np.maximum(res.nit, res.nfev) == 600)


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


def test_inf_barrier_matches_scipy(monkeypatch):
    def fun(X, idx):  # +inf outside a box: scipy handles inf the same way
        f = _rosenbrock(X, idx)
        return torch.where((X.abs() < 1.5).all(dim=1), f, np.inf)

    x0 = np.array([[-1.2, 1.0], [1.0, -1.0], [0.5, 1.4]])
    res = _run(fun, x0, xatol=1e-6, fatol=1e-10)
    ref = _scipy_reference(monkeypatch, fun, _default_simplex(x0), xatol=1e-6, fatol=1e-10)
    _assert_same_as_scipy(res, ref)


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


SCHEDULES = [
    {"sync_every": 1, "dense": True},
    {"sync_every": 3, "dense": False},
    {"sync_every": 5, "dense": True},
    {"sync_every": 16, "dense": True},
]


@pytest.mark.parametrize("name", ["rastrigin-3d", "plateaus-3d", "rosenbrock-2d"])
@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_schedule_does_not_change_results(name, schedule):
    # The GPU schedule (dense second evaluations, deferred shrinks, rare compactions)
    # reaches exactly the default CPU schedule's results, which match scipy's.
    fun, x0, _, kwargs = _problem(name)
    reference = _run(fun, x0, **kwargs)
    res = _run(fun, x0, **kwargs, **schedule)
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(res, field.name), getattr(reference, field.name))


def test_schedule_with_caps_matches_scipy(monkeypatch):
    fun, x0, _, _ = _problem("rastrigin-3d")
    for caps in ({"max_fev": 8}, {"max_fev": 16}, {"max_iter": 7}):
        res = _run(fun, x0, sync_every=4, dense=True, **caps)
        options = {"maxiter": caps.get("max_iter"), "maxfev": caps.get("max_fev")}
        ref = _scipy_reference(monkeypatch, fun, _default_simplex(x0), **options)
        _assert_same_as_scipy(res, ref)


def test_dense_schedule_synchronises_rarely():
    # Between compactions the dense schedule evaluates the whole working set: calls have
    # sizes fixed over each stretch of sync_every iterations (no data-dependent shapes).
    fun, _, x0 = _quadratics(50, 2, seed=3)
    sizes = []
    res = _run(lambda X, idx: sizes.append(len(idx)) or fun(X, idx), x0, sync_every=8, dense=True)
    assert res.converged.all()
    assert sizes[0] == 50 * 3
    loop = sizes[1:]
    assert len(set(loop)) < len(loop) / 8


def test_tensor_inputs_and_outputs():
    fun, centres, x0 = _quadratics(6, 2, seed=11)
    res = batched_nelder_mead(fun, torch.as_tensor(x0, dtype=torch.float32), xatol=1e-8)
    assert all(isinstance(v, torch.Tensor) for v in vars(res).values())
    assert res.x.dtype == res.fun.dtype == torch.float64 and res.converged.dtype == torch.bool
    assert_allclose(res.x.numpy(), centres, atol=1e-4)
    # float32 starts are converted exactly: same as the float64 run from the same points.
    same = _run(fun, np.asarray(x0, dtype=np.float32).astype(np.float64), xatol=1e-8)
    assert_array_equal(res.x.numpy(), same.x)


@CUDA
def test_cuda_agrees_with_cpu():
    fun_cpu, _, x0 = _quadratics(64, 3, seed=12)
    fun_gpu, _, _ = _quadratics(64, 3, seed=12)
    cuda = torch.device("cuda")

    def on_gpu(X, idx):
        assert X.device.type == "cuda" and idx.device.type == "cuda"
        return fun_gpu(X.cpu(), idx.cpu()).to(cuda)

    cpu = _run(fun_cpu, x0)
    gpu = batched_nelder_mead(on_gpu, torch.as_tensor(x0, device=cuda))
    assert gpu.x.device.type == "cuda"
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(_np(gpu), field.name), getattr(cpu, field.name))
