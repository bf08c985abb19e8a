"""The fitting methods of :class:`~skvae.BetaCurveVAE` (a mixin, as scikit-learn's
``BaseMultilayerPerceptron`` keeps ``_fit``, ``_initialize`` and ``_fit_stochastic``).

A fit trains copies (a fresh state, or a deep copy of the fitted one when warm starting
or continuing with ``partial_fit``) and :meth:`_set_fitted` assigns every fitted
attribute in one place, only once training succeeded, so that a failed fit changes
nothing.
"""

from __future__ import annotations

import copy
import functools
import math
from numbers import Integral

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from . import _dask, _training
from ._networks import PROFILED, VAEModule
from ._progress import make_progress_callback
from ._scaling import CurveScaler
from ._utils import warn_at_caller

_SEED_MAX = np.iinfo(np.int32).max


def resolve_device(device: str) -> torch.device:
    """The torch device of the ``device`` parameter (``"auto"``: CUDA when available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch reports no CUDA device; "
            "use device='cpu' or device='auto' (a fitted model: set_params(device='cpu'))."
        )
    return torch.device(device)


class CurveVAEFittingMixin:
    """Fitting machinery of the curve VAE estimator (private methods only)."""

    def _validate_training_data(self, X, *, reset: bool):
        """Validated training curves: a float64 ndarray, or a dask array (rows in
        blocks, columns in one block) that is never materialised."""
        if not _dask.is_dask_array(X):
            return validate_data(self, X, reset=reset, dtype=np.float64, order="C")
        X = _dask.check_dask_curves(X, None if reset else self.n_features_in_)
        if reset:
            self.n_features_in_ = int(X.shape[1])
            self.__dict__.pop("feature_names_in_", None)
        return X

    def _training_data(self, X, scaler, rng, device, incremental: bool):
        """``(source, validation)`` of the training loop: mini-batches of the training
        curves, and the held-out ELBO (None without early stopping)."""
        hold_out = self.early_stopping and not incremental
        if _dask.is_dask_array(X):
            return _dask.dask_training_data(
                X,
                scaler,
                validation_fraction=self.validation_fraction if hold_out else None,
                rng=rng,
                device=device,
                kl_weight=self.kl_weight,
            )
        X_train, X_val = self._validation_split(X, rng, incremental)
        source = _training.TensorBatches(scaler.to_model_tensor(X_train, device))
        if X_val is None:
            return source, None
        val = scaler.to_model_tensor(X_val, device)
        return source, functools.partial(_training.validation_elbo, X=val, kl_weight=self.kl_weight)

    # ------------------------------------------------------------ hyper-parameters

    def _check_integer_params(self) -> None:
        """Reject booleans where integers are expected (``Interval(Integral)`` admits them)."""
        for name in ("latent_dims", "max_iter", "batch_size", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_):
                raise ValueError(f"{name} must be an integer, got the boolean {value!r}.")

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

    def _training_config(self, batch_size: int) -> _training.TrainingConfig:
        """The training loop's settings from the hyper-parameters."""
        return _training.TrainingConfig(
            max_epochs=self.max_iter,
            batch_size=batch_size,
            learning_rate_init=self.learning_rate_init,
            schedule=self.learning_rate,
            decay_rate=self.decay_rate,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            kl_weight=self.kl_weight,
        )

    # ------------------------------------------------------------------- state

    def _initialize(self, n_features: int, scaler: CurveScaler, seed: int) -> VAEModule:
        """Fresh networks for curves of ``n_features`` points (nothing assigned)."""
        if isinstance(self.noise, str):
            noise = {"learned": None, "profiled": PROFILED}[self.noise]
        else:
            noise = float(self.noise) / scaler.scale
        if isinstance(noise, float) and not (math.isfinite(noise) and noise > 0):
            raise ValueError(
                f"noise={self.noise!r} is not representable relative to the data's scale "
                f"({scaler.scale:g}); choose a noise of a comparable magnitude."
            )
        module = VAEModule(
            n_features=n_features,
            hidden=self._hidden_sizes(),
            latent_dims=self.latent_dims,
            activation=self.activation,
            noise=noise,
            residual=self.residual,
        )
        module.reset_parameters(torch.Generator().manual_seed(seed))
        return module

    def _starting_point(self, X, rng, incremental: bool):
        """``(module, state, scaler, generator)`` to train: copies of the fitted ones
        when continuing, fresh ones otherwise."""
        # drawn even when continuing, so that a warm-started fit with an int random_state
        # holds out the same validation curves as the first fit
        init_seed = int(rng.randint(_SEED_MAX))
        generator = torch.Generator()
        if hasattr(self, "module_") and (incremental or self.warm_start):
            module = copy.deepcopy(self.module_)
            state = copy.deepcopy(self._state)
            scaler = self.scaler_
            if incremental:
                generator.set_state(self._generator_state)
                return module, state, scaler, generator
        else:
            scaler = _dask.dask_scaler(X) if _dask.is_dask_array(X) else CurveScaler.fit(X)
            module = self._initialize(X.shape[1], scaler, init_seed)
            state = _training.TrainingState()
        generator.manual_seed(int(rng.randint(_SEED_MAX)))
        return module, state, scaler, generator

    def _validation_split(self, X, rng, incremental: bool):
        """``(X_train, X_val)``: the early-stopping hold-out, ``X_val`` None without one."""
        if not self.early_stopping or incremental:
            return X, None
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val < 1 or n_val >= len(X):
            raise ValueError(
                f"early_stopping needs at least one training and one validation curve; "
                f"validation_fraction={self.validation_fraction} of {len(X)} curves "
                f"gives {n_val}. Provide more curves or set early_stopping=False."
            )
        order = rng.permutation(len(X))
        return X[order[n_val:]], X[order[:n_val]]

    # ---------------------------------------------------------------- training

    def _fit(self, X: np.ndarray, n_epochs: int, *, incremental: bool):
        """Train for up to ``n_epochs`` on validated ``X``; assign only on success.

        ``incremental`` (``partial_fit``): continue the fitted state and its generator,
        without early stopping or a convergence warning.
        """
        self._check_integer_params()
        rng = check_random_state(self.random_state)
        module, state, scaler, generator = self._starting_point(X, rng, incremental)
        device = resolve_device(self.device)
        module.to(device)
        source, validation = self._training_data(X, scaler, rng, device, incremental)
        config = self._training_config(min(self.batch_size, source.n_samples))
        first_epoch = state.epoch
        callback, close = make_progress_callback(
            self.verbose, n_epochs, first_epoch, scaler.log_scale
        )
        try:
            reason = _training.train(
                module, state, source, validation, config, generator, n_epochs, on_epoch=callback
            )
        except _training.TrainingDiverged as exc:
            raise ValueError(str(exc)) from None
        finally:
            close()
        if reason == "interrupted" and state.epoch == first_epoch:
            raise KeyboardInterrupt  # no epoch completed: nothing to keep, self is unchanged
        self._set_fitted(module.cpu(), scaler, state, generator, validated=validation is not None)
        self._warn_outcome(reason, state, first_epoch, incremental)
        return self

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
        self.validation_scores_ = (
            [v - offset for v in state.validation] if self.early_stopping else None
        )
        if validated:  # the score of the restored weights (this fit's best)
            self.best_validation_score_ = state.best_validation - offset
        else:
            scores = self.validation_scores_
            self.best_validation_score_ = max(scores) if scores else None
        self.noise_ = float(torch.exp(module.log_sigma.detach())) * scaler.scale

    def _warn_outcome(self, reason: str, state, first_epoch: int, incremental: bool) -> None:
        """Warn of an interrupted fit, or of one that stopped at ``max_iter`` while its
        loss (validation score with ``early_stopping``) was still improving."""
        if reason == "interrupted":
            warn_at_caller(
                f"Training interrupted by the user after {state.epoch - first_epoch} epochs; "
                "the estimator keeps the weights of the last completed epoch (the best "
                "validation weights when early_stopping=True).",
                UserWarning,
            )
            return
        if reason != "max_epochs" or incremental:
            return
        window = max(2, math.ceil(self.max_iter / 20))  # the schedule's last 5 %
        if self.early_stopping:
            improving = _training.still_improving(
                state.validation, window, self.tol, higher_is_better=True
            )
        else:
            improving = _training.still_improving(state.loss, window, self.tol)
        if improving:
            warn_at_caller(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached and the "
                f"loss was still improving by more than tol={self.tol:g} per epoch over the "
                f"last {window} epochs; consider increasing max_iter.",
                ConvergenceWarning,
            )
