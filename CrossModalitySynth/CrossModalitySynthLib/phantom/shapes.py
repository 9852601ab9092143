"""Signed-distance primitives for the phantom's implicit anatomy.

Every function takes coordinate arrays ``x, y, z`` in millimetres (any shape, float32 in the
renderer) and returns an approximate signed distance in millimetres: negative inside, positive
outside, zero on the surface. Only the sign and the behaviour within a few millimetres of the
surface matter: the renderer turns the distance into a partial-volume fraction using its local
gradient, so slightly mis-scaled distances (the ellipse and ellipsoid formulas) are harmless.

Parameters (centres, semi-axes, radii) are plain Python floats so that NumPy keeps float32
arrays float32.
"""

from typing import Optional, Sequence, Tuple

import numpy as np

Vec3 = Tuple[float, float, float]


def _f(v) -> float:
    return float(v)


def rotation_matrix(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
    """Rotation R = Rz @ Ry @ Rx for angles in radians about the x, y and z axes."""
    cx, sx = np.cos(rx), np.sin(rx)
    cy, sy = np.cos(ry), np.sin(ry)
    cz, sz = np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def to_local(x, y, z, center: Sequence[float], rot: Optional[np.ndarray] = None):
    """Coordinates relative to ``center`` in a frame whose axes are the columns of ``rot``.

    ``local = rot.T @ (p - center)``; with ``rot`` None the frame is only translated.
    """
    dx = x - _f(center[0])
    dy = y - _f(center[1])
    dz = z - _f(center[2])
    if rot is None:
        return dx, dy, dz
    r = [[_f(v) for v in row] for row in np.asarray(rot)]
    lx = r[0][0] * dx + r[1][0] * dy + r[2][0] * dz
    ly = r[0][1] * dx + r[1][1] * dy + r[2][1] * dz
    lz = r[0][2] * dx + r[1][2] * dy + r[2][2] * dz
    return lx, ly, lz


def ellipse_sd(x, y, a, b):
    """Signed distance to the ellipse x^2/a^2 + y^2/b^2 = 1 (an infinite cylinder along z).

    ``a`` and ``b`` may be arrays (semi-axes varying with position). Uses the scaled-radius
    estimate ``(k0 - 1) * k0 / k1`` with the ratio clamped to the semi-axis range, which is exact
    on the axes, accurate near the outline and finite at the centre.
    """
    u = x / a
    v = y / b
    k0 = np.sqrt(u * u + v * v)
    ua = u / a
    vb = v / b
    k1 = np.sqrt(ua * ua + vb * vb)
    ratio = k0 / np.maximum(k1, 1e-12)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    ratio = np.clip(ratio, lo, hi)
    return (k0 - 1.0) * ratio


def ellipsoid_sd(lx, ly, lz, a: float, b: float, c: float):
    """Signed distance to the axis-aligned ellipsoid with semi-axes a, b, c (local coordinates)."""
    a, b, c = _f(a), _f(b), _f(c)
    u = lx * (1.0 / a)
    v = ly * (1.0 / b)
    w = lz * (1.0 / c)
    k0 = np.sqrt(u * u + v * v + w * w)
    u *= 1.0 / a
    v *= 1.0 / b
    w *= 1.0 / c
    k1 = np.sqrt(u * u + v * v + w * w)
    ratio = np.clip(k0 / np.maximum(k1, 1e-12), min(a, b, c), max(a, b, c))
    return (k0 - 1.0) * ratio


def ellipsoid_at(x, y, z, center: Sequence[float], axes: Sequence[float], rot: Optional[np.ndarray] = None):
    """Signed distance to an ellipsoid with given centre, semi-axes and orientation."""
    lx, ly, lz = to_local(x, y, z, center, rot)
    return ellipsoid_sd(lx, ly, lz, *axes)


def sphere_sd(x, y, z, center: Sequence[float], radius: float):
    dx = x - _f(center[0])
    dy = y - _f(center[1])
    dz = z - _f(center[2])
    return np.sqrt(dx * dx + dy * dy + dz * dz) - _f(radius)


def circle_sd(x, y, cx, cy, radius):
    """Signed distance to a circle in the x-y plane (an infinite cylinder along z)."""
    dx = x - cx
    dy = y - cy
    return np.sqrt(dx * dx + dy * dy) - radius


def capsule_sd(x, y, z, a: Sequence[float], b: Sequence[float], radius: float):
    """Signed distance to the capsule (segment a-b swept by a sphere of ``radius``)."""
    ax, ay, az = (_f(v) for v in a)
    bx, by, bz = (_f(v) for v in b)
    ex, ey, ez = bx - ax, by - ay, bz - az
    ee = ex * ex + ey * ey + ez * ez
    px = x - ax
    py = y - ay
    pz = z - az
    if ee <= 0:
        return np.sqrt(px * px + py * py + pz * pz) - _f(radius)
    t = (px * ex + py * ey + pz * ez) * (1.0 / ee)
    np.clip(t, 0.0, 1.0, out=t)
    px -= t * ex
    py -= t * ey
    pz -= t * ez
    return np.sqrt(px * px + py * py + pz * pz) - _f(radius)


def plane_sd(x, y, z, point: Sequence[float], normal: Sequence[float]):
    """Signed distance to a plane; positive on the side the (normalised) normal points to."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    return (
        (x - _f(point[0])) * _f(n[0]) + (y - _f(point[1])) * _f(n[1]) + (z - _f(point[2])) * _f(n[2])
    )


def smin(a, b, k: float):
    """Smooth minimum (union) of two distances; ``k`` (mm) is the blending width."""
    k = _f(k)
    if k <= 0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) * (1.0 / k)
    return np.minimum(a, b) - (0.25 * k) * h * h


def smax(a, b, k: float):
    """Smooth maximum (intersection) of two distances; ``k`` (mm) is the blending width."""
    k = _f(k)
    if k <= 0:
        return np.maximum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) * (1.0 / k)
    return np.maximum(a, b) + (0.25 * k) * h * h


def union(*sds, k: float = 0.0):
    """Smooth union of several distances (left to right)."""
    out = sds[0]
    for s in sds[1:]:
        out = smin(out, s, k)
    return out


def unit(v: Sequence[float]) -> Vec3:
    a = np.asarray(v, dtype=float)
    a = a / np.linalg.norm(a)
    return (float(a[0]), float(a[1]), float(a[2]))
