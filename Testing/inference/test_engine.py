"""The inference engine: outputs on the input's exact grid, backends agree, bad inputs refused,
progress, cancel, memory budget."""

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from testsupport.images import random_rotation
from CrossModalitySynthLib.errors import ConfigError, InputError
from CrossModalitySynthLib.geometry import Grid, same_grid
from CrossModalitySynthLib.inference import CancelToken, Cancelled, EngineOptions, load_model, segment, synthesize


def mri_like(shape_zyx=(5, 30, 26), spacing=(1.4, 1.6, 6.0), direction=None, origin=(-20.0, 15.0, 40.0), seed=0):
    """A positive MRI-like volume: a bright body ellipse on a dark background, Rician-ish noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape_zyx)
    body = ((y - shape_zyx[1] / 2) / (shape_zyx[1] / 2.6)) ** 2 + ((x - shape_zyx[2] / 2) / (shape_zyx[2] / 2.4)) ** 2 < 1
    arr = np.where(body, 400.0 + 80 * np.sin(x / 3.0), 5.0) + np.abs(rng.normal(0, 8, shape_zyx))
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(tuple(np.asarray(direction, float).ravel()))
    return img


def ct_like(like):
    arr = sitk.GetArrayFromImage(like)
    ct = np.where(arr > 100, 40.0, -1000.0).astype(np.int16)
    img = sitk.GetImageFromArray(ct)
    img.CopyInformation(like)
    return img


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {
        "mr2ct": make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp")),
        "mr2ct_resample": make_test_bundle(root / "mr2ct_rs", "MR->CT", ("t2",), spacing=(2.0, 2.0, None), onnx=False),
        "ct2mr": make_test_bundle(root / "ct2mr", "CT->MR", ("ct",)),
        "liver": make_test_bundle(root / "liver", "MR->LIVER", ("t1_in",)),
    }


@pytest.mark.parametrize("backend,precision", [("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32")])
@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_ct_on_input_grid_oblique(bundles, backend, precision, seed):
    rng = np.random.default_rng(seed)
    mr = mri_like(direction=random_rotation(rng), spacing=tuple(rng.uniform(0.6, 7.0, 3)), seed=seed)
    mr2 = mri_like(direction=mr.GetDirection(), spacing=mr.GetSpacing(), origin=mr.GetOrigin(), seed=seed + 10)
    res = synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", backend=backend, precision=precision))
    assert Grid.of(res.image) == Grid.of(mr)  # exactly: size, origin, spacing, direction
    arr = sitk.GetArrayFromImage(res.image)
    assert np.isfinite(arr).all() and arr.min() >= -1024 - 1e-3 and arr.max() <= 3071 + 1e-3


def test_resampling_model_still_lands_on_input_grid(bundles):
    rng = np.random.default_rng(7)
    mr = mri_like(direction=random_rotation(rng), spacing=(0.9, 1.3, 5.0))
    res = synthesize(bundles["mr2ct_resample"], [mr], EngineOptions(device="cpu"))
    assert same_grid(res.image, mr, tol=0) and res.image.GetSize() == mr.GetSize()


def test_segment_and_reverse_direction_on_input_grid(bundles):
    rng = np.random.default_rng(3)
    mr = mri_like(direction=random_rotation(rng), spacing=(1.1, 0.7, 4.0))
    for backend in ("torch", "onnx"):
        seg = segment(bundles["liver"], [mr], EngineOptions(device="cpu", backend=backend))
        assert Grid.of(seg.image) == Grid.of(mr)
        assert seg.image.GetPixelID() == sitk.sitkUInt8
        assert set(np.unique(sitk.GetArrayFromImage(seg.image))) <= {0, 1}
    ct = ct_like(mr)
    smr = synthesize(bundles["ct2mr"], [ct], EngineOptions(device="cpu"))
    assert Grid.of(smr.image) == Grid.of(ct)


def test_torch_and_onnx_agree_within_1_hu(bundles):
    mr = mri_like(seed=4)
    mr2 = mri_like(seed=5)
    a = synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", backend="torch"))
    b = synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", backend="onnx"))
    diff = np.abs(sitk.GetArrayFromImage(a.image) - sitk.GetArrayFromImage(b.image))
    assert diff.max() < 1.0


def test_batch_size_does_not_change_the_result(bundles):
    mr, mr2 = mri_like(seed=8), mri_like(seed=9)
    a = synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", batch_size=1))
    b = synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", batch_size=5))
    assert a.batch_size == 1 and b.batch_size == 5
    np.testing.assert_allclose(sitk.GetArrayFromImage(a.image), sitk.GetArrayFromImage(b.image), atol=0.05)


def test_wrong_channel_count(bundles):
    with pytest.raises(InputError, match=r"takes 2 input\(s\) \(T1 in-phase, T1 opposed-phase\) but 1 was given"):
        synthesize(bundles["mr2ct"], [mri_like()], EngineOptions(device="cpu"))


def test_ct_given_to_mri_model_refused_unless_forced(bundles):
    ct = ct_like(mri_like())
    with pytest.raises(InputError, match="looks like a CT.*--force"):
        synthesize(bundles["mr2ct_resample"], [ct], EngineOptions(device="cpu"))
    res = synthesize(bundles["mr2ct_resample"], [ct], EngineOptions(device="cpu", force=True))
    assert any("looks like a CT" in w for w in res.warnings)


def test_channels_that_do_not_overlap(bundles):
    mr = mri_like()
    far = mri_like(origin=(500.0, 500.0, 500.0))
    with pytest.raises(InputError, match="overlap"):
        synthesize(bundles["mr2ct"], [mr, far], EngineOptions(device="cpu"))


def test_memory_budget_too_small_says_how_much(bundles):
    with pytest.raises(InputError, match=r"needs about \d+ MiB at batch size 1"):
        synthesize(bundles["mr2ct"], [mri_like(), mri_like(seed=1)], EngineOptions(device="cpu", memory_budget_mb=0.05))


def test_progress_and_cancel(bundles):
    calls = []
    mr, mr2 = mri_like(), mri_like(seed=1)
    synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", batch_size=2),
               progress=lambda s, d, t: calls.append((s, d, t)))
    steps = [d for s, d, t in calls if s == "synthesize"]
    assert steps == [2, 4, 5] and calls[-1][0] == "restore"

    token = CancelToken()

    def cancel_after_first(stage, done, total):
        if stage == "synthesize":
            token.cancel()

    with pytest.raises(Cancelled):
        synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu", batch_size=1),
                   progress=cancel_after_first, cancel=token)


def test_cpu_batches_follow_the_slice_workers(bundles):
    """Without --batch-size, a CPU batch is at most 4 slices per slice worker (one per thread), so
    a 21-slice volume reports progress (and can be cancelled) every 8 slices with 2 threads."""
    import torch

    mr, mr2 = mri_like(shape_zyx=(21, 24, 24)), mri_like(shape_zyx=(21, 24, 24), seed=1)
    before = torch.get_num_threads()
    try:
        model = load_model(bundles["mr2ct"], EngineOptions(device="cpu", threads=2))
        assert model.runner.preferred_batch() == 8
        calls = []
        res = synthesize(model, [mr, mr2], progress=lambda s, d, t: calls.append((s, d, t)))
        assert res.batch_size == 8
        assert [d for s, d, t in calls if s == "synthesize"] == [8, 16, 21]
        model = load_model(bundles["mr2ct"], EngineOptions(device="cpu", threads=1))
        assert model.runner.preferred_batch() == 4
    finally:
        torch.set_num_threads(before)


def test_wrong_task_and_options(bundles):
    with pytest.raises(InputError, match="not a segmentation model"):
        segment(bundles["mr2ct"], [mri_like(), mri_like()], EngineOptions(device="cpu"))
    with pytest.raises(InputError, match="not a synthesis model"):
        synthesize(bundles["liver"], [mri_like()], EngineOptions(device="cpu"))
    with pytest.raises(ConfigError, match="precision"):
        load_model(bundles["mr2ct"], EngineOptions(device="cpu", precision="fp8"))
    with pytest.raises(ConfigError, match="fp32 only"):
        load_model(bundles["mr2ct"], EngineOptions(device="cpu", backend="onnx", precision="bf16"))


def test_input_volumes_not_modified(bundles):
    mr, mr2 = mri_like(), mri_like(seed=1)
    before = sitk.GetArrayFromImage(mr).copy(), Grid.of(mr)
    synthesize(bundles["mr2ct"], [mr, mr2], EngineOptions(device="cpu"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mr), before[0])
    assert Grid.of(mr) == before[1]
