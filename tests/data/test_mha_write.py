"""``write_mha``: what ``read_mha`` and SimpleITK read back (array, spacing, origin, direction, dtype)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hdc_ray.data import MhaGeometry, read_mha, read_mha_image, write_mha

# A rotation that is not its own transpose, so a row/column mix-up in TransformMatrix shows.
ROTATED_2D = MhaGeometry((0.3, 0.2), (12.5, -4.0), (0.6, -0.8, 0.8, 0.6))
PERMUTED_3D = MhaGeometry((0.25, 0.5, 1.0), (1.0, 2.0, 3.0), (0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0))


def _flat(spacing: tuple[float, ...], origin: tuple[float, ...], direction: tuple[float, ...]) -> list[float]:
    return [*spacing, *origin, *direction]


def _sitk_geometry(image: object) -> list[float]:
    return _flat(image.GetSpacing(), image.GetOrigin(), image.GetDirection())  # type: ignore[attr-defined]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_write_then_read_gives_the_array_and_spacing_back(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(5 * 7).reshape(5, 7) % 251).astype(dtype)
    path = write_mha(tmp_path / "a.mha", array, (0.2, 0.35))
    back, spacing = read_mha(path)
    assert back.dtype == array.dtype and np.array_equal(back, array) and spacing == pytest.approx((0.2, 0.35))
    assert read_mha_image(path)[1] == MhaGeometry((0.35, 0.2), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("geometry", [ROTATED_2D, PERMUTED_3D], ids=["2d", "3d"])
def test_origin_and_direction_survive_a_round_trip(tmp_path: Path, geometry: MhaGeometry) -> None:
    shape = (4, 6) if geometry.ndim == 2 else (2, 4, 6)
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    back, read = read_mha_image(write_mha(tmp_path / "g.mha", array, geometry=geometry))
    assert np.array_equal(back, array) and read == geometry


@pytest.mark.parametrize("geometry", [ROTATED_2D, PERMUTED_3D], ids=["2d", "3d"])
def test_simpleitk_agrees_on_origin_and_direction_both_ways(tmp_path: Path, geometry: MhaGeometry) -> None:
    sitk = pytest.importorskip("SimpleITK")
    shape = (4, 6) if geometry.ndim == 2 else (2, 4, 6)
    array = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    ours = sitk.ReadImage(str(write_mha(tmp_path / "ours.mha", array, geometry=geometry)))
    assert np.array_equal(sitk.GetArrayFromImage(ours), array)
    assert _sitk_geometry(ours) == pytest.approx(_flat(geometry.spacing, geometry.origin, geometry.direction))
    theirs = sitk.GetImageFromArray(array)
    theirs.SetSpacing(geometry.spacing), theirs.SetOrigin(geometry.origin), theirs.SetDirection(geometry.direction)
    sitk.WriteImage(theirs, str(tmp_path / "theirs.mha"))
    read = read_mha_image(tmp_path / "theirs.mha")[1]
    assert _flat(read.spacing, read.origin, read.direction) == pytest.approx(_sitk_geometry(theirs))


def test_the_plane_of_a_3d_geometry_is_what_a_simpleitk_slice_keeps(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    geometry = MhaGeometry((0.25, 0.5, 1.0), (1.0, 2.0, 3.0), (0.6, -0.8, 0.0, 0.8, 0.6, 0.0, 0.0, 0.0, 1.0))
    volume = sitk.ReadImage(str(write_mha(tmp_path / "v.mha", np.zeros((3, 4, 6), np.uint8), geometry=geometry)))
    plane = volume[:, :, 0]
    ours = geometry.plane()
    assert _flat(ours.spacing, ours.origin, ours.direction) == pytest.approx(_sitk_geometry(plane))
    assert geometry.plane().row_col_spacing == (0.5, 0.25)


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
    with pytest.raises(ValueError, match="does not match a 3-D array"):
        write_mha(tmp_path / "d.mha", np.zeros((2, 2, 2), np.uint8), geometry=ROTATED_2D)
    with pytest.raises(ValueError, match="not both"):
        write_mha(tmp_path / "e.mha", np.zeros((2, 2), np.uint8), (1.0, 1.0), geometry=ROTATED_2D)
