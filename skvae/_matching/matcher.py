"""LatentMatcher: invert curves by batched Nelder-Mead in a fitted VAE's latent space."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    MetaEstimatorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._dask import is_dask_array, map_rows
from .._utils import one_torch_thread, unchanged_on_failure
from .._vae import BetaCurveVAE
from .._warnings import warn_at_caller
from .matcher_fitting import LatentMatcherFittingMixin
from .matcher_search import LatentMatcherSearchMixin

__all__ = ["LatentMatcher"]


class LatentMatcher(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    MetaEstimatorMixin,
    LatentMatcherFittingMixin,
    LatentMatcherSearchMixin,
    BaseEstimator,
):
    r"""Match target curves in a VAE's latent space by batched Nelder-Mead.

    For each target curve ``x`` (a row of ``X``), find the latent code ``z`` whose decoded
    curve best matches it, minimising

    .. math::

        f(z) = \lVert m \odot (g(z) - x) \rVert_2
        + \tfrac{\lambda}{2} \lVert z \rVert_2^2

    where ``g`` is the decoder in data units (``estimator_.inverse_transform``), ``m``
    masks the observed points (NaN entries of ``x`` are missing and do not count) and
    ``λ = prior_weight``. With ``λ = 0`` (default) this is the objective of the blog post
    on Beta-distribution curves that skvae follows, the L2 distance over the observed
    points. With ``λ > 0`` the second term is ``λ`` times the
    negative log-density of the N(0, I) prior (up to a constant): MAP-like matching,
    pulled toward the prior's mode, trading one data unit of L2 error for ``λ/2`` of
    squared latent norm.

    With ``objective="posterior"`` the objective is instead the negative log-posterior of
    the code under the VAE's own model, up to a constant (in nats),

    .. math::

        f(z) = \frac{\lVert m \odot (g(z) - x) \rVert_2^2}{2 \sigma^2}
        + \tfrac{1}{2} \lVert z \rVert_2^2

    with ``σ = noise`` (or the VAE's ``noise_``): its minimum is the MAP code, where
    :meth:`match`'s Laplace ``covariance`` describes how sure the match is.

    All targets are optimised together by a Nelder-Mead engine in torch that reproduces
    :func:`scipy.optimize.minimize` (``method="Nelder-Mead"``) step by step, with one
    batched decoder call per step, on the VAE's device (its ``device`` parameter: a GPU
    with ``device="cuda"``); results are numpy arrays. Results are deterministic and
    row-independent on a given device; a target's objective at its code is never above
    its objective at its first start.

    Parameters
    ----------
    estimator : BetaCurveVAE, default=None
        The VAE to match with; None means ``BetaCurveVAE(random_state=random_state)``.
    prefit : bool, default=False
        If True, ``estimator`` must already be fitted and is used as it is (no clone,
        no refit); :meth:`fit` only checks it and the width of ``X``.
    start : {"encoder", "zero"}, default="encoder"
        First start point of each target: the encoder's posterior mean, or ``z = 0``
        (the prior's mode, as in the blog post). A partial target is encoded after filling
        its missing points with the training mean curve, refined a few times with the
        decoded curve of its current code.
    n_starts : int, default=1
        Number of starts per target; the ``n_starts - 1`` extra starts are shared by all
        targets, and the best result is kept. With ``random_state=None`` they are fixed
        quasi-random points of the N(0, I) prior (the unscrambled Halton sequence after
        its first point, mapped through the normal quantile function), the same at every
        call; otherwise they are drawn from N(0, I) with ``random_state``.
    initial_step : "auto" or float, default="auto"
        Edge length, in latent units, of each start's initial simplex along each latent
        axis. ``"auto"``: for the encoder start of a complete target, its posterior
        standard deviation along each axis (at least ``10 * xatol``); 0.1 for the
        encoder start of a partial target; 0.5 for zero and random starts.
        ``start="zero", initial_step=0.00025`` is scipy's default simplex at z = 0 (the
        blog post's search).
    prior_weight : float, default=0.0
        Weight ``λ`` of the N(0, I) log-prior term of the ``"l2"`` objective.
    objective : {"l2", "posterior"}, default="l2"
        What is minimised: the L2 distance over the observed points (plus the
        ``prior_weight`` term), or the negative log-posterior (see above).
    noise : float, default=None
        Observation noise standard deviation ``σ``, in the curves' units, of the
        posterior objective and of :meth:`match`'s ``covariance``; None means the VAE's
        ``noise_``.
    polish : {"gauss-newton"} or None, default=None
        With ``objective="posterior"``: refine each Nelder-Mead code by a few damped
        Gauss-Newton (Levenberg-Marquardt) steps, kept where they lower the objective.
    xatol, fatol : float, default=1e-4
        Nelder-Mead tolerances as in scipy: a start converges when its simplex's
        vertices are within ``xatol`` (latent units) of the best one and their
        objective values within ``fatol`` (data units).
    max_iter : int, default=None
        Maximum Nelder-Mead iterations per start. None means scipy's default caps:
        ``200 * latent_dims`` iterations and as many objective evaluations.
    random_state : int, RandomState instance or None, default=None
        Draws the extra starts from N(0, I) when not None (None: fixed quasi-random
        starts, see ``n_starts``; a RandomState instance gives other starts at each
        call) and, when ``estimator`` is None, seeds the default VAE.

    Attributes
    ----------
    estimator_ : BetaCurveVAE
        The fitted VAE: a fitted clone of ``estimator``, or ``estimator`` itself when
        ``prefit=True``.
    n_features_in_ : int
        Number of grid points of the curves.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    BetaCurveVAE : The VAE whose latent space is searched.
    scipy.optimize.minimize : The per-target reference (``method="Nelder-Mead"``).

    Notes
    -----
    A VAE needs complete curves: with ``prefit=False``, :meth:`fit` trains it on the rows
    of ``X`` without NaN (ValueError if there are none). Partial targets are matched on
    their observed points, which completes them: ``inverse_transform(transform(X))``. A
    target with no observed point has nothing to match: it gets a warning and the code
    minimising the prior term from its start (the start itself when ``prior_weight=0``).
    Per-target Nelder-Mead iteration counts are given by :meth:`match` (the matcher has
    no ``n_iter_``: :meth:`fit` runs no iterations; ``estimator_.n_iter_`` counts the
    VAE's epochs). Matching runs torch on one thread (restored afterwards): its decoder
    calls are small, and faster so. On a GPU the engine reads back to the host only every
    few iterations.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import BetaCurveVAE, LatentMatcher, make_beta_curves
    >>> X, _ = make_beta_curves(n_samples=300, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> matcher = LatentMatcher(vae, prefit=True).fit(X)
    >>> matcher.transform(X[:3]).shape
    (3, 2)
    >>> result = matcher.match(X[:3])
    >>> bool(np.all(result.residuals <= result.start_residuals))
    True
    >>> X_partial = X[:3].copy()
    >>> X_partial[:, ::2] = np.nan  # half the points missing
    >>> matcher.inverse_transform(matcher.transform(X_partial)).shape
    (3, 100)
    """

    _parameter_constraints: dict = {
        "estimator": [BetaCurveVAE, None],
        "prefit": ["boolean"],
        "start": [StrOptions({"encoder", "zero"})],
        "n_starts": [Interval(Integral, 1, None, closed="left")],
        "initial_step": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "prior_weight": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions({"l2", "posterior"})],
        "noise": [Interval(Real, 0, None, closed="neither"), None],
        "polish": [StrOptions({"gauss-newton"}), None],
        "xatol": [Interval(Real, 0, None, closed="left")],
        "fatol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        prefit=False,
        start="encoder",
        n_starts=1,
        initial_step="auto",
        prior_weight=0.0,
        objective="l2",
        noise=None,
        polish=None,
        xatol=1e-4,
        fatol=1e-4,
        max_iter=None,
        random_state=None,
    ):
        self.estimator = estimator
        self.prefit = prefit
        self.start = start
        self.n_starts = n_starts
        self.initial_step = initial_step
        self.prior_weight = prior_weight
        self.objective = objective
        self.noise = noise
        self.polish = polish
        self.xatol = xatol
        self.fatol = fatol
        self.max_iter = max_iter
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        tags.non_deterministic = False
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.estimator_.latent_model().latent_dims

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None) -> LatentMatcher:
        """Fit the VAE (unless ``prefit``) and remember the curves' grid width.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves; NaN marks missing points (rows with NaN are not used to train).
        y : None
            Ignored.

        Returns
        -------
        self : LatentMatcher
            The fitted matcher.
        """
        self._check_objective()
        with unchanged_on_failure(self):  # validate_data sets n_features_in_ first
            X = validate_data(
                self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
            )
            estimator = self._prefit_estimator(X) if self.prefit else self._fit_estimator(X)
            self.estimator_ = estimator
        return self

    def transform(self, X) -> np.ndarray:
        """Match each curve: its best latent code.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Target curves; NaN marks missing points.

        Returns
        -------
        Z : ndarray or dask array of shape (n_samples, latent_dims)
            Matched latent codes (float64, deterministic, row-independent); a lazy dask
            array, block by block, for a dask array ``X``.
        """
        if is_dask_array(X):
            check_is_fitted(self)
            return map_rows(self.transform, X, self._n_features_out, n_features=self.n_features_in_)
        return self._match(X, diagnostics=False).codes

    def match(self, X) -> Bunch:
        """Match each curve and return per-target diagnostics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target curves; NaN marks missing points.

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`
            With arrays of length ``n_samples`` (first axis): ``codes`` (n, latent_dims),
            the matched codes; ``reconstructions`` (n, n_features), their decoded curves;
            ``residuals``, the L2 error over observed points at the codes;
            ``objective``, the objective there; ``start_codes``, ``start_residuals``
            and ``start_objective``, the same at the first start point; ``n_iter`` and
            ``n_fev``, Nelder-Mead iterations (counted as scipy's ``nit``) and
            objective evaluations of the winning start; ``converged``, whether its
            ``xatol``/``fatol`` test was met before ``max_iter``; ``covariance``
            (n, latent_dims, latent_dims), the Laplace approximation of the code's
            posterior covariance at the matched code, ``(Jᵀ M J / σ² + I)⁻¹`` with ``J``
            the decoder's Jacobian there, ``M`` the observed points and ``σ`` the noise
            (``noise`` or the VAE's ``noise_``): the identity (the prior) for a target
            with no observed point.
        """
        return self._match(X, diagnostics=True)

    def inverse_transform(self, X) -> np.ndarray:
        """Decode latent codes to curves (delegates to ``estimator_``).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, latent_dims)
            Latent codes.

        Returns
        -------
        X_curves : ndarray or dask array of shape (n_samples, n_features_in_)
            Decoded curves in the original units (lazy for a dask array ``X``).
        """
        check_is_fitted(self)
        return self.estimator_.inverse_transform(X)

    def _match(self, X, *, diagnostics: bool) -> Bunch:
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
        )
        X = np.asarray(X, dtype=np.float64)
        observed = ~np.isnan(X)
        n_empty = int(np.sum(~observed.any(axis=1)))
        if n_empty:
            warn_at_caller(
                f"{n_empty} target(s) have no observed point (all NaN): nothing to match, "
                "their codes only minimise the prior term from the start point.",
                UserWarning,
            )
        model = self.estimator_.latent_model()
        with one_torch_thread():
            out = self._optimise(model, X, observed, diagnostics)
            if diagnostics:
                out.reconstructions = model.decode(out.codes)
        return out
