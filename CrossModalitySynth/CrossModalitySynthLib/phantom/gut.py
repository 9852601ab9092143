"""Stomach, colon and small-bowel loops: tubes of wall + content with gas pockets.

A gut segment is a tube along a polyline, painted one capsule at a time (tight bounding boxes);
a capsule paints no wall inside the lumen of the previous one, so joints show no inner wall.
Its wall is the outer ``wall`` mm, the rest is content; gas fills the non-dependent (anterior,
-y, as the patient lies supine) part of the lumen in front of a level ``gas`` (fraction of the
radius, measured from the axis; None: no gas). Bowel wall and content carry the bowel label, gas the
bowel-gas label. Reference space as in :mod:`.trunk`.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .. import labels as L
from .components import Component, Layer
from .shapes import ellipsoid_at, rotation_matrix, smax
from .trunk import Trunk

Point = Tuple[float, float, float]


def _capsule_parts(x, y, z, a: Point, b: Point, radius: float):
    """(signed distance to the capsule a-b, y offset of the point from its nearest axis point)."""
    ax, ay, az = (float(v) for v in a)
    ex, ey, ez = (float(b[i]) - float(a[i]) for i in range(3))
    ee = max(ex * ex + ey * ey + ez * ez, 1e-9)
    px, py, pz = x - ax, y - ay, z - az
    t = (px * ex + py * ey + pz * ez) * (1.0 / ee)
    np.clip(t, 0.0, 1.0, out=t)
    px -= t * ex
    py -= t * ey
    pz -= t * ez
    return np.sqrt(px * px + py * py + pz * pz) - radius, py


@dataclass
class GutSegment:
    """A tube along a polyline; rendered one capsule per component (tight bounding boxes)."""

    name: str
    points: List[Point]
    radius: float
    wall: float
    gas: Optional[float]

    def piece_layers(self, i: int):
        a, b = self.points[i], self.points[i + 1]
        prev = (self.points[i - 1], a) if i > 0 else None
        r = self.radius

        def layers(x, y, z, width):
            sd, off_y = _capsule_parts(x, y, z, a, b, r)
            w = width(sd)
            wall = sd
            if prev is not None:  # no wall across the lumen of the previous piece (smooth joint)
                sd_prev, _ = _capsule_parts(x, y, z, prev[0], prev[1], r)
                wall = np.maximum(sd, -(sd_prev + self.wall))
            out = [Layer(wall, "bowel_wall", L.BOWEL, width=w), Layer(sd + self.wall, "bowel_content", L.BOWEL, width=w)]
            if self.gas is not None:
                gas = smax(sd + self.wall, off_y + self.gas * r, 1.5)
                out.append(Layer(gas, "bowel_gas", L.BOWEL_GAS))
            return out

        return layers

    def components(self) -> List[Component]:
        out = []
        for i in range(len(self.points) - 1):
            p = np.asarray(self.points[i:i + 2], dtype=float)
            lo, hi = p.min(axis=0) - self.radius - 3.0, p.max(axis=0) + self.radius + 3.0
            out.append(Component(f"{self.name} {i}", lo, hi, self.piece_layers(i)))
        return out


@dataclass
class Stomach:
    trunk: Trunk
    center: Point
    axes: Point
    rot: np.ndarray
    wall: float
    gas_level: float  # y (mm) in front of which the lumen holds gas

    @classmethod
    def random(cls, rng: np.random.Generator, t: Trunk) -> "Stomach":
        c = np.array([0.4 * t.cavity_a, -0.3 * t.cavity_b_ant, t.z_dome_left - 60.0]) + rng.normal(0, 5, size=3)
        axes = np.array([40.0, 30.0, 45.0]) * rng.uniform(0.8, 1.2, size=3)
        rot = rotation_matrix(rz=np.deg2rad(rng.uniform(-35, -15)), ry=np.deg2rad(rng.uniform(-20, 0)))
        level = float(c[1] - axes[1] * rng.uniform(0.2, 0.7))
        return cls(t, tuple(map(float, c)), tuple(map(float, axes)), rot, float(rng.uniform(3.0, 5.0)), level)

    def sd(self, x, y, z):
        d = ellipsoid_at(x, y, z, self.center, self.axes, self.rot)
        d = smax(d, z - (self.trunk.diaphragm_z(x, y) - 5.0), 5.0)
        return smax(d, self.trunk.cavity_sd(x, y, z, extra=2.0), 4.0)

    def layers(self, x, y, z, width):
        sd = self.sd(x, y, z)
        w = width(sd)
        inner = sd + self.wall
        gas = smax(inner, y - self.gas_level, 1.5)
        return [
            Layer(sd, "bowel_wall", L.BOWEL, width=w),
            Layer(inner, "bowel_content", L.BOWEL, width=w),
            Layer(gas, "bowel_gas", L.BOWEL_GAS),
        ]

    def bbox(self):
        c = np.asarray(self.center)
        r = max(self.axes) + 4.0
        return c - r, c + r


def stomach_component(s: Stomach) -> Component:
    lo, hi = s.bbox()
    return Component("stomach", lo, hi, s.layers)


def random_colon(rng: np.random.Generator, t: Trunk, z_ref: float, z_bottom: float) -> GutSegment:
    """Ascending, transverse and descending colon as one tube (``z_ref``: right kidney level)."""
    A, Bn = t.cavity_a, t.cavity_b_ant
    j = lambda s: rng.normal(0.0, s, size=3)  # noqa: E731
    pts = [
        np.array([-0.72 * A, -0.15 * Bn, z_bottom]) + j(5),
        np.array([-0.72 * A, -0.2 * Bn, z_ref - 40.0]) + j(6),
        np.array([-0.62 * A, -0.3 * Bn, z_ref + 10.0]) + j(6),  # hepatic flexure
        np.array([-0.3 * A, -0.65 * Bn, z_ref - 5.0]) + j(8),
        np.array([0.25 * A, -0.65 * Bn, z_ref - 25.0]) + j(8),
        np.array([0.62 * A, -0.25 * Bn, z_ref + 35.0]) + j(6),  # splenic flexure
        np.array([0.72 * A, -0.05 * Bn, z_ref - 30.0]) + j(6),
        np.array([0.72 * A, -0.1 * Bn, z_bottom]) + j(5),
    ]
    r = float(rng.uniform(16.0, 21.0))
    gas = float(rng.uniform(-0.1, 0.5)) if rng.random() < 0.85 else None
    return GutSegment("colon", [tuple(map(float, p)) for p in pts], r, float(rng.uniform(2.0, 3.0)), gas)


def random_small_bowel(rng: np.random.Generator, t: Trunk, z_top: float, z_bottom: float,
                       inside: Callable[[np.ndarray], np.ndarray]) -> List[GutSegment]:
    """6-10 small-bowel loops: short random polylines in the central lower abdomen."""
    A, Bn = t.cavity_a, t.cavity_b_ant
    loops: List[GutSegment] = []
    n = int(rng.integers(6, 11))
    for i in range(n):
        r = float(rng.uniform(10.0, 14.0))
        for _ in range(30):
            start = np.array([rng.uniform(-0.45, 0.45) * A, rng.uniform(-0.75, -0.15) * Bn, rng.uniform(z_bottom, z_top)])
            pts = [start]
            for _ in range(int(rng.integers(2, 4))):
                d = rng.normal(size=3) * np.array([1.0, 0.6, 0.8])
                d /= np.linalg.norm(d)
                pts.append(pts[-1] + d * rng.uniform(28.0, 45.0))
            arr = np.array(pts)
            if np.all(inside(arr) > r + 5.0):
                gas = float(rng.uniform(0.1, 0.6)) if rng.random() < 0.35 else None
                loops.append(GutSegment(f"small bowel {i}", [tuple(map(float, p)) for p in arr], r, 2.0, gas))
                break
    return loops


def gut_components(colon: GutSegment, loops: Sequence[GutSegment], stomach: Stomach) -> List[Component]:
    out = colon.components()
    for s in loops:
        out += s.components()
    return out + [stomach_component(stomach)]
