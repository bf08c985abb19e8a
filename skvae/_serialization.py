"""Allow-listed (de)serialisation of skvae estimator trees for the skvae file format.

:class:`Writer` turns an estimator (its parameters and fitted attributes, networks,
optimizer and random states included) into JSON nodes, collecting arrays on the side;
:class:`Reader` rebuilds it from those nodes and arrays, creating only the classes of a
fixed allow-list and checking every name, dtype and shape it reads (see
:mod:`skvae._persistence` for the layout and the trust model).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from . import _training
from ._networks import ACTIVATIONS, VAEModule

#: The estimator classes a file may name (looked up on the ``skvae`` package).
ESTIMATOR_CLASSES = ("BetaCurveVAE", "LatentMatcher")
#: The tensor dtypes a file may hold.
_TORCH_DTYPES = {
    torch.float16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
}


def _estimator_class(name: str) -> type:
    import skvae

    cls = getattr(skvae, name, None) if name in ESTIMATOR_CLASSES else None
    if cls is None:
        raise ValueError(f"unknown estimator class {name!r}")
    return cls


def _check_attribute_name(cls: type, name: str) -> None:
    if not (isinstance(name, str) and name.isidentifier()) or name.startswith("__"):
        raise ValueError(f"invalid attribute name {name!r}")
    if hasattr(cls, name):  # would shadow a method, property or class attribute
        raise ValueError(f"attribute {name!r} would shadow {cls.__name__}.{name}")


class Writer:
    """Turns an object tree into JSON nodes, collecting arrays on the side."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.memo: dict[int, int] = {}  # id(object) -> node id, for shared objects
        self.keep_alive: list[Any] = []  # so that ids are not reused while writing

    def array(self, value: np.ndarray) -> str:
        key = f"arrays/{len(self.arrays)}.npy"
        self.arrays[key] = np.asarray(value)
        return key

    def shared(self, obj: Any) -> tuple[dict | None, int]:
        """``(reference node, _)`` if ``obj`` was written before, else ``(None, new id)``."""
        if id(obj) in self.memo:
            return {"type": "ref", "id": self.memo[id(obj)]}, -1
        self.memo[id(obj)] = len(self.memo)
        self.keep_alive.append(obj)
        return None, self.memo[id(obj)]

    def encode(self, value: Any, where: str, owner: Any = None) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if type(value) is int:
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"type": "float", "value": repr(value)}
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            return {
                "type": "numpy_scalar",
                "dtype": value.dtype.str,
                "value": self.encode(value.item(), where),
            }
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]", owner) for i, v in enumerate(value)]
        if type(value) is tuple:
            items = [self.encode(v, f"{where}[{i}]", owner) for i, v in enumerate(value)]
            return {"type": "tuple", "items": items}
        if type(value) in (dict, OrderedDict):
            if not all(type(k) in (str, int) for k in value):
                raise TypeError(f"{where}: only str and int dictionary keys can be saved")
            return {
                "type": "dict",
                "keys": list(value),
                "values": [self.encode(v, f"{where}[{k!r}]", owner) for k, v in value.items()],
            }
        if isinstance(value, np.ndarray):
            return self.ndarray(value, where)
        if isinstance(value, torch.Tensor):
            return self.tensor(value, where)
        if type(value) is np.random.RandomState:
            kind, keys, pos, has_gauss, cached = value.get_state(legacy=True)
            return {
                "type": "random_state",
                "keys": self.array(keys),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": self.encode(float(cached), where),
            }
        if type(value) is VAEModule:
            return self.module(value, where)
        if type(value) is _training.TrainingState:
            return self.training_state(value, where, owner)
        if isinstance(value, BaseEstimator):
            return self.estimator(value, where)
        raise TypeError(
            f"{where}: cannot save a value of type {type(value).__module__}."
            f"{type(value).__qualname__} in the skvae format; use pickle or joblib "
            "(for trusted files) instead."
        )

    def ndarray(self, value: np.ndarray, where: str) -> dict:
        if value.dtype.kind in "biufcU":
            return {"type": "ndarray", "array": self.array(value)}
        if value.dtype == object and value.ndim == 1 and all(type(v) is str for v in value):
            return {"type": "str_array", "items": list(value)}
        raise TypeError(f"{where}: cannot save an array of dtype {value.dtype}")

    def tensor(self, value: torch.Tensor, where: str) -> dict:
        value = value.detach().cpu()
        if value.dtype not in _TORCH_DTYPES:
            raise TypeError(f"{where}: cannot save a tensor of dtype {value.dtype}")
        return {
            "type": "tensor",
            "dtype": str(value.dtype).removeprefix("torch."),
            "array": self.array(value.numpy()),
        }

    def module(self, module: VAEModule, where: str) -> dict:
        ref, node_id = self.shared(module)
        if ref is not None:
            return ref
        linears = [m for m in module.encoder.body if isinstance(m, nn.Linear)]
        activation = next(
            name for name, cls in ACTIVATIONS.items() if type(module.encoder.body[1]) is cls
        )
        architecture = {
            "n_features": linears[0].in_features,
            "hidden": [layer.out_features for layer in linears],
            "latent_dims": module.encoder.mean.out_features,
            "activation": activation,
            "learned_noise": isinstance(module.log_sigma, nn.Parameter),
        }
        state = {k: self.tensor(v, f"{where}.{k}") for k, v in module.state_dict().items()}
        return {
            "type": "vae_module",
            "id": node_id,
            "architecture": architecture,
            "training": module.training,
            "state": state,
        }

    def training_state(self, state: _training.TrainingState, where: str, owner: Any) -> dict:
        optimizer = state.optimizer
        if type(optimizer) is not torch.optim.Adam:
            raise TypeError(f"{where}: only an Adam optimizer can be saved")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        module = next(
            (
                v
                for v in vars(owner).values()
                if type(v) is VAEModule
                and len(list(v.parameters())) == len(params)
                and all(a is b for a, b in zip(v.parameters(), params))
            ),
            None,
        )
        if module is None:
            raise TypeError(f"{where}: the optimizer's parameters belong to no saved network")
        fields = {
            f.name: self.encode(getattr(state, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(state)
            if f.name != "optimizer"
        }
        return {
            "type": "training_state",
            "module": self.module(module, f"{where}.module"),
            "optimizer": self.encode(optimizer.state_dict(), f"{where}.optimizer"),
            "fields": fields,
        }

    def estimator(self, estimator: BaseEstimator, where: str) -> dict:
        name = type(estimator).__name__
        if name not in ESTIMATOR_CLASSES or type(estimator) is not _estimator_class(name):
            raise TypeError(
                f"{where}: the skvae format stores {', '.join(ESTIMATOR_CLASSES)} only, "
                f"not {type(estimator).__module__}.{type(estimator).__qualname__}; use "
                "pickle or joblib (for trusted files) instead."
            )
        ref, node_id = self.shared(estimator)
        if ref is not None:
            return ref
        params = estimator.get_params(deep=False)
        return {
            "type": "estimator",
            "id": node_id,
            "class": name,
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
            "attributes": {
                k: self.encode(v, f"{where}.{k}", owner=estimator)
                for k, v in vars(estimator).items()
                if k not in params
            },
        }


class Reader:
    """Rebuilds objects from the JSON nodes written by :class:`Writer`."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.memo: dict[int, Any] = {}

    def define(self, node: dict, obj: Any) -> Any:
        node_id = node["id"]
        if not isinstance(node_id, int) or node_id in self.memo:
            raise ValueError(f"invalid object id {node_id!r}")
        self.memo[node_id] = obj
        return obj

    def array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise ValueError(f"missing array {key!r}")
        return self.arrays[key]

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            raise ValueError(f"unexpected JSON value {node!r}")
        kind = node["type"]
        if kind == "float":
            if node["value"] not in ("inf", "-inf", "nan"):
                raise ValueError(f"invalid float {node['value']!r}")
            return float(node["value"])
        if kind == "numpy_scalar":
            dtype = np.dtype(node["dtype"])
            if dtype.kind not in "biuf":
                raise ValueError(f"invalid scalar dtype {dtype}")
            return dtype.type(self.decode(node["value"]))
        if kind == "tuple":
            return tuple(self.decode(v) for v in node["items"])
        if kind == "dict":
            keys = node["keys"]
            if not all(type(k) in (str, int) for k in keys) or len(keys) != len(node["values"]):
                raise ValueError("invalid dictionary node")
            return {k: self.decode(v) for k, v in zip(keys, node["values"])}
        if kind == "ndarray":
            return self.array(node["array"])
        if kind == "str_array":
            items = node["items"]
            if not all(isinstance(v, str) for v in items):
                raise ValueError("invalid string array")
            return np.asarray(items, dtype=object)
        if kind == "tensor":
            return self.tensor(node)
        if kind == "random_state":
            random_state = np.random.RandomState()
            cached = self.decode(node["cached_gaussian"])
            random_state.set_state(
                ("MT19937", self.array(node["keys"]), node["pos"], node["has_gauss"], cached)
            )
            return random_state
        if kind == "ref":
            if node["id"] not in self.memo:
                raise ValueError(f"reference to an undefined object {node['id']!r}")
            return self.memo[node["id"]]
        if kind == "vae_module":
            return self.module(node)
        if kind == "training_state":
            return self.training_state(node)
        if kind == "estimator":
            return self.estimator(node)
        raise ValueError(f"unknown node type {kind!r}")

    def tensor(self, node: dict) -> torch.Tensor:
        dtype = getattr(torch, node["dtype"], None)
        if dtype not in _TORCH_DTYPES:
            raise ValueError(f"invalid tensor dtype {node['dtype']!r}")
        tensor = torch.from_numpy(self.array(node["array"]))
        if tensor.dtype != dtype:
            raise ValueError(f"tensor of dtype {tensor.dtype}, expected {dtype}")
        return tensor

    def module(self, node: dict) -> VAEModule:
        if node["type"] == "ref":
            module = self.decode(node)
            if type(module) is not VAEModule:
                raise ValueError("a network reference names another object")
            return module
        arch = node["architecture"]
        sizes = [arch["n_features"], *arch["hidden"], arch["latent_dims"]]
        if not all(type(s) is int and s >= 1 for s in sizes) or len(sizes) < 3:
            raise ValueError(f"invalid network architecture {arch!r}")
        if arch["activation"] not in ACTIVATIONS or type(arch["learned_noise"]) is not bool:
            raise ValueError(f"invalid network architecture {arch!r}")
        state = {k: self.tensor(v) for k, v in node["state"].items()}

        def build() -> VAEModule:
            noise = None if arch["learned_noise"] else 1.0
            return VAEModule(
                arch["n_features"], arch["hidden"], arch["latent_dims"], arch["activation"], noise
            )

        with torch.device("meta"):  # check the shapes before allocating anything
            expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
        if expected != {k: tuple(v.shape) for k, v in state.items()}:
            raise ValueError("the network's weights do not match its architecture")
        module = build()
        module.load_state_dict(state)
        module.train(bool(node["training"]))
        return self.define(node, module)

    def training_state(self, node: dict) -> _training.TrainingState:
        module = self.module(node["module"])
        optimizer = _training.make_optimizer(module, 1e-3)
        optimizer.load_state_dict(self.decode(node["optimizer"]))
        names = {f.name for f in dataclasses.fields(_training.TrainingState)} - {"optimizer"}
        fields = node["fields"]
        if set(fields) != names:
            raise ValueError("invalid training state")
        return _training.TrainingState(
            optimizer=optimizer, **{k: self.decode(v) for k, v in fields.items()}
        )

    def estimator(self, node: dict) -> BaseEstimator:
        cls = _estimator_class(node["class"])
        params = {k: self.decode(v) for k, v in node["params"].items()}
        estimator = cls(**params)
        self.define(node, estimator)
        for name, value in node["attributes"].items():
            _check_attribute_name(cls, name)
            setattr(estimator, name, self.decode(value))
        return estimator
