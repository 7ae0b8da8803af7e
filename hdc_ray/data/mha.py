"""A small MetaImage (``.mha`` / ``.mhd``) reader in numpy, so reading PSFH needs no SimpleITK.

Supports the subset that ITK/SimpleITK writes for images: ``key = value`` header lines up to
``ElementDataFile``, raw data (``LOCAL``: right after the header; otherwise a file next to the header),
``MET_(U)CHAR/(U)SHORT/(U)INT/(U)LONG/FLOAT/DOUBLE``, ``CompressedData = True`` (zlib), ``DimSize``,
``ElementSpacing``, ``ElementNumberOfChannels`` and ``BinaryDataByteOrderMSB`` / ``ElementByteOrderMSB``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from hdc_ray.data.errors import DataError

_TYPES = {
    "MET_UCHAR": "u1",
    "MET_CHAR": "i1",
    "MET_USHORT": "u2",
    "MET_SHORT": "i2",
    "MET_UINT": "u4",
    "MET_INT": "i4",
    "MET_ULONG_LONG": "u8",
    "MET_LONG_LONG": "i8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}
_MAX_HEADER_LINES = 100  # a real header has ~15; more means this is not a MetaImage


def read_mha(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Read a MetaImage file.

    Returns ``(array, spacing)``: the array in numpy order, i.e. the *reverse* of the file's ``DimSize``
    (``(z, y, x)`` for 3-D, ``(rows, cols)`` for 2-D; a trailing channel axis when
    ``ElementNumberOfChannels > 1``), exactly as ``SimpleITK.GetArrayFromImage``; and the spacing in the
    same axis order (``spacing[k]`` is the physical size of a step along array axis ``k``: ``(row, col)``
    in 2-D), i.e. the reverse of the file's ``ElementSpacing`` (x, y, z) and of SimpleITK's ``GetSpacing``.
    Raises ``DataError`` naming the file for anything unreadable.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    header, offset = _parse_header(raw, path)
    shape, dtype, channels = _layout(header, path)
    data = _payload(raw, offset, header, path)
    count = int(np.prod(shape)) * channels
    if len(data) != count * dtype.itemsize:
        raise DataError(f"{path}: corrupt MetaImage: expected {count * dtype.itemsize} data bytes for DimSize {header['DimSize']} "
                        f"({header['ElementType']}), found {len(data)}")  # fmt: skip
    array = np.frombuffer(data, dtype=dtype, count=count).astype(dtype.newbyteorder("="))
    array = array.reshape(shape[::-1] + ((channels,) if channels > 1 else ()))
    spacing = _floats(header.get("ElementSpacing", header.get("ElementSize")), len(shape), path, default=1.0)
    return array, tuple(reversed(spacing))


def _parse_header(raw: bytes, path: Path) -> tuple[dict[str, str], int]:
    """``key = value`` lines up to and including ``ElementDataFile``; returns them and the data offset."""
    header: dict[str, str] = {}
    offset = 0
    for _ in range(_MAX_HEADER_LINES):
        end = raw.find(b"\n", offset)
        if end < 0:
            break
        line = raw[offset:end].decode("latin-1").strip()
        offset = end + 1
        key, sep, value = line.partition("=")
        if not sep:
            if line:
                raise DataError(f"{path}: not a MetaImage file (header line {line[:40]!r} is not 'key = value')")
            continue
        header[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            return header, offset
    raise DataError(f"{path}: not a MetaImage file (no 'ElementDataFile' line in the header)")


def _layout(header: dict[str, str], path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    for key in ("DimSize", "ElementType"):
        if key not in header:
            raise DataError(f"{path}: MetaImage header lacks {key!r}")
    shape = tuple(int(v) for v in _floats(header["DimSize"], None, path))
    if "NDims" in header and int(header["NDims"]) != len(shape):
        raise DataError(f"{path}: MetaImage header says NDims = {header['NDims']} but DimSize has {len(shape)} values")
    if any(s < 1 for s in shape):
        raise DataError(f"{path}: MetaImage DimSize must be positive, got {header['DimSize']}")
    element = header["ElementType"]
    if element not in _TYPES:
        raise DataError(f"{path}: unsupported MetaImage ElementType {element!r}; supported: {', '.join(_TYPES)}")
    msb = header.get("BinaryDataByteOrderMSB", header.get("ElementByteOrderMSB", "False")).lower() == "true"
    dtype = np.dtype(_TYPES[element]).newbyteorder(">" if msb else "<")
    return shape, dtype, int(header.get("ElementNumberOfChannels", "1"))


def _payload(raw: bytes, offset: int, header: dict[str, str], path: Path) -> bytes:
    source = header["ElementDataFile"]
    if source == "LOCAL":
        data = raw[offset:]
    elif source.upper() == "LIST" or "%" in source:
        raise DataError(f"{path}: MetaImage ElementDataFile {source!r} (a slice list) is not supported")
    else:
        data_path = path.parent / source
        try:
            data = data_path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read its data file {data_path}: {exc.strerror or exc}") from exc
    if header.get("CompressedData", "False").lower() != "true":
        return data
    try:
        # wbits | 32: accept both zlib (what ITK writes) and gzip streams.
        return zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(data)
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt compressed MetaImage data: {exc}") from exc


def _floats(text: str | None, count: int | None, path: Path, default: float = 1.0) -> list[float]:
    if text is None:
        return [default] * (count or 0)
    try:
        values = [float(v) for v in text.split()]
    except ValueError as exc:
        raise DataError(f"{path}: MetaImage header value {text!r} is not a list of numbers") from exc
    if count is not None and len(values) < count:
        raise DataError(f"{path}: MetaImage header value {text!r} needs {count} numbers")
    return values[:count] if count is not None else values


_ELEMENT_TYPES = {np.dtype(v).newbyteorder("<").str: k for k, v in _TYPES.items()}


def write_mha(path: str | Path, array: np.ndarray, spacing: tuple[float, ...] | None = None) -> Path:
    """Write a 2-D or 3-D array as an uncompressed MetaImage (``.mha``, data ``LOCAL``): the inverse of
    :func:`read_mha` (``spacing`` in array-axis order, e.g. ``(row, col)``; 1.0 when None).

    What ITK / SimpleITK read back: ``GetArrayFromImage`` equals ``array`` and ``GetSpacing`` is the reverse
    of ``spacing``. The file is written to a temporary name and renamed, so a reader never sees half of it.
    """
    import os

    path = Path(path)
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    element = _ELEMENT_TYPES.get(little.dtype.str)
    if element is None or array.ndim not in (2, 3):
        raise ValueError(f"write_mha: needs a 2-D or 3-D array of a MetaImage type, got {array.dtype} {array.shape}")
    sizes = tuple(1.0 for _ in array.shape) if spacing is None else tuple(float(s) for s in spacing)
    if len(sizes) != array.ndim:
        raise ValueError(f"write_mha: spacing {spacing} does not match a {array.ndim}-D array")
    header = "\n".join([
        "ObjectType = Image", f"NDims = {array.ndim}", "BinaryData = True", "BinaryDataByteOrderMSB = False",
        "CompressedData = False", f"DimSize = {' '.join(str(n) for n in reversed(array.shape))}",
        f"ElementSpacing = {' '.join(repr(s) for s in reversed(sizes))}", f"ElementType = {element}", "ElementDataFile = LOCAL",
    ])  # fmt: skip
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(header.encode("ascii") + b"\n" + little.tobytes())
    os.replace(tmp, path)
    return path
