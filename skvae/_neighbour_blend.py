"""Filled-in points that lean on their observed neighbours, as much as the data says.

A decoded curve misses each observed curve by a residual that varies smoothly along the
grid wherever the model's misfit (not the observation noise) dominates it, and on densely
sampled smooth curves a point is well predicted by the straight line between its observed
neighbours. The fill at a missing point blends both:

    fill = decoded + a · (residual interpolated) + b · (decoded interpolated − decoded)

where "interpolated" is the linear interpolation along the grid between the nearest
observed points on each side (the nearest one's value beyond the last observed point).
With ``a = b = 0`` the fill is the decoded curve; with ``a = b = 1`` it is the linear
interpolation of the observed points; ``a = 1, b = 0`` carries the residuals of the
neighbours over to the decoded curve. The weights depend on the distance to the nearest
observed point and are estimated from training curves by least squares (bounded to
[0, 1]): noisy curves, whose residuals do not carry over, keep the decoded curve; smooth
curves whose model misfits them lean on their neighbours.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import lsq_linear
from sklearn.metrics import pairwise_distances_chunked

__all__ = [
    "blend_lags",
    "blended_fill",
    "bounded_least_squares",
    "distance_to_observed",
    "fit_blend_weights",
    "fit_donor_gaussian",
    "fit_neighbour_shares",
    "gaussian_fill",
    "nearest_curves_fill",
    "neighbour_mixed_fill",
    "observed_neighbours",
    "weights_at_distance",
]

#: How many distances along the grid the weights are estimated at.
N_LAGS = 12
#: Fewest points a distance's weights are estimated from; with fewer, it takes the
#: weights of the nearer distance (or 0).
MIN_POINTS = 100
#: Points per block of the normal equations of :func:`fit_neighbour_shares` (bounds the
#: memory of its design: on ACSF1's draws, 2.2 million points, 1.3 GB at once).
SHARES_BLOCK = 65_536
#: Ridge added to the Gram matrix of the nearest curves' differences before solving for
#: their locally linear weights, relative to its mean diagonal (the mean squared distance
#: to them). Measured on curves with one gap of 30 % of the grid, 20 neighbours, RMSE on
#: the missing points: Gaussian bumps 0.049 (0.1), 0.046 (0.3), 0.046 (1); damped
#: oscillations 0.0011 (0.3), 0.0020 (1); Beta densities 0.0033 (0.3), 0.0045 (1);
#: KNNImputer's average of the same 5 nearest complete curves 0.052, 0.0066, 0.011.
NEIGHBOUR_RIDGE = 0.3
#: The donors' Gaussian (:func:`fit_donor_gaussian`) keeps at most this many leading
#: principal components, of variance above its noise.
GAUSSIAN_COMPONENTS = 64
#: Its isotropic noise variance, relative to the donors' mean variance per grid point:
#: small, so that the observed points of a curve from a near-linear family determine its
#: missing ones. Measured on Tecator spectra (161 curves of 100 points, RMSE on the
#: missing points of the Gaussian's fill alone, 30 % missing at random / one 30 % gap):
#: 0.00034 / 0.0033 at 1e-6, 0.00092 / 0.0051 at 1e-4, 0.0055 / 0.024 at 1e-2.
GAUSSIAN_RIDGE = 1e-6
#: Times the Gaussian is refitted to the donors with their missing points filled by
#: itself: the model's fill of them blurs the covariance. Where it is affordable, each
#: refit is a step of expectation-maximisation, whose covariance adds the filled points'
#: conditional covariance, ``GAUSSIAN_EM_STEPS`` times; otherwise ``GAUSSIAN_REFITS``
#: refits to the fills alone, which shrink the spread of the missing points with every
#: refit. Filled-point RMSE of the Gaussian alone, Tecator (161 curves), 30 % missing at
#: random: 0.00085 with the model's fill, 0.00034 after two refits, 0.00016 after 20 of
#: either (IterativeImputer 0.00016); ItalyPowerDemand (822 curves of 24 points), 30 % at
#: random: 0.175 after two refits, 0.25 after 20 refits, 0.165 after 20 steps; GunPoint
#: (150 curves), 30 % at random: 0.110 after two refits, 0.083 after 20 steps.
GAUSSIAN_REFITS, GAUSSIAN_EM_STEPS = 2, 20
#: Most multiply-adds the steps may take: a step takes about n_donors * k * n_features *
#: (k + n_features), for the posterior precisions of k components and the conditional
#: covariance's n_features² entries. 10^10 is about 5 s on one core: 20 steps on Tecator's,
#: GunPoint's and ItalyPowerDemand's training curves take 1.5-4 s; on ACSF1's 150 curves
#: of 1,460 points they would take 35 s and on 10,000 curves of 100 points about 130 s,
#: where the two refits take 2.4 s and 3.5 s.
GAUSSIAN_EM_WORK = 1e10
#: Rows per batch of :func:`gaussian_fill`'s solves.
GAUSSIAN_CHUNK = 256


def blend_lags(n_features: int) -> np.ndarray:
    """Distances along the grid (in points) at which the blend weights are estimated.

    Geometrically spaced from 1 to half the grid; empty on grids of fewer than 3 points,
    where no point has neighbours on each side.

    Examples
    --------
    >>> blend_lags(100)
    array([ 1,  2,  3,  4,  6,  8, 12, 17, 24, 34, 49])
    >>> blend_lags(2).size
    0
    """
    if n_features < 3:
        return np.empty(0, dtype=np.int64)
    lags = np.geomspace(1, (n_features - 1) // 2, N_LAGS)
    return np.unique(np.round(lags).astype(np.int64))


def fit_blend_weights(X: np.ndarray, decoded: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """The weights ``(a, b)`` of the blend at each distance in ``lags``.

    At distance ``k``, over every observed point whose two neighbours ``k`` points away
    are observed, the residual (``X - decoded``) is regressed by least squares, with both
    weights bounded to [0, 1], on the mean of the neighbours' residuals (weight ``a``) and
    on the mean of the neighbours' decoded values minus the point's own (weight ``b``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Curves; NaN marks a missing point.
    decoded : ndarray of shape (n_samples, n_features)
        The model's curves for ``X``.
    lags : ndarray of int
        Increasing distances, at most ``(n_features - 1) // 2``.

    Returns
    -------
    weights : ndarray of shape (len(lags), 2)
        ``a`` and ``b`` at each distance.

    Examples
    --------
    A smooth misfit carries over to the neighbours; independent noise does not:

    >>> grid = np.linspace(0, 1, 50)
    >>> X = np.sin(6 * grid) * np.arange(1, 21)[:, None] / 20
    >>> bool(fit_blend_weights(X, 0.9 * X, blend_lags(50))[0, 0] > 0.99)
    True
    >>> noise = np.random.default_rng(0).normal(size=X.shape)
    >>> bool(fit_blend_weights(X + noise, X, blend_lags(50))[0, 0] < 0.1)
    True
    """
    residual = X - decoded
    observed = ~np.isnan(residual)
    n_features = X.shape[1]
    weights = np.zeros((len(lags), 2))
    for i, lag in enumerate(lags):
        centre = slice(lag, n_features - lag)
        left, right = slice(0, n_features - 2 * lag), slice(2 * lag, n_features)
        usable = observed[:, centre] & observed[:, left] & observed[:, right]
        if usable.sum() < MIN_POINTS:
            weights[i] = weights[i - 1] if i else 0.0
            continue
        sides = ((residual[:, left] + residual[:, right]) / 2)[usable]
        chord = ((decoded[:, left] + decoded[:, right]) / 2 - decoded[:, centre])[usable]
        design = np.column_stack([sides, chord])
        target = residual[:, centre][usable]
        weights[i] = bounded_least_squares(design.T @ design, design.T @ target)
    return weights


def bounded_least_squares(gram: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """``x`` in [0, 1] that minimises ``‖A @ x - y‖²``, from its normal equations
    ``gram = Aᵀ A`` and ``moment = Aᵀ y``.

    :func:`scipy.optimize.lsq_linear` solves it with the rows of ``A`` replaced by the
    square root of ``gram`` (by its eigendecomposition, over its non-null eigenvalues)
    and ``y`` by the matching projection of ``moment``, which leaves the objective
    unchanged up to a constant. The weights of the blend and the shares are fitted to
    one row per point of thousands of curves (millions on a grid of 1,460 points) with
    a few dozen columns, so the solver iterates on a few dozen rows instead: on ACSF1
    (150 curves of 1,460 points, one 30 % gap) ``lsq_linear`` on the rows themselves
    takes 21 s of the imputer's 96 s fit, and the same shares (to 1e-8) come from the
    normal equations in a fraction of a second.

    Parameters
    ----------
    gram : ndarray of shape (n_columns, n_columns)
    moment : ndarray of shape (n_columns,)

    Returns
    -------
    x : ndarray of shape (n_columns,)
        0 where ``gram`` is 0 (every ``x`` fits as well there).

    Examples
    --------
    The second weight would be 1.5 without its bound:

    >>> A, y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.2, 2.0, 1.2])
    >>> bounded_least_squares(A.T @ A, A.T @ y).round(4)
    array([0.2, 1. ])
    """
    values, vectors = np.linalg.eigh(gram)
    kept = values > max(values[-1], 0.0) * len(values) * np.finfo(float).eps
    if not kept.any():
        return np.zeros(len(moment))
    root = np.sqrt(values[kept])
    rows = root[:, None] * vectors[:, kept].T
    return lsq_linear(rows, (vectors[:, kept].T @ moment) / root, bounds=(0.0, 1.0)).x


def blended_fill(
    X: np.ndarray, decoded: np.ndarray, lags: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``X`` with its missing points filled by the blend of ``decoded`` and the neighbours.

    Each missing point takes the weights of its distance to the nearest observed point
    (interpolated over the logarithm of the distance between ``lags``). Observed points
    are returned untouched; with no lags or all weights 0, the fill is ``decoded`` itself.

    Examples
    --------
    >>> X = np.array([[0.0, np.nan, 2.0, np.nan, np.nan]])
    >>> decoded = np.array([[0.5, 1.5, 2.5, 3.5, 4.5]])
    >>> lags = np.array([1, 2])
    >>> blended_fill(X, decoded, lags, np.array([[1.0, 0.0], [0.5, 0.0]]))
    array([[0.  , 1.  , 2.  , 3.  , 4.25]])
    >>> blended_fill(X, decoded, lags, np.ones((2, 2)))  # linear interpolation
    array([[0., 1., 2., 2., 2.]])
    """
    missing = np.isnan(X)
    if not missing.any() or not np.any(weights):
        return np.where(missing, decoded, X)
    n_features = X.shape[1]
    index = np.arange(n_features)
    left, right = observed_neighbours(missing)
    has_left, has_right = left >= 0, right < n_features
    span = np.maximum(right - left, 1)  # 0 at observed points, left alone
    share = np.where(has_left & has_right, (index - left) / span, np.where(has_left, 0.0, 1.0))

    def interpolated(values: np.ndarray) -> np.ndarray:
        at_left = np.take_along_axis(values, np.clip(left, 0, n_features - 1), axis=1)
        at_right = np.take_along_axis(values, np.clip(right, 0, n_features - 1), axis=1)
        return (1 - share) * at_left + share * at_right

    distance = _distance(left, right, n_features)
    a, b = np.moveaxis(weights_at_distance(distance, lags, weights), -1, 0)
    empty = ~(has_left | has_right)  # a row with no observed point keeps the decoded curve
    a[empty] = b[empty] = 0.0
    residual = np.where(missing, 0.0, X - decoded)
    fill = decoded + a * interpolated(residual) + b * (interpolated(decoded) - decoded)
    return np.where(missing, fill, X)


def observed_neighbours(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest observed point at or before, and at or after, each point of the grid.

    Indices along the last axis: -1 where no point before is observed, ``n_features``
    where none after is.

    Examples
    --------
    >>> observed_neighbours(np.array([[True, False, True, True, False, True]]))
    (array([[-1,  1,  1,  1,  4,  4]]), array([[1, 1, 4, 4, 4, 6]]))
    """
    n_features = missing.shape[-1]
    index = np.arange(n_features)
    left = np.maximum.accumulate(np.where(missing, -1, index), axis=-1)
    right = np.flip(
        np.minimum.accumulate(np.flip(np.where(missing, n_features, index), -1), axis=-1), -1
    )
    return left, right


def distance_to_observed(missing: np.ndarray) -> np.ndarray:
    """Each point's distance along the grid (in points) to the nearest observed point.

    0 at observed points; ``n_features`` throughout a row with no observed point.

    Examples
    --------
    >>> distance_to_observed(np.array([[False, True, True, True, False, True]]))
    array([[0, 1, 2, 1, 0, 1]])
    """
    return _distance(*observed_neighbours(missing), missing.shape[-1])


def _distance(left: np.ndarray, right: np.ndarray, n_features: int) -> np.ndarray:
    """Distance to the nearer of the observed neighbours ``left`` and ``right``
    (:func:`observed_neighbours`); ``n_features`` where neither exists."""
    index = np.arange(n_features)
    return np.minimum(
        np.where(left >= 0, index - left, n_features),
        np.where(right < n_features, right - index, n_features),
    )


def weights_at_distance(distance: np.ndarray, lags: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weights`` given at ``lags``, interpolated linearly over the logarithm of ``distance``.

    Distances below 1 count as 1; beyond the end lags the end weights hold.

    Parameters
    ----------
    distance : ndarray
        Distances along the grid, any shape.
    lags : ndarray of int, shape (n_lags,)
        Increasing distances.
    weights : ndarray of shape (n_lags, n_weights)
        The weights at ``lags``.

    Returns
    -------
    ndarray of shape ``distance.shape + (n_weights,)``

    Examples
    --------
    >>> weights_at_distance(np.array([1, 2, 9]), np.array([1, 4]), np.array([[0.0], [1.0]]))
    array([[0. ],
           [0.5],
           [1. ]])
    """
    position = np.log(np.maximum(distance, 1))
    log_lags = np.log(lags)
    return np.stack([np.interp(position, log_lags, column) for column in weights.T], axis=-1)


def fit_neighbour_shares(
    truth: np.ndarray,
    filled: np.ndarray,
    neighbours: np.ndarray,
    distance: np.ndarray,
    lags: np.ndarray,
) -> np.ndarray:
    """The share of each nearest-curve fill at each distance in ``lags``.

    The shares ``s`` (bounded to [0, 1], interpolated over the logarithm of the distance
    as in :func:`weights_at_distance`) minimise the squared error of
    ``filled + Σ_k s_k(distance) * (neighbours[:, k] - filled)`` against ``truth`` over
    the given points: hidden points of training curves, with the fills that the model
    and the nearest curves give them. A distance whose interpolation weights over the
    points sum to less than :data:`MIN_POINTS` takes the shares of the nearer distance
    (0 at the first).

    Parameters
    ----------
    truth, filled : ndarray of shape (n_points,)
        The hidden points' values and the model's fill.
    neighbours : ndarray of shape (n_points, n_fills)
        The nearest curves' fills.
    distance : ndarray of shape (n_points,)
        Each point's distance to the nearest observed point of its curve.
    lags : ndarray of int
        Increasing distances at which the shares are estimated.

    Returns
    -------
    shares : ndarray of shape (len(lags), n_fills)

    Examples
    --------
    Far from the observed points the nearest curves are right, next to them the model:

    >>> distance = np.repeat([1, 8], 100)
    >>> truth = np.repeat([0.0, 1.0], 100)
    >>> filled, neighbours = np.zeros(200), np.ones((200, 1))
    >>> lags = np.array([1, 8, 20])
    >>> fit_neighbour_shares(truth, filled, neighbours, distance, lags).round(3)
    array([[0.],
           [1.],
           [1.]])
    """
    n_lags, n_fills = len(lags), neighbours.shape[1]
    support = np.zeros(n_lags)  # the interpolation weights' sum at each distance
    gram, moment = np.zeros((n_lags * n_fills,) * 2), np.zeros(n_lags * n_fills)
    unit = np.eye(n_lags)
    for start in range(0, len(truth), SHARES_BLOCK):
        rows = slice(start, start + SHARES_BLOCK)
        basis = weights_at_distance(distance[rows], lags, unit)  # (points, lags)
        support += basis.sum(axis=0)
        moved = neighbours[rows] - filled[rows, None]
        design = (basis[:, :, None] * moved[:, None, :]).reshape(len(basis), -1)
        gram += design.T @ design
        moment += design.T @ (truth[rows] - filled[rows])
    supported = support >= MIN_POINTS
    shares = np.zeros((n_lags, n_fills))
    if not supported.any():
        return shares
    columns = np.repeat(supported, n_fills)
    solution = bounded_least_squares(gram[np.ix_(columns, columns)], moment[columns])
    shares[supported] = solution.reshape(-1, n_fills)
    # a distance with too few points takes the shares of the nearer distance (or 0)
    for i in np.flatnonzero(~supported[1:]) + 1:
        shares[i] = shares[i - 1]
    return shares


def neighbour_mixed_fill(
    X: np.ndarray, filled: np.ndarray, neighbours: list, lags: np.ndarray, shares: np.ndarray
) -> np.ndarray:
    """``filled`` moved toward each of ``neighbours`` at the missing points of ``X``.

    Each missing point takes the shares of its distance to the nearest observed point
    (:func:`weights_at_distance`); observed points, and rows with no observed point, keep
    ``filled``.

    Parameters
    ----------
    X, filled : ndarray of shape (n_samples, n_features)
        Curves (NaN missing) and the model's fill.
    neighbours : list of n_fills ndarrays of shape (n_samples, n_features)
        The nearest curves' fills.
    lags : ndarray of int, shape (n_lags,)
    shares : ndarray of shape (n_lags, n_fills)

    Examples
    --------
    >>> X = np.array([[0.0, np.nan, np.nan, np.nan, np.nan, 5.0]])
    >>> filled = np.zeros((1, 6))
    >>> shares = np.array([[0.0], [1.0]])
    >>> neighbour_mixed_fill(X, filled, [np.ones((1, 6))], np.array([1, 2]), shares)
    array([[0., 0., 1., 1., 0., 0.]])
    """
    missing = np.isnan(X)
    if not missing.any() or not np.any(shares):
        return filled
    share = weights_at_distance(distance_to_observed(missing), lags, shares)
    share[missing.all(axis=1)] = 0.0
    mixed = filled.copy()
    for k, fill in enumerate(neighbours):
        mixed += share[..., k] * (fill - filled)
    return np.where(missing, mixed, filled)


def fit_donor_gaussian(
    donors: np.ndarray, completed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The Gaussian of the donor curves, for :func:`gaussian_fill`: its mean, leading
    principal components, their variances, and an isotropic noise variance.

    The mean and covariance are those of ``completed`` (``donors`` with their missing
    points filled, by the model), refitted to the donors with their missing points filled
    by the Gaussian itself: by :data:`GAUSSIAN_EM_STEPS` steps of
    expectation-maximisation (the covariance adds the filled points' conditional
    covariance) where they take at most :data:`GAUSSIAN_EM_WORK` multiply-adds, otherwise
    :data:`GAUSSIAN_REFITS` times to the fills alone. The covariance is
    probabilistic PCA's: up to :data:`GAUSSIAN_COMPONENTS` leading components, plus
    :data:`GAUSSIAN_RIDGE` times the mean variance per point on the diagonal.

    Parameters
    ----------
    donors : ndarray of shape (n_donors, n_features)
        Curves, NaN where missing.
    completed : ndarray of shape (n_donors, n_features)
        The same curves with every point finite.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    components : ndarray of shape (n_components, n_features)
        Orthonormal rows.
    variances : ndarray of shape (n_components,)
    noise : float

    Examples
    --------
    Noise-free curves on a plane of curves, half of them with their last three points
    filled 1 % off: the refits recover the plane, and the first half of three curves
    gives their second half.

    >>> t = np.linspace(0, 1, 8)
    >>> rng = np.random.default_rng(0)
    >>> curves = rng.normal(size=(40, 2)) @ np.stack([np.sin(3 * t), t**2])
    >>> donors = curves.copy()
    >>> donors[::2, 5:] = np.nan
    >>> completed = np.where(np.isnan(donors), curves + 0.01 * rng.normal(size=(40, 8)), donors)
    >>> mean, components, variances, noise = fit_donor_gaussian(donors, completed)
    >>> int(np.count_nonzero(variances > 1e-3))  # the plane; the rest is at the noise
    2
    >>> X = curves[:3].copy()
    >>> X[:, :4] = np.nan
    >>> filled = gaussian_fill(X, mean, components, variances, noise, fallback=X)
    >>> bool(np.abs(filled - curves[:3]).max() < 1e-5)
    True
    """
    missing = np.isnan(donors)
    curves = np.asarray(completed, dtype=np.float64)
    n_donors, n_features = curves.shape
    k = min(GAUSSIAN_COMPONENTS, n_features)
    work = GAUSSIAN_EM_STEPS * n_donors * k * n_features * (k + n_features)
    em = work <= GAUSSIAN_EM_WORK
    n_refits = GAUSSIAN_EM_STEPS if em else GAUSSIAN_REFITS
    spread = np.zeros((n_features, n_features))  # of the filled points, about their fill
    for refit in range(n_refits + 1):
        mean = curves.mean(axis=0)
        centred = curves - mean
        covariance = (centred.T @ centred + spread) / max(n_donors - 1, 1)
        variances, vectors = np.linalg.eigh(covariance)
        variances, vectors = variances[::-1], vectors[:, ::-1]  # largest first
        noise = GAUSSIAN_RIDGE * float(variances.sum()) / n_features
        kept = min(GAUSSIAN_COMPONENTS, int(np.count_nonzero(variances > noise)))
        gaussian = (mean, np.ascontiguousarray(vectors[:, :kept].T), variances[:kept], noise)
        if refit == n_refits or not missing.any():
            break
        if em:
            spread = _conditional_scatter(missing, *gaussian[1:])
        curves = np.where(missing, gaussian_fill(donors, *gaussian, curves), donors)
    return gaussian


def _score_grams(observed: np.ndarray, components: np.ndarray, prior: np.ndarray):
    """Each row's posterior precision of the principal-component scores given its
    ``observed`` points, in units of the noise, one product per row (a stack), so that
    a row's result does not depend on the other rows of its batch."""
    seen = components[None, :, :] * observed[:, None, :]
    return seen, seen @ components.T + prior


def _conditional_scatter(
    missing: np.ndarray, components: np.ndarray, variances: np.ndarray, noise: float
) -> np.ndarray:
    """Sum over the rows of the conditional covariance of their ``missing`` points given
    the observed ones, under the Gaussian (zero outside the missing points): the term by
    which expectation-maximisation's covariance exceeds that of the filled curves."""
    prior = np.diag(noise / variances)
    n_features = missing.shape[1]
    total = np.zeros((n_features, n_features))
    for start in range(0, len(missing), GAUSSIAN_CHUNK):
        rows = missing[start : start + GAUSSIAN_CHUNK]
        _, gram = _score_grams(~rows, components, prior)
        unseen = components[None, :, :] * rows[:, None, :]
        solved = np.linalg.solve(gram, unseen)
        total += unseen.transpose(2, 0, 1).reshape(n_features, -1) @ solved.reshape(-1, n_features)
    return noise * (total + np.diag(missing.sum(axis=0).astype(float)))


def gaussian_fill(
    X: np.ndarray,
    mean: np.ndarray,
    components: np.ndarray,
    variances: np.ndarray,
    noise: float,
    fallback: np.ndarray,
) -> np.ndarray:
    """``X`` filled by its conditional mean under the Gaussian of
    :func:`fit_donor_gaussian`: the posterior mean of each curve's principal-component
    scores given its observed points, mapped back to the grid (probabilistic PCA's
    estimate; with every component kept, the conditional mean of the missing points
    given the observed ones).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Curves; NaN marks a missing point.
    mean, components, variances, noise
        The Gaussian, as :func:`fit_donor_gaussian` returns it.
    fallback : ndarray of shape (n_samples, n_features)
        The fill of rows with no observed point.

    Returns
    -------
    filled : ndarray of shape (n_samples, n_features)
        The Gaussian's curve at every point (observed points included), ``fallback`` on
        empty rows.
    """
    observed = ~np.isnan(X)
    centred = np.where(observed, X - mean, 0.0)
    filled = np.empty(X.shape, dtype=np.float64)
    # the prior precision of the scores, in units of the noise
    prior = np.diag(noise / variances)
    for start in range(0, len(X), GAUSSIAN_CHUNK):
        rows = slice(start, start + GAUSSIAN_CHUNK)
        seen, gram = _score_grams(observed[rows], components, prior)
        projected = seen @ centred[rows, :, None]
        scores = np.linalg.solve(gram, projected)
        filled[rows] = mean + (components.T[None, :, :] @ scores)[..., 0]
    empty = ~observed.any(axis=1)
    filled[empty] = fallback[empty]
    return filled


def nearest_curves_fill(
    donors: np.ndarray, X: np.ndarray, n_neighbors: int, fallback: np.ndarray
) -> np.ndarray:
    """``X`` filled by a locally linear combination of its nearest ``donors``.

    Each row's ``n_neighbors`` nearest donors (NaN-Euclidean distance over the row's
    observed points, :func:`~sklearn.metrics.pairwise.nan_euclidean_distances`) are
    combined with the weights, summing to 1, that best reconstruct the row's observed
    points: the barycentric weights of locally linear embedding (as in scikit-learn's
    :class:`~sklearn.manifold.LocallyLinearEmbedding`, whose helper takes complete
    vectors only, not each row's own observed points), with a ridge of
    :data:`NEIGHBOUR_RIDGE` times the mean squared distance. On a smooth family of
    curves sampled densely, the combination follows the family between the neighbours
    where their plain average (:class:`~sklearn.impute.KNNImputer`) blurs it; the ridge
    draws it toward that average where the observed points tell little.

    Parameters
    ----------
    donors : ndarray of shape (n_donors, n_features)
        Complete curves.
    X : ndarray of shape (n_samples, n_features)
        Curves; NaN marks a missing point.
    n_neighbors : int
        How many donors combine (all of them if fewer).
    fallback : ndarray of shape (n_samples, n_features)
        The fill of rows with no observed point.

    Returns
    -------
    filled : ndarray of shape (n_samples, n_features)
        The combination at every point (observed points included), ``fallback`` on
        empty rows.

    Examples
    --------
    Straight lines, the right half of ``0.5 + 0.5 t`` missing: the nearest lines'
    combination follows its slope, where their average (KNNImputer's fill) flattens:

    >>> from sklearn.impute import KNNImputer
    >>> t = np.linspace(0, 1, 6)
    >>> donors = np.array([a + b * t for a in (0.0, 0.4, 1.0) for b in (-1.0, 0.0, 0.4, 1.0)])
    >>> X = np.array([[0.5, 0.6, 0.7, np.nan, np.nan, np.nan]])
    >>> nearest_curves_fill(donors, X, 4, np.zeros((1, 6)))[0, 3:].round(2)
    array([0.75, 0.83, 0.9 ])
    >>> KNNImputer(n_neighbors=4).fit(donors).transform(X)[0, 3:].round(2)
    array([0.61, 0.63, 0.65])
    """
    n_neighbors = min(n_neighbors, len(donors))
    observed = ~np.isnan(X)
    targets = np.where(observed, X, 0.0)

    def combine(distances: np.ndarray, start: int) -> np.ndarray:
        rows = slice(start, start + len(distances))
        nearest = np.argpartition(np.nan_to_num(distances, nan=0.0), n_neighbors - 1, axis=1)
        neighbours = donors[nearest[:, :n_neighbors]]  # (rows, n_neighbors, n_features)
        differences = (neighbours - targets[rows, None, :]) * observed[rows, None, :]
        gram = differences @ differences.transpose(0, 2, 1)
        diagonal = np.einsum("nkk->n", gram) / n_neighbors
        ridge = NEIGHBOUR_RIDGE * np.where(diagonal > 0, diagonal, 1.0)
        gram += ridge[:, None, None] * np.eye(n_neighbors)
        weights = np.linalg.solve(gram, np.ones((len(gram), n_neighbors, 1)))[..., 0]
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("nk,nkp->np", weights, neighbours)

    chunks = pairwise_distances_chunked(X, donors, metric="nan_euclidean", reduce_func=combine)
    filled = np.concatenate(list(chunks)) if len(X) else np.empty_like(X)
    empty = ~observed.any(axis=1)
    filled[empty] = fallback[empty]
    return filled
