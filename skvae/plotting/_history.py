"""TrainingHistoryDisplay: the ELBO's two terms per epoch."""

from __future__ import annotations

import math

import numpy as np

from ._base import _as_1d_axes, _figure_of, _plain_log_ticks, _underlying_vae

__all__ = ["TrainingHistoryDisplay"]

#: log sqrt(2 pi e): a Gaussian N(mu, s^2) has a per-point negative log-likelihood (entropy)
#: of log(s) + this constant when its residuals have variance s^2.
_HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)


def equivalent_noise(nll):
    """Turn a per-point Gaussian negative log-likelihood into a noise level.

    ``exp(nll - log sqrt(2 pi e))`` is the standard deviation ``s`` of the Gaussian whose
    expected negative log-likelihood per point, on residuals of variance ``s**2``, is
    ``nll``. It is positive, so it can be drawn on a log scale even when the likelihood
    term is negative (which happens with a learned noise once the fit is good), and it
    is in the data's units. For a Gaussian likelihood with noise ``sigma`` and residual
    mean square ``mse``, ``nll = mse / (2 sigma**2) + log(sigma) + log sqrt(2 pi)``,
    which is smallest, equal to ``log sqrt(2 pi e mse)``, at ``sigma**2 = mse``: the
    equivalent noise is therefore never below the root-mean-square reconstruction error,
    and equals it when the noise matches the residuals (as a learned noise does).
    """
    return np.exp(np.asarray(nll, dtype=np.float64) - _HALF_LOG_2PI_E)


def _as_history(values, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence (one value per epoch).")
    return values


class TrainingHistoryDisplay:
    """Training history of a VAE: the reconstruction term and the KL term per epoch.

    The loss a :class:`~skvae.BetaCurveVAE` minimises is the negative ELBO, the sum of a
    reconstruction term (the Gaussian negative log-likelihood of the curves given their
    sampled codes) and the KL divergence between the posterior and the prior. This display
    draws each term in its own panel, on a logarithmic y axis, and adds a third panel with
    the training loss and the validation loss when the estimator was fitted with
    ``early_stopping=True``.

    A learned observation noise makes the likelihood term negative as soon as the curves
    are reconstructed more precisely than one unit, so it cannot be drawn on a log scale
    as it is. By default (``units="noise"``) every likelihood quantity is shown as its
    *equivalent noise level* ``exp(nll - log sqrt(2 pi e))``: the standard deviation of
    the Gaussian with the same log-likelihood per point, in the data's units. It is a
    monotone transform of the loss (so a falling curve is a falling loss), it is never
    below the root-mean-square reconstruction error, and it equals that error when the
    noise is learned. ``units="nll"`` draws the raw per-point values on a symmetric log
    axis instead. The KL term is always positive and is drawn as it is: the estimator's
    ``kl_curve_`` is the KL divergence per curve, in nats, while ``reconstruction_curve_``
    and ``loss_curve_`` are per curve and grid point.

    Use :meth:`from_estimator` to build the display from a fitted estimator; all
    parameters are stored as attributes.

    Parameters
    ----------
    reconstruction : array-like of shape (n_epochs,)
        Reconstruction term per epoch: negative log-likelihood per curve and grid point,
        in nats (``reconstruction_curve_``).
    kl : array-like of shape (n_epochs,)
        KL divergence per curve per epoch, in nats (``kl_curve_``, which the estimator
        records per curve, as drawn here; the reconstruction and loss histories are per
        curve and grid point).
    loss : array-like of shape (n_epochs,), default=None
        Training loss (negative ELBO per curve and grid point) per epoch. Drawn with the
        validation loss only.
    validation : array-like of shape (n_epochs,), default=None
        Validation score per curve and grid point per epoch (``validation_scores_``: the
        held-out reconstruction log-likelihood, higher is better). Drawn as a loss (its
        negative) next to ``loss``.
    estimator_name : str, default=None
        Name shown in the figure title.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The drawn lines, under the keys ``"reconstruction"``, ``"kl"`` and, with a
        validation history, ``"loss"`` and ``"validation"``.
    axes_ : ndarray of matplotlib Axes
        The 2 panels (reconstruction, KL), or 3 with a validation history.
    figure_ : matplotlib Figure
        Figure containing the panels.

    See Also
    --------
    LatentSpaceDisplay : Distribution of the latent codes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import BetaCurveVAE, make_beta_curves
    >>> from skvae.plotting import TrainingHistoryDisplay
    >>> X, _ = make_beta_curves(n_samples=200, random_state=0)
    >>> vae = BetaCurveVAE(max_iter=5, early_stopping=True, random_state=0).fit(X)
    >>> display = TrainingHistoryDisplay.from_estimator(vae)  # with the held-out scores
    >>> sorted(display.lines_)
    ['kl', 'loss', 'reconstruction', 'validation']
    >>> len(display.lines_["kl"].get_xdata())
    5
    """

    def __init__(self, *, reconstruction, kl, loss=None, validation=None, estimator_name=None):
        self.reconstruction = reconstruction
        self.kl = kl
        self.loss = loss
        self.validation = validation
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, units="noise", line_kwargs=None):
        """Draw the history.

        Parameters
        ----------
        ax : array-like of matplotlib Axes, matplotlib Figure or None, default=None
            Two Axes (reconstruction, KL), or three when ``validation`` is set (the last
            one for training vs validation loss). A Figure or SubFigure gets the panels
            made in it; None creates a new figure.
        units : {"noise", "nll"}, default="noise"
            How likelihood quantities are shown: as their equivalent noise level on a log
            axis (see the class description), or as raw per-point negative
            log-likelihoods on a symmetric log axis. ``"noise"`` shows the latter when an
            equivalent noise level would overflow float64 (above about 700 nats per point,
            as with a fixed ``noise`` far below the reconstruction error).
        line_kwargs : dict, default=None
            Keyword arguments passed to every ``Axes.plot`` call.

        Returns
        -------
        display : TrainingHistoryDisplay
            The display, with ``lines_``, ``axes_`` and ``figure_`` set.
        """
        if units not in ("noise", "nll"):
            raise ValueError(f'units must be "noise" or "nll", got {units!r}.')
        reconstruction = _as_history(self.reconstruction, "reconstruction")
        kl = _as_history(self.kl, "kl")
        loss = _as_history(self.loss, "loss")
        validation = _as_history(self.validation, "validation")
        lengths = {len(v) for v in (reconstruction, kl, loss, validation) if v is not None}
        if len(lengths) != 1:
            raise ValueError(
                "reconstruction, kl, loss and validation must have one value per epoch each "
                f"(same length), got lengths {sorted(lengths)}."
            )
        with np.errstate(over="ignore"):
            overflows = any(
                np.isposinf(equivalent_noise(v)).any()
                for v in (reconstruction, loss, None if validation is None else -validation)
                if v is not None
            )
        if units == "noise" and overflows:
            units = "nll"
        with_validation = validation is not None
        n_panels = 3 if with_validation else 2
        axes, created = _as_1d_axes(
            ax, n_panels, "TrainingHistoryDisplay", figsize=(min(4.2 * n_panels, 9.6), 3.4)
        )
        epochs = np.arange(1, len(kl) + 1)
        kwargs = {"marker": "o" if len(epochs) == 1 else None, **(line_kwargs or {})}

        def likelihood(values):
            return equivalent_noise(values) if units == "noise" else values

        def set_likelihood_scale(axis):
            if units == "noise":
                axis.set_yscale("log")
                _plain_log_ticks(axis)
            else:
                axis.set_yscale("symlog", linthresh=1.0)

        lines = {}
        ax_rec, ax_kl = axes[0], axes[1]
        (lines["reconstruction"],) = ax_rec.plot(
            epochs, likelihood(reconstruction), label="reconstruction (train)", **kwargs
        )
        set_likelihood_scale(ax_rec)
        ax_rec.set_title("Reconstruction term (train)")
        ax_rec.set_ylabel(
            "equivalent noise level" if units == "noise" else "negative log-likelihood / point"
        )
        (lines["kl"],) = ax_kl.plot(epochs, kl, color="tab:orange", label="KL (train)", **kwargs)
        ax_kl.set_yscale("log")
        _plain_log_ticks(ax_kl)
        ax_kl.set_title("KL term (train)")
        ax_kl.set_ylabel("KL divergence / curve (nats)")
        if with_validation:
            ax_val = axes[2]
            if loss is not None:
                (lines["loss"],) = ax_val.plot(
                    epochs, likelihood(loss), color="tab:green", label="train", **kwargs
                )
            (lines["validation"],) = ax_val.plot(
                epochs, likelihood(-validation), color="tab:red", label="validation", **kwargs
            )
            set_likelihood_scale(ax_val)
            ax_val.set_title("Negative ELBO")
            ax_val.set_ylabel(
                "equivalent noise level" if units == "noise" else "negative ELBO / point"
            )
            ax_val.legend()
        for axis in axes:
            axis.set_xlabel("epoch")
            axis.grid(True, which="major", alpha=0.3)
        figure = _figure_of(axes)
        if created:
            if self.estimator_name:
                figure.suptitle(f"Training history of {self.estimator_name}")
            figure.tight_layout()
        self.lines_ = lines
        self.axes_ = axes
        self.figure_ = figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, units="noise", line_kwargs=None):
        """Plot the training history of a fitted estimator.

        Parameters
        ----------
        estimator : BetaCurveVAE or LatentMatcher
            A fitted :class:`~skvae.BetaCurveVAE`, or a fitted meta-estimator holding one
            in ``estimator_`` (such as :class:`~skvae.LatentMatcher`).
        ax : array-like of matplotlib Axes, matplotlib Figure or None, default=None
            See :meth:`plot`.
        units : {"noise", "nll"}, default="noise"
            See :meth:`plot`.
        line_kwargs : dict, default=None
            See :meth:`plot`.

        Returns
        -------
        display : TrainingHistoryDisplay
            The display, drawn.
        """
        vae = _underlying_vae(estimator)
        missing = [
            name for name in ("reconstruction_curve_", "kl_curve_") if not hasattr(vae, name)
        ]
        if missing:
            raise TypeError(
                f"{type(vae).__name__} has no training history ({', '.join(missing)}); "
                "expected a fitted BetaCurveVAE."
            )
        validation = getattr(vae, "validation_scores_", None)
        if validation is not None and len(validation) == 0:
            validation = None
        display = cls(
            reconstruction=vae.reconstruction_curve_,
            kl=vae.kl_curve_,  # per curve, in nats: drawn as it is
            loss=getattr(vae, "loss_curve_", None) if validation is not None else None,
            validation=validation,
            estimator_name=type(vae).__name__,
        )
        return display.plot(ax=ax, units=units, line_kwargs=line_kwargs)
