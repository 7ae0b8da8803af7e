"""What ``hdc-ray predict`` reads: a folder of images, or a dataset root in the FUGC or PSFH layout.

Each input image knows where its mask goes, in the input's own convention:

- a plain folder: ``OUT/<stem>.png`` (8-bit class indices) for PNG/JPEG/BMP/TIFF, ``OUT/<stem>.mha`` (the
  image's spacing, origin and direction) for MetaImage files. nnU-Net input names (every file ending in the
  channel suffix ``_0000``: ``case_0000.png``) give masks named by case (``OUT/case.png``), as nnU-Net's own;
- FUGC (``train/labeled_data/images/0001.png``, ...): the same path with ``images`` -> ``labels``
  (``OUT/train/labeled_data/labels/0001.png``): an 8-bit index PNG with the image's stem;
- PSFH (``image_mha/03001.mha``): ``OUT/label_mha/03001.mha`` with the image's geometry.

Reading converts what it can and says what it did (``Picture.conversions``): lossless or documented steps
(16-bit scaled by its full range, an opaque alpha channel dropped, palette/CMYK to RGB) are notes; steps that
drop or mix content or guess a scale (colour or differing slices mixed to grey, a 4th slice dropped, floats
min-max scaled) are warnings. It refuses the rest, naming the file: corrupt files, transparent images,
multi-frame files, volumes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hdc_ray.data.errors import DataError
from hdc_ray.data.mha import MhaGeometry, read_mha_image
from hdc_ray.data.readers import IMAGE_SUFFIXES, Conversion, grey_converted, squeeze_slices, unit_float_converted

MHA_SUFFIXES = (".mha", ".mhd")
NNUNET_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")  # nnU-Net: CASE_XXXX.ext, XXXX the channel
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
    nnunet_names: bool = False  # masks named by case: the channel suffix _0000 stripped
    warnings: tuple[str, ...] = ()  # about the listing itself (e.g. names that might be nnU-Net channels)

    @property
    def task(self) -> str | None:
        """The task the layout implies (FUGC: cervix, PSFH: psfh); a plain folder implies none."""
        return LAYOUT_TASK[self.layout]

    def describe(self) -> str:
        what = {"folder": "a folder of images", "fugc": "a FUGC dataset root", "psfh": "a PSFH dataset root"}[self.layout]
        if self.nnunet_names:
            first = self.images[0]
            what += f"; nnU-Net names: masks named by case, {first.path.name} -> {first.mask_rel}"
        return f"{len(self.images)} image(s) in {self.root} ({what})"


@dataclass(frozen=True)
class Picture:
    """One decoded image: float32 ``(H, W)`` in [0, 1] (the network's normalisation) and what reading did."""

    image: np.ndarray
    geometry: MhaGeometry | None  # the 2-D plane's spacing, origin, direction (ITK order); MetaImage only
    conversions: tuple[Conversion, ...] = ()  # empty when the file was used as it is


def discover(path: str | Path) -> InputSet:
    """List INPUT without decoding anything: refuse a missing or empty input before any work starts."""
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"{path}: no such file or folder")
    if root.is_file():
        if root.suffix.lower() not in (*IMAGE_SUFFIXES, *MHA_SUFFIXES):
            raise InputError(f"{path}: not an image file (expected {'/'.join(IMAGE_SUFFIXES + MHA_SUFFIXES)})")
        return _plain_set(root.parent, [root])
    for train in (root / "train", root):
        if (train / "labeled_data").is_dir() or (train / "unlabeled_data").is_dir():
            return InputSet(root, "fugc", _fugc(root, train))
    if (root / "image_mha").is_dir():
        images = _listed(root / "image_mha", MHA_SUFFIXES)
        return InputSet(root, "psfh", tuple(InputImage(p, Path("label_mha") / f"{p.stem}.mha", str(p.relative_to(root))) for p in images))
    return _plain_set(root, _listed(root, (*IMAGE_SUFFIXES, *MHA_SUFFIXES)))


def _plain_set(root: Path, files: Sequence[Path]) -> InputSet:
    cases, warning = case_names(files)
    images = []
    for path in files:
        suffix = ".mha" if path.suffix.lower() in MHA_SUFFIXES else ".png"
        images.append(InputImage(path, Path(f"{cases[path]}{suffix}"), str(path.relative_to(root))))
    nnunet = any(cases[p] != p.stem for p in files)
    return InputSet(root, "folder", tuple(images), nnunet, (warning,) if warning else ())


def case_names(files: Sequence[Path]) -> tuple[dict[Path, str], str | None]:
    """The name each image's mask takes, and a warning when the names are ambiguous.

    nnU-Net names its inputs ``CASE_XXXX.ext`` (XXXX: the channel) and its outputs ``CASE.ext``. When every
    file ends in ``_0000`` (one channel, what these models take) the masks are named by case. Otherwise the
    stems are kept: a folder where only some names end in four digits, or in other numbers, may be a numbered
    series (``frame_0000``, ``frame_0001``) as well as several nnU-Net channels of one case.
    """
    matches = {p: NNUNET_CHANNEL.match(p.stem) for p in files}
    if all(m is not None and m["channel"] == "0000" for m in matches.values()):
        return {p: m["case"] for p, m in matches.items() if m is not None}, None
    stems = {p: p.stem for p in files}
    channels = sorted(p.name for p, m in matches.items() if m is not None)
    if any(m is not None and m["channel"] == "0000" for m in matches.values()) and len(channels) > 1:
        shown = ", ".join(channels[:2])
        return stems, (f"file names end in 4-digit numbers ({shown}, ...) but not all in _0000: each file is read as its own image and "
                       "its mask keeps its name; if these are nnU-Net channels of one case, give only the _0000 files")  # fmt: skip
    return stems, None


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
    """Decode one input image to the network's normalisation, converting what it can and saying what it did."""
    if path.suffix.lower() in MHA_SUFFIXES:
        return _read_mha(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            frames = getattr(picture, "n_frames", 1)
            if frames > 1:
                raise InputError(f"{path}: has {frames} frames; give one 2-D image per file")
            picture.load()
            array, mode_change = _pixels(picture, path)
    except InputError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the image (corrupt or not an image): {' '.join(str(exc).split())}") from None
    return _normalised(array, path, None, (mode_change,))


def _normalised(array: np.ndarray, path: Path, geometry: MhaGeometry | None, done: tuple[Conversion | None, ...]) -> Picture:
    """The grey [0, 1] picture (``readers``' own conversions, so training and prediction agree) and every step taken."""
    grey, mixed = grey_converted(array, path)
    image, scaled = unit_float_converted(grey, path)
    return Picture(image, geometry, tuple(c for c in (*done, mixed, scaled) if c is not None))


def _pixels(picture: object, path: Path) -> tuple[np.ndarray, Conversion | None]:
    """Pixels of a PIL image as numpy, after the mode changes hdc-ray accepts (and which one, if any)."""
    from PIL import Image

    assert isinstance(picture, Image.Image)
    mode = picture.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(picture.getchannel("A"))
        if alpha.min() < 255:
            raise InputError(f"{path}: 4-channel ({mode}) image with transparency refused: the hidden pixels have no defined grey level; "
                             "flatten it onto a background first")  # fmt: skip
        rgb = picture.convert("RGB" if mode in ("RGBA", "RGBa", "PA") else "L")
        return np.asarray(rgb), Conversion(f"{mode}: fully opaque alpha channel dropped", lossy=False)
    if mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        target = "grey" if mode == "1" else "RGB"
        return np.asarray(picture.convert("L" if mode == "1" else "RGB")), Conversion(f"{mode} converted to {target}", lossy=False)
    array = np.asarray(picture)
    if mode.startswith("I;16") or (mode == "I" and array.min() >= 0 and array.max() <= 65535):
        return array.astype(np.uint16), None  # PNGs with 16-bit content often open as 32-bit "I": the same values
    return array, None


def _read_mha(path: Path) -> Picture:
    array, geometry = read_mha_image(path)
    array = squeeze_slices(array)
    if array.ndim == 3 and min(array.shape) > 4:
        raise InputError(f"{path}: a 3-D volume {array.shape}; give 2-D images (or the PSFH layout's 3 identical slices)")
    return _normalised(array, path, geometry.plane() if geometry.ndim > 2 else geometry, ())
