"""The Gauss-Newton curvature of the negative log-posterior of latent codes.

Decoder Jacobians of a chunk of codes by batched autograd (``torch.func.jacfwd`` or
``jacrev``, vectorised with ``vmap``), whitened by the observed points and the noise, the
Gauss-Newton Hessian ``Jᵀ M J / σ² + I`` built from them, and symmetric inverses of such
matrices by Cholesky: the linear algebra of :mod:`skvae._matching.laplace`.
"""

from __future__ import annotations

import warnings

import torch

from .laplace_problem import Decoder, _Problem


def _import_forward_ad_decompositions() -> None:
    """Import what ``jacfwd`` imports on first use, without its ``torch.jit`` warnings.

    torch registers its forward-mode decompositions with ``torch.jit.script``, which warns
    (DeprecationWarning, 18 times) on first use: an internal detail users cannot act on.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import torch._decomp.decompositions_for_jvp  # noqa: F401
        except ImportError:  # pragma: no cover - moved in another torch version
            pass


def _value_and_jacobian(decoder: Decoder, d: int, D: int | None = None):
    """A function mapping a chunk of codes (c, d) to (g (c, D), J (c, D, d))."""
    _import_forward_ad_decompositions()

    def single(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = decoder(z.unsqueeze(0)).squeeze(0)
        return g, g

    # Forward mode costs d decoder passes, reverse mode D: codes are short, curves long.
    transform = torch.func.jacfwd if D is None or d <= D else torch.func.jacrev
    jacobian = torch.func.vmap(transform(single, has_aux=True))

    def value_and_jacobian(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        J, g = jacobian(z)
        return g, J

    return value_and_jacobian


def _whitened_jacobian(problem: _Problem, rows: slice, J: torch.Tensor) -> torch.Tensor:
    """``m / σ ⊙ J`` for each row of a chunk, in the accumulation dtype."""
    return problem.w[rows].unsqueeze(2) * J.to(problem.acc)


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
