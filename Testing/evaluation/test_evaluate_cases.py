"""``evaluation.cases``: matching real and synthetic volumes from lists, folders and CSV files.

Only file names matter here, so the "volumes" are tiny images written in tmp_path.
"""

import os

import numpy as np
import pytest
import SimpleITK as sitk

from CrossModalitySynthLib.errors import ConfigError, InputError
from CrossModalitySynthLib.evaluation import collect_inputs


def _write(path, value=0.0, size=(6, 5, 4)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = sitk.GetImageFromArray(np.full(size[::-1], value, dtype=np.float32))
    sitk.WriteImage(img, path)
    return path


@pytest.fixture
def tree(tmp_path):
    d = tmp_path
    for name in ("b", "a", "c"):
        _write(str(d / "real" / (name + ".nii.gz")))
        _write(str(d / "synth" / (name + ".mha")))  # another format: matched by name without suffix
        _write(str(d / "masks" / (name + ".nrrd")))
    (d / "real" / ".hidden.nii.gz").write_bytes(b"")  # ignored
    (d / "real" / "notes.txt").write_text("ignored")
    return d


def test_folders_match_by_name_and_sort(tree):
    inp = collect_inputs([str(tree / "real")], [str(tree / "synth")], paired=True, masks=[str(tree / "masks")])
    assert [p.case_id for p in inp.pairs] == ["a", "b", "c"]
    for p in inp.pairs:
        assert os.path.basename(p.real) == p.case_id + ".nii.gz"
        assert os.path.basename(p.synthetic) == p.case_id + ".mha"
        assert os.path.basename(p.mask) == p.case_id + ".nrrd"
    assert [v.case_id for v in inp.real] == ["a", "b", "c"]
    assert not inp.has_segmentation


def test_folder_name_mismatch_names_the_file(tree):
    os.remove(str(tree / "synth" / "b.mha"))
    with pytest.raises(InputError, match=r"'b' is in .*real but not in .*synth"):
        collect_inputs([str(tree / "real")], [str(tree / "synth")], paired=True)


def test_lists_match_by_order_and_ids_from_parent_folders(tmp_path):
    reals = [_write(str(tmp_path / c / "ct.nii.gz")) for c in ("case_x", "case_y")]
    synths = [_write(str(tmp_path / c / "sct.nii.gz")) for c in ("case_x", "case_y")]
    inp = collect_inputs(reals, synths, paired=True)
    assert [p.case_id for p in inp.pairs] == ["case_x", "case_y"]
    assert [p.synthetic for p in inp.pairs] == synths


def test_count_mismatch_in_paired_mode(tmp_path):
    reals = [_write(str(tmp_path / "r{}.nii.gz".format(i))) for i in range(3)]
    synths = [_write(str(tmp_path / "s{}.nii.gz".format(i))) for i in range(2)]
    with pytest.raises(InputError, match="3 real but 2 synthetic"):
        collect_inputs(reals, synths, paired=True)
    inp = collect_inputs(reals, synths, paired=False)  # unpaired: two independent sets
    assert len(inp.real) == 3 and len(inp.synthetic) == 2 and not inp.pairs


def test_missing_file_is_named(tmp_path):
    r = _write(str(tmp_path / "r.nii.gz"))
    with pytest.raises(InputError, match=r"No such file or folder: .*missing\.nii\.gz \(synthetic volume\)"):
        collect_inputs([r], [str(tmp_path / "missing.nii.gz")], paired=True)


def test_csv_with_relative_paths_and_optional_columns(tree):
    _write(str(tree / "labels" / "a.nii.gz"))
    _write(str(tree / "pred" / "a.nii.gz"))
    csv_path = tree / "cases.csv"
    csv_path.write_text(
        "case_id,real,synthetic,mask,labels,pred\n"
        "first,real/a.nii.gz,synth/a.mha,masks/a.nrrd,labels/a.nii.gz,pred/a.nii.gz\n"
        "second,{},synth/b.mha,,,\n".format(tree / "real" / "b.nii.gz")
    )
    inp = collect_inputs([str(csv_path)], None, paired=True)
    first, second = inp.pairs
    assert first.case_id == "first" and first.real == str(tree / "real" / "a.nii.gz")
    assert first.mask.endswith("a.nrrd") and first.labels.endswith("a.nii.gz") and first.pred
    assert second.mask is None and second.labels is None and second.pred is None
    assert inp.has_segmentation
    # the same CSV may also be named in --synthetic
    assert collect_inputs([str(csv_path)], [str(csv_path)], paired=True).pairs == inp.pairs


def test_csv_errors(tree):
    bad = tree / "bad.csv"
    bad.write_text("id,ct\nx,real/a.nii.gz\n")
    with pytest.raises(InputError, match="needs a header with case_id, real, synthetic"):
        collect_inputs([str(bad)], None, paired=True)
    missing = tree / "missing.csv"
    missing.write_text("case_id,real,synthetic\nx,real/a.nii.gz,synth/zzz.mha\n")
    with pytest.raises(InputError, match=r"zzz\.mha \(synthetic of case x, row 2"):
        collect_inputs([str(missing)], None, paired=True)
    dup = tree / "dup.csv"
    dup.write_text("case_id,real,synthetic\nx,real/a.nii.gz,synth/a.mha\nx,real/b.nii.gz,synth/b.mha\n")
    with pytest.raises(InputError, match="twice"):
        collect_inputs([str(dup)], None, paired=True)
    with pytest.raises(ConfigError, match="CSV"):
        collect_inputs([str(dup)], [str(tree / "synth")], paired=True)


def test_segmentation_needs_paired_and_both_maps(tree):
    r = [str(tree / "real")]
    s = [str(tree / "synth")]
    with pytest.raises(ConfigError, match="--paired"):
        collect_inputs(r, s, paired=False, labels=r, pred_labels=r)
    with pytest.raises(ConfigError, match="both --labels"):
        collect_inputs(r, s, paired=True, labels=r)
    with pytest.raises(InputError, match="2 labels file"):
        collect_inputs(r, s, paired=True, labels=[str(tree / "real" / "a.nii.gz"), str(tree / "real" / "b.nii.gz")],
                       pred_labels=r)
