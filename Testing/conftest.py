"""Shared pytest fixtures. Tests make their own data (phantom, random volumes) in tmp_path."""

import os
import sys

import numpy as np
import pytest
import SimpleITK as sitk

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

pytest_plugins = ["fixtures_mrml"]


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


@pytest.fixture
def image_factory():
    return make_image


@pytest.fixture
def cli(capsys):
    """Run ``cmsynth`` in-process: returns (exit_code, stdout, stderr)."""
    from CrossModalitySynthLib.cli.main import main

    def _run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


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
