"""The writer of skvae estimator trees: an estimator to JSON nodes and arrays.

:class:`Writer` turns an estimator (its parameters and the state that
``estimator.__getstate__()`` returns: networks, training state, random states) into JSON
nodes, collecting arrays on the side; it stores only the classes and dtypes of
:mod:`skvae._persistence.allowlist` (see :mod:`skvae._persistence.archive` for the layout and
the trust model). :class:`~skvae._persistence.reader.Reader` rebuilds the estimator.

Networks are saved as their constructor configuration (``VAEModule.config``) and weights.
The training state is saved field by field (``dataclasses.fields``), the optimizer as its
``state_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .._torch.loop import TrainingState
from .._torch.networks import VAEModule
from .allowlist import (
    REGISTRY,
    TORCH_DTYPES,
    npy_dtype_allowed,
    plain_config_value,
)

#: Lists at least this long of only floats (or only ints) are stored as arrays.
_LIST_AS_ARRAY = 8


class Writer:
    """Turns an object tree into JSON nodes, collecting arrays on the side."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.memo: dict[int, int] = {}  # id(object) -> node id, for shared objects
        self.keep_alive: list[Any] = []  # so that ids are not reused while writing

    def array(self, value: np.ndarray, where: str) -> str:
        value = np.asarray(value)
        if not npy_dtype_allowed(value.dtype):
            raise TypeError(f"{where}: cannot save an array of dtype {value.dtype}")
        key = f"arrays/{len(self.arrays)}.npy"
        self.arrays[key] = value
        return key

    def shared(self, obj: Any) -> tuple[dict | None, int]:
        """``(reference node, _)`` if ``obj`` was written before, else ``(None, new id)``."""
        if id(obj) in self.memo:
            return {"type": "ref", "id": self.memo[id(obj)]}, -1
        self.memo[id(obj)] = len(self.memo)
        self.keep_alive.append(obj)
        return None, self.memo[id(obj)]

    def write_node(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)) or type(value) is int:
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"type": "float", "value": repr(value)}
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            return {
                "type": "numpy_scalar",
                "dtype": value.dtype.str,
                "value": self.write_node(value.item(), where),
            }
        if type(value) is list:
            return self.list(value, where)
        if type(value) is tuple:
            return {"type": "tuple", "items": self.list(list(value), where)}
        if type(value) in (dict, OrderedDict):
            if not all(type(k) in (str, int) for k in value):
                raise TypeError(f"{where}: only str and int dictionary keys can be saved")
            return {
                "type": "dict",
                "keys": list(value),
                "values": [self.write_node(v, f"{where}[{k!r}]") for k, v in value.items()],
            }
        if isinstance(value, np.ndarray):
            return self.ndarray(value, where)
        if isinstance(value, torch.Tensor):
            return self.tensor(value, where)
        if type(value) is np.random.RandomState:
            kind, keys, pos, has_gauss, cached = value.get_state(legacy=True)
            return {
                "type": "random_state",
                "keys": self.array(keys, where),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": self.write_node(float(cached), where),
            }
        if type(value) is VAEModule:
            return self.module(value, where)
        if type(value) is TrainingState:
            fields = dataclasses.fields(value)
            return {
                "type": "training_state",
                "fields": {f.name: self.write_node(getattr(value, f.name), where) for f in fields},
            }
        if isinstance(value, BaseEstimator):
            return self.estimator(value, where)
        raise TypeError(
            f"{where}: cannot save a value of type {type(value).__module__}."
            f"{type(value).__qualname__} in the skvae format; use pickle or joblib "
            "(for trusted files) instead."
        )

    def list(self, value: list, where: str) -> list | dict:
        if len(value) >= _LIST_AS_ARRAY:
            if all(type(v) is float for v in value):
                return {"type": "list", "array": self.array(np.array(value), where)}
            if all(type(v) is int for v in value) and -(2**63) <= min(value) <= max(value) < 2**63:
                return {"type": "list", "array": self.array(np.array(value, np.int64), where)}
        return [self.write_node(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def ndarray(self, value: np.ndarray, where: str) -> dict:
        if value.dtype == object and value.ndim == 1 and all(type(v) is str for v in value):
            return {"type": "str_array", "array": self.array(value.astype(str), where)}
        return {"type": "ndarray", "array": self.array(value, where)}

    def tensor(self, value: torch.Tensor, where: str) -> dict:
        name = str(value.dtype).removeprefix("torch.")
        if TORCH_DTYPES.get(name) is not value.dtype:
            raise TypeError(f"{where}: cannot save a tensor of dtype {value.dtype}")
        return {"type": "tensor", "dtype": name, "array": self.array(value.detach().cpu(), where)}

    def module(self, module: VAEModule, where: str) -> dict:
        ref, node_id = self.shared(module)
        if ref is not None:
            return ref
        config = module.config
        if not all(plain_config_value(v) for v in config.values()):
            raise TypeError(f"{where}: the network's config {config!r} is not plain JSON")
        state = {k: self.tensor(v, f"{where}.{k}") for k, v in module.state_dict().items()}
        return {
            "type": "vae_module",
            "id": node_id,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
            "training": module.training,
            "state": state,
        }

    def estimator(self, estimator: BaseEstimator, where: str) -> dict:
        name = type(estimator).__name__
        if name not in REGISTRY or type(estimator) is not REGISTRY[name].cls:
            raise TypeError(
                f"{where}: the skvae format stores {', '.join(REGISTRY)} only, not "
                f"{type(estimator).__module__}.{type(estimator).__qualname__}; use "
                "pickle or joblib (for trusted files) instead."
            )
        ref, node_id = self.shared(estimator)
        if ref is not None:
            return ref
        params = estimator.get_params(deep=False)
        state = estimator.__getstate__()
        return {
            "type": "estimator",
            "id": node_id,
            "class": name,
            "params": {k: self.write_node(v, f"{where}.{k}") for k, v in params.items()},
            "attributes": {
                k: self.write_node(v, f"{where}.{k}") for k, v in state.items() if k not in params
            },
        }
