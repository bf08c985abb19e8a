"""Batched Nelder-Mead: many independent simplices advanced together with numpy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

__all__ = ["NelderMeadResult", "batched_nelder_mead"]


@dataclass(frozen=True)
class NelderMeadResult:
    """Outcome of :func:`batched_nelder_mead`, one entry per problem.

    Attributes
    ----------
    x : ndarray of shape (n_problems, n_dims)
        Best vertex of each final simplex.
    fun : ndarray of shape (n_problems,)
        Objective value at `x` (``inf`` if no finite value was ever seen).
    nit : ndarray of shape (n_problems,)
        Iteration counter as in :func:`scipy.optimize.minimize`: it starts at 1,
        so it is one more than the number of completed iterations.
    nfev : ndarray of shape (n_problems,)
        Number of objective evaluations spent on each problem.
    converged : ndarray of shape (n_problems,)
        Whether the `xatol`/`fatol` test was met before a cap was reached.
    """

    x: np.ndarray
    fun: np.ndarray
    nit: np.ndarray
    nfev: np.ndarray
    converged: np.ndarray


def _check_cap(value: int | None, name: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, Integral) or value < 1
    ):
        raise ValueError(f"{name} must be None or an integer >= 1; got {value!r}.")


def batched_nelder_mead(
    fun: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    *,
    initial_step: float | np.ndarray = 0.5,
    initial_simplex: np.ndarray | None = None,
    xatol: float = 1e-4,
    fatol: float = 1e-4,
    max_iter: int | None = None,
    max_fev: int | None = None,
    adaptive: bool = False,
) -> NelderMeadResult:
    """Minimise many independent functions with the Nelder-Mead simplex method.

    Mirrors ``scipy.optimize.minimize(method="Nelder-Mead")`` step for step
    (coefficients, acceptance rules, convergence test, iteration and
    evaluation caps) but advances all problems together: every step makes a
    single batched call of `fun` for all still-active problems (reflections,
    then expansions/contractions, then shrinks), so an iteration costs 1 to 3
    calls. Converged problems are not evaluated any more.

    Parameters
    ----------
    fun : callable
        ``fun(X, indices) -> values``. `X` is a float64 array of shape
        ``(m, n_dims)`` (a fresh copy), `indices` an int array of shape
        ``(m,)`` giving the problem (row of `x0`) each point belongs to, and
        `values` must have shape ``(m,)``. Non-finite values count as ``+inf``.
    x0 : array-like of shape (n_problems, n_dims)
        Starting points; ``x0[i]`` is a vertex of the initial simplex ``i``.
    initial_step : float or array-like of shape (n_dims,) or (n_problems, n_dims), \
default=0.5
        Strictly positive edge lengths of the initial simplices, whose
        vertices are ``x0[i]`` and ``x0[i] + initial_step * e_k``.
    initial_simplex : array-like of shape (n_problems, n_dims + 1, n_dims), default=None
        Explicit initial simplices; overrides `x0` and `initial_step`.
    xatol, fatol : float, default=1e-4
        Problem ``i`` converges when ``max|sim[1:] - sim[0]| <= xatol`` and
        ``max|fsim[0] - fsim[1:]| <= fatol``.
    max_iter, max_fev : int, default=None
        Per-problem caps on iterations and evaluations; both default to
        ``200 * n_dims`` when neither is given, otherwise the missing one is
        unlimited (as in scipy).
    adaptive : bool, default=False
        Use the dimension-dependent coefficients of Gao and Han (2012).

    Returns
    -------
    result : NelderMeadResult
        Best points, values, counters and convergence flags per problem.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae._nelder_mead import batched_nelder_mead
    >>> centres = np.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]])
    >>> def shifted_quadratic(X, idx):
    ...     return np.sum((X - centres[idx]) ** 2, axis=1)
    >>> res = batched_nelder_mead(shifted_quadratic, np.zeros((3, 2)), xatol=1e-8, fatol=1e-8)
    >>> print(np.round(res.x, 4))
    [[ 1.  -2. ]
     [ 3.   0.5]
     [-1.   4. ]]
    >>> print(res.converged)
    [ True  True  True]
    >>> def rosenbrock(X, idx):
    ...     return 100.0 * (X[:, 1] - X[:, 0] ** 2) ** 2 + (1.0 - X[:, 0]) ** 2
    >>> starts = np.array([[-1.2, 1.0], [0.0, 0.0], [2.0, 2.0]])
    >>> res = batched_nelder_mead(rosenbrock, starts, xatol=1e-8, fatol=1e-8, max_iter=1000)
    >>> print(np.round(res.x, 4), bool(np.all(res.fun < 1e-12)))
    [[1. 1.]
     [1. 1.]
     [1. 1.]] True
    """
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 2 or x0.shape[1] < 1:
        raise ValueError(
            "x0 must be a 2-D array of shape (n_problems, n_dims) with n_dims >= 1; "
            f"got shape {x0.shape}."
        )
    n, d = x0.shape
    if initial_simplex is None:
        if not np.all(np.isfinite(x0)):
            raise ValueError("x0 must contain only finite values.")
        step = np.asarray(initial_step, dtype=np.float64)
        if step.shape not in ((), (d,), (n, d)):
            raise ValueError(
                f"initial_step must be a scalar or have shape ({d},) or ({n}, {d}); "
                f"got shape {step.shape}."
            )
        if not np.all(np.isfinite(step) & (step > 0)):
            raise ValueError("initial_step must be finite and strictly positive.")
        sim = np.repeat(x0[:, None, :], d + 1, axis=1)
        axes = np.arange(d)
        sim[:, axes + 1, axes] += np.broadcast_to(step, (n, d))
    else:
        sim = np.array(initial_simplex, dtype=np.float64)
        if sim.shape != (n, d + 1, d):
            raise ValueError(
                f"initial_simplex must have shape (n_problems, n_dims + 1, n_dims) = "
                f"({n}, {d + 1}, {d}); got shape {sim.shape}."
            )
        if not np.all(np.isfinite(sim)):
            raise ValueError("initial_simplex must contain only finite values.")
    for name, tol in (("xatol", xatol), ("fatol", fatol)):
        if isinstance(tol, bool) or not isinstance(tol, Real) or not tol >= 0:
            raise ValueError(f"{name} must be a non-negative real number; got {tol!r}.")
    _check_cap(max_iter, "max_iter")
    _check_cap(max_fev, "max_fev")
    if max_iter is None and max_fev is None:
        max_iter = max_fev = 200 * d
    max_iter = np.inf if max_iter is None else max_iter
    max_fev = np.inf if max_fev is None else max_fev

    if adaptive:  # same expressions as scipy, for bitwise-identical steps
        dim = float(d)
        rho, chi, psi, sigma = 1, 1 + 2 / dim, 0.75 - 1 / (2 * dim), 1 - 1 / dim
    else:
        rho, chi, psi, sigma = 1, 2, 0.5, 0.5

    def evaluate(points: np.ndarray, indices: np.ndarray) -> np.ndarray:
        values = np.asarray(fun(np.array(points, dtype=np.float64), indices.copy()))
        if values.shape != (points.shape[0],):
            raise ValueError(
                f"fun must return an array of shape ({points.shape[0]},); got shape {values.shape}."
            )
        values = values.astype(np.float64)
        return np.where(np.isfinite(values), values, np.inf)

    def sort(s: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(f, axis=1, kind="stable")
        return (
            np.take_along_axis(s, order[:, :, None], axis=1),
            np.take_along_axis(f, order, axis=1),
        )

    nfev = np.zeros(n, dtype=np.int64)
    nit = np.ones(n, dtype=np.int64)
    converged = np.zeros(n, dtype=bool)
    fsim = np.full((n, d + 1), np.inf)
    n_init = int(min(d + 1, max_fev))  # scipy stops evaluating at the cap
    if n:
        problem_of = np.repeat(np.arange(n), n_init)
        fsim[:, :n_init] = evaluate(sim[:, :n_init].reshape(-1, d), problem_of).reshape(n, n_init)
        nfev[:] = n_init
        sim, fsim = sort(sim, fsim)

    while True:
        act = np.flatnonzero(~converged & (nfev < max_fev) & (nit < max_iter))
        if act.size == 0:
            break
        s, f = sim[act], fsim[act]
        with np.errstate(invalid="ignore"):  # inf - inf is NaN: not converged
            done = (np.max(np.abs(s[:, 1:] - s[:, :1]), axis=(1, 2)) <= xatol) & (
                np.max(np.abs(f[:, :1] - f[:, 1:]), axis=1) <= fatol
            )
        converged[act[done]] = True
        act, s, f = act[~done], s[~done], f[~done]
        if act.size == 0:
            break

        xbar = np.add.reduce(s[:, :-1], axis=1) / d
        worst = s[:, -1]
        new_x = (1 + rho) * xbar - rho * worst  # reflection
        new_f = evaluate(new_x, act)
        nfev[act] += 1
        fxr = new_f.copy()
        expand = fxr < f[:, 0]
        needs_more = expand | (fxr >= f[:, -2])  # all but a plainly accepted reflection
        outside = ~expand & needs_more & (fxr < f[:, -1])  # else: inside contraction
        # Problems with no evaluation left abort the iteration (scipy's
        # _MaxFuncCallError): simplex untouched, iteration not counted.
        aborted = needs_more & (nfev[act] >= max_fev)
        shrink = np.zeros(act.size, dtype=bool)
        sec = np.flatnonzero(needs_more & ~aborted)
        if sec.size:
            # (1 + c) * xbar - c * worst is bitwise scipy's xe, xc and xcc.
            c = np.where(expand, rho * chi, np.where(outside, psi * rho, -psi))[sec, None]
            x2 = (1 + c) * xbar[sec] - c * worst[sec]
            f2 = evaluate(x2, act[sec])
            nfev[act[sec]] += 1
            take = np.where(
                expand[sec],
                f2 < fxr[sec],
                np.where(outside[sec], f2 <= fxr[sec], f2 < f[sec, -1]),
            )
            new_x[sec[take]], new_f[sec[take]] = x2[take], f2[take]
            shrink[sec[~take & ~expand[sec]]] = True
        replace = ~aborted & ~shrink
        s[replace, -1], f[replace, -1] = new_x[replace], new_f[replace]

        sh = np.flatnonzero(shrink)
        if sh.size:
            # Vertices are shrunk in order while the evaluation budget lasts;
            # unlike scipy, a vertex that cannot be evaluated is left as is.
            budget = np.minimum(max_fev - nfev[act[sh]], d).astype(np.int64)
            mask = np.arange(d)[None, :] < budget[:, None]
            best = s[sh, :1]
            moved = best + sigma * (s[sh, 1:] - best)
            s_sh, f_sh = s[sh], f[sh]
            if mask.any():
                s_sh[:, 1:][mask] = moved[mask]
                f_sh[:, 1:][mask] = evaluate(moved[mask], np.repeat(act[sh], budget))
            s[sh], f[sh] = s_sh, f_sh
            nfev[act[sh]] += budget
            aborted[sh[budget < d]] = True
        nit[act[~aborted]] += 1
        sim[act], fsim[act] = sort(s, f)

    return NelderMeadResult(
        x=sim[:, 0].copy(), fun=fsim[:, 0].copy(), nit=nit, nfev=nfev, converged=converged
    )
