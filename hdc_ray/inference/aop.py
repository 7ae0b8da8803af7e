"""The angle of progression (AoP) of a PSFH label map, as the FH-PS-AOP / PSFHS organisers compute it.

Clinically the AoP is the angle between the long axis of the pubic symphysis and the line from the
symphysis' inferior (distal) end tangent to the fetal skull. Our reading of the organisers' evaluation
script (``cal_aop`` and ``drawline_AOD``, published with the challenge), which this module reproduces:

1. Each structure (label 1: symphysis, 2: head) is fitted with ``cv2.fitEllipse``, not on the raw contour:
   of the outer contours (``RETR_EXTERNAL``, ``CHAIN_APPROX_NONE``) the one with the most points is
   simplified by ``cv2.approxPolyDP(epsilon=1, closed)`` and fitted if more than 5 vertices remain. If
   either structure has no ellipse the AoP is 0.0 (so a missed structure costs |0 - reference AoP|).
2. The symphysis axis runs through the two ends of the ellipse's long axis. OpenCV returns width <= height
   with ``angle`` the width's direction (a test pins this), so the long axis points at ``angle - 90``
   degrees, in [-90, 90): its "+" end, the one to the image's right (the top one if exactly vertical), is
   taken as the distal end. That is the inferior end only in the datasets' pose (symphysis left of the
   head); the script never checks which end is nearer the head.
3. The tangent from the distal end to the head ellipse, in the head's own frame (x along its long axis):
   of the two tangent slopes ``k = (x y -+ sqrt(b^2 x^2 + a^2 y^2 - a^2 b^2)) / (x^2 - a^2)`` the script
   takes the "-" root, an algebraic choice rather than an anatomical one. For an end beyond the head's long
   axis (|x| > a) it is the tangent of smaller slope in that frame (y down): for a symphysis up and to the
   left of a level head, the tangent passing above the head. It swaps to the other tangent where |x| < a,
   and for a near-circular head it follows the fitted orientation. An end inside the head ellipse (no
   tangent) gets slope 0; |x| = a is nudged by one pixel, as the script does.
4. The AoP is the angle at the distal end between the proximal end and the tangent point (the script uses
   the law of cosines; this is the same angle), in degrees.

One more inherited detail: the script turns the symphysis angle to radians with 0.01745 (its head rotation
uses the exact pi/180); kept, so our AoP is theirs (it moves the axis ends by at most 0.02 degrees).
Distances are in pixels: spacing plays no part, as in the script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PS_LABEL, FH_LABEL = 1, 2
_SCRIPT_DEG_TO_RAD = 0.01745  # the organisers' rounded pi/180 for the symphysis axis (see the module docstring)
_MIN_VERTICES = 5  # fitEllipse needs at least 5 points; the script fits only above 5


@dataclass(frozen=True)
class Ellipse:
    """``cv2.fitEllipse``'s rotated rectangle: centre (x right, y down) px, full axis lengths with width <= height,
    ``angle`` degrees (the width's direction)."""

    centre: tuple[float, float]
    size: tuple[float, float]
    angle: float

    def long_axis(self, deg_to_rad: float = math.pi / 180.0) -> np.ndarray:
        """Unit vector of the long axis, at ``angle - 90`` degrees (pointing right, or up if vertical)."""
        theta = (self.angle - 90.0) * deg_to_rad
        return np.array([math.cos(theta), math.sin(theta)])


@dataclass(frozen=True)
class AngleOfProgression:
    degrees: float  # 0.0 when undefined, as the organisers score it
    status: str  # "ok", "no symphysis ellipse", "no head ellipse", "degenerate"
    symphysis: Ellipse | None = None
    head: Ellipse | None = None
    distal: tuple[float, float] | None = None  # the symphysis end the tangent starts from (x, y) px
    tangent: tuple[float, float] | None = None  # where the tangent touches the head ellipse (x, y) px


def fit_ellipse(mask: np.ndarray) -> Ellipse | None:
    """The organisers' ellipse of one binary (H, W) mask, or None (empty, or too few vertices to fit)."""
    import cv2  # opencv-python-headless: the organisers' tool

    contours, _ = cv2.findContours(np.asarray(mask, dtype=bool).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    longest = max(contours, key=len)  # the first of the longest, as the script's strict ">" scan keeps
    vertices = cv2.approxPolyDP(longest, 1, closed=True)
    if len(vertices) <= _MIN_VERTICES:
        return None
    (cx, cy), (w, h), angle = cv2.fitEllipse(vertices)
    return Ellipse((float(cx), float(cy)), (float(w), float(h)), float(angle))


def symphysis_ends(ps: Ellipse) -> tuple[np.ndarray, np.ndarray]:
    """(proximal, distal) ends of the symphysis' long axis, (x, y) px; distal is the "+" end (step 2)."""
    half = ps.size[1] / 2.0 * ps.long_axis(_SCRIPT_DEG_TO_RAD)
    centre = np.asarray(ps.centre)
    return centre - half, centre + half


def head_tangent_point(head: Ellipse, point: np.ndarray) -> np.ndarray:
    """Where the script's tangent from ``point`` touches the head ellipse, (x, y) px (step 3)."""
    a, b = head.size[1] / 2.0, head.size[0] / 2.0  # long and short semi-axes
    u = head.long_axis()
    to_head = np.array([[u[0], u[1]], [-u[1], u[0]]])  # image -> head frame (x along the long axis)
    x, y = to_head @ (np.asarray(point, dtype=float) - np.asarray(head.centre))
    if x**2 == a**2:
        x += 1.0  # the script's guard against a vertical tangent
    radicand = b**2 * x**2 + a**2 * y**2 - a**2 * b**2
    k = (x * y - math.sqrt(radicand)) / (x**2 - a**2) if radicand >= 0 else 0.0
    m = y - k * x
    x_t = -k * m * a**2 / (b**2 + a**2 * k**2)  # the double root of the line meeting the ellipse
    touch = np.array([x_t, k * x_t + m])
    return np.asarray(head.centre) + to_head.T @ touch


def angle_of_progression(label: np.ndarray) -> AngleOfProgression:
    """The AoP of one (H, W) PSFH label map (1 symphysis, 2 head), in degrees, by the organisers' recipe."""
    label = np.asarray(label)
    ps, fh = fit_ellipse(label == PS_LABEL), fit_ellipse(label == FH_LABEL)
    if ps is None or fh is None:
        return AngleOfProgression(0.0, "no symphysis ellipse" if ps is None else "no head ellipse", ps, fh)
    proximal, distal = symphysis_ends(ps)
    touch = head_tangent_point(fh, distal)
    along, towards = proximal - distal, touch - distal
    lengths = float(np.linalg.norm(along) * np.linalg.norm(towards))
    if lengths == 0.0:  # the script divides by zero here; no angle exists
        return AngleOfProgression(0.0, "degenerate", ps, fh, _xy(distal), _xy(touch))
    cosine = float(np.clip(along @ towards / lengths, -1.0, 1.0))
    return AngleOfProgression(math.degrees(math.acos(cosine)), "ok", ps, fh, _xy(distal), _xy(touch))


def _xy(point: np.ndarray) -> tuple[float, float]:
    return (float(point[0]), float(point[1]))
