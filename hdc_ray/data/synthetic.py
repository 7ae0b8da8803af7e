"""Synthetic fetal-ultrasound benchmark: procedurally generated images with exact masks, for offline work.

Recipe (see docs/guides/datasets.md): in polar (depth x scan-line) coordinates, an anatomy label map
(cervix: two lips split by a canal, a dark bladder; PSFH: a fetal head with a skull ring and a small bright
pubic symphysis), echogenicity in dB (Gaussian random field texture + structure contrasts blurred at the
boundary, faded along random arcs, plus look-alike distractors), depth attenuation, bone shadows and
random acoustic shadows, speckle (complex Gaussian scatterers * anisotropic PSF, envelope, L looks), log
compression to a 45-60 dB dynamic range and scan conversion.

Generator v2 (presets "easy" / "medium" / "hard"; "medium" is the benchmark) draws what a benchmark of
label budgets needs: a label that can be read from the image at the working resolution (64 px). Each lip
is 8-12 px thick at 64 px, a ~1-2 px dark canal separates them and they differ by 1-3 dB in echogenicity,
the boundary blur is under a pixel, dropout small; the pubic symphysis is ~1.2% of the pixels and 4-6 px
across. Speckle, attenuation, shadows, distractors and per-image acquisition randomness are unchanged.
The first generator's presets stay reachable as "v1_easy" / "v1_medium" / "v1_hard" (pixel-identical to
it): thin lips and a faint canal, a class boundary a model can barely see. Ceiling (oracle on the
noise-free map, 1-px erosion/dilation, supervised on all labels) and floor (4 and 8 labels):
``bench/generator_ceiling.py``, figures in docs/benchmarks.md ("Synthetic benchmark: ceiling and floor").

    >>> spec = SyntheticSpec("cervix", "medium", 128)
    >>> images, masks = generate_dataset(spec, n=400, seed=0, cache_dir="~/.cache/hdc-ray/synthetic")

Sample ``i`` depends only on ``(seed, start + i)``: a pool of 100 is a prefix of a pool of 400.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from hdc_ray.data import _anatomy
from hdc_ray.data import _ultrasound as us
from hdc_ray.data._anatomy import Scene, cervix_scene, psfh_scene
from hdc_ray.data.tasks import CLASS_NAMES

# Bump whenever a change alters generated pixels: it is part of every cache key.
GENERATOR_VERSION = 2  # 2: thick lips, dark canal, v1 presets kept as v1_*

# Difficulty knobs, each a (low, high) range drawn uniformly per image (counts: integers, inclusive).
# contrast_db: structure vs tissue echogenicity; blur_px: boundary blur sigma in pixels at 128 x 128;
# dropout: share of each outline whose contrast fades; looks: speckle compounding (more = smoother);
# shadows: random acoustic shadows; distractors: unlabelled look-alike blobs. Geometry (image units, the
# image is the unit square: 0.0156 is one pixel at 64 px): lip_a: half-length of the cervix; lip_b:
# thickness of each lip; canal:
# "dark" (an anechoic gap canal_db below the lips) or "bright" (a line canal_db x the lip contrast);
# canal_px: the canal's Gaussian sigma; lip_delta_db: echogenicity difference between the lips (random
# sign); ps_a / ps_b: semi-axes of the pubic symphysis.
_V2_GEOMETRY: dict[str, Any] = {"lip_a": (0.25, 0.34), "canal": "dark", "canal_px": (0.008, 0.012), "ps_a": (0.085, 0.115), "ps_b": (0.033, 0.045)}
_V1_GEOMETRY: dict[str, Any] = {"lip_a": (0.22, 0.32), "lip_b": (0.08, 0.13), "canal": "bright", "canal_db": (0.6, 1.0), "canal_px": (0.006, 0.01),
                                "lip_delta_db": (0.0, 0.0), "ps_a": (0.075, 0.105), "ps_b": (0.025, 0.038)}  # fmt: skip
PRESETS: dict[str, dict[str, Any]] = {
    # Generator v2 (the default family): the label can be read from the image at 64 px. Lips 8-11 px
    # thick, a ~1 px dark canal, sub-pixel boundary blur at 64 px, little dropout; measured ceiling and
    # floor in docs/benchmarks.md ("Synthetic benchmark: ceiling and floor").
    "easy": {"contrast_db": (6, 10), "blur_px": (0.5, 1), "dropout": (0.0, 0.1), "looks": (2, 2), "shadows": (0, 1), "distractors": (0, 1),
             "lip_b": (0.14, 0.19), "canal_db": (10, 14), "lip_delta_db": (2, 4), **_V2_GEOMETRY},
    "medium": {"contrast_db": (4, 8), "blur_px": (0.5, 1), "dropout": (0.0, 0.15), "looks": (1, 1), "shadows": (0, 2), "distractors": (1, 2),
               "lip_b": (0.13, 0.18), "canal_db": (8, 12), "lip_delta_db": (1, 3), **_V2_GEOMETRY},
    "hard": {"contrast_db": (3, 6), "blur_px": (1, 2), "dropout": (0.1, 0.3), "looks": (1, 1), "shadows": (1, 3), "distractors": (1, 3),
             "lip_b": (0.1, 0.15), "canal_db": (6, 10), "lip_delta_db": (0, 2), **_V2_GEOMETRY},
    # Generator v1 (the first benchmark; pixel-identical to it): lips ~5 px thick at 64 px, a faint
    # 0.4-0.6 px bright canal, equal lips, 2-6 px blur. The class boundary is barely visible: supervised
    # on 100% of labels scored 0.65 class Dice. Kept to stress methods, not to compare label budgets.
    "v1_easy": {"contrast_db": (8, 12), "blur_px": (1, 2), "dropout": (0.0, 0.2), "looks": (2, 2), "shadows": (0, 1), "distractors": (0, 1), **_V1_GEOMETRY},
    "v1_medium": {"contrast_db": (4, 8), "blur_px": (2, 4), "dropout": (0.2, 0.4), "looks": (1, 1), "shadows": (0, 2), "distractors": (1, 2), **_V1_GEOMETRY},
    "v1_hard": {"contrast_db": (2, 5), "blur_px": (3, 6), "dropout": (0.3, 0.6), "looks": (1, 1), "shadows": (1, 3), "distractors": (1, 3), **_V1_GEOMETRY},
}  # fmt: skip
DIFFICULTIES = tuple(PRESETS)

# Acquisition variability shared by all presets (randomised per image so few labels under-cover it).
ACQUISITION: dict[str, tuple[float, float]] = {
    "opening_deg": (60.0, 100.0),  # sector opening
    "apex_x": (0.42, 0.58),  # apex position, image units (the image is the unit square)
    "apex_y": (-0.35, -0.1),  # above the image
    "psf_axial_px": (0.8, 1.2),  # PSF sigma along the beam, polar px at 256 (scaled with size)
    "psf_lateral_px": (2.0, 4.0),  # PSF sigma across beams, polar px at 256
    "dynamic_range_db": (45.0, 60.0),  # log-compression window
    "grey_level": (0.45, 0.6),  # where median tissue sits in the window (the scanner's gain)
    "attenuation_db": (5.0, 15.0),  # over the full depth (after TGC)
    "shadow_db": (6.0, 20.0),  # strength of each random acoustic shadow
    "texture_db": (1.5, 3.0),  # std of the fine tissue texture field
    "texture_px": (2.0, 4.0),  # its correlation length (Gaussian sigma) in px at 128
    "gain_field_db": (1.0, 3.0),  # std of the organ-scale gain variation
}

_SCENES = {"cervix": cervix_scene, "psfh": psfh_scene}
_PROBE = 24  # coarse grid used for overlap tests between shapes


@dataclass(frozen=True)
class SyntheticSpec:
    task: str  # "cervix" | "psfh"
    difficulty: str  # a key of PRESETS: "easy" | "medium" | "hard" (v2) | "v1_easy" | "v1_medium" | "v1_hard"
    size: int  # output images are size x size

    def __post_init__(self) -> None:
        if self.task not in CLASS_NAMES:
            raise ValueError(f"unknown synthetic task {self.task!r}; choose from {sorted(CLASS_NAMES)}")
        if self.difficulty not in PRESETS:
            raise ValueError(f"unknown difficulty {self.difficulty!r}; choose from {sorted(PRESETS)}")
        if self.size < 16:
            raise ValueError(f"synthetic image size must be >= 16, got {self.size}")


def generate_sample(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image and its mask: image float32 ``(S, S)`` in [0, 1]; mask uint8 ``(S, S)`` class indices.

    Pixels outside the sector are 0 in both.
    """
    image, mask, _ = generate_sample_with_clean_map(spec, rng)
    return image, mask


def generate_sample_with_clean_map(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``generate_sample`` plus the noise-free anatomy map: structure contrasts in dB after the boundary
    blur, with the canal / skull lines, but no texture, attenuation, shadows or speckle (float32 ``(S, S)``,
    0 outside the sector). What an oracle could read: the ceiling of the benchmark."""
    knobs = PRESETS[spec.difficulty]
    sector = us.draw_sector(rng, spec.size, ACQUISITION)
    probe = _probe_grid()
    scene = _SCENES[spec.task](sector, rng.uniform(*knobs["contrast_db"]), knobs, _count(knobs["distractors"], rng), rng, probe)
    polar, clean = _polar_image(spec, sector, scene, knobs, rng)
    inside, coords = sector.scan_lookup(spec.size)
    image = us.scan_convert(polar, inside, coords).astype(np.float32)
    cx = (np.arange(spec.size) + 0.5) / spec.size
    mask = scene.label_map(*np.meshgrid(cx, cx)) * inside
    return np.clip(image, 0.0, 1.0), mask.astype(np.uint8), us.scan_convert(clean, inside, coords).astype(np.float32)


def _polar_image(
    spec: SyntheticSpec, sector: us.Sector, scene: Scene, knobs: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Grey-level image on the polar grid ``(n_depth, n_lines)``: echogenicity -> speckle -> display; and
    the noise-free anatomy map (dB)."""
    echo_db, clean_db = _echogenicity_db(spec, sector, scene, knobs, rng)
    psf_scale = spec.size / 256.0  # PSF ranges are given at 256 x 256
    intensity = us.speckle(
        10.0 ** (echo_db / 10.0),
        rng.uniform(*ACQUISITION["psf_axial_px"]) * psf_scale,
        rng.uniform(*ACQUISITION["psf_lateral_px"]) * psf_scale,
        _count(knobs["looks"], rng),
        rng,
    )
    intensity += 10.0 ** (-4.0) * rng.exponential(size=echo_db.shape)  # electronic noise floor, -40 dB
    dynamic_range = rng.uniform(*ACQUISITION["dynamic_range_db"])
    # The "gain": median tissue lands at a random grey level of the log-compression window.
    floor_db = float(np.median(us.to_db(intensity))) - rng.uniform(*ACQUISITION["grey_level"]) * dynamic_range
    return us.log_compress(intensity, dynamic_range, floor_db), clean_db


def _echogenicity_db(
    spec: SyntheticSpec, sector: us.Sector, scene: Scene, knobs: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mean backscatter in dB on the polar grid (anatomy, texture, attenuation and shadows), and the
    anatomy alone (the noise-free map)."""
    scale = spec.size / 128.0  # blur and texture ranges are given at 128 x 128
    shape = (sector.n_depth, sector.n_lines)
    regions_db, lines_db, shadows = scene.echo_maps(*sector.polar_xy())
    clean_db = ndimage.gaussian_filter(regions_db, rng.uniform(*knobs["blur_px"]) * scale) + lines_db
    echo_db = clean_db.copy()
    texture_sigma = rng.uniform(*ACQUISITION["texture_px"]) * scale
    echo_db += rng.uniform(*ACQUISITION["texture_db"]) * us.gaussian_random_field(shape, texture_sigma, rng)
    echo_db += rng.uniform(*ACQUISITION["gain_field_db"]) * us.coarse_random_field(shape, 5, rng)
    depth = (np.arange(shape[0]) + 0.5) / shape[0]
    echo_db -= rng.uniform(*ACQUISITION["attenuation_db"]) * depth[:, None]
    echo_db -= us.cumulative_attenuation(shadows, sector.dr)
    echo_db -= us.acoustic_shadows(sector, _count(knobs["shadows"], rng), ACQUISITION["shadow_db"], rng)
    return echo_db, clean_db


def _count(bounds: tuple[float, float], rng: np.random.Generator) -> int:
    return int(rng.integers(int(bounds[0]), int(bounds[1]) + 1))


def _probe_grid() -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(_PROBE) + 0.5) / _PROBE
    x, y = np.meshgrid(centres, centres)
    return x, y


# ------------------------------------------------------------------------------------------ datasets


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of the stream ``seed``: independent of how many are drawn."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def generate_dataset(
    spec: SyntheticSpec,
    n: int,
    seed: int,
    start: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``start .. start + n - 1`` of stream ``seed``: images ``(n, S, S)`` float32, masks uint8.

    With ``cache_dir`` the arrays are loaded from / saved to an ``.npz`` keyed by everything that
    determines them (including the generator version and a fingerprint of the presets).
    """
    if n < 0 or start < 0:
        raise ValueError(f"n and start must be >= 0, got n={n}, start={start}")
    path = None if cache_dir is None else Path(cache_dir).expanduser() / cache_name(spec, n, seed, start)
    if path is not None and path.is_file():
        cached = _load_cache(path, n, spec.size)
        if cached is not None:
            return cached
    images = np.empty((n, spec.size, spec.size), np.float32)
    masks = np.empty((n, spec.size, spec.size), np.uint8)
    tick = time.perf_counter()
    for i in range(n):
        images[i], masks[i] = generate_sample(spec, sample_rng(seed, start + i))
        if progress and (i + 1) % max(1, n // 10) == 0:
            print(f"synthetic {spec.task}/{spec.difficulty}: {i + 1}/{n} ({time.perf_counter() - tick:.1f} s)", file=sys.stderr)
    if path is not None:
        _save_cache(path, images, masks)
    return images, masks


def cache_name(spec: SyntheticSpec, n: int, seed: int, start: int) -> str:
    fingerprint = _fingerprint(json.dumps([PRESETS[spec.difficulty], ACQUISITION], sort_keys=True))
    return f"{spec.task}_{spec.difficulty}_s{spec.size}_seed{seed}_start{start}_n{n}_v{GENERATOR_VERSION}_{fingerprint}.npz"


@functools.lru_cache(maxsize=8)
def _fingerprint(knobs: str) -> str:
    """Hash of the knobs and of the generator's source: editing a preset or the physics (even without
    bumping GENERATOR_VERSION) can never serve a stale cache."""
    digest = hashlib.sha256(knobs.encode())
    for source in (_anatomy.__file__, us.__file__, __file__):
        if source is not None:  # None only in frozen/zip imports: fall back to the version and knobs
            digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:8]


def _load_cache(path: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as data:
            images, masks = data["images"], data["masks"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # a truncated or foreign file: regenerate and overwrite it
    if images.shape != (n, size, size) or masks.shape != images.shape:
        return None
    return images, masks


def _save_cache(path: Path, images: np.ndarray, masks: np.ndarray) -> None:
    """Atomic write (temp file + os.replace): concurrent workers never read a half-written cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, images=images, masks=masks)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:  # a read-only home on a cluster node must not stop training
        print(f"warning: could not write synthetic cache {path}: {exc}", file=sys.stderr)


def write_fugc_layout(root: str | Path, spec: SyntheticSpec, n_labeled: int, n_unlabeled: int, seed: int) -> Path:
    """Write synthetic data in the FUGC training layout under ``root`` (returned): RGB PNG images with grey
    content and 8-bit index masks, ``train/{labeled,unlabeled}_data/images/0001.png`` etc."""
    from PIL import Image

    root = Path(root)
    labeled = generate_dataset(spec, n_labeled, seed, start=0)
    unlabeled = generate_dataset(spec, n_unlabeled, seed, start=n_labeled)
    for subset, (images, masks) in (("labeled_data", labeled), ("unlabeled_data", unlabeled)):
        image_dir = root / "train" / subset / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images, start=1):
            grey = np.round(image * 255.0).astype(np.uint8)
            Image.fromarray(np.stack([grey] * 3, axis=-1)).save(image_dir / f"{i:04d}.png")
            if subset == "labeled_data":
                label_dir = root / "train" / subset / "labels"
                label_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(masks[i - 1]).save(label_dir / f"{i:04d}.png")
    return root


def write_psfh_layout(root: str | Path, spec: SyntheticSpec, n: int, seed: int, spacing: tuple[float, float] = (0.25, 0.25)) -> Path:
    """Write synthetic data in the PSFH / FH-PS-AOP layout under ``root`` (returned): ``image_mha/NNNNN.mha``
    as three identical uint8 grey slices ``(3, S, S)`` and ``label_mha/NNNNN.mha`` ``(S, S)``, with ``spacing``
    (row, col) mm per pixel. Use the "psfh" task for the release's classes (1 pubic symphysis, 2 fetal head)."""
    from hdc_ray.data.mha import write_mha

    root = Path(root)
    images, masks = generate_dataset(spec, n, seed)
    for folder in ("image_mha", "label_mha"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, (image, mask) in enumerate(zip(images, masks, strict=True), start=1):
        grey = np.round(image * 255.0).astype(np.uint8)
        write_mha(root / "image_mha" / f"{i:05d}.mha", np.stack([grey] * 3), (1.0, *spacing))
        write_mha(root / "label_mha" / f"{i:05d}.mha", mask, spacing)
    return root


def speckle_db_std(looks: int) -> float:
    """Theoretical std (dB) of log-compressed fully developed speckle averaged over ``looks`` looks:
    ``10 / ln 10 * sqrt(trigamma(looks))`` (5.57 dB for one look)."""
    trigamma = math.pi**2 / 6.0 - sum(1.0 / k**2 for k in range(1, looks))
    return 10.0 / math.log(10.0) * math.sqrt(trigamma)
