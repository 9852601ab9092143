"""DICOM series without a SeriesInstanceUID, and ``--series`` advice that works when pasted (issue 13 item 15).

Two series whose SeriesInstanceUID is empty (or absent) used to be merged into one and refused as
"a position already taken", with an empty id in the advice ("use --series " followed by nothing);
``synthesize`` told the user to "pass --series", which it did not have. The folders here are real
DICOM series written with pydicom (Testing/testsupport/dicom.py) from a phantom case; every piece of
advice is parsed out of the message and run as printed.
"""

import os
import re
import shlex

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from testsupport.dicom import write_series
from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.io.dicom import list_dicom_series, read_dicom_series
from CrossModalitySynthLib.phantom import make_case


@pytest.fixture(scope="module")
def case():
    return make_case(8, size="small")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_test_bundle(str(root / "mr2ct"), "MR->CT", ("t1_in", "t1_opp"), onnx=False)
    make_test_bundle(str(root / "t2"), "MR->CT", ("t2",), onnx=False, model_id="test-t2-to-ct")
    make_test_bundle(str(root / "liver"), "MR->LIVER", ("t1_in",), onnx=False)
    return {k: str(root / k) for k in ("mr2ct", "t2", "liver")}


def _write(folder, image, description, number, prefix, **kw):
    """Write a phantom image as a real MR DICOM series on its own grid; returns the stored values."""
    values = sitk.GetArrayFromImage(image)
    write_series(str(folder), values, modality="MR", origin=image.GetOrigin(), spacing=image.GetSpacing(),
                 direction=image.GetDirection(), description=description, series_number=number,
                 name_pattern=prefix + "{:03d}.dcm", **kw)
    return np.round(values).astype(np.int64)


def _no_uid_pair(folder, case, omit=False):
    """T1 in- and opposed-phase of one case in ONE folder, both without a SeriesInstanceUID, on the
    same grid (so every slice position is taken twice)."""
    kw = {"omit_series_uid": True} if omit else {"series_uid": ""}
    t1_in = _write(folder, case.images["t1_in.nii.gz"], "T1 in-phase", 5, "a", **kw)
    t1_opp = _write(folder, case.images["t1_opp.nii.gz"], "T1 opposed-phase", 6, "b", **kw)
    return t1_in, t1_opp


def _advice(err):
    """The ``--series ID`` the message suggests ("... e.g. --series ID."), as argv words."""
    found = re.search(r"e\.g\. (--series \S+?)\.\s*$", err.strip())
    assert found, f"no '--series' example in: {err}"
    return shlex.split(found.group(1))


def _values(path):
    return sitk.GetArrayFromImage(read_volume(path)).astype(np.int64)


@pytest.mark.parametrize("omit", [False, True], ids=["empty-uid", "absent-uid"])
def test_series_without_uid_are_split_not_merged(tmp_path, case, omit):
    t1_in, t1_opp = _no_uid_pair(tmp_path / "dcm", case, omit=omit)
    infos = list_dicom_series(str(tmp_path / "dcm"))
    assert [(i["id"], i["description"], i["series_number"], i["n_files"]) for i in infos] == [
        ("nouid-1", "T1 in-phase", 5, 28), ("nouid-2", "T1 opposed-phase", 6, 28)]
    assert all(i["series_instance_uid"] == "" and "no SeriesInstanceUID" in i["note"] for i in infos)
    by_id = read_dicom_series(str(tmp_path / "dcm"), series="nouid-2")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_id), t1_opp)
    by_description = read_dicom_series(str(tmp_path / "dcm"), series="T1 in-phase")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_description), t1_in)
    grid = case.images["t1_in.nii.gz"]
    np.testing.assert_allclose(by_id.GetOrigin(), grid.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(by_id.GetSpacing(), grid.GetSpacing(), atol=1e-6)


def test_same_description_split_by_number_and_by_geometry(tmp_path, case):
    image = case.images["t2.nii.gz"]
    _write(tmp_path / "numbers", image, "T2", 7, "a", series_uid="")
    _write(tmp_path / "numbers", image, "T2", 8, "b", series_uid="")
    assert [(i["id"], i["series_number"]) for i in list_dicom_series(str(tmp_path / "numbers"))] == [
        ("nouid-1", 7), ("nouid-2", 8)]

    # same description and number, another matrix (a cropped copy): still two series
    cropped = image[8:40, 8:40, :]
    _write(tmp_path / "geometry", image, "T2", 7, "a", series_uid="")
    _write(tmp_path / "geometry", cropped, "T2", 7, "b", series_uid="")
    infos = list_dicom_series(str(tmp_path / "geometry"))
    assert sorted((i["rows"], i["columns"], i["n_files"]) for i in infos) == [(32, 32, 28), (64, 64, 28)]
    assert read_dicom_series(str(tmp_path / "geometry"), series=infos[1]["id"]).GetSize()[2] == 28


def test_info_lists_a_usable_id_for_every_series(tmp_path, cli, case):
    folder = tmp_path / "dcm"
    _write(folder, case.images["t2.nii.gz"], "T2 with uid", 2, "u")  # an ordinary series beside
    _write(folder, case.images["t1_in.nii.gz"], "T1 in-phase", 5, "a", series_uid="")
    code, out, err = cli("info", folder)
    assert code == 0, err
    suggested = re.findall(r"use --series (.*)\)$", out, flags=re.M)
    assert len(suggested) == 2 and all(s.strip() for s in suggested), out
    for words in suggested:
        code, described, err = cli("info", folder, "--series", *shlex.split(words))
        assert code == 0, err
        assert "size:        64 x 64 x 28" in described


def test_convert_advice_pasted_runs(tmp_path, cli, case):
    t1_in, _ = _no_uid_pair(tmp_path / "dcm", case)
    out = tmp_path / "t1_in.nii.gz"
    code, _, err = cli("convert", tmp_path / "dcm", out)
    assert code != 0 and "Traceback" not in err and err.strip().count("\n") == 0
    assert "position already taken" not in err and "nouid-1 'T1 in-phase'" in err
    assert not out.exists()
    code, _, err = cli("convert", tmp_path / "dcm", out, *_advice(err))
    assert code == 0, err
    np.testing.assert_array_equal(_values(out), t1_in)


@pytest.mark.parametrize("given", ["", "  ", "T1"])
def test_empty_or_unknown_series_gets_ids_that_work(tmp_path, cli, case, given):
    _, t1_opp = _no_uid_pair(tmp_path / "dcm", case)
    out = tmp_path / "x.nrrd"
    code, _, err = cli("convert", tmp_path / "dcm", out, "--series", given)
    assert code != 0 and not out.exists() and "nouid-2 'T1 opposed-phase'" in err
    code, _, err = cli("convert", tmp_path / "dcm", out, *_advice(err))
    assert code == 0, err


def test_synthesize_has_series_and_its_advice_runs(tmp_path, cli, case, models):
    folder = tmp_path / "dcm"
    _write(folder, case.images["t1_in.nii.gz"], "T1 in-phase", 5, "a", series_uid="")
    _write(folder, case.images["t2.nii.gz"], "T2", 6, "b", series_uid="")
    out = tmp_path / "sct.nii.gz"
    code, _, err = cli("synthesize", "--model", models["t2"], "--out", out, "--progress", "none", folder)
    assert code != 0 and not out.exists() and "--series" in err
    advice = _advice(err)  # --series nouid-1 (the first series listed): the T1
    code, _, err = cli("synthesize", "--model", models["t2"], "--out", out, "--progress", "none", folder, *advice)
    assert code == 0, err
    code, _, err = cli("synthesize", "--model", models["t2"], "--out", tmp_path / "sct_t2.nii.gz", "--progress",
                       "none", folder, "--series", "T2")
    assert code == 0, err
    result = read_volume(str(tmp_path / "sct_t2.nii.gz"))
    grid = case.images["t2.nii.gz"]
    assert result.GetSize() == grid.GetSize()
    np.testing.assert_allclose(result.GetOrigin(), grid.GetOrigin(), atol=1e-3)
    # the two runs read two different series
    assert not np.array_equal(_values(out), _values(tmp_path / "sct_t2.nii.gz"))


def test_one_series_per_input_from_one_folder(tmp_path, cli, case, models):
    """T1 in- and opposed-phase from ONE folder: --series once per INPUT, in order; the result is
    exactly that of the same series converted to files first (swapped slots would differ)."""
    _no_uid_pair(tmp_path / "dcm", case)
    folder = tmp_path / "dcm"
    files = []
    for sid in ("nouid-1", "nouid-2"):
        files.append(tmp_path / f"{sid}.nii.gz")
        assert cli("convert", folder, files[-1], "--series", sid)[0] == 0
    ref = tmp_path / "from_files.nii.gz"
    code, _, err = cli("synthesize", "--model", models["mr2ct"], "--out", ref, "--progress", "none", *files)
    assert code == 0, err
    out = tmp_path / "from_folder.nii.gz"
    code, _, err = cli("synthesize", "--model", models["mr2ct"], "--out", out, "--progress", "none",
                       folder, folder, "--series", "nouid-1", "--series", "nouid-2")
    assert code == 0, err
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(str(out))),
                                  sitk.GetArrayFromImage(read_volume(str(ref))))
    swapped = tmp_path / "swapped.nii.gz"
    assert cli("synthesize", "--model", models["mr2ct"], "--out", swapped, "--progress", "none",
               folder, folder, "--series", "nouid-2", "--series", "nouid-1")[0] == 0
    assert not np.array_equal(sitk.GetArrayFromImage(read_volume(str(swapped))),
                              sitk.GetArrayFromImage(read_volume(str(ref))))


def test_series_given_a_wrong_number_of_times(tmp_path, cli, case, models):
    _no_uid_pair(tmp_path / "dcm", case)
    out = tmp_path / "sct.nii.gz"
    code, _, err = cli("synthesize", "--model", models["mr2ct"], "--out", out, "--progress", "none",
                       tmp_path / "dcm", tmp_path / "dcm", "--series", "nouid-1", "--series", "nouid-2",
                       "--series", "nouid-1")
    assert code != 0 and not out.exists()
    assert "--series was given 3 times for 2 INPUTs" in err and err.strip().count("\n") == 0


def test_segment_has_series(tmp_path, cli, case, models):
    t1_in, _ = _no_uid_pair(tmp_path / "dcm", case)
    out = tmp_path / "liver.seg.nrrd"
    code, _, err = cli("segment", "--model", models["liver"], "--out", out, "--progress", "none", tmp_path / "dcm")
    assert code != 0 and "--series" in err and not out.exists()
    code, _, err = cli("segment", "--model", models["liver"], "--out", out, "--progress", "none", tmp_path / "dcm",
                       "--series", "T1 in-phase")
    assert code == 0, err
    assert read_volume(str(out)).GetSize() == case.images["t1_in.nii.gz"].GetSize()


def test_run_advice_gives_a_convert_command_that_runs(tmp_path, cli, case, models):
    _, t1_opp = _no_uid_pair(tmp_path / "dcm", case)
    out = tmp_path / "result"
    code, _, err = cli("run", "--model", models["mr2ct"], "--out", out, "--progress", "none",
                       tmp_path / "dcm", tmp_path / "dcm")
    assert code != 0 and not out.exists() and "Traceback" not in err
    found = re.search(r"e\.g\. (cmsynth convert .*?), and give that file as INPUT", err)
    assert found, err
    argv = shlex.split(found.group(1))
    code, _, err2 = cli(*argv[1:])
    assert code == 0, err2
    first = argv[3]
    assert os.path.isfile(first) and first.endswith("_nouid-1.nii.gz")
    second = str(tmp_path / "t1_opp.nii.gz")
    assert cli("convert", tmp_path / "dcm", second, "--series", "nouid-2")[0] == 0
    np.testing.assert_array_equal(_values(second), t1_opp)
    code, _, err = cli("run", "--model", models["mr2ct"], "--out", out, "--progress", "none", "--no-overlays",
                       first, second)
    assert code == 0, err
    assert os.path.isfile(out / "synthetic.nii.gz")


def test_ids_of_series_with_uids_are_unchanged(tmp_path, case):
    """Ordinary series keep their SeriesInstanceUID as id (the fallback is only for files without one)."""
    w = write_series(str(tmp_path / "dcm"), np.zeros((3, 4, 4)) + 7, modality="MR", description="T2")
    infos = list_dicom_series(str(tmp_path / "dcm"))
    assert [i["id"] for i in infos] == [w.series_instance_uid] and "note" not in infos[0]
    with pytest.raises(InputError, match="No DICOM series 'nouid-1'"):
        read_dicom_series(str(tmp_path / "dcm"), series="nouid-1")
