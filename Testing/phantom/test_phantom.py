"""Tests of the digital abdominal phantom (CrossModalitySynthLib.phantom) and ``cmsynth phantom``.

Everything uses the fast ``small`` grids except one CHAOS-size case (marked slow).
"""

import dataclasses
import hashlib
import json
import os
import time

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull

from CrossModalitySynthLib import labels as L
from CrossModalitySynthLib.geometry import Grid, same_grid
from CrossModalitySynthLib.phantom import FILES, Sequences, make_case, write_case, write_cases
from CrossModalitySynthLib.phantom.grids import case_grids
from CrossModalitySynthLib.phantom.tissues import TISSUES

MR_FILES = [n for n, (g, _, _) in FILES.items() if g == "mr"]
CT_FILES = [n for n, (g, _, _) in FILES.items() if g == "ct"]
SITK_DTYPE = {"int16": sitk.sitkInt16, "uint8": sitk.sitkUInt8, "float32": sitk.sitkFloat32}
LIVER_IDS = [L.LIVER, L.LIVER_LESION]


# ----------------------------------------------------------------------------------- helpers
def arr(case, name):
    return sitk.GetArrayFromImage(case.images[name])


def voxel_mm3(image) -> float:
    return float(np.prod(image.GetSpacing()))


def physical_points(image, mask) -> np.ndarray:
    """Physical (x, y, z) mm of the voxels of a (z, y, x) mask."""
    g = Grid.of(image)
    idx = np.argwhere(mask)[:, ::-1].astype(float)  # -> (i, j, k)
    return idx @ (g.direction_matrix @ np.diag(g.spacing)).T + np.asarray(g.origin)


def eroded(mask, iterations=1):
    return ndimage.binary_erosion(mask, iterations=iterations)


def sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_digest(folder) -> dict:
    return {n: sha(os.path.join(folder, n)) for n in sorted(os.listdir(folder))}


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def case():
    return make_case(3)


@pytest.fixture(scope="module")
def case4():
    return make_case(4)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    paths = write_cases(str(out), n_cases=1, seed=11)
    return paths[0]


# ------------------------------------------------------------------------- files and geometry
def test_case_folder_has_promised_files_dtypes_and_grids(written):
    assert sorted(os.listdir(written)) == sorted(list(FILES) + ["case.json"])
    with open(os.path.join(written, "case.json")) as f:
        meta = json.load(f)
    assert meta["seed"] == 11 and meta["size"] == "small"
    assert meta["tissue_table_version"]
    assert meta["lesion_count"] == len(meta["lesions"])
    images = {n: sitk.ReadImage(os.path.join(written, n)) for n in FILES}
    for name, (grid, dtype, _) in FILES.items():
        assert images[name].GetPixelID() == SITK_DTYPE[dtype], name
        g = meta["grids"][grid]
        assert list(images[name].GetSize()) == g["size"], name
        assert np.allclose(images[name].GetSpacing(), g["spacing_mm"], atol=1e-5), name
        assert np.allclose(images[name].GetOrigin(), g["origin_mm"], atol=1e-3), name
        assert np.allclose(images[name].GetDirection(), g["direction"], atol=1e-6), name
    for name in MR_FILES:
        assert same_grid(images[name], images["t1_in.nii.gz"], tol=1e-4), name
    for name in CT_FILES:
        assert same_grid(images[name], images["ct.nii.gz"], tol=1e-4), name
    # small size: the CT and MR grids differ on purpose
    assert images["ct.nii.gz"].GetSize() != images["t1_in.nii.gz"].GetSize()


def test_labels_use_known_ids_and_body_masks_match(case):
    known = set(L.LABELS) | {0}
    for lab_name, body_name in (("labels.nii.gz", "body.nii.gz"), ("ct_labels.nii.gz", "ct_body.nii.gz")):
        lab, body = arr(case, lab_name), arr(case, body_name)
        assert set(np.unique(lab).tolist()) <= known
        assert set(np.unique(body).tolist()) == {0, 1}
        assert np.array_equal(body == 1, lab > 0)
        # every main organ is present on both grids
        for organ in (L.LIVER, L.RIGHT_KIDNEY, L.LEFT_KIDNEY, L.SPLEEN, L.AORTA, L.IVC, L.BONE, L.LUNG):
            assert (lab == organ).sum() > 5, (lab_name, L.name_of(organ))
        # the body does not touch the in-plane border of the field of view
        assert body[:, 0, :].sum() == 0 and body[:, -1, :].sum() == 0
        assert body[:, :, 0].sum() == 0 and body[:, :, -1].sum() == 0


def test_anatomy_is_on_the_right_sides(case):
    """LPS: +x is the patient's left, +z superior; liver right, spleen left, lungs above the liver."""
    lab_img = case.images["labels.nii.gz"]
    lab = arr(case, "labels.nii.gz")

    def centroid(ids):
        return physical_points(lab_img, np.isin(lab, ids)).mean(axis=0)

    liver, spleen = centroid(LIVER_IDS), centroid([L.SPLEEN])
    rk, lk = centroid([L.RIGHT_KIDNEY]), centroid([L.LEFT_KIDNEY])
    assert liver[0] < -20 and spleen[0] > 40
    assert rk[0] < -30 and lk[0] > 30
    assert centroid([L.LUNG])[2] > liver[2] + 30
    assert centroid([L.AORTA])[1] < centroid([L.SPINAL_CANAL])[1]  # aorta anterior to the canal
    assert 900 < np.isin(lab, LIVER_IDS).sum() * voxel_mm3(lab_img) / 1e3 < 2500  # ml


def test_ct_and_mr_grids_show_the_same_anatomy(case):
    for ids in (LIVER_IDS, [L.SPLEEN], [L.RIGHT_KIDNEY], [L.LEFT_KIDNEY]):
        v_mr = np.isin(arr(case, "labels.nii.gz"), ids).sum() * voxel_mm3(case.images["labels.nii.gz"])
        v_ct = np.isin(arr(case, "ct_labels.nii.gz"), ids).sum() * voxel_mm3(case.images["ct_labels.nii.gz"])
        assert abs(v_mr - v_ct) < 0.08 * v_ct, ids
    c_mr = physical_points(case.images["labels.nii.gz"], np.isin(arr(case, "labels.nii.gz"), LIVER_IDS)).mean(0)
    c_ct = physical_points(case.images["ct_labels.nii.gz"], np.isin(arr(case, "ct_labels.nii.gz"), LIVER_IDS)).mean(0)
    assert np.linalg.norm(c_mr - c_ct) < 3.0


# ----------------------------------------------------------------------------------------- CT
HU_RANGES = {  # eroded label masks, portal-venous phase, with partial volume of small grids
    "liver": ([L.LIVER], 100, 135),
    "spleen": ([L.SPLEEN], 105, 135),
    "kidney": ([L.RIGHT_KIDNEY, L.LEFT_KIDNEY], 120, 200),
    "muscle": ([L.MUSCLE], 40, 65),
    "subcutaneous fat": ([L.SUBCUTANEOUS_FAT], -125, -80),
    "visceral fat": ([L.VISCERAL_FAT], -115, -60),
    "aorta": ([L.AORTA], 125, 190),
    "lung": ([L.LUNG], -900, -750),
    "bone": ([L.BONE], 200, 700),
}


@pytest.mark.parametrize("seed", [3, 8])
def test_ct_hu_per_tissue_in_literature_ranges(seed, case):
    c = case if seed == 3 else make_case(seed)
    ct, lab = arr(c, "ct.nii.gz"), arr(c, "ct_labels.nii.gz")
    for name, (ids, lo, hi) in HU_RANGES.items():
        m = eroded(np.isin(lab, ids))
        assert m.sum() > 20, name
        assert lo <= ct[m].mean() <= hi, (name, float(ct[m].mean()))
    air = eroded(arr(c, "ct_body.nii.gz") == 0, 3)
    assert abs(ct[air].mean() + 1000) < 2
    # the CT on the MR grid carries the same values
    cm, lab_mr = arr(c, "ct_on_mr.nii.gz"), arr(c, "labels.nii.gz")
    for ids in ([L.LIVER], [L.SPLEEN], [L.MUSCLE]):
        a, b = ct[eroded(np.isin(lab, ids))].mean(), cm[eroded(np.isin(lab_mr, ids))].mean()
        assert abs(a - b) < 12, (ids, a, b)


def test_ct_noise_is_present_at_the_requested_level(case):
    ct = arr(case, "ct.nii.gz").astype(float)
    air = eroded(arr(case, "ct_body.nii.gz") == 0, 3)
    assert ct[air].std() == pytest.approx(case.meta["ct"]["noise_sd_hu"], rel=0.1)
    quiet = make_case(3, ct_noise_hu=0.0)
    ct0 = arr(quiet, "ct.nii.gz").astype(float)
    assert ct0[air].std() < 1.0
    liver = eroded(np.isin(arr(case, "ct_labels.nii.gz"), [L.LIVER]), 2)
    assert (ct - ct0)[liver].std() == pytest.approx(12.0, rel=0.15)


# ----------------------------------------------------------------------------------------- MR
def _ratio(opp, inn, mask):
    return float(opp[mask].mean() / inn[mask].mean())


def test_opposed_phase_darkens_fat_water_boundaries(case):
    lab = arr(case, "labels.nii.gz")
    t1_in, t1_opp = arr(case, "t1_in.nii.gz"), arr(case, "t1_opp.nii.gz")
    water_organs = np.isin(lab, [L.LIVER, L.SPLEEN, L.RIGHT_KIDNEY, L.LEFT_KIDNEY])
    fat = np.isin(lab, [L.SUBCUTANEOUS_FAT, L.VISCERAL_FAT])
    boundary = water_organs & ndimage.binary_dilation(fat)
    interior = eroded(water_organs)
    assert boundary.sum() > 50 and interior.sum() > 50
    r_boundary = _ratio(t1_opp, t1_in, boundary)
    r_interior = _ratio(t1_opp, t1_in, interior)
    assert r_boundary < r_interior - 0.15, (r_boundary, r_interior)
    # the fat side of the interface darkens as well (India ink on both sides)
    fat_edge = fat & ndimage.binary_dilation(water_organs)
    assert _ratio(t1_opp, t1_in, fat_edge) < _ratio(t1_opp, t1_in, eroded(fat, 2)) - 0.1


def test_opposed_phase_darkens_fatty_tissue_relative_to_water_tissue(case):
    lab = arr(case, "labels.nii.gz")
    t1_in, t1_opp = arr(case, "t1_in.nii.gz"), arr(case, "t1_opp.nii.gz")
    r_spleen = _ratio(t1_opp, t1_in, eroded(lab == L.SPLEEN))
    r_marrow = _ratio(t1_opp, t1_in, lab == L.BONE)  # vertebral / rib marrow, ~45 % fat
    assert r_spleen > 0.95
    assert r_marrow < r_spleen - 0.3
    # a fatty liver loses signal in opposed phase, a lean one does not
    def liver_ratio(c):
        m = eroded(arr(c, "labels.nii.gz") == L.LIVER)
        return _ratio(arr(c, "t1_opp.nii.gz"), arr(c, "t1_in.nii.gz"), m)

    lean = make_case(3, lesions=False, liver_fat_fraction=0.0)
    fatty = make_case(3, lesions=False, liver_fat_fraction=0.15)
    assert liver_ratio(lean) > 0.97
    assert liver_ratio(fatty) < liver_ratio(lean) - 0.2


def test_mr_contrasts_follow_the_relaxation_times(case):
    lab = arr(case, "labels.nii.gz")
    t1, t2 = arr(case, "t1_in.nii.gz"), arr(case, "t2.nii.gz")

    def med(img, ids):
        return float(np.median(img[eroded(np.isin(lab, ids))]))

    # T1: fat > liver > spleen > muscle; T2: spleen > liver > muscle, fat suppressed, fluid bright
    assert med(t1, [L.SUBCUTANEOUS_FAT]) > med(t1, [L.LIVER]) > med(t1, [L.SPLEEN]) > med(t1, [L.MUSCLE])
    assert med(t2, [L.SPLEEN]) > 1.3 * med(t2, [L.LIVER]) > 1.3 * med(t2, [L.MUSCLE])
    assert med(t2, [L.SUBCUTANEOUS_FAT]) < med(t2, [L.LIVER])
    canal = np.isin(lab, [L.SPINAL_CANAL])
    assert t2[canal].max() > med(t2, [L.SPLEEN])
    # air and lung near zero (noise floor only)
    for img in (t1, t2):
        assert med(img, [L.LUNG]) < 0.1 * med(t1, [L.SUBCUTANEOUS_FAT])


def test_mr_noise_is_rician_at_the_requested_level(case):
    sigma = case.meta["mr"]["noise_sd"]
    air = eroded(arr(case, "body.nii.gz") == 0, 2)
    for name in ("t1_in.nii.gz", "t1_opp.nii.gz", "t2.nii.gz"):
        a = arr(case, name)[air].astype(float)
        assert a.std() > 0
        assert a.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.05), name  # Rayleigh
        assert a.std() == pytest.approx(sigma * np.sqrt(2 - np.pi / 2), rel=0.08), name
    # inside a homogeneous organ: robust noise estimate from neighbour differences
    liver = eroded(arr(case, "labels.nii.gz") == L.LIVER)
    t2 = arr(case, "t2.nii.gz").astype(float)
    d = (t2[:, :, 1:] - t2[:, :, :-1])[liver[:, :, 1:] & liver[:, :, :-1]]
    robust = 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2)
    assert robust == pytest.approx(sigma, rel=0.3)


def _poly_range(img: sitk.Image, values: np.ndarray, mask: np.ndarray) -> float:
    """Range over ``mask`` of a quadratic polynomial in physical position fitted to ``values``."""
    p = physical_points(img, mask) / 100.0
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    design = np.stack([np.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], axis=1)
    coef, *_ = np.linalg.lstsq(design, values[mask], rcond=None)
    fit = design @ coef
    return float(fit.max() - fit.min())


def test_bias_field_is_present_and_shared_by_the_t1_pair(case):
    flat = make_case(3, sequences=Sequences(bias=False))
    img = case.images["t1_in.nii.gz"]
    sigma = case.meta["mr"]["noise_sd"]
    mask = eroded(arr(case, "labels.nii.gz") == L.SUBCUTANEOUS_FAT)
    biased = _poly_range(img, arr(case, "t1_in.nii.gz").astype(float), mask)
    unbiased = _poly_range(img, arr(flat, "t1_in.nii.gz").astype(float), mask)
    assert biased > 5 * sigma
    assert biased > 3 * unbiased
    # the same field multiplies in and opposed phase: their ratio (in a water organ) is flat
    liver = eroded(arr(case, "labels.nii.gz") == L.LIVER)
    ratio = arr(case, "t1_opp.nii.gz").astype(float) / arr(case, "t1_in.nii.gz").astype(float)
    ratio_flat = arr(flat, "t1_opp.nii.gz").astype(float) / arr(flat, "t1_in.nii.gz").astype(float)
    assert _poly_range(img, ratio, liver) < 2 * _poly_range(img, ratio_flat, liver) + 0.02
    # T2 has its own field: the two fields differ across the fat
    fat = mask
    assert fat.sum() > 100
    t1_field = arr(case, "t1_in.nii.gz")[fat] / arr(flat, "t1_in.nii.gz")[fat]
    t2_field = arr(case, "t2.nii.gz")[fat] / arr(flat, "t2.nii.gz")[fat]
    assert np.std(np.log(t2_field / t1_field)) > 0.05


# ------------------------------------------------------------------------------ variation
def test_different_seeds_give_different_patients(case, case4):
    other = case4
    for ids in (LIVER_IDS, [L.SPLEEN], [L.RIGHT_KIDNEY]):
        a = np.isin(arr(case, "labels.nii.gz"), ids).sum()
        b = np.isin(arr(other, "labels.nii.gz"), ids).sum()
        assert abs(a - b) > 0.02 * max(a, b), ids


def test_same_seed_gives_identical_bytes(tmp_path, written):
    # ``written`` is seed 11, written earlier; a timestamp in any header (gzip, NIfTI, JSON)
    # would differ once a second has passed
    age = time.time() - max(os.path.getmtime(os.path.join(written, n)) for n in os.listdir(written))
    if age < 1.1:
        time.sleep(1.1 - age)
    again = write_cases(str(tmp_path / "again"), n_cases=1, seed=11)[0]
    da, db = tree_digest(written), tree_digest(again)
    assert sorted(da) == sorted(list(FILES) + ["case.json"])
    assert da == db


def test_oblique_grids_show_the_same_patient(case):
    obl = make_case(3, oblique=True)
    for name in ("t1_in.nii.gz", "ct.nii.gz"):
        d = np.asarray(obl.images[name].GetDirection()).reshape(3, 3)
        assert np.max(np.abs(d - np.eye(3))) > 0.05, name
        assert np.allclose(d @ d.T, np.eye(3), atol=1e-6) and np.linalg.det(d) > 0
        assert np.allclose(obl.images[name].GetSpacing(), case.images[name].GetSpacing())
    assert obl.meta["lesion_count"] == case.meta["lesion_count"]
    for lab_name in ("labels.nii.gz", "ct_labels.nii.gz"):
        m0, m1 = np.isin(arr(case, lab_name), LIVER_IDS), np.isin(arr(obl, lab_name), LIVER_IDS)
        v0 = m0.sum() * voxel_mm3(case.images[lab_name])
        v1 = m1.sum() * voxel_mm3(obl.images[lab_name])
        assert abs(v1 - v0) < 0.03 * v0, (lab_name, v0, v1)
        c0 = physical_points(case.images[lab_name], m0).mean(0)
        c1 = physical_points(obl.images[lab_name], m1).mean(0)
        assert np.linalg.norm(c1 - c0) < 3.0, lab_name


def test_lesions_sit_inside_the_liver(case):
    with_lesions = case
    assert with_lesions.meta["lesion_count"] > 0  # seed 3 has lesions
    without = make_case(with_lesions.seed, lesions=False)
    assert without.meta["lesion_count"] == 0
    lab_l, lab_0 = arr(with_lesions, "ct_labels.nii.gz"), arr(without, "ct_labels.nii.gz")
    assert (lab_l == L.LIVER_LESION).sum() > 0 and (lab_0 == L.LIVER_LESION).sum() == 0
    # lesions replace liver only: the union liver + lesion is unchanged, other labels too
    assert np.array_equal(np.isin(lab_l, LIVER_IDS), np.isin(lab_0, LIVER_IDS))
    assert np.array_equal(lab_l[~np.isin(lab_l, LIVER_IDS)], lab_0[~np.isin(lab_0, LIVER_IDS)])
    # lesions are hypo-attenuating on portal-venous CT
    ct = arr(with_lesions, "ct.nii.gz")
    liver_hu = ct[eroded(lab_l == L.LIVER)].mean()
    assert ct[lab_l == L.LIVER_LESION].mean() < liver_hu - 15


def test_liver_is_not_an_ellipsoid(case, case4):
    img = case.images["ct_labels.nii.gz"]
    vox = voxel_mm3(img)

    def shape_stats(mask):
        pts = physical_points(img, mask)
        volume = mask.sum() * vox
        lam = np.linalg.eigvalsh(np.cov(pts.T))
        moment_ellipsoid = 4.0 / 3.0 * np.pi * np.sqrt(125.0 * np.prod(lam))  # same 2nd moments
        hull = ConvexHull(pts).volume
        return volume, moment_ellipsoid, hull

    # control: a voxelised ellipsoid on the same grid passes as an ellipsoid
    g = Grid.of(img)
    pts = physical_points(img, np.ones(arr(case, "ct_labels.nii.gz").shape, bool))
    c = np.asarray(g.origin) + np.asarray(g.spacing) * (np.asarray(g.size) - 1) / 2
    q = (pts - c) / np.array([90.0, 70.0, 60.0])
    ell = ((q ** 2).sum(1) <= 1).reshape(arr(case, "ct_labels.nii.gz").shape)
    v, me, hull = shape_stats(ell)
    assert abs(v - me) / v < 0.02 and v / hull > 1.0  # (hull of voxel centres: slightly small)

    for c_ in (case, case4):
        v, me, hull = shape_stats(np.isin(arr(c_, "ct_labels.nii.gz"), LIVER_IDS))
        assert abs(v - me) / v > 0.2, (v, me)  # far from the ellipsoid of the same moments
        assert v / hull < 0.9, (v, hull)  # concave: visceral surface, lobes


def test_narrow_band_rendering_matches_full_evaluation(case):
    """The block-wise shortcut of the renderer gives the labels of voxel-by-voxel evaluation."""
    from CrossModalitySynthLib.phantom.ct import ct_tissue_values
    from CrossModalitySynthLib.phantom.render import render

    an = case.anatomy
    g = Grid((160, 128, 6), (-120.0, -90.0, 20.0), (1.5, 1.5, 6.0), tuple(np.eye(3).ravel()))
    values = ct_tissue_values(TISSUES)
    fast = render(an.components, g, values, ("hu",), (-1000.0,), an.deformation)
    full = render(an.components, g, values, ("hu",), (-1000.0,), an.deformation, block_mm=0)
    assert np.array_equal(fast.labels, full.labels) and np.array_equal(fast.body, full.body)
    # values differ only in partial-volume ramps (most near bone, where 2 % of 1000 HU is 20 HU)
    diff = np.abs(fast.values[0] - full.values[0])
    assert diff.mean() < 3.0
    away_from_bone = ~ndimage.binary_dilation(full.labels == L.BONE, iterations=2)
    assert np.mean(diff[away_from_bone] > 20) < 0.01


# ------------------------------------------------------------------------------- sizes
def test_chaos_grids_match_the_challenge():
    for seed in range(6):
        mr, ct = case_grids("chaos", np.random.default_rng(seed))
        assert mr.size[:2] == (256, 256) and 30 <= mr.size[2] <= 40
        assert 1.4 <= mr.spacing[0] == mr.spacing[1] <= 1.6 and 6.0 <= mr.spacing[2] <= 8.0
        assert ct.size[:2] == (512, 512) and 77 <= ct.size[2] <= 105
        assert 0.7 <= ct.spacing[0] == ct.spacing[1] <= 0.8 and ct.spacing[2] == 3.0
        z_mr = (mr.origin[2], mr.origin[2] + mr.spacing[2] * (mr.size[2] - 1))
        z_ct = (ct.origin[2], ct.origin[2] + ct.spacing[2] * (ct.size[2] - 1))
        overlap = min(z_mr[1], z_ct[1]) - max(z_mr[0], z_ct[0])
        assert overlap > 0.85 * (z_mr[1] - z_mr[0])


@pytest.mark.slow
def test_chaos_case_renders_consistently():
    c = make_case(0, size="chaos")
    assert c.images["ct.nii.gz"].GetSize()[:2] == (512, 512)
    assert c.images["t1_in.nii.gz"].GetSize()[:2] == (256, 256)
    lab_ct, lab_mr = arr(c, "ct_labels.nii.gz"), arr(c, "labels.nii.gz")
    v_ct = np.isin(lab_ct, LIVER_IDS).sum() * voxel_mm3(c.images["ct.nii.gz"])
    v_mr = np.isin(lab_mr, LIVER_IDS).sum() * voxel_mm3(c.images["t1_in.nii.gz"])
    assert abs(v_ct - v_mr) < 0.03 * v_ct
    ct = arr(c, "ct.nii.gz")
    assert 100 <= ct[eroded(lab_ct == L.LIVER, 2)].mean() <= 135
    assert ct[eroded(lab_ct == L.BONE)].max() > 700  # cortical bone resolved at 0.75 mm


# ---------------------------------------------------------------------------------- writing
def test_write_case_is_atomic_and_refuses_existing(tmp_path, case):
    target = tmp_path / "case_x"
    write_case(case, str(target))
    before = tree_digest(str(target))
    from CrossModalitySynthLib.errors import OutputError

    with pytest.raises(OutputError, match="already exists"):
        write_case(case, str(target))
    assert tree_digest(str(target)) == before
    assert sorted(os.listdir(tmp_path)) == ["case_x"]  # no hidden temporary folder left

    broken = dataclasses.replace(case, images=dict(case.images))
    broken.images["t2.nii.gz"] = None  # writing fails half way through the folder

    with pytest.raises(Exception):
        write_case(broken, str(tmp_path / "case_y"))
    assert sorted(os.listdir(tmp_path)) == ["case_x"]


def test_cli_writes_cases_and_refuses_existing_without_overwrite(tmp_path, cli):
    out = tmp_path / "phantoms"
    code, stdout, stderr = cli("phantom", "--out", out, "--cases", 2, "--seed", 7)
    assert code == 0, stderr
    cases = sorted(os.listdir(out))
    assert cases == ["case_000", "case_001"]
    for c in cases:
        assert sorted(os.listdir(out / c)) == sorted(list(FILES) + ["case.json"])
    with open(out / "case_001" / "case.json") as f:
        assert json.load(f)["seed"] == 8  # case i uses seed + i
    before = {c: tree_digest(str(out / c)) for c in cases}

    code, stdout, stderr = cli("phantom", "--out", out, "--cases", 3, "--seed", 99)
    assert code != 0
    assert "already exists" in stderr and "--overwrite" in stderr and "Traceback" not in stderr
    assert sorted(os.listdir(out)) == cases  # nothing added, nothing partial
    assert {c: tree_digest(str(out / c)) for c in cases} == before

    code, stdout, stderr = cli("phantom", "--out", out, "--cases", 1, "--seed", 99, "--overwrite", "--no-lesions")
    assert code == 0, stderr
    assert sorted(os.listdir(out)) == cases
    assert tree_digest(str(out / "case_000")) != before["case_000"]
    assert tree_digest(str(out / "case_001")) == before["case_001"]
    with open(out / "case_000" / "case.json") as f:
        meta = json.load(f)
    assert meta["seed"] == 99 and meta["lesion_count"] == 0


def test_cli_oblique_flag(tmp_path, cli):
    code, _, stderr = cli("phantom", "--out", tmp_path / "o", "--seed", 2, "--oblique")
    assert code == 0, stderr
    img = sitk.ReadImage(str(tmp_path / "o" / "case_000" / "t1_in.nii.gz"))
    assert np.max(np.abs(np.asarray(img.GetDirection()).reshape(3, 3) - np.eye(3))) > 0.05


def test_tissue_table_is_physical():
    for t in TISSUES.values():
        assert -1024 <= t.hu <= 3071, t.name
        assert 0 <= t.pd <= 1 and 0 <= t.ff <= 1, t.name
        assert 0 < t.t2s <= t.t2 and t.t1 > 0, t.name
    assert TISSUES["liver"].t1 < TISSUES["spleen"].t1 and TISSUES["liver"].t2 < TISSUES["spleen"].t2
