"""What ``hdc-ray predict`` reads: a folder of images, or a dataset root in the FUGC or PSFH layout.

Each input image knows where its mask goes, in the input's own convention:

- a plain folder: ``OUT/<stem>.png`` (8-bit class indices) for PNG/JPEG/BMP/TIFF, ``OUT/<stem>.mha`` (the
  image's spacing) for MetaImage files;
- FUGC (``train/labeled_data/images/0001.png``, ...): the same path with ``images`` -> ``labels``
  (``OUT/train/labeled_data/labels/0001.png``): an 8-bit index PNG with the image's stem;
- PSFH (``image_mha/03001.mha``): ``OUT/label_mha/03001.mha`` with the image's spacing.

Reading converts what it safely can and says so (16-bit scaled by its full range, an opaque alpha channel
dropped, palette/CMYK to RGB, colour to grey) and refuses the rest, naming the file: corrupt files,
transparent images, multi-frame files, volumes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hdc_ray.data.errors import DataError
from hdc_ray.data.mha import read_mha
from hdc_ray.data.readers import IMAGE_SUFFIXES, grey_channel, row_col_spacing, squeeze_slices, unit_float

MHA_SUFFIXES = (".mha", ".mhd")
Layout = Literal["folder", "fugc", "psfh"]
LAYOUT_TASK: dict[str, str | None] = {"folder": None, "fugc": "cervix", "psfh": "psfh"}


class InputError(DataError):
    """INPUT is missing, empty, or holds an image that cannot be read or converted; the message names it."""


@dataclass(frozen=True)
class InputImage:
    path: Path
    mask_rel: Path  # where its mask goes, relative to OUT (suffix included)
    key: str  # the image's path relative to INPUT: a name for tables and messages

    @property
    def is_mha(self) -> bool:
        return self.path.suffix.lower() in MHA_SUFFIXES


@dataclass(frozen=True)
class InputSet:
    root: Path
    layout: Layout
    images: tuple[InputImage, ...]

    @property
    def task(self) -> str | None:
        """The task the layout implies (FUGC: cervix, PSFH: psfh); a plain folder implies none."""
        return LAYOUT_TASK[self.layout]

    def describe(self) -> str:
        what = {"folder": "a folder of images", "fugc": "a FUGC dataset root", "psfh": "a PSFH dataset root"}[self.layout]
        return f"{len(self.images)} image(s) in {self.root} ({what})"


@dataclass(frozen=True)
class Picture:
    """One decoded image: float32 ``(H, W)`` in [0, 1] (the network's normalisation) and what reading did."""

    image: np.ndarray
    spacing: tuple[float, float] | None  # (row, col) mm per pixel, MetaImage only
    conversion: str | None  # e.g. "16-bit, scaled by 1/65535"; None when nothing was converted


def discover(path: str | Path) -> InputSet:
    """List INPUT without decoding anything: refuse a missing or empty input before any work starts."""
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"{path}: no such file or folder")
    if root.is_file():
        if root.suffix.lower() not in (*IMAGE_SUFFIXES, *MHA_SUFFIXES):
            raise InputError(f"{path}: not an image file (expected {'/'.join(IMAGE_SUFFIXES + MHA_SUFFIXES)})")
        return InputSet(root.parent, "folder", (_plain(root, root.parent),))
    for train in (root / "train", root):
        if (train / "labeled_data").is_dir() or (train / "unlabeled_data").is_dir():
            return InputSet(root, "fugc", _fugc(root, train))
    if (root / "image_mha").is_dir():
        images = _listed(root / "image_mha", MHA_SUFFIXES)
        return InputSet(root, "psfh", tuple(InputImage(p, Path("label_mha") / f"{p.stem}.mha", str(p.relative_to(root))) for p in images))
    files = _listed(root, (*IMAGE_SUFFIXES, *MHA_SUFFIXES))
    return InputSet(root, "folder", tuple(_plain(p, root) for p in files))


def _plain(path: Path, root: Path) -> InputImage:
    suffix = ".mha" if path.suffix.lower() in MHA_SUFFIXES else ".png"
    return InputImage(path, Path(f"{path.stem}{suffix}"), str(path.relative_to(root)))


def _fugc(root: Path, train: Path) -> tuple[InputImage, ...]:
    """Every image of ``labeled_data/images`` and ``unlabeled_data/images``; masks go to ``.../labels/<stem>.png``."""
    found = []
    for subset in ("labeled_data", "unlabeled_data"):
        folder = train / subset / "images"
        if folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):  # an empty subset is no error
            for p in _listed(folder, IMAGE_SUFFIXES):
                rel = p.relative_to(root)
                found.append(InputImage(p, rel.parent.parent / "labels" / f"{p.stem}.png", str(rel)))
    if not found:
        raise InputError(f"{root}: a FUGC layout without images (expected {train}/labeled_data/images/*.png or {train}/unlabeled_data/images/*.png)")
    return tuple(found)


def _listed(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Image files of one folder, sorted; hidden files skipped. Empty folders and shared stems are refused."""
    suffixes = tuple(suffixes)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)
    if not files:
        subfolders = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        hint = f"; it has sub-folders ({', '.join(sorted(subfolders)[:4])}): point INPUT at the one holding the images" if subfolders else ""
        raise InputError(f"{folder}: no images to segment (looked for {'/'.join(suffixes)} files){hint}")
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise InputError(f"{p}: shares its stem with {stems[p.stem].name}, so both masks would be {p.stem}.png; rename one")
        stems[p.stem] = p
    return files


# --------------------------------------------------------------------------------------------- reading


def read_picture(path: Path) -> Picture:
    """Decode one input image to the network's normalisation, converting what is safe and saying so."""
    if path.suffix.lower() in MHA_SUFFIXES:
        return _read_mha(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            frames = getattr(picture, "n_frames", 1)
            if frames > 1:
                raise InputError(f"{path}: has {frames} frames; give one 2-D image per file")
            picture.load()
            array, conversion = _pixels(picture, path)
    except InputError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the image (corrupt or not an image): {' '.join(str(exc).split())}") from None
    return Picture(unit_float(grey_channel(array, path), path), None, conversion)


def _pixels(picture: object, path: Path) -> tuple[np.ndarray, str | None]:
    """Pixels of a PIL image as numpy, after the conversions hdc-ray accepts (and a note of which)."""
    from PIL import Image

    assert isinstance(picture, Image.Image)
    mode = picture.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(picture.getchannel("A"))
        if alpha.min() < 255:
            raise InputError(f"{path}: 4-channel ({mode}) image with transparency refused: the hidden pixels have no defined grey level; "
                             "flatten it onto a background first")  # fmt: skip
        rgb = picture.convert("RGB" if mode in ("RGBA", "RGBa", "PA") else "L")
        return np.asarray(rgb), f"{mode}: fully opaque alpha channel dropped"
    if mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        return np.asarray(picture.convert("L" if mode == "1" else "RGB")), f"{mode} converted to {'grey' if mode == '1' else 'RGB'}"
    array = np.asarray(picture)
    if mode.startswith("I;16"):
        return array.astype(np.uint16), "16-bit, scaled by 1/65535"
    if mode == "I":  # 32-bit integers: PNGs with 16-bit content often open this way
        if array.min() >= 0 and array.max() <= 65535:
            return array.astype(np.uint16), "16-bit, scaled by 1/65535"
        return array, "32-bit integers, min-max scaled"
    if mode == "F":
        return array, "32-bit float, min-max scaled" if array.min() < 0 or array.max() > 1 else "32-bit float in [0, 1]"
    if array.ndim == 3 and array.shape[-1] == 3 and not np.all(array == array[..., :1]):
        return array, "colour, converted to grey (ITU-R 601 luma)"
    return array, None


def _read_mha(path: Path) -> Picture:
    array, spacing3 = read_mha(path)
    array = squeeze_slices(array)
    if array.ndim == 3 and min(array.shape) > 4:
        raise InputError(f"{path}: a 3-D volume {array.shape}; give 2-D images (or the PSFH layout's 3 identical slices)")
    conversion = "16-bit, scaled by 1/65535" if array.dtype == np.uint16 else None
    return Picture(unit_float(grey_channel(array, path), path), row_col_spacing(spacing3), conversion)
