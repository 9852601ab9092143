"""Creating a study: identical preparation, nothing in names, headers, sizes or times that gives the answer."""

import json
import os
import re

import numpy as np
import pytest
import SimpleITK as sitk

from CrossModalitySynthLib.preprocess import reorient
from CrossModalitySynthLib.reader_study.prepare import PrepareSettings, SourcePreparer
from testsupport.readers import ct_like, rotation_z, write_dataset

NAME = re.compile(r"^t_[0-9a-f]{6}\.nrrd$")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("rs_create")
    return root, write_dataset(str(root / "data"), 10, seed=3)


def _nrrd_header(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw[: raw.index(b"\n\n") + 2]


def _metadata(path):
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    meta = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
    meta.update(
        size=reader.GetSize(), spacing=reader.GetSpacing(), origin=reader.GetOrigin(),
        direction=reader.GetDirection(), pixel=sitk.GetPixelIDValueAsString(reader.GetPixelID()),
    )
    return meta


def _create(cli, root, data, name, *extra, trials=8):
    out = str(root / name)
    code, stdout, err = cli(
        "reader-study", "create", "--real", data["real"], "--synthetic", data["synthetic"], "--readers", "2",
        "--trials-per-reader", str(trials), "--seed", "9", "--out", out, *extra,
    )
    assert code == 0, err
    with open(out + "_key.json") as f:
        key = json.load(f)
    return out, key


def _check_no_leak(study, key):
    images = sorted(os.listdir(os.path.join(study, "images")))
    assert set(images) == {i + ".nrrd" for i in key["images"]}
    assert all(NAME.match(f) for f in images)
    paths = [os.path.join(study, "images", f) for f in images]
    truth = {p: key["images"][os.path.basename(p)[:-5]]["truth"] for p in paths}
    plane = {p: key["images"][os.path.basename(p)[:-5]]["plane"] for p in paths}
    assert {"real", "synthetic"} == set(truth.values())

    # exactly one file size and one modification time for all images
    assert len({os.path.getsize(p) for p in paths}) == 1
    assert len({os.stat(p).st_mtime for p in paths}) == 1

    # per plane, a real and a synthetic file have byte-identical headers and identical metadata
    compared = 0
    for pl in set(plane.values()):
        group = [p for p in paths if plane[p] == pl]
        assert len({_nrrd_header(p) for p in group}) == 1, f"headers differ within plane {pl}"
        reals = [p for p in group if truth[p] == "real"]
        syns = [p for p in group if truth[p] == "synthetic"]
        if reals and syns:
            assert _metadata(reals[0]) == _metadata(syns[0])
            assert _nrrd_header(reals[0]) == _nrrd_header(syns[0])
            compared += 1
    assert compared >= 1
    for p in paths:
        meta = _metadata(p)
        assert meta["pixel"] == "16-bit signed integer" and meta["direction"] == (1, 0, 0, 0, 1, 0, 0, 0, 1)
        assert b"encoding: raw" in _nrrd_header(p)

    # what readers get names no patient, source or ratio
    patients = {e["patient_id"] for e in key["images"].values()}
    sources = {os.path.basename(e["source"]) for e in key["images"].values()}
    reader_files = [os.path.join(study, "study.json")] + [
        os.path.join(study, "sessions", f) for f in os.listdir(os.path.join(study, "sessions"))
    ]
    for path in reader_files:
        with open(path) as f:
            text = f.read()
        assert not [w for w in patients | sources if w in text], path
        assert "fraction" not in text.replace("body_fraction", "") and "seed" not in text
    for f in os.listdir(os.path.join(study, "sessions")):
        with open(os.path.join(study, "sessions", f)) as fh:
            for trial in json.load(fh)["trials"]:
                assert set(trial) == {"index", "image_id", "file", "plane"}
    # the key lies beside the study folder, not in it
    assert not any("key" in name for _, _, files in os.walk(study) for name in files)


def test_slices_leak_nothing_but_the_voxels(cli, dataset):
    root, data = dataset
    study, key = _create(
        cli, root, data, "slices", "--planes", "axial", "coronal", "sagittal", "--slices-per-volume", "2",
        "--max-per-patient", "2", "--slice-size", "32", "--slice-spacing", "3", "--slice-thickness", "4", trials=16,
    )
    _check_no_leak(study, key)
    shapes = {sitk.ReadImage(os.path.join(study, "images", i + ".nrrd")).GetSize() for i in key["images"]}
    assert shapes <= {(32, 32, 1), (32, 1, 32), (1, 32, 32)}
    with open(os.path.join(study, "study.json")) as f:
        visible = json.load(f)
    assert visible["window"] == {"width": 400.0, "level": 40.0} and visible["allow_back"] is False
    assert os.stat(study + "_key.json").st_mode & 0o077 == 0  # the key: its owner only
    mask = os.umask(0)
    os.umask(mask)
    for path in (os.path.join(study, "study.json"), os.path.join(study, "images", os.listdir(os.path.join(study, "images"))[0])):
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask  # readers can read the study


def test_volumes_leak_nothing_but_the_voxels(cli, dataset):
    root, data = dataset
    study, key = _create(
        cli, root, data, "volumes", "--mode", "volumes", "--size", "24", "20", "8", "--spacing", "4", "4", "6",
        "--window", "350", "50", "--allow-back",
    )
    _check_no_leak(study, key)
    sizes = {sitk.ReadImage(os.path.join(study, "images", i + ".nrrd")).GetSize() for i in key["images"]}
    assert sizes == {(24, 20, 8)}
    with open(os.path.join(study, "study.json")) as f:
        visible = json.load(f)
    assert visible["window"] == {"width": 350.0, "level": 50.0} and visible["allow_back"] is True


def test_axial_slices_lie_in_the_middle_of_the_body(cli, dataset):
    root, data = dataset
    study, key = _create(cli, root, data, "positions", "--slice-size", "16", "--slice-spacing", "6")
    for entry in key["images"].values():
        if entry["truth"] != "real":
            continue
        img = sitk.ReadImage(entry["source"])  # identity direction; the body fills every slice
        lo = img.GetOrigin()[2] - 0.5 * img.GetSpacing()[2]
        length = img.GetSize()[2] * img.GetSpacing()[2]
        assert lo + 0.2 * length - 1e-6 <= entry["position_mm"] <= lo + 0.8 * length + 1e-6


def test_bad_requests_leave_nothing_behind(cli, dataset):
    root, data = dataset
    base = ["reader-study", "create", "--real", data["real"], "--synthetic", data["synthetic"], "--trials-per-reader", "4"]
    out = str(root / "dup")
    code, _, err = cli(*base, "--readers", "ann", "bob", "ann", "--out", out)
    assert code != 0 and "given twice" in err and "Traceback" not in err
    assert not os.path.exists(out) and not os.path.exists(out + "_key.json")
    code, _, err = cli(*base, "--readers", "2", "--trials-per-reader", "40", "--out", out)
    assert code != 0 and "Cannot give a reader 40 trials" in err and not os.path.exists(out)
    os.makedirs(out)
    code, _, err = cli(*base, "--readers", "2", "--out", out)
    assert code != 0 and "already exists" in err
    leftovers = [f for f in os.listdir(str(root)) if ".tmp-" in f]
    assert leftovers == []


def test_preparation_depends_on_physical_space_only():
    """The same anatomy stored with another axis order / orientation gives the same image."""
    image = ct_like(5, shape_zyx=(18, 36, 40), spacing=(2.5, 2.0, 4.0), direction=rotation_z(90.0))
    flipped, _ = reorient(image, "RAS")
    assert flipped.GetDirection() != image.GetDirection()
    settings = PrepareSettings(slice_size=40, slice_spacing=2.5, slice_thickness=4.0)
    for plane in ("axial", "coronal", "sagittal"):
        a, pos_a = SourcePreparer(image, settings).slice(plane, 0.4)
        b, pos_b = SourcePreparer(flipped, settings).slice(plane, 0.4)
        assert pos_a == pytest.approx(pos_b)
        diff = np.abs(sitk.GetArrayFromImage(a).astype(int) - sitk.GetArrayFromImage(b).astype(int))
        assert diff.max() <= 1  # equal up to float rounding at .5
    vol = SourcePreparer(image, PrepareSettings(mode="volumes", size=(30, 30, 10), spacing=(3, 3, 5))).volume()
    assert vol.GetSize() == (30, 30, 10) and vol.GetOrigin() == pytest.approx((-43.5, -43.5, -22.5))
