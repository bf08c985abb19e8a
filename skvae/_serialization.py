"""Allow-listed (de)serialisation of skvae estimator trees for the skvae file format.

:class:`Writer` turns an estimator (its parameters and the state that
``estimator.__getstate__()`` returns: networks, training state, random states) into JSON
nodes, collecting arrays on the side; :class:`Reader` rebuilds it from those nodes and
arrays, creating only the classes of :data:`REGISTRY` and checking every name, dtype and
shape it reads (see :mod:`skvae._persistence` for the layout and the trust model).

Networks are saved as their constructor configuration (``VAEModule.config``) and weights,
and rebuilt with ``VAEModule(**config)`` once ``VAEModule.parameter_shapes(config)`` has
been checked against the stored weights. The training state is saved field by field
(``dataclasses.fields``), the optimizer as its ``state_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ._matcher import LatentMatcher
from ._networks import VAEModule
from ._training import TrainingState
from ._vae import BetaCurveVAE


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
    """

    cls: type
    trained: tuple[tuple[str, str], ...] = ()
    new_params_v1: dict = dataclasses.field(default_factory=dict)
    upgrade_v1: Callable[[dict], dict] | None = None


def _upgrade_vae_v1(attributes: dict) -> dict:
    """skvae 0.1.0 recorded ``kl_curve_`` per grid point; it is per curve since 0.2."""
    module, kl = attributes.get("module_"), attributes.get("kl_curve_")
    if type(module) is VAEModule and isinstance(kl, list):
        attributes["kl_curve_"] = [v * module.config["n_features"] for v in kl]
    return attributes


def _upgrade_matcher_v1(attributes: dict) -> dict:
    """skvae 0.1.0's ``LatentMatcher.n_iter_`` repeated the VAE's epochs; 0.2 dropped it."""
    attributes.pop("n_iter_", None)
    return attributes


#: The estimator classes a file may name, by the name it uses.
REGISTRY = {
    "BetaCurveVAE": Registered(
        BetaCurveVAE,
        trained=(("_state", "module_"),),
        new_params_v1={"residual": False},
        upgrade_v1=_upgrade_vae_v1,
    ),
    "LatentMatcher": Registered(LatentMatcher, upgrade_v1=_upgrade_matcher_v1),
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
_NUMERIC_DTYPES = {
    np.dtype(name).str: np.dtype(name)
    for name in ("f2", "f4", "f8", "c8", "c16", "?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8")
}
#: Lists at least this long of only floats (or only ints) are stored as arrays.
_LIST_AS_ARRAY = 8


def npy_dtype_allowed(dtype: np.dtype) -> bool:
    """Whether the format stores arrays of ``dtype``: native-order numbers and strings."""
    return dtype.str in _NUMERIC_DTYPES or (
        dtype.kind == "U" and dtype.byteorder in "=<|" and dtype.str[0] in "<|"
    )


def _check_attribute_name(cls: type, name: str, params: dict) -> None:
    if not (isinstance(name, str) and name.isidentifier()) or name.startswith("__"):
        raise ValueError(f"invalid attribute name {name!r}")
    if hasattr(cls, name) or name in params:  # would shadow a method, property or parameter
        raise ValueError(f"attribute {name!r} would shadow {cls.__name__}.{name}")


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

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)) or type(value) is int:
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
            return self.list(value, where)
        if type(value) is tuple:
            return {"type": "tuple", "items": self.list(list(value), where)}
        if type(value) in (dict, OrderedDict):
            if not all(type(k) in (str, int) for k in value):
                raise TypeError(f"{where}: only str and int dictionary keys can be saved")
            return {
                "type": "dict",
                "keys": list(value),
                "values": [self.encode(v, f"{where}[{k!r}]") for k, v in value.items()],
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
                "cached_gaussian": self.encode(float(cached), where),
            }
        if type(value) is VAEModule:
            return self.module(value, where)
        if type(value) is TrainingState:
            fields = dataclasses.fields(value)
            return {
                "type": "training_state",
                "fields": {f.name: self.encode(getattr(value, f.name), where) for f in fields},
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
        return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]

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
        if not all(_plain_config_value(v) for v in config.values()):
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
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
            "attributes": {
                k: self.encode(v, f"{where}.{k}") for k, v in state.items() if k not in params
            },
        }


def _plain_config_value(value: Any) -> bool:
    scalar = (type(None), bool, int, float, str)
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, scalar) for v in value)
    return isinstance(value, scalar) and not (isinstance(value, float) and not math.isfinite(value))


def _dict(node: Any, what: str) -> dict:
    if not isinstance(node, dict):
        raise ValueError(f"invalid {what}: expected a JSON object")
    return node


class Reader:
    """Rebuilds objects from the JSON nodes written by :class:`Writer`.

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

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
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
        dtype = _NUMERIC_DTYPES.get(node["dtype"]) if isinstance(node["dtype"], str) else None
        value = self.decode(node["value"])
        if dtype is None or type(value) not in (bool, int, float):
            raise ValueError(f"invalid numpy scalar of dtype {node['dtype']!r}")
        return dtype.type(value)

    def tuple_(self, node: dict) -> tuple:
        items = self.decode(node["items"])
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
        return {k: self.decode(v) for k, v in zip(keys, values)}

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
        cached = self.decode(node["cached_gaussian"])
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
        if self.version == 1:  # 0.1.0 kept the best weights of a fit in its state
            fields.pop("best_weights", None)
        known = {f.name for f in dataclasses.fields(TrainingState)}
        if set(fields) - known:
            raise ValueError(f"unknown training state fields {sorted(set(fields) - known)}")
        values = {k: self.decode(v) for k, v in fields.items()}
        if self.version == 1:  # the optimizer was saved with a copy of its network
            if type(self.decode(node["module"])) is not VAEModule:
                raise ValueError("a training state names no network")
            values["optimizer_state"] = self.decode(node["optimizer"])
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
        params = {k: self.decode(v) for k, v in _dict(node["params"], "parameters").items()}
        if self.version == 1:
            params = {**registered.new_params_v1, **params}
        unknown = set(params) - set(cls().get_params(deep=False))
        if unknown:
            raise ValueError(f"unknown {name} parameters {sorted(unknown)}")
        estimator = self.define(node, cls(**params))
        attributes = {k: self.decode(v) for k, v in _dict(node["attributes"], "attributes").items()}
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
        if not _plain_config_value(value):
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
