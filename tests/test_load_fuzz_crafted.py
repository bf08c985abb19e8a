"""Fuzzing ``skvae.load`` with crafted files: each one raises
ValueError, quickly and in bounded memory, and imports nothing it names.

The archives are written by hand (see _load_fuzz.py), so that every declared field can
lie; the metadata can ask for anything.
"""

import dataclasses
import io
import sys
import zipfile
import zlib

import numpy as np
import pytest
from _load_fuzz import Entry, assert_refused, build, deflate, honest, member, model_file, parts


@pytest.fixture(scope="module")
def default_model():
    """The default architecture (hidden layers of 128), about 0.7 MB on disk."""
    return model_file()


# ------------------------------------------------------------------ crafted archives


def spaces_then(text: bytes, n_mib: int) -> bytes:
    """A DEFLATE stream of ``n_mib`` MiB of spaces then ``text``, ~1 kB per MiB: each
    fully flushed block is self-contained, so one compressed MiB can be repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(b" " * 2**20) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * n_mib + deflate(text)


def with_metadata(data: bytes, edit) -> bytes:
    metadata, arrays = parts(data)
    edit(metadata)
    return build(honest(metadata, arrays))


def with_entries(data: bytes, edit) -> bytes:
    metadata, arrays = parts(data)
    entries = honest(metadata, arrays)
    edit(entries)
    return build(entries)


def module_node(metadata: dict) -> dict:
    return metadata["root"]["attributes"]["module_"]


def tensor_nodes(metadata: dict) -> list[dict]:
    return list(module_node(metadata)["state"].values())


def first_array(entries: list[Entry]) -> int:
    return next(i for i, e in enumerate(entries) if e.name != "skvae.json")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def set_entry(entries, index, **changes):
    entries[index] = dataclasses.replace(entries[index], **changes)


def with_array(data: bytes, payload: bytes) -> bytes:
    """Replace the first array's ``.npy`` bytes (honest ZIP fields)."""
    return with_entries(
        data, lambda e: e.__setitem__(first_array(e), member(e[first_array(e)].name, payload))
    )


def with_json_text(data: bytes, member_text: bytes) -> bytes:
    """Insert ``member_text`` (``"key": value``) first in the metadata's JSON object."""

    def edit(entries):
        text = zlib.decompress(entries[0].payload, -15)
        entries[0] = member(
            "skvae.json", b"{" + member_text + b", " + text[1:], zipfile.ZIP_DEFLATED
        )

    return with_entries(data, edit)


def _deflated_3gib(entries):  # a few MB that inflate to 3 GiB
    i = first_array(entries)
    payload = zlib.compressobj(9, zlib.DEFLATED, -15).compress(b"\0" * 2**22)
    set_entry(entries, i, payload=payload, method=zipfile.ZIP_DEFLATED, size=3 * 2**30)


def _spaces_metadata(entries, declared_honestly: bool):  # JSON after 2 GiB of spaces
    text = zlib.decompress(entries[0].payload, -15)
    size = 2 * 2**30 + len(text) if declared_honestly else len(text)
    entries[0] = Entry("skvae.json", spaces_then(text, 2048), zipfile.ZIP_DEFLATED, size)


def _overlapping(entries):  # the "overlapping files" bomb: one data block, many names
    i = first_array(entries)
    largest = max(entries[i:], key=lambda e: len(e.payload))
    entries[i:] = [largest] + [
        dataclasses.replace(largest, name=f"arrays/x{k}.npy", same_data_as=largest.name)
        for k in range(2000)
    ]


def _hidden_layers(n):  # a network far larger than its stored weights
    return lambda m: module_node(m)["config"].update(hidden=[16] * n)


CRAFTED = {
    "deflated array declaring 3 GiB": (
        lambda d: with_entries(d, _deflated_3gib),
        "uses compression method 8",
    ),
    "stored array declaring 3 GiB": (
        lambda d: with_entries(d, lambda e: set_entry(e, first_array(e), size=3 * 2**30)),
        "declares inconsistent sizes",
    ),
    "stored array declaring 3 GiB twice": (
        lambda d: with_entries(
            d, lambda e: set_entry(e, first_array(e), size=3 * 2**30, compressed=3 * 2**30)
        ),
        "declares more bytes than the file holds",
    ),
    "2 GiB of spaces before the metadata": (
        lambda d: with_entries(d, lambda e: _spaces_metadata(e, True)),
        "its metadata declare 2,147,",
    ),
    "2 GiB of spaces before the metadata, declared small": (
        lambda d: with_entries(d, lambda e: _spaces_metadata(e, False)),
        "corrupted",
    ),
    "200,000 hidden layers": (
        lambda d: with_metadata(d, _hidden_layers(200_000)),
        "its metadata declare",
    ),
    "3,000 hidden layers": (
        lambda d: with_metadata(d, _hidden_layers(3_000)),
        "'hidden' lists 3,000 entries for 17 stored tensors",
    ),
    "network wider than its weights": (
        lambda d: with_metadata(d, lambda m: module_node(m)["config"].update(hidden=[10**9])),
        "weights do not match its configuration",
    ),
    "unknown network config key": (
        lambda d: with_metadata(d, lambda m: module_node(m)["config"].update(depth=3)),
        "invalid network configuration",
    ),
    "unknown activation": (
        lambda d: with_metadata(d, lambda m: module_node(m)["config"].update(activation="os")),
        "invalid network configuration",
    ),
    "tensor dtype 'onnx'": (
        lambda d: with_metadata(d, lambda m: tensor_nodes(m)[0].update(dtype="onnx")),
        "invalid tensor dtype 'onnx'",
    ),
    "format version 99 written by 'x'": (
        lambda d: with_metadata(d, lambda m: m.update(format_version=99, versions="x")),
        "format version 99 (written by skvae an unknown version)",
    ),
    "format version '2'": (
        lambda d: with_metadata(d, lambda m: m.update(format_version="2")),
        "format version '2'",
    ),
    "zip 'version needed' 244": (
        lambda d: with_entries(d, lambda e: set_entry(e, 0, version=244)),
        "zip file version 24.4",
    ),
    "bytes 'PK..'": (lambda d: b"PK..", "not an skvae file"),
    "random bytes": (
        lambda d: np.random.default_rng(0).bytes(5000),
        "not an skvae file",
    ),
    "empty archive": (lambda d: build([]), "its metadata (skvae.json) are missing"),
    "20,000 entries": (
        lambda d: build([member(f"arrays/{i}.npy", b"") for i in range(20_000)]),
        "declares 20,000 entries",
    ),
    "two entries of one name": (
        lambda d: with_entries(d, lambda e: e.append(e[-1])),
        "two entries of the same name",
    ),
    "overlapping entries": (lambda d: with_entries(d, _overlapping), "arrays declare"),
    "encrypted entry": (
        lambda d: with_entries(d, lambda e: set_entry(e, first_array(e), flags=1)),
        "is encrypted",
    ),
    "array of Python objects": (
        lambda d: with_array(d, npy_bytes(np.array([{}], dtype=object))),
        "arrays of dtype object are not allowed",
    ),
    "big-endian array": (
        lambda d: with_array(d, npy_bytes(np.ones(3, ">f4"))),
        "arrays of dtype >f4 are not allowed",
    ),
    "array shorter than its shape": (
        lambda d: with_array(d, npy_header("<f4", (10**12,)) + b"\0" * 16),
        "the array's data do not match its declared shape (1000000000000,)",
    ),
    "one array for two tensors": (
        lambda d: with_metadata(
            d, lambda m: tensor_nodes(m)[1].update(array=tensor_nodes(m)[0]["array"])
        ),
        "is used twice",
    ),
    "JSON nested 5,000 deep": (
        lambda d: with_json_text(d, b'"deep": ' + b"[" * 5000 + b"]" * 5000),
        "nested too deeply",
    ),
    "integer of 5,000 digits": (
        lambda d: with_json_text(d, b'"big": 1' + b"0" * 5000),
        "digits",
    ),
    "optimizer state of other shapes": (
        lambda d: with_metadata(d, _swap_optimizer_moments),
        "optimizer state does not match the network's shapes",
    ),
    "unknown parameter": (
        lambda d: with_metadata(d, lambda m: m["root"]["params"].update(foo=1)),
        "unknown BetaCurveVAE parameters ['foo']",
    ),
    "attribute shadowing a parameter": (
        lambda d: with_metadata(d, lambda m: m["root"]["attributes"].update(max_iter=5)),
        "would shadow",
    ),
    "unknown estimator class": (
        lambda d: with_metadata(d, lambda m: m["root"].update({"class": "os.system"})),
        "unknown estimator class 'os.system'",
    ),
}


def _swap_optimizer_moments(metadata):
    state = metadata["root"]["attributes"]["_state"]["fields"]["optimizer_state"]
    per_param = state["values"][state["keys"].index("state")]
    first, second = per_param["values"][0], per_param["values"][1]
    key = first["keys"].index("exp_avg")
    first["values"][key], second["values"][key] = second["values"][key], first["values"][key]


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_file_is_refused_quickly_in_bounded_memory(case, default_model):
    data, legit_peak = default_model
    craft, match = CRAFTED[case]
    onnx_was_imported = "torch.onnx" in sys.modules
    assert_refused(craft(data), legit_peak, match)
    # nothing named in a file is imported (getattr(torch, "onnx") would import it)
    assert onnx_was_imported or "torch.onnx" not in sys.modules


def test_crafted_files_are_small(default_model):
    """The crafted files that demand GiBs are themselves a few MB."""
    data = default_model[0]
    assert len(CRAFTED["2 GiB of spaces before the metadata"][0](data)) < 4 * 2**20
    assert len(CRAFTED["deflated array declaring 3 GiB"][0](data)) < 2 * 2**20
