"""CurveImputer: fill in the missing points of curves with a VAE trained on them."""

from __future__ import annotations

import functools
import warnings
from numbers import Integral

import numpy as np
from scipy.stats import wilcoxon
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.impute import KNNImputer
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._dask import is_dask_array, keep_dask_output_lazy, map_rows, validate_dask_data
from ._matching.matcher import LatentMatcher
from ._neighbour_blend import (
    blend_lags,
    blended_fill,
    distance_to_observed,
    fit_blend_weights,
    fit_donor_gaussian,
    fit_neighbour_shares,
    gaussian_fill,
    nearest_curves_fill,
    neighbour_mixed_fill,
)
from ._torch.networks import sigma_points
from ._utils import unchanged_on_failure
from ._vae import BetaCurveVAE

__all__ = ["CurveImputer"]

#: How many of the training curves (evenly spaced rows) estimate the blend weights.
N_BLEND_CURVES = 2_000
#: Curves with hidden points drawn to estimate the nearest curves' shares: per training
#: curve, and at most. Few draws leave the shares noisy on small sets (GunPoint's 150
#: curves, long gaps: filled-point RMSE 0.53-0.63x KNNImputer's over five draws of 1,500,
#: 0.52-0.59x with 9,000); the draws cost a search for each code.
DRAWS_PER_CURVE, MAX_DRAWS = 40, 5_000
#: Most training curves kept as the nearest-curve donors (evenly spaced rows); the
#: shares are estimated on them too.
N_NEIGHBOUR_CURVES = 10_000
#: On ``CROSS_FIT_FROM`` to ``CROSS_FIT_BELOW`` training curves, the model's fill of the
#: curves that estimate the nearest curves' shares comes from models trained without
#: them (cross-fitting); otherwise from the fitted model itself. From 2,000 curves on it
#: overfits its training curves little; below 60, the folds' models, trained on a few
#: dozen curves, are too unlike it to tell more.
CROSS_FIT_FROM, CROSS_FIT_BELOW = 60, 2_000
#: Folds of the cross-fitting.
N_FOLDS = 3
#: One-sided significance level of the signed-rank test, over the training curves, by
#: which a richer fill of the draws' hidden points must beat the plainer one to be kept
#: (blend weights fitted to cross-fitted decodings against the model's own, the nearest
#: curves' fills with the Gaussian's against without it). The curves, not the draws, are the
#: independent units: on Covid3Month (counts from 0 to 20,341 a day) three of 150 curves
#: made 78 % of the draws' squared error (one 30 % gap), and weights that lowered it by 14 %
#: while filling barely half of the curves better (p 0.35) raised the error on new
#: curves' scattered missing points by half; on GunPoint they filled 67 % of the curves
#: better (p 6e-9) and lowered the error on new curves by 28 %.
FILL_TEST_SIGNIFICANCE = 0.05
#: Fewest training curves the nearest curves' shares are estimated from (else 0).
MIN_NEIGHBOUR_CURVES = 10
#: The locally linear combination takes this many times ``n_neighbors`` nearest curves:
#: its weights are fitted to the observed points, so it needs more curves than an
#: average (on curves with one gap of 30 % of the grid, RMSE on the missing points of
#: the combination alone: Gaussian bumps 0.048 with 10 curves, 0.046 with 20).
COMBINED_PER_NEIGHBOUR = 4
#: The nearest curves' fills whose shares are fitted: their average, their locally
#: linear combination, and the conditional mean under their Gaussian.
N_NEAREST_FILLS = 3


class CurveImputer(OneToOneFeatureMixin, TransformerMixin, MetaEstimatorMixin, BaseEstimator):
    """Impute the missing points of curves from a VAE of the curves.

    :meth:`fit` trains a :class:`BetaCurveVAE` on the curves, gaps included (the VAE's
    likelihood counts the observed points only). :meth:`transform` finds each curve's code
    from its observed points (by default the code whose decoded curve is closest to them,
    found by :class:`LatentMatcher`), decodes the code into a whole curve, and fills the
    missing points with it, blended with the nearest observed points
    (``neighbour_blend``) and with fills from the nearest training curves
    (``n_neighbors``) as far as the training curves show that they predict a missing
    point; observed points are returned untouched. Unlike
    :class:`~sklearn.impute.KNNImputer` or :class:`~sklearn.impute.IterativeImputer`,
    which treat the grid points as unrelated features, the fill-in is a curve of the
    family the VAE learnt, so it follows the curve's shape across long gaps.

    Parameters
    ----------
    estimator : BetaCurveVAE, default=None
        The VAE; None means ``BetaCurveVAE(random_state=random_state)``.
    method : {"match", "encode"}, default="match"
        How a curve's code is found from its observed points. ``"match"``: the code whose
        decoded curve is closest to the observed points (L2), by
        ``matcher_`` -- Nelder-Mead from the better of the encoder's code and the best
        of the screened candidates (1,024 prior points and the codes of up to 1,024 of
        the training curves), which finds the right curve across long gaps where the
        encoder alone can be far off. ``"encode"``: the VAE's own code
        (:meth:`BetaCurveVAE.transform`: the mask-aware encoder's posterior mean,
        screened against fixed candidate codes and refined by ``refine_steps``
        Gauss-Newton steps on the observed points), 2-3 times faster; on the benchmark
        sets its curves are within 1 % of the search's.
    neighbour_blend : bool, default=True
        Blend each filled point of the decoded curve with the nearest observed points
        on each side: ``decoded + a * r + b * (c - decoded)``, where ``r`` is the
        neighbours' residuals (observed value minus decoded curve) and ``c`` the
        decoded curve's values there, both interpolated linearly along the grid to the
        point. ``a = b = 0`` keeps the decoded curve, ``a = b = 1`` is linear
        interpolation of the observed points, ``a = 1, b = 0`` carries the neighbours'
        misfit over to the decoded curve. The weights depend on the distance to the
        nearest observed point (``blend_weights_`` at ``blend_lags_``) and are fitted
        at :meth:`fit` by least squares on up to 2,000 of the curves, predicting each
        observed point from its observed neighbours. A model fits its own training
        curves more closely than new ones: on 60 to 1,999 curves (with ``n_neighbors``)
        the weights are also fitted to the curves decoded by the fold models that did
        not train on them, and replace the model's own where they fill the hidden
        points of the draws (see ``n_neighbors``) better, per curve by a one-sided
        signed-rank test at the 5 % level (GunPoint, 30 % of the points missing at
        random: 0.72x the error of the model's own weights). Where the model's misfit varies
        smoothly along the grid or the curves are densely sampled, the fill leans on
        the neighbours (on the benchmark sets, the error on scattered missing points
        falls 1.5-9 times); where residuals are observation noise, the weights are near 0
        and the fill stays the decoded curve. False fills with the decoded curve.
    n_neighbors : int or None, default=5
        Move each filled point toward three fills from the training curves, each by a
        share that depends on the point's distance to the nearest observed point
        (``neighbour_shares_`` at ``blend_lags_``): the average of the ``n_neighbors``
        nearest curves' observed values (:class:`~sklearn.impute.KNNImputer` on the
        curves given to :meth:`fit`); the locally linear combination of the
        ``4 * n_neighbors`` nearest training curves with their own missing points filled
        by the model (``completed_neighbour_curves_``): the weights, summing to 1, that
        best reconstruct the curve's observed points, as in locally linear embedding;
        and the conditional mean of the missing points given the observed ones under a
        Gaussian of the training curves (``donor_gaussian_``: probabilistic PCA with up
        to 64 components and a small isotropic noise, refitted to the curves with their
        missing points filled by itself, by expectation-maximisation where that takes
        a few seconds). The Gaussian captures families that are
        nearly linear in many dimensions, as spectra are, beyond the VAE's few latent
        dimensions: on Tecator's NIR spectra it lowers the error on the missing points
        26-fold with 30 % missing at random and 13-fold with one 30 % gap.
        Where the curves form a smooth family sampled densely, the combination follows
        the family between its neighbours where their average blurs it (on the benchmark
        sets, one gap of 30 % of the grid: Gaussian bumps 0.40x the best baseline's
        error, from 0.59x with the average alone; logistic steps 0.41x, from 0.48x).
        The shares are fitted at :meth:`fit` by least squares: points of training curves
        (40 draws per curve, up to 5,000) are hidden with the gap patterns of other
        training curves (or, when no curve has gaps, with one gap of random length up to
        half the grid) and filled every way, the nearest curves taken from the other
        folds of a 3-fold split. On 60 to 1,999 curves the model's fills come from
        imputers fitted on the other folds too (three more fits of the VAE), since a
        model fills its own training curves better than new ones. Deep in long gaps,
        where a curve's shape is poorly determined by its observed points, similar
        curves often err less than any single decoded curve: on the benchmark sets the
        combination's shares reach 0.6-1 far inside long gaps, where the average's stay
        below 0.3.
        None fills with the model alone.
    prefit : bool, default=False
        If True, ``estimator`` must be fitted already (on curves of the same grid) and is
        used as it is; :meth:`fit` only checks it against ``X`` (and, on 60 to 1,999
        curves with ``n_neighbors``, fits clones of it on folds of ``X`` to estimate
        ``neighbour_shares_``; where it trained on every curve, with no held-out score,
        the clones train for its ``n_iter_`` epochs without early stopping).
    random_state : int, RandomState instance or None, default=None
        Seeds the default VAE when ``estimator`` is None, and the draws and folds that
        estimate ``neighbour_shares_``.

    Attributes
    ----------
    estimator_ : BetaCurveVAE
        The fitted VAE: a fitted clone of ``estimator``, or ``estimator`` itself when
        ``prefit=True``.
    matcher_ : LatentMatcher
        ``LatentMatcher(estimator_, prefit=True)`` fitted on the curves given to
        :meth:`fit`: ``method="match"`` screens the codes of those curves
        (``reference_codes_``) before each search.
    blend_lags_ : ndarray of shape (n_lags,)
        Distances along the grid, in points, at which ``blend_weights_`` are
        estimated (geometric from 1 to half the grid).
    blend_weights_ : ndarray of shape (n_lags, 2)
        The weights ``a`` (of the neighbours' residuals) and ``b`` (of the decoded
        curve's interpolation) at each of ``blend_lags_``, in [0, 1]; all 0 without
        ``neighbour_blend``. Fitted to the model's own decoding of the training curves,
        or to the fold models' decodings of the curves they did not train on where
        those fill better.
    neighbour_curves_ : ndarray of shape (n_donors, n_features)
        The training curves the nearest curves are drawn from (up to 10,000, evenly
        spaced rows, NaN where missing; empty when ``n_neighbors`` is None).
    completed_neighbour_curves_ : ndarray of shape (n_donors, n_features)
        ``neighbour_curves_`` with their missing points filled by the model.
    neighbour_shares_ : ndarray of shape (n_lags, 3)
        The shares of the nearest curves' average (column 0), of their locally linear
        combination (column 1) and of the Gaussian's conditional mean (column 2) at each
        of ``blend_lags_``, each in [0, 1]; all 0 when ``n_neighbors`` is None.
    donor_gaussian_ : tuple or None
        The training curves' Gaussian: ``(mean, components, variances, noise)``, its
        mean curve (n_features,), orthonormal principal components (n_components,
        n_features), their variances and the isotropic noise variance; None when
        ``n_neighbors`` is None.
    n_features_in_ : int
        Number of grid points of the curves.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    sklearn.impute.KNNImputer, sklearn.impute.IterativeImputer : Imputers for features
        without an order.
    BetaCurveVAE : The VAE; ``inverse_transform(transform(X))`` gives the whole curves.
    LatentMatcher : Codes of partial curves by optimisation, with a Laplace band.

    Notes
    -----
    The missing points are assumed to be missing at random (whether a point is missing
    does not depend on its value) and the curves share one grid. Rows with no observed
    point carry nothing to learn and are left out of :meth:`fit`; :meth:`transform` fills
    them with the curve of the code that the encoder gives an empty curve (near the
    prior's mode).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import BetaCurveVAE, CurveImputer, make_beta_curves
    >>> X, _ = make_beta_curves(n_samples=300, kind="pdf", random_state=0)
    >>> X[:, 40:60] = np.where(np.arange(300)[:, None] % 3 == 0, np.nan, X[:, 40:60])
    >>> imputer = CurveImputer(BetaCurveVAE(max_iter=5, random_state=0)).fit(X)
    >>> X_filled = imputer.transform(X)
    >>> bool(np.isfinite(X_filled).all()), bool(np.all(X_filled[1] == X[1]))
    (True, True)
    >>> X_filled, X_std = imputer.transform(X[:3], return_std=True)
    >>> bool(X_std[0, 50] > 0), float(X_std[1, 50])
    (True, 0.0)
    """

    _parameter_constraints: dict = {
        "estimator": [BetaCurveVAE, None],
        "method": [StrOptions({"match", "encode"})],
        "neighbour_blend": ["boolean"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "prefit": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="match",
        neighbour_blend=True,
        n_neighbors=5,
        prefit=False,
        random_state=None,
    ):
        self.estimator = estimator
        self.method = method
        self.neighbour_blend = neighbour_blend
        self.n_neighbors = n_neighbors
        self.prefit = prefit
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None) -> CurveImputer:
        """Fit the VAE on the curves (unless ``prefit``).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Curves on a shared grid; NaN marks a missing point. A dask array trains the
            VAE out of core (unless ``prefit``); the rest of the fit reads up to 10,000
            of its rows, evenly spaced, into memory.
        y : None
            Ignored.

        Returns
        -------
        self : CurveImputer
            The fitted imputer.
        """
        with unchanged_on_failure(self):
            if is_dask_array(X):
                X = _observed_dask_rows(validate_dask_data(self, X))
                # the fills' statistics need no more rows than the donors
                sample = X[_evenly_spaced(X.shape[0], N_NEIGHBOUR_CURVES)].compute()
                sample = check_array(sample, dtype=np.float64, ensure_all_finite="allow-nan")
            else:
                X = sample = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
            estimator = self._prefit_estimator(X) if self.prefit else self._fit_estimator(X)
            self.matcher_ = LatentMatcher(estimator, prefit=True).fit(X)
            self.estimator_ = estimator
            self.blend_lags_ = blend_lags(X.shape[1])
            self.blend_weights_ = self._blend_weights(sample)
            (
                self.neighbour_curves_,
                self.completed_neighbour_curves_,
                self.neighbour_shares_,
                self.blend_weights_,
                self.donor_gaussian_,
            ) = self._neighbour_shares(sample)
        return self

    def _blend_weights(self, X: np.ndarray) -> np.ndarray:
        """The blend weights, fitted on up to ``N_BLEND_CURVES`` of the rows of X."""
        rows = np.flatnonzero(~np.isnan(X).all(axis=1))
        if not self.neighbour_blend or rows.size == 0:
            return np.zeros((len(self.blend_lags_), 2))
        rows = rows[_evenly_spaced(len(rows), N_BLEND_CURVES)]
        return fit_blend_weights(X[rows], self._decoded(X[rows]), self.blend_lags_)

    def _neighbour_shares(self, X: np.ndarray) -> tuple:
        """The donor curves of the nearest-curve fills (as given and completed by the
        model), the fills' shares at ``blend_lags_``, the blend weights, and the donors'
        Gaussian (None without donors).

        The donors are up to ``N_NEIGHBOUR_CURVES`` of the training curves. Points of
        donors are hidden with the gap patterns of other donors, and filled by the model
        (its blended fill) and by the two fills of the nearest of the other donors
        (:meth:`_nearest_fills`); the shares are fitted by least squares to the hidden
        values. The nearest curves always come from other folds of the donors; on
        ``CROSS_FIT_FROM`` to ``CROSS_FIT_BELOW`` curves, the model's fill of the hidden
        points and of the other folds' missing points come from imputers fitted on the
        other folds (where those observe every grid point). There the blend weights
        are also fitted to the donors decoded by the models that did not train on them
        (:meth:`_cross_fitted_blend`), and those weights replace ``blend_weights_``
        where they fill the hidden points better.
        """
        lags = self.blend_lags_
        shares = np.zeros((len(lags), N_NEAREST_FILLS))
        curves = X[~np.isnan(X).all(axis=1)]
        if self.n_neighbors is None or len(curves) < MIN_NEIGHBOUR_CURVES or not len(lags):
            empty = np.empty((0, X.shape[1]))
            return empty, empty, shares, self.blend_weights_, None
        curves = curves[_evenly_spaced(len(curves), N_NEIGHBOUR_CURVES)]
        curves_decoded = self._decoded(curves)
        completed = blended_fill(curves, curves_decoded, lags, self.blend_weights_)
        random_state = check_random_state(self.random_state)
        n_draws = min(MAX_DRAWS, DRAWS_PER_CURVE * len(curves))
        source, hidden, masked = _hide_gaps(curves, n_draws, random_state)
        filled, decoded = np.empty_like(masked), np.empty_like(masked)
        neighbours = [np.empty_like(masked) for _ in range(N_NEAREST_FILLS)]
        folds = KFold(N_FOLDS, shuffle=True, random_state=random_state.randint(2**31 - 1))
        cross_fit = CROSS_FIT_FROM <= len(curves) < CROSS_FIT_BELOW
        folds_draws = []  # (training rows, draws of the held-out rows) of every fold
        held_decoded = np.empty_like(curves)  # by the model of the other folds
        every_fold_crossed = cross_fit
        for train_rows, held_rows in folds.split(curves):
            held = np.isin(source, held_rows)
            folds_draws.append((train_rows, held))
            fold_curves = curves[train_rows]
            fold_cross_fitted = cross_fit and _observed_everywhere(fold_curves)
            every_fold_crossed &= fold_cross_fitted
            if fold_cross_fitted:
                fold = self._fold(fold_curves)
                fold_completed = fold._model_fill(fold_curves)[0]
                held_decoded[held_rows] = fold._decoded(curves[held_rows])
            else:
                fold, fold_completed = self, completed[train_rows]
            decoded[held] = fold._decoded(masked[held])
            filled[held] = blended_fill(masked[held], decoded[held], lags, fold.blend_weights_)
            for fill, value in zip(
                neighbours,
                self._nearest_fills(fold_curves, fold_completed, masked[held], filled[held]),
            ):
                fill[held] = value
        blend_weights = self.blend_weights_
        if self.neighbour_blend and every_fold_crossed:
            chosen = self._cross_fitted_blend(
                curves, held_decoded, folds_draws, source, hidden, masked, decoded, filled
            )
            if chosen is not None:
                blend_weights, filled = chosen
                completed = blended_fill(curves, curves_decoded, lags, blend_weights)
        if hidden.any():
            shares = self._fill_shares(curves, source, hidden, masked, filled, neighbours)
        gaussian = fit_donor_gaussian(curves, completed) if shares[:, 2].any() else None
        return curves, completed, shares, blend_weights, gaussian

    def _fill_shares(
        self,
        curves: np.ndarray,
        source: np.ndarray,
        hidden: np.ndarray,
        masked: np.ndarray,
        filled: np.ndarray,
        neighbours: list,
    ) -> np.ndarray:
        """The shares of the nearest curves' fills, fitted to the draws' hidden points.

        The Gaussian's conditional mean (the last fill) takes a share only where it
        fills the hidden points better than the other two fills alone on curves whose
        draws did not fit the shares: the shares fitted to the draws of the curves of
        even rows fill those of odd rows and the other way round, and the fills with the
        Gaussian must beat those without it in all and per curve by the signed-rank test
        of :func:`_fills_better`: fitted to the same draws, a third fill's shares lower
        their error whether or not it predicts anything. Where curves are far from a
        linear family, its shares stay 0 and the fill is the one without it (ArrowHead,
        Covid3Month).
        """
        lags = self.blend_lags_
        truth, distance = curves[source], distance_to_observed(np.isnan(masked))

        def fitted(fills: list, draws: np.ndarray) -> np.ndarray:
            points = hidden & draws[:, None]
            return fit_neighbour_shares(
                truth[points],
                filled[points],
                np.stack([fill[points] for fill in fills], axis=1),
                distance[points],
                lags,
            )

        every_draw = np.ones(len(source), dtype=bool)
        odd = source % 2 == 1
        crossed = [np.empty_like(filled), np.empty_like(filled)]  # with, without
        for draws in (odd, ~odd):
            for mixed, fills in zip(crossed, (neighbours, neighbours[:-1])):
                shares = fitted(fills, ~draws)
                mixed[draws] = neighbour_mixed_fill(
                    masked[draws], filled[draws], [fill[draws] for fill in fills], lags, shares
                )
        errors = [_per_curve_errors(fill, truth, source, hidden) for fill in crossed]
        if _fills_better(*errors):
            return fitted(neighbours, every_draw)
        return np.column_stack([fitted(neighbours[:-1], every_draw), np.zeros(len(lags))])

    def _cross_fitted_blend(
        self,
        curves: np.ndarray,
        held_decoded: np.ndarray,
        folds_draws: list,
        source: np.ndarray,
        hidden: np.ndarray,
        masked: np.ndarray,
        decoded: np.ndarray,
        filled: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Blend weights fitted to curves decoded by models that did not train on them,
        where they fill the hidden points better than the models' own weights.

        A model fits its own training curves more closely than new ones, so weights
        fitted to its own residuals can lean on the observed neighbours less than new
        curves call for. These weights are fitted to ``held_decoded`` (each of
        ``curves`` decoded by the model of the other folds). Each fold's draws
        (``folds_draws``: the fold's training rows and its draws; ``masked``:
        ``curves[source]`` with the points ``hidden``; ``decoded`` by the fold's model)
        are blended with the weights fitted on the fold's training rows and compared
        with ``filled``, their blend with the fold model's own weights. The new weights
        are kept where they lower the squared error on the hidden points in all, and per
        curve by a one-sided signed-rank test at level :data:`FILL_TEST_SIGNIFICANCE`.

        Returns the weights fitted to every curve's held-out decoding and the draws'
        fill with them, or None where the models' own weights stay.
        """
        lags = self.blend_lags_
        truth = curves[source]
        crossed = np.empty_like(filled)
        for train_rows, held in folds_draws:
            weights = fit_blend_weights(curves[train_rows], held_decoded[train_rows], lags)
            crossed[held] = blended_fill(masked[held], decoded[held], lags, weights)
        errors = [_per_curve_errors(fill, truth, source, hidden) for fill in (crossed, filled)]
        if not _fills_better(*errors):
            return None
        return fit_blend_weights(curves, held_decoded, lags), crossed

    def _nearest_fills(
        self,
        donors: np.ndarray,
        completed: np.ndarray,
        X: np.ndarray,
        filled: np.ndarray,
        needed: tuple[bool, ...] = (True,) * N_NEAREST_FILLS,
        gaussian: tuple | None = None,
    ) -> list[np.ndarray]:
        """``X`` filled by the average of the ``n_neighbors`` nearest of ``donors``
        (:class:`~sklearn.impute.KNNImputer`; ``filled`` at grid points that no donor
        observes), by the locally linear combination of the nearest of ``completed``
        (the donors with their missing points filled by the model), and by the
        conditional mean under the donors' Gaussian (``gaussian``, else fitted by
        :func:`fit_donor_gaussian`): one fill per entry of ``needed``. A fill not
        ``needed`` (its shares are all 0) is not computed: ``filled`` stands in."""
        fills = [filled] * len(needed)
        if needed[0]:
            imputer = KNNImputer(n_neighbors=self.n_neighbors, keep_empty_features=True)
            fills[0] = imputer.fit(donors).transform(X)
            unobserved = np.isnan(donors).all(axis=0)
            fills[0][:, unobserved] = filled[:, unobserved]
        if needed[1]:
            n_combined = COMBINED_PER_NEIGHBOUR * self.n_neighbors
            fills[1] = nearest_curves_fill(completed, X, n_combined, filled)
        if needed[2]:
            gaussian = fit_donor_gaussian(donors, completed) if gaussian is None else gaussian
            fills[2] = gaussian_fill(X, *gaussian, filled)
        return fills

    def _fold(self, X: np.ndarray) -> CurveImputer:
        """An imputer like this one, without the nearest curves, fitted on ``X``.

        Its VAE trains the way the fitted one ended up training (:meth:`_fold_estimator`).
        """
        fold = CurveImputer(
            self._fold_estimator(),
            method=self.method,
            neighbour_blend=self.neighbour_blend,
            n_neighbors=None,
        )
        with warnings.catch_warnings():  # the fold models are an estimate, not the result
            warnings.simplefilter("ignore")
            return fold.fit(X)

    def _fold_estimator(self) -> BetaCurveVAE:
        """An unfitted VAE for a fold: a clone of ``estimator_``'s parameters that, where
        ``estimator_`` trained on every curve (no held-out score: the folds of
        ``early_stopping="auto"`` sent it there, or ``early_stopping=False``), trains on
        every curve of the fold for the ``n_iter_`` epochs it ran, with no early stopping.

        On 60 to 499 curves a fresh fit cross-validates its PCA start and its stopping
        epoch over three folds of its own before that run: the fold fits would repeat the
        choice on two thirds of the curves at three times the cost. Measured on six
        real sets of 150-200 curves (30 % missing at random, or one 30 % gap), the
        imputer's fit takes 0.3-0.55 of the time (0.88 on ACSF1 at random), and its
        RMSE on held-out missing points moves by -2.1 % to +1.2 %. A fit that held
        curves out keeps its recipe in the fold fits.
        """
        fitted = self.estimator_
        if fitted.validation_scores_ is not None:
            return clone(fitted)
        return clone(fitted).set_params(early_stopping=False, max_iter=max(1, fitted.n_iter_))

    def _prefit_estimator(self, X: np.ndarray) -> BetaCurveVAE:
        if self.estimator is None:
            raise ValueError("prefit=True needs a fitted estimator; got estimator=None.")
        try:
            check_is_fitted(self.estimator)
        except NotFittedError as exc:
            raise NotFittedError(
                "When prefit=True, estimator must be a fitted BetaCurveVAE; fit it first "
                "or use prefit=False."
            ) from exc
        if self.estimator.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the prefit estimator was fitted on "
                f"curves with {self.estimator.n_features_in_} points."
            )
        return self.estimator

    def _fit_estimator(self, X: np.ndarray) -> BetaCurveVAE:
        estimator = (
            BetaCurveVAE(random_state=self.random_state)
            if self.estimator is None
            else clone(self.estimator)
        )
        if is_dask_array(X):  # out of core; its rows with no observed point already dropped
            return estimator.fit(X)
        observed_rows = ~np.isnan(X).all(axis=1)
        if not observed_rows.any():
            raise ValueError(_ALL_MISSING)
        return estimator.fit(X[observed_rows])

    def transform(self, X, return_std: bool = False):
        """Fill in the missing points of each curve.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Curves; NaN marks a missing point. A dask array gives lazy dask arrays.
        return_std : bool, default=False
            Also return, for each filled point, the standard deviation of its value under
            the model: the spread of the decoded curves over the code's posterior
            (evaluated at its unscented-transform points) and the observation noise
            ``noise_``, added in quadrature; 0 at the observed points. The posterior is
            the matcher's Laplace approximation at the matched code (``"match"``, see
            :meth:`LatentMatcher.match`) or the encoder's spread around the refined code
            (``"encode"``). The blend with the neighbouring points and the nearest
            curves moves the fill without changing the band, which is therefore
            conservative next to observed points.

        Returns
        -------
        X_filled : ndarray or dask array of shape (n_samples, n_features)
            ``X`` with its missing points filled; observed points are unchanged.
        X_std : ndarray or dask array of shape (n_samples, n_features)
            Only with ``return_std``: the standard deviation of each filled point.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._transform_dask(X, return_std)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        filled, model, code, root = self._model_fill(X, return_root=return_std)
        needed = tuple(self.neighbour_shares_.any(axis=0))
        if len(self.neighbour_curves_) and any(needed):
            neighbours = self._nearest_fills(
                self.neighbour_curves_,
                self.completed_neighbour_curves_,
                X,
                filled,
                needed,
                self.donor_gaussian_,
            )
            filled = neighbour_mixed_fill(
                X, filled, neighbours, self.blend_lags_, self.neighbour_shares_
            )
        if not return_std:
            return filled
        std = _decoded_std(model, code, root)
        return filled, np.where(np.isnan(X), std, 0.0)

    def _transform_dask(self, X, return_std: bool):
        """:meth:`transform` of a dask array: lazy, block by block (each row's fill
        depends on that row alone, so the result equals the numpy one whatever the
        chunks); with ``return_std``, the fill and the band are two views of one lazy
        array of both, so computing them together decodes each block once."""
        n_features = self.n_features_in_  # map_rows checks X's width at once
        if not return_std:
            return map_rows(self.transform, X, n_features, n_features=n_features)
        both = map_rows(
            functools.partial(_filled_and_std, self), X, 2 * n_features, n_features=n_features
        )
        return both[:, :n_features], both[:, n_features:]

    def _decoded(self, X: np.ndarray) -> np.ndarray:
        """The model's curves for ``X``: its codes (by ``method``), decoded."""
        model = self.estimator_.latent_model()
        return model.decode(self._codes(model, X, return_root=False)[0])

    def _model_fill(self, X: np.ndarray, return_root: bool = False):
        """``X`` filled by the model (its decoded curves, blended with the neighbours),
        the latent model, the codes, and their posterior roots (None unless asked)."""
        model = self.estimator_.latent_model()
        code, root = self._codes(model, X, return_root=return_root)
        filled = blended_fill(X, model.decode(code), self.blend_lags_, self.blend_weights_)
        return filled, model, code, root

    def _codes(self, model, X: np.ndarray, return_root: bool):
        """Each curve's code by ``method``, and the Cholesky root of its posterior
        covariance when ``return_root`` (else None)."""
        code, std = model.encode(X)
        rows = np.flatnonzero(~np.isnan(X).all(axis=1))  # an empty row keeps the encoder's code
        root = std[:, :, None] * np.eye(model.latent_dims) if return_root else None
        if self.method == "encode":
            code[rows] = model.refine(X[rows], code[rows], self.estimator_.refine_steps)
        elif rows.size:
            if return_root:
                result = self.matcher_.match(X[rows])
                code[rows], root[rows] = result.codes, np.linalg.cholesky(result.covariance)
            else:
                code[rows] = self.matcher_.transform(X[rows])
        return code, root


CurveImputer.transform = keep_dask_output_lazy(CurveImputer.transform)

_ALL_MISSING = "Every row of X is missing (all NaN): there is nothing to learn."


def _filled_and_std(imputer: CurveImputer, X: np.ndarray) -> np.ndarray:
    """``imputer``'s fill of ``X`` and its band side by side, shape (n, 2 * n_features)."""
    filled, std = imputer.transform(X, return_std=True)
    return np.hstack([np.asarray(filled), std])


def _observed_dask_rows(X):
    """The rows of dask array ``X`` with an observed point, lazily (one pass of dask
    reductions finds them; the result has known chunk sizes)."""
    import dask.array as da

    if any(np.isnan(size) for size in X.chunks[0]):
        X = X.compute_chunk_sizes()
    observed = np.asarray(da.any(~da.isnan(X), axis=1).compute(), dtype=bool)
    if not observed.any():
        raise ValueError(_ALL_MISSING)
    return X if observed.all() else X[observed]


def _decoded_std(model, code: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Predictive standard deviation per point of curves whose codes are N(code, root rootᵀ).

    The spread of the decoded curves at the unscented-transform points of each code's
    posterior, and the observation noise, added in quadrature.
    """
    eps = sigma_points(model.latent_dims).double().numpy()  # (2d, d)
    codes = code[:, None, :] + np.einsum("nij,kj->nki", root, eps)
    curves = model.decode(codes.reshape(-1, model.latent_dims))
    curves = curves.reshape(len(code), len(eps), -1)
    return np.sqrt(curves.var(axis=1) + model.noise**2)


def _per_curve_errors(
    fill: np.ndarray, truth: np.ndarray, source: np.ndarray, hidden: np.ndarray
) -> np.ndarray:
    """Squared error of the draws' ``fill`` on the hidden points, summed per training
    curve (``source``: each draw's curve) over its draws, for the curves with any."""
    rows = source[np.nonzero(hidden)[0]]
    return np.bincount(rows, (fill - truth)[hidden] ** 2)[np.unique(rows)]


def _fills_better(errors: np.ndarray, baseline: np.ndarray) -> bool:
    """Whether per-curve squared ``errors`` are lower than ``baseline``'s in all and per
    curve, by a one-sided signed-rank test at :data:`FILL_TEST_SIGNIFICANCE`."""
    gains = baseline - errors
    if gains.sum() <= 0:
        return False
    return wilcoxon(gains, alternative="greater").pvalue < FILL_TEST_SIGNIFICANCE


def _evenly_spaced(n_rows: int, n_most: int) -> np.ndarray:
    """Indices of at most ``n_most`` evenly spaced rows out of ``n_rows``."""
    return np.unique(np.linspace(0, n_rows - 1, min(n_rows, n_most)).astype(int))


def _observed_everywhere(X: np.ndarray) -> bool:
    """Whether every grid point is observed on at least one curve of ``X``."""
    return bool((~np.isnan(X)).any(axis=0).all())


def _hide_gaps(curves: np.ndarray, n_draws: int, random_state) -> tuple:
    """Training curves with more points hidden, in the gap patterns of other curves.

    ``n_draws`` curves are drawn with replacement, each hiding points where another
    drawn curve (of those with missing points) misses them; when no curve has missing
    points, one contiguous gap of random length up to half the grid at a random place.
    A draw should miss about as many points as the curves the imputer fills: a curve
    that already misses points hides whole runs of the other curve's missing points,
    in random order, only until it misses as many as that curve (and at least one run).
    Hiding the whole pattern on top of a curve's own would leave a draw of GunPoint with
    60 % of its points missing at random missing 84 %, where the training curves'
    Gaussian fills better than on curves missing 60 %: its shares, fitted to such draws,
    raised the error on new curves from 1.40x to 1.69x KNNImputer's; fitted to draws
    missing as many points as the curves, they lower it to 1.34x.

    Returns
    -------
    source : ndarray of shape (n_kept,)
        Each drawn curve's row in ``curves``.
    hidden : ndarray of shape (n_kept, n_features)
        The observed points the draw hides.
    masked : ndarray of shape (n_kept, n_features)
        The drawn curves with their hidden points set to NaN; draws that would hide
        every observed point are left out.
    """
    n_curves, n_features = curves.shape
    missing = np.isnan(curves)
    with_gaps = np.flatnonzero(missing.any(axis=1))
    source = random_state.randint(n_curves, size=n_draws)
    if with_gaps.size:
        gaps = missing[with_gaps[random_state.randint(with_gaps.size, size=n_draws)]]
    else:
        length = random_state.randint(1, n_features // 2 + 1, size=n_draws)
        start = random_state.randint(0, n_features - length + 1)
        index = np.arange(n_features)
        gaps = (index >= start[:, None]) & (index < (start + length)[:, None])
    excess = gaps.sum(axis=1) - missing[source].sum(axis=1)
    hidden = _whole_runs(gaps & ~missing[source], np.maximum(excess, 1), random_state)
    keep = (~(missing[source] | hidden)).any(axis=1)
    masked = np.where(hidden, np.nan, curves[source])
    return source[keep], hidden[keep], masked[keep]


def _whole_runs(candidates: np.ndarray, counts: np.ndarray, random_state) -> np.ndarray:
    """Whole runs of each row's ``candidates`` (contiguous points), taken in random order
    until the row has at least ``counts`` points: a run is kept while fewer than the
    row's count are kept before it. A row with one run keeps it whole."""
    starts = candidates & ~np.pad(candidates, ((0, 0), (1, 0)))[:, :-1]
    run = np.cumsum(starts.ravel()).reshape(candidates.shape) * candidates  # 1, 2, ...
    row = np.nonzero(starts)[0]  # of each run, in order of their numbers
    length = np.bincount(run.ravel(), minlength=len(row) + 1)[1:]
    order = np.lexsort((random_state.random_sample(len(row)), row))  # rows stay sorted
    taken = np.cumsum(length[order])
    row_start = np.searchsorted(row[order], row[order])  # first run of the same row
    before = taken - length[order] - np.where(row_start, taken[row_start - 1], 0)
    kept = np.zeros(len(row) + 1, dtype=bool)
    kept[order + 1] = before < counts[row[order]]
    return kept[run] & candidates
