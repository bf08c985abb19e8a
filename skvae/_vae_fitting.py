"""Fitting a BetaCurveVAE: scaling, fresh or continued state, and a transactional run.

:func:`fit_epochs` trains on copies (a fresh state, or a deep copy of the fitted one when
warm starting or continuing with ``partial_fit``) and assigns the result to the estimator
only once training succeeded, so that a failed fit changes nothing.
"""

from __future__ import annotations

import copy
import math
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _training
from ._networks import VAEModule
from ._progress import make_progress_callback

#: The attributes that a training run starts from and updates (copied when continuing).
FITTED_STATE = ("module_", "mean_", "scale_", "_state")


def resolve_device(device: str) -> torch.device:
    """The torch device of the ``device`` parameter (``"auto"``: CUDA when available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch reports no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    return torch.device(device)


def global_scale(X: np.ndarray, mean: np.ndarray) -> float:
    """Root mean of the per-feature variances, computed without overflow.

    Constant data fall back to their largest absolute mean (so that the networks' small
    errors stay small relative to the data), or to 1.0 when that is zero or not finite.
    """
    peak = float(np.max(np.abs(X - mean))) if X.size else 0.0
    if not peak > 0 or not math.isfinite(peak):
        level = float(np.max(np.abs(mean))) if mean.size else 0.0
        return level if level > 0 and math.isfinite(level) else 1.0
    return float(np.sqrt(np.mean(np.var(X / peak, axis=0)))) * peak or 1.0


def hidden_sizes(vae) -> list[int]:
    """The validated ``hidden_layer_sizes`` of ``vae`` as a list of ints."""
    sizes = vae.hidden_layer_sizes
    sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes):
        raise ValueError(
            "hidden_layer_sizes must be a non-empty sequence of positive integers, "
            f"got {vae.hidden_layer_sizes!r}."
        )
    return [int(s) for s in sizes]


def training_config(vae, n_epochs_reference: int) -> _training.TrainingConfig:
    """The training loop's settings from the hyper-parameters of ``vae``."""
    return _training.TrainingConfig(
        max_epochs=n_epochs_reference,
        batch_size=vae.batch_size,
        learning_rate_init=vae.learning_rate_init,
        schedule=vae.learning_rate,
        decay_rate=vae.decay_rate,
        tol=vae.tol,
        n_iter_no_change=vae.n_iter_no_change,
        kl_weight=vae.kl_weight,
    )


def initial_fitted_state(vae, X: np.ndarray, seed: int) -> dict:
    """Fresh scaling, networks and optimizer for data ``X`` (nothing assigned to ``vae``)."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported later
        mean = X.mean(axis=0)
        scale = global_scale(X, mean)
    noise = None if vae.noise == "learned" else float(vae.noise) / scale
    if noise is not None and not (math.isfinite(noise) and noise > 0):
        raise ValueError(
            f"noise={vae.noise!r} is not representable relative to the data's scale "
            f"({scale:g}); choose a noise of a comparable magnitude."
        )
    module = VAEModule(X.shape[1], hidden_sizes(vae), vae.latent_dims, vae.activation, noise)
    module.reset_parameters(torch.Generator().manual_seed(seed))
    state = _training.TrainingState(
        optimizer=_training.make_optimizer(module, vae.learning_rate_init)
    )
    return {"module_": module, "mean_": mean, "scale_": scale, "_state": state}


def _starting_point(vae, X, rng, incremental: bool) -> tuple[dict, torch.Generator]:
    """A copy of the state to train (fresh or continued) and the training generator."""
    # drawn even when continuing, so that a warm-started fit with an int random_state
    # holds out the same validation curves as the first fit
    init_seed = int(rng.randint(np.iinfo(np.int32).max))
    continuing = hasattr(vae, "module_") and (incremental or vae.warm_start)
    if continuing:
        fitted = copy.deepcopy({name: getattr(vae, name) for name in FITTED_STATE})
        generator_state = vae._generator_state if incremental else None
    else:
        fitted = initial_fitted_state(vae, X, init_seed)
        generator_state = None
    generator = torch.Generator()
    if generator_state is not None:
        generator.set_state(generator_state)
    else:
        generator.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
    return fitted, generator


def _validation_split(vae, X, rng, incremental: bool):
    """``(X_train, X_val)``: the early-stopping hold-out, ``X_val`` None without one."""
    if not vae.early_stopping or incremental:
        return X, None
    n_val = int(round(vae.validation_fraction * len(X)))
    if n_val < 1 or n_val >= len(X):
        raise ValueError(
            f"early_stopping needs at least one training and one validation curve; "
            f"validation_fraction={vae.validation_fraction} of {len(X)} curves "
            f"gives {n_val}. Provide more curves or set early_stopping=False."
        )
    order = rng.permutation(len(X))
    return X[order[n_val:]], X[order[:n_val]]


def _scaled_tensor(A: np.ndarray, fitted: dict, device: torch.device) -> torch.Tensor:
    """Curves centred and scaled to the networks' units, as a float32 tensor on ``device``."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (A - fitted["mean_"]) / fitted["scale_"]
    tensor = torch.as_tensor(scaled, dtype=torch.float32, device=device)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(
            "X has values too large in magnitude to train on: centred and divided by "
            f"their scale ({fitted['scale_']:g}) they overflow float32. Rescale X "
            "(for example divide it by its largest absolute value) before fitting."
        )
    return tensor


def _prepare_state(module: VAEModule, state: _training.TrainingState, device) -> None:
    """Move the networks and optimizer moments to ``device`` and reset run bookkeeping."""
    module.to(device)
    state.optimizer.load_state_dict(state.optimizer.state_dict())  # move moments
    state.best_weights = None
    state.best_validation, state.best_loss, state.no_improvement = -math.inf, math.inf, 0


def _record_history(vae, state: _training.TrainingState, validated: bool) -> None:
    """Set the fitted history attributes, in data units, from the training state."""
    vae.n_iter_ = state.epoch
    offset = math.log(vae.scale_)  # per-point log-likelihood shift to data units
    vae.loss_curve_ = [v + offset for v in state.loss]
    vae.reconstruction_curve_ = [v + offset for v in state.reconstruction]
    vae.kl_curve_ = list(state.kl)
    vae.validation_scores_ = [v - offset for v in state.validation] if vae.early_stopping else None
    if validated:  # the score of the restored weights (this fit's best)
        vae.best_validation_score_ = state.best_validation - offset
    else:
        vae.best_validation_score_ = max(vae.validation_scores_) if vae.validation_scores_ else None
    vae.noise_ = float(torch.exp(vae.module_.log_sigma.detach())) * vae.scale_


def _warn_outcome(vae, reason: str, n_epochs: int, incremental: bool) -> None:
    """Warn of an interrupted fit, or of a fit that ran out of epochs."""
    # stacklevel: this function, fit_epochs, the estimator's method, its caller
    if reason == "interrupted":
        warnings.warn(
            f"Training interrupted by the user after {n_epochs} epochs; the "
            "estimator keeps the weights of the last completed epoch (the best "
            "validation weights when early_stopping=True).",
            UserWarning,
            stacklevel=4,
        )
    elif reason == "max_epochs" and not incremental:
        warnings.warn(
            f"BetaCurveVAE: maximum iterations ({vae.max_iter}) reached and the "
            "optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )


def fit_epochs(vae, X: np.ndarray, n_epochs: int, *, incremental: bool):
    """Train ``vae`` for up to ``n_epochs`` on validated ``X``; assign only on success.

    Parameters
    ----------
    vae : BetaCurveVAE
        The estimator, with validated parameters and ``n_features_in_`` already set.
    X : ndarray of shape (n_samples, n_features)
        Training curves (float64).
    n_epochs : int
        Maximum number of epochs of this call.
    incremental : bool
        True for ``partial_fit``: continue the fitted state and its generator, without
        early stopping or a convergence warning.

    Returns
    -------
    vae : BetaCurveVAE
        The estimator, updated.
    """
    rng = check_random_state(vae.random_state)
    fitted, generator = _starting_point(vae, X, rng, incremental)
    X_train, X_val = _validation_split(vae, X, rng, incremental)
    device = resolve_device(vae.device)
    module, state = fitted["module_"], fitted["_state"]
    _prepare_state(module, state, device)

    config = training_config(vae, vae.max_iter)
    config.batch_size = min(vae.batch_size, len(X_train))
    first_epoch = state.epoch
    callback, close = make_progress_callback(
        vae.verbose, n_epochs, first_epoch, math.log(fitted["scale_"])
    )
    try:
        reason = _training.train(
            module,
            state,
            _scaled_tensor(X_train, fitted, device),
            None if X_val is None else _scaled_tensor(X_val, fitted, device),
            config,
            generator,
            n_epochs,
            on_epoch=callback,
        )
    except _training.TrainingDiverged as exc:
        raise ValueError(str(exc)) from None
    finally:
        close()
    if reason == "interrupted" and state.epoch == first_epoch:
        raise KeyboardInterrupt  # no epoch completed: nothing to keep, vae is unchanged
    module.cpu()
    state.optimizer.load_state_dict(state.optimizer.state_dict())
    state.best_weights = None

    vae.__dict__.update(fitted)
    vae._generator_state = generator.get_state()
    _record_history(vae, state, validated=X_val is not None)
    _warn_outcome(vae, reason, state.epoch, incremental)
    return vae
