"""The allow-list of the skvae file format: what a file may hold.

The estimator classes a file may name (:data:`REGISTRY`, each with how to check its
networks and to upgrade a state written by skvae 0.1.0, format version 1), the tensor and
array dtypes it may hold, and the plain values of a network's configuration. The tree
writer and reader (:mod:`skvae._persistence.writer`, :mod:`skvae._persistence.reader`)
store and create nothing else (see :mod:`skvae._persistence.archive` for the layout and the trust
model).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._imputer import CurveImputer
from .._matching.matcher import LatentMatcher
from .._torch.networks import VAEModule
from .._vae import BetaCurveVAE


@dataclasses.dataclass(frozen=True)
class Registered:
    """An estimator class the format stores, and how to check and upgrade its state.

    Attributes
    ----------
    cls : type
        The class (instances of subclasses are refused).
    trained : tuple of (str, str)
        Pairs ``(training state attribute, network attribute)``: the optimizer state and
        saved weights in the first belong to the network in the second, and are checked
        against it when loading.
    new_params_v1 : dict
        Parameters that skvae 0.1.0 (format version 1) did not have, with the values that
        reproduce its behaviour (rather than the current defaults).
    upgrade_v1 : callable or None
        ``upgrade_v1(attributes) -> attributes``: turns the fitted state of a file written
        by skvae 0.1.0 into the current one.
    renamed_params : dict
        Parameters stored under an earlier name, ``{earlier name: current name}``: files
        of any format version that hold the earlier name load with the current one.
    """

    cls: type
    trained: tuple[tuple[str, str], ...] = ()
    new_params_v1: dict = dataclasses.field(default_factory=dict)
    upgrade_v1: Callable[[dict], dict] | None = None
    renamed_params: dict = dataclasses.field(default_factory=dict)


def _upgrade_vae_v1(attributes: dict) -> dict:
    """Format 1 records ``kl_curve_`` per grid point, the current estimator per curve."""
    module, kl = attributes.get("module_"), attributes.get("kl_curve_")
    if type(module) is VAEModule and isinstance(kl, list):
        attributes["kl_curve_"] = [v * module.config["n_features"] for v in kl]
    return attributes


def _upgrade_matcher_v1(attributes: dict) -> dict:
    """Format 1 holds an ``n_iter_`` (the VAE's epochs) that the matcher does not have,
    and no ``reference_codes_``: such a matcher screens the prior points only."""
    attributes.pop("n_iter_", None)
    estimator = attributes.get("estimator_")
    if type(estimator) is BetaCurveVAE and "reference_codes_" not in attributes:
        attributes["reference_codes_"] = np.empty((0, estimator.latent_dims))
    return attributes


#: The estimator classes a file may name, by the name it uses.
REGISTRY = {
    "BetaCurveVAE": Registered(
        BetaCurveVAE,
        trained=(("_state", "module_"),),
        new_params_v1={"residual": False, "refine_steps": 0},
        upgrade_v1=_upgrade_vae_v1,
    ),
    "LatentMatcher": Registered(
        LatentMatcher,
        new_params_v1={"n_candidates": 0},
        upgrade_v1=_upgrade_matcher_v1,
        renamed_params={"max_iter": "maxiter"},
    ),
    "CurveImputer": Registered(CurveImputer),
}
#: The tensor dtypes a file may hold, by the name it uses.
TORCH_DTYPES = {
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
#: The array dtypes a file may hold, by their ``dtype.str`` (native byte order).
NUMERIC_DTYPES = {
    np.dtype(name).str: np.dtype(name)
    for name in ("f2", "f4", "f8", "c8", "c16", "?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8")
}


def npy_dtype_allowed(dtype: np.dtype) -> bool:
    """Whether the format stores arrays of ``dtype``: native-order numbers and strings."""
    return dtype.str in NUMERIC_DTYPES or (
        dtype.kind == "U" and dtype.byteorder in "=<|" and dtype.str[0] in "<|"
    )


def plain_config_value(value: Any) -> bool:
    """Whether a network configuration value is plain JSON: a scalar or a list of them."""
    scalar = (type(None), bool, int, float, str)
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, scalar) for v in value)
    return isinstance(value, scalar) and not (isinstance(value, float) and not math.isfinite(value))
