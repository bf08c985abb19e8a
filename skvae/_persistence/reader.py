"""The reader of skvae estimator trees: JSON nodes and arrays back to an estimator.

:class:`Reader` rebuilds an estimator from the nodes and arrays that
:class:`~skvae._persistence.writer.Writer` wrote, creating only the classes of
:data:`~skvae._persistence.allowlist.REGISTRY` and checking every name, dtype and shape
it reads (see :mod:`skvae._persistence.archive` for the layout and the trust model).

Networks are rebuilt with ``VAEModule(**config)`` once ``VAEModule.parameter_shapes(config)``
has been checked against the stored weights; a training state's optimizer state and saved
weights are checked against its network.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .._torch.loop import TrainingState
from .._torch.networks import VAEModule
from .allowlist import (
    NUMERIC_DTYPES,
    REGISTRY,
    TORCH_DTYPES,
    plain_config_value,
)


def _check_attribute_name(cls: type, name: str, params: dict) -> None:
    if not (isinstance(name, str) and name.isidentifier()) or name.startswith("__"):
        raise ValueError(f"invalid attribute name {name!r}")
    if hasattr(cls, name) or name in params:  # would shadow a method, property or parameter
        raise ValueError(f"attribute {name!r} would shadow {cls.__name__}.{name}")


def _dict(node: Any, what: str) -> dict:
    if not isinstance(node, dict):
        raise ValueError(f"invalid {what}: expected a JSON object")
    return node


class Reader:
    """Rebuilds objects from the JSON nodes written by :class:`~skvae._persistence.writer.Writer`.

    Each array is used once at most, so a file cannot make several objects from one
    stored array (memory amplification).
    """

    def __init__(self, arrays: dict[str, np.ndarray], format_version: int) -> None:
        self.arrays = arrays
        self.version = format_version
        self.used: set[str] = set()
        self.memo: dict[int, Any] = {}

    def define(self, node: dict, obj: Any) -> Any:
        node_id = node["id"]
        if type(node_id) is not int or node_id in self.memo:
            raise ValueError(f"invalid object id {node_id!r}")
        self.memo[node_id] = obj
        return obj

    def array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise ValueError(f"missing array {key!r}")
        if key in self.used:
            raise ValueError(f"array {key!r} is used twice")
        self.used.add(key)
        return self.arrays[key]

    def read_node(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.read_node(v) for v in node]
        kind = _dict(node, "value")["type"]
        method = self.NODES.get(kind) if isinstance(kind, str) else None
        if method is None:
            raise ValueError(f"unknown node type {kind!r}")
        return method(self, node)

    def float_(self, node: dict) -> float:
        if node["value"] not in ("inf", "-inf", "nan"):
            raise ValueError(f"invalid float {node['value']!r}")
        return float(node["value"])

    def numpy_scalar(self, node: dict) -> Any:
        dtype = NUMERIC_DTYPES.get(node["dtype"]) if isinstance(node["dtype"], str) else None
        value = self.read_node(node["value"])
        if dtype is None or type(value) not in (bool, int, float):
            raise ValueError(f"invalid numpy scalar of dtype {node['dtype']!r}")
        return dtype.type(value)

    def tuple_(self, node: dict) -> tuple:
        items = self.read_node(node["items"])
        if not isinstance(items, list):
            raise ValueError("invalid tuple")
        return tuple(items)

    def list_(self, node: dict) -> list:
        array = self.array(node["array"])
        if array.ndim != 1 or array.dtype.str not in ("<f8", "<i8"):
            raise ValueError("invalid list of numbers")
        return array.tolist()

    def dict_(self, node: dict) -> dict:
        keys, values = node["keys"], node["values"]
        if not (isinstance(keys, list) and isinstance(values, list) and len(keys) == len(values)):
            raise ValueError("invalid dictionary node")
        if not all(type(k) in (str, int) for k in keys) or len(set(keys)) != len(keys):
            raise ValueError("invalid dictionary keys")
        return {k: self.read_node(v) for k, v in zip(keys, values)}

    def ndarray(self, node: dict) -> np.ndarray:
        return self.array(node["array"])

    def str_array(self, node: dict) -> np.ndarray:
        if self.version == 1:
            items = node["items"]
            if not (isinstance(items, list) and all(isinstance(v, str) for v in items)):
                raise ValueError("invalid string array")
            return np.asarray(items, dtype=object)
        array = self.array(node["array"])
        if array.dtype.kind != "U" or array.ndim != 1:
            raise ValueError("invalid string array")
        return array.astype(object)

    def tensor(self, node: dict) -> torch.Tensor:
        if _dict(node, "tensor").get("type") != "tensor":
            raise ValueError("expected a tensor")
        name = node["dtype"]
        dtype = TORCH_DTYPES.get(name) if isinstance(name, str) else None
        if dtype is None:
            raise ValueError(f"invalid tensor dtype {name!r}")
        tensor = torch.from_numpy(self.array(node["array"]))
        if tensor.dtype != dtype:
            raise ValueError(f"tensor of dtype {tensor.dtype}, expected {dtype}")
        return tensor

    def random_state(self, node: dict) -> np.random.RandomState:
        random_state = np.random.RandomState()
        cached = self.read_node(node["cached_gaussian"])
        state = ("MT19937", self.array(node["keys"]), node["pos"], node["has_gauss"], cached)
        random_state.set_state(state)
        return random_state

    def ref(self, node: dict) -> Any:
        if type(node["id"]) is not int or node["id"] not in self.memo:
            raise ValueError(f"reference to an undefined object {node['id']!r}")
        return self.memo[node["id"]]

    def module(self, node: dict) -> VAEModule:
        state = {k: self.tensor(v) for k, v in _dict(node["state"], "network state").items()}
        config = self.v1_config(node, state) if self.version == 1 else node["config"]
        _check_config(_dict(config, "network configuration"), len(state))
        try:
            expected = VAEModule.parameter_shapes(config)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"invalid network configuration {config!r:.200}: {exc!r}") from None
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        if {k: tuple(v) for k, v in expected.items()} != shapes:
            raise ValueError("the network's weights do not match its configuration")
        try:  # the shapes are those of the stored weights: this allocates no more than them
            module = VAEModule(**config)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"invalid network configuration {config!r:.200}: {exc!r}") from None
        module.load_state_dict(state)
        module.train(node["training"] is True)
        return self.define(node, module)

    @staticmethod
    def v1_config(node: dict, state: dict) -> dict:
        """A version-1 network's ``architecture`` as a ``VAEModule`` configuration."""
        arch = _dict(node["architecture"], "network architecture")
        learned = arch["learned_noise"]
        if type(learned) is not bool or (not learned and state.get("log_sigma") is None):
            raise ValueError(f"invalid network architecture {arch!r}")
        noise = None if learned else math.exp(float(state["log_sigma"].reshape(-1)[0]))
        names = ("n_features", "hidden", "latent_dims", "activation")
        return {**{name: arch[name] for name in names}, "noise": noise, "residual": False}

    def training_state(self, node: dict) -> TrainingState:
        fields = dict(_dict(node["fields"], "training state"))
        if self.version == 1:  # format 1 holds the best weights of the fit, not kept now
            fields.pop("best_weights", None)
        known = {f.name for f in dataclasses.fields(TrainingState)}
        if set(fields) - known:
            raise ValueError(f"unknown training state fields {sorted(set(fields) - known)}")
        values = {k: self.read_node(v) for k, v in fields.items()}
        if self.version == 1:  # format 1 holds the optimizer next to a copy of its network
            if type(self.read_node(node["module"])) is not VAEModule:
                raise ValueError("a training state names no network")
            values["optimizer_state"] = self.read_node(node["optimizer"])
        _check_optimizer_state(values.get("optimizer_state"))
        try:
            return TrainingState(**values)
        except TypeError as exc:
            raise ValueError(f"invalid training state: {exc}") from None

    def estimator(self, node: dict) -> BaseEstimator:
        name = node["class"]
        registered = REGISTRY.get(name) if isinstance(name, str) else None
        if registered is None:
            raise ValueError(f"unknown estimator class {name!r}")
        cls = registered.cls
        params = {k: self.read_node(v) for k, v in _dict(node["params"], "parameters").items()}
        if self.version == 1:
            params = {**registered.new_params_v1, **params}
        for earlier, current in registered.renamed_params.items():
            if earlier in params and current not in params:
                params[current] = params.pop(earlier)
        unknown = set(params) - set(cls().get_params(deep=False))
        if unknown:
            raise ValueError(f"unknown {name} parameters {sorted(unknown)}")
        estimator = self.define(node, cls(**params))
        attributes = {
            k: self.read_node(v) for k, v in _dict(node["attributes"], "attributes").items()
        }
        if self.version == 1 and registered.upgrade_v1 is not None:
            attributes = registered.upgrade_v1(attributes)
        for key in attributes:
            _check_attribute_name(cls, key, params)
        for state_name, module_name in registered.trained:
            if state_name in attributes or module_name in attributes:
                _check_trained(attributes.get(state_name), attributes.get(module_name))
        estimator.__setstate__(attributes)
        return estimator

    NODES = {
        "float": float_,
        "numpy_scalar": numpy_scalar,
        "tuple": tuple_,
        "list": list_,
        "dict": dict_,
        "ndarray": ndarray,
        "str_array": str_array,
        "tensor": tensor,
        "random_state": random_state,
        "ref": ref,
        "vae_module": module,
        "training_state": training_state,
        "estimator": estimator,
    }


def _check_config(config: dict, n_tensors: int) -> None:
    """Plain JSON values, and no list longer than the number of stored tensors."""
    for key, value in config.items():
        if not plain_config_value(value):
            raise ValueError(f"invalid network configuration value {key}={value!r}")
        if isinstance(value, list) and len(value) > n_tensors:
            raise ValueError(
                f"the network configuration's {key!r} lists {len(value):,} entries for "
                f"{n_tensors} stored tensors"
            )


def _check_optimizer_state(value: Any) -> None:
    """A torch optimizer ``state_dict``: per-parameter state and parameter groups."""
    if value is None:
        return
    if not (isinstance(value, dict) and set(value) == {"state", "param_groups"}):
        raise ValueError("invalid optimizer state")
    state, groups = value["state"], value["param_groups"]
    if not (
        isinstance(state, dict)
        and isinstance(groups, list)
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)
    ):
        raise ValueError("invalid optimizer state")
    indices = [i for group in groups for i in group["params"]]
    if not all(type(i) is int for i in indices) or len(set(indices)) != len(indices):
        raise ValueError("invalid optimizer parameter groups")
    if not set(state) <= set(indices) or not all(isinstance(s, dict) for s in state.values()):
        raise ValueError("the optimizer state names unknown parameters")


def _check_trained(state: Any, module: Any) -> None:
    """Check that the optimizer state and saved weights of ``state`` fit ``module``."""
    if type(state) is not TrainingState or type(module) is not VAEModule:
        raise ValueError("a fitted estimator lacks its network or training state")
    shapes = [tuple(p.shape) for p in module.parameters()]
    if state.optimizer_state is not None:
        groups = state.optimizer_state["param_groups"]
        if sorted(i for group in groups for i in group["params"]) != list(range(len(shapes))):
            raise ValueError("the optimizer state does not match the network's parameters")
        for index, entry in state.optimizer_state["state"].items():
            for value in entry.values():
                if torch.is_tensor(value) and value.ndim and tuple(value.shape) != shapes[index]:
                    raise ValueError("the optimizer state does not match the network's shapes")
    weights = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, dict) and value and all(torch.is_tensor(v) for v in value.values()):
            if {k: tuple(v.shape) for k, v in value.items()} != weights:
                raise ValueError(f"the saved {field.name} do not match the network")
