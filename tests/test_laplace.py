"""Laplace posterior and Gauss-Newton polish of latent codes (skvae._matching.laplace)."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from skvae._matching.laplace import decoder_jacobian, gauss_newton_polish, laplace_covariance
from skvae._matching.problem import MatchProblem


def random_mlp(d, D, hidden=32, seed=0, dtype=torch.float32):
    """A fixed random tanh MLP decoder, curved enough to make the posterior non-Gaussian."""
    generator = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(d, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, D),
    )
    with torch.no_grad():
        for p in net.parameters():
            scale = 1.5 / np.sqrt(p.shape[-1]) if p.ndim == 2 else 0.1
            p.copy_(torch.randn(p.shape, generator=generator) * scale)
    return net.to(dtype).eval()


def linear_decoder(d, D, seed=0):
    """``g(z) = A z + b`` in float64, and A, b."""
    generator = torch.Generator().manual_seed(seed)
    net = torch.nn.Linear(d, D).double()
    with torch.no_grad():
        net.weight.copy_(torch.randn(D, d, generator=generator, dtype=torch.float64))
        net.bias.copy_(torch.randn(D, generator=generator, dtype=torch.float64))
    return net, net.weight.detach().clone(), net.bias.detach().clone()


def exact_posterior(A, b, x, m, sigma):
    """Mean and covariance of the Gaussian posterior of z for a linear decoder."""
    Am = A * m[:, None]
    precision = Am.T @ Am / sigma**2 + torch.eye(A.shape[1], dtype=A.dtype)
    covariance = torch.linalg.inv(precision)
    mean = covariance @ (Am.T @ (m * (x - b))) / sigma**2
    return mean, covariance


def negative_log_posterior(decoder, Z, X, mask, sigma, chunk_size):
    """The match problem's energy, code ``i`` with target ``i``."""
    problem = MatchProblem(decoder, X, mask, sigma, chunk_size)
    return problem.energy(Z, torch.arange(Z.shape[0]))


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- Jacobian


def test_jacobian_matches_finite_differences():
    decoder = random_mlp(3, 20, dtype=torch.float64)
    Z = torch.randn(7, 3, generator=gen(1), dtype=torch.float64)
    G, J = decoder_jacobian(decoder, Z, chunk_size=4)
    assert G.shape == (7, 20) and J.shape == (7, 20, 3)
    with torch.no_grad():
        torch.testing.assert_close(G, decoder(Z), rtol=0, atol=1e-12)
        h = 1e-6
        for k in range(3):
            step = torch.zeros(3, dtype=torch.float64)
            step[k] = h
            numeric = (decoder(Z + step) - decoder(Z - step)) / (2 * h)
            torch.testing.assert_close(J[:, :, k], numeric, rtol=1e-6, atol=1e-8)


def test_jacobian_of_float32_decoder_is_float32_and_row_independent():
    decoder = random_mlp(2, 10)
    Z = torch.randn(9, 2, generator=gen(2))
    G, J = decoder_jacobian(decoder, Z.double(), chunk_size=4)
    assert G.dtype == J.dtype == torch.float32
    G1, J1 = decoder_jacobian(decoder, Z[5:6], chunk_size=4)
    assert torch.equal(G1, G[5:6]) and torch.equal(J1, J[5:6])
    G0, J0 = decoder_jacobian(decoder, Z[:0], chunk_size=4)
    assert G0.shape == (0, 10) and J0.shape == (0, 10, 2)


# ----------------------------------------------------------------------------- covariance


def test_covariance_is_the_exact_posterior_of_a_linear_decoder():
    decoder, A, b = linear_decoder(3, 12)
    n = 6
    Z = torch.randn(n, 3, generator=gen(3), dtype=torch.float64)  # any code: J is constant
    X = torch.randn(n, 12, generator=gen(4), dtype=torch.float64)
    mask = torch.rand(n, 12, generator=gen(5)) < 0.6
    for sigma in (0.2, 1.5):
        C = laplace_covariance(MatchProblem(decoder, X, mask, sigma, 4), Z)
        assert C.shape == (n, 3, 3) and C.dtype == torch.float64
        for i in range(n):
            _, expected = exact_posterior(A, b, X[i], mask[i].double(), sigma)
            torch.testing.assert_close(C[i], expected, rtol=1e-10, atol=1e-12)
            assert torch.equal(C[i], C[i].T)


def test_missing_points_widen_the_covariance():
    decoder = random_mlp(3, 30)
    Z = torch.randn(50, 3, generator=gen(6))
    X = torch.zeros(50, 30)
    mask = torch.rand(50, 30, generator=gen(7)) < 0.5
    full = laplace_covariance(MatchProblem(decoder, X, None, 0.1, 16), Z)
    partial = laplace_covariance(MatchProblem(decoder, X, mask, 0.1, 16), Z)
    difference = torch.linalg.eigvalsh(partial - full)
    assert bool(torch.all(difference >= -1e-10))  # partial ⪰ full (Loewner order)
    assert bool(torch.all(difference.max(dim=1).values > 0))
    assert bool(torch.all(torch.linalg.eigvalsh(full) > 0))


def test_row_without_observed_points_gets_the_prior():
    decoder = random_mlp(2, 8)
    Z = torch.randn(3, 2, generator=gen(8))
    X = torch.randn(3, 8, generator=gen(9))
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[1] = False
    C = laplace_covariance(MatchProblem(decoder, X, mask, 0.1, 4), Z)
    assert torch.equal(C[1], torch.eye(2, dtype=torch.float64))
    assert float(C[0].trace()) < 0.5
    # NaN targets are missing points too, with or without a mask.
    X_nan = torch.where(mask, X, torch.nan)
    torch.testing.assert_close(laplace_covariance(MatchProblem(decoder, X_nan, None, 0.1, 4), Z), C)


def test_covariance_is_row_independent():
    decoder = random_mlp(2, 8)
    Z = torch.randn(10, 2, generator=gen(10))
    X = torch.randn(10, 8, generator=gen(11))
    C = laplace_covariance(MatchProblem(decoder, X, None, 0.3, 4), Z)
    assert torch.equal(
        laplace_covariance(MatchProblem(decoder, X[7:8], None, 0.3, 4), Z[7:8]), C[7:8]
    )


# ----------------------------------------------------------------------------- polish


def test_negative_log_posterior_formula():
    decoder = random_mlp(2, 6)
    Z = torch.randn(5, 2, generator=gen(12), dtype=torch.float64)
    X = torch.randn(5, 6, generator=gen(13), dtype=torch.float64)
    mask = torch.rand(5, 6, generator=gen(14)) < 0.5
    with torch.no_grad():
        g = decoder(Z.float()).double()
    expected = ((mask * (g - X)) ** 2).sum(1) / (2 * 0.7**2) + (Z**2).sum(1) / 2
    value = negative_log_posterior(decoder, Z, X, mask, 0.7, chunk_size=4)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)


def test_polish_converges_to_the_exact_map_of_a_linear_decoder():
    decoder, A, b = linear_decoder(3, 12)
    n = 5
    X = torch.randn(n, 12, generator=gen(15), dtype=torch.float64)
    mask = torch.rand(n, 12, generator=gen(16)) < 0.6
    mask[4] = False  # nothing observed: the MAP is the prior's mode
    Z0 = 3 * torch.randn(n, 3, generator=gen(17), dtype=torch.float64)
    Z = gauss_newton_polish(MatchProblem(decoder, X, mask, 0.5, 4), Z0, n_steps=6)
    for i in range(n):
        expected, _ = exact_posterior(A, b, X[i], mask[i].double(), 0.5)
        # Steps whose decrease of E is below float64 resolution are refused: about √ε.
        torch.testing.assert_close(Z[i], expected, rtol=1e-7, atol=1e-7)


def test_polish_never_increases_the_objective_and_zero_steps_is_identity():
    decoder = random_mlp(2, 20)
    n = 40
    Z_true = torch.randn(n, 2, generator=gen(18))
    with torch.no_grad():
        X = decoder(Z_true) + 0.05 * torch.randn(n, 20, generator=gen(19))
    Z0 = 2 * torch.randn(n, 2, generator=gen(20))
    before = negative_log_posterior(decoder, Z0, X, None, 0.05, 16)
    assert torch.equal(
        gauss_newton_polish(MatchProblem(decoder, X, None, 0.05, 16), Z0, n_steps=0), Z0.double()
    )
    previous = before
    for n_steps in (1, 3, 10):
        Z = gauss_newton_polish(MatchProblem(decoder, X, None, 0.05, 16), Z0, n_steps=n_steps)
        after = negative_log_posterior(decoder, Z, X, None, 0.05, 16)
        assert bool(torch.all(after <= previous))
        previous = after
    # From random starts most rows reach the noise level (E ≈ D/2), some a local minimum.
    assert float(previous.median()) < 20 < 0.01 * float(before.median())
    # Row-independent: one target alone gets the same code.
    alone = gauss_newton_polish(MatchProblem(decoder, X[3:4], None, 0.05, 16), Z0[3:4], n_steps=10)
    assert torch.equal(alone, Z[3:4])


# ----------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "half-missing"])
def test_laplace_ellipses_are_calibrated(missing):
    """True codes fall in the 68.3 % and 95 % posterior ellipses as often as nominal.

    4,000 codes z ~ N(0, I) are decoded by a curved random MLP and observed with noise
    σ = 0.1 (the decoder is the true model, so the noise is all the error); the MAP is
    polished from the true code's neighbourhood. Binomial standard errors: 0.7 and 0.35
    points.
    """
    d, D, n, sigma = 2, 50, 4000, 0.1
    decoder = random_mlp(d, D)
    generator = gen(21)
    Z_true = torch.randn(n, d, generator=generator)
    with torch.no_grad():
        X = decoder(Z_true).double()
    X += sigma * torch.randn(n, D, generator=generator, dtype=torch.float64)
    mask = torch.rand(n, D, generator=generator) < 0.5 if missing else None
    Z0 = Z_true + 0.1 * torch.randn(n, d, generator=generator)
    Z = gauss_newton_polish(MatchProblem(decoder, X, mask, sigma, 512), Z0, n_steps=10)
    C = laplace_covariance(MatchProblem(decoder, X, mask, sigma, 512), Z)
    error = Z_true.double() - Z
    mahalanobis = torch.einsum("ni,ni->n", error, torch.linalg.solve(C, error)).numpy()
    for level in (0.683, 0.95):
        coverage = np.mean(mahalanobis <= chi2.ppf(level, d))
        assert abs(coverage - level) <= 0.03, (level, coverage)


# ----------------------------------------------------------------------------- validation


def test_bad_inputs_raise_clear_errors():
    decoder = random_mlp(2, 4)
    Z, X = torch.zeros(3, 2), torch.zeros(3, 4)
    with pytest.raises(TypeError, match="torch.Tensor"):
        laplace_covariance(MatchProblem(decoder, X, None, 0.1, 4), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="torch.Tensor"):
        MatchProblem(decoder, np.zeros((3, 4)), None, 0.1, 4)
    with pytest.raises(ValueError, match="2-D"):
        laplace_covariance(MatchProblem(decoder, X, None, 0.1, 4), Z[0])
    with pytest.raises(ValueError, match="rows"):
        laplace_covariance(MatchProblem(decoder, X[:2], None, 0.1, 4), Z)
    with pytest.raises(ValueError, match="mask has 2 rows"):
        MatchProblem(decoder, X, torch.ones(2, 4, dtype=torch.bool), 0.1, 4)
    with pytest.raises(ValueError, match="rows"):
        gauss_newton_polish(MatchProblem(decoder, X, None, 0.1, 4), Z[:2], n_steps=1)
    with pytest.raises(ValueError, match="mask has 3 columns"):
        laplace_covariance(MatchProblem(decoder, X, torch.ones(3, 3, dtype=torch.bool), 0.1, 4), Z)
    for sigma in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            MatchProblem(decoder, X, None, sigma, 4)
    for sigma in ("0.1", True, torch.ones(3)):
        with pytest.raises(TypeError, match="sigma"):
            MatchProblem(decoder, X, None, sigma, 4)
    for chunk_size in (0, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            negative_log_posterior(decoder, Z, X, None, 0.1, chunk_size)
    with pytest.raises(ValueError, match="n_steps"):
        gauss_newton_polish(MatchProblem(decoder, X, None, 0.1, 4), Z, n_steps=-1)
    with pytest.raises(ValueError, match="damping"):
        gauss_newton_polish(MatchProblem(decoder, X, None, 0.1, 4), Z, n_steps=1, damping=-1.0)
