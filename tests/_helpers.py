"""Helpers shared by the test modules: bit-for-bit comparisons, tiny settings and models,
skvae files, fresh processes, a counting array reader."""

import copy
import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

import skvae
from skvae import BetaCurveVAE

#: A VAE that fits in a blink (for tests of inputs and parameters, not of quality).
TINY = {"hidden_layer_sizes": (8,), "max_iter": 2, "random_state": 0}

#: Small, quick VAEs for the persistence tests.
#: A tiny network (one hidden layer of 16 units): for tests of plumbing, where a fit only
#: has to run. Tests pass ``max_iter`` themselves.
TINY_NET = dict(hidden_layer_sizes=(16,), batch_size=64, random_state=0)
#: A small network (one hidden layer of 32 units): for tests whose fits must learn
#: something. Tests pass ``max_iter`` themselves.
SMALL_NET = dict(hidden_layer_sizes=(32,), batch_size=64, random_state=0)


def _tiny_vae(X, **params):
    """A VAE trained for a couple of epochs: only its shapes matter."""
    params = {"hidden_layer_sizes": (16,), "max_iter": 2, "random_state": 0, **params}
    return BetaCurveVAE(**params).fit(X)


def assert_identical(a, b, path="estimator"):
    """Assert that two (nested) states are equal bit for bit: tensors, arrays, modules..."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.nn.Module | torch.optim.Optimizer):
        assert_identical(a.state_dict(), b.state_dict(), f"{path}.state_dict()")
    elif isinstance(a, BaseEstimator):
        assert_identical(a.get_params(deep=False), b.get_params(deep=False), f"{path}.params")
        assert_identical(fitted_state(a), fitted_state(b), path)
    elif dataclasses.is_dataclass(a):
        assert_identical(vars(a), vars(b), path)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {set(a) ^ set(b)} differ"
        for key in a:
            assert_identical(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def fitted_state(estimator):
    """Deep copy of everything an estimator learned or keeps privately (``x_``, ``_x``)."""
    return copy.deepcopy(
        {k: v for k, v in vars(estimator).items() if k.endswith("_") or k.startswith("_")}
    )


ROOT = Path(__file__).resolve().parents[1]


def run_in_fresh_process(script: str, *args, cwd=ROOT, env=None) -> str:
    """Run ``python -c script *args`` in a new interpreter importing this checkout.

    Fails the test with the child's stderr when it exits non-zero; returns its stdout.
    """
    env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def outputs(estimator, X):
    """Everything a fitted BetaCurveVAE computes, for bit-for-bit comparisons."""
    Z = estimator.transform(X)
    return {
        "transform": Z,
        "inverse_transform": estimator.inverse_transform(Z),
        "score_samples": estimator.score_samples(X),
        "sample": estimator.sample(7, random_state=0),
    }


def assert_same_outputs(a, b, X):
    expected, actual = outputs(a, X), outputs(b, X)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert a.score(X) == b.score(X)


def saved_bytes(estimator) -> bytes:
    buffer = io.BytesIO()
    skvae.save(estimator, buffer)
    return buffer.getvalue()


def rewrite(data: bytes, edit) -> bytes:
    """Rewrite an skvae archive with ``edit(metadata)`` applied to its JSON."""
    source = zipfile.ZipFile(io.BytesIO(data))
    metadata = json.loads(source.read("skvae.json"))
    edit(metadata)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("skvae.json", json.dumps(metadata), zipfile.ZIP_DEFLATED)
        for name in source.namelist():
            if name != "skvae.json":
                target.writestr(name, source.read(name))
    return out.getvalue()


class CountingReader:
    """An array-like that records every non-empty read (for ``da.from_array``)."""

    def __init__(self, X):
        self.X, self.shape, self.dtype, self.ndim = X, X.shape, X.dtype, X.ndim
        self.reads = []

    def __getitem__(self, key):
        out = self.X[key]
        if out.size:
            self.reads.append(out.shape)
        return out
