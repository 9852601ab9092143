"""Painting the implicit anatomy onto a voxel grid, with partial volume.

For every voxel centre ``p`` (physical mm, from the grid's origin, spacing and direction) the
renderer evaluates each component at the deformed reference position ``q = p + u(p)`` and paints
its layers in order. A layer covers a voxel with the fraction

    f = clip(0.5 - sd / W, 0, 1),   W = sum_i |sd(index + e_i) - sd(index)|  (mm, L1),

i.e. a linear ramp whose width is the voxel's extent along the surface normal: the box-filter
partial volume of an (almost) planar interface, right for anisotropic and oblique voxels. W is
capped at 1.5 x the sum of the spacings, so kinks and jumps of a distance far from its surface
do not smear it.
Every channel (CT HU, MR water and fat signals ...) is composited linearly,
``v <- v + f (v_tissue - v)``, which is how partial volume mixes CT attenuation and complex MR
magnetisation. The label of a voxel is the last layer with ``f >= 0.5``.

Speed: ``q`` is computed exactly on a coarse sub-grid (every ~12 mm) and interpolated linearly
(``p`` is affine in the index, ``u`` is smooth); the volume is processed in slabs of about a
million voxels; each component is evaluated only inside the index box that can reach its
reference-space bounding box. Within that box, on fine grids, a narrow band is used: the layers
are first evaluated at one voxel per in-plane block of ``BLOCK_MM``; blocks farther from every
surface than the distance can change within a block plus half a ramp are filled with the last
covering layer's values, and only the remaining blocks are evaluated voxel by voxel (the z part
of their ramp width comes from the block samples of the neighbouring slices). Labels agree with
full evaluation (a test checks it); values differ only inside partial-volume ramps.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..geometry import Grid
from .components import Component
from .deformation import Deformation, maybe

COARSE_STEP_MM = 12.0
SLAB_VOXELS = 1_000_000
BLOCK_MM = 3.0


class Rendered:
    """Arrays (z, y, x) on one grid: ``values`` (C, z, y, x) float32, ``labels`` and ``body`` uint8."""

    def __init__(self, grid: Grid, channels: Sequence[str], values: np.ndarray, labels: np.ndarray, body: np.ndarray):
        self.grid = grid
        self.channels = tuple(channels)
        self.values = values
        self.labels = labels
        self.body = body

    def channel(self, name: str) -> np.ndarray:
        return self.values[self.channels.index(name)]


def _upsample_last(a: np.ndarray, step: int, n: int) -> np.ndarray:
    """Linear interpolation along the last axis from nodes every ``step`` samples to ``n`` samples."""
    if step == 1:
        return np.ascontiguousarray(a[..., :n])
    t = np.arange(step, dtype=np.float32) * np.float32(1.0 / step)
    a0 = a[..., :-1, None]
    d = (a[..., 1:] - a[..., :-1])[..., None]
    out = (a0 + d * t).reshape(a.shape[:-1] + ((a.shape[-1] - 1) * step,))
    return np.ascontiguousarray(out[..., :n])


class _GridMapper:
    """Index <-> physical mapping and the coarse deformed-position lattice for one grid."""

    def __init__(self, grid: Grid, deformation: Deformation, pad: int = 1):
        self.grid = grid
        self.size = tuple(int(s) for s in grid.size)  # (nx, ny, nz)
        # in-plane sizes rounded up to whole blocks (positions beyond the grid are still valid)
        self.padded = tuple(-(-n // pad) * pad for n in self.size[:2])
        self.spacing = np.asarray(grid.spacing, dtype=float)
        self.matrix = grid.direction_matrix @ np.diag(self.spacing)  # index -> physical offset
        self.origin = np.asarray(grid.origin, dtype=float)
        self.inverse = np.linalg.inv(self.matrix)
        self.steps = tuple(max(1, int(round(COARSE_STEP_MM / s))) for s in self.spacing)
        full = self.padded + self.size[2:]
        counts = [int(math.ceil(n / st)) + 1 for n, st in zip(full, self.steps)]
        ix = np.arange(counts[0]) * self.steps[0]
        iy = np.arange(counts[1]) * self.steps[1]
        iz = np.arange(counts[2]) * self.steps[2]
        zz, yy, xx = np.meshgrid(iz, iy, ix, indexing="ij")
        idx = np.stack([xx, yy, zz], axis=-1).astype(float)
        pts = idx @ self.matrix.T + self.origin
        q = deformation(pts)  # (ncz, ncy, ncx, 3)
        self.coarse = np.ascontiguousarray(np.moveaxis(q, -1, 0)).astype(np.float32)  # (3, ncz, ncy, ncx)

    def slab_positions(self, k0: int, k1: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Deformed reference positions (qx, qy, qz), each (k1-k0, ny, nx) float32, of a slab."""
        nx, ny = self.padded
        sx, sy, sz = self.steps
        k = np.arange(k0, k1)
        kc = k // sz
        t = ((k - kc * sz) / sz).astype(np.float32)[None, :, None, None]
        q = self.coarse[:, kc] * (1 - t) + self.coarse[:, kc + 1] * t  # (3, nk, ncy, ncx)
        q = np.moveaxis(_upsample_last(np.moveaxis(q, 2, -1), sy, ny), -1, 2)  # (3, nk, ny, ncx)
        q = _upsample_last(q, sx, nx)  # (3, nk, ny, nx)
        return q[0], q[1], q[2]

    def index_box(self, lo: np.ndarray, hi: np.ndarray, margin: float) -> Optional[Tuple[int, int, int, int, int, int]]:
        """Index ranges [i0,i1) x [j0,j1) x [k0,k1) of voxels whose physical point may reach the box."""
        lo = lo - margin
        hi = hi + margin
        corners = np.array([[(lo, hi)[(b >> d) & 1][d] for d in range(3)] for b in range(8)])
        idx = (corners - self.origin) @ self.inverse.T
        mn = np.floor(idx.min(axis=0)).astype(int)
        mx = np.ceil(idx.max(axis=0)).astype(int) + 1
        box = []
        limits = self.padded + self.size[2:]
        for d in range(3):
            a = max(0, int(mn[d]))
            b = min(limits[d], int(mx[d]))
            if a >= b:
                return None
            box += [a, b]
        return tuple(box)


def _ramp_width(sd: np.ndarray, spacing_zyx: Sequence[float]) -> np.ndarray:
    """Partial-volume ramp width W (mm): L1 norm of the forward differences of ``sd`` per index step."""
    w = np.zeros(sd.shape, dtype=np.float32)
    for ax in range(3):
        n = sd.shape[ax]
        if n < 2:
            w += np.float32(0.5 * spacing_zyx[ax])
            continue
        d = np.abs(np.diff(sd, axis=ax))
        head = [slice(None)] * 3
        head[ax] = slice(0, n - 1)
        w[tuple(head)] += d
        last = [slice(None)] * 3
        last[ax] = slice(n - 1, n)
        tail = [slice(None)] * 3
        tail[ax] = slice(n - 2, n - 1)
        w[tuple(last)] += d[tuple(tail)]
    np.maximum(w, np.float32(1e-3), out=w)
    return w


def render(
    components: Sequence[Component],
    grid: Grid,
    tissue_values: Dict[str, Sequence[float]],
    channels: Sequence[str],
    background: Sequence[float],
    deformation: Optional[Deformation] = None,
    slab_voxels: int = SLAB_VOXELS,
    block_mm: float = BLOCK_MM,
) -> Rendered:
    """Paint ``components`` on ``grid``.

    Args:
        components: in painting order (later over earlier).
        grid: the target grid (ITK convention; arrays come out (z, y, x)).
        tissue_values: tissue name -> one value per channel.
        channels: channel names (e.g. ``("hu",)``).
        background: channel values outside the body (air).
        deformation: the case's smooth deformation (None: identity).
        block_mm: in-plane block size for the narrow-band evaluation (0: evaluate every voxel).

    Returns:
        :class:`Rendered` with float32 channel values, uint8 labels and uint8 body mask.
    """
    deformation = maybe(deformation)
    spacing = np.asarray(grid.spacing, dtype=float)
    block = max(1, int(round(block_mm / float(min(spacing[0], spacing[1]))))) if block_mm > 0 else 1
    mapper = _GridMapper(grid, deformation, pad=block)
    nx, ny, nz = mapper.size
    nxp, nyp = mapper.padded
    n_ch = len(channels)
    table = {name: np.asarray(v, dtype=np.float32).reshape(n_ch) for name, v in tissue_values.items()}
    values = np.empty((n_ch, nz, nyp, nxp), dtype=np.float32)
    for c in range(n_ch):
        values[c].fill(np.float32(background[c]))
    labels = np.zeros((nz, nyp, nxp), dtype=np.uint8)
    body = np.zeros((nz, nyp, nxp), dtype=np.uint8)
    canvas = _Canvas(table, values, labels, body, tuple(float(s) for s in spacing[::-1]), deformation)
    margin = deformation.max_displacement + 2.0 * float(spacing.max()) + 1.0
    boxes: List[Tuple[Component, Tuple[int, ...]]] = []
    for comp in components:
        box = mapper.index_box(comp.lo, comp.hi, margin)
        if box is not None:
            i0, i1, j0, j1, k0, k1 = box
            # align the in-plane box to whole blocks (the canvas is padded to whole blocks)
            i0, j0 = (i0 // block) * block, (j0 // block) * block
            i1 = min(nxp, -(-i1 // block) * block)
            j1 = min(nyp, -(-j1 // block) * block)
            boxes.append((comp, (i0, i1, j0, j1, k0, k1)))

    slab = max(4, int(slab_voxels // max(1, nxp * nyp)))
    for k0 in range(0, nz, slab):
        k1 = min(nz, k0 + slab)
        qx, qy, qz = mapper.slab_positions(k0, k1)
        for comp, (i0, i1, j0, j1, c0, c1) in boxes:
            a, b = max(c0, k0), min(c1, k1)
            if a >= b:
                continue
            sub = (slice(a - k0, b - k0), slice(j0, j1), slice(i0, i1))
            vol = (slice(a, b), slice(j0, j1), slice(i0, i1))
            if block > 1:
                canvas.paint_blocked(comp, (qx, qy, qz), k0, (a, b, j0, j1, i0, i1), block)
            else:
                canvas.paint_dense(comp, qx[sub], qy[sub], qz[sub], vol)
    crop = (slice(None), slice(0, ny), slice(0, nx))
    return Rendered(
        grid,
        channels,
        np.ascontiguousarray(values[(slice(None),) + crop]),
        np.ascontiguousarray(labels[crop]),
        np.ascontiguousarray(body[crop]),
    )


def _tile_width(sd: np.ndarray) -> np.ndarray:
    """In-plane ramp width for tiles laid out (y, x, n): |d/dy| + |d/dx| (forward, edge-padded)."""
    w = np.zeros(sd.shape, dtype=np.float32)
    for ax in (0, 1):
        if sd.shape[ax] < 2:
            continue
        d = np.abs(np.diff(sd, axis=ax))
        if ax == 0:
            w[:-1] += d
            w[-1:] += d[-1:]
        else:
            w[:, :-1] += d
            w[:, -1:] += d[:, -1:]
    return w


class _Canvas:
    """The output arrays and the two ways of painting a component's layers onto them."""

    def __init__(self, table, values, labels, body, spacing_zyx, deformation: Deformation):
        self.table = table
        self.values = values
        self.labels = labels
        self.body = body
        self.spacing_zyx = spacing_zyx
        # the largest ramp half-width and sd change per mm, with the deformation's stretching
        self.lipschitz = 1.6 * (1.0 + 0.4)
        self.half_ramp = 0.5 * self.lipschitz * sum(spacing_zyx)
        # ramp widths beyond this come from kinks or jumps of an sd far from its surface
        self.max_width = np.float32(1.5 * sum(spacing_zyx))

    def width(self, sd: np.ndarray) -> np.ndarray:
        return _ramp_width(sd, self.spacing_zyx)

    def paint_dense(self, comp: Component, x, y, z, vol) -> None:
        for layer in comp.layers(x, y, z, self.width):
            w = layer.width if layer.width is not None else self.width(layer.sd)
            self._composite(layer, w, self.values[(slice(None),) + vol], self.labels[vol], self.body[vol])

    def paint_blocked(self, comp: Component, q, k0: int, box, block: int) -> None:
        """Evaluate at one voxel per block; fill blocks far from every surface, evaluate the rest.

        ``q``: the slab's (qx, qy, qz), each (nk, ny, nx) contiguous; ``k0``: the slab's first
        slice; ``box``: (a, b, j0, j1, i0, i1) volume index ranges, in-plane whole blocks.
        """
        a, b, j0, j1, i0, i1 = box
        qx, qy, qz = q
        sub = (slice(a - k0, b - k0), slice(j0, j1), slice(i0, i1))
        vol = (slice(a, b), slice(j0, j1), slice(i0, i1))
        h = block // 2
        csub = (slice(a - k0, b - k0), slice(j0 + h, j1, block), slice(i0 + h, i1, block))
        coarse = comp.layers(qx[csub], qy[csub], qz[csub], lambda sd: np.float32(1.0))
        shape = coarse[0].sd.shape
        dy, dx = self.spacing_zyx[1], self.spacing_zyx[2]
        reach = self.lipschitz * float(np.hypot(h * dy, h * dx)) + self.half_ramp + 0.5
        near = np.zeros(shape, dtype=bool)
        for layer in coarse:
            near |= np.abs(layer.sd) < reach
        if near.mean() > 0.6:
            self.paint_dense(comp, qx[sub], qy[sub], qz[sub], vol)
            return
        # far blocks: every layer covers them fully or not at all -> the last covering layer wins
        final = np.full(shape, -1, dtype=np.int16)
        body_far = None
        for i, layer in enumerate(coarse):
            inside = (layer.sd < 0) & ~near
            final[inside] = i
            if layer.body:
                body_far = inside
        if (final >= 0).any():
            full = np.repeat(np.repeat(final, block, axis=1), block, axis=2)
            mask = full >= 0
            np.maximum(full, 0, out=full)
            for c in range(self.values.shape[0]):
                lut = np.array([self.table[l.tissue][c] for l in coarse], dtype=np.float32)
                np.copyto(self.values[(c,) + vol], lut[full], where=mask)
            lut = np.array([l.label for l in coarse], dtype=np.uint8)
            np.copyto(self.labels[vol], lut[full], where=mask)
        if body_far is not None and body_far.any():
            bf = np.repeat(np.repeat(body_far, block, axis=1), block, axis=2)
            np.copyto(self.body[vol], np.uint8(1), where=bf)
        if not near.any():
            return
        # near blocks: full resolution, gathered as (block, block, n) tiles via flat indices
        kz, by, bx = np.nonzero(near)
        nyp, nxp = qx.shape[1], qx.shape[2]
        plane = nyp * nxp
        base = (kz + (a - k0)) * plane + (j0 + by * block) * nxp + (i0 + bx * block)
        off = (np.arange(block)[:, None] * nxp + np.arange(block)[None, :]).ravel()
        flat = (off[:, None] + base[None, :]).ravel()
        tile = (block, block, len(kz))
        xb = qx.reshape(-1).take(flat).reshape(tile)
        yb = qy.reshape(-1).take(flat).reshape(tile)
        zb = qz.reshape(-1).take(flat).reshape(tile)
        fine = comp.layers(xb, yb, zb, _tile_width)
        gflat = flat + k0 * plane
        n_ch = self.values.shape[0]
        vflat = [self.values[c].reshape(-1) for c in range(n_ch)]
        lflat = self.labels.reshape(-1)
        bflat = self.body.reshape(-1)
        vb = np.stack([v.take(gflat).reshape(tile) for v in vflat])
        lb = lflat.take(gflat).reshape(tile)
        bb = bflat.take(gflat).reshape(tile) if any(l.body for l in fine) else None
        dz = self.spacing_zyx[0]
        for layer, lc in zip(fine, coarse):
            # z part of the ramp width from the coarse samples of neighbouring slices
            sdc = lc.sd
            if sdc.shape[0] > 1:
                gz = np.abs(np.diff(sdc, axis=0))
                gz = np.concatenate([gz, gz[-1:]], axis=0)[kz, by, bx]
            else:
                gz = np.full(len(kz), 0.5 * dz, dtype=np.float32)
            w = layer.width if layer.width is not None else _tile_width(layer.sd)
            w = w + gz
            self._composite(layer, w, vb, lb, bb)
        for c in range(n_ch):
            vflat[c][gflat] = vb[c].ravel()
        lflat[gflat] = lb.ravel()
        if bb is not None:
            bflat[gflat] = bb.ravel()

    def _composite(self, layer, w, values, labels, body) -> None:
        sd = layer.sd
        f = sd / np.clip(w, np.float32(1e-3), self.max_width)
        np.subtract(np.float32(0.5), f, out=f)
        np.clip(f, 0.0, 1.0, out=f)
        if not f.any():
            return
        for c, v in enumerate(self.table[layer.tissue]):
            ch = values[c]
            tmp = np.subtract(v, ch)
            tmp *= f
            ch += tmp
        inside = sd <= 0
        np.copyto(labels, np.uint8(layer.label), where=inside)
        if layer.body and body is not None:
            np.copyto(body, np.uint8(1), where=inside)
