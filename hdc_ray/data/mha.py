"""A small MetaImage (``.mha`` / ``.mhd``) reader in numpy, so reading PSFH needs no SimpleITK.

Supports the subset that ITK/SimpleITK writes for images: ``key = value`` header lines up to
``ElementDataFile``, raw data (``LOCAL``: right after the header; otherwise a file next to the header),
``MET_(U)CHAR/(U)SHORT/(U)INT/(U)LONG/FLOAT/DOUBLE``, ``CompressedData = True`` (zlib), ``DimSize``,
``ElementSpacing``, ``Offset`` (alias ``Origin`` / ``Position``), ``TransformMatrix`` (alias ``Rotation`` /
``Orientation``), ``ElementNumberOfChannels`` and ``BinaryDataByteOrderMSB`` / ``ElementByteOrderMSB``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
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
_ORIGIN_KEYS = ("Offset", "Origin", "Position")  # MetaIO synonyms; ITK writes Offset
_DIRECTION_KEYS = ("TransformMatrix", "Rotation", "Orientation")  # ITK writes TransformMatrix


@dataclass(frozen=True)
class MhaGeometry:
    """Where an image's pixels are in space, in the file's (ITK) axis order ``x, y[, z]``: exactly what
    SimpleITK's ``GetSpacing``, ``GetOrigin`` and ``GetDirection`` return (``direction`` row-major, column
    ``j`` the physical direction of index axis ``j``). The array axes run the other way (``(z, y, x)``)."""

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]  # ndim x ndim, row-major

    @classmethod
    def default(cls, ndim: int) -> MhaGeometry:
        return cls((1.0,) * ndim, (0.0,) * ndim, tuple(1.0 if i == j else 0.0 for i in range(ndim) for j in range(ndim)))

    @property
    def ndim(self) -> int:
        return len(self.spacing)

    def plane(self) -> MhaGeometry:
        """The first two axes (x, y): what a 2-D slice of a 3-D image keeps (SimpleITK's ``image[:, :, k]``
        keeps the same in-plane spacing, direction and, for ``k = 0``, origin)."""
        n = self.ndim
        return MhaGeometry(self.spacing[:2], self.origin[:2], tuple(self.direction[i * n + j] for i in range(2) for j in range(2)))

    @property
    def row_col_spacing(self) -> tuple[float, float]:
        """(row, col) mm per pixel of a 2-D geometry: the array-axis order the metrics use."""
        return (float(self.spacing[1]), float(self.spacing[0]))


def read_mha(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Read a MetaImage file.

    Returns ``(array, spacing)``: the array in numpy order, i.e. the *reverse* of the file's ``DimSize``
    (``(z, y, x)`` for 3-D, ``(rows, cols)`` for 2-D; a trailing channel axis when
    ``ElementNumberOfChannels > 1``), exactly as ``SimpleITK.GetArrayFromImage``; and the spacing in the
    same axis order (``spacing[k]`` is the physical size of a step along array axis ``k``: ``(row, col)``
    in 2-D), i.e. the reverse of the file's ``ElementSpacing`` (x, y, z) and of SimpleITK's ``GetSpacing``.
    Raises ``DataError`` naming the file for anything unreadable. :func:`read_mha_image` also gives the
    origin and direction.
    """
    array, geometry = read_mha_image(path)
    return array, tuple(reversed(geometry.spacing))


def read_mha_image(path: str | Path) -> tuple[np.ndarray, MhaGeometry]:
    """``(array, geometry)``: the array as :func:`read_mha` gives it, and spacing, origin and direction in
    the file's (ITK) order, 1 / 0 / identity where the header has none."""
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
    return array, _geometry(header, len(shape), path)


def _geometry(header: dict[str, str], ndim: int, path: Path) -> MhaGeometry:
    default = MhaGeometry.default(ndim)
    spacing = _floats(header.get("ElementSpacing", header.get("ElementSize")), ndim, path, default=1.0)
    origin_text = next((header[k] for k in _ORIGIN_KEYS if k in header), None)
    matrix_text = next((header[k] for k in _DIRECTION_KEYS if k in header), None)
    origin = _floats(origin_text, ndim, path) if origin_text is not None else list(default.origin)
    if matrix_text is None:
        return MhaGeometry(tuple(spacing), tuple(origin), default.direction)
    matrix = _floats(matrix_text, ndim * ndim, path)
    # MetaIO lists the matrix column by column: its transpose is ITK's row-major direction.
    direction = tuple(matrix[j * ndim + i] for i in range(ndim) for j in range(ndim))
    return MhaGeometry(tuple(spacing), tuple(origin), direction)


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


def write_mha(path: str | Path, array: np.ndarray, spacing: tuple[float, ...] | None = None, *, geometry: MhaGeometry | None = None) -> Path:
    """Write a 2-D or 3-D array as an uncompressed MetaImage (``.mha``, data ``LOCAL``): the inverse of
    :func:`read_mha` / :func:`read_mha_image`. Either ``spacing`` in array-axis order (e.g. ``(row, col)``;
    1.0 when None; origin 0, identity direction) or a whole ``geometry`` (ITK order, as read).

    What ITK / SimpleITK read back: ``GetArrayFromImage`` equals ``array``, ``GetSpacing`` is the reverse of
    ``spacing`` (or ``geometry.spacing``), ``GetOrigin`` / ``GetDirection`` are ``geometry``'s. The file is
    written to a temporary name and renamed, so a reader never sees half of it.
    """
    import os

    path = Path(path)
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    element = _ELEMENT_TYPES.get(little.dtype.str)
    if element is None or array.ndim not in (2, 3):
        raise ValueError(f"write_mha: needs a 2-D or 3-D array of a MetaImage type, got {array.dtype} {array.shape}")
    geometry = _geometry_to_write(array.ndim, spacing, geometry)
    n = array.ndim
    matrix = [geometry.direction[i * n + j] for j in range(n) for i in range(n)]  # column by column, as MetaIO stores it
    header = "\n".join([
        "ObjectType = Image", f"NDims = {n}", "BinaryData = True", "BinaryDataByteOrderMSB = False", "CompressedData = False",
        f"TransformMatrix = {_numbers(matrix)}", f"Offset = {_numbers(geometry.origin)}", f"ElementSpacing = {_numbers(geometry.spacing)}",
        f"DimSize = {' '.join(str(d) for d in reversed(array.shape))}", f"ElementType = {element}", "ElementDataFile = LOCAL",
    ])  # fmt: skip
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(header.encode("ascii") + b"\n" + little.tobytes())
    os.replace(tmp, path)
    return path


def _geometry_to_write(ndim: int, spacing: tuple[float, ...] | None, geometry: MhaGeometry | None) -> MhaGeometry:
    if geometry is not None and spacing is not None:
        raise ValueError("write_mha: give spacing or geometry, not both")
    if geometry is None:
        sizes = (1.0,) * ndim if spacing is None else tuple(float(s) for s in reversed(spacing))
        if len(sizes) != ndim:
            raise ValueError(f"write_mha: spacing {spacing} does not match a {ndim}-D array")
        default = MhaGeometry.default(ndim)
        return MhaGeometry(sizes, default.origin, default.direction)
    if (len(geometry.spacing), len(geometry.origin), len(geometry.direction)) != (ndim, ndim, ndim * ndim):
        raise ValueError(f"write_mha: geometry {geometry} does not match a {ndim}-D array")
    return geometry


def _numbers(values: tuple[float, ...] | list[float]) -> str:
    return " ".join(repr(float(v)) for v in values)
