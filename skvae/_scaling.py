"""One home for the data's units: centring per grid point and one global scale.

The networks see curves in *model units* ``(X - mean) / scale``; users see *data units*.
A Gaussian log-density per point changes by ``-log(scale)`` between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: Relative size below which the spread of the data counts as rounding of a constant.
_CONSTANT_RTOL = 64 * np.finfo(np.float64).eps
#: Rows scaled at a time by :meth:`CurveScaler.data_to_model_float32`.
_SCALE_ROWS = 8192


@dataclass(frozen=True, eq=False)
class CurveScaler:
    """Per-point centring and one global scale, shared by every grid point.

    One scale for all points (the root mean of the per-point variances) keeps the
    Gaussian likelihood's shared noise isotropic in the data's own units, so the training
    loss is the squared error users measure.

    Parameters
    ----------
    mean : ndarray of shape (n_features,)
        Per-point mean of the training curves.
    scale : float
        Global scale (positive, finite, normal float64).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 2.0], [2.0, 6.0]])
    >>> scaler = CurveScaler.fit(X)
    >>> scaler.mean, round(scaler.scale, 6)
    (array([1., 4.]), 1.581139)
    >>> np.allclose(scaler.model_to_data(scaler.data_to_model(X)), X)
    True
    """

    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, X: np.ndarray) -> CurveScaler:
        """Scaler of the curves ``X`` (rows are curves).

        The statistics are those of the observed values: NaN marks a missing point.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training curves, finite or NaN.

        Returns
        -------
        scaler : CurveScaler

        Raises
        ------
        ValueError
            If a grid point has no observed value.
        """
        missing = np.isnan(X)
        if not missing.any():
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported later
                mean = X.mean(axis=0)
                centred = X - mean
                peak = float(np.max(np.abs(centred))) if X.size else 0.0
                variance = np.mean(np.var(centred / peak, axis=0)) if peak > 0 else 0.0
            return cls.from_moments(mean, float(variance), peak)
        check_observed_points(len(X) - missing.sum(axis=0))
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.nanmean(X, axis=0)
            centred = X - mean
            peak = float(np.nanmax(np.abs(centred)))
            variance = np.mean(np.nanvar(centred / peak, axis=0)) if peak > 0 else 0.0
        return cls.from_moments(mean, float(variance), peak)

    @classmethod
    def from_moments(cls, mean: np.ndarray, variance: float, peak: float) -> CurveScaler:
        """Scaler from the per-point ``mean``, the mean per-point variance of the curves
        divided by ``peak`` (their largest absolute deviation from ``mean``), and ``peak``.

        Dividing by ``peak`` first keeps squares from overflowing. Data whose spread is
        rounding of a constant (relative to the mean's size) fall back to the largest
        absolute mean, so that the networks' small errors stay small relative to the data;
        a zero or non-finite level falls back to 1. The scale is never subnormal.

        Parameters
        ----------
        mean : ndarray of shape (n_features,)
        variance : float
            Mean over points of the variance of ``(X - mean) / peak``.
        peak : float
            Largest absolute value of ``X - mean``.

        Returns
        -------
        scaler : CurveScaler
        """
        mean = np.asarray(mean, dtype=np.float64)
        level = float(np.max(np.abs(mean))) if mean.size else 0.0
        scale = math.sqrt(variance) * peak if peak > 0 and math.isfinite(peak) else 0.0
        if not math.isfinite(level):
            level = 0.0
        if not scale > _CONSTANT_RTOL * level or not math.isfinite(scale):
            scale = level  # constant curves (up to rounding)
        if not scale >= np.finfo(np.float64).tiny or not math.isfinite(scale):
            scale = 1.0
        return cls(mean, float(scale))

    @property
    def log_scale(self) -> float:
        """``log(scale)``."""
        return math.log(self.scale)

    def data_to_model(self, X: np.ndarray) -> np.ndarray:
        """Curves in model units, ``(X - mean) / scale``, as a float64 ndarray (NaN stays NaN)."""
        with np.errstate(over="ignore", invalid="ignore"):  # callers report overflow
            return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def data_to_model_on_device(self, X: torch.Tensor) -> torch.Tensor:
        """Curves ``X`` (a tensor on any device) in model units, computed where ``X`` is,
        in float64: the same arithmetic as :meth:`data_to_model`, so bit-identical to it."""
        mean = torch.as_tensor(self.mean, device=X.device)
        return (X.to(torch.float64) - mean) / self.scale

    def data_to_model_float32(
        self, X: np.ndarray, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Training curves ``X`` (an ndarray) in model units as a float32 tensor on ``device``.

        Scaled in slices of rows, so float64 temporaries stay small beside the result.

        Missing points (NaN) stay NaN.

        Raises
        ------
        ValueError
            If the scaled curves overflow float32.
        """
        scaled = np.empty(np.shape(X), dtype=np.float32)
        with np.errstate(over="ignore"):  # float32 overflow is reported below
            for start in range(0, len(scaled), _SCALE_ROWS):
                rows = slice(start, start + _SCALE_ROWS)
                scaled[rows] = self.data_to_model(X[rows])
        if np.isinf(scaled).any():
            raise ValueError(
                "X has values too large in magnitude to train on: centred and divided by "
                f"their scale ({self.scale:g}) they overflow float32. Rescale X "
                "(for example divide it by its largest absolute value) before fitting."
            )
        return torch.from_numpy(scaled).to(device)

    def model_to_data(self, X_model: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """Curves in data units, ``X_model * scale + mean``, as a float64 ndarray.

        ``copy=False`` converts a float64 ``X_model`` in place and returns it.
        """
        out = np.array(X_model, dtype=np.float64) if copy else np.asarray(X_model, np.float64)
        out *= self.scale
        out += self.mean
        return out

    # the names that skvae/_chunks.py and skvae/_matching/objective.py call
    to_model = data_to_model
    to_model_on_device = data_to_model_on_device

    def log_likelihood_offset(self, n_features: int | np.ndarray) -> float | np.ndarray:
        """What to subtract from a model-unit log-density of ``n_features`` points (a
        number, or one per curve) to get the data-unit one: ``n_features * log(scale)``."""
        return n_features * self.log_scale


def check_observed_points(counts: np.ndarray) -> None:
    """Raise a ValueError naming the grid points with no observed value (``counts``:
    observed values per grid point)."""
    empty = np.flatnonzero(np.asarray(counts) == 0)
    if empty.size:
        shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
        raise ValueError(
            f"X has no observed value (only NaN) at {empty.size} grid point(s), columns "
            f"[{shown}]: the curves' mean there is undefined. Drop those columns or provide "
            "curves observed there."
        )
