"""Reader-study design: who sees which image (no images are prepared here)."""

import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from CrossModalitySynthLib.errors import ConfigError, InputError
from CrossModalitySynthLib.reader_study.design import (
    REAL,
    SYNTHETIC,
    SourceImage,
    draw_trials,
    make_plan,
    n_real_trials,
    parse_reader_ids,
    patient_id_of,
    sources_from_csv,
    sources_from_files,
)


def _sources(n_patients, versions=("v1",), real_only=(), syn_only=()):
    out = []
    for i in range(n_patients):
        pid = f"p{i:03d}"
        if i not in syn_only:
            out.append(SourceImage(pid, REAL, f"/data/real/{pid}.nii.gz"))
        if i not in real_only:
            for v in versions:
                out.append(SourceImage(pid, SYNTHETIC, f"/data/{v}/{pid}.nii.gz", v))
    return out


def _check_plan(plan, trials, fraction, max_per_patient):
    for rid, indices in plan.readers.items():
        images = [plan.pool[i] for i in indices]
        assert len(indices) == trials
        assert len(set(indices)) == trials, "an image shown twice to one reader"
        arms = {}
        for img in images:
            arms.setdefault(img.patient_id, set()).add(img.truth)
        both = [p for p, a in arms.items() if len(a) > 1]
        assert not both, f"reader {rid} sees the real and the synthetic image of {both}"
        assert sum(1 for img in images if img.truth == REAL) == n_real_trials(trials, fraction)
        assert max(Counter(img.patient_id for img in images).values()) <= max_per_patient


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_patients=st.integers(2, 30),
    n_versions=st.integers(1, 3),
    trials=st.integers(1, 40),
    fraction=st.sampled_from([0.2, 0.5, 0.7]),
    max_per_patient=st.integers(1, 3),
    slices=st.integers(1, 3),
    design=st.sampled_from(["crossed", "independent"]),
    n_readers=st.integers(1, 4),
    mode=st.sampled_from(["slices", "volumes"]),
)
def test_a_reader_never_sees_both_versions_of_a_patient(
    seed, n_patients, n_versions, trials, fraction, max_per_patient, slices, design, n_readers, mode
):
    sources = _sources(n_patients, versions=[f"v{k}" for k in range(n_versions)], real_only={0}, syn_only={1})
    readers = [f"R{k}" for k in range(n_readers)]
    # independent oracle: patient 0 has only a real, patient 1 only synthetic images, the other
    # B patients both; per reader a patient gives at most cr real or cs synthetic images
    per_source = slices if mode == "slices" else 1
    cr, cs = min(max_per_patient, per_source), min(max_per_patient, per_source * n_versions)
    n_real = n_real_trials(trials, fraction)
    b = n_patients - 2
    feasible = any(cr * (k + 1) >= n_real and cs * (b - k + 1) >= trials - n_real for k in range(b + 1))
    try:
        plan = make_plan(
            sources, readers, trials, fraction, seed, mode, ["axial", "coronal"], per_source, max_per_patient, design
        )
    except ConfigError as exc:
        assert "Cannot give a reader" in str(exc)
        assert not feasible, "a feasible request was refused"
        return
    assert feasible
    _check_plan(plan, trials, fraction, max_per_patient)
    if design == "crossed":
        sets = {frozenset(v) for v in plan.readers.values()}
        assert len(sets) == 1, "crossed design: every reader reads the same images"


def test_ratio_is_exact_and_the_order_random():
    plan = make_plan(_sources(40), ["A", "B"], 30, 0.3, seed=5)
    _check_plan(plan, 30, 0.3, 1)
    a, b = plan.readers["A"], plan.readers["B"]
    assert sorted(a) == sorted(b) and a != b  # same images, different order


def test_same_seed_same_plan_other_seed_other_plan():
    sources = _sources(30)
    p1 = make_plan(sources, ["A", "B"], 20, 0.5, seed=3, mode="slices", planes=["axial", "sagittal"])
    p2 = make_plan(sources, ["A", "B"], 20, 0.5, seed=3, mode="slices", planes=["axial", "sagittal"])
    p3 = make_plan(sources, ["A", "B"], 20, 0.5, seed=4, mode="slices", planes=["axial", "sagittal"])
    assert p1.readers == p2.readers and p1.pool == p2.pool
    assert p1.readers != p3.readers


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(ConfigError, match="Cannot give a reader 12 trials"):
        draw_trials(make_plan(_sources(10), ["A"], 1).pool, 12, 0.5)
    # allowed with several slices per volume and several images per patient
    plan = make_plan(_sources(10), ["A"], 12, 0.5, mode="slices", slices_per_volume=2, max_per_patient=2)
    _check_plan(plan, 12, 0.5, 2)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_real_fraction_must_be_strictly_between_0_and_1(fraction):
    with pytest.raises(ConfigError, match="real-fraction"):
        make_plan(_sources(10), ["A"], 4, fraction)


def test_reader_ids():
    assert parse_reader_ids(["3"]) == ["R01", "R02", "R03"]
    assert parse_reader_ids(["alice", "bob"]) == ["alice", "bob"]
    with pytest.raises(ConfigError, match="given twice"):
        parse_reader_ids(["alice", "bob", "alice"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_reader_ids(["Alice", "alice"])  # same file name on case-insensitive disks
    with pytest.raises(ConfigError, match="cannot be used"):
        parse_reader_ids(["../evil"])
    with pytest.raises(ConfigError, match="unique"):
        make_plan(_sources(10), ["A", "A"], 4)


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")
    return path


def test_patient_ids_come_from_file_names(tmp_path):
    assert patient_id_of("/a/p01.nii.gz") == "p01"
    assert patient_id_of("/a/case.7.nrrd") == "case.7"
    for pid in ("p01", "p02"):
        _touch(str(tmp_path / "real" / f"{pid}.nii.gz"))
        _touch(str(tmp_path / "syn" / f"{pid}.nrrd"))
    _touch(str(tmp_path / "real" / "notes.txt"))  # not a volume: ignored
    sources = sources_from_files([str(tmp_path / "real")], [str(tmp_path / "syn")], "cyclegan-1.0")
    assert sorted((s.patient_id, s.truth, s.model_version) for s in sources) == [
        ("p01", REAL, None), ("p01", SYNTHETIC, "cyclegan-1.0"), ("p02", REAL, None), ("p02", SYNTHETIC, "cyclegan-1.0"),
    ]
    _touch(str(tmp_path / "real2" / "p01.nrrd"))
    with pytest.raises(InputError, match="patient id 'p01'"):
        sources_from_files([str(tmp_path / "real"), str(tmp_path / "real2")], [str(tmp_path / "syn")])
    with pytest.raises(InputError, match="No such real"):
        sources_from_files([str(tmp_path / "missing")], [str(tmp_path / "syn")])
    with pytest.raises(InputError, match="listed twice"):
        sources_from_files([str(tmp_path / "real")], [str(tmp_path / "real" / "p01.nii.gz")])


def test_cases_csv_with_several_model_versions(tmp_path):
    for name in ("r1.nii.gz", "r2.nii.gz", "a1.nii.gz", "b1.nii.gz", "a2.nii.gz"):
        _touch(str(tmp_path / name))
    csv_path = tmp_path / "cases.csv"
    csv_path.write_text(
        "patient_id,real,synthetic,model_version\n"
        "P1,r1.nii.gz,a1.nii.gz,A\n"
        "P1,r1.nii.gz,b1.nii.gz,B\n"
        "P2,r2.nii.gz,,\n"
        "P3,,a2.nii.gz,A\n"
    )
    sources = sources_from_csv(str(csv_path))
    assert sorted((s.patient_id, s.truth, s.model_version) for s in sources) == [
        ("P1", REAL, None), ("P1", SYNTHETIC, "A"), ("P1", SYNTHETIC, "B"), ("P2", REAL, None), ("P3", SYNTHETIC, "A"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,real,synthetic,model_version\nP1,r1.nii.gz,missing.nii.gz,A\n")
    with pytest.raises(InputError, match="does not exist"):
        sources_from_csv(str(bad))
    bad.write_text("id,file\nP1,r1.nii.gz\n")
    with pytest.raises(InputError, match="header row"):
        sources_from_csv(str(bad))
