"""Readers for the public layouts of the real datasets (see docs: FUGC 2025, PSFH / FH-PS-AOP).

Listing (``fugc_files`` / ``psfh_files``) validates the folder layout up front, so a missing mask or an
empty folder is reported before minutes of decoding; ``load_sample`` then reads one image/mask pair.
Every problem is a ``DataError`` naming the file or folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdc_ray.data.errors import DataError
from hdc_ray.data.mha import read_mha

# The pixel helpers (grey_channel, unit_float, their *_converted forms, squeeze_slices, row_col_spacing) are public because
# hdc_ray.inference.inputs reads new images exactly as training reads its data.
__all__ = [
    "IMAGE_SUFFIXES", "Conversion", "DataError", "Sample", "SampleFile", "fugc_files", "grey_channel", "grey_converted", "load_sample", "psfh_files",
    "read_fugc", "read_label_mask", "read_mha", "read_psfh", "row_col_spacing", "squeeze_slices", "unit_float", "unit_float_converted",
]  # fmt: skip

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LABEL_VALUES = {"fugc": (0, 1, 2), "psfh": (0, 1, 2)}  # background, lip/PS, lip/FH
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, for images that really are colour


@dataclass(frozen=True)
class Sample:
    """One image: ``image`` float32 ``(H, W)`` in [0, 1] (one grey channel); ``mask`` uint8 ``(H, W)`` class
    indices or None (unlabelled); ``spacing`` mm per pixel ``(row, col)`` or None when unknown."""

    key: str  # unique across subsets: "fugc/labeled/0001", "fugc/unlabeled/0001", "psfh/03001"
    image: np.ndarray
    mask: np.ndarray | None
    spacing: tuple[float, float] | None
    path: str


@dataclass(frozen=True)
class SampleFile:
    """Where one sample lives, before reading it."""

    key: str
    image_path: Path
    mask_path: Path | None
    dataset: str  # "fugc" | "psfh": decides the file format and the allowed label values


# ------------------------------------------------------------------------------------------------ FUGC


def read_fugc(root: str | Path) -> tuple[list[Sample], list[Sample]]:
    """``(labeled, unlabeled)`` samples of a FUGC 2025 training set.

    ``root`` is the folder containing ``train/`` or ``train/`` itself. Keys are ``fugc/<subset>/<stem>``
    because the stems of labelled and unlabelled images collide.
    """
    labeled, unlabeled = fugc_files(root)
    return [load_sample(f) for f in labeled], [load_sample(f) for f in unlabeled]


def fugc_files(root: str | Path) -> tuple[list[SampleFile], list[SampleFile]]:
    """List and pair a FUGC training layout without decoding any image."""
    train = _fugc_train_dir(Path(root))
    images = _listing(train / "labeled_data" / "images")
    labels = _listing(train / "labeled_data" / "labels")
    orphans = sorted(set(labels) - set(images))
    if orphans:
        raise DataError(f"{labels[orphans[0]]}: label without an image (expected {train / 'labeled_data' / 'images' / orphans[0]}.png)")
    labeled = []
    for stem, path in images.items():
        if stem not in labels:
            raise DataError(f"{path}: labelled image has no mask (expected {train / 'labeled_data' / 'labels' / stem}.png)")
        labeled.append(SampleFile(f"fugc/labeled/{stem}", path, labels[stem], "fugc"))
    unlabeled_images = _listing(train / "unlabeled_data" / "images")
    unlabeled = [SampleFile(f"fugc/unlabeled/{stem}", p, None, "fugc") for stem, p in unlabeled_images.items()]
    return labeled, unlabeled


def _fugc_train_dir(root: Path) -> Path:
    if not root.is_dir():
        raise DataError(f"{root}: FUGC root folder does not exist")
    for candidate in (root / "train", root):
        if (candidate / "labeled_data").is_dir():
            return candidate
    raise DataError(f"{root}: no FUGC layout here: expected {root / 'train' / 'labeled_data'} (or pass the train/ folder itself)")


# ------------------------------------------------------------------------------------------------ PSFH


def read_psfh(root: str | Path) -> list[Sample]:
    """Samples of a PSFH / FH-PS-AOP release: ``image_mha/NNNNN.mha`` + ``label_mha/NNNNN.mha``.

    Images are stored as three identical grey slices ``(3, 256, 256)``; one is kept. Spacing is kept
    (``(row, col)``, from the image header) though official scoring works in pixels.
    """
    return [load_sample(f) for f in psfh_files(root)]


def psfh_files(root: str | Path) -> list[SampleFile]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: PSFH root folder does not exist")
    images = _listing(root / "image_mha", suffixes=(".mha", ".mhd"))
    labels = _listing(root / "label_mha", suffixes=(".mha", ".mhd"))
    files = []
    for stem, path in images.items():
        if stem not in labels:
            raise DataError(f"{path}: image has no label (expected {root / 'label_mha' / path.name})")
        files.append(SampleFile(f"psfh/{stem}", path, labels[stem], "psfh"))
    orphans = sorted(set(labels) - set(images))
    if orphans:
        raise DataError(f"{labels[orphans[0]]}: label without an image in {root / 'image_mha'}")
    return files


# --------------------------------------------------------------------------------------------- loading


def load_sample(entry: SampleFile) -> Sample:
    """Decode one image (and its mask), validating grey conversion, size agreement and label values."""
    if entry.dataset == "psfh":
        array, spacing3 = read_mha(entry.image_path)
        image, spacing = unit_float(grey_channel(squeeze_slices(array), entry.image_path), entry.image_path), row_col_spacing(spacing3)
    else:
        image, spacing = unit_float(grey_channel(_read_picture(entry.image_path), entry.image_path), entry.image_path), None
    mask = None
    if entry.mask_path is not None:
        mask = read_label_mask(entry.mask_path, entry.dataset)
        if mask.shape != image.shape:
            raise DataError(
                f"{entry.mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} but its image {entry.image_path} is {image.shape[0]}x{image.shape[1]}"
            )
    return Sample(entry.key, image, mask, spacing, str(entry.image_path))


def read_label_mask(path: Path, dataset: str) -> np.ndarray:
    if dataset == "psfh":
        mask = squeeze_slices(read_mha(path)[0])
    else:
        mask = _read_picture(path)
        if mask.ndim == 3:  # masks saved as RGB(A) / LA: fine if the colour channels agree
            colour = mask[..., :3] if mask.shape[-1] >= 3 else mask[..., :1]
            if not np.all(colour == colour[..., :1]):
                raise DataError(f"{path}: mask has colour content; expected an 8-bit index mask (0 background, 1, 2)")
            mask = colour[..., 0]
    if mask.ndim != 2:
        raise DataError(f"{path}: mask must be 2-D, got shape {mask.shape}")
    allowed = LABEL_VALUES[dataset]
    values = np.unique(mask)
    unknown = [int(v) for v in values if v not in allowed]
    if unknown:
        raise DataError(f"{path}: unknown label values {unknown[:10]}; expected a subset of {list(allowed)}")
    return mask.astype(np.uint8)


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
            return np.asarray(picture)  # "P" mode gives palette indices, which is what index masks need
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image: {exc}") from exc


def squeeze_slices(array: np.ndarray) -> np.ndarray:
    """Drop leading singleton axes (a 2-D slice stored as a 1-slice volume)."""
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    return array


@dataclass(frozen=True)
class Conversion:
    """What reading did to an image beyond decoding it, as one aggregatable phrase (``what`` names no file).

    ``lossy``: content was dropped or mixed, or intensities rescaled by a guess (a warning for the user);
    otherwise it is the documented normalisation or a lossless change (a note).
    """

    what: str
    lossy: bool


def grey_channel(array: np.ndarray, path: Path) -> np.ndarray:
    return grey_converted(array, path)[0]


def grey_converted(array: np.ndarray, path: Path) -> tuple[np.ndarray, Conversion | None]:
    """One grey channel ``(H, W)`` from ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with C <= 4, and what it did.

    Identical channels (FUGC's RGB PNGs, PSFH's three slices) give the channel itself; of 4 the 4th is dropped
    (read as alpha), of 2 the 2nd; 3 channels that differ are mixed with ITU-R 601 luma weights.
    """
    if array.ndim == 2:
        return array, None
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 2-D image, got shape {array.shape}")
    if array.shape[-1] <= 4:
        channels, kind = np.moveaxis(array, -1, 0), "channels"
    elif array.shape[0] <= 4:
        channels, kind = array, "slices"  # a MetaImage (z, y, x) stack
    else:
        raise DataError(f"{path}: expected a 2-D image or a few identical channels/slices, got shape {array.shape}")
    kept = channels[:3] if len(channels) in (3, 4) else channels[:1]
    said = []
    if len(kept) < len(channels) and not np.all(channels[len(kept) :] == kept[:1]):
        dropped = "the 4th dropped (read as alpha)" if len(channels) == 4 else "the 2nd dropped (one is used)"
        said.append(f"{len(channels)} {kind}: {dropped}")
    if len(kept) == 1 or np.all(kept == kept[:1]):
        grey = kept[0]
    else:
        luma = np.tensordot(_LUMA, kept.astype(np.float64), axes=1)
        grey = np.round(luma).astype(array.dtype) if array.dtype.kind in "ui" else luma  # keep the bit depth's scale
        said.append(f"3 different {kind} mixed to grey with colour weights (ITU-R 601 luma 0.299, 0.587, 0.114)")
    return grey, Conversion("; ".join(said), lossy=True) if said else None


def unit_float(array: np.ndarray, path: Path) -> np.ndarray:
    return unit_float_converted(array, path)[0]


def unit_float_converted(array: np.ndarray, path: Path) -> tuple[np.ndarray, Conversion | None]:
    """float32 in [0, 1]: 8/16-bit by their full range, floats already in [0, 1] as they are, anything else
    min-max per image (which makes intensities incomparable across images: a lossy conversion)."""
    if array.size == 0:
        raise DataError(f"{path}: image is empty")
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32), None
    if array.dtype == np.uint16:
        return (array / 65535.0).astype(np.float32), Conversion("16-bit, scaled by 1/65535", lossy=False)
    values = array.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0 and array.dtype.kind == "f":
        return values.astype(np.float32), Conversion(f"{array.dtype} values in [0, 1], used as they are", lossy=False)
    scaled = ((values - low) / max(high - low, 1e-12)).astype(np.float32)
    return scaled, Conversion(f"{array.dtype} values min-max scaled to [0, 1] per image", lossy=True)


def row_col_spacing(spacing: tuple[float, ...]) -> tuple[float, float] | None:
    """mm per pixel ``(row, col)`` from a header's spacing (its last two axes); None when it has fewer."""
    return (float(spacing[-2]), float(spacing[-1])) if len(spacing) >= 2 else None


def _listing(folder: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """``{stem: path}`` of the data files in ``folder`` sorted by stem; hidden files (``._0001.png`` from
    macOS archives) are skipped. Missing or empty folders and duplicate stems are errors."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder is missing")
    suffixes = tuple(suffixes)
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in files:
            raise DataError(f"{path}: two files share the stem {path.stem!r} (also {files[path.stem].name})")
        files[path.stem] = path
    if not files:
        raise DataError(f"{folder}: folder has no {'/'.join(suffixes)} files")
    return dict(sorted(files.items()))
