"""Tiny on-disk fixtures in the exact public formats: FUGC PNG layout, PSFH MetaImage layout.

``write_mha`` is a deliberately independent MetaImage writer (header lines + raw/zlib data), so reader
tests do not depend on SimpleITK; where SimpleITK is importable the same fixtures are also written by it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

_MET = {np.dtype("u1"): "MET_UCHAR", np.dtype("i2"): "MET_SHORT", np.dtype("u2"): "MET_USHORT", np.dtype("f4"): "MET_FLOAT"}


def write_mha(path: Path, array: np.ndarray, spacing_xyz: tuple[float, ...], compressed: bool = False, msb: bool = False) -> None:
    """Write ``array`` (numpy order, e.g. (z, y, x)) with ``ElementSpacing`` given in file order (x, y, z)."""
    data = array.astype(array.dtype.newbyteorder(">" if msb else "<")).tobytes()
    if compressed:
        data = zlib.compress(data)
    lines = [
        "ObjectType = Image",
        f"NDims = {array.ndim}",
        "BinaryData = True",
        f"BinaryDataByteOrderMSB = {msb}",
        f"CompressedData = {compressed}",
        *([f"CompressedDataSize = {len(data)}"] if compressed else []),
        "TransformMatrix = " + " ".join("1" if i == j else "0" for i in range(array.ndim) for j in range(array.ndim)),
        "Offset = " + " ".join("0" for _ in range(array.ndim)),
        "ElementSpacing = " + " ".join(str(s) for s in spacing_xyz),
        "DimSize = " + " ".join(str(n) for n in reversed(array.shape)),
        f"ElementType = {_MET[np.dtype(array.dtype.str.lstrip('<>|='))]}",
        "ElementDataFile = LOCAL",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode() + data)


def write_mha_sitk(path: Path, array: np.ndarray, spacing_xyz: tuple[float, ...], compressed: bool = False) -> None:
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing_xyz)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), compressed)


MhaWriter = Callable[..., None]
MHA_WRITERS = {"own": write_mha, "sitk": write_mha_sitk}


def _toy_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w), dtype=np.uint8)


def _toy_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : 3 * w // 4] = 1
    mask[h // 2 : 3 * h // 4, w // 4 : 3 * w // 4] = 2
    return np.roll(mask, int(rng.integers(-2, 3)), axis=1)


def make_fugc(root: Path, n_labeled: int = 5, n_unlabeled: int = 4, h: int = 24, w: int = 40, seed: int = 0) -> Path:
    """``root/train/{labeled,unlabeled}_data/...`` with RGB PNG images of grey content and L-mode masks."""
    rng = np.random.default_rng(seed)
    for subset, n in (("labeled_data", n_labeled), ("unlabeled_data", n_unlabeled)):
        for i in range(1, n + 1):
            grey = _toy_image(rng, h, w)
            (root / "train" / subset / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.stack([grey] * 3, axis=-1)).save(root / "train" / subset / "images" / f"{i:04d}.png")
            if subset == "labeled_data":
                (root / "train" / subset / "labels").mkdir(parents=True, exist_ok=True)
                Image.fromarray(_toy_mask(rng, h, w)).save(root / "train" / subset / "labels" / f"{i:04d}.png")
    return root


def make_psfh(
    root: Path,
    n: int = 6,
    h: int = 20,
    w: int = 28,
    writer: MhaWriter = write_mha,
    spacing_xy: tuple[float, float] = (0.2, 0.3),
    seed: int = 0,
) -> Path:
    """``root/{image,label}_mha/NNNNN.mha``: images (3, h, w) uint8 three identical slices, labels (h, w)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        grey = _toy_image(rng, h, w)
        writer(root / "image_mha" / f"{3001 + i:05d}.mha", np.stack([grey] * 3), (*spacing_xy, 1.0))
        writer(root / "label_mha" / f"{3001 + i:05d}.mha", _toy_mask(rng, h, w), spacing_xy)
    return root


@pytest.fixture
def fugc_root(tmp_path: Path) -> Path:
    return make_fugc(tmp_path / "fugc")


@pytest.fixture(params=sorted(MHA_WRITERS))
def psfh_root(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return make_psfh(tmp_path / "psfh", writer=MHA_WRITERS[request.param])


@pytest.fixture
def fx() -> SimpleNamespace:
    """The writers above, for tests that build their own (often broken) fixtures; a fixture rather than an
    import so the tests work under any pytest import mode."""
    return SimpleNamespace(write_mha=write_mha, write_mha_sitk=write_mha_sitk, make_fugc=make_fugc, make_psfh=make_psfh)
