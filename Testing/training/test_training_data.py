"""Training data: the cache holds exactly what prepare() makes, samples are keyed and
reproducible, augmentation moves image and label together, the image pool resumes exactly."""

import numpy as np
import pytest
import torch

from testsupport.training import TRAIN_CASES, one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import ConfigError
from cmsynth_training.data import (
    AugmentSettings,
    CaseRef,
    LabelledSlices,
    SliceSet,
    augment_slice,
    cached_volume,
    prepare_case,
    training_cases,
)
from cmsynth_training.pool import ImagePool


def test_cache_is_prepare_output_memory_mapped(tmp_path, training_phantom):
    cfg = tiny_config("unet", training_phantom, str(tmp_path))
    spec = cfg.grid_spec(4)
    ref = CaseRef("phantom", training_phantom, "case_000", "MR", ("t1_in", "t1_opp"))
    vol = cached_volume(str(tmp_path), ref, spec)
    prepared, lab = prepare_case(ref, spec)
    assert isinstance(vol.image, np.memmap)
    assert np.array_equal(np.asarray(vol.image), prepared.array.transpose(1, 0, 2, 3))
    assert np.array_equal(np.asarray(vol.label), lab) and set(np.unique(lab)) == {0, 1}
    again = cached_volume(str(tmp_path), ref, spec)  # second call: read from the cache
    assert again.key == vol.key and again.meta == vol.meta
    other = cached_volume(str(tmp_path), ref, type(spec).from_dict({**spec.to_dict(), "spacing": [8.0, 8.0, None]}))
    assert other.key != vol.key  # the grid spec is part of the key


def test_unpaired_split_uses_different_patients(training_phantom, training_cache):
    mr, ct = training_cases(tiny_config("cyclegan", training_phantom, training_cache))
    assert mr == TRAIN_CASES[0::2] and ct == TRAIN_CASES[1::2] and not set(mr) & set(ct)
    with pytest.raises(ConfigError, match="different patients"):
        training_cases(tiny_config("cyclegan", training_phantom, training_cache,
                                   data={"mr_cases": ["case_000"], "ct_cases": ["case_000"]}))
    with pytest.raises(ConfigError, match="also validation"):
        training_cases(tiny_config("unet", training_phantom, training_cache, validation=True,
                                   data={"cases": ["case_000", "case_004"]}))


def test_augment_slice_moves_label_with_image():
    rng = np.random.default_rng(0)
    img = rng.uniform(-1, 1, size=(2, 24, 20)).astype(np.float32)
    lab = np.zeros((24, 20), dtype=np.int64)
    lab[5:9, 3:7] = 1
    img[0][lab == 1] = 1.0  # the labelled square is bright in channel 0
    img[0][lab == 0] = np.minimum(img[0][lab == 0], 0.5)
    for seed in range(12):
        x, y = augment_slice(img, lab, np.random.default_rng(seed), load_size=18, crop_size=16, flip=True)
        assert x.shape == (2, 16, 16) and y.shape == (1, 16, 16) and y.dtype == torch.int64
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        if int(y.sum()):
            assert float(x[0][y[0] == 1].mean()) > 0.6
    # centre crop without rng, padding with air (-1) when the slice is smaller than the crop
    x, y = augment_slice(img[:, :8, :8], lab[:8, :8], None, 16, 16, True)
    assert x.shape == (2, 16, 16) and float(x[0, 0, 0]) == -1.0 and int(y[0, 0, 0]) == 0


def test_samples_are_keyed_and_reproducible(training_phantom, training_cache):
    from cmsynth_training.trainer import build_task

    task = build_task(tiny_config("essnet", training_phantom, training_cache), cache_dir=training_cache)
    ds = task.dataset
    a, b = ds[(1, 5)], ds[(1, 5)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = ds[(2, 5)]
    assert not torch.equal(a["B"], c["B"]) or not torch.equal(a["A"], c["A"])
    assert set(a) == {"A", "B", "A_label"}
    assert len(ds) == max(len(ds.a), len(ds.b))


def test_labelled_slices_concatenate_sets(training_phantom, training_cache):
    cfg = tiny_config("unet", training_phantom, training_cache)
    spec = cfg.grid_spec(4)
    vols = [cached_volume(training_cache, CaseRef("phantom", training_phantom, c, "MR", ("t1_in",)), spec) for c in TRAIN_CASES[:2]]
    s1, s2 = SliceSet(vols[:1], 0.05), SliceSet(vols[1:], 0.05)
    ds = LabelledSlices([s1, s2], AugmentSettings(32, 32, False), seed=0)
    assert len(ds) == len(s1) + len(s2)
    assert ds.locate(len(s1))[0] is s2 and ds.locate(0)[0] is s1
    assert all(vol.foreground[z] >= 0.05 for v, z in s1.index for vol in [s1.volumes[v]])


def test_image_pool_state_round_trip():
    pool = ImagePool(3, seed=1)
    for i in range(5):
        pool.query(torch.full((2, 1, 4, 4), float(i)))
    state = pool.state_dict()
    clone = ImagePool(3, seed=99)
    clone.load_state_dict(state)
    for i in range(5, 9):
        x = torch.full((2, 1, 4, 4), float(i))
        assert torch.equal(pool.query(x), clone.query(x))
    assert len(pool) == 3
    assert torch.equal(ImagePool(0).query(torch.ones(1, 1, 2, 2)), torch.ones(1, 1, 2, 2))


class _Slices:
    """A slice set of 10 slices whose liver label shows only on slices 6-8."""

    def __len__(self):
        return 10

    def image(self, i):
        return np.full((1, 4, 4), float(i), dtype=np.float32)

    def label(self, i):
        return np.full((4, 4), int(6 <= i <= 8), dtype=np.int64)


def test_labelled_preview_slices_show_the_liver():
    from types import SimpleNamespace

    from cmsynth_training.task import Task

    with_label = Task.preview_inputs(SimpleNamespace(_preview_sets=[(_Slices(), True)]), 3)
    assert [float(s["image"][0, 0, 0]) for s in with_label] == [6.0, 7.0, 8.0]
    assert all(bool(s["label"].all()) for s in with_label)
    unlabelled = Task.preview_inputs(SimpleNamespace(_preview_sets=[(_Slices(), False)]), 3)
    assert [float(s["image"][0, 0, 0]) for s in unlabelled] == [0.0, 4.0, 9.0] and unlabelled[0]["label"] is None


def test_intensity_augmentation_is_keyed_and_leaves_the_label(training_phantom, training_cache):
    cfg = tiny_config("unet", training_phantom, training_cache)
    ref = CaseRef("phantom", training_phantom, "case_000", "MR", ("t1_in",))
    s = SliceSet([cached_volume(training_cache, ref, cfg.grid_spec(4))])
    plain = LabelledSlices([s], AugmentSettings(36, 32, False), seed=5)
    aug = LabelledSlices([s], AugmentSettings(36, 32, False, intensity=True), seed=5)
    changed = 0
    for i in range(12):
        a, b, again = plain[(0, i)], aug[(0, i)], aug[(0, i)]
        assert torch.equal(a["label"], b["label"])  # geometry is untouched
        assert torch.equal(b["image"], again["image"])  # the same key draws the same augmentation
        assert float(b["image"].min()) >= -1.0 and float(b["image"].max()) <= 1.0
        changed += int(not torch.equal(a["image"], b["image"]))
    assert 0 < changed < 12  # each transform has a probability below 1


def test_intensity_augmentation_is_refused_outside_the_unet(training_phantom, training_cache):
    with pytest.raises(ConfigError, match="intensity_aug"):
        tiny_config("cyclegan", training_phantom, training_cache, data={"intensity_aug": True})
    assert tiny_config("unet", training_phantom, training_cache, data={"intensity_aug": True}).data.intensity_aug
