from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdc_ray.data import DataError, read_fugc, read_psfh

# ------------------------------------------------------------------------------------------------ FUGC


def test_fugc_reads_both_subsets_with_unique_keys(fugc_root: Path) -> None:
    labeled, unlabeled = read_fugc(fugc_root)
    assert [s.key for s in labeled] == [f"fugc/labeled/{i:04d}" for i in range(1, 6)]
    assert [s.key for s in unlabeled] == [f"fugc/unlabeled/{i:04d}" for i in range(1, 5)]
    for sample in labeled:
        assert sample.image.shape == sample.mask.shape == (24, 40)
        assert sample.image.dtype == np.float32 and sample.mask.dtype == np.uint8
        assert set(np.unique(sample.mask)) == {0, 1, 2} and sample.spacing is None
    grey = np.asarray(Image.open(fugc_root / "train" / "unlabeled_data" / "images" / "0002.png"))[..., 0]
    np.testing.assert_allclose(unlabeled[1].image, grey / 255.0, atol=1e-7)
    assert all(s.mask is None for s in unlabeled)


def test_fugc_accepts_the_train_folder_itself(fugc_root: Path) -> None:
    assert [s.key for s in read_fugc(fugc_root / "train")[0]] == [s.key for s in read_fugc(fugc_root)[0]]


def test_fugc_palette_and_rgb_masks_are_read_as_indices(fugc_root: Path) -> None:
    labels = fugc_root / "train" / "labeled_data" / "labels"
    mask = np.asarray(Image.open(labels / "0001.png"))
    palette = Image.fromarray(mask).convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(labels / "0001.png")
    Image.fromarray(np.stack([mask] * 3, axis=-1)).save(labels / "0002.png")
    labeled, _ = read_fugc(fugc_root)
    np.testing.assert_array_equal(labeled[0].mask, mask)
    np.testing.assert_array_equal(labeled[1].mask, mask)


def _expect(root: Path, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        read_fugc(root)


def test_fugc_missing_mask(fugc_root: Path) -> None:
    (fugc_root / "train" / "labeled_data" / "labels" / "0003.png").unlink()
    _expect(fugc_root, r"images/0003\.png: labelled image has no mask")


def test_fugc_orphan_label(fugc_root: Path) -> None:
    (fugc_root / "train" / "labeled_data" / "images" / "0004.png").unlink()
    _expect(fugc_root, r"labels/0004\.png: label without an image")


def test_fugc_size_mismatch(fugc_root: Path) -> None:
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(fugc_root / "train" / "labeled_data" / "labels" / "0002.png")
    _expect(fugc_root, r"labels/0002\.png: mask is 10x10 but its image .*0002\.png is 24x40")


def test_fugc_unknown_label_value(fugc_root: Path) -> None:
    mask = np.zeros((24, 40), np.uint8)
    mask[0, :3] = [1, 2, 255]
    Image.fromarray(mask).save(fugc_root / "train" / "labeled_data" / "labels" / "0005.png")
    _expect(fugc_root, r"labels/0005\.png: unknown label values \[255\]")


def test_fugc_corrupt_image(fugc_root: Path) -> None:
    (fugc_root / "train" / "unlabeled_data" / "images" / "0003.png").write_bytes(b"not a png")
    _expect(fugc_root, r"unlabeled_data/images/0003\.png: cannot read image")


def test_fugc_empty_or_missing_folders(fugc_root: Path, tmp_path: Path) -> None:
    unlabeled = fugc_root / "train" / "unlabeled_data" / "images"
    for path in unlabeled.iterdir():
        path.unlink()
    (unlabeled / "._0001.png").write_bytes(b"macOS resource fork")  # hidden files do not count
    _expect(fugc_root, r"unlabeled_data/images: folder has no")
    (unlabeled / "._0001.png").unlink()
    unlabeled.rmdir()
    _expect(fugc_root, r"unlabeled_data/images: folder is missing")
    _expect(tmp_path / "nowhere", r"nowhere: FUGC root folder does not exist")
    (tmp_path / "other").mkdir()
    _expect(tmp_path / "other", r"other: no FUGC layout here")


# ------------------------------------------------------------------------------------------------ PSFH


def test_psfh_reads_one_slice_and_row_col_spacing(psfh_root: Path) -> None:
    samples = read_psfh(psfh_root)
    assert [s.key for s in samples] == [f"psfh/{3001 + i:05d}" for i in range(6)]
    for sample in samples:
        assert sample.image.shape == sample.mask.shape == (20, 28)
        assert sample.image.dtype == np.float32 and 0.0 <= sample.image.min() <= sample.image.max() <= 1.0
        assert sample.spacing == pytest.approx((0.3, 0.2))  # file spacing x=0.2, y=0.3 -> (row, col)
        assert set(np.unique(sample.mask)) == {0, 1, 2}


def test_psfh_errors_name_the_file(tmp_path: Path, fx) -> None:
    root = fx.make_psfh(tmp_path / "psfh", n=3)
    (root / "label_mha" / "03002.mha").unlink()
    with pytest.raises(DataError, match=r"image_mha/03002\.mha: image has no label"):
        read_psfh(root)
    fx.write_mha(root / "label_mha" / "03002.mha", np.full((20, 28), 3, np.uint8), (0.2, 0.3))
    with pytest.raises(DataError, match=r"label_mha/03002\.mha: unknown label values \[3\]"):
        read_psfh(root)
    fx.write_mha(root / "label_mha" / "03002.mha", np.zeros((20, 20), np.uint8), (0.2, 0.3))
    with pytest.raises(DataError, match=r"label_mha/03002\.mha: mask is 20x20 but its image .* is 20x28"):
        read_psfh(root)
    (root / "label_mha" / "03002.mha").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"label_mha/03002\.mha: not a MetaImage"):
        read_psfh(root)
    with pytest.raises(DataError, match=r"missing: PSFH root folder does not exist"):
        read_psfh(tmp_path / "missing")
    with pytest.raises(DataError, match=r"image_mha: folder is missing"):
        read_psfh(tmp_path)
