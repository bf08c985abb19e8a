"""Fuzzing ``skvae.load`` with random damage: truncations, byte flips, mutations of the
JSON tree. Every malformed file raises ValueError (or loads), quickly and in bounded memory.

The random cases are seeded, so the suite is deterministic.
"""

import copy

import numpy as np
import pytest
from _load_fuzz import (
    CPU_LIMIT,
    MEMORY_FACTOR,
    assert_refused,
    build,
    honest,
    measured_load,
    model_file,
    parts,
)

import skvae
from skvae import BetaCurveVAE


@pytest.fixture(scope="module")
def small_model():
    """A small network (60 kB file), for the many random cases."""
    return model_file(hidden_layer_sizes=(16,))


# ------------------------------------------------------------------ random cases


def test_truncations(small_model):
    data, legit_peak = small_model
    rng = np.random.default_rng(14)
    cuts = {0, 1, 4, 22, len(data) - 1, len(data) - 22, *rng.integers(0, len(data), 30)}
    for cut in sorted(cuts):
        assert_refused(data[:cut], legit_peak)


def test_byte_flips(small_model):
    """A flip is refused, or lands where it changes nothing the loader reads (a date)."""
    data, legit_peak = small_model
    rng = np.random.default_rng(15)
    n_refused = 0
    for position in rng.integers(0, len(data), 40):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(8))
        result, cpu, peak = measured_load(bytes(flipped))
        assert isinstance(result, (ValueError, BetaCurveVAE)), repr(result)
        assert cpu < CPU_LIMIT and peak < MEMORY_FACTOR * legit_peak, (position, cpu, peak)
        n_refused += isinstance(result, ValueError)
    assert n_refused >= 30  # CRCs catch flips in the data


HOSTILE = [
    None,
    -1,
    10**18,
    1.5,
    True,
    "x",
    [],
    {},
    [0] * 100,
    {"type": "ref", "id": 0},
    {"type": "ref", "id": 999},
    {"type": "tensor", "dtype": "onnx", "array": "arrays/0.npy"},
    {"type": "ndarray", "array": "arrays/0.npy"},
    {"type": "estimator", "id": 0, "class": "BetaCurveVAE", "params": {}, "attributes": {}},
    {"type": "pickle", "data": "gASV"},
]


def json_paths(node, path=()):
    yield path
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        yield from json_paths(child, (*path, key))


def test_mutations_of_the_json_tree(small_model):
    """Replace or delete one random node: refused with ValueError, or loaded."""
    data, legit_peak = small_model
    metadata, arrays = parts(data)
    paths = [p for p in json_paths(metadata) if p]
    rng = np.random.default_rng(16)
    outcomes = set()
    for _ in range(40):
        mutated = copy.deepcopy(metadata)
        path = paths[rng.integers(len(paths))]
        parent = mutated
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(HOSTILE[rng.integers(len(HOSTILE))])
        result, cpu, peak = measured_load(build(honest(mutated, arrays)))
        assert isinstance(result, (ValueError, BetaCurveVAE)), (path, repr(result))
        assert cpu < CPU_LIMIT and peak < MEMORY_FACTOR * legit_peak, (path, cpu, peak)
        outcomes.add(type(result))
    assert ValueError in outcomes


def test_honest_archive_by_hand_loads(small_model):
    """The hand-written archives are valid ZIP files: what is refused is the crafting."""
    data, _ = small_model
    assert type(skvae.load(build(honest(*parts(data))))) is BetaCurveVAE
