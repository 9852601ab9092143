"""Small volumes and process helpers shared by the tests: random rotations and images on a given
grid, small phantom cases, the live members of a process group."""

import os

import numpy as np
import SimpleITK as sitk


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation matrix (det +1), uniformly distributed."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def make_image(
    shape_zyx=(6, 7, 8),
    spacing=(0.8, 1.1, 2.5),
    origin=(-10.0, 20.0, 5.5),
    direction=None,
    dtype=np.float32,
    seed=0,
) -> sitk.Image:
    """A random scalar image with the given grid (direction as 9 numbers, default identity)."""
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        arr = rng.integers(-1000, 2000, size=shape_zyx).astype(dtype)
    else:
        arr = rng.normal(size=shape_zyx).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(tuple(float(v) for v in np.asarray(direction).ravel()))
    return img


def t1dual_phantom_cases(seeds):
    """[([T1 in-phase, T1 opposed-phase], body mask)] of small phantom cases, one per seed."""
    from CrossModalitySynthLib.phantom import make_case

    out = []
    for seed in seeds:
        case = make_case(seed, size="small")
        out.append(([case.images["t1_in.nii.gz"], case.images["t1_opp.nii.gz"]], case.images["body.nii.gz"]))
    return out


def live_group_members(pgid):
    """PIDs of processes of group ``pgid`` that are not zombies (from /proc)."""
    live = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            live.append(int(entry))
    return live
