"""The batched Nelder-Mead engine (``skvae._matching.nelder_mead``) against scipy's Nelder-Mead,
run problem by problem: the same iterations, evaluations and results, on every test
problem, from explicit simplices, under iteration and evaluation caps, and with +inf
barriers.
"""

import numpy as np
import pytest
import torch
from _nelder_mead_cases import (
    PROBLEMS,
    _assert_same_as_scipy,
    _default_simplex,
    _problem,
    _quadratics,
    _rosenbrock,
    _run,
    _scipy_reference,
)
from numpy.testing import assert_allclose


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


def test_inf_barrier_matches_scipy(monkeypatch):
    def fun(X, idx):  # +inf outside a box: scipy handles inf the same way
        f = _rosenbrock(X, idx)
        return torch.where((X.abs() < 1.5).all(dim=1), f, np.inf)

    x0 = np.array([[-1.2, 1.0], [1.0, -1.0], [0.5, 1.4]])
    res = _run(fun, x0, xatol=1e-6, fatol=1e-10)
    ref = _scipy_reference(monkeypatch, fun, _default_simplex(x0), xatol=1e-6, fatol=1e-10)
    _assert_same_as_scipy(res, ref)
