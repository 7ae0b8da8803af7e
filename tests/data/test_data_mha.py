from __future__ import annotations

import numpy as np
import pytest

from hdc_ray.data import DataError, read_mha


def _volume(dtype: str) -> np.ndarray:
    values = np.arange(3 * 5 * 7).reshape(3, 5, 7) - 20
    if dtype in ("u1", "u2"):
        values = values + 20 + (200 if dtype == "u2" else 0) * 300
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "f4"])
@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("msb", [False, True])
def test_own_writer_roundtrip(tmp_path, fx, dtype: str, compressed: bool, msb: bool) -> None:
    array = _volume(dtype)
    path = tmp_path / "volume.mha"
    fx.write_mha(path, array, (0.5, 0.25, 2.0), compressed=compressed, msb=msb)
    read, spacing = read_mha(path)
    assert read.dtype == np.dtype(dtype) and read.shape == (3, 5, 7)
    np.testing.assert_array_equal(read, array)
    assert spacing == (2.0, 0.25, 0.5)  # numpy axis order (z, y, x): the reverse of ElementSpacing


@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "f4"])
@pytest.mark.parametrize("compressed", [False, True])
def test_matches_simpleitk(tmp_path, dtype: str, compressed: bool) -> None:
    sitk = pytest.importorskip("SimpleITK")
    array = _volume(dtype)
    path = tmp_path / "volume.mha"
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.25, 2.0))
    sitk.WriteImage(image, str(path), compressed)
    read, spacing = read_mha(path)
    reference = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(read, sitk.GetArrayFromImage(reference))
    assert spacing == tuple(reversed(reference.GetSpacing()))


def test_two_d_spacing_is_row_col(tmp_path, fx) -> None:
    fx.write_mha(tmp_path / "label.mha", np.zeros((4, 6), np.uint8), (0.2, 0.3))
    array, spacing = read_mha(tmp_path / "label.mha")
    assert array.shape == (4, 6) and spacing == (0.3, 0.2)


def test_simpleitk_vector_image_gets_a_trailing_channel_axis(tmp_path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    rgb = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.mha"))
    array, spacing = read_mha(tmp_path / "rgb.mha")
    np.testing.assert_array_equal(array, rgb)
    assert spacing == (1.0, 1.0)


def test_corrupt_files_raise_data_errors_naming_the_file(tmp_path, fx) -> None:
    path = tmp_path / "broken.mha"
    fx.write_mha(path, np.zeros((4, 6), np.uint8), (1.0, 1.0))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"broken\.mha.*expected 24 data bytes.*found 19"):
        read_mha(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n not a metaimage")
    with pytest.raises(DataError, match=r"broken\.mha.*not a MetaImage"):
        read_mha(path)
    path.write_text("NDims = 2\nDimSize = 2 2\nElementType = MET_WEIRD\nElementDataFile = LOCAL\n")
    with pytest.raises(DataError, match="unsupported MetaImage ElementType 'MET_WEIRD'"):
        read_mha(path)
    path.write_bytes(b"NDims = 2\nDimSize = 2 2\nElementType = MET_UCHAR\nCompressedData = True\nElementDataFile = LOCAL\nnotzlib")
    with pytest.raises(DataError, match="corrupt compressed"):
        read_mha(path)
    with pytest.raises(DataError, match=r"missing\.mha.*cannot read"):
        read_mha(tmp_path / "missing.mha")
