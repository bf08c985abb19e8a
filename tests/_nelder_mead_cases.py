"""Test problems, scipy references and result helpers of the test_nelder_mead_* modules.

The objectives below sum over coordinates column by column, in order, so that a point's
value does not depend on the batch it is evaluated in (the engine's contract).
"""

import functools

import numpy as np
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

from skvae._matching.nelder_mead import NelderMeadResult, batched_nelder_mead


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
    # Both sides run in this process, so the exact counts hold on any CPU.
    assert_array_equal(res.nit, [r.nit for r in ref])
    assert_array_equal(res.nfev, [r.nfev for r in ref])
    assert_array_equal(res.converged, [r.success for r in ref])
    assert_allclose(res.x, np.array([r.x for r in ref]), rtol=1e-12, atol=1e-12)
    assert_allclose(res.fun, [r.fun for r in ref], rtol=1e-12, atol=1e-15)
