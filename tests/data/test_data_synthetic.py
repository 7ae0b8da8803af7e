from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from hdc_ray.data import _ultrasound as us
from hdc_ray.data.readers import read_fugc
from hdc_ray.data.synthetic import (
    ACQUISITION,
    CLASS_NAMES,
    PRESETS,
    SyntheticSpec,
    cache_name,
    generate_dataset,
    generate_sample,
    generate_sample_with_clean_map,
    sample_rng,
    speckle_db_std,
    write_fugc_layout,
)

# ------------------------------------------------------------------------------------------- physics


@pytest.mark.parametrize(("looks", "expected"), [(1, 5.57), (2, 3.49)])
def test_fully_developed_speckle_log_std(looks: int, expected: float) -> None:
    intensity = np.full((256, 256), 3.0)
    speckled = us.speckle(intensity, sigma_axial=1.0, sigma_lateral=3.0, looks=looks, rng=np.random.default_rng(0))
    assert speckle_db_std(looks) == pytest.approx(expected, abs=0.01)
    assert us.to_db(speckled).std() == pytest.approx(expected, abs=0.25)
    # The unit-energy PSF keeps the echogenicity: the mean intensity is the input one.
    assert speckled.mean() == pytest.approx(3.0, rel=0.05)


def test_log_compression_maps_speckle_std_into_the_window() -> None:
    speckled = us.speckle(np.ones((256, 256)), 1.0, 2.0, looks=1, rng=np.random.default_rng(1))
    dynamic_range = 50.0
    grey = us.log_compress(speckled, dynamic_range, floor_db=-30.0)  # mean log sits mid-window: no clipping
    assert grey.min() >= 0.0 and grey.max() <= 1.0
    assert grey.std() * dynamic_range == pytest.approx(5.57, abs=0.3)


def test_cumulative_attenuation_shadows_below_but_not_the_structure_itself() -> None:
    extent = np.zeros((10, 3))
    extent[3:5, 1] = 1.0
    shadow = us.cumulative_attenuation([(extent * 10.0, extent)], dr=0.5)  # 10 dB per unit * 2 px * 0.5
    assert shadow[:5, 1].max() == 0.0 and np.allclose(shadow[5:, 1], 10.0)
    assert not shadow[:, [0, 2]].any()


# ------------------------------------------------------------------------------------- images, masks


@pytest.mark.parametrize("task", sorted(CLASS_NAMES))
def test_sample_shapes_ranges_and_black_outside_the_sector(task: str) -> None:
    spec = SyntheticSpec(task, "medium", 64)
    for index in range(3):
        image, mask = generate_sample(spec, sample_rng(7, index))
        # The sector is the first thing drawn from the sample's generator: replay it.
        inside, _ = us.draw_sector(sample_rng(7, index), 64, ACQUISITION).scan_lookup(64)
        assert image.shape == mask.shape == (64, 64)
        assert image.dtype == np.float32 and mask.dtype == np.uint8
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert not image[~inside].any() and not mask[~inside].any()
        assert image[inside].mean() > 0.15 and set(np.unique(mask)) <= {0, 1, 2}


def test_generation_is_deterministic_per_seed_and_index() -> None:
    spec = SyntheticSpec("cervix", "hard", 48)
    a = generate_sample(spec, sample_rng(3, 5))
    b = generate_sample(spec, sample_rng(3, 5))
    c = generate_sample(spec, sample_rng(4, 5))
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].tobytes() != c[0].tobytes() and a[1].tobytes() != c[1].tobytes()


def test_dataset_is_a_prefix_of_a_larger_one_and_start_offsets_it() -> None:
    spec = SyntheticSpec("psfh", "easy", 32)
    images5, masks5 = generate_dataset(spec, 5, seed=1)
    images3, masks3 = generate_dataset(spec, 3, seed=1)
    tail, tail_masks = generate_dataset(spec, 2, seed=1, start=3)
    np.testing.assert_array_equal(images3, images5[:3])
    np.testing.assert_array_equal(masks3, masks5[:3])
    np.testing.assert_array_equal(tail, images5[3:])
    np.testing.assert_array_equal(tail_masks, masks5[3:])
    assert images5.shape == (5, 32, 32) and images5.dtype == np.float32 and masks5.dtype == np.uint8


@pytest.mark.parametrize(("task", "bounds"), [("psfh", [(0.006, 0.02), (0.08, 0.35)]), ("cervix", [(0.035, 0.1), (0.035, 0.1)])])
def test_class_pixel_fractions_are_sensible(task: str, bounds: list[tuple[float, float]]) -> None:
    _, masks = generate_dataset(SyntheticSpec(task, "medium", 96), 16, seed=0)
    for label, (low, high) in enumerate(bounds, start=1):
        fractions = (masks == label).mean(axis=(1, 2))
        assert low < fractions.mean() < high, (task, label, fractions.mean())
        assert (fractions > 0).mean() >= 0.9  # every structure is (almost) always in view


@pytest.mark.parametrize("family", [("easy", "medium", "hard"), ("v1_easy", "v1_medium", "v1_hard")])
def test_presets_order_the_contrast_of_the_structures(family: tuple[str, str, str]) -> None:
    """Lip-vs-tissue contrast in units of the background spread: easy > medium > hard, in both generators."""
    separation = {}
    for difficulty in family:
        images, masks = generate_dataset(SyntheticSpec("cervix", difficulty, 96), 12, seed=2)
        scores = []
        for image, mask in zip(images, masks, strict=True):
            background = image[(mask == 0) & (image > 0)]
            scores.append((image[mask > 0].mean() - background.mean()) / background.std())
        separation[difficulty] = float(np.mean(scores))
    easy, medium, hard = (separation[d] for d in family)
    assert easy > medium > hard > 0.0, separation


# ---------------------------------------------------------------- generator v2: a readable class boundary


def _lip_samples(difficulty: str, n: int = 12, size: int = 64):
    return [generate_sample_with_clean_map(SyntheticSpec("cervix", difficulty, size), sample_rng(0, i)) for i in range(n)]


def _lip_border(mask: np.ndarray) -> np.ndarray:
    anterior, posterior = mask == 1, mask == 2
    return (anterior & ndimage.binary_dilation(posterior)) | (posterior & ndimage.binary_dilation(anterior))


@pytest.mark.parametrize(("difficulty", "darker"), [("medium", True), ("v1_medium", False)])
def test_the_canal_is_darker_than_the_lips_in_the_noise_free_map(difficulty: str, darker: bool) -> None:
    """v2 draws a dark canal on the lip boundary (what a model can see); v1 drew a faint bright line."""
    for index, (image, mask, clean) in enumerate(_lip_samples(difficulty)):
        border = _lip_border(mask)
        interior = (mask > 0) & ~ndimage.binary_dilation(border, iterations=2)
        gap = float(clean[interior].mean() - clean[border].mean())  # dB
        assert (gap > 3.0) if darker else (gap < 0.0), (difficulty, gap)
        inside, _ = us.draw_sector(sample_rng(0, index), 64, ACQUISITION).scan_lookup(64)
        assert clean.shape == image.shape and not clean[~inside].any()  # 0 outside the sector, as the image


def test_lip_thickness_in_pixels_follows_the_preset() -> None:
    """Each lip's thickest point (twice its largest inscribed radius) at 64 px: in the configured lip_b
    range (the taper makes one end up to 35% thicker), and ~2-3 px more than the thin v1 lips."""
    thickness = {}
    for difficulty in ("medium", "v1_medium"):
        low, high = (b * 64 for b in PRESETS[difficulty]["lip_b"])
        values = [2.0 * ndimage.distance_transform_edt(mask == lip).max() for _, mask, _ in _lip_samples(difficulty) for lip in (1, 2)]
        assert low - 1.0 <= min(values) and max(values) <= 1.35 * high + 1.0, (difficulty, low, high, values)
        thickness[difficulty] = float(np.median(values))
    assert thickness["medium"] >= 7.5 and thickness["medium"] - thickness["v1_medium"] >= 1.5, thickness


def test_the_lips_differ_in_echogenicity_by_the_preset() -> None:
    gaps = []
    for _, mask, clean in _lip_samples("medium"):
        far = ~ndimage.binary_dilation(_lip_border(mask), iterations=2)
        gaps.append(abs(float(clean[(mask == 1) & far].mean() - clean[(mask == 2) & far].mean())))
    low, high = PRESETS["medium"]["lip_delta_db"]
    assert low - 0.5 <= min(gaps) and max(gaps) <= high + 0.5, gaps


def test_the_small_pubic_symphysis_is_learnable_at_64_px() -> None:
    """~1% of the pixels as in PSFH, but every image shows at least 30 px of it, 4+ px across."""
    _, masks = generate_dataset(SyntheticSpec("psfh", "medium", 64), 24, seed=0)
    pixels = (masks == 1).sum(axis=(1, 2))
    across = [2.0 * ndimage.distance_transform_edt(m == 1).max() for m in masks]
    assert pixels.min() >= 30 and 0.007 < pixels.mean() / 64**2 < 0.015, pixels
    assert min(across) >= 4.0, across


def test_v1_presets_are_the_first_generator() -> None:
    """The thin-lip v1 look: equal lips, bright canal, the old symphysis size: what v1 numbers were measured on."""
    for name in ("v1_easy", "v1_medium", "v1_hard"):
        knobs = PRESETS[name]
        assert knobs["canal"] == "bright" and knobs["lip_b"] == (0.08, 0.13) and knobs["lip_delta_db"] == (0.0, 0.0)
        assert knobs["ps_b"] == (0.025, 0.038)
    assert PRESETS["v1_hard"]["blur_px"] == (3, 6) and PRESETS["v1_medium"]["dropout"] == (0.2, 0.4)


def test_generate_sample_is_the_image_and_mask_of_the_clean_map_variant() -> None:
    spec = SyntheticSpec("psfh", "medium", 48)
    image, mask = generate_sample(spec, sample_rng(1, 2))
    image2, mask2, _ = generate_sample_with_clean_map(spec, sample_rng(1, 2))
    assert image.tobytes() == image2.tobytes() and mask.tobytes() == mask2.tobytes()


def test_spec_rejects_unknown_task_and_difficulty() -> None:
    with pytest.raises(ValueError, match="task"):
        SyntheticSpec("heart", "easy", 64)
    with pytest.raises(ValueError, match="difficulty"):
        SyntheticSpec("psfh", "brutal", 64)


# ----------------------------------------------------------------------------------- cache and layout


def test_cache_roundtrip_is_atomic_and_survives_a_corrupt_file(tmp_path) -> None:
    spec = SyntheticSpec("cervix", "easy", 32)
    images, masks = generate_dataset(spec, 3, seed=0, cache_dir=tmp_path)
    path = tmp_path / cache_name(spec, 3, seed=0, start=0)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    cached = generate_dataset(spec, 3, seed=0, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached[0], images)
    np.testing.assert_array_equal(cached[1], masks)
    path.write_bytes(b"truncated")
    again = generate_dataset(spec, 3, seed=0, cache_dir=tmp_path)
    np.testing.assert_array_equal(again[0], images)
    assert cache_name(spec, 3, 0, 0) != cache_name(spec, 3, 0, 1) != cache_name(SyntheticSpec("cervix", "hard", 32), 3, 0, 1)


def test_fugc_layout_roundtrips_through_the_fugc_reader(tmp_path) -> None:
    spec = SyntheticSpec("cervix", "medium", 32)
    root = write_fugc_layout(tmp_path / "fugc", spec, n_labeled=3, n_unlabeled=2, seed=4)
    labeled, unlabeled = read_fugc(root)
    images, masks = generate_dataset(spec, 5, seed=4)
    assert [s.key for s in labeled] == ["fugc/labeled/0001", "fugc/labeled/0002", "fugc/labeled/0003"]
    assert [s.key for s in unlabeled] == ["fugc/unlabeled/0001", "fugc/unlabeled/0002"]
    for sample, image, mask in zip(labeled + unlabeled, images, masks, strict=True):
        assert np.abs(sample.image - image).max() <= 0.5 / 255 + 1e-6
        if sample.mask is not None:
            np.testing.assert_array_equal(sample.mask, mask)
    assert all(s.mask is None for s in unlabeled)
