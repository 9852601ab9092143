"""Test data for the reader-study tests (no tests in this file).

``ct_like`` makes a small CT-like volume in HU in a few milliseconds (elliptic body of soft
tissue in fat, a liver, a spine, air around it, noise). "Real" images are noisy; "synthetic" ones
are blurred, on another grid (spacing, origin, direction) and in another format, so that the
preparation has to remove every difference but the voxel values.
"""

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from CrossModalitySynthLib.reader_study.analysis import Reading


def ct_like(
    seed: int,
    shape_zyx=(20, 40, 48),
    spacing=(2.0, 2.0, 4.0),
    origin=(-48.0, -40.0, 10.0),
    direction: Optional[Sequence[float]] = None,
    blur: float = 0.0,
    noise: float = 25.0,
) -> sitk.Image:
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape_zyx
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    cx, cy = nx / 2 + rng.uniform(-2, 2), ny / 2 + rng.uniform(-2, 2)
    ax, ay = nx * rng.uniform(0.32, 0.42), ny * rng.uniform(0.30, 0.40)
    r = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
    arr = np.full(shape_zyx, -1000.0)
    arr[r < 1.0] = -100.0  # fat
    arr[r < 0.75] = 40.0  # soft tissue
    liver = ((x - cx + ax * 0.3) / (ax * 0.35)) ** 2 + ((y - cy + ay * 0.1) / (ay * 0.4)) ** 2 < 1.0
    arr[liver] = 60.0
    spine = ((x - cx) ** 2 + (y - cy - ay * 0.6) ** 2) < (min(ax, ay) * 0.15) ** 2
    arr[spine] = 700.0
    # a little variation along z so slices differ
    arr += 10.0 * np.sin(z / 3.0 + rng.uniform(0, 6)) * (r < 0.75)
    arr += rng.normal(0.0, noise, size=shape_zyx) * (r < 1.0)
    if blur:
        arr = ndimage.gaussian_filter(arr, blur)
    img = sitk.GetImageFromArray(np.rint(arr).astype(np.int16))
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in origin])
    if direction is not None:
        img.SetDirection([float(d) for d in direction])
    return img


def rotation_z(deg: float) -> List[float]:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]


def write_dataset(root, n_patients: int, seed: int = 0, real_only=(), synthetic_only=()) -> Dict[str, str]:
    """root/real/pXX.nii.gz (noisy, 2 x 2 x 4 mm) and root/synthetic/pXX.nrrd (blurred copy of
    another patient, 1.5 x 1.5 x 3 mm, shifted origin, rotated 5 degrees). Returns the folders."""
    real_dir, syn_dir = os.path.join(root, "real"), os.path.join(root, "synthetic")
    os.makedirs(real_dir, exist_ok=True)
    os.makedirs(syn_dir, exist_ok=True)
    for i in range(n_patients):
        pid = f"p{i:02d}"
        if pid not in synthetic_only:
            sitk.WriteImage(ct_like(seed + i), os.path.join(real_dir, pid + ".nii.gz"))
        if pid not in real_only:
            syn = ct_like(
                seed + 1000 + i, shape_zyx=(26, 54, 64), spacing=(1.5, 1.5, 3.0), origin=(-30.0, -70.0, -5.0),
                direction=rotation_z(5.0), blur=1.2, noise=10.0,
            )
            sitk.WriteImage(syn, os.path.join(syn_dir, pid + ".nrrd"))
    return {"real": real_dir, "synthetic": syn_dir}


def simulated_readings(
    n_images: int,
    reader_ids: Sequence[str],
    policy: str,
    seed: int = 0,
    real_fraction: float = 0.5,
    versions: Sequence[str] = ("v1",),
) -> List[Reading]:
    """Readings of ``n_images`` shared images by each reader: policy "random" (answer and
    confidence uniformly at random) or "perfect" (always right, confidence 5)."""
    rng = np.random.default_rng(seed)
    truths = ["real" if rng.uniform() < real_fraction else "synthetic" for _ in range(n_images)]
    out = []
    for rid in reader_ids:
        for i, truth in enumerate(truths):
            if policy == "perfect":
                answer, conf = truth, 5
            else:
                answer = "real" if rng.uniform() < 0.5 else "synthetic"
                conf = int(rng.integers(1, 6))
            version = None if truth == "real" else versions[i % len(versions)]
            out.append(Reading(rid, i + 1, f"t_{i:06x}", truth, answer, conf, f"p{i}", version, 1.0))
    return out
