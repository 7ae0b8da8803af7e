"""Anatomy of the synthetic benchmark: analytic shapes that give both the label map and the echogenicity.

Every structure is an ellipse in a (possibly bent) local frame, so the same closed-form description is
evaluated on the polar grid (to make the image) and on the Cartesian pixel grid (to make the mask): image
and mask agree without any label resampling. Units are normalised image units (the image is the unit
square, x right, y down).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hdc_ray.data._ultrasound import Sector

_FADE_BINS = 256  # angular resolution of boundary-dropout profiles


@dataclass(frozen=True)
class Frame:
    """Rotated frame centred at ``(cx, cy)``: ``u`` along the axis, ``v`` across it, bent into a parabola
    (``v = v_straight - curvature * u**2``) so that ``v = 0`` is a curved centreline."""

    cx: float
    cy: float
    angle: float  # radians; positive turns +u from +x towards +y (down)
    curvature: float = 0.0

    def uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.cx, y - self.cy
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        u = cos * dx + sin * dy
        v = cos * dy - sin * dx
        return u, v - self.curvature * u * u


@dataclass(frozen=True)
class Blob:
    """Ellipse in a frame, centred at ``(u0, v0)``: semi-axis ``a`` along u, ``b_neg`` / ``b_pos`` on the
    two sides of the axis (a lopsided ellipse), thickness scaled by ``1 + taper * u / a`` (one end thicker)."""

    frame: Frame
    a: float
    b_neg: float
    b_pos: float
    u0: float = 0.0
    v0: float = 0.0
    taper: float = 0.0

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(du, dv, u, v)``: normalised coordinates (the outline is ``du**2 + dv**2 = 1``) and frame
        coordinates relative to the centre. ``rho`` and ``angle`` turn them into radius / outline angle."""
        u, v = self.frame.uv(x, y)
        u, v = u - self.u0, v - self.v0
        du = u / self.a
        b = np.where(v < 0.0, self.b_neg, self.b_pos)
        if self.taper:
            b = b * (1.0 + self.taper * np.clip(du, -1.0, 1.0))
        return du, v / b, u, v

    def rho(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        du, dv, _, _ = self.local(x, y)
        return np.sqrt(du * du + dv * dv)

    @property
    def thickness(self) -> float:
        return self.b_neg + self.b_pos


@dataclass(frozen=True)
class Region:
    """A filled structure: a contrast in dB, an optional class label, boundary dropout, bone shadow."""

    blob: Blob
    contrast_db: float
    label: int = 0  # 0: unlabelled (background tissue, bladder, distractors)
    label_pos: int | None = None  # if set, the v >= v0 half gets this label instead (the two cervix lips)
    contrast_pos_db: float = 0.0  # added on the v >= 0 half (the posterior lip's own echogenicity)
    fade: np.ndarray | None = None  # (_FADE_BINS,) contrast weight along the outline, 1 = fully visible
    shadow_db: float = 0.0  # attenuation per crossing (bone > 0, fluid enhancement < 0)


@dataclass(frozen=True)
class Line:
    """A thin bright line drawn after the boundary blur: the outline ring (skull) or the axis (canal)."""

    blob: Blob
    kind: str  # "ring" | "axis"
    contrast_db: float
    width: float  # Gaussian sigma in image units
    fade: np.ndarray | None = None
    shadow_db: float = 0.0
    # "axis" lines fade out over the last quarter of ``reach * a`` (1.0: the v1 canal, which died out before
    # the lip tips and let the lips merge there; 1.25: full strength along the whole blob).
    reach: float = 1.0


@dataclass
class Scene:
    regions: list[Region] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def label_map(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class index at each point (later regions paint over earlier ones), uint8 of ``x.shape``."""
        labels = np.zeros(x.shape, np.uint8)
        for region in self.regions:
            if region.label == 0:
                continue
            du, dv, _, v = region.blob.local(x, y)
            inside = du * du + dv * dv < 1.0
            labels[inside] = region.label
            if region.label_pos is not None:
                labels[inside & (v >= 0.0)] = region.label_pos
        return labels

    def echo_maps(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """``(regions_db, lines_db, shadows)`` at each point: region contrasts (to be blurred by the
        boundary blur), thin-line contrasts (kept sharp), and per shadowing structure its attenuation
        density in dB per unit depth (bone > 0, fluid < 0) with its own extent in [0, 1]."""
        regions_db, lines_db = np.zeros(x.shape), np.zeros(x.shape)
        shadows: list[tuple[np.ndarray, np.ndarray]] = []
        for region in self.regions:
            du, dv, _, v = region.blob.local(x, y)
            rho = np.sqrt(du * du + dv * dv)
            inside = (rho < 1.0).astype(np.float64)
            contrast = region.contrast_db + region.contrast_pos_db * (v >= 0.0) if region.contrast_pos_db else region.contrast_db
            regions_db += contrast * inside * _region_fade(region.fade, rho, du, dv)
            if region.shadow_db:
                shadows.append(((region.shadow_db / region.blob.thickness) * inside, inside))
        for line in self.lines:
            profile = _line_profile(line, x, y)
            lines_db += line.contrast_db * profile
            if line.shadow_db:
                shadows.append(((line.shadow_db / (math.sqrt(2.0 * math.pi) * line.width)) * profile, profile))
        return regions_db, lines_db, shadows


def _region_fade(fade: np.ndarray | None, rho: np.ndarray, du: np.ndarray, dv: np.ndarray) -> np.ndarray | float:
    if fade is None:
        return 1.0
    # Dropout fades the outer shell (rho 0.5 -> 0.9) along the dropped arcs, so the boundary vanishes
    # there while the core stays visible: the outline must be inferred from shape and context.
    shell = np.clip((rho - 0.5) / 0.4, 0.0, 1.0)
    return 1.0 - (1.0 - _lookup(fade, _outline_position(du, dv))) * shell


def _outline_position(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """Position along the outline in [0, 1) from the normalised coordinates (the ellipse's angle)."""
    return (np.arctan2(dv, du) + math.pi) / (2.0 * math.pi)


def _line_profile(line: Line, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    du, dv, u, v = line.blob.local(x, y)
    if line.kind == "ring":
        # Thickness in rho units from the mean semi-axis: a ring of ~constant physical width inside the outline.
        mean_b = 0.5 * (line.blob.a + 0.5 * line.blob.thickness)
        width = line.width / mean_b
        profile = np.exp(-0.5 * ((np.sqrt(du * du + dv * dv) - (1.0 - 2.0 * width)) / width) ** 2)
        position = _outline_position(du, dv)
    else:
        along = u / line.blob.a
        profile = np.exp(-0.5 * (v / line.width) ** 2) * np.clip(4.0 * (line.reach - np.abs(along)), 0.0, 1.0)
        position = 0.5 * (np.clip(along, -1.0, 1.0) + 1.0)
    if line.fade is not None:
        profile = profile * _lookup(line.fade, position)
    return profile


def _lookup(fade: np.ndarray, position: np.ndarray) -> np.ndarray:
    index = np.clip((position * len(fade)).astype(np.int64), 0, len(fade) - 1)
    return fade[index]


def dropout_fade(fraction: float, rng: np.random.Generator, periodic: bool = True) -> np.ndarray | None:
    """Visibility along an outline ``(_FADE_BINS,)``: 1-3 random arcs covering ``fraction`` of it faded to 0."""
    if fraction <= 0.0:
        return None
    n_arcs = int(rng.integers(1, 4))
    lengths = rng.dirichlet(np.ones(n_arcs)) * fraction * _FADE_BINS
    dropped = np.zeros(_FADE_BINS)
    for length in lengths:
        start = int(rng.integers(0, _FADE_BINS))
        index = np.arange(start, start + max(round(length), 1))
        dropped[index % _FADE_BINS if periodic else np.clip(index, 0, _FADE_BINS - 1)] = 1.0
    # Soft arc ends: a fade, not a cut (gaussian smoothing on the circle).
    kernel = np.exp(-0.5 * (np.arange(-12, 13) / 4.0) ** 2)
    padded = np.concatenate([dropped[-12:], dropped, dropped[:12]]) if periodic else np.pad(dropped, 12, mode="edge")
    smooth = np.convolve(padded, kernel / kernel.sum(), mode="valid")
    return 1.0 - np.clip(smooth, 0.0, 1.0)


def _overlaps(blob: Blob, others: Sequence[Blob], x: np.ndarray, y: np.ndarray, margin: float = 1.15) -> bool:
    mine = blob.rho(x, y) < margin
    return any(bool(np.any(mine & (other.rho(x, y) < margin))) for other in others)


# ------------------------------------------------------------------------------------------ cervix task


def cervix_scene(
    sector: Sector,
    contrast: float,
    knobs: Mapping[str, Any],
    n_distractors: int,
    rng: np.random.Generator,
    probe: tuple[np.ndarray, np.ndarray],
) -> Scene:
    """FUGC-like cervix: anterior lip (1) above a curved canal, posterior lip (2) below, a canal line
    between them, a dark bladder above; plus lip-like distractors.

    Geometry knobs (ranges drawn per image, see ``synthetic.PRESETS``): ``lip_a`` the half-length of the
    cervix, ``lip_b`` the thickness of each lip; ``canal`` "bright" (a thin echogenic line, the v1 look: ``canal_db`` is then a multiple of the
    lip contrast) or "dark" (an anechoic gap ``canal_db`` dB below the lips, the boundary a model can see);
    ``canal_px`` its Gaussian sigma in image units; ``lip_delta_db`` the echogenicity difference between
    the lips (random sign; (0, 0): equal lips). ``probe`` is a coarse grid of image points used to keep
    distractors off the anatomy.
    """
    dropout = knobs["dropout"]
    cx, cy = sector.point(rng.uniform(0.35, 0.6), rng.uniform(-0.3, 0.3))
    # Wide sectors overhang the image: keep the cervix (nearly) whole inside it.
    frame = Frame(float(np.clip(cx, 0.36, 0.64)), cy, math.radians(rng.uniform(-30.0, 30.0)), rng.uniform(-1.2, 1.2))
    half_len, taper = rng.uniform(*knobs["lip_a"]), rng.uniform(-0.35, 0.35)
    lips = Blob(frame, half_len, b_neg=rng.uniform(*knobs["lip_b"]), b_pos=rng.uniform(*knobs["lip_b"]), taper=taper)
    scene = Scene()
    if rng.random() < 0.85:
        scene.regions.append(_bladder(lips, rng))
    lip_fade = dropout_fade(rng.uniform(*dropout), rng)
    delta = _signed(knobs["lip_delta_db"], rng)
    scene.regions.append(Region(lips, contrast, label=1, label_pos=2, fade=lip_fade, contrast_pos_db=delta))
    canal_fade = dropout_fade(rng.uniform(*dropout), rng, periodic=False)
    if knobs["canal"] == "bright":
        canal_db = contrast * rng.uniform(*knobs["canal_db"])
    else:  # "dark": below the brighter lip, so the gap reads dark on both sides
        canal_db = -(rng.uniform(*knobs["canal_db"]) + max(delta, 0.0))
    reach = 1.0 if knobs["canal"] == "bright" else 1.25  # the dark canal runs the whole length of the lips
    scene.lines.append(Line(lips, "axis", canal_db, rng.uniform(*knobs["canal_px"]), canal_fade, reach=reach))
    avoid = [lips] + [r.blob for r in scene.regions[:-1]]
    for _ in range(n_distractors):
        blob = _free_blob(sector, avoid, rng, probe, a=(0.04, 0.1), b=(0.025, 0.06), curvature=2.0)
        if blob is not None:
            scene.regions.insert(0, Region(blob, contrast * rng.uniform(0.8, 1.2)))
            avoid.append(blob)
    return scene


def _signed(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    """A magnitude from ``bounds`` with a random sign; no draw at all for (0, 0) (keeps v1 streams)."""
    if bounds[1] <= 0.0:
        return 0.0
    return float(rng.uniform(*bounds) * rng.choice((-1.0, 1.0)))


def _bladder(lips: Blob, rng: np.random.Generator) -> Region:
    """Anechoic bladder bent along the canal, separated from the anterior lip by a tissue gap."""
    b = rng.uniform(0.04, 0.09)
    v0 = -(lips.b_neg * (1.0 + abs(lips.taper)) + rng.uniform(0.015, 0.04) + b)
    blob = Blob(lips.frame, rng.uniform(0.12, 0.22), b, b, u0=rng.uniform(-0.3, 0.5) * lips.a, v0=v0)
    # Fluid attenuates less than tissue: the region behind it is brighter (posterior enhancement).
    return Region(blob, rng.uniform(-28.0, -20.0), shadow_db=-rng.uniform(2.0, 5.0))


def _free_blob(
    sector: Sector,
    avoid: Sequence[Blob],
    rng: np.random.Generator,
    probe: tuple[np.ndarray, np.ndarray],
    a: tuple[float, float],
    b: tuple[float, float],
    curvature: float,
    tries: int = 12,
) -> Blob | None:
    """A random ellipse inside the sector that does not touch ``avoid`` (None if none found)."""
    for _ in range(tries):
        cx, cy = sector.point(rng.uniform(0.1, 0.9), rng.uniform(-0.8, 0.8))
        frame = Frame(cx, cy, rng.uniform(-math.pi, math.pi), rng.uniform(-curvature, curvature))
        half = rng.uniform(*b)
        blob = Blob(frame, rng.uniform(*a), half, half * rng.uniform(0.7, 1.3))
        if not _overlaps(blob, avoid, *probe):
            return blob
    return None


# -------------------------------------------------------------------------------------------- PSFH task


def psfh_scene(
    sector: Sector,
    contrast: float,
    knobs: Mapping[str, Any],
    n_distractors: int,
    rng: np.random.Generator,
    probe: tuple[np.ndarray, np.ndarray],
) -> Scene:
    """PSFH-like transperineal view: a small thin bright pubic symphysis (1, ~1% of pixels) up left, a large
    fetal head (2) below right with a bright, partly dropped skull ring and a midline; bone shadows.

    Knobs: ``ps_b`` / ``ps_a`` the symphysis' semi-axes (image units), ``dropout`` the outline fades."""
    dropout = knobs["dropout"]
    ps = _pubic_symphysis(sector, knobs["ps_a"], knobs["ps_b"], rng)
    head = _fetal_head(sector, ps, rng, probe)
    scene = Scene()
    scene.regions.append(Region(head, -contrast * rng.uniform(0.7, 1.0), label=2, fade=dropout_fade(rng.uniform(*dropout), rng)))
    ps_db = contrast + rng.uniform(3.0, 6.0)
    scene.regions.append(Region(ps, ps_db, label=1, fade=dropout_fade(rng.uniform(*dropout), rng), shadow_db=rng.uniform(6.0, 14.0)))
    ring_db = rng.uniform(6.0, 10.0) + 0.5 * contrast
    ring_fade = dropout_fade(rng.uniform(*dropout), rng)
    scene.lines.append(Line(head, "ring", ring_db, rng.uniform(0.006, 0.01), ring_fade, rng.uniform(3.0, 6.0)))
    if rng.random() < 0.6:
        midline = Blob(head.frame, 0.75 * head.a, head.b_neg, head.b_pos)
        scene.lines.append(Line(midline, "axis", rng.uniform(2.0, 5.0), 0.004))
    avoid = [ps, head]
    for _ in range(n_distractors):
        bright = rng.random() < 0.5
        size = ((0.04, 0.08), (0.015, 0.03)) if bright else ((0.05, 0.1), (0.04, 0.08))
        blob = _free_blob(sector, avoid, rng, probe, *size, curvature=1.0)
        if blob is not None:
            db = ps_db * rng.uniform(0.6, 0.9) if bright else -contrast * rng.uniform(1.0, 1.5)
            scene.regions.insert(0, Region(blob, db, shadow_db=rng.uniform(2.0, 6.0) if bright else 0.0))
            avoid.append(blob)
    return scene


def _pubic_symphysis(sector: Sector, a: tuple[float, float], b: tuple[float, float], rng: np.random.Generator) -> Blob:
    cx, cy = sector.point(rng.uniform(0.12, 0.35), rng.uniform(-0.75, -0.2))
    frame = Frame(cx, cy, math.radians(rng.uniform(15.0, 50.0)), rng.uniform(-0.8, 0.8))
    half = rng.uniform(*b)  # v1 (0.025, 0.038): ~0.9% of the image on average, as in PSFH
    return Blob(frame, rng.uniform(*a), half, half * rng.uniform(0.8, 1.2))


def _fetal_head(sector: Sector, ps: Blob, rng: np.random.Generator, probe: tuple[np.ndarray, np.ndarray]) -> Blob:
    """Large ellipse below right of the symphysis; redrawn until it clears the symphysis."""
    for _ in range(30):
        cx, cy = sector.point(rng.uniform(0.5, 0.8), rng.uniform(0.0, 0.55))
        # Heads are often cut by the field of view, but keep most of it in the image.
        frame = Frame(min(cx, 0.72), cy, math.radians(rng.uniform(-45.0, 45.0)))
        half = rng.uniform(0.18, 0.25)
        head = Blob(frame, rng.uniform(0.22, 0.3), half, half)
        if not _overlaps(head, [ps], *probe, margin=1.05):
            return head
    return head  # rare: the symphysis label paints over the overlap
