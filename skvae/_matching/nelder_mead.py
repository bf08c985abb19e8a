"""Batched Nelder-Mead in torch: many independent simplices advanced together on a device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

__all__ = ["NelderMeadResult", "batched_nelder_mead"]

#: A cap that is never reached (int64 counters compare with it on the device).
_NO_CAP = 2**62


@dataclass(frozen=True)
class NelderMeadResult:
    """Outcome of :func:`batched_nelder_mead`, one entry per problem (tensors on its device).

    Attributes
    ----------
    x : Tensor of shape (n_problems, n_dims)
        Best vertex of each final simplex (float64).
    fun : Tensor of shape (n_problems,)
        Objective value at `x` (``inf`` if no finite value was ever seen).
    nit : Tensor of shape (n_problems,)
        Iteration counter as in :func:`scipy.optimize.minimize`: it starts at 1,
        so it is one more than the number of completed iterations.
    nfev : Tensor of shape (n_problems,)
        Number of objective evaluations spent on each problem.
    converged : Tensor of shape (n_problems,)
        Whether the `xatol`/`fatol` test was met before a cap was reached.
    """

    x: torch.Tensor
    fun: torch.Tensor
    nit: torch.Tensor
    nfev: torch.Tensor
    converged: torch.Tensor


def _check_cap(value: int | None, name: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, Integral) or value < 1
    ):
        raise ValueError(f"{name} must be None or an integer >= 1; got {value!r}.")


def _as_float64(value, device: torch.device | None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64), device=device)


def _initial_simplex(x0, initial_step, initial_simplex, device) -> torch.Tensor:
    x0 = _as_float64(x0, device)
    if x0.ndim != 2 or x0.shape[1] < 1:
        raise ValueError(
            "x0 must be a 2-D array of shape (n_problems, n_dims) with n_dims >= 1; "
            f"got shape {tuple(x0.shape)}."
        )
    n, d = x0.shape
    if initial_simplex is not None:
        sim = _as_float64(initial_simplex, x0.device).clone()
        if sim.shape != (n, d + 1, d):
            raise ValueError(
                f"initial_simplex must have shape (n_problems, n_dims + 1, n_dims) = "
                f"({n}, {d + 1}, {d}); got shape {tuple(sim.shape)}."
            )
        if not bool(torch.isfinite(sim).all()):
            raise ValueError("initial_simplex must contain only finite values.")
        return sim
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 must contain only finite values.")
    step = _as_float64(initial_step, x0.device)
    if step.shape not in ((), (d,), (n, d)):
        raise ValueError(
            f"initial_step must be a scalar or have shape ({d},) or ({n}, {d}); "
            f"got shape {tuple(step.shape)}."
        )
    if not bool((torch.isfinite(step) & (step > 0)).all()):
        raise ValueError("initial_step must be finite and strictly positive.")
    sim = x0[:, None, :].repeat(1, d + 1, 1)
    axes = torch.arange(d, device=x0.device)
    sim[:, axes + 1, axes] += step.expand(n, d)
    return sim


class _Simplices:
    """The working set: simplices, values and counters of the problems being advanced."""

    def __init__(self, rows, sim, fsim, nit, nfev, converged):
        self.rows, self.s, self.f = rows, sim[rows], fsim[rows]
        self.nit, self.nfev, self.converged = nit[rows], nfev[rows], converged[rows]
        self.pending = torch.zeros_like(self.converged)  # shrink steps still to evaluate

    def store(self, sim, fsim, nit, nfev, converged) -> None:
        sim[self.rows], fsim[self.rows] = self.s, self.f
        nit[self.rows], nfev[self.rows], converged[self.rows] = self.nit, self.nfev, self.converged


def batched_nelder_mead(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor | np.ndarray,
    *,
    initial_step: float | np.ndarray | torch.Tensor = 0.5,
    initial_simplex: np.ndarray | torch.Tensor | None = None,
    xatol: float = 1e-4,
    fatol: float = 1e-4,
    max_iter: int | None = None,
    max_fev: int | None = None,
    adaptive: bool = False,
    device: torch.device | str | None = None,
    sync_every: int | None = None,
    dense: bool | None = None,
) -> NelderMeadResult:
    """Minimise many independent functions with the Nelder-Mead simplex method, in torch.

    Mirrors ``scipy.optimize.minimize(method="Nelder-Mead")`` step for step
    (coefficients, acceptance rules, convergence test, iteration and evaluation caps,
    float64 arithmetic) but advances all problems together on one device: each step
    makes one batched call of `fun` (reflections, then expansions and contractions,
    then shrinks), so an iteration costs 1 to 3 calls. Finished problems drop out of
    the working set, which is compacted every `sync_every` iterations; between two
    compactions nothing is read back to the host, so on a GPU the loop runs without
    synchronising at every step.

    Parameters
    ----------
    fun : callable
        ``fun(X, indices) -> values``. `X` is a float64 tensor of shape ``(m, n_dims)``
        on the device, `indices` an int64 tensor of shape ``(m,)`` giving the problem
        (row of `x0`) each point belongs to, and `values` a tensor of shape ``(m,)``.
        Values must not depend on the other rows of the batch. Non-finite values count
        as ``+inf``.
    x0 : Tensor or array-like of shape (n_problems, n_dims)
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
    device : torch.device or str, default=None
        Where to compute; None means `x0`'s device (the CPU for arrays).
    sync_every : int, default=None
        Iterations between two compactions of the working set (each reads a count back
        to the host). None: 1 on the CPU, 8 elsewhere.
    dense : bool, default=None
        Evaluate expansions and contractions for the whole working set (wasting the
        values not needed) instead of gathering the problems that need one, which would
        synchronise. Shrink steps are then evaluated at the next compaction. None: False
        on the CPU, True elsewhere. Results do not depend on `sync_every` or `dense`.

    Returns
    -------
    result : NelderMeadResult
        Best points, values, counters and convergence flags per problem.

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.nelder_mead import batched_nelder_mead
    >>> centres = torch.tensor([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]], dtype=torch.float64)
    >>> def shifted_quadratic(X, idx):
    ...     return ((X - centres[idx]) ** 2).sum(dim=1)
    >>> res = batched_nelder_mead(shifted_quadratic, torch.zeros(3, 2), xatol=1e-8, fatol=1e-8)
    >>> print(res.x.numpy().round(4))
    [[ 1.  -2. ]
     [ 3.   0.5]
     [-1.   4. ]]
    >>> print(res.converged.numpy())
    [ True  True  True]
    >>> def rosenbrock(X, idx):
    ...     return 100.0 * (X[:, 1] - X[:, 0] ** 2) ** 2 + (1.0 - X[:, 0]) ** 2
    >>> starts = torch.tensor([[-1.2, 1.0], [0.0, 0.0], [2.0, 2.0]])
    >>> res = batched_nelder_mead(rosenbrock, starts, xatol=1e-8, fatol=1e-8, max_iter=1000)
    >>> print(res.x.numpy().round(4), bool((res.fun < 1e-12).all()))
    [[1. 1.]
     [1. 1.]
     [1. 1.]] True
    """
    if device is not None:
        device = torch.device(device)
    elif isinstance(x0, torch.Tensor):
        device = x0.device
    sim = _initial_simplex(x0, initial_step, initial_simplex, device)
    device = sim.device
    n, d = sim.shape[0], sim.shape[2]
    for name, tol in (("xatol", xatol), ("fatol", fatol)):
        if isinstance(tol, bool) or not isinstance(tol, Real) or not tol >= 0:
            raise ValueError(f"{name} must be a non-negative real number; got {tol!r}.")
    _check_cap(max_iter, "max_iter")
    _check_cap(max_fev, "max_fev")
    if max_iter is None and max_fev is None:
        max_iter = max_fev = 200 * d
    max_iter = _NO_CAP if max_iter is None else int(max_iter)
    max_fev = _NO_CAP if max_fev is None else int(max_fev)
    on_cpu = device.type == "cpu"
    sync_every = (1 if on_cpu else 8) if sync_every is None else int(sync_every)
    if sync_every < 1:
        raise ValueError(f"sync_every must be an integer >= 1; got {sync_every!r}.")
    dense = (not on_cpu) if dense is None else bool(dense)

    if adaptive:  # same expressions as scipy, for bitwise-identical steps
        dim = float(d)
        rho, chi, psi, sigma = 1, 1 + 2 / dim, 0.75 - 1 / (2 * dim), 1 - 1 / dim
    else:
        rho, chi, psi, sigma = 1, 2, 0.5, 0.5
    inf = torch.tensor(float("inf"), dtype=torch.float64, device=device)

    def evaluate(points: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        values = fun(points, indices)
        values = torch.as_tensor(values).to(device=device, dtype=torch.float64)
        if values.shape != (points.shape[0],):
            raise ValueError(
                f"fun must return an array of shape ({points.shape[0]},); "
                f"got shape {tuple(values.shape)}."
            )
        return torch.where(torch.isfinite(values), values, inf)

    def sort(s: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, order = torch.sort(f, dim=1, stable=True)
        return torch.gather(s, 1, order[:, :, None].expand(-1, -1, d)), f

    def open_(nit: torch.Tensor, nfev: torch.Tensor) -> torch.Tensor:
        return (nfev < max_fev) & (nit < max_iter)

    def converging(s: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        # inf - inf is NaN, and NaN <= tol is False: not converged.
        spread = (s[:, 1:] - s[:, :1]).abs_().amax(dim=(1, 2))
        return (spread <= xatol) & ((f[:, :1] - f[:, 1:]).abs_().amax(dim=1) <= fatol)

    nfev = torch.zeros(n, dtype=torch.int64, device=device)
    nit = torch.ones(n, dtype=torch.int64, device=device)
    fsim = torch.full((n, d + 1), float("inf"), dtype=torch.float64, device=device)
    n_init = int(min(d + 1, max_fev))  # scipy stops evaluating at the cap
    if n:
        problem_of = torch.arange(n, device=device).repeat_interleave(n_init)
        points = sim[:, :n_init].reshape(-1, d)
        fsim[:, :n_init] = evaluate(points, problem_of).reshape(n, n_init)
        nfev.fill_(n_init)
        sim, fsim = sort(sim, fsim)
    converged = open_(nit, nfev) & converging(sim, fsim)

    def shrink(w: _Simplices) -> None:
        """Evaluate the pending shrink steps (vertices shrunk in order while the budget
        lasts; unlike scipy, a vertex that cannot be evaluated is left as is)."""
        sh = torch.nonzero(w.pending).squeeze(1)
        if sh.numel() == 0:
            return
        s, f = w.s[sh], w.f[sh]
        budget = torch.clamp(max_fev - w.nfev[sh], max=d)
        take = torch.arange(d, device=device)[None, :] < budget[:, None]
        best = s[:, :1]
        moved = best + sigma * (s[:, 1:] - best)
        if int(budget.sum()):
            s[:, 1:] = torch.where(take[:, :, None], moved, s[:, 1:])
            values = evaluate(moved[take], w.rows[sh].repeat_interleave(budget))
            f[:, 1:] = f[:, 1:].masked_scatter(take, values)
        s, f = sort(s, f)
        w.s[sh], w.f[sh] = s, f
        w.nfev[sh] += budget
        finished = budget == d  # otherwise the iteration was aborted: not counted
        w.nit[sh] += finished
        w.converged[sh] = finished & open_(w.nit[sh], w.nfev[sh]) & converging(s, f)
        w.pending.zero_()

    w: _Simplices | None = None
    step = 0
    while n:
        if step % sync_every == 0:
            if w is not None:
                shrink(w)
                w.store(sim, fsim, nit, nfev, converged)
            rows = torch.nonzero(~converged & open_(nit, nfev)).squeeze(1)
            if rows.numel() == 0:
                break
            w = _Simplices(rows, sim, fsim, nit, nfev, converged)
        step += 1
        s, f = w.s, w.f
        live = ~w.converged & ~w.pending & open_(w.nit, w.nfev)

        xbar = s[:, 0].clone()  # summed in order, as numpy's add.reduce does
        for j in range(1, d):
            xbar += s[:, j]
        xbar /= d
        worst = s[:, -1]
        new_x = (1 + rho) * xbar - rho * worst  # reflection
        new_f = evaluate(new_x, w.rows)
        w.nfev += live
        expand = new_f < f[:, 0]
        needs_more = expand | (new_f >= f[:, -2])  # all but a plainly accepted reflection
        outside = ~expand & needs_more & (new_f < f[:, -1])  # else: inside contraction
        # Problems with no evaluation left abort the iteration (scipy's
        # _MaxFuncCallError): simplex untouched, iteration not counted.
        aborted = needs_more & (w.nfev >= max_fev)
        second = live & needs_more & ~aborted
        # (1 + c) * xbar - c * worst is bitwise scipy's xe, xc and xcc.
        c = torch.full_like(new_f, -psi)
        c = torch.where(expand, rho * chi, torch.where(outside, psi * rho, c))[:, None]
        if dense:
            x2 = (1 + c) * xbar - c * worst
            f2 = evaluate(x2, w.rows)
        else:
            sec = torch.nonzero(second).squeeze(1)
            x2, f2 = new_x.clone(), new_f.clone()
            if sec.numel():
                c_sec = c[sec]
                x2[sec] = (1 + c_sec) * xbar[sec] - c_sec * worst[sec]
                f2[sec] = evaluate(x2[sec], w.rows[sec])
        w.nfev += second
        take = torch.where(expand, f2 < new_f, torch.where(outside, f2 <= new_f, f2 < f[:, -1]))
        accept = second & take
        new_x = torch.where(accept[:, None], x2, new_x)
        new_f = torch.where(accept, f2, new_f)
        w.pending |= second & ~take & ~expand
        replace = live & ~aborted & ~w.pending
        s[:, -1] = torch.where(replace[:, None], new_x, worst)
        f[:, -1] = torch.where(replace, new_f, f[:, -1])
        w.nit += replace
        w.s, w.f = sort(s, f)
        w.converged |= replace & open_(w.nit, w.nfev) & converging(w.s, w.f)
        if not dense:
            shrink(w)

    return NelderMeadResult(
        x=sim[:, 0].clone(), fun=fsim[:, 0].clone(), nit=nit, nfev=nfev, converged=converged
    )
