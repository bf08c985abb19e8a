r"""Laplace posterior of matched latent codes, and a Gauss-Newton polish of the match.

The VAE defines a likelihood and a prior: a target curve ``x`` with observed points ``m``
(a 0/1 mask) and a code ``z`` have, up to a constant, the negative log-posterior

.. math::

    E(z) = \frac{\lVert m \odot (g(z) - x) \rVert^2}{2 \sigma^2} + \frac{\lVert z \rVert^2}{2}

with ``g`` the decoder and ``σ`` the observation noise, both in the decoder's (model)
units. Around its minimum ``ẑ`` (the MAP code) the posterior is approximately Gaussian,
``N(ẑ, Σ)`` with ``Σ = (Jᵀ M J / σ² + I)⁻¹`` (the Gauss-Newton Hessian; ``J`` is the
decoder's Jacobian at ``ẑ``): the Laplace approximation.

Everything here is pure torch, runs where the decoder lives, and evaluates rows in
fixed-size zero-padded chunks of ``chunk_size`` rows, so that a row's result does not
depend on the batch it arrives in. The decoder computes in its own dtype (float32 for a
fitted VAE); residuals, Hessians and their factorisations are accumulated in float64
(float32 on devices without float64). Results are returned in that precision, on the
decoder's device.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .laplace_hessian import _gauss_newton, _inverse_spd, _value_and_jacobian, _whitened_jacobian
from .laplace_problem import Decoder, _chunks, _Problem

__all__ = [
    "decoder_jacobian",
    "gauss_newton_polish",
    "laplace_covariance",
    "negative_log_posterior",
]

#: Bounds of the Levenberg-Marquardt damping (prior units: the Hessian is at least I).
_MIN_DAMPING, _MAX_DAMPING = 1e-9, 1e9


@torch.no_grad()
def decoder_jacobian(
    decoder: Decoder, Z: torch.Tensor, chunk_size: int
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
        Jacobians ``∂g/∂z`` (``torch.func.jacfwd`` vectorised with ``vmap``).

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
    problem = _Problem(decoder, Z, None, None, None, chunk_size)
    z = problem.Z.to(problem.dtype)
    value_and_jacobian = _value_and_jacobian(decoder, problem.d)
    G = J = None
    for rows in _chunks(problem.n_padded, problem.chunk_size):
        g, j = value_and_jacobian(z[rows])
        if G is None:
            G = g.new_empty((problem.n_padded, g.shape[1]))
            J = j.new_empty((problem.n_padded, *j.shape[1:]))
        G[rows], J[rows] = g, j
    if G is None:  # no rows: one padded call gives the widths
        g, j = value_and_jacobian(z.new_zeros((problem.chunk_size, problem.d)))
        return g[:0], j[:0]
    return G[: problem.n], J[: problem.n]


@torch.no_grad()
def negative_log_posterior(
    decoder: Decoder,
    Z: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None,
    sigma: float | torch.Tensor,
    chunk_size: int,
) -> torch.Tensor:
    r"""``‖m ⊙ (g(z) − x)‖² / (2σ²) + ‖z‖² / 2`` for each code and its target row.

    This is the negative log-posterior of ``z`` given ``x`` under the prior N(0, I) and
    the likelihood N(g(z), σ² I) of the observed points, up to an additive constant.

    Parameters
    ----------
    decoder : torch.nn.Module or callable
        Maps codes of shape (c, d) to curves of shape (c, D) in model units.
    Z : torch.Tensor of shape (n, d)
        Latent codes.
    targets : torch.Tensor of shape (n, D)
        Target curves in model units; non-finite entries count as missing.
    mask : torch.Tensor of shape (n, D) or None
        True (or 1) where a point is observed; None: every finite point is observed.
    sigma : float or torch.Tensor of shape (n,)
        Observation noise standard deviation in model units (one per row, or shared).
    chunk_size : int
        Rows per decoder call (fixed-size zero-padded chunks: row-independent results).

    Returns
    -------
    energy : torch.Tensor of shape (n,)
        The negative log-posterior of each row (float64 on the decoder's device).

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.laplace import negative_log_posterior
    >>> decoder = torch.nn.Linear(2, 3).double()
    >>> Z = torch.zeros(1, 2, dtype=torch.float64)
    >>> targets = decoder(Z) + 0.1
    >>> round(float(negative_log_posterior(decoder, Z, targets, None, 0.1, 8)[0]), 6)
    1.5
    """
    problem = _Problem(decoder, Z, targets, mask, sigma, chunk_size)
    out = torch.empty(problem.n_padded, dtype=problem.acc, device=problem.device)
    for rows in _chunks(problem.n_padded, problem.chunk_size):
        z = problem.Z[rows]
        out[rows] = problem.energy(rows, z, problem.decode(z))
    return out[: problem.n]


@torch.no_grad()
def laplace_covariance(
    decoder: Decoder,
    Z: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None,
    sigma: float | torch.Tensor,
    chunk_size: int,
) -> torch.Tensor:
    r"""Laplace approximation of the latent posterior's covariance at each code.

    ``Σ = (Jᵀ M J / σ² + I)⁻¹``: the inverse of the Gauss-Newton Hessian of the negative
    log-posterior (see :func:`negative_log_posterior`), with ``J`` the decoder's Jacobian
    at the code and ``M`` the diagonal 0/1 mask of observed points. Evaluated at the MAP
    code, ``N(z, Σ)`` approximates the posterior of the code; it is exact for a linear
    decoder. Missing points only remove terms, so they widen ``Σ``; a row with no
    observed point gets the prior's covariance, the identity.

    Parameters
    ----------
    decoder : torch.nn.Module or callable
        Maps codes of shape (c, d) to curves of shape (c, D) in model units.
    Z : torch.Tensor of shape (n, d)
        Latent codes (normally MAP codes).
    targets : torch.Tensor of shape (n, D)
        Target curves in model units; only which entries are observed matters
        (non-finite entries count as missing).
    mask : torch.Tensor of shape (n, D) or None
        True (or 1) where a point is observed; None: every finite point is observed.
    sigma : float or torch.Tensor of shape (n,)
        Observation noise standard deviation in model units.
    chunk_size : int
        Rows per decoder call (fixed-size zero-padded chunks: row-independent results).

    Returns
    -------
    covariance : torch.Tensor of shape (n, d, d)
        Symmetric positive definite matrices (float64 on the decoder's device), from a
        Cholesky factorisation; NaN for a row whose Jacobian is not finite.

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.laplace import laplace_covariance
    >>> decoder = torch.nn.Linear(1, 4, bias=False).double()
    >>> with torch.no_grad():
    ...     _ = decoder.weight.fill_(1.0)
    >>> Z, targets = torch.zeros(2, 1, dtype=torch.float64), torch.zeros(2, 4)
    >>> mask = torch.tensor([[True] * 4, [False] * 4])
    >>> laplace_covariance(decoder, Z, targets, mask, 0.5, 8)[:, 0, 0].tolist()
    [0.058823529411764705, 1.0]
    """
    problem = _Problem(decoder, Z, targets, mask, sigma, chunk_size)
    value_and_jacobian = _value_and_jacobian(decoder, problem.d, problem.D)
    out = torch.empty(
        (problem.n_padded, problem.d, problem.d), dtype=problem.acc, device=problem.device
    )
    for rows in _chunks(problem.n_padded, problem.chunk_size):
        _, J = value_and_jacobian(problem.Z[rows].to(problem.dtype))
        out[rows] = _inverse_spd(_gauss_newton(_whitened_jacobian(problem, rows, J)))
    return out[: problem.n]


@torch.no_grad()
def gauss_newton_polish(
    decoder: Decoder,
    Z: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None,
    sigma: float | torch.Tensor,
    n_steps: int,
    chunk_size: int,
    damping: float = 1e-3,
) -> torch.Tensor:
    r"""Refine codes by damped Gauss-Newton (Levenberg-Marquardt) steps on the posterior.

    Each step solves ``(H + λ I) δ = −∇E`` with ``H = Jᵀ M J / σ² + I`` the Gauss-Newton
    Hessian of the negative log-posterior ``E`` (see :func:`negative_log_posterior`) and
    ``∇E = Jᵀ M (g(z) − x) / σ² + z``, then keeps ``z + δ`` only where it lowers ``E``
    (row by row): there ``λ`` shrinks tenfold and the Jacobian is re-evaluated at the new
    code; elsewhere the code and its Jacobian stay and ``λ`` grows tenfold. ``E`` never
    increases, and near a minimum the steps converge quadratically when the residuals are
    small (the Gauss-Newton regime of the Laplace approximation).

    Parameters
    ----------
    decoder : torch.nn.Module or callable
        Maps codes of shape (c, d) to curves of shape (c, D) in model units.
    Z : torch.Tensor of shape (n, d)
        Start codes (for example Nelder-Mead's matches).
    targets : torch.Tensor of shape (n, D)
        Target curves in model units; non-finite entries count as missing.
    mask : torch.Tensor of shape (n, D) or None
        True (or 1) where a point is observed; None: every finite point is observed.
    sigma : float or torch.Tensor of shape (n,)
        Observation noise standard deviation in model units.
    n_steps : int
        Number of steps (each one Jacobian and one decoder evaluation per row); 0
        returns the codes unchanged.
    chunk_size : int
        Rows per decoder call (fixed-size zero-padded chunks: row-independent results).
    damping : float, default=1e-3
        Initial ``λ``, in prior units (``H`` is at least the identity).

    Returns
    -------
    Z_polished : torch.Tensor of shape (n, d)
        The refined codes (float64 on the decoder's device); ``E`` there is at most its
        value at ``Z``.

    Examples
    --------
    >>> import torch
    >>> from skvae._matching.laplace import gauss_newton_polish, negative_log_posterior
    >>> torch.manual_seed(0) and None
    >>> decoder = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5))
    >>> targets = decoder(torch.randn(3, 2)).detach()
    >>> Z0 = torch.zeros(3, 2)
    >>> Z = gauss_newton_polish(decoder, Z0, targets, None, 0.1, n_steps=10, chunk_size=4)
    >>> before = negative_log_posterior(decoder, Z0, targets, None, 0.1, 4)
    >>> after = negative_log_posterior(decoder, Z, targets, None, 0.1, 4)
    >>> bool(torch.all(after <= before))
    True
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}.")
    if not isinstance(damping, Real) or not 0 <= damping < float("inf"):
        raise ValueError(f"damping must be a non-negative finite number, got {damping!r}.")
    problem = _Problem(decoder, Z, targets, mask, sigma, chunk_size)
    out = problem.Z.clone()
    if n_steps == 0:
        return out[: problem.n]
    value_and_jacobian = _value_and_jacobian(decoder, problem.d, problem.D)
    eye = torch.eye(problem.d, dtype=problem.acc, device=problem.device)
    for rows in _chunks(problem.n_padded, problem.chunk_size):
        z = problem.Z[rows]
        lam = torch.full((z.shape[0],), float(damping), dtype=problem.acc, device=problem.device)
        g, J = value_and_jacobian(z.to(problem.dtype))
        g = g.to(problem.acc)
        energy = problem.energy(rows, z, g)
        for step in range(n_steps):
            residual = problem.w[rows] * (g - problem.x[rows])
            Jw = _whitened_jacobian(problem, rows, J)
            gradient = (Jw.transpose(1, 2) @ residual.unsqueeze(2)).squeeze(2) + z
            H = _gauss_newton(Jw) + lam[:, None, None] * eye
            L, info = torch.linalg.cholesky_ex(H)
            delta = -torch.cholesky_solve(gradient.unsqueeze(2), L).squeeze(2)
            trial = z + delta
            trial_energy = problem.energy(rows, trial, problem.decode(trial))
            accept = (info == 0) & (trial_energy < energy)  # NaN compares False
            z = torch.where(accept[:, None], trial, z)
            energy = torch.where(accept, trial_energy, energy)
            lam = torch.where(accept, lam * 0.1, lam * 10.0).clamp(_MIN_DAMPING, _MAX_DAMPING)
            if step < n_steps - 1:  # rows that kept their code get the same Jacobian back
                g, J = value_and_jacobian(z.to(problem.dtype))
                g = g.to(problem.acc)
        out[rows] = z
    return out[: problem.n]
