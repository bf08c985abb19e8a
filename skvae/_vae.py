"""BetaCurveVAE: the scikit-learn estimator wrapping the torch VAE."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions

from ._networks import ACTIVATIONS
from ._utils import unchanged_on_failure
from ._vae_fitting import CurveVAEFittingMixin
from ._vae_inference import CurveVAEInferenceMixin

__all__ = ["BetaCurveVAE"]


class BetaCurveVAE(
    ClassNamePrefixFeaturesOutMixin,
    CurveVAEInferenceMixin,
    CurveVAEFittingMixin,
    BaseEstimator,
):
    """Variational autoencoder for families of curves sampled on a common grid.

    Each row of ``X`` is one curve (a function sampled at ``n_features`` points). An MLP
    encoder maps a curve to a diagonal Gaussian posterior over ``latent_dims`` latent
    variables; an MLP decoder maps a latent code back to a curve, the mean of a Gaussian
    likelihood. Training maximises the evidence lower bound (ELBO) with the
    reparametrisation trick, the closed-form Gaussian KL divergence and Adam.

    Features are centred per grid point and divided by one global scale (the root mean
    per-point variance) inside the estimator, so the Gaussian likelihood's shared noise is
    isotropic in the data's own units and the training loss is the L2 error users measure.

    Parameters
    ----------
    latent_dims : int, default=2
        Dimension of the latent space.
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Widths of the encoder's hidden layers; the decoder mirrors them.
    activation : {"silu", "tanh", "relu", "gelu", "elu", "softplus"}, default="silu"
        Hidden-layer activation. The original blog post used ``"tanh"`` with three layers of 32.
    max_iter : int, default=280
        Maximum number of epochs (passes over the training data).
    batch_size : int, default=512
        Mini-batch size (clipped to the number of training curves).
    learning_rate_init : float, default=4e-3
        Initial learning rate of Adam.
    learning_rate : {"cosine", "exponential", "constant"}, default="cosine"
        Learning-rate schedule over epochs: cosine annealing over ``max_iter`` epochs down
        to 1% of the initial rate, exponential decay by ``decay_rate`` per epoch, or constant.
        Each step's gradient norm is also clipped at twice its running average, which keeps
        rare outlier batches from throwing training back.
    decay_rate : float, default=0.98
        Per-epoch factor of the ``"exponential"`` schedule.
    tol : float, default=2e-2
        Minimum improvement of the loss per point per epoch, in nats (or of the
        validation score when ``early_stopping``), that counts as progress. With the
        profiled noise the loss is ``½ log MSE`` per point, so the default means the
        mean squared error shrinking by about 4 % per epoch.
    n_iter_no_change : int, default=50
        Training stops after this many epochs without progress of at least ``tol``.
        ``ConvergenceWarning`` is raised only when training stops at ``max_iter`` while
        the best loss (validation score with ``early_stopping``) of the last
        ``max(2, ceil(max_iter / 20))`` epochs (the schedule's last 5 %) still beats the
        best before them by more than ``tol`` per epoch on average: a fit whose loss has
        flattened as its schedule ran out does not warn.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the curves, track the validation ELBO, stop when
        it no longer improves and restore the best weights.
    validation_fraction : float, default=0.1
        Fraction of the training curves held out when ``early_stopping``.
    noise : {"profiled", "learned"} or float, default="profiled"
        Standard deviation of the Gaussian observation noise, in the data's units.
        ``"profiled"``: during training each curve's noise is set to its maximum-likelihood
        value (its RMS reconstruction error; the "optimal σ" of Rybkin et al. 2021, per
        curve), so the loss is ``½ log MSE`` per curve plus the KL: the step size follows
        the shrinking error (no loss spikes) and every curve's relative error counts.
        ``noise_`` is then the RMS training error of the last epoch, one shared σ, so
        :meth:`score_samples` is an ELBO. ``"learned"``: one shared σ trained by gradient
        descent with the rest. A float: a fixed σ (the blog post's η).
    residual : bool, default=True
        Hidden-to-hidden layers of equal width are residual blocks ``h + act(W h + b)``
        (better conditioned, same cost per epoch as a plain MLP).
    kl_weight : float, default=1.0
        Weight of the KL term in the loss (1 is the ELBO; other values give a β-VAE).
    warm_start : bool, default=False
        When fitting again, continue from the current weights and optimizer state instead
        of starting anew. The schedule continues too: epochs are counted over all fits
        (``n_iter_``), so with ``"cosine"`` the epochs after the first ``max_iter`` run at
        the final 1% rate (fine-tuning), as do ``partial_fit`` calls past ``max_iter``.
    verbose : int, default=0
        0: silent; 1: a progress bar (tqdm when installed, otherwise a few lines);
        2: one line per epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the reparametrisation noise and the
        validation split, through a local ``torch.Generator``. Pass an int for
        reproducible fits.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where to fit *and* compute: ``transform``, ``inverse_transform``,
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
        Training loss (negative ELBO per curve and grid point, data units) per epoch.
    reconstruction_curve_ : list of float
        The reconstruction part of the loss per epoch (per curve and grid point).
    kl_curve_ : list of float
        Mean KL divergence per curve (in nats, not per grid point) per epoch.
    scaler_ : CurveScaler
        ``mean_`` and ``scale_`` as one object (model units to data units and back).
    validation_scores_ : list of float or None
        Validation ELBO per curve and grid point per epoch when ``early_stopping``.
    best_validation_score_ : float or None
        Best of ``validation_scores_``.
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
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions({"cosine", "exponential", "constant"})],
        "decay_rate": [Interval(Real, 0, 1, closed="right")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "noise": [StrOptions({"profiled", "learned"}), Interval(Real, 0, None, closed="neither")],
        "residual": ["boolean"],
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
    }

    def __init__(
        self,
        latent_dims=2,
        *,
        hidden_layer_sizes=(128, 128),
        activation="silu",
        max_iter=280,
        batch_size=512,
        learning_rate_init=4e-3,
        learning_rate="cosine",
        decay_rate=0.98,
        tol=2e-2,
        n_iter_no_change=50,
        early_stopping=False,
        validation_fraction=0.1,
        noise="profiled",
        residual=True,
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
        self.kl_weight = kl_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE to curves ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training curves, one per row, all sampled on the same grid.
        y : None
            Ignored.

        Returns
        -------
        self : BetaCurveVAE
            The fitted estimator.
        """
        continuing = self.warm_start and hasattr(self, "module_")
        with unchanged_on_failure(self):
            X = self._validate_training_data(X, reset=not continuing)
            return self._fit(X, self.max_iter, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, continuing from the current state if fitted.

        The first call sets the scaling from its ``X``; later calls must have the same
        number of features. Early stopping does not apply.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training curves.
        y : None
            Ignored.

        Returns
        -------
        self : BetaCurveVAE
            The updated estimator.
        """
        first = not hasattr(self, "module_")
        if not first:  # _fit_context skips this once fitted; an epoch costs far more
            self._validate_params()
        with unchanged_on_failure(self):
            X = self._validate_training_data(X, reset=first)
            return self._fit(X, 1, incremental=True)
