"""Reading and writing IDX files, the format MNIST and Fashion-MNIST ship in.

IDX layout (LeCun et al., "The MNIST database of handwritten digits",
http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``0x00 0x00 T D``
where ``T`` is the element type and ``D`` the number of dimensions, then
``D`` dimension sizes as big-endian unsigned 32-bit integers, then the
``prod(sizes)`` elements in C order, big-endian. Element types:
``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D``
float32, ``0x0E`` float64. Files are often gzip-compressed; the reader
recognizes gzip by its two magic bytes ``0x1f 0x8b``, not by the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file is corrupt, truncated or not an IDX file; the message names the file."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (gzipped or not) into a native-endian numpy array.

    The shape and dtype come from the header: MNIST image files give
    ``uint8 [n, 28, 28]``, label files ``uint8 [n]``.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      IDXFormatError: bad magic number, unknown type code, truncated or
        over-long data, or a corrupt gzip stream.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({err})") from err
    return _parse(raw, path)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Writes ``array`` as an IDX file, gzipped if ``compress`` (default: the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    code = _TYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(str(d.newbyteorder("=")) for d in IDX_TYPES.values())
        raise ValueError(f"IDX cannot store dtype {array.dtype}; supported: {names}")
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    # mtime=0 makes the compressed bytes a function of the array alone.
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path


def _parse(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: truncated IDX file, {len(raw)} bytes is shorter than the header"
        )
    zero0, zero1, code, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(
            f"{path}: not an IDX file (magic number {raw[:4].hex()} does not start with 0000)"
        )
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IDXFormatError(f"{path}: unknown IDX element type 0x{code:02X} (known: {known})")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IDXFormatError(
            f"{path}: truncated IDX header, needs {header_len} bytes for {ndim} dimensions, "
            f"file has {len(raw)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header_len
    if got != expected:
        what = "truncated IDX data" if got < expected else "IDX data has trailing bytes"
        raise IDXFormatError(
            f"{path}: {what}: shape {shape} of {dtype.newbyteorder('=')} needs {expected} "
            f"bytes after the header, file has {got}"
        )
    data = np.frombuffer(raw, dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
