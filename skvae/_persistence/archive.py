"""A file format for skvae estimators whose loading runs no pickle and stays bounded.

Layout
------
A file is a ZIP archive holding

* ``skvae.json`` (DEFLATE-compressed): the format name and version, the library versions
  that wrote it, and a tree describing the estimator: its class (one of a fixed
  allow-list), its constructor parameters and its fitted state (what
  ``estimator.__getstate__()`` returns), as JSON values or typed nodes
  (``{"type": "tuple", ...}``, ``{"type": "ndarray", ...}``, ``{"type": "vae_module", ...}``).
  A network node holds the network's constructor configuration (``VAEModule.config``) and
  its weights; a training-state node holds the fields of ``TrainingState``, the optimizer's
  ``state_dict`` among them.
* ``arrays/<n>.npy`` (stored, uncompressed): every array and tensor (network weights,
  optimizer moments, ``mean_``, the torch generator state, long lists of numbers), in
  numpy's ``.npy`` format.

Trust model
-----------
Loading parses JSON and ``.npy`` headers, copies raw bytes into numeric arrays of a fixed
list of dtypes, creates only the classes of a fixed allow-list (:class:`~skvae.BetaCurveVAE`,
:class:`~skvae.LatentMatcher`, their torch networks and training state) with values read
from the file, and sets attributes whose names are checked (no dunder names, nothing that
shadows a method or property). No pickle runs, and no module, class or callable named in
the file is imported or looked up, so a crafted file cannot execute code.

Loading is also bounded: before anything is inflated or built, the archive's directory is
checked against these limits, and the limits are enforced again while reading (the
declared sizes are not trusted):

* at most :data:`MAX_ARRAYS` arrays, and :data:`MAX_ARRAY_BYTES` (1 GiB) of array data in
  all, no more than the bytes actually present in the file (arrays are stored
  uncompressed, so a small file cannot declare large arrays);
* the metadata inflate to at most 16 KiB plus 512 bytes per array
  (:data:`MAX_METADATA_BYTES`, :data:`METADATA_BYTES_PER_ARRAY`), so parsing them takes
  memory of the order of the arrays' own;
* only the compression methods :func:`save` writes are accepted (DEFLATE for the
  metadata, none for the arrays), and no encryption;
* a network's configuration is checked against the shapes of its stored weights before
  the network is built, so building it takes no more memory than the weights in the file.

A malformed, truncated or crafted file therefore raises :class:`ValueError` quickly, using
memory of the order of the file's own size. What a crafted file *can* still do is describe
a model that gives wrong answers, or fitted attributes that make later calls fail: load
models from sources you trust to be correct.

Pickle and joblib remain the fastest way to persist an estimator, but unpickling runs
arbitrary code: use them only for files you produced yourself.

This module reads and writes the archive; :mod:`skvae._persistence.writer` and
:mod:`skvae._persistence.reader` turn the estimator into the tree of nodes and back.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from typing import IO

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator

from .allowlist import npy_dtype_allowed
from .reader import Reader
from .writer import Writer

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_NAME = "skvae"
#: Version of the layout written by :func:`save`.
FORMAT_VERSION = 2
#: Versions :func:`load` reads: 1 is the format of skvae 0.1.0.
READABLE_VERSIONS = (1, 2)
#: Most arrays a file may hold.
MAX_ARRAYS = 10_000
#: Largest total size, in bytes, of the arrays in a file.
MAX_ARRAY_BYTES = 2**30
#: Largest size, in bytes, of the inflated JSON metadata of a file without arrays; each
#: array allows :data:`METADATA_BYTES_PER_ARRAY` more (a saved array takes about 120).
MAX_METADATA_BYTES = 2**14
METADATA_BYTES_PER_ARRAY = 512
_METADATA = "skvae.json"
_CHUNK = 2**20
#: An upper bound on the ZIP directory of MAX_ARRAYS entries with the names save writes.
_MAX_DIRECTORY_BYTES = 128 * (MAX_ARRAYS + 1)
_END_RECORD = struct.Struct("<4s4H2LH")  # the ZIP "end of central directory" record


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
    ValueError
        If the estimator is too large for the limits that :func:`load` enforces
        (more than 1 GiB of arrays, for example).

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
    writer = Writer()
    root = writer.estimator(estimator, "estimator")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _library_versions(),
        "arrays": list(writer.arrays),
        "root": root,
    }
    text = json.dumps(metadata, allow_nan=False, separators=(",", ":")).encode("utf-8")
    blobs = {}
    for key, array in writer.arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        blobs[key] = buffer.getvalue()
    total = sum(len(blob) for blob in blobs.values())
    for what, size, limit in [
        ("arrays", len(blobs), MAX_ARRAYS),
        ("bytes of arrays", total, MAX_ARRAY_BYTES),
        ("bytes of metadata", len(text), _metadata_limit(len(blobs))),
    ]:
        if size > limit:
            raise ValueError(
                f"The estimator is too large for the skvae format: {size:,} {what}, more than "
                f"the {limit:,} that skvae.load accepts. Use joblib (for trusted files) instead."
            )
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr(_METADATA, text, compress_type=zipfile.ZIP_DEFLATED)
        for key, blob in blobs.items():
            archive.writestr(key, blob, compress_type=zipfile.ZIP_STORED)


def _library_versions() -> dict[str, str]:
    from .. import __version__

    return {
        "skvae": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def load(file: str | os.PathLike | IO[bytes] | bytes) -> BaseEstimator:
    """Load an estimator saved by :func:`save`, without running pickle.

    Trust model: loading parses JSON and raw numeric arrays, creates only skvae's own
    estimators, networks and training state from the values in the file, and imports or
    calls nothing named by the file, so a crafted file cannot run code. Reading is
    bounded (at most 10,000 arrays and 1 GiB of array data, no more than the file holds;
    16 KiB of metadata plus 512 bytes per array; networks checked against their stored
    weights before they are built), so a malformed or crafted file raises ``ValueError``
    quickly and within memory of the order of its size. A crafted file can still describe
    a model that gives wrong results: load files whose *content* you trust. (Pickle and
    joblib files, by contrast, run code when loaded.)

    Parameters
    ----------
    file : str, path-like, binary file object or bytes
        A file written by :func:`save`, or its content as bytes.

    Returns
    -------
    estimator : BetaCurveVAE or LatentMatcher
        The estimator, with the same parameters and fitted state as when saved. Its
        networks are on the CPU.

    Raises
    ------
    ValueError
        If the file is not an skvae file, was written in a format version this skvae does
        not read, exceeds the limits above, or is corrupted, truncated or crafted; the
        message names the problem.
    OSError
        If the file cannot be opened.

    See Also
    --------
    save : Write an estimator.

    Examples
    --------
    >>> import io
    >>> import skvae
    >>> buffer = io.BytesIO()
    >>> skvae.save(skvae.BetaCurveVAE(latent_dims=3), buffer)
    >>> skvae.load(buffer.getvalue())
    BetaCurveVAE(latent_dims=3)
    """
    if isinstance(file, (bytes, bytearray, memoryview)):
        name, stream, owned = "the data", io.BytesIO(file), True
    elif isinstance(file, (str, os.PathLike)):
        name, stream, owned = os.fspath(file), open(file, "rb"), True  # noqa: SIM115
    else:
        name, stream, owned = "the file", file, False
    try:
        return _load(stream)
    except _NotSkvae as exc:
        raise ValueError(
            f"Cannot load {name}: it is not an skvae file, or it is truncated or corrupted ({exc})."
        ) from None
    except ValueError as exc:
        raise ValueError(f"Cannot load {name}: {exc}") from None
    except KeyError as exc:
        raise ValueError(f"Cannot load {name}: a node of its metadata lacks {exc}.") from None
    except RecursionError:
        raise ValueError(f"Cannot load {name}: its metadata are nested too deeply.") from None
    except MemoryError:
        raise
    except Exception as exc:  # zipfile, zlib, json and torch raise many types on bad data
        raise ValueError(
            f"Cannot load {name}: the file is corrupted or truncated ({type(exc).__name__}: {exc})."
        ) from exc
    finally:
        if owned:
            stream.close()


class _NotSkvae(ValueError):
    """The data are not a ZIP archive at all."""


def _load(stream: IO[bytes]) -> BaseEstimator:
    size = stream.seek(0, io.SEEK_END)
    _check_end_record(stream, size)
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise _NotSkvae(str(exc)) from None
    with archive:
        infos = _checked_entries(archive, size)
        metadata = _read_metadata(archive, infos.pop(_METADATA))
        keys = metadata.get("arrays")
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise ValueError("its list of arrays is invalid")
        if len(set(keys)) != len(keys) or set(keys) != set(infos):
            raise ValueError("the archive's arrays do not match its metadata")
        arrays = {key: _read_npy(_read_entry(archive, infos[key]), key) for key in keys}
        root = metadata.get("root")
        if not isinstance(root, dict) or root.get("type") != "estimator":
            raise ValueError("the file holds no estimator")
        return Reader(arrays, metadata["format_version"]).read_node(root)


def _check_end_record(stream: IO[bytes], size: int) -> None:
    """Check the entry count of the ZIP directory before ``zipfile`` parses it."""
    tail = min(size, _END_RECORD.size + 0xFFFF)  # the record and the longest comment
    stream.seek(size - tail)
    data = stream.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) - at < _END_RECORD.size:
        raise _NotSkvae("no ZIP directory")
    if data[max(at - 20, 0) : at].startswith(b"PK\x06\x07"):
        raise ValueError("its archive is in the ZIP64 format, which skvae does not write")
    fields = _END_RECORD.unpack_from(data, at)
    n_entries, directory_size = fields[4], fields[5]
    if n_entries > MAX_ARRAYS + 1 or directory_size > min(size, _MAX_DIRECTORY_BYTES):
        raise ValueError(
            f"its archive declares {n_entries:,} entries in {directory_size:,} bytes of "
            f"directory, more than an skvae file may hold ({MAX_ARRAYS:,} arrays)"
        )


def _checked_entries(archive: zipfile.ZipFile, size: int) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by name, once their names, methods and sizes are checked."""
    infos = archive.infolist()
    if len(infos) > MAX_ARRAYS + 1:
        raise ValueError(f"it holds {len(infos):,} entries, more than {MAX_ARRAYS + 1:,}")
    entries = {info.filename: info for info in infos}
    if len(entries) != len(infos):
        raise ValueError("its archive holds two entries of the same name")
    if _METADATA not in entries:
        raise ValueError(f"its metadata ({_METADATA}) are missing")
    total = 0
    for name, info in entries.items():
        method = zipfile.ZIP_DEFLATED if name == _METADATA else zipfile.ZIP_STORED
        if info.compress_type != method:
            raise ValueError(
                f"entry {name!r} uses compression method {info.compress_type}; skvae files "
                f"use {method} ({'DEFLATE' if method else 'none'}) only"
            )
        if info.flag_bits & 0x1:
            raise ValueError(f"entry {name!r} is encrypted")
        if method == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ValueError(f"entry {name!r} declares inconsistent sizes")
        if info.compress_size > size:
            raise ValueError(f"entry {name!r} declares more bytes than the file holds")
        if name != _METADATA:
            total += info.file_size
    limit = _metadata_limit(len(entries) - 1)
    if entries[_METADATA].file_size > limit:
        raise ValueError(
            f"its metadata declare {entries[_METADATA].file_size:,} bytes, more than the "
            f"{limit:,} an skvae file with {len(entries) - 1:,} arrays may hold"
        )
    if total > min(size, MAX_ARRAY_BYTES):
        raise ValueError(
            f"its arrays declare {total:,} bytes in all, more than the file holds "
            f"({size:,} bytes) or the {MAX_ARRAY_BYTES:,} an skvae file may hold"
        )
    return entries


def _metadata_limit(n_arrays: int) -> int:
    return MAX_METADATA_BYTES + METADATA_BYTES_PER_ARRAY * n_arrays


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytearray:
    """An entry's bytes, read in chunks and never more than its (checked) declared size."""
    buffer = bytearray(info.file_size)
    view = memoryview(buffer)
    filled = 0
    with archive.open(info) as entry:
        while filled < len(buffer):
            chunk = entry.read(min(_CHUNK, len(buffer) - filled))
            if not chunk:
                raise ValueError(f"entry {info.filename!r} is truncated")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        if entry.read(1):
            raise ValueError(f"entry {info.filename!r} holds more than its declared size")
    return buffer


def _read_metadata(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict:
    try:
        metadata = json.loads(_read_entry(archive, info).decode("utf-8"))
    except ValueError as exc:  # invalid UTF-8 or JSON, an integer of too many digits
        raise ValueError(f"its metadata are corrupted ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise _NotSkvae("its metadata do not name the skvae format")
    version = metadata.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        versions = metadata.get("versions")
        written_by = versions.get("skvae") if isinstance(versions, dict) else None
        written_by = written_by if isinstance(written_by, str) else "an unknown version"
        raise ValueError(
            f"it uses skvae file format version {version!r} (written by skvae "
            f"{written_by[:40]}), but this skvae reads format version"
            f"{'s' if len(READABLE_VERSIONS) > 1 else ''} "
            f"{' and '.join(map(str, READABLE_VERSIONS))} only. Load it with a matching "
            "skvae version."
        )
    return metadata


def _read_npy(data: bytearray, key: str) -> np.ndarray:
    """Parse ``.npy`` bytes without pickle (and without copying the values)."""
    header = io.BytesIO(bytes(data[: 12 + 10_000]))  # numpy's largest header by default
    version = np.lib.format.read_magic(header)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(header)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(header)
    else:
        raise ValueError(f"{key}: unsupported .npy version {version}")
    if not npy_dtype_allowed(dtype):
        raise ValueError(f"{key}: arrays of dtype {dtype} are not allowed")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(data) - header.tell():
        raise ValueError(f"{key}: the array's data do not match its declared shape {shape}")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=header.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C")
