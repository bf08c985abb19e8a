"""A file format for skvae estimators whose loading runs no pickle.

Layout
------
A file is a ZIP archive holding

* ``skvae.json``: the format name and version, the library versions that wrote it, and a
  tree describing the estimator: its class (one of a fixed allow-list), its constructor
  parameters and its fitted attributes, as JSON values or typed nodes
  (``{"type": "tuple", ...}``, ``{"type": "ndarray", ...}``, ``{"type": "vae_module", ...}``).
* ``arrays/<n>.npy``: every array and tensor (network weights, optimizer moments,
  ``mean_``, the torch generator state), in numpy's ``.npy`` format, stored uncompressed.

Trust model
-----------
Loading parses JSON and ``.npy`` headers (``ast.literal_eval`` of a dict literal, through
numpy), copies raw bytes into numeric arrays (object dtypes are refused), creates only the
classes of a fixed allow-list (:class:`~skvae.BetaCurveVAE`, :class:`~skvae.LatentMatcher`,
the VAE's own torch networks and ``torch.optim.Adam``) with values read from the file, and
sets attributes whose names are checked (no dunder names, nothing that shadows a method or
property). No pickle runs, no module or callable named in the file is imported or called,
so a crafted file cannot execute code. What a crafted file *can* do: describe a model that
gives wrong answers, or declare large arrays and use a lot of memory (array sizes are
checked against the bytes actually present, network shapes against those arrays, but
nothing bounds the file's own size). Load models from sources you trust to be correct.

Pickle and joblib remain the fastest way to persist an estimator, but unpickling runs
arbitrary code: use them only for files you produced yourself.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import zipfile
import zlib
from collections import OrderedDict
from typing import IO, Any

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator
from torch import nn

from . import _training
from ._networks import ACTIVATIONS, VAEModule

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_NAME = "skvae"
#: Version of the layout written by :func:`save`; :func:`load` reads this version only.
FORMAT_VERSION = 1
_METADATA = "skvae.json"
#: The estimator classes a file may name (looked up on the ``skvae`` package).
_ESTIMATOR_CLASSES = ("BetaCurveVAE", "LatentMatcher")


def _estimator_class(name: str) -> type:
    import skvae

    cls = getattr(skvae, name, None) if name in _ESTIMATOR_CLASSES else None
    if cls is None:
        raise ValueError(f"unknown estimator class {name!r}")
    return cls


def _check_attribute_name(cls: type, name: str) -> None:
    if not (isinstance(name, str) and name.isidentifier()) or name.startswith("__"):
        raise ValueError(f"invalid attribute name {name!r}")
    if hasattr(cls, name):  # would shadow a method, property or class attribute
        raise ValueError(f"attribute {name!r} would shadow {cls.__name__}.{name}")


# ----------------------------------------------------------------------------- writing


class _Writer:
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
        if name not in _ESTIMATOR_CLASSES or type(estimator) is not _estimator_class(name):
            raise TypeError(
                f"{where}: the skvae format stores {', '.join(_ESTIMATOR_CLASSES)} only, "
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


def save(estimator: BaseEstimator, file: str | os.PathLike | IO[bytes]) -> None:
    """Save an skvae estimator to a file that :func:`load` reads without pickle.

    The file stores the constructor parameters and every fitted attribute, including the
    optimizer and random-generator state, so the loaded estimator transforms, decodes,
    scores and samples bit-identically and continues training (``partial_fit``,
    ``warm_start``) exactly as the original would. See :func:`load` for the trust model.

    Parameters
    ----------
    estimator : BetaCurveVAE or LatentMatcher
        The estimator, fitted or not.
    file : str, path-like or binary file object
        Where to write (an existing file is overwritten).

    Raises
    ------
    TypeError
        If the estimator is of another class (subclasses included), or holds a value the
        format cannot represent (for example a parameter set to an arbitrary object).

    See Also
    --------
    load : Read a file written by ``save``.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> import skvae
    >>> X, _ = skvae.make_beta_curves(200, random_state=0)
    >>> vae = skvae.BetaCurveVAE(max_iter=2, hidden_layer_sizes=(16,), random_state=0).fit(X)
    >>> buffer = io.BytesIO()
    >>> skvae.save(vae, buffer)
    >>> loaded = skvae.load(io.BytesIO(buffer.getvalue()))
    >>> bool(np.array_equal(loaded.transform(X), vae.transform(X)))
    True
    """
    writer = _Writer()
    root = writer.estimator(estimator, "estimator")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _library_versions(),
        "arrays": list(writer.arrays),
        "root": root,
    }
    text = json.dumps(metadata, allow_nan=False, indent=1)
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr(_METADATA, text, compress_type=zipfile.ZIP_DEFLATED)
        for key, array in writer.arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(key, buffer.getvalue(), compress_type=zipfile.ZIP_STORED)


def _library_versions() -> dict[str, str]:
    from . import __version__

    return {
        "skvae": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


# ----------------------------------------------------------------------------- reading


def _read_npy(data: bytes, key: str) -> np.ndarray:
    """Parse ``.npy`` bytes without pickle, checking the declared size against the data."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"{key}: unsupported .npy version {version}")
    if dtype.hasobject or dtype.kind not in "biufcU":
        raise ValueError(f"{key}: arrays of dtype {dtype} are not allowed")
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - stream.tell():
        raise ValueError(f"{key}: the array's data do not match its declared shape {shape}")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C").copy()


class _Reader:
    """Rebuilds objects from the JSON nodes written by :class:`_Writer`."""

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


_CORRUPTION_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    json.JSONDecodeError,
    UnicodeDecodeError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    RuntimeError,
    ValueError,
    OverflowError,
)


def load(file: str | os.PathLike | IO[bytes]) -> BaseEstimator:
    """Load an estimator saved by :func:`save`, without running pickle.

    Trust model: loading parses JSON and raw numeric arrays, creates only skvae's own
    estimators, networks and an Adam optimizer from the values in the file, and imports or
    calls nothing named by the file, so a crafted file cannot run code. It can still
    describe a model that gives wrong results or take much memory: load files whose
    *content* you trust. (Pickle and joblib files, by contrast, run code when loaded.)

    Parameters
    ----------
    file : str, path-like or binary file object
        A file written by :func:`save`.

    Returns
    -------
    estimator : BetaCurveVAE or LatentMatcher
        The estimator, with the same parameters and fitted state as when saved. Its
        networks are on the CPU.

    Raises
    ------
    ValueError
        If the file is not an skvae file, was written in another format version, or is
        corrupted or truncated; the message says which.

    See Also
    --------
    save : Write an estimator.

    Examples
    --------
    >>> import io
    >>> import skvae
    >>> buffer = io.BytesIO()
    >>> skvae.save(skvae.BetaCurveVAE(latent_dims=3), buffer)
    >>> skvae.load(io.BytesIO(buffer.getvalue()))
    BetaCurveVAE(latent_dims=3)
    """
    name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else "the file"
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ValueError(
            f"Cannot load {name}: it is not an skvae file, or it is truncated or corrupted ({exc})."
        ) from None
    with archive:
        try:
            metadata = json.loads(archive.read(_METADATA).decode("utf-8"))
        except _CORRUPTION_ERRORS as exc:
            raise ValueError(
                f"Cannot load {name}: its skvae metadata are missing, truncated or corrupted "
                f"({exc})."
            ) from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
            raise ValueError(f"Cannot load {name}: it is not an skvae file.")
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            written_by = metadata.get("versions", {}).get("skvae", "an unknown version")
            raise ValueError(
                f"Cannot load {name}: it uses skvae file format version {version!r} "
                f"(written by skvae {written_by}), but this skvae reads format version "
                f"{FORMAT_VERSION} only. Load it with a matching skvae version."
            )
        try:
            keys = metadata["arrays"]
            if set(keys) != set(archive.namelist()) - {_METADATA}:
                raise ValueError("the archive's arrays do not match its metadata")
            arrays = {key: _read_npy(archive.read(key), key) for key in keys}
            root = metadata["root"]
            if not isinstance(root, dict) or root.get("type") != "estimator":
                raise ValueError("the file holds no estimator")
            return _Reader(arrays).decode(root)
        except _CORRUPTION_ERRORS as exc:
            raise ValueError(
                f"Cannot load {name}: the file is corrupted or truncated "
                f"({type(exc).__name__}: {exc})."
            ) from None
