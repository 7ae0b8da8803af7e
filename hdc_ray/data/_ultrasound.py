"""Image-formation physics of the synthetic benchmark: sector geometry, speckle, shadows, display.

A pseudo-physical convolution model (the cheap stand-in for Field II / k-Wave). Everything here works on a
polar grid ``(n_depth, n_lines)``: axis 0 runs along each scan line (depth), axis 1 across scan lines.
Geometry is in normalised image units: the output image spans ``[0, 1] x [0, 1]`` (x right, y down) and
the apex of the sector sits above it (``apex_y < 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Intensity is 10**(dB / 10); the display works on 10 * log10(intensity).
_DB = 10.0


@dataclass(frozen=True)
class Sector:
    """A curvilinear-probe field of view and its polar sampling grid.

    Polar sample ``(i, j)`` sits at depth ``r_min + (i + 0.5) * dr`` on the line at angle
    ``-half_angle + (j + 0.5) * dtheta`` (0 = straight down, positive = towards +x).
    """

    apex_x: float
    apex_y: float
    half_angle: float  # radians
    r_min: float
    r_max: float
    n_depth: int
    n_lines: int

    @property
    def dr(self) -> float:
        return (self.r_max - self.r_min) / self.n_depth

    @property
    def dtheta(self) -> float:
        return 2.0 * self.half_angle / self.n_lines

    def polar_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Image-plane coordinates of every polar sample: two ``(n_depth, n_lines)`` float64 arrays."""
        r = self.r_min + (np.arange(self.n_depth) + 0.5) * self.dr
        theta = -self.half_angle + (np.arange(self.n_lines) + 0.5) * self.dtheta
        x = self.apex_x + r[:, None] * np.sin(theta)[None, :]
        y = self.apex_y + r[:, None] * np.cos(theta)[None, :]
        return x, y

    def point(self, depth: float, angle: float) -> tuple[float, float]:
        """Image-plane point at a depth fraction in [0, 1] and an angle fraction in [-1, 1] of the sector."""
        r = self.r_min + depth * (self.r_max - self.r_min)
        theta = angle * self.half_angle
        return self.apex_x + r * math.sin(theta), self.apex_y + r * math.cos(theta)

    def scan_lookup(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """For each output pixel centre: whether it is inside the sector ``(S, S)`` bool, and its
        fractional polar index ``(2, S, S)`` float32 (depth, line) for ``scan_convert``."""
        centres = (np.arange(size) + 0.5) / size
        dx = centres[None, :] - self.apex_x
        dy = centres[:, None] - self.apex_y
        r = np.hypot(dx, dy)
        theta = np.arctan2(dx, dy)
        inside = (r >= self.r_min) & (r <= self.r_max) & (np.abs(theta) <= self.half_angle)
        coords = np.stack([(r - self.r_min) / self.dr - 0.5, (theta + self.half_angle) / self.dtheta - 0.5])
        return inside, coords.astype(np.float32)


def draw_sector(rng: np.random.Generator, grid: int, ranges: dict[str, tuple[float, float]]) -> Sector:
    """Random apex, opening and depth range; the polar grid is ``grid x grid`` samples."""
    apex_y = rng.uniform(*ranges["apex_y"])
    return Sector(
        apex_x=rng.uniform(*ranges["apex_x"]),
        apex_y=apex_y,
        half_angle=math.radians(rng.uniform(*ranges["opening_deg"])) / 2.0,
        # The probe face (top arc) starts at or just below the image top; the far arc ends near the bottom.
        r_min=-apex_y + rng.uniform(0.0, 0.05),
        r_max=1.0 - apex_y - rng.uniform(0.01, 0.06),
        n_depth=grid,
        n_lines=grid,
    )


def gaussian_random_field(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth zero-mean, unit-std random field: white noise low-passed by a Gaussian of ``sigma`` px."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def coarse_random_field(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Very smooth unit-std field (organ-scale gain variation): cubic up-sampling of a tiny noise grid.

    Much cheaper than a Gaussian filter with a sigma of a fifth of the image."""
    coarse = rng.standard_normal((cells, cells))
    field = ndimage.zoom(coarse, (shape[0] / cells, shape[1] / cells), order=3, mode="nearest", grid_mode=True)
    field = field[: shape[0], : shape[1]]
    return (field - field.mean()) / max(float(field.std()), 1e-12)


def speckle(intensity: np.ndarray, sigma_axial: float, sigma_lateral: float, looks: int, rng: np.random.Generator) -> np.ndarray:
    """Speckled intensity ``(n_depth, n_lines)`` with the same local mean as ``intensity``.

    Complex Gaussian scatterers scaled by ``sqrt(intensity)`` are convolved with an anisotropic Gaussian
    PSF (sigma in polar px along axis 0 / axis 1), envelope detected (``|.|**2``) and averaged over
    ``looks`` independent realisations (compounding). With one look the intensity is exponentially
    distributed: fully developed speckle, 5.57 dB standard deviation after log compression.
    """
    amplitude = np.sqrt(intensity)
    sigma = (sigma_axial, sigma_lateral)
    # Normalise the PSF to unit energy so the mean intensity (the echogenicity) is preserved.
    gain = 1.0 / math.sqrt(_kernel_energy(sigma_axial) * _kernel_energy(sigma_lateral))
    total = np.zeros_like(amplitude)
    for _ in range(looks):
        noise = rng.standard_normal((2, *intensity.shape)) * (amplitude * (gain / math.sqrt(2.0)))
        re = ndimage.gaussian_filter(noise[0], sigma)
        im = ndimage.gaussian_filter(noise[1], sigma)
        total += re * re + im * im
    return total / looks


def _kernel_energy(sigma: float) -> float:
    """Sum of squared taps of scipy's discrete 1-D Gaussian kernel (what ``gaussian_filter`` applies)."""
    half = int(4.0 * sigma + 0.5)
    delta = np.zeros(2 * half + 1)
    delta[half] = 1.0
    taps = ndimage.gaussian_filter1d(delta, sigma, mode="constant")
    return float(np.sum(taps * taps))


def to_db(intensity: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    return _DB * np.log10(np.maximum(intensity, floor))


def log_compress(intensity: np.ndarray, dynamic_range_db: float, floor_db: float) -> np.ndarray:
    """Display grey level in [0, 1]: ``floor_db`` maps to 0, ``floor_db + dynamic_range_db`` to 1."""
    grey = (to_db(intensity) - floor_db) / dynamic_range_db
    return np.clip(grey, 0.0, 1.0)


def scan_convert(polar: np.ndarray, inside: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear polar -> Cartesian resampling; pixels outside the sector are exactly 0. ``(S, S)``."""
    image = ndimage.map_coordinates(polar, coords, order=1, mode="nearest")
    return np.where(inside, image, 0.0)


def acoustic_shadows(sector: Sector, count: int, strength_db: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Attenuation in dB ``(n_depth, n_lines)`` of ``count`` random acoustic shadows.

    Each is a notch across a few scan lines (gas, calcification or poor contact) starting at a random
    depth with a soft onset and running to the bottom of the sector.
    """
    shape = (sector.n_depth, sector.n_lines)
    total = np.zeros(shape)
    depth = (np.arange(shape[0]) + 0.5) / shape[0]
    lines = (np.arange(shape[1]) + 0.5) / shape[1]
    for _ in range(count):
        centre, width = rng.uniform(0.05, 0.95), rng.uniform(0.015, 0.05)
        onset, strength = rng.uniform(0.05, 0.7), rng.uniform(*strength_db)
        across = np.exp(-0.5 * ((lines - centre) / width) ** 2)
        along = 0.5 * (1.0 + np.tanh((depth - onset) / 0.03))
        total += strength * along[:, None] * across[None, :]
    return total


def cumulative_attenuation(shadows: list[tuple[np.ndarray, np.ndarray]], dr: float) -> np.ndarray:
    """Integrate attenuation densities (dB per unit depth) down each scan line: shadows behind bone,
    enhancement (negative density) behind fluid. ``shadows`` holds ``(density, extent)`` pairs, one per
    structure, each ``(n_depth, n_lines)``; a structure shadows what lies behind it but not itself (bone
    stays bright), so its own extent (in [0, 1]) is exempt. Returns dB ``(n_depth, n_lines)``."""
    total = np.zeros_like(shadows[0][0]) if shadows else 0.0
    for density, extent in shadows:
        total = total + np.cumsum(density, axis=0) * dr * (1.0 - extent)
    return np.asarray(total)
