"""Read and write IDX files, the format MNIST ships in (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number — two zero bytes, a type code (0x08 = unsigned byte, ...)
and the number of dimensions — then one big-endian uint32 per dimension, then the values in
C order, big-endian. Files may be gzip-compressed; compression is recognised by content, not
by the ``.gz`` suffix.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from ._errors import DataError

__all__ = ["IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "read_idx", "write_idx"]

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: broken gzip data ({e}).") from None
    return raw


def read_idx(path: str | Path, *, expect_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip) into a numpy array of its declared shape and type.

    Args:
        path: The file.
        expect_magic: When given, the file's magic number must equal it (for example
            ``IDX_IMAGES_MAGIC``).

    Raises:
        DataError: not an IDX file, an unexpected magic number, or a size that does not match
            the header.
        OSError: the file cannot be read.
    """
    p = Path(path)
    data = _read_bytes(p)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(
            f"{p}: not an IDX file: the magic number must be 00 00 <type> <ndim>, "
            f"got {data[:4].hex(' ') or 'an empty file'}."
        )
    magic = int.from_bytes(data[:4], "big")
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{p}: magic number must be 0x{expect_magic:08x}, got 0x{magic:08x}.")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{p}: truncated IDX header ({len(data)} bytes for {ndim} dimensions).")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _TYPES[data[2]]
    expected = math.prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{p}: the header promises {expected:,} bytes of values for shape {dims}, "
            f"the file holds {len(data) - header:,}."
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return values.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    The array's dtype must be one IDX supports (uint8, int8, int16, int32, float32, float64).
    Returns the path written.
    """
    p = Path(path)
    arr = np.asarray(array)
    codes = [
        c for c, t in _TYPES.items() if (t.kind, t.itemsize) == (arr.dtype.kind, arr.dtype.itemsize)
    ]
    if not codes:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}; use uint8, int8, int16, int32, ...")
    code, dtype = codes[0], _TYPES[codes[0]]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = header + np.ascontiguousarray(arr, dtype=dtype).tobytes()
    p.write_bytes(gzip.compress(body, mtime=0) if p.name.endswith(".gz") else body)
    return p
