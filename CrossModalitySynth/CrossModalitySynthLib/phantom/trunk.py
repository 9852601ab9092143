"""The trunk: body outline, subcutaneous fat, muscle wall, ribs, diaphragm, lungs, heart, spine.

Reference space: millimetres, LPS (+x patient left, +y posterior, +z superior), the trunk's
axis on x = y = 0, z = 0 about the level of the renal hila. The axial outline is an ellipse
whose anterior and posterior semi-axes differ and whose size varies smoothly along z; the
subcutaneous fat, the muscle wall and the abdominal cavity are inset ellipses of the same
family (fat thicker anteriorly and laterally than posteriorly).
"""

from dataclasses import dataclass
from typing import List

import numpy as np

from .. import labels as L
from .components import Component, Layer
from .shapes import circle_sd, ellipse_sd, ellipsoid_at, capsule_sd, rotation_matrix, smax, smin

Z_EXTENT = 400.0  # the trunk and the spine run beyond any field of view


@dataclass
class Trunk:
    """Outline and wall parameters (mm) of one patient."""

    a0: float  # half width (left-right) of the skin outline at z = 0
    b_ant0: float  # centre-to-anterior-skin distance at z = 0
    b_post0: float  # centre-to-posterior-skin distance at z = 0
    ca1: float  # linear / quadratic change of the width along z (per 150 mm)
    ca2: float
    cb1: float
    cb2: float
    fat_lat: float  # subcutaneous fat thickness laterally, anteriorly, posteriorly
    fat_ant: float
    fat_post: float
    muscle: float  # abdominal wall muscle thickness
    z_dome_right: float  # top of the right / left hemidiaphragm
    z_dome_left: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Trunk":
        fat = float(rng.uniform(8.0, 30.0))
        z_r = float(rng.uniform(80.0, 98.0))
        return cls(
            a0=float(rng.uniform(138.0, 162.0)),
            b_ant0=float(rng.uniform(95.0, 118.0)),
            b_post0=float(rng.uniform(86.0, 100.0)),
            ca1=float(rng.uniform(0.0, 0.06)),
            ca2=float(rng.uniform(-0.02, 0.06)),
            cb1=float(rng.uniform(-0.04, 0.04)),
            cb2=float(rng.uniform(0.0, 0.05)),
            fat_lat=fat,
            fat_ant=fat * float(rng.uniform(0.8, 1.3)),
            fat_post=fat * float(rng.uniform(0.5, 0.8)),
            muscle=float(rng.uniform(10.0, 14.0)),
            z_dome_right=z_r,
            z_dome_left=z_r - float(rng.uniform(5.0, 18.0)),
        )

    # -- cavity sizes at z = 0 (for placing organs) ------------------------------------------
    @property
    def cavity_a(self) -> float:
        return self.a0 - self.fat_lat - self.muscle

    @property
    def cavity_b_ant(self) -> float:
        return self.b_ant0 - self.fat_ant - self.muscle

    @property
    def cavity_b_post(self) -> float:
        return self.b_post0 - self.fat_post - self.muscle

    @property
    def max_half_width(self) -> float:
        return self.a0 * (1 + abs(self.ca1) * 3 + abs(self.ca2) * 9)

    # -- implicit outline --------------------------------------------------------------------
    def frame(self, y, z):
        """Per-voxel scale factors of the outline along z and the anterior mask."""
        zn = z * (1.0 / 150.0)
        sa = 1.0 + (self.ca1 + self.ca2 * zn) * zn
        sb = 1.0 + (self.cb1 + self.cb2 * zn) * zn
        return sa, sb, y < 0

    def outline(self, x, y, z):
        """(signed distance to the skin, local subcutaneous fat thickness), both mm.

        The fat thickness blends the lateral, anterior and posterior values with the direction
        of the point from the trunk axis, so inner layers are ``skin + fat (+ muscle)``.
        """
        sa, sb, anterior = self.frame(y, z)
        a = sa * self.a0
        b = np.where(anterior, sb * self.b_ant0, sb * self.b_post0)
        skin = ellipse_sd(x, y, a, b)
        u = x / a
        v = y / b
        u *= u
        v *= v
        wy = v / (u + v + 1e-6)
        fat = self.fat_lat + (np.where(anterior, self.fat_ant, self.fat_post) - self.fat_lat) * wy
        return skin, fat

    def cavity_sd(self, x, y, z, extra: float = 0.0):
        """Signed distance to the abdominal / thoracic cavity (inside the muscle wall)."""
        skin, fat = self.outline(x, y, z)
        return skin + fat + (self.muscle + extra)

    def diaphragm_z(self, x, y):
        """Height (mm) of the diaphragm surface above (x, y): two domes, deep posterior recesses."""
        s = 0.5 + 0.5 * np.tanh(x * (1.0 / 40.0))
        zc = self.z_dome_right + (self.z_dome_left - self.z_dome_right) * s
        lat = np.maximum(np.abs(x) - 55.0, 0.0) * (1.0 / 70.0)
        post = np.maximum(y, 0.0) * (1.0 / self.b_post0)
        ant = np.maximum(-y, 0.0) * (1.0 / self.b_ant0)
        dip = 8.0 * np.exp(-(x * (1.0 / 45.0)) ** 2)
        return zc - 38.0 * lat * lat - 75.0 * post * post - 18.0 * ant * ant - dip

    @property
    def diaphragm_low(self) -> float:
        """The lowest point of :meth:`diaphragm_z` inside the cavity (for bounding boxes)."""
        half = self.max_half_width
        g = np.linspace(-1.0, 1.0, 81)
        xx, yy = np.meshgrid(g * half, g * 1.3 * max(self.b_ant0, self.b_post0))
        x = xx.astype(np.float32).ravel()
        y = yy.astype(np.float32).ravel()
        zd = self.diaphragm_z(x, y)
        inside = self.cavity_sd(x, y, zd.astype(np.float32)) < 0
        return float(zd[inside].min()) if inside.any() else float(zd.min())


@dataclass
class Spine:
    """Vertebral column and spinal canal (mm)."""

    canal_r: float
    canal_y: float
    body_lr: float  # vertebral body semi-axes
    body_ap: float
    body_y: float
    height: float  # vertebral body height
    disc: float  # disc height
    z_phase: float

    @classmethod
    def random(cls, rng: np.random.Generator, trunk: Trunk) -> "Spine":
        canal_r = float(rng.uniform(8.0, 10.0))
        canal_y = trunk.b_post0 - trunk.fat_post - float(rng.uniform(44.0, 52.0))
        body_ap = float(rng.uniform(14.0, 17.0))
        height = float(rng.uniform(24.0, 28.0))
        disc = float(rng.uniform(7.0, 10.0))
        return cls(
            canal_r=canal_r,
            canal_y=canal_y,
            body_lr=float(rng.uniform(20.0, 25.0)),
            body_ap=body_ap,
            body_y=canal_y - canal_r - 3.0 - body_ap,
            height=height,
            disc=disc,
            z_phase=float(rng.uniform(0.0, height + disc)),
        )

    @property
    def front_y(self) -> float:
        return self.body_y - self.body_ap


def _zbox(lo_xy, hi_xy, z0=-Z_EXTENT, z1=Z_EXTENT):
    return (lo_xy[0], lo_xy[1], z0), (hi_xy[0], hi_xy[1], z1)


def body_component(t: Trunk) -> Component:
    """Skin outline (subcutaneous fat, body mask), muscle wall, and cavity (visceral fat)."""
    half = t.max_half_width + 5
    hb = max(t.b_ant0, t.b_post0) * 1.3 + 5

    def layers(x, y, z, width):
        skin, fat = t.outline(x, y, z)
        w = width(skin)
        wall = skin + fat
        cav = wall + t.muscle
        return [
            Layer(skin, "subcutaneous_fat", L.SUBCUTANEOUS_FAT, width=w, body=True),
            Layer(wall, "muscle", L.MUSCLE, width=w),
            Layer(cav, "visceral_fat", L.VISCERAL_FAT, width=w),
        ]

    lo, hi = _zbox((-half, -hb), (half, hb))
    return Component("body", lo, hi, layers)


def back_muscles_component(t: Trunk, s: Spine, z_psoas_top: float) -> Component:
    """Paraspinal muscles (all levels) and psoas muscles (widening below ``z_psoas_top``)."""
    px = s.canal_r + 26.0
    py = s.canal_y + 20.0
    psx = s.body_lr + 16.0

    def layers(x, y, z, width):
        ax = np.abs(x)
        para = ellipse_sd(ax - px, y - py, 30.0, 27.0)
        r = np.clip((z_psoas_top - z) * 0.22, 0.0, 21.0)
        psoas = circle_sd(ax - psx - 0.4 * r, y - s.body_y, 0.0, 0.0, r + 0.5)
        psoas = np.maximum(psoas, z - z_psoas_top)
        return [Layer(smin(para, psoas, 6.0), "muscle", L.MUSCLE)]

    lo, hi = _zbox((-(px + 40), s.body_y - 30), (px + 40, py + 30))
    return Component("back muscles", lo, hi, layers)


def ribs_component(t: Trunk, s: Spine, z_lowest: float, spacing: float, drop: float, n_ribs: int) -> Component:
    """Ribs (cortical shell + marrow) in the wall, descending anteriorly; lower ribs are shorter.

    Rib ``k`` (0 = lowest) is centred at height ``z_lowest + k spacing`` at the back and
    ``drop`` mm lower at the front. Its angle from the posterior midline runs from 0.45 rad to
    1.9 rad (floating rib) .. 2.45 rad (upper ribs).
    """
    top = z_lowest + (n_ribs - 1) * spacing + 20.0
    half = t.max_half_width + 5
    hb = max(t.b_ant0, t.b_post0) * 1.3 + 5
    rr, rz = 4.5, 7.0  # half thickness (radial) and half height

    def layers(x, y, z, width):
        skin, fat = t.outline(x, y, z)
        phi = np.arctan2(np.abs(x), y)  # 0 posterior midline .. pi anterior midline
        back = np.exp(-(phi * (1.0 / 0.75)) ** 2)
        radial = skin + fat + (t.muscle * 0.5) + 34.0 * back
        u = (z - z_lowest + drop * 0.5 * (1.0 - np.cos(phi))) * (1.0 / spacing)
        k = np.clip(np.rint(u), 0.0, n_ribs - 1.0)  # nearest existing rib
        dz = (u - k) * spacing
        cross = (np.sqrt((radial * (1.0 / rr)) ** 2 + (dz * (1.0 / rz)) ** 2) - 1.0) * rr
        end = np.clip(1.9 + 0.25 * k, 1.9, 2.45)
        ang = np.maximum(0.45 - phi, phi - end) * 110.0
        sd = np.maximum(cross, ang)
        w = width(sd)
        return [
            Layer(sd, "cortical_bone", L.BONE, width=w),
            Layer(sd + 1.6, "trabecular_bone", L.BONE, width=w),
        ]

    lo, hi = (-half, -hb, z_lowest - drop - 15.0), (half, hb, top + 10.0)
    return Component("ribs", lo, hi, layers)


def thorax_component(t: Trunk, s: Spine) -> Component:
    """Diaphragm (muscle), mediastinal fat, heart and lung bases above the diaphragm."""
    half = t.max_half_width + 5
    hb = max(t.b_ant0, t.b_post0) * 1.3 + 5
    hx, hy = 15.0, -0.35 * t.b_ant0
    rot = rotation_matrix(rz=np.deg2rad(-30.0))

    def layers(x, y, z, width):
        zd = t.diaphragm_z(x, y)
        cav = t.cavity_sd(x, y, z)
        above = zd - z
        diaphragm = smax(cav, above + 5.0, 3.0)
        med = ellipse_sd(x - 12.0, y + 0.3 * t.b_ant0, 68.0, 0.62 * t.b_ant0)
        med = smin(med, ellipse_sd(x, y - s.body_y, 28.0, 40.0), 10.0)
        med_fat = smax(np.maximum(med, cav), above, 3.0)
        heart = ellipsoid_at(x, y, z, (hx, hy, t.z_dome_left + 45.0), (70.0, 0.5 * t.b_ant0, 62.0), rot)
        heart = smax(heart, above + 2.0, 3.0)
        lung = smax(smax(cav + 3.0, above, 3.0), -med, 3.0)
        return [
            Layer(diaphragm, "muscle", L.MUSCLE),
            Layer(med_fat, "visceral_fat", L.VISCERAL_FAT),
            Layer(heart, "heart", L.HEART),
            Layer(lung, "lung", L.LUNG),
        ]

    lo, hi = (-half, -hb, t.diaphragm_low - 10.0), (half, hb, Z_EXTENT)
    return Component("thorax", lo, hi, layers)


def spine_component(s: Spine) -> Component:
    """Discs, vertebral bodies (cortical shell + trabecular bone), posterior arch, canal (CSF)."""
    period = s.height + s.disc
    arch_r = s.canal_r + 3.5

    def layers(x, y, z, width):
        u = (z - s.z_phase) * (1.0 / period)
        zl = (u - np.rint(u)) * period  # height relative to the nearest vertebral body centre
        azl = np.abs(zl)
        column = ellipse_sd(x, y - s.body_y, s.body_lr, s.body_ap)
        w = width(column)
        vb = np.maximum(column, azl - 0.5 * s.height)
        ring = np.abs(circle_sd(x, y, 0.0, s.canal_y, arch_r)) - 3.5
        spinous = capsule_sd(x, y, zl, (0.0, s.canal_y + s.canal_r + 3.0, 0.0),
                             (0.0, s.canal_y + s.canal_r + 30.0, -8.0), 4.0)
        ax = np.abs(x)
        transverse = capsule_sd(ax, y, zl, (s.canal_r + 3.0, s.canal_y - 3.0, 0.0),
                                (s.canal_r + 22.0, s.canal_y + 2.0, 0.0), 4.0)
        arch = np.minimum(np.minimum(ring, spinous), transverse)
        arch = np.maximum(arch, azl - (0.5 * s.height - 3.0))
        canal = circle_sd(x, y, 0.0, s.canal_y, s.canal_r)
        return [
            Layer(column, "intervertebral_disc", L.INTERVERTEBRAL_DISC, width=w),
            Layer(vb, "cortical_bone", L.BONE),
            Layer(vb + 2.0, "trabecular_bone", L.BONE),
            Layer(arch, "cortical_bone", L.BONE),
            Layer(arch + 1.5, "trabecular_bone", L.BONE),
            Layer(canal, "csf", L.SPINAL_CANAL),
        ]

    xr = s.canal_r + 40.0
    lo, hi = _zbox((-xr, s.front_y - 2.0), (xr, s.canal_y + s.canal_r + 40.0))
    return Component("spine", lo, hi, layers)


def trunk_components(t: Trunk, s: Spine, z_psoas_top: float, ribs: dict) -> List[Component]:
    """Body, back muscles, ribs and thorax, in painting order (the spine is painted last)."""
    return [
        body_component(t),
        back_muscles_component(t, s, z_psoas_top),
        ribs_component(t, s, **ribs),
        thorax_component(t, s),
    ]
