"""Output names are checked before any inference: a synthetic image is never written under a
segmentation name (.seg.nrrd), and an unknown suffix is refused before the model runs."""

import os

import pytest

from testsupport.bundles import bundles_and_case


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    c = bundles_and_case(root)
    return str(root / "m"), str(root / "liver"), [os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz")]


@pytest.mark.parametrize("name", ["s.seg.nrrd", "s.png", "s.txt"])
def test_synthesize_refuses_the_name_before_inference(tmp_path, cli, setup, name):
    model, _, inputs = setup
    out = tmp_path / name
    code, stdout, err = cli("synthesize", "--model", model, "--progress", "json", "--out", out, *inputs)
    assert code != 0 and "Cannot write a synthetic image" in err and "Traceback" not in err
    assert '"stage"' not in stdout  # no progress event: nothing ran
    assert not out.exists()


def test_segment_refuses_an_unknown_suffix_before_inference(tmp_path, cli, setup):
    _, liver, inputs = setup
    out = tmp_path / "liver.txt"
    code, stdout, err = cli("segment", "--model", liver, "--progress", "json", "--out", out, inputs[0])
    assert code != 0 and "Cannot write a liver segmentation" in err
    assert '"stage"' not in stdout
    assert not out.exists()
