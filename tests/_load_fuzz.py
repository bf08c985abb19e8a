"""What the test_load_fuzz_* modules share: ZIP archives written by hand, and loads of
``skvae.load`` measured in CPU time and traced memory.

Crafted archives are written by hand (``build``) so that every declared field can lie:
sizes, compression methods, "version needed", flags, offsets.
"""

import dataclasses
import io
import json
import struct
import time
import tracemalloc
import warnings
import zipfile
import zlib

import skvae
from skvae import BetaCurveVAE

#: CPU seconds one load of a malformed file may take: refused within a second.
CPU_LIMIT = 1.0
#: Malformed files may take this many times the traced memory of loading the real model.
MEMORY_FACTOR = 4


# ------------------------------------------------------------------ archives by hand


@dataclasses.dataclass
class Entry:
    """One ZIP member as written by :func:`build`; ``None`` fields take the true value."""

    name: str
    payload: bytes  # the bytes as stored (compressed for DEFLATE)
    method: int = zipfile.ZIP_STORED
    size: int | None = None  # declared uncompressed size
    compressed: int | None = None  # declared compressed size
    crc: int | None = None
    version: int = 20  # "version needed to extract"
    flags: int = 0
    same_data_as: str | None = None  # point the directory at another member's data


def deflate(raw: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush()


def member(name: str, raw: bytes, method: int = zipfile.ZIP_STORED) -> Entry:
    payload = deflate(raw) if method == zipfile.ZIP_DEFLATED else raw
    return Entry(name, payload, method, len(raw), crc=zlib.crc32(raw))


def build(entries: list[Entry]) -> bytes:
    """A ZIP archive written field by field, trusting nothing."""
    out, directory, offsets = bytearray(), bytearray(), {}
    for e in entries:
        name = e.name.encode()
        size = len(e.payload) if e.size is None else e.size
        compressed = len(e.payload) if e.compressed is None else e.compressed
        crc = 0 if e.crc is None else e.crc
        fields = (e.version, e.flags, e.method, 0, 0, crc, compressed, size, len(name), 0)
        if e.same_data_as is None:
            offsets[e.name] = len(out)
            out += struct.pack("<4s5H3I2H", b"PK\x03\x04", *fields) + name + e.payload
        offset = offsets[e.same_data_as or e.name]
        directory += (
            struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset) + name
        )
    n = len(entries)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, n, n, len(directory), len(out), 0)
    return bytes(out + directory + end)


def parts(data: bytes) -> tuple[dict, dict[str, bytes]]:
    """The metadata and the raw arrays of a file written by ``skvae.save``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        metadata = json.loads(archive.read("skvae.json"))
        arrays = {n: archive.read(n) for n in archive.namelist() if n != "skvae.json"}
    return metadata, arrays


def honest(metadata: dict, arrays: dict[str, bytes]) -> list[Entry]:
    text = json.dumps(metadata).encode()
    return [member("skvae.json", text, zipfile.ZIP_DEFLATED)] + [
        member(name, raw) for name, raw in arrays.items()
    ]


# ------------------------------------------------------------------ measuring a load


def measured_load(data: bytes):
    """``(estimator or ValueError, CPU seconds, traced peak bytes)`` of ``skvae.load``."""
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    cpu = time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning is no answer either
            result = skvae.load(data)
    except ValueError as exc:
        result = exc
    cpu = time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] - before
    if not started:
        tracemalloc.stop()
    return result, cpu, peak


def model_file(**params) -> tuple[bytes, int]:
    """A saved, briefly fitted VAE and the traced peak memory of loading it."""
    X, _ = skvae.make_beta_curves(64, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = BetaCurveVAE(max_iter=1, random_state=0, **params).fit(X)
    buffer = io.BytesIO()
    skvae.save(vae, buffer)
    data = buffer.getvalue()
    peaks = []
    for _ in range(2):
        result, _, peak = measured_load(data)
        assert type(result) is BetaCurveVAE
        peaks.append(peak)
    return data, min(peaks)


def assert_refused(data: bytes, legit_peak: int, match: str | None = None) -> ValueError:
    result, cpu, peak = measured_load(data)
    assert isinstance(result, ValueError), f"loaded {result!r}"
    if match is not None:
        assert match in str(result), str(result)
    assert cpu < CPU_LIMIT, (cpu, str(result))
    assert peak < MEMORY_FACTOR * legit_peak, (peak, legit_peak, str(result))
    return result
