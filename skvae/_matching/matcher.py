"""LatentMatcher: invert curves by batched Nelder-Mead in a fitted VAE's latent space."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    MetaEstimatorMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._dask import is_dask_array, keep_dask_output_lazy, map_rows, validate_dask_data
from .._utils import one_torch_thread, unchanged_on_failure
from .._vae import BetaCurveVAE
from .._warnings import warn_at_caller
from .laplace import gauss_newton_polish, laplace_covariance
from .nelder_mead import batched_nelder_mead
from .problem import MatchProblem, check_noise
from .screening import extra_starts, screened_codes

__all__ = ["LatentMatcher"]

#: Targets optimised together on the CPU and on other devices: bounds memory on huge
#: inputs (results do not depend on it).
BLOCK_SIZE, DEVICE_BLOCK_SIZE = 8192, 1 << 20
#: ``initial_step="auto"`` edges (latent prior units) for partial targets' encoder starts
#: and for the zero and random starts.
PARTIAL_STEP, PRIOR_STEP = 0.1, 0.5
#: Damped Gauss-Newton steps of ``polish="gauss-newton"``.
GAUSS_NEWTON_STEPS = 5
#: Refinements of partial targets' encoder fill (see :func:`encoder_start`).
N_REFINE = 4


class LatentMatcher(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, MetaEstimatorMixin, BaseEstimator
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
        First start point of each target: the VAE's code (its :meth:`~BetaCurveVAE.transform`:
        the encoder's posterior mean refined by the VAE's ``refine_steps`` Gauss-Newton
        steps), or ``z = 0`` (the prior's mode, as in the blog post). The mask-aware
        encoder of a VAE fitted by this version encodes a partial target as it is; an
        older VAE's encoder reads it with its missing points filled with the training mean
        curve, refined a few times with the decoded curve of its current code.
    n_candidates : int, default=1024
        Candidate codes screened before the search: ``n_candidates`` fixed quasi-random
        points of the N(0, I) prior (the unscrambled Halton sequence after its first
        point, mapped through the normal quantile function) and the codes of up to
        ``n_candidates`` of the curves given to :meth:`fit` (``reference_codes_``),
        decoded once and scored against every target by the objective. Where a candidate
        scores better than a target's first start (``start``), the search starts there
        instead, with an initial simplex as wide as the prior points' spacing. This finds
        the right basin when the start lies in another one: partial targets whose
        observed points the encoder reads poorly, many-moded objectives such as
        oscillating curves. The reference codes cover where the codes of real curves
        lie, prior tails included, which the prior points cover sparsely. 0 turns
        screening off.
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
    maxiter : int, default=None
        Maximum Nelder-Mead iterations per start, as scipy's ``maxiter``. None means
        scipy's default caps: ``200 * latent_dims`` iterations and as many objective
        evaluations.
    random_state : int, RandomState instance or None, default=None
        Draws the extra starts from N(0, I) when not None (None: fixed quasi-random
        starts, see ``n_starts``; a RandomState instance gives other starts at each
        call) and, when ``estimator`` is None, seeds the default VAE.

    Attributes
    ----------
    estimator_ : BetaCurveVAE
        The fitted VAE: a fitted clone of ``estimator``, or ``estimator`` itself when
        ``prefit=True``.
    reference_codes_ : ndarray of shape (n_reference, latent_dims)
        Codes (:meth:`BetaCurveVAE.transform`) of up to ``n_candidates`` curves of the
        ``X`` given to :meth:`fit`, evenly spaced over its rows (rows with no observed
        point left out); screened with the prior points before each search (see
        ``n_candidates``).
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
    With ``prefit=False``, :meth:`fit` trains the VAE on the rows of ``X``, gaps
    included (rows with no observed point are left out). Partial targets are matched on
    their observed points, which completes them: ``inverse_transform(transform(X))``. A
    target with no observed point has nothing to match: it gets a warning and the code
    minimising the prior term from its start (the start itself when ``prior_weight=0``).
    Per-target Nelder-Mead iteration counts are given by :meth:`match` (the matcher has
    no ``n_iter_``: :meth:`fit` runs no iterations; ``estimator_.n_iter_`` counts the
    VAE's epochs). Matching runs torch on one thread (restored afterwards): its decoder
    calls are small, and faster so. On a GPU the engine reads back to the host only every
    few iterations.

    With a dask array, :meth:`fit` computes only the rows of ``reference_codes_`` when
    ``prefit=True`` (reading once each block that holds one), and otherwise trains the
    VAE out of core on its rows; :meth:`transform` and :meth:`inverse_transform` return
    lazy dask arrays (with ``set_output(transform="pandas")``, ``transform`` returns a
    lazy dask DataFrame).

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
        "n_candidates": [Interval(Integral, 0, None, closed="left")],
        "n_starts": [Interval(Integral, 1, None, closed="left")],
        "initial_step": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "prior_weight": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions({"l2", "posterior"})],
        "noise": [Interval(Real, 0, None, closed="neither"), None],
        "polish": [StrOptions({"gauss-newton"}), None],
        "xatol": [Interval(Real, 0, None, closed="left")],
        "fatol": [Interval(Real, 0, None, closed="left")],
        "maxiter": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        prefit=False,
        start="encoder",
        n_candidates=1024,
        n_starts=1,
        initial_step="auto",
        prior_weight=0.0,
        objective="l2",
        noise=None,
        polish=None,
        xatol=1e-4,
        fatol=1e-4,
        maxiter=None,
        random_state=None,
    ):
        self.estimator = estimator
        self.prefit = prefit
        self.start = start
        self.n_candidates = n_candidates
        self.n_starts = n_starts
        self.initial_step = initial_step
        self.prior_weight = prior_weight
        self.objective = objective
        self.noise = noise
        self.polish = polish
        self.xatol = xatol
        self.fatol = fatol
        self.maxiter = maxiter
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
        """Fit the VAE (unless ``prefit``) and keep the codes of some of the curves.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Curves; NaN marks missing points (rows with no observed point are not used
            to train). The codes of up to ``n_candidates`` of them become
            ``reference_codes_``.
        y : None
            Ignored.

        Returns
        -------
        self : LatentMatcher
            The fitted matcher.
        """
        self._check_objective()
        with unchanged_on_failure(self):  # validate_data sets n_features_in_ first
            if is_dask_array(X):
                X = validate_dask_data(self, X)
            else:
                X = validate_data(
                    self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
                )
            estimator = self._prefit_estimator(X) if self.prefit else self._fit_estimator(X)
            if self.noise is not None:
                self._noise_in_model_units(estimator.latent_model())
            self.reference_codes_ = reference_codes(estimator, X, self.n_candidates)
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
            ``xatol``/``fatol`` test was met before ``maxiter``; ``covariance``
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

    def _check_objective(self) -> None:
        """Combinations of the objective's parameters that make no sense."""
        if self.objective == "posterior" and self.prior_weight != 0:
            raise ValueError(
                "prior_weight applies to objective='l2'; the posterior objective has its "
                f"own N(0, I) prior term. Got prior_weight={self.prior_weight!r}."
            )
        if self.polish is not None and self.objective != "posterior":
            raise ValueError(
                "polish='gauss-newton' refines the posterior objective: use it with "
                "objective='posterior'."
            )

    def _prefit_estimator(self, X) -> BetaCurveVAE:
        """The prefit ``estimator``, checked to be fitted on curves as wide as ``X``."""
        if self.estimator is None:
            raise ValueError("prefit=True needs a fitted estimator; got estimator=None.")
        try:
            check_is_fitted(self.estimator)
        except NotFittedError as exc:
            raise NotFittedError(
                "When prefit=True, estimator must be a fitted BetaCurveVAE; fit it "
                "first or use prefit=False."
            ) from exc
        if self.estimator.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the prefit estimator was fitted "
                f"on curves with {self.estimator.n_features_in_} points."
            )
        return self.estimator

    def _fit_estimator(self, X) -> BetaCurveVAE:
        """A clone of ``estimator`` (or a default VAE) fitted on the rows of X with an
        observed point, gaps included (out of core for a dask array)."""
        kept = ~np.isnan(X).all(axis=1)
        if is_dask_array(X):
            X_kept = X[kept].compute_chunk_sizes()  # one pass over the blocks
            n_kept = X_kept.shape[0]
        else:
            X_kept, n_kept = X[kept], int(kept.sum())
        if not n_kept:
            raise ValueError(
                "Every row of X is missing (all NaN): there is nothing to fit the VAE on."
            )
        estimator = (
            BetaCurveVAE(random_state=self.random_state)
            if self.estimator is None
            else clone(self.estimator)
        )
        return estimator.fit(X_kept)

    def _noise_in_model_units(self, model) -> float:
        """The noise of the posterior objective and covariance, in model units."""
        if self.noise is None:
            return check_noise(model.noise, model.scaler.scale, "the estimator's noise_")
        return check_noise(float(self.noise), model.scaler.scale, "noise")

    def _match(self, X, *, diagnostics: bool) -> Bunch:
        check_is_fitted(self)
        self._check_objective()
        maxiter = self.maxiter
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
        sigma = self._noise_in_model_units(model)
        with one_torch_thread():
            out = self._search(model, X, observed, sigma, maxiter, diagnostics)
            if diagnostics:
                out.reconstructions = model.decode(out.codes)
        return out

    def _starts(self, model, X: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start points and initial steps, both of shape (n_samples, n_starts, latent_dims)."""
        (n, d), k = (X.shape[0], model.latent_dims), self.n_starts
        if self.start == "encoder":
            first, std = encoder_start(model, X, observed)
            first = model.refine(X, first, self.estimator_.refine_steps)
            complete = observed.all(axis=1)[:, None]
            auto = np.where(complete, np.maximum(std, 10 * self.xatol), PARTIAL_STEP)
        else:
            first, auto = np.zeros((n, d)), np.full((n, d), PRIOR_STEP)
        extra = extra_starts(k - 1, d, self.random_state)
        starts = np.concatenate([first[:, None], np.broadcast_to(extra, (n, k - 1, d))], axis=1)
        if self.initial_step == "auto":
            steps = np.concatenate([auto[:, None], np.full((n, k - 1, d), PRIOR_STEP)], axis=1)
        else:
            steps = np.full((n, k, d), float(self.initial_step))
        return starts, steps

    def _search(self, model, X, observed, sigma, maxiter, diagnostics: bool) -> Bunch:
        """Match every target from its starts, block by block: the results of :meth:`match`.

        Each block of targets is one :class:`MatchProblem`; Nelder-Mead runs on all the
        block's starts together (start ``j`` of target ``i`` is problem ``i * k + j``),
        the best start of each target wins, then the optional Gauss-Newton polish and the
        diagnostics use the same problem.
        """
        starts, steps = self._starts(model, X, observed)
        n, k, d = starts.shape
        device = model.device
        out = Bunch(codes=np.empty((n, d)), objective=np.empty(n), converged=np.empty(n, bool))
        out.n_iter, out.n_fev = np.empty(n, np.int64), np.empty(n, np.int64)
        if diagnostics:
            out.residuals, out.start_residuals, out.start_objective = np.empty((3, n))
            out.covariance = np.empty((n, d, d))
        block = BLOCK_SIZE if device.type == "cpu" else DEVICE_BLOCK_SIZE
        candidates = self._candidates(d)
        # a moved start's simplex is as wide as the prior points' typical spacing (their
        # central ±2 box shared among them), or the user's initial step
        screened_step = (
            4.0 / max(self.n_candidates, 1) ** (1.0 / d)
            if self.initial_step == "auto"
            else float(self.initial_step)
        )
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            problem = MatchProblem.from_curves(
                model, X[lo:hi], sigma, kind=self.objective, prior_weight=self.prior_weight
            )
            unscreened = starts[lo:hi, 0].copy(), steps[lo:hi, 0].copy()
            moved = np.zeros(hi - lo, dtype=bool)
            if self.n_candidates:
                moved = screened_starts(
                    problem, starts[lo:hi, 0], steps[lo:hi, 0], candidates, screened_step
                )
            # A screened start's basin may hold a worse minimum than the start it replaced:
            # both are searched, in the same run (problems past n * k are the replaced ones).
            n_block = hi - lo
            again = torch.as_tensor(np.flatnonzero(moved), device=device)
            res = self._nelder_mead(
                problem,
                torch.cat([torch.arange(n_block, device=device).repeat_interleave(k), again]),
                np.concatenate([starts[lo:hi].reshape(-1, d), unscreened[0][moved]]),
                np.concatenate([steps[lo:hi].reshape(-1, d), unscreened[1][moved]]),
                maxiter,
            )
            rows = torch.arange(n_block, device=device)
            best = rows * k + torch.argmin(res.fun[: n_block * k].view(-1, k), dim=1)
            replaced = n_block * k + torch.arange(len(again), device=device)
            won = res.fun[replaced] < res.fun[best[again]]
            best[again[won]] = replaced[won]
            codes, values = res.x[best], res.fun[best]
            n_iter, n_fev, converged = res.nit[best], res.nfev[best], res.converged[best]
            if self.polish is not None:  # never raises the objective
                codes = gauss_newton_polish(problem, codes, rows, n_steps=GAUSS_NEWTON_STEPS)
                values = problem(codes, rows)
            out.codes[lo:hi], out.objective[lo:hi] = codes.cpu().numpy(), values.cpu().numpy()
            out.n_iter[lo:hi] = n_iter.cpu().numpy()
            out.n_fev[lo:hi] = n_fev.cpu().numpy()
            out.converged[lo:hi] = converged.cpu().numpy()
            if diagnostics:
                first = torch.as_tensor(starts[lo:hi, 0], device=device)
                out.residuals[lo:hi] = problem.residuals(codes, rows).cpu().numpy()
                out.start_residuals[lo:hi] = problem.residuals(first, rows).cpu().numpy()
                out.start_objective[lo:hi] = problem(first, rows).cpu().numpy()
                out.covariance[lo:hi] = laplace_covariance(problem, codes, rows).cpu().numpy()
        if diagnostics:
            out.start_codes = starts[:, 0].copy()
        return out

    def _candidates(self, latent_dims: int) -> np.ndarray | None:
        """The screened codes: the prior points, then the reference codes (None when
        ``n_candidates=0``)."""
        if not self.n_candidates:
            return None
        prior = extra_starts(self.n_candidates, latent_dims, None)
        return np.concatenate([prior, self.reference_codes_])

    def _nelder_mead(self, problem, rows, starts, steps, maxiter):
        """Nelder-Mead on ``problem`` from ``starts`` (numpy), start ``i`` matching target
        ``rows[i]``."""
        device = problem.device
        return batched_nelder_mead(
            lambda Z, problems: problem(Z, rows[problems]),
            torch.as_tensor(starts, device=device),
            initial_step=torch.as_tensor(steps, device=device),
            xatol=self.xatol,
            fatol=self.fatol,
            max_iter=maxiter,
        )


# sklearn's set_output would compute a dask array into a pandas DataFrame: keep it lazy
LatentMatcher.transform = keep_dask_output_lazy(LatentMatcher.transform)


def encode(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of curves (row-independent; NaN marks a
    missing point)."""
    return model.encode(
        X,
        non_finite_error=(
            "Encoding the targets produced non-finite values: X has values too large in "
            "magnitude for the fitted VAE. Check that X is in the training curves' units."
        ),
    )


def encoder_start(
    model, X: np.ndarray, observed: np.ndarray, n_refine: int = N_REFINE
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std of the targets. A mask-aware encoder reads partial targets
    as they are; another sees their missing points filled with the mean curve, then
    ``n_refine`` times with the decoded curve of the current code."""
    if model.module.config["mask_aware"]:
        return encode(model, X)
    filled = np.where(observed, X, model.scaler.mean)
    partial = np.flatnonzero(~observed.all(axis=1))
    for _ in range(n_refine if partial.size else 0):
        decoded = model.decode(encode(model, filled[partial])[0])
        filled[partial] = np.where(observed[partial], X[partial], decoded)
    return encode(model, filled)


def reference_codes(estimator: BetaCurveVAE, X, n_codes: int) -> np.ndarray:
    """The codes of up to ``n_codes`` rows of ``X`` evenly spaced over its rows (rows with
    no observed point dropped), shape (n, latent_dims); of a dask array, only those rows
    are computed (each block holding one is read once)."""
    model = estimator.latent_model()
    if is_dask_array(X) and math.isnan(X.shape[0]):
        X = X.compute_chunk_sizes()
    n_rows = X.shape[0]
    rows = np.unique(np.linspace(0, n_rows - 1, min(n_codes, n_rows)).round().astype(np.intp))
    X = X[rows].compute() if is_dask_array(X) else X[rows]
    X = np.asarray(X, dtype=np.float64)
    kept = ~np.isnan(X).all(axis=1)
    if not kept.any():
        return np.empty((0, model.latent_dims))
    X = X[kept]
    with one_torch_thread():  # what estimator.transform does, without re-validating X
        return model.refine(X, model.encode(X, return_std=False), estimator.refine_steps)


def screened_starts(
    problem: MatchProblem,
    starts: np.ndarray,
    steps: np.ndarray,
    candidates: np.ndarray,
    step: float,
) -> np.ndarray:
    """Move each start to the best of the ``candidates`` codes where it scores better
    (:func:`~skvae._matching.screening.screened_codes`).

    ``starts`` and ``steps`` (shape (n_targets, latent_dims), the first start of each
    target of ``problem`` and its initial simplex edges) are updated in place: a moved
    start gets simplex edges ``step``. Returns the moved targets, a boolean array of
    shape (n_targets,).
    """
    codes, moved = screened_codes(
        problem, torch.as_tensor(starts, device=problem.device), candidates
    )
    moved = moved.cpu().numpy()
    starts[moved] = codes.cpu().numpy()[moved]
    steps[moved] = step
    return moved
