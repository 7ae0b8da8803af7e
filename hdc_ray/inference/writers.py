"""Masks in the input's convention (8-bit index PNG, or ``.mha`` with the image's geometry), probabilities, overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdc_ray.data.mha import MhaGeometry, write_mha

# Class colours of the overlays (index = label value; background is not painted): clear on grey B-mode.
PALETTE = np.array([[0, 0, 0], [255, 64, 64], [64, 160, 255], [255, 210, 0], [64, 220, 120]], dtype=np.float32)
OVERLAY_ALPHA = 0.45


def write_mask(path: Path, mask: np.ndarray, geometry: MhaGeometry | None) -> None:
    """``.mha``: the uint8 mask with the image's ``geometry`` (spacing, origin, direction; defaults when None),
    so it overlays the image in any viewer; anything else: an 8-bit greyscale PNG of class indices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mha":
        write_mha(path, mask.astype(np.uint8), geometry=geometry)
        return
    from PIL import Image

    Image.fromarray(mask.astype(np.uint8)).save(path)  # uint8 (H, W): mode "L"


def write_probabilities(path: Path, probabilities: np.ndarray) -> None:
    """nnU-Net's ``--save_probabilities`` file: ``probabilities``, float32 ``(K, H, W)``, classes first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, probabilities=probabilities.astype(np.float32, copy=False))


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)``: the grey image with each foreground class blended in its colour."""
    grey = np.repeat((np.clip(image, 0.0, 1.0) * 255.0)[..., None], 3, axis=-1)
    colours = PALETTE[np.minimum(mask, len(PALETTE) - 1)]
    painted = mask > 0
    grey[painted] = (1.0 - OVERLAY_ALPHA) * grey[painted] + OVERLAY_ALPHA * colours[painted]
    return np.round(grey).astype(np.uint8)


def write_overlay(path: Path, image: np.ndarray, mask: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(overlay(image, mask)).save(path)
