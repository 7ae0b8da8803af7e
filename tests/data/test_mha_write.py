"""``write_mha``: what ``read_mha`` and SimpleITK read back (array, spacing, dtype)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hdc_ray.data import read_mha, write_mha


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_write_then_read_gives_the_array_and_spacing_back(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(5 * 7).reshape(5, 7) % 251).astype(dtype)
    path = write_mha(tmp_path / "a.mha", array, (0.2, 0.35))
    back, spacing = read_mha(path)
    assert back.dtype == array.dtype and np.array_equal(back, array) and spacing == pytest.approx((0.2, 0.35))
    assert not list(tmp_path.glob(".*.tmp"))


def test_simpleitk_reads_what_write_mha_writes(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    volume = np.random.default_rng(0).integers(0, 255, (3, 4, 6), dtype=np.uint8)
    image = sitk.ReadImage(str(write_mha(tmp_path / "v.mha", volume, (1.0, 0.5, 0.25))))
    assert np.array_equal(sitk.GetArrayFromImage(image), volume) and image.GetSpacing() == pytest.approx((0.25, 0.5, 1.0))


def test_write_mha_refuses_what_metaimage_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2-D or 3-D"):
        write_mha(tmp_path / "b.mha", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="spacing"):
        write_mha(tmp_path / "c.mha", np.zeros((2, 2), np.uint8), (1.0,))
