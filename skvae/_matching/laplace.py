r"""Laplace posterior of matched latent codes, and a Gauss-Newton polish of the match.

Around a minimum ``ẑ`` (the MAP code) of the negative log-posterior ``E`` of a
:class:`~skvae._matching.problem.MatchProblem`, the posterior is approximately Gaussian,
``N(ẑ, Σ)`` with ``Σ = (Jᵀ M J / σ² + I)⁻¹`` (the Gauss-Newton Hessian; ``J`` is the
decoder's Jacobian at ``ẑ``, ``M`` the diagonal 0/1 mask of observed points): the Laplace
approximation. The same Hessian drives damped Gauss-Newton steps that refine a code.

Jacobians are computed by batched reverse-mode autograd (a vector-Jacobian product
differentiated once more, one pass per latent axis) in the decoder's dtype, on
fixed-size zero-padded chunks of the problem's ``chunk_size`` rows (row-independent
results); Hessians and their Cholesky factorisations are accumulated in the problem's
accumulation dtype (float64, float32 on devices without float64), on the decoder's
device.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._chunks import apply_to_tensors
from .problem import CodesToCurves, MatchProblem, _check_chunk_size, decoder_dtype_device

__all__ = ["decoder_jacobian", "gauss_newton_polish", "laplace_covariance"]

#: Bounds of the Levenberg-Marquardt damping (prior units: the Hessian is at least I).
_MIN_DAMPING, _MAX_DAMPING = 1e-9, 1e9


def _value_and_jacobian(decoder: CodesToCurves, d: int):
    """A function mapping a chunk of codes (c, d) to (g (c, D), J (c, D, d)).

    Reverse-mode autograd, twice: ``v = Jᵀu`` is a linear function of a zero cotangent
    ``u`` whose graph is kept, and the gradient of ``v_j`` with respect to ``u`` is
    ``J``'s column ``j``. One decoder pass, one backward pass and ``d`` double-backward
    passes per chunk: as fast as forward mode for short codes, and unlike torch's
    forward-mode AD (whose dual level is one process-wide variable, and whose first use
    imports ``torch._dynamo``) safe from several threads at once and quick to start.
    """

    def value_and_jacobian(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            g = decoder(z)
            u = torch.zeros_like(g, requires_grad=True)
            (v,) = torch.autograd.grad(g, z, u, create_graph=True)
            columns = [
                torch.autograd.grad(v[:, j].sum(), u, retain_graph=j < d - 1, allow_unused=True)[0]
                for j in range(d)
            ]
        g = g.detach()
        if columns[0] is None:  # the decoder ignores its input
            return g, torch.zeros((*g.shape, d), dtype=g.dtype, device=g.device)
        return g, torch.stack(columns, dim=2)

    return value_and_jacobian


def _check_codes(Z) -> torch.Tensor:
    if not isinstance(Z, torch.Tensor):
        raise TypeError(f"Z must be a torch.Tensor, got {type(Z).__name__}.")
    if Z.ndim != 2:
        raise ValueError(f"Z must be 2-D, got shape {tuple(Z.shape)}.")
    if not (Z.dtype.is_floating_point or Z.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"Z must be a floating point tensor, got dtype {Z.dtype}.")
    return Z


def _codes_and_rows(problem: MatchProblem, Z, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """``Z`` in the accumulation dtype and its target rows (one target per code if None)."""
    Z = _check_codes(Z).to(device=problem.device, dtype=problem.acc)
    if rows is None:
        if Z.shape[0] != problem.n_targets:
            raise ValueError(
                f"Z has {Z.shape[0]} rows, expected {problem.n_targets} (one per target)."
            )
        rows = torch.arange(Z.shape[0], device=problem.device)
    return Z, torch.as_tensor(rows, dtype=torch.int64, device=problem.device)


def _chunk_buffers(problem: MatchProblem, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    size, device = problem.chunk_size, problem.device
    codes = torch.zeros((size, d), dtype=problem.acc, device=device)
    return codes, torch.zeros(size, dtype=torch.int64, device=device)


def _whitened_jacobian(problem: MatchProblem, rows: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """``m / σ ⊙ J`` for each row of a chunk, in the accumulation dtype."""
    Jw = J.to(problem.acc) / problem.sigma
    if problem.weights is not None:
        Jw *= problem.weights[rows].unsqueeze(2)
    return Jw


def _gauss_newton(Jw: torch.Tensor) -> torch.Tensor:
    """``Jᵀ M J / σ² + I`` from whitened Jacobians: symmetric, at least the identity."""
    H = Jw.transpose(1, 2) @ Jw
    H = 0.5 * (H + H.transpose(1, 2))
    return H + torch.eye(H.shape[1], dtype=H.dtype, device=H.device)


def _inverse_spd(H: torch.Tensor) -> torch.Tensor:
    """Symmetric inverses of SPD matrices by Cholesky; NaN where the factorisation fails."""
    L, info = torch.linalg.cholesky_ex(H)
    inverse = torch.cholesky_inverse(L)
    inverse = 0.5 * (inverse + inverse.transpose(1, 2))
    return torch.where((info == 0)[:, None, None], inverse, torch.nan)


@torch.no_grad()
def decoder_jacobian(
    decoder: CodesToCurves, Z: torch.Tensor, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded curves and the decoder's Jacobians at many codes, by batched autograd.

    Parameters
    ----------
    decoder : torch.nn.Module or callable
        Maps codes of shape (c, d) to curves of shape (c, D), row by row.
    Z : torch.Tensor of shape (n, d)
        Latent codes (cast to the decoder's dtype and device).
    chunk_size : int
        Rows per decoder call: every call sees exactly this many rows (the last chunk is
        zero-padded), so a row's result does not depend on the batch.

    Returns
    -------
    G : torch.Tensor of shape (n, D)
        Decoded curves ``g(z)``, in the decoder's dtype, on its device.
    J : torch.Tensor of shape (n, D, d)
        Jacobians ``∂g/∂z`` (reverse-mode autograd, one double-backward pass per latent
        axis).

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.laplace import decoder_jacobian
    >>> decoder = torch.nn.Linear(2, 3).double()
    >>> G, J = decoder_jacobian(decoder, torch.zeros(4, 2, dtype=torch.float64), chunk_size=8)
    >>> G.shape, J.shape
    (torch.Size([4, 3]), torch.Size([4, 3, 2]))
    >>> bool(torch.equal(J[0], decoder.weight))
    True
    """
    Z = _check_codes(Z)
    chunk_size = _check_chunk_size(chunk_size)
    dtype, device = decoder_dtype_device(decoder)
    n, d = Z.shape
    value_and_jacobian = _value_and_jacobian(decoder, d)
    buffer = torch.zeros((chunk_size, d), dtype=dtype, device=device)
    D = value_and_jacobian(buffer)[0].shape[1]

    def values_and_jacobians(z: torch.Tensor) -> torch.Tensor:
        g, J = value_and_jacobian(z)
        return torch.cat([g, J.flatten(1)], dim=1)

    out = torch.empty((n, D * (d + 1)), dtype=dtype, device=device)
    apply_to_tensors(values_and_jacobians, (Z.to(device=device, dtype=dtype),), (buffer,), out)
    return out[:, :D], out[:, D:].view(n, D, d)


@torch.no_grad()
def laplace_covariance(
    problem: MatchProblem, Z: torch.Tensor, rows: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Laplace approximation of the latent posterior's covariance at each code.

    ``Σ = (Jᵀ M J / σ² + I)⁻¹``: the inverse of the Gauss-Newton Hessian of the negative
    log-posterior :meth:`MatchProblem.energy <skvae._matching.problem.MatchProblem.energy>`,
    with ``J`` the decoder's Jacobian at the code and ``M`` the diagonal 0/1 mask of
    observed points. Evaluated at the MAP code, ``N(z, Σ)`` approximates the posterior of
    the code; it is exact for a linear decoder. Missing points only remove terms, so they
    widen ``Σ``; a row with no observed point gets the prior's covariance, the identity.

    Parameters
    ----------
    problem : MatchProblem
        The targets, mask, noise and decoder.
    Z : torch.Tensor of shape (n, d)
        Latent codes (normally MAP codes).
    rows : torch.Tensor of shape (n,), default=None
        The target row of each code; None: code ``i`` goes with target ``i``.

    Returns
    -------
    covariance : torch.Tensor of shape (n, d, d)
        Symmetric positive definite matrices (accumulation dtype, on the decoder's
        device), from a Cholesky factorisation; NaN for a row whose Jacobian is not
        finite.

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.laplace import laplace_covariance
    >>> from skvae._matching.problem import MatchProblem
    >>> decoder = torch.nn.Linear(1, 4, bias=False).double()
    >>> with torch.no_grad():
    ...     _ = decoder.weight.fill_(1.0)
    >>> mask = torch.tensor([[True] * 4, [False] * 4])
    >>> problem = MatchProblem(decoder, torch.zeros(2, 4), mask, 0.5, chunk_size=8)
    >>> laplace_covariance(problem, torch.zeros(2, 1))[:, 0, 0].tolist()
    [0.058823529411764705, 1.0]
    """
    Z, rows = _codes_and_rows(problem, Z, rows)
    n, d = Z.shape
    value_and_jacobian = _value_and_jacobian(problem.decoder, d)

    def covariance_of_chunk(z: torch.Tensor, chunk_rows: torch.Tensor) -> torch.Tensor:
        _, J = value_and_jacobian(z.to(problem.dtype))
        return _inverse_spd(_gauss_newton(_whitened_jacobian(problem, chunk_rows, J)))

    out = torch.empty((n, d, d), dtype=problem.acc, device=problem.device)
    return apply_to_tensors(covariance_of_chunk, (Z, rows), _chunk_buffers(problem, d), out)


@torch.no_grad()
def gauss_newton_polish(
    problem: MatchProblem,
    Z: torch.Tensor,
    rows: torch.Tensor | None = None,
    *,
    n_steps: int,
    damping: float = 1e-3,
) -> torch.Tensor:
    r"""Refine codes by damped Gauss-Newton (Levenberg-Marquardt) steps on the posterior.

    Each step solves ``(H + λ I) δ = −∇E`` with ``H = Jᵀ M J / σ² + I`` the Gauss-Newton
    Hessian of the problem's negative log-posterior ``E`` and
    ``∇E = Jᵀ M (g(z) − x) / σ² + z``, then keeps ``z + δ`` only where it lowers ``E``
    (row by row): there ``λ`` shrinks tenfold and the Jacobian is re-evaluated at the new
    code; elsewhere the code and its Jacobian stay and ``λ`` grows tenfold. ``E`` never
    increases, and near a minimum the steps converge quadratically when the residuals are
    small (the Gauss-Newton regime of the Laplace approximation).

    Parameters
    ----------
    problem : MatchProblem
        The targets, mask, noise and decoder.
    Z : torch.Tensor of shape (n, d)
        Start codes (for example Nelder-Mead's matches).
    rows : torch.Tensor of shape (n,), default=None
        The target row of each code; None: code ``i`` goes with target ``i``.
    n_steps : int
        Number of steps (each one Jacobian and one decoder evaluation per row); 0
        returns the codes unchanged.
    damping : float, default=1e-3
        Initial ``λ``, in prior units (``H`` is at least the identity).

    Returns
    -------
    Z_polished : torch.Tensor of shape (n, d)
        The refined codes (accumulation dtype, on the decoder's device);
        ``problem.energy`` there is at most its value at ``Z``.

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.laplace import gauss_newton_polish
    >>> from skvae._matching.problem import MatchProblem
    >>> torch.manual_seed(0) and None
    >>> decoder = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5))
    >>> problem = MatchProblem(decoder, decoder(torch.randn(3, 2)).detach(), None, 0.1, 4)
    >>> Z0, rows = torch.zeros(3, 2), torch.arange(3)
    >>> Z = gauss_newton_polish(problem, Z0, n_steps=10)
    >>> bool(torch.all(problem.energy(Z, rows) <= problem.energy(Z0, rows)))
    True
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}.")
    if not isinstance(damping, Real) or not 0 <= damping < float("inf"):
        raise ValueError(f"damping must be a non-negative finite number, got {damping!r}.")
    Z, rows = _codes_and_rows(problem, Z, rows)
    if n_steps == 0:
        return Z.clone()
    n, d = Z.shape
    value_and_jacobian = _value_and_jacobian(problem.decoder, d)
    eye = torch.eye(d, dtype=problem.acc, device=problem.device)

    def polish_chunk(z: torch.Tensor, chunk_rows: torch.Tensor) -> torch.Tensor:
        lam = torch.full((z.shape[0],), float(damping), dtype=problem.acc, device=problem.device)
        targets = problem.targets[chunk_rows]
        energy = problem.energy(z, chunk_rows).clone()
        g, J = value_and_jacobian(z.to(problem.dtype))
        for step in range(n_steps):
            Jw = _whitened_jacobian(problem, chunk_rows, J)
            residual = g.to(problem.acc) - targets
            residual /= problem.sigma
            if problem.weights is not None:
                residual *= problem.weights[chunk_rows]
            gradient = (Jw.transpose(1, 2) @ residual.unsqueeze(2)).squeeze(2) + z
            H = _gauss_newton(Jw) + lam[:, None, None] * eye
            L, info = torch.linalg.cholesky_ex(H)
            trial = z - torch.cholesky_solve(gradient.unsqueeze(2), L).squeeze(2)
            trial_energy = problem.energy(trial, chunk_rows)
            accept = (info == 0) & (trial_energy < energy)  # NaN compares False
            z = torch.where(accept[:, None], trial, z)
            energy = torch.where(accept, trial_energy, energy)
            lam = torch.where(accept, lam * 0.1, lam * 10.0).clamp(_MIN_DAMPING, _MAX_DAMPING)
            if step < n_steps - 1:  # rows that kept their code get the same Jacobian back
                g, J = value_and_jacobian(z.to(problem.dtype))
        return z

    out = torch.empty((n, d), dtype=problem.acc, device=problem.device)
    return apply_to_tensors(polish_chunk, (Z, rows), _chunk_buffers(problem, d), out)
