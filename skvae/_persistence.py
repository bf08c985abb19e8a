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

This module reads and writes the archive; :mod:`skvae._serialization` turns the
estimator into the tree of nodes and back.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from typing import IO

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator

from ._serialization import Reader, Writer

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_NAME = "skvae"
#: Version of the layout written by :func:`save`; :func:`load` reads this version only.
FORMAT_VERSION = 1
_METADATA = "skvae.json"


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
    writer = Writer()
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
            return Reader(arrays).decode(root)
        except _CORRUPTION_ERRORS as exc:
            raise ValueError(
                f"Cannot load {name}: the file is corrupted or truncated "
                f"({type(exc).__name__}: {exc})."
            ) from None
