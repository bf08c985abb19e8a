"""BetaCurveVAE: the scikit-learn estimator of a variational autoencoder for curves.

The whole estimator lives here, as scikit-learn keeps one estimator in one module: its
parameters and their validation, ``fit``/``partial_fit`` and the private fitting steps
(as ``BaseMultilayerPerceptron`` keeps ``_fit`` and ``_initialize``), and the inference
methods. A fit trains copies (a fresh state, or a deep copy of the fitted one when warm
starting or continuing with ``partial_fit``) and :meth:`BetaCurveVAE._set_fitted` assigns
every fitted attribute in one place, only once training succeeded, so that a failed fit
changes nothing. Inputs may be numpy arrays or dask arrays (mapped block by block);
outputs are float64.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import math
import re
from numbers import Integral, Real

import numpy as np
import torch
from scipy.stats import wilcoxon
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _dask
from ._chunks import apply_in_chunks, chunk_size_for
from ._latent_model import LatentModel, refined_codes
from ._progress import make_progress_callback
from ._scaling import CurveScaler
from ._torch import loop as _training
from ._torch.encoder_tuning import tune_encoder, tuning_steps
from ._torch.networks import ACTIVATIONS, PROFILED, VAEModule
from ._utils import check_observed_rows, unchanged_on_failure
from ._warnings import warn_at_caller

__all__ = ["BetaCurveVAE"]


_SEED_MAX = np.iinfo(np.int32).max
#: Fixed noise relative to the data's scale that the float32 networks represent: its
#: log is stored in float32 and training multiplies squared errors by 1/σ².
_NOISE_RANGE = (
    math.sqrt(float(np.finfo(np.float32).tiny)),
    math.sqrt(float(np.finfo(np.float32).max)),
)
#: Parameters that must be integers (``Interval(Integral)`` also admits booleans).
_INTEGER_PARAMS = ("latent_dims", "max_iter", "batch_size", "n_iter_no_change")
#: Network settings a continued fit cannot change: VAEModule config key -> parameter.
#: ``batch_size="auto"``: the largest batch, the smallest, and the fewest batches per epoch.
_AUTO_BATCH = {"largest": 512, "smallest": 16, "per_epoch": 8}
#: Curves that ``early_stopping="auto"`` needs to hold some out (in memory).
_AUTO_EARLY_STOPPING_MIN_CURVES = 20
#: In memory, at least ``min(_MIN_HELD_OUT, n_samples // 4)`` curves are held out.
_MIN_HELD_OUT = 20
#: ``early_stopping="auto"`` cross-validates the choice between the trained networks and
#: their PCA start when a hold-out would have fewer curves than this: the rank test on a
#: hold-out of 20 spectra returned PCA over networks with 20 % less held-out error.
_MIN_DECISION_CURVES = 50
#: folds of that cross-validation: every curve is held out once, so the test ranks the
#: gains of all the curves; each fold trains on two thirds of them. It needs
#: ``_DECISION_FOLDS * _MIN_HELD_OUT`` curves, so that each fold holds out as many as the
#: smallest hold-out; with fewer, folds would train on a few dozen curves.
_DECISION_FOLDS = 3
#: one-sided significance level at which the best epoch must beat the PCA start.
_START_SIGNIFICANCE = 0.05
#: the stall rule may stop the "cosine" schedule only after this share of ``max_iter``
#: epochs, where its rate has fallen to about a tenth of its peak: while the rate is
#: high the held-out score is noisy and its progress hidden by the noise
_COSINE_STALL_START = 0.8
#: weights restored from an epoch whose "cosine" rate was above this share of its peak
#: are not annealed: with ``max_iter`` raised five-fold, the held-out score peaked
#: at 8-32 % of the schedule on GunPoint and Tecator, and those weights reconstructed
#: held-out curves up to 18 % worse than the default fit's annealed ones. Such weights
#: are annealed over ``_ANNEAL_LENGTH`` times as many epochs as it took to reach them.
_ANNEAL_ABOVE = 0.25
_ANNEAL_LENGTH = 0.5
#: a fresh "cosine" fit that holds out fewer than ``_MIN_DECISION_CURVES`` curves and is
#: given more than this many epochs first runs a schedule of this length (the default
#: ``max_iter``'s: the default fit); if that ran to its end, still improving on the
#: held-out curves, it restarts the schedule from the kept weights over the epochs left
#: (on eight real sets, none of 18 restarts after a first schedule whose held-out score
#: had stalled was kept: they only took time). The restart's weights are kept only if
#: they beat the kept ones on the held-out curves by the rank test that the PCA start
#: must lose: the best epoch of a long schedule, picked on a few held-out curves, looks
#: better than it is. As one long schedule, five times the epochs gave 8 % more held-out
#: error on 150 ACSF1 curves (1.8 times: 2.8 % more on 211 ArrowHead curves), and
#: restarts kept for a higher mean score on 20 Tecator spectra had 8 % more error on the
#: benchmark's held-out ones. With more held-out curves, the best epoch is a fair pick
#: and one long schedule gains more: 2 % less error on ItalyPowerDemand (82 held out) at
#: five times the epochs; on 10,000 Beta curves 0.00240 at twice the epochs, where a
#: restart gave 0.00355 (the default fit: 0.00444).
_FIRST_SCHEDULE = 280
_ARCHITECTURE_PARAMS = {
    "hidden": "hidden_layer_sizes",
    "latent_dims": "latent_dims",
    "activation": "activation",
    "noise": "noise",
    "residual": "residual",
    "mask_aware": "gap_aware",
}


def resolve_device(device: str) -> torch.device:
    """The torch device of the ``device`` parameter (``"auto"``: CUDA when available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fix = "use device='cpu' or device='auto' (a fitted model: set_params(device='cpu'))."
    if not (isinstance(device, str) and re.fullmatch(r"cpu|cuda(:[0-9]+)?", device)):
        raise InvalidParameterError(
            "The 'device' parameter of BetaCurveVAE must be 'cpu', 'cuda', 'cuda:N' or "
            f"'auto'. Got {device!r} instead."
        )
    resolved = torch.device(device)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if resolved.type == "cuda" and (resolved.index or 0) >= n_gpus:
        found = f"{n_gpus} CUDA device{'s' * (n_gpus != 1)}" if n_gpus else "no CUDA device"
        raise ValueError(f"device={device!r} was requested but torch reports {found}; {fix}")
    return resolved


@contextlib.contextmanager
def _divergence_as_value_error():
    """Raise a training run that diverged as the ValueError a fit's caller expects
    (inside a fit, a diverged follow-up run is caught as the loop's TrainingDiverged)."""
    try:
        yield
    except _training.TrainingDiverged as exc:
        raise ValueError(str(exc)) from None


def _beats_pca_start(gains: torch.Tensor) -> bool:
    """Whether the best trained epoch beats the PCA start on the held-out curves, from its
    per-curve gains in held-out score: a positive mean gain, and a one-sided Wilcoxon
    signed-rank test at level ``_START_SIGNIFICANCE``.

    A rank test because the gains are differences of per-curve log errors, whose tails
    are heavy: a few curves that PCA fits badly or well swing a t statistic. On Tecator
    spectra a paired t-test (t >= 2) returned PCA over a model with 29 % less held-out
    error (t 1.93, signed-rank p 0.037). At this level, on nine real curve sets with
    three seeds each, no model it kept had more than PCA's held-out error (+0.1 %).
    """
    gains = gains.detach().double().cpu().numpy()
    if not (gains > 0).any() or not gains.mean() > 0:
        return False
    return bool(wilcoxon(gains, alternative="greater").pvalue < _START_SIGNIFICANCE)


def _beats_kept_epoch(gains: torch.Tensor) -> bool:
    """Whether the last epoch's weights beat the ones that early stopping keeps, from
    their per-curve gains in held-out score: :func:`_beats_pca_start`'s test."""
    return _beats_pca_start(gains)


class BetaCurveVAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Variational autoencoder for families of curves sampled on a common grid.

    Each row of ``X`` is one curve (a function sampled at ``n_features`` points). An MLP
    encoder maps a curve to a diagonal Gaussian posterior over ``latent_dims`` latent
    variables; an MLP decoder maps a latent code back to a curve, the mean of a Gaussian
    likelihood. Training maximises the evidence lower bound (ELBO) with the
    reparametrisation trick, the closed-form Gaussian KL divergence and Adam.

    Features are centred per grid point and divided by one global scale (the root mean
    per-point variance) inside the estimator, so the Gaussian likelihood's shared noise is
    isotropic in the data's own units and the training loss is the L2 error users measure.

    Curves may have missing points (NaN), in training and in inference: the scaling comes
    from the observed values, the likelihood counts the observed points only, and the
    encoder reads which points are observed. When the training curves have missing points
    (or with ``gap_aware=True``), a share of them also hide random gaps from the encoder
    in training (scattered points or one contiguous stretch, up to 80 % of the curve)
    while the likelihood scores all their observed points, so that :meth:`transform`
    encodes a curve from any part of it. See the user guide's page on missing points.

    Parameters
    ----------
    latent_dims : int, default=2
        Dimension of the latent space.
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Widths of the encoder's hidden layers; the decoder mirrors them.
    activation : {"silu", "tanh", "relu", "gelu", "elu", "softplus"}, default="silu"
        Hidden-layer activation. The original blog post used ``"tanh"`` with three layers of 32.
    max_iter : int, default=280
        Maximum number of epochs (passes over the training data). With the ``"cosine"``
        schedule, training never stops before 80 % of them. A fresh fit that holds out
        fewer than 50 curves (``early_stopping``) with the ``"cosine"`` schedule spends a
        ``max_iter`` above 280 as a schedule of 280 epochs (the default fit), stopped
        early when the held-out score stalls; if it ran to its end, a restart of the
        schedule from the kept weights follows over the epochs left, kept only if it
        beats them on the held-out curves: more epochs never return weights that score
        worse there. When ``early_stopping="auto"`` cross-validates instead (60 to 499
        curves), its folds and the run on every curve use a schedule of 280 epochs, and
        the rest of a larger ``max_iter`` is not used. With more held-out curves, one
        schedule spans ``max_iter``.
    batch_size : int or "auto", default="auto"
        Mini-batch size (clipped to the number of training curves). When set to
        "auto", ``batch_size=min(512, max(16, ceil(n_samples / 8)))``, ``n_samples`` the
        training curves (after the hold-out): at least 8 steps per epoch on small data
        sets, 512 curves per step on large ones.
    learning_rate_init : float, default=4e-3
        Initial learning rate of Adam.
    learning_rate : {"cosine", "exponential", "constant"}, default="cosine"
        Learning-rate schedule over epochs: cosine annealing over ``max_iter`` epochs (or
        over each of its two parts, see ``max_iter``) down to 1% of the initial rate,
        exponential decay by ``decay_rate`` per epoch, or constant. Each step's gradient
        norm is also clipped at twice its running average, which keeps rare outlier
        batches from throwing training back.
    decay_rate : float, default=0.98
        Per-epoch factor of the ``"exponential"`` schedule.
    tol : float, default=2e-2
        Minimum improvement of the loss per point per epoch, in nats (or of the
        validation score when ``early_stopping``), that counts as progress. With the
        profiled noise the loss is ``½ log MSE`` per point, so the default means the
        mean squared error shrinking by about 4 % per epoch.
    n_iter_no_change : int, default=50
        Training stops after this many epochs without progress of at least ``tol``
        (never in the first 80 % of the ``"cosine"`` schedule, while its rate is above
        about a tenth of its peak).
        ``ConvergenceWarning`` is raised only when training stops at ``max_iter`` while
        the best training loss of the last ``max(2, ceil(max_iter / 20))`` epochs (the
        schedule's last 5 %) still beats the best before them by more than ``tol`` per
        epoch on average: a fit whose loss has flattened as its schedule ran out does not
        warn.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the curves (whole row blocks of a dask array),
        track how well the encoder-mean reconstruction fits them (the reconstruction
        log-likelihood per curve and grid point at each curve's maximum-likelihood noise,
        ``-½ (log(2π MSE) + 1)``, averaged over curves), stop when it stops improving and
        restore the best weights. The networks start at PCA (see Notes), which competes
        as epoch 0: the best trained epoch is kept only if its per-curve held-out scores
        beat PCA's by a one-sided Wilcoxon signed-rank test at level 0.05, both scored
        at the codes :meth:`transform` gives (refined by ``refine_steps``); otherwise
        the fit returns PCA, refitted on all the curves. "auto": on for :meth:`fit` on
        at least 20 curves in memory, off for dask arrays. Where the hold-out would have
        fewer than 50 curves, too few for the test to tell a real gain from noise, and
        there are at least 60 curves (60 to 499 at the default ``validation_fraction``),
        "auto" cross-validates that decision: three folds of the curves each train the
        networks with early stopping on the curves they hold out, and the gains of every
        curve meet in one test. If the networks win it, the fit trains them on every
        curve, with no hold-out, over the schedule the folds judged (at most 280
        epochs): to its end if the folds' last epochs beat their kept weights by the
        same test, otherwise up to the epoch whose held-out score, averaged over the
        three folds, was the highest (annealed from there as below); if not, it returns
        PCA of all the curves, with the first fold's history. This costs up to four
        fits, seconds on such small sets. Weights kept from an epoch whose ``"cosine"``
        rate was above a quarter of its peak are annealed (trained on from that rate
        down, within ``max_iter``) and the annealed weights kept if they score better.
    validation_fraction : float, default=0.1
        Fraction of the training curves held out when ``early_stopping``; in memory, at
        least ``min(20, n_samples // 4)`` curves.
    noise : {"profiled", "learned"} or float, default="profiled"
        Standard deviation of the Gaussian observation noise, in the data's units.
        ``"profiled"``: during training each curve's noise is set to its maximum-likelihood
        value (its RMS reconstruction error; the "optimal σ" of Rybkin et al. 2021, per
        curve), so the loss is ``½ log MSE`` per curve plus the KL: the step size follows
        the shrinking error (no loss spikes) and every curve's relative error counts.
        Over the first half of ``max_iter`` each curve's noise variance is raised by a
        share, falling from 1 to 0, of the last epoch's mean squared error, so that the
        curves fitted worst early on are not given up (see :ref:`noise`). ``noise_`` is then
        the RMS training error of the last epoch, one shared σ, so
        :meth:`score_samples` is an ELBO. ``"learned"``: one shared σ trained by gradient
        descent with the rest. A float: a fixed σ (the blog post's η), between about
        1e-19 and 1e19 times the data's scale (``scale_``), which float32 networks represent.
        With :meth:`partial_fit`, the profiled ``noise_`` is a running estimate over every
        call's curves.
    residual : bool, default=True
        Hidden-to-hidden layers of equal width are residual blocks ``h + act(W h + b)``
        (better conditioned, same cost per epoch as a plain MLP).
    gap_aware : "auto" or bool, default="auto"
        Whether the encoder reads which points of a curve are missing and is trained to
        encode curves with gaps: in each mini-batch half of the curves hide a random gap
        from it (scattered points or one contiguous stretch, up to 80 % of the curve)
        while the likelihood scores all their observed points. ``"auto"``: when the
        training curves have missing points. Costs on complete curves: more time per
        epoch and a less precise encoder (its capacity is shared with the gaps); set
        ``True`` to encode partial curves with a model trained on complete ones (or use
        :class:`LatentMatcher`). An encoder that is not gap-aware reads missing points
        interpolated along the grid. A :meth:`fit` in memory on curves with missing
        points ends by tuning the gap-aware encoder, the decoder fixed, on the training
        curves as given and completed by the model, so that it also reads complete
        curves (which such training may never show it); the tuning takes a quarter of
        the fit's optimizer steps, at most 1,000 (see :ref:`missing_points`).
    refine_steps : int, default=3
        Gauss-Newton steps by which :meth:`transform` refines each encoder mean against
        the decoder (semi-amortised encoding): each step is kept only where it brings the
        decoded curve closer to the curve's observed points (least squares, with a faint
        N(0, I) prior that keeps the step well-posed), so a code never reconstructs worse
        than the encoder's mean. The encoder alone leaves an amortisation gap that these
        steps close: on held-out real curves and on curves with gaps the codes
        reconstruct about as well as :class:`LatentMatcher`'s, for a few decoder
        Jacobians per curve. 0: the encoder's mean alone (the fastest, as skvae 0.1.0).
    kl_weight : float, default=1.0
        Weight of the KL term in the training loss (1 is the ELBO; other values give a
        β-VAE). :meth:`score_samples` and :meth:`score` are the true ELBO whatever
        ``kl_weight``.
    warm_start : bool, default=False
        When fitting again, continue from the current weights and optimizer state instead
        of starting anew. The schedule continues too: epochs are counted over all fits
        (``n_iter_``), so with ``"cosine"`` the epochs after the first ``max_iter`` run at
        the final 1% rate (fine-tuning), as do ``partial_fit`` calls past ``max_iter``.
        The architecture (``latent_dims``, ``hidden_layer_sizes``, ``activation``,
        ``residual``, ``noise``) cannot change when continuing: fit raises a ValueError
        naming what changed, and the fitted model is kept.
    verbose : int, default=0
        0: silent; 1: a progress bar (tqdm when installed, otherwise a few lines);
        2: one line per epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the reparametrisation noise and the
        validation split, through a local ``torch.Generator``. Pass an int for
        reproducible fits.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where to fit *and* compute (a torch device name; anything else raises a
        ``ValueError`` when fitting or computing): ``transform``, ``inverse_transform``,
        ``score_samples``, ``sample`` and :class:`LatentMatcher` run there too and return
        numpy. ``"auto"`` picks CUDA when available. The fitted networks are stored on the
        CPU (a device copy is made once, on first use, and never pickled), so fitted
        estimators pickle and load anywhere.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted networks (``module_.encoder``, ``module_.decoder``) and noise.
    encoder_, decoder_ : torch.nn.Module
        Shortcuts to ``module_.encoder`` and ``module_.decoder``.
    mean_ : ndarray of shape (n_features_in_,)
        Per-point mean of the training curves.
    scale_ : float
        Global scale of the training curves.
    noise_ : float
        Observation noise standard deviation in the data's units (learned or fixed).
    n_iter_ : int
        Number of epochs run (over all fits when warm starting).
    loss_curve_ : list of float
        Training loss (negative ELBO per curve and observed grid point, data units) per
        epoch.
    reconstruction_curve_ : list of float
        The reconstruction part of the loss per epoch (per curve and observed grid point).
    kl_curve_ : list of float
        Mean KL divergence per curve (in nats, not per grid point) per epoch.
    scaler_ : CurveScaler
        ``mean_`` and ``scale_`` as one object (model units to data units and back).
    validation_scores_ : list of float or None
        Held-out score per epoch (see ``early_stopping``), one entry per entry of
        ``loss_curve_`` (NaN for epochs trained without a hold-out: ``partial_fit``, or
        fits without ``early_stopping``); None when no epoch was validated. When
        ``early_stopping="auto"`` cross-validated a small set and returned PCA: the first
        fold's scores; when it trained the networks (on every curve): None.
    best_validation_score_ : float or None
        Held-out score of the weights that the last ``early_stopping`` fit restored (PCA's
        on the training part when the fit kept its PCA start; otherwise the best of
        ``validation_scores_``); None when no epoch was validated.
    n_features_in_ : int
        Number of grid points seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    sklearn.decomposition.PCA : Linear counterpart.
    skvae.LatentMatcher : Inverts curves by optimising in the latent space.
    skvae.save, skvae.load : Persistence in a format whose loading runs no pickle.

    Notes
    -----
    **PCA start.** A fresh fit starts at probabilistic PCA of the training curves: the
    encoder's mean and the decoder's output each have a linear path beside their MLP,
    set to PCA's projection (whitened codes) and reconstruction, with the MLPs' output
    layers at zero, so epoch 0 reconstructs as ``PCA(latent_dims)`` and training only
    adds the non-linear part.

    **Threads and parallel model selection.** Torch's CPU kernels use
    ``torch.get_num_threads()`` threads; the estimator does not change that number. With
    ``n_jobs > 1``, scikit-learn's process-based ``loky`` workers start with about one
    thread per core share, so parallel model selection does not oversubscribe; see the
    user guide's training page for the threading and Dask backends.

    **Interrupting a fit.** A ``KeyboardInterrupt`` (Ctrl-C) during :meth:`fit` or
    :meth:`partial_fit` ends training with a ``UserWarning``: the estimator keeps the
    weights of the last completed epoch (the best validation weights when
    ``early_stopping=True``) and is fitted and usable. An interrupt before the first epoch
    of the call completes propagates, and leaves the estimator as it was, as does any
    failed fit.

    **Persistence.** The fitted networks live on the CPU whatever ``device`` trained them,
    so pickle/joblib files of a model trained on a GPU load on machines without one.
    Pickle runs code when loading: load only files you trust, or use :func:`skvae.save`
    and :func:`skvae.load`, whose loading runs no pickle.

    Examples
    --------
    >>> from skvae import BetaCurveVAE, make_beta_curves
    >>> X, _ = make_beta_curves(n_samples=500, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, random_state=0).fit(X)
    >>> vae.transform(X[:3]).shape
    (3, 2)
    >>> vae.inverse_transform(vae.transform(X[:3])).shape
    (3, 100)
    >>> vae.sample(4, random_state=0).shape
    (4, 100)
    """

    _parameter_constraints: dict = {
        "latent_dims": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions({"cosine", "exponential", "constant"})],
        "decay_rate": [Interval(Real, 0, 1, closed="right")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "noise": [StrOptions({"profiled", "learned"}), Interval(Real, 0, None, closed="neither")],
        "residual": ["boolean"],
        "gap_aware": ["boolean", StrOptions({"auto"})],
        "refine_steps": [Interval(Integral, 0, None, closed="left")],
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(
        self,
        latent_dims=2,
        *,
        hidden_layer_sizes=(128, 128),
        activation="silu",
        max_iter=280,
        batch_size="auto",
        learning_rate_init=4e-3,
        learning_rate="cosine",
        decay_rate=0.98,
        tol=2e-2,
        n_iter_no_change=50,
        early_stopping="auto",
        validation_fraction=0.1,
        noise="profiled",
        residual=True,
        gap_aware="auto",
        refine_steps=3,
        kl_weight=1.0,
        warm_start=False,
        verbose=0,
        random_state=None,
        device="cpu",
    ):
        self.latent_dims = latent_dims
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.decay_rate = decay_rate
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.noise = noise
        self.residual = residual
        self.gap_aware = gap_aware
        self.refine_steps = refine_steps
        self.kl_weight = kl_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE to curves ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training curves, one per row, all sampled on the same grid; NaN marks a
            missing point (every curve needs an observed point, every grid point an
            observed value).
        y : None
            Ignored.

        Returns
        -------
        self : BetaCurveVAE
            The fitted estimator.
        """
        with unchanged_on_failure(self), _divergence_as_value_error():
            return self._fit(X, self.max_iter, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, continuing from the current state if fitted.

        The first call sets the scaling and the PCA start from its ``X``; later calls must
        have the same number of features and the same architecture. Early stopping does
        not apply: the call's epoch is not validated (its entry of ``validation_scores_``, when that
        holds scores of earlier fits, is NaN). With ``noise="profiled"``, ``noise_`` is
        a running estimate: the RMS error over the curves of every ``partial_fit`` call
        and of the last epoch of the last :meth:`fit`, each curve counted once, so that
        one call on a few curves moves it by their share only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training curves; NaN marks a missing point.
        y : None
            Ignored.

        Returns
        -------
        self : BetaCurveVAE
            The updated estimator.
        """
        if hasattr(self, "module_"):  # _fit_context skips this once fitted; an epoch costs more
            self._validate_params()
        with unchanged_on_failure(self), _divergence_as_value_error():
            return self._fit(X, 1, incremental=True)

    # ------------------------------------------------------- fitting steps

    def _training_curves(self, X, *, reset: bool):
        """The training curves, in memory or in a dask array: the one place where a fit
        tells the two apart. A dask array is checked but never materialised."""
        if not _dask.is_dask_array(X):
            X = validate_data(
                self, X, reset=reset, dtype=np.float64, order="C", ensure_all_finite="allow-nan"
            )
            check_observed_rows(X)
            return _InMemoryCurves(X)
        return _dask.DaskCurves(_dask.validate_dask_data(self, X, reset=reset))

    # ------------------------------------------------------------ hyper-parameters

    def _check_numeric_params(self) -> None:
        """Reject booleans where numbers are expected (``Interval`` admits them)."""
        for name, constraints in self._parameter_constraints.items():
            if not any(isinstance(c, Interval) for c in constraints):
                continue
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_):
                kind = "an integer" if name in _INTEGER_PARAMS else "a real number"
                raise ValueError(f"{name} must be {kind}, got the boolean {value!r}.")

    def _compute_device(self) -> torch.device:
        """The torch device of the ``device`` parameter, checked (``set_params`` does not
        check, and inference runs without ``fit``'s validation)."""
        return resolve_device(self.device)

    def _hidden_sizes(self) -> list[int]:
        """The validated ``hidden_layer_sizes`` as a list of ints."""
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not sizes or any(
            isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _batch_size(self, n_samples: int) -> int:
        """The mini-batch size for ``n_samples`` training curves (``batch_size="auto"``:
        at least ``_AUTO_BATCH["per_epoch"]`` steps per epoch, within its bounds)."""
        if self.batch_size != "auto":
            return min(self.batch_size, n_samples)
        per_epoch = math.ceil(n_samples / _AUTO_BATCH["per_epoch"])
        size = min(_AUTO_BATCH["largest"], max(_AUTO_BATCH["smallest"], per_epoch))
        return min(size, n_samples)

    def _holds_out(self, curves, incremental: bool) -> bool:
        """Whether this fit holds curves out for early stopping."""
        if incremental:
            return False
        if self.early_stopping == "auto":
            return (
                isinstance(curves, _InMemoryCurves)
                and curves.n_samples >= _AUTO_EARLY_STOPPING_MIN_CURVES
            )
        return bool(self.early_stopping)

    def _training_config(
        self, source, curves, validation, incremental: bool, max_epochs: int | None = None
    ) -> _training.TrainingConfig:
        """The training loop's settings from the hyper-parameters, for a run on ``source``
        (of ``curves``) scored on ``validation`` (or None), whose schedule spans
        ``max_epochs`` (default ``max_iter``)."""
        max_epochs = self.max_iter if max_epochs is None else max_epochs
        if validation is not None and self.refine_steps:
            # the start-or-best-epoch decision scores the codes that transform will give
            validation.refine = functools.partial(refined_codes, n_steps=self.refine_steps)
        return _training.TrainingConfig(
            min_epochs=(
                math.ceil(_COSINE_STALL_START * max_epochs) if self.learning_rate == "cosine" else 0
            ),
            max_epochs=max_epochs,
            batch_size=self._batch_size(source.n_samples),
            learning_rate_init=self.learning_rate_init,
            schedule=self.learning_rate,
            decay_rate=self.decay_rate,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            kl_weight=self.kl_weight,
            running_noise=incremental,
            complete_curves=not curves.has_missing,
        )

    # ------------------------------------------------------------------- state

    def _network_config(self, n_features: int, scaler: CurveScaler, has_missing: bool) -> dict:
        """The :class:`VAEModule` arguments that the hyper-parameters ask for, for
        training curves with (``has_missing``) or without missing points."""
        if isinstance(self.noise, str):
            noise = {"learned": None, "profiled": PROFILED}[self.noise]
        else:
            noise = float(self.noise) / scaler.scale
            low, high = _NOISE_RANGE
            if not low <= noise <= high:
                raise ValueError(
                    f"noise={self.noise!r} is not representable by the float32 networks "
                    f"for these curves: it must be between {low * scaler.scale:.3g} and "
                    f"{high * scaler.scale:.3g} (the data's scale {scaler.scale:g} times "
                    f"{low:.3g} to {high:.3g}); choose a noise of a comparable magnitude."
                )
        return {
            "n_features": n_features,
            "hidden": self._hidden_sizes(),
            "latent_dims": self.latent_dims,
            "activation": self.activation,
            "noise": noise,
            "residual": self.residual,
            "mask_aware": has_missing if self.gap_aware == "auto" else bool(self.gap_aware),
            "linear": True,
        }

    def _initialize(
        self, n_features: int, scaler: CurveScaler, has_missing: bool, seed: int
    ) -> VAEModule:
        """Fresh networks for curves of ``n_features`` points (nothing assigned)."""
        module = VAEModule(**self._network_config(n_features, scaler, has_missing))
        module.reset_parameters(torch.Generator().manual_seed(seed))
        return module

    def _check_architecture_unchanged(self, incremental: bool) -> None:
        """Raise if the networks that the hyper-parameters ask for differ from the fitted
        ones, which a continued fit (``warm_start``, ``partial_fit``) cannot change."""
        fitted = self.module_.config
        # "auto" follows the first fit's curves: any fitted encoder satisfies it
        wanted = self._network_config(fitted["n_features"], self.scaler_, fitted["mask_aware"])
        changed = []
        for key, name in _ARCHITECTURE_PARAMS.items():
            a, b = wanted[key], fitted[key]
            same = math.isclose(a, b, rel_tol=1e-6) if _both_floats(a, b) else a == b
            if not same:
                changed.append(name)
        if changed:
            how = "partial_fit continues" if incremental else "warm_start=True continues"
            remedy = "call fit" if incremental else "set warm_start=False"
            raise ValueError(
                f"{how} the fitted networks, but {', '.join(changed)} changed since they "
                f"were fitted; {remedy} to fit networks of the new architecture, or restore "
                "the fitted values. Nothing fitted was changed."
            )

    # ---------------------------------------------------------------- training

    def _fit(self, X, n_epochs: int, *, incremental: bool):
        """Train for up to ``n_epochs`` on ``X``; assign only on success.

        ``incremental`` (``partial_fit``): continue the fitted state and its generator,
        without early stopping or a convergence warning. A fit continues the fitted
        networks when ``incremental`` or ``warm_start``, and starts afresh otherwise.
        """
        continuing = hasattr(self, "module_") and (incremental or self.warm_start)
        self._check_numeric_params()
        if continuing:
            self._check_architecture_unchanged(incremental)
        curves = self._training_curves(X, reset=not continuing)
        rng = check_random_state(self.random_state)
        # drawn even when continuing, so that a warm-started fit with an int random_state
        # holds out the same validation curves as the first fit
        init_seed = int(rng.randint(_SEED_MAX))
        generator = torch.Generator()
        if continuing:
            module = copy.deepcopy(self.module_)
            state = copy.deepcopy(self._state)
            scaler = self.scaler_
        else:
            scaler = curves.fit_scaler()
            module = self._initialize(curves.n_features, scaler, curves.has_missing, init_seed)
            state = _training.TrainingState()
        if continuing and incremental:
            generator.set_state(self._generator_state)
        else:
            generator.manual_seed(int(rng.randint(_SEED_MAX)))
        device = self._compute_device()
        module.to(device)
        hold_out = self.validation_fraction if self._holds_out(curves, incremental) else None
        beats_start = None if continuing else _beats_pca_start
        restarts = (  # a first schedule of the default length, then a restart
            not continuing
            and hold_out is not None
            and self.learning_rate == "cosine"
            and n_epochs > _FIRST_SCHEDULE
            and curves.n_held_out(hold_out) < _MIN_DECISION_CURVES
        )
        first_schedule = _FIRST_SCHEDULE if restarts else n_epochs
        stop_epoch = None  # where the folds stop the run on every curve
        if not continuing and self._cross_validates(curves, hold_out):
            won, first_fold, stop_epoch = self._cross_validate_start(
                curves, scaler, module, rng, first_schedule
            )
            if not won:  # PCA of every curve, with the first fold's history
                fold_state, fold_reason = first_fold
                _start_at_pca_of_every_curve(module, curves, scaler, rng, device)
                self._set_fitted(module.cpu(), scaler, fold_state, generator, validated=True)
                self._warn_outcome(fold_reason, fold_state, 0, incremental)
                return self
            # the folds decided all a hold-out would: the networks train on every curve
            hold_out, beats_start, restarts = None, None, False
        source, validation = curves.training_data(scaler, hold_out, rng, device)
        if not continuing:  # start at PCA of the training part (a throwaway shuffle)
            module.start_at_pca(source.batches(_training.NOISE_SLAB, torch.Generator()))
        config = self._training_config(
            source, curves, validation, incremental, first_schedule if not incremental else None
        )
        config.beats_start = beats_start
        first_epoch = state.epoch
        if validation is not None:
            _align_validation(state, force=True)
        reason = self._train(
            module, state, source, validation, config, generator, stop_epoch or first_schedule,
            scaler,
        )  # fmt: skip
        if stop_epoch is not None and stop_epoch < first_schedule and reason == "max_epochs":
            reason = self._anneal_stopped_run(module, state, source, config, generator, scaler)
        if validation is not None and not continuing and reason != "interrupted":
            reason = (
                self._anneal_from_best(module, state, source, validation, config, generator, scaler)
                or reason
            )
            if restarts and state.best_epoch > 0 and reason == "max_epochs":
                reason = self._restart(
                    module, state, source, validation, config, generator, scaler, n_epochs
                )
        if validation is not None and not continuing and state.best_epoch == 0:
            _start_at_pca_of_every_curve(module, curves, scaler, rng, device)
        elif self._tunes_encoder(module, curves, source, incremental, reason):
            steps_per_epoch = math.ceil(source.n_samples / config.batch_size)
            tune_encoder(
                module,
                source.X,
                functools.partial(refined_codes, n_steps=self.refine_steps),
                generator,
                n_steps=tuning_steps((state.epoch - first_epoch) * steps_per_epoch),
                batch_size=config.batch_size,
                learning_rate_init=self.learning_rate_init,
                kl_weight=self.kl_weight,
            )
            if validation is not None:  # the score of the model this fit returns
                state.best_validation = float(validation(module))
        _align_validation(state)
        self._set_fitted(module.cpu(), scaler, state, generator, validated=validation is not None)
        self._warn_outcome(reason, state, first_epoch, incremental)
        return self

    def _anneal_from_best(self, module, state, source, validation, config, generator, scaler):
        """Anneal the restored best weights of a cosine run if they come from an epoch
        whose learning rate was above :data:`_ANNEAL_ABOVE` of its peak, and keep the
        annealed weights only if they score better on the held-out curves.

        The anneal continues from the best weights with a cosine schedule of its own,
        from that epoch's rate down, over ``_ANNEAL_LENGTH`` times the best epoch's
        number of epochs (at least ``n_iter_no_change``), within what remains of
        ``max_iter``; it is scored and restored as the run was.
        """
        anneal = _anneal_schedule(config, state.best_epoch, state.epoch)
        if anneal is None:
            return
        reason = self._train_if_better(module, state, source, validation, anneal, generator, scaler)
        return reason if reason in ("interrupted", "diverged") else None

    def _anneal_stopped_run(self, module, state, source, config, generator, scaler) -> str:
        """Anneal the weights of a "cosine" run on every curve that stopped at the epoch
        the folds chose, as :meth:`_anneal_from_best` anneals restored weights, and keep
        them: the folds judged the schedule, and no curve is held out to judge the anneal.
        Returns "converged" (the folds' early stop), or why the anneal stopped short
        ("interrupted"; "diverged", with a warning: the weights trained before that epoch
        stand)."""
        anneal = _anneal_schedule(config, state.epoch, state.epoch)
        if anneal is None:
            return "converged"
        reason = self._train_on(
            module, state, source, None, anneal, generator, scaler,
            kept="the weights trained before that epoch",
        )  # fmt: skip
        return reason if reason in ("interrupted", "diverged") else "converged"

    def _restart(self, module, state, source, validation, config, generator, scaler, max_iter):
        """Spend the epochs of ``max_iter`` that the first schedule (``config``) left on
        one restart of the "cosine" schedule from the kept weights, at its peak rate,
        kept only if it beats the kept weights on the held-out curves by
        :func:`_beats_pca_start`'s test. Returns why the restart stopped."""
        length = max_iter - state.epoch
        restart = dataclasses.replace(
            config,
            max_epochs=length,
            min_epochs=state.epoch + math.ceil(_COSINE_STALL_START * length),
            schedule_start=state.epoch,
            beats_start=None,
        )
        return self._train_if_better(
            module, state, source, validation, restart, generator, scaler, beats=_beats_pca_start
        )

    def _train_if_better(
        self, module, state, source, validation, config, generator, scaler, *, beats=None
    ):
        """Train on from the kept weights for ``config.max_epochs``, and keep the run's
        best weights only if they score better on the held-out curves than the kept ones
        and, with ``beats``, if ``beats`` is True of their per-curve gains over the kept
        weights (scored at the codes ``transform`` gives). Returns why the run stopped
        ("interrupted" also when no epoch completed; "diverged", with a warning, when it
        diverged: the kept weights stand)."""
        kept = {k: v.clone() for k, v in module.state_dict().items()}
        kept_score, kept_epoch = state.best_validation, state.best_epoch
        reason = self._train_on(
            module, state, source, validation, config, generator, scaler,
            kept="the best weights trained before that run",
        )  # fmt: skip
        better = reason != "diverged" and state.best_validation > kept_score
        if better and beats is not None:
            trained = {k: v.clone() for k, v in module.state_dict().items()}
            scores = validation.per_curve(module)
            module.load_state_dict(kept)
            better = beats(scores - validation.per_curve(module))
            if better:
                module.load_state_dict(trained)
        if not better:
            module.load_state_dict(kept)
            state.best_validation, state.best_epoch = kept_score, kept_epoch
        return reason

    def _train_on(self, module, state, source, validation, config, generator, scaler, *, kept):
        """A run that trains on from weights the fit already holds, for
        ``config.max_epochs``: returns why it stopped, "interrupted" also when no epoch
        completed, and "diverged" when it diverged (the loop then leaves the weights of
        the epoch before), with a warning that names what the estimator keeps: ``kept``."""
        try:
            return self._train(
                module, state, source, validation, config, generator, config.max_epochs, scaler
            )
        except KeyboardInterrupt:
            return "interrupted"
        except _training.TrainingDiverged as exc:
            module.eval()
            warn_at_caller(f"{exc} The estimator keeps {kept}.", UserWarning)
            return "diverged"

    @staticmethod
    def _tunes_encoder(module, curves, source, incremental: bool, reason: str) -> bool:
        """Whether this fit ends by tuning the encoder on the training curves completed by
        the model (:func:`~skvae._torch.encoder_tuning.tune_encoder`): a mask-aware
        encoder trained on curves with missing points, held in memory, by a fit that
        ran to its end (not ``partial_fit``, not interrupted)."""
        return (
            not incremental
            and reason != "interrupted"
            and module.config["mask_aware"]
            and curves.has_missing
            and isinstance(source, _training.TensorBatches)
        )

    def _cross_validates(self, curves, hold_out) -> bool:
        """Whether this fresh fit cross-validates its choice between the trained networks
        and their PCA start (``early_stopping="auto"``, in memory, a small hold-out)."""
        return (
            self.early_stopping == "auto"
            and hold_out is not None
            and curves.n_held_out(hold_out) < _MIN_DECISION_CURVES
            and curves.n_samples >= _DECISION_FOLDS * _MIN_HELD_OUT
        )

    def _cross_validate_start(self, curves, scaler, module, rng, n_epochs: int):
        """Cross-validate the choice between the networks and their PCA start: train a
        copy of fresh ``module`` on each of :data:`_DECISION_FOLDS` folds of the curves
        with early stopping on the curves the fold holds out (each curve is held out
        once), and pool every curve's gain over the start in one rank test.

        The folds also choose where a run on every curve stops. Each held-out curve's
        gain of its fold's last epoch over the fold's kept weights is pooled over the
        folds and ranked by the same test: if the last epochs win it, the run trains to
        the schedule's end; otherwise it stops at the epoch whose held-out score, averaged
        over every curve (each held out once), is the highest. That average of three
        folds ranks the epochs more surely than one hold-out of fewer than
        ``_MIN_DECISION_CURVES`` curves, and the run then learns from every curve.

        Returns ``(won, (state, reason), stop_epoch)``: whether the networks won (the
        gains of every fold's best trained epoch, pooled, pass :func:`_beats_pca_start`),
        the first fold's history, set for a fit that returns PCA (best epoch 0, the
        start's score), and the epoch at which to stop (None: the schedule's end). A
        fold interrupted by the user raises KeyboardInterrupt: no fold's networks are a
        model to keep.
        """
        device = next(module.parameters()).device
        gains, histories, restore_gains, held_out = [], [], [], []

        def record(fold_gains: torch.Tensor) -> bool:
            gains.append(fold_gains)
            return True

        for source, validation in curves.folds(scaler, _DECISION_FOLDS, rng, device):
            fold_module = copy.deepcopy(module)
            fold_module.start_at_pca(source.batches(_training.NOISE_SLAB, torch.Generator()))
            config = self._training_config(
                source, curves, validation, incremental=False, max_epochs=n_epochs
            )
            config.beats_start = record
            state = _training.TrainingState()
            _align_validation(state, force=True)
            start_score = float(validation(fold_module))
            generator = torch.Generator().manual_seed(int(rng.randint(_SEED_MAX)))
            last = {}

            def keep_last(state, fold_module=fold_module, last=last):
                last.update({k: v.clone() for k, v in fold_module.state_dict().items()})

            reason = self._train(
                fold_module, state, source, validation, config, generator, n_epochs, scaler,
                after=keep_last,
            )  # fmt: skip
            if reason == "interrupted":
                raise KeyboardInterrupt
            kept_scores = validation.per_curve(fold_module)
            fold_module.load_state_dict(last)
            restore_gains.append(validation.per_curve(fold_module) - kept_scores)
            held_out.append(validation.n_rows)
            _align_validation(state)
            histories.append((state, reason, start_score))
        won = _beats_pca_start(torch.cat(gains))  # every fold's best trained epoch
        stop_epoch = None
        if not _beats_kept_epoch(torch.cat(restore_gains)):
            scores = [state.validation for state, _, _ in histories]
            stop_epoch = _best_pooled_epoch(scores, held_out)
        state, reason, start_score = histories[0]
        state.best_epoch, state.best_validation = 0, start_score
        return won, (state, reason), stop_epoch

    def _train(
        self, module, state, source, validation, config, generator, n_epochs, scaler, after=None
    ):
        """One training run (:func:`skvae._torch.loop.train`) with the progress report;
        returns why it stopped. ``after(state)``, if given, runs after each epoch, before
        the report. A diverged run raises the loop's TrainingDiverged (a ValueError for the
        caller of ``fit``), and a run interrupted before its first epoch raises
        KeyboardInterrupt: nothing fitted has changed."""
        first_epoch = state.epoch
        report, close = make_progress_callback(
            self.verbose, n_epochs, first_epoch, scaler.log_scale
        )
        callback = report
        if after is not None:

            def callback(state):
                after(state)
                if report is not None:
                    report(state)

        try:
            reason = _training.train(
                module, state, source, validation, config, generator, n_epochs, on_epoch=callback
            )
        finally:
            close()
        if reason == "interrupted" and state.epoch == first_epoch:
            raise KeyboardInterrupt  # no epoch completed: nothing to keep, self is unchanged
        return reason

    def _set_fitted(self, module, scaler, state, generator, *, validated: bool) -> None:
        """Assign every fitted attribute, in data units, from a finished training run."""
        offset = scaler.log_scale  # per-point log-likelihood shift to data units
        n_features = module.config["n_features"]
        self.module_ = module
        self.mean_ = scaler.mean
        self.scale_ = scaler.scale
        self._state = state
        self._generator_state = generator.get_state()
        self.n_iter_ = state.epoch
        self.loss_curve_ = [v + offset for v in state.loss]
        self.reconstruction_curve_ = [v + offset for v in state.reconstruction]
        self.kl_curve_ = [v * n_features for v in state.kl]
        scores = [v - offset for v in state.validation]
        self.validation_scores_ = scores or None
        if validated:  # the score of the restored weights (this fit's best)
            self.best_validation_score_ = state.best_validation - offset
        else:
            scores = [v for v in scores if not math.isnan(v)]
            self.best_validation_score_ = max(scores) if scores else None
        self.noise_ = float(torch.exp(module.log_sigma.detach())) * scaler.scale

    def _warn_outcome(self, reason: str, state, first_epoch: int, incremental: bool) -> None:
        """Warn of an interrupted fit, or of one that stopped at ``max_iter`` while its
        training loss was still improving. A run that ended its schedule short of
        ``max_iter`` and ended the fit there (the first schedule of a larger ``max_iter``,
        when PCA won it or the folds sent the networks to train on every curve) left
        epochs unused: no reason to ask for more."""
        if reason == "interrupted":
            warn_at_caller(
                f"Training interrupted by the user after {state.epoch - first_epoch} epochs; "
                "the estimator keeps the weights of the last completed epoch (the best "
                "validation weights when early_stopping=True).",
                UserWarning,
            )
            return
        if reason != "max_epochs" or incremental or state.epoch - first_epoch < self.max_iter:
            return
        window = max(2, math.ceil(self.max_iter / 20))  # the schedule's last 5 %
        if _training.still_improving(state.loss, window, self.tol):
            warn_at_caller(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached and the "
                f"loss was still improving by more than tol={self.tol:g} per epoch over the "
                f"last {window} epochs; consider increasing max_iter.",
                ConvergenceWarning,
            )

    # --------------------------------------------------------------- inference

    @property
    def encoder_(self) -> torch.nn.Module:
        return self.module_.encoder

    @property
    def decoder_(self) -> torch.nn.Module:
        return self.module_.decoder

    @property
    def scaler_(self) -> CurveScaler:
        """The fitted scaling between data units and the networks' model units."""
        return CurveScaler(self.mean_, self.scale_)

    @property
    def _n_features_out(self) -> int:  # AttributeError (so NotFittedError) until fitted
        return self.module_.config["latent_dims"]

    def latent_model(self) -> LatentModel:
        """The fitted networks on the estimator's device, with their units: the contract
        that matchers (:class:`~skvae.LatentMatcher`) use to search the latent space.

        Returns
        -------
        model : LatentModel
            Encoder, decoder, scaler, device, noise and the row-independent chunk size.

        Examples
        --------
        >>> from skvae import BetaCurveVAE, make_beta_curves
        >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
        >>> vae = BetaCurveVAE(max_iter=2, random_state=0).fit(X)
        >>> model = vae.latent_model()
        >>> model.latent_dims, model.n_features, model.device.type
        (2, 100, 'cpu')
        """
        check_is_fitted(self)
        return LatentModel.of(self.module_, self.scaler_, self._compute_device(), self.noise_)

    def transform(self, X):
        """Encode curves to latent codes.

        Each code is the encoder's posterior mean, refined by ``refine_steps``
        Gauss-Newton steps against the decoder on the curve's observed points (a step is
        kept only where the decoded curve fits them better). Curves with missing points
        (NaN) are encoded from their observed points. An encoder that is not gap-aware
        (see ``gap_aware``; models saved by skvae 0.1.0) does not read which points are
        missing: it reads them interpolated along the grid; the refinement then fits the
        observed points alone. The code of a curve with missing points is also screened
        against fixed quasi-random prior points, and refined from the best of them too
        where that fits its observed points better (see the user guide's "Refined
        codes"). :class:`LatentMatcher` searches the whole latent space with Nelder-Mead
        instead.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves; NaN marks a missing point.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dims)
            Each curve's latent code (deterministic, row-independent). For a dask array
            ``X``, a lazy dask array with ``X``'s row chunks, or with
            ``set_output(transform="pandas")`` a lazy dask DataFrame whose columns are
            :meth:`get_feature_names_out` (a pandas DataFrame, computed, where
            ``dask.dataframe`` cannot be imported).
        """
        check_is_fitted(self)
        if _dask.is_dask_array(X):
            return _dask.map_rows(
                self.transform, X, self._n_features_out, n_features=self.n_features_in_
            )
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
        )
        message = _non_finite_message("transform", self.scale_)
        model = self.latent_model()
        Z = model.encode(X, message, return_std=False)
        return model.refine(X, Z, self.refine_steps)

    def _decode(self, Z: np.ndarray, method: str) -> np.ndarray:
        """Decode validated latent codes to curves in data units (row-independent)."""
        message = _non_finite_message(method, self.scale_, "Z")
        return self.latent_model().decode(Z, non_finite_error=message)

    def inverse_transform(self, X):
        """Decode latent codes to curves in the original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dims)
            Latent codes.

        Returns
        -------
        X_curves : ndarray of shape (n_samples, n_features_in_)
            Decoded curves (the means of the likelihood).
        """
        check_is_fitted(self)
        if _dask.is_dask_array(X):
            n_out, n_in = self.n_features_in_, self._n_features_out
            return _dask.map_rows(self.inverse_transform, X, n_out, n_features=n_in)
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects latent codes "
                f"with {self._n_features_out} features (latent_dims)."
            )
        return self._decode(Z, "inverse_transform")

    def sample(self, n_samples=1, random_state=None):
        """Generate curves by decoding latent codes drawn from the prior N(0, I).

        Parameters
        ----------
        n_samples : int, default=1
            Number of curves to generate.
        random_state : int, RandomState instance or None, default=None
            Seed of the latent draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Generated curves (noise-free likelihood means).
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(random_state)
        return self._decode(rng.standard_normal((n_samples, self._n_features_out)), "sample")

    def score_samples(self, X):
        """Evidence lower bound (ELBO) of each curve, in the data's units.

        The expected log-likelihood under the posterior is computed with the 2·latent_dims
        unscented-transform points (exact for cubic integrands), so the result is
        deterministic and row-independent. It is the ELBO whatever ``kl_weight``: that
        parameter weights the KL term in training only, so scores of models fitted with
        different ``kl_weight`` compare (model selection may tune it). For a curve with
        missing points (NaN) it is the ELBO of its observed points: a density over fewer
        points, so compare curves with the same observed points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves; NaN marks a missing point.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Lower bound of each curve's log-density (higher is better).
        """
        check_is_fitted(self)
        if _dask.is_dask_array(X):
            return _dask.map_rows(self.score_samples, X, 0, n_features=self.n_features_in_)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
        )
        model = self.latent_model()
        neg = apply_in_chunks(
            lambda t: _training.negative_elbo(model.module, t),
            X,
            0,
            scaler=model.scaler,
            dtype=torch.float64,  # the networks run in float32, the likelihood in float64
            device=model.device,
            non_finite_error=_non_finite_message("score_samples", self.scale_),
        )
        n_observed = X.shape[1] - np.isnan(X).sum(axis=1)
        return -neg - model.scaler.log_likelihood_offset(n_observed)

    def score(self, X, y=None):
        """Mean ELBO of the curves in ``X`` (higher is better; usable by GridSearchCV).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Curves.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))


def _non_finite_message(method: str, scale: float, what: str = "X") -> str:
    """Message of the ValueError raised when finite inputs overflow the float32 networks."""
    degenerate = (
        "or the fitted weights are degenerate (a fit that was diverging: refit with a "
        "lower learning_rate_init)."
    )
    if what == "X":
        return (
            f"{method} produced non-finite values. Either X has values too large in "
            "magnitude for the fitted model, which computes in float32 on curves centred by "
            f"mean_ and divided by scale_={scale:g} (check that X is in the training "
            f"curves' units), {degenerate}"
        )
    return (
        f"{method} produced non-finite curves. Either the latent codes are too large in "
        f"magnitude for the float32 decoder (the prior's codes are of order 1), {degenerate}"
    )


# sklearn's set_output would compute a dask array into a pandas DataFrame: keep it lazy
BetaCurveVAE.transform = _dask.keep_dask_output_lazy(BetaCurveVAE.transform)


class _InMemoryCurves:
    """Training curves in memory (a validated float64 ndarray): their scaling, and their
    mini-batches and held-out rows as device tensors. :class:`skvae._dask.DaskCurves` is
    the out-of-core counterpart; the held-out curves are scored the same way by both."""

    def __init__(self, X: np.ndarray):
        self.X = X
        self.n_samples, self.n_features = X.shape

    def fit_scaler(self) -> CurveScaler:
        return CurveScaler.fit(self.X)

    @functools.cached_property
    def has_missing(self) -> bool:
        """Whether some curve has a missing point (NaN); one pass over ``X``, read by
        several steps of a fit."""
        return bool(np.isnan(self.X).any())

    def n_held_out(self, validation_fraction: float) -> int:
        """How many curves ``validation_fraction`` holds out (at least
        ``min(_MIN_HELD_OUT, n_samples // 4)``)."""
        n = self.n_samples
        n_val = max(int(round(validation_fraction * n)), min(_MIN_HELD_OUT, n // 4))
        if n_val < 1 or n_val >= n:
            raise ValueError(
                f"early_stopping needs at least one training and one validation curve; "
                f"validation_fraction={validation_fraction} of {n} curves "
                f"gives {n_val}. Provide more curves or set early_stopping=False."
            )
        return n_val

    def training_data(self, scaler: CurveScaler, validation_fraction, rng, device):
        """``(source, held_out)``: a random ``validation_fraction`` of the rows held out
        (None: none)."""
        if validation_fraction is None:
            return _training.TensorBatches(scaler.data_to_model_float32(self.X, device)), None
        n_val = self.n_held_out(validation_fraction)
        order = rng.permutation(self.n_samples)
        return self._split(scaler, order[n_val:], order[:n_val], device)

    def folds(self, scaler: CurveScaler, n_folds: int, rng, device):
        """``(source, held_out)`` of each of ``n_folds`` folds of a random partition of
        the rows: every row is held out by one fold."""
        parts = np.array_split(rng.permutation(self.n_samples), n_folds)
        for i, held_out in enumerate(parts):
            training = np.concatenate(parts[:i] + parts[i + 1 :])
            yield self._split(scaler, training, held_out, device)

    def _split(self, scaler: CurveScaler, training, held_out, device):
        source = _training.TensorBatches(scaler.data_to_model_float32(self.X[training], device))
        curves = scaler.data_to_model_float32(self.X[held_out], device)
        chunk_size = chunk_size_for(device)
        return source, _training.HeldOutCurves(lambda: curves.split(chunk_size), len(held_out))


def _anneal_schedule(config, epoch: int, end: int):
    """The schedule that anneals weights kept at ``epoch`` of the "cosine" run ``config``
    that ended at epoch ``end``: from that epoch's rate down to 0, over ``_ANNEAL_LENGTH``
    times ``epoch`` epochs (at least ``n_iter_no_change``) within the epochs ``config``
    has left. None where there is nothing to anneal: another schedule, the start (epoch
    0), a rate at most ``_ANNEAL_ABOVE`` of the peak, or no epoch left."""
    if config.schedule != "cosine" or epoch == 0:
        return None
    rate = _training.learning_rate(config, epoch - 1)
    n_epochs = min(
        max(config.n_iter_no_change, math.ceil(_ANNEAL_LENGTH * epoch)), config.max_epochs - end
    )
    if rate <= _ANNEAL_ABOVE * config.learning_rate_init or n_epochs <= 0:
        return None
    return dataclasses.replace(
        config,
        learning_rate_init=rate,
        max_epochs=n_epochs,
        min_epochs=end + n_epochs,
        schedule_start=end,
        beats_start=None,
    )


def _best_pooled_epoch(scores: list[list[float]], weights: list[int]) -> int:
    """The epoch (from 1) of the highest held-out score averaged over folds: ``scores``
    holds each fold's score per epoch, weighted by ``weights`` (its held-out curves),
    over the epochs that every fold ran. Non-finite averages never win."""
    n_epochs = min(len(fold) for fold in scores)
    pooled = np.average([fold[:n_epochs] for fold in scores], axis=0, weights=weights)
    pooled = np.where(np.isfinite(pooled), pooled, -np.inf)
    return int(np.argmax(pooled)) + 1


def _start_at_pca_of_every_curve(module, curves, scaler, rng, device) -> None:
    """Set ``module`` to its PCA start on every curve (the PCA start won the decision)."""
    every_curve, _ = curves.training_data(scaler, None, rng, device)
    module.start_at_pca(every_curve.batches(_training.NOISE_SLAB, torch.Generator()))


def _align_validation(state, force: bool = False) -> None:
    """Pad the validation scores with NaN for epochs trained without a hold-out, so that
    they stay aligned with the loss curve once any epoch was validated (or ``force``)."""
    if state.validation or force:
        state.validation.extend([math.nan] * (state.epoch - len(state.validation)))


def _both_floats(a, b) -> bool:
    return isinstance(a, float) and isinstance(b, float)
