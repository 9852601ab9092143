"""Solid organs and great vessels: liver (with intrahepatic vessels and lesions), spleen,
kidneys (cortex, medulla, sinus fat), aorta and inferior vena cava.

All shapes are signed-distance functions of reference-space position (mm, LPS; see
:mod:`.trunk`). Each organ is an object holding its random parameters with an ``sd(x, y, z)``
method, so the same function renders the organ and places things inside it (vessels, lesions).
"""

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from .. import labels as L
from .components import Component, Layer
from .shapes import (
    capsule_sd,
    circle_sd,
    ellipsoid_at,
    ellipsoid_sd,
    plane_sd,
    rotation_matrix,
    smax,
    smin,
    sphere_sd,
    to_local,
    unit,
)
from .trunk import Spine, Trunk, Z_EXTENT


def ellipsoid_bbox(center, axes, rot=None) -> Tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounding box of a (rotated) ellipsoid."""
    c = np.asarray(center, dtype=float)
    r = np.eye(3) if rot is None else np.asarray(rot, dtype=float)
    half = np.sqrt(((r * np.asarray(axes, dtype=float)[None, :]) ** 2).sum(axis=1))
    return c - half, c + half


def _union_box(boxes) -> Tuple[np.ndarray, np.ndarray]:
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    return lo, hi


def _pts(points: np.ndarray):
    p = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    return p[:, 0], p[:, 1], p[:, 2]


# ------------------------------------------------------------------------------------- liver
@dataclass
class Liver:
    """Right lobe, posterior-inferior right lobe, medial segment and a thin left lobe, smoothly
    united, cut by the visceral plane, molded by the diaphragm and the abdominal wall."""

    trunk: Trunk
    anchor: Tuple[float, float, float]
    rot: np.ndarray
    blobs: List[Tuple[Tuple[float, float, float], Tuple[float, float, float]]]  # local centre, semi-axes
    plane_point: Tuple[float, float, float]
    plane_normal: Tuple[float, float, float]

    @classmethod
    def random(cls, rng: np.random.Generator, t: Trunk) -> "Liver":
        A, Bn, Bp = t.cavity_a, t.cavity_b_ant, t.cavity_b_post
        zr = t.z_dome_right
        anchor = (-0.3 * A, -0.1 * Bn, zr - 65.0)
        s = rng.uniform(0.9, 1.1, size=3)

        def blob(c, ax):
            c = np.asarray(c, dtype=float) - anchor
            jitter = rng.normal(0.0, 5.0, size=3)
            semi = 1.2 * np.asarray(ax, dtype=float) * rng.uniform(0.9, 1.1, size=3) * s
            return tuple(float(v) for v in (c * s + jitter)), tuple(float(v) for v in semi)

        y_right = 0.5 * (-Bn + 0.7 * Bp)
        blobs = [
            blob((-0.52 * A, y_right, zr - 58.0), (0.45 * A, 0.5 * (Bn + 0.7 * Bp), 62.0)),  # right lobe
            blob((-0.6 * A, y_right + 0.1 * Bp, zr - 118.0), (0.33 * A, 0.4 * (Bn + Bp), 42.0)),  # inferior right
            blob((-0.08 * A, -0.35 * Bn, zr - 55.0), (0.33 * A, 0.55 * Bn, 42.0)),  # medial / caudate
            blob((0.2 * A, -0.58 * Bn, zr - 42.0), (0.32 * A, 0.3 * Bn, 24.0)),  # left lobe
        ]
        rot = rotation_matrix(*np.deg2rad(rng.normal(0.0, 4.0, size=3)))
        normal = unit(np.array([0.45, 0.35, -0.82]) + rng.normal(0.0, 0.05, size=3))
        point = (-0.12 * A + float(rng.normal(0, 5)), 0.0, zr - 108.0 + float(rng.normal(0, 6)))
        return cls(t, anchor, rot, blobs, point, normal)

    def sd(self, x, y, z):
        lx, ly, lz = to_local(x, y, z, self.anchor, self.rot)
        parts = [ellipsoid_sd(lx - c[0], ly - c[1], lz - c[2], *ax) for c, ax in self.blobs]
        d = parts[0]
        for p in parts[1:]:
            d = smin(d, p, 28.0)
        d = smax(d, plane_sd(x, y, z, self.plane_point, self.plane_normal), 12.0)
        d = smax(d, z - (self.trunk.diaphragm_z(x, y) - 6.0), 6.0)
        d = smax(d, self.trunk.cavity_sd(x, y, z, extra=1.5), 4.0)
        return d

    def bbox(self) -> Tuple[np.ndarray, np.ndarray]:
        boxes = []
        for c, ax in self.blobs:
            lo, hi = ellipsoid_bbox(np.asarray(self.rot) @ np.asarray(c) + self.anchor, ax, self.rot)
            boxes.append((lo, hi))
        lo, hi = _union_box(boxes)
        return lo - 8.0, hi + 8.0

    def inside_margin(self, points: np.ndarray) -> np.ndarray:
        """Depth (mm, positive inside) of reference points (N, 3)."""
        return -self.sd(*_pts(points))


@dataclass
class Lesion:
    kind: str  # "cyst" or "metastasis"
    center: Tuple[float, float, float]
    axes: Tuple[float, float, float]
    rot: np.ndarray = field(repr=False)

    @property
    def tissue(self) -> str:
        return "liver_cyst" if self.kind == "cyst" else "liver_metastasis"

    def to_dict(self) -> dict:
        return {"type": self.kind, "center_mm": [round(v, 1) for v in self.center],
                "diameter_mm": round(2 * float(np.mean(self.axes)), 1)}


def _sample_inside(rng, sd_fn, lo, hi, margin: float, tries: int = 400):
    """A random point with ``sd_fn(point) < -margin`` (rejection sampling), or None."""
    pts = rng.uniform(lo, hi, size=(tries, 3))
    depth = -sd_fn(*_pts(pts))
    ok = np.nonzero(depth > margin)[0]
    return None if len(ok) == 0 else pts[ok[0]]


def random_lesions(rng: np.random.Generator, liver: Liver, avoid: Sequence) -> List[Lesion]:
    """0-3 liver lesions (cysts: water-like; metastases: hypo-attenuating), inside the liver."""
    n = int(rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.23, 0.12]))
    lo, hi = liver.bbox()
    out: List[Lesion] = []
    for _ in range(n):
        kind = "cyst" if rng.random() < 0.55 else "metastasis"
        r = float(rng.uniform(5.0, 16.0) if kind == "cyst" else rng.uniform(7.0, 18.0))

        def ok_fn(x, y, z, r=r):
            d = liver.sd(x, y, z)
            for other in avoid:  # keep clear of organs painted after the liver
                d = np.maximum(d, -(other(x, y, z) - r - 3.0))
            for les in out:
                d = np.maximum(d, -(sphere_sd(x, y, z, les.center, max(les.axes)) - r - 3.0))
            return d

        c = _sample_inside(rng, ok_fn, lo, hi, r + 4.0)
        if c is None:
            continue
        axes = tuple(float(r * v) for v in rng.uniform(0.85, 1.15, size=3))
        rot = rotation_matrix(*rng.uniform(0, np.pi, size=3))
        out.append(Lesion(kind, tuple(float(v) for v in c), axes, rot))
    return out


def random_hepatic_vessels(rng: np.random.Generator, liver: Liver, ivc_top: Sequence[float],
                           hilum: Sequence[float]) -> List[Tuple[tuple, tuple, float]]:
    """Intrahepatic vessel segments (a, b, radius): hepatic veins fanning out from the IVC and
    portal branches from the hilum; only segments that stay inside the liver are kept."""
    lo, hi = liver.bbox()
    segs = []
    for root, count, (r0, r1) in ((ivc_top, 3, (4.0, 6.0)), (hilum, 3, (4.5, 7.0))):
        root = np.asarray(root, dtype=float)
        made = 0
        for _ in range(40):
            if made >= count:
                break
            r = float(rng.uniform(r0, r1))
            tip = _sample_inside(rng, liver.sd, lo, hi, 18.0, tries=60)
            if tip is None:
                continue
            start = root + 0.35 * (tip - root)  # begin inside the liver, short of the root
            tt = np.linspace(0.0, 1.0, 12)[:, None]
            line = start[None, :] * (1 - tt) + tip[None, :] * tt
            if np.min(liver.inside_margin(line)) < r + 2.0:
                continue
            segs.append((tuple(float(v) for v in start), tuple(float(v) for v in tip), r))
            # a side branch from the middle
            mid = 0.5 * (start + tip)
            tip2 = _sample_inside(rng, lambda x, y, z: np.maximum(liver.sd(x, y, z), sphere_sd(x, y, z, mid, 45.0)),
                                  mid - 45.0, mid + 45.0, 12.0, tries=40)
            if tip2 is not None:
                line2 = mid[None, :] * (1 - tt) + tip2[None, :] * tt
                if np.min(liver.inside_margin(line2)) > 0.6 * r + 2.0:
                    segs.append((tuple(float(v) for v in mid), tuple(float(v) for v in tip2), 0.6 * r))
            made += 1
    return segs


def liver_components(liver: Liver, vessels, lesions: List[Lesion]) -> List[Component]:
    """The liver, then each intrahepatic vessel and lesion as its own small component."""

    def parenchyma(x, y, z, width):
        return [Layer(liver.sd(x, y, z), "liver", L.LIVER)]

    lo, hi = liver.bbox()
    out = [Component("liver", lo, hi, parenchyma)]
    for i, (a, b, r) in enumerate(vessels):
        def vessel(x, y, z, width, a=a, b=b, r=r):
            return [Layer(capsule_sd(x, y, z, a, b, r), "hepatic_vessel", L.LIVER)]

        p = np.asarray([a, b], dtype=float)
        out.append(Component(f"hepatic vessel {i}", p.min(axis=0) - r - 2, p.max(axis=0) + r + 2, vessel))
    for i, les in enumerate(lesions):
        def lesion(x, y, z, width, les=les):
            return [Layer(ellipsoid_at(x, y, z, les.center, les.axes, les.rot), les.tissue, L.LIVER_LESION)]

        llo, lhi = ellipsoid_bbox(les.center, les.axes, les.rot)
        out.append(Component(f"liver lesion {i}", llo - 2, lhi + 2, lesion))
    return out


# ------------------------------------------------------------------------------------ spleen
@dataclass
class Spleen:
    trunk: Trunk
    center: Tuple[float, float, float]
    axes: Tuple[float, float, float]
    rot: np.ndarray
    hollow_center: Tuple[float, float, float]
    hollow_r: float

    @classmethod
    def random(cls, rng: np.random.Generator, t: Trunk) -> "Spleen":
        A, Bp = t.cavity_a, t.cavity_b_post
        c = np.array([0.7 * A, 0.3 * Bp, t.z_dome_left - 52.0]) + rng.normal(0.0, 5.0, size=3)
        axes = np.array([20.0, 45.0, 52.0]) * rng.uniform(0.85, 1.15, size=3)
        e1 = np.array([c[0], c[1], 0.0])
        e1 /= np.linalg.norm(e1)
        tilt = np.deg2rad(rng.uniform(10.0, 25.0))
        e3 = np.array([0.0, np.sin(tilt), np.cos(tilt)])  # upper pole posterior
        e2 = np.cross(e3, e1)
        e2 /= np.linalg.norm(e2)
        e3 = np.cross(e1, e2)
        rot = np.stack([e1, e2, e3], axis=1)
        hr = float(rng.uniform(40.0, 50.0))
        hollow = c - e1 * (hr + axes[0] * 0.45)
        return cls(t, tuple(map(float, c)), tuple(map(float, axes)), rot, tuple(map(float, hollow)), hr)

    def sd(self, x, y, z):
        d = ellipsoid_at(x, y, z, self.center, self.axes, self.rot)
        d = smax(d, -sphere_sd(x, y, z, self.hollow_center, self.hollow_r), 6.0)
        d = smax(d, z - (self.trunk.diaphragm_z(x, y) - 6.0), 5.0)
        return smax(d, self.trunk.cavity_sd(x, y, z, extra=1.5), 4.0)

    def bbox(self):
        lo, hi = ellipsoid_bbox(self.center, self.axes, self.rot)
        return lo - 6.0, hi + 6.0


def spleen_component(spleen: Spleen) -> Component:
    def layers(x, y, z, width):
        return [Layer(spleen.sd(x, y, z), "spleen", L.SPLEEN)]

    lo, hi = spleen.bbox()
    return Component("spleen", lo, hi, layers)


# ----------------------------------------------------------------------------------- kidneys
@dataclass
class Kidney:
    """A bean: ellipsoid with a medial hilum notch; cortex rim, medullary pyramids, sinus fat.

    Parameters are those of a left kidney; the right kidney is the same function of (-x, y, z).
    """

    side: int  # +1 left, -1 right
    label: int
    center: Tuple[float, float, float]  # left-kidney frame (x mirrored for the right one)
    axes: Tuple[float, float, float]
    rot: np.ndarray
    cortex: float
    pyramids: int

    @classmethod
    def random(cls, rng: np.random.Generator, side: int, spine: Spine, z: float) -> "Kidney":
        axes = tuple(float(v) for v in np.array([25.0, 21.0, 52.0]) * rng.uniform(0.88, 1.12, size=3))
        center = (spine.body_lr + 22.0 + axes[0] + float(rng.normal(0, 4)),
                  spine.body_y + 12.0 + float(rng.normal(0, 4)), z)
        rot = rotation_matrix(rx=-np.deg2rad(rng.uniform(5, 18)), ry=-np.deg2rad(rng.uniform(8, 20)),
                              rz=np.deg2rad(rng.uniform(20, 40)))
        label = L.LEFT_KIDNEY if side > 0 else L.RIGHT_KIDNEY
        return cls(side, label, center, axes, rot, float(rng.uniform(6.0, 8.0)), int(rng.integers(6, 9)))

    def _local(self, x, y, z):
        xs = x if self.side > 0 else -x
        return to_local(xs, y, z, self.center, self.rot)

    def sd(self, x, y, z):
        return self._parts(*self._local(x, y, z))[0]

    def _parts(self, lx, ly, lz):
        a, b, c = self.axes
        outer = ellipsoid_sd(lx, ly, lz, a, b, c)
        notch = ellipsoid_sd(lx + 0.95 * a, ly, lz, 0.5 * a, 0.45 * b, 0.35 * c)
        kid = smax(outer, -notch, 3.0)
        sinus = smax(ellipsoid_sd(lx + 0.45 * a, ly, lz, 0.42 * a, 0.42 * b, 0.55 * c), kid, 2.0)
        return kid, sinus

    def layers(self, x, y, z, width):
        lx, ly, lz = self._local(x, y, z)
        kid, sinus = self._parts(lx, ly, lz)
        a, _, c = self.axes
        psi = np.arctan2(lz * (1.0 / c), lx * (1.0 / a))
        medulla = kid + self.cortex + 2.5 * np.cos(self.pyramids * psi)
        return [
            Layer(kid, "kidney_cortex", self.label),
            Layer(medulla, "kidney_medulla", self.label),
            Layer(sinus, "visceral_fat", L.VISCERAL_FAT),
        ]

    def bbox(self):
        lo, hi = ellipsoid_bbox(self.center, self.axes, self.rot)
        if self.side < 0:
            lo, hi = np.array([-hi[0], lo[1], lo[2]]), np.array([-lo[0], hi[1], hi[2]])
        return lo - 5.0, hi + 5.0


def kidney_component(k: Kidney) -> Component:
    lo, hi = k.bbox()
    return Component("left kidney" if k.side > 0 else "right kidney", lo, hi, k.layers)


# ------------------------------------------------------------------------------ great vessels
@dataclass
class GreatVessels:
    aorta_x: float
    aorta_y: float
    aorta_r: float
    aorta_slope: float
    ivc_points: List[Tuple[float, float, float]]
    ivc_r: float

    @classmethod
    def random(cls, rng: np.random.Generator, t: Trunk, s: Spine) -> "GreatVessels":
        ar = float(rng.uniform(9.0, 12.0))
        ir = float(rng.uniform(9.0, 12.0))
        xi = -float(rng.uniform(18.0, 28.0))
        yi = s.front_y - ir + float(rng.uniform(-4.0, 2.0))
        zr = t.z_dome_right
        pts = [(xi, yi, -Z_EXTENT), (xi, yi, zr - 95.0), (xi - 4.0, yi - 16.0, zr - 30.0), (xi - 2.0, yi - 22.0, zr + 20.0)]
        return cls(float(rng.uniform(8.0, 20.0)), s.front_y - ar - float(rng.uniform(2.0, 5.0)), ar,
                   float(rng.uniform(-0.05, 0.05)), pts, ir)

    @property
    def ivc_top(self):
        return self.ivc_points[2]

    def ivc_sd(self, x, y, z):
        p = self.ivc_points
        d = capsule_sd(x, y, z, p[0], p[1], self.ivc_r)
        for a, b in zip(p[1:-1], p[2:]):
            d = np.minimum(d, capsule_sd(x, y, z, a, b, self.ivc_r))
        return d

    def aorta_sd(self, x, y, z):
        return circle_sd(x - self.aorta_slope * z, y, self.aorta_x, self.aorta_y, self.aorta_r)


def vessels_components(v: GreatVessels) -> List[Component]:
    def aorta(x, y, z, width):
        return [Layer(v.aorta_sd(x, y, z), "aorta_blood", L.AORTA)]

    def ivc(x, y, z, width):
        return [Layer(v.ivc_sd(x, y, z), "ivc_blood", L.IVC)]

    reach = abs(v.aorta_slope) * Z_EXTENT + v.aorta_r + 2
    ao = Component("aorta", (v.aorta_x - reach, v.aorta_y - v.aorta_r - 2, -Z_EXTENT),
                   (v.aorta_x + reach, v.aorta_y + v.aorta_r + 2, Z_EXTENT), aorta)
    pts = np.asarray(v.ivc_points)
    iv = Component("ivc", pts.min(axis=0) - v.ivc_r - 2, pts.max(axis=0) + v.ivc_r + 2, ivc)
    return [ao, iv]
