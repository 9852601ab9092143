"""Volume IO: every file format round-trips geometry and values; bad files give one clear error."""

import os

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testsupport.images import make_image, random_rotation
from CrossModalitySynthLib.errors import InputError, OutputError
from CrossModalitySynthLib.geometry import same_grid
from CrossModalitySynthLib.io import read_volume, write_volume

FORMATS = [".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    suffix=st.sampled_from(FORMATS),
    seed=st.integers(0, 2**31 - 1),
    spacing=st.tuples(*[st.floats(0.3, 9.0)] * 3),
    dtype=st.sampled_from([np.int16, np.uint8, np.float32]),
)
def test_round_trip_keeps_geometry_and_values(tmp_path_factory, suffix, seed, spacing, dtype):
    rng = np.random.default_rng(seed)
    direction = random_rotation(rng)
    origin = tuple(rng.uniform(-300, 300, 3))
    img = make_image((5, 6, 7), spacing=spacing, origin=origin, direction=direction, dtype=dtype, seed=seed)
    path = str(tmp_path_factory.mktemp("rt") / f"vol{suffix}")
    write_volume(img, path)
    back = read_volume(path)
    # NIfTI keeps origin/spacing/direction as float32 (a limit of the format): tolerance is one
    # float32 rounding step of the largest coordinate; NRRD and MetaImage store them exactly.
    tol = 1e-6 + (1.2e-7 * max(abs(v) for v in origin) if ".nii" in suffix else 0.0)
    assert same_grid(img, back, tol=tol)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    assert back.GetPixelID() == img.GetPixelID()


def test_write_leaves_no_temporary_files(tmp_path):
    for suffix in FORMATS:
        write_volume(make_image(), str(tmp_path / f"a{suffix}"))
    leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".cmsynth")]
    assert leftovers == []


def test_existing_output_refused_unless_overwrite(tmp_path):
    path = str(tmp_path / "a.nii.gz")
    write_volume(make_image(seed=1), path)
    before = open(path, "rb").read()
    with pytest.raises(OutputError, match="already exists"):
        write_volume(make_image(seed=2), path)
    assert open(path, "rb").read() == before
    write_volume(make_image(seed=2), path, overwrite=True)
    assert open(path, "rb").read() != before


def test_unwritable_output_folder(tmp_path):
    if os.geteuid() == 0:
        folder = "/sys"  # root ignores permission bits; /sys refuses new files even for root
    else:
        folder = str(tmp_path / "ro")
        os.mkdir(folder)
        os.chmod(folder, 0o555)
    with pytest.raises(OutputError, match="not writable"):
        write_volume(make_image(), os.path.join(folder, "x.nii.gz"))


def test_missing_output_folder(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_volume(make_image(), str(tmp_path / "nope" / "x.nii.gz"))


def test_unsupported_output_format(tmp_path):
    with pytest.raises(OutputError, match="unsupported output format"):
        write_volume(make_image(), str(tmp_path / "x.png"))


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="No such file"):
        read_volume(str(tmp_path / "missing.nii.gz"))


def test_empty_input(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_volume(str(path))


def test_unknown_file_type(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="unknown file type"):
        read_volume(str(path))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_truncated_file_rejected(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    write_volume(make_image((8, 9, 10)), str(path), compress=suffix != ".nrrd")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 200])
    with pytest.raises(InputError, match="truncated|corrupt"):
        read_volume(str(path))


def test_corrupt_gzip_nifti_rejected(tmp_path):
    path = tmp_path / "c.nii.gz"
    write_volume(make_image((8, 9, 10)), str(path))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="truncated|corrupt"):
        read_volume(str(path))


def test_nifti_header_garbage_rejected(tmp_path):
    path = tmp_path / "g.nii"
    path.write_bytes(os.urandom(2000))
    with pytest.raises(InputError):
        read_volume(str(path))


def test_uncompressed_gz_named_file_rejected(tmp_path):
    # a plain NIfTI saved under a .gz name: gzip refuses it, we say so instead of crashing
    plain = tmp_path / "p.nii"
    write_volume(make_image(), str(plain))
    wrong = tmp_path / "p.nii.gz"
    wrong.write_bytes(plain.read_bytes())
    with pytest.raises(InputError):
        read_volume(str(wrong))


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        for suffix in (".nii.gz", ".nhdr"):
            path = tmp_path / f"p{suffix}"
            write_volume(make_image(), str(path))
            assert (os.stat(path).st_mode & 0o777) == 0o644
    finally:
        os.umask(old)


# A NIfTI file's header fields as ITK's reader reports them (a sample from each group it adds)
NIFTI_KEYS = ("qform_code", "sform_code", "srow_x", "quatern_b", "dim[0]", "pixdim[1]", "scl_slope", "descrip",
              "aux_file", "intent_name", "nifti_type", "vox_offset", "ITK_sform_corrected", "ITK_FileNotes",
              "ITK_original_direction", "ITK_InputFilterName")


def _header_text(path):
    """The text header of a MetaImage / NRRD file (the part before the voxel data)."""
    raw = open(path, "rb").read(1 << 16)
    for end in (b"ElementDataFile = LOCAL\n", b"\n\n"):
        if end in raw:
            raw = raw[: raw.index(end) + len(end)]
            break
    return raw.decode("latin-1")


@pytest.mark.parametrize("suffix", [".mhd", ".mha", ".nrrd", ".nhdr"])
def test_convert_nifti_quietly_without_nifti_header_fields(tmp_path, suffix):
    """`cmsynth convert x.nii.gz y.mhd` (a real process): ITK's MetaImage writer used to print five
    C++ 'WARNING: In .../itkMetaImageIO.cxx' blocks and the .mhd carried the NIfTI header fields
    (srow_x, qform_code, pixdim[1] ...); the grid and the voxels are kept exactly."""
    import subprocess
    import sys

    direction = random_rotation(np.random.default_rng(3))
    src = str(tmp_path / "in.nii.gz")
    write_volume(make_image((5, 6, 7), spacing=(0.8, 1.1, 2.5), origin=(-120.25, 33.5, 17.0), direction=direction,
                         dtype=np.int16, seed=3), src)
    dst = str(tmp_path / f"out{suffix}")
    exe = os.path.join(os.path.dirname(sys.executable), "cmsynth")
    proc = subprocess.run([exe, "convert", src, dst], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    header = _header_text(dst)
    assert "ElementSpacing" in header or "space directions" in header  # it is the header
    present = [key for key in NIFTI_KEYS if key in header]
    assert present == [], f"{suffix} header carries NIfTI/reader fields {present}:\n{header}"
    original, back = read_volume(src), read_volume(dst)
    assert same_grid(original, back, tol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(original))
    assert back.GetPixelID() == original.GetPixelID()


def test_own_metadata_still_written(tmp_path):
    """Only fields of another format are dropped: keys of our own (as .seg.nrrd writes) are kept, also
    on an image read from NIfTI, and the image passed in keeps all its metadata."""
    src = str(tmp_path / "a.nii.gz")
    write_volume(make_image(), src)
    img = read_volume(src)
    img.SetMetaData("Segment0_Name", "liver")
    keys = set(img.GetMetaDataKeys())
    for suffix in (".nrrd", ".mha"):
        write_volume(img, str(tmp_path / f"b{suffix}"))
        header = _header_text(str(tmp_path / f"b{suffix}"))
        assert "Segment0_Name" in header and "liver" in header and "srow_x" not in header
    assert set(img.GetMetaDataKeys()) == keys and "srow_x" in keys
