"""Writes onto a real full disk: a 1 MiB tmpfs mounted for the test.

Mounting needs root (CI runs the tests as root). Where it cannot be mounted the tests fail when
the CI environment variable is set, and are skipped with the reason elsewhere.
Each test checks: non-zero exit, "not enough space on" the mount, and nothing left behind.
"""

import os
import subprocess

import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.phantom import write_cases

FILLER = "filler.bin"


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs holding a filler file, so that about 100 KiB stay free."""
    mnt = tmp_path / "small_fs"
    mnt.mkdir()
    why = None
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
    else:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            why = f"mount -t tmpfs failed: {r.stderr.strip()}"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the full-disk tests: {why}")
        pytest.skip(why)
    try:
        with open(mnt / FILLER, "wb") as f:
            f.write(b"\0" * (1024 - 100) * 1024)
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)  # a library still holds a file open


def left_behind(mnt):
    return sorted(p for p in os.listdir(mnt) if p != FILLER)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    write_cases(str(root), n_cases=1, seed=3, size="small")
    return os.path.join(str(root), "case_000")


@pytest.fixture(scope="module")
def mr2ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp"))
    return str(root / "mr2ct")


def assert_no_space(code, err, mnt):
    assert code != 0
    assert f"not enough space on {mnt}" in err, err
    assert "Traceback" not in err
    assert left_behind(mnt) == []


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".nhdr"])
def test_convert_onto_full_disk(full_disk, phantom, cli, suffix):
    code, _, err = cli("convert", os.path.join(phantom, "ct.nii.gz"), full_disk / ("d" + suffix))
    assert_no_space(code, err, full_disk)


def test_convert_that_fits_still_works(full_disk, phantom, cli):
    os.remove(full_disk / FILLER)
    code, _, err = cli("convert", os.path.join(phantom, "ct.nii.gz"), full_disk / "d.nii.gz")
    assert code == 0, err
    assert left_behind(full_disk) == ["d.nii.gz"]


def test_synthesize_onto_full_disk(full_disk, phantom, mr2ct, cli):
    code, _, err = cli("synthesize", "--model", mr2ct, "--progress", "none", "--out", full_disk / "s.nii.gz",
                       os.path.join(phantom, "t1_in.nii.gz"), os.path.join(phantom, "t1_opp.nii.gz"))
    assert_no_space(code, err, full_disk)


def test_run_onto_full_disk(full_disk, phantom, mr2ct, cli):
    code, _, err = cli("run", "--model", mr2ct, "--progress", "none", "--out", full_disk / "case",
                       os.path.join(phantom, "t1_in.nii.gz"), os.path.join(phantom, "t1_opp.nii.gz"))
    assert_no_space(code, err, full_disk)


def test_phantom_onto_full_disk(full_disk, cli):
    code, _, err = cli("phantom", "--out", full_disk / "ph")
    assert_no_space(code, err, full_disk)
