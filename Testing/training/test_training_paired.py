"""The optional paired L1 term of the cyclegan and essnet tasks (train.lambda_paired, phantom data only)."""

import numpy as np
import pytest
import torch

from testsupport.training import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401 (fixtures)

from CrossModalitySynthLib.errors import ConfigError
from cmsynth_training.data import CaseRef, EpochSampler, PairedSliceSet, prepare_case
from cmsynth_training.trainer import build_task

T1DUAL = {"mr_sequences": ["t1_in", "t1_opp"]}


def _batch(task, min_body=0.2):
    sampler = EpochSampler(task.dataset, 1, 0, 0, 1)
    sampler.set_epoch(0)
    for key in sampler:
        item = task.dataset[key]
        if float((item["A"] > -0.95).float().mean()) >= min_body:
            return key, {k: v[None] for k, v in item.items()}
    raise AssertionError("no sample with enough body")


def _window(slice_, crop, top, left, flip):
    w = slice_[..., top : top + crop, left : left + crop]
    return np.flip(w, axis=-1) if flip else w


def _locate(full: np.ndarray, crop_img: np.ndarray):
    """(top, left, flip) where ``crop_img`` (C, s, s) is a window of ``full`` (C, H, W)."""
    s = crop_img.shape[-1]
    hits = []
    for top in range(full.shape[-2] - s + 1):
        for left in range(full.shape[-1] - s + 1):
            for flip in (False, True):
                if np.array_equal(_window(full, s, top, left, flip), crop_img):
                    hits.append((top, left, flip))
    return hits


def _paired_and_plain_step(task_name, root, cache, data=None, lam=5.0):
    """One generator step of the same networks (same seed) on one paired batch, with
    ``lambda_paired`` ``lam`` and with 0 (the batch without its target): (task, batch, outputs
    with the term, outputs without, the expected term ``lam * |G_A(A) - target|``)."""
    cfgp = tiny_config(task_name, root, cache, data=data or {}, train={"lambda_paired": lam})
    cfg0 = tiny_config(task_name, root, cache, data=data or {})
    torch.manual_seed(0)
    taskp = build_task(cfgp, cache_dir=cache)
    _, pbatch = _batch(taskp)
    torch.manual_seed(0)
    task0 = build_task(cfg0, cache_dir=cache)
    with torch.no_grad():
        expected = lam * (taskp.G_A(pbatch["A"]) - pbatch["A_paired"]).abs().mean()
    taskp.setup_training()
    task0.setup_training()
    outp = taskp.train_step(pbatch)
    out0 = task0.train_step({k: v for k, v in pbatch.items() if k != "A_paired"})
    return taskp, pbatch, outp, out0, expected


def test_paired_batch_same_case_same_crop(training_phantom, training_cache):
    # load_size == crop_size: no rescaling, so each crop is an exact window of the prepared slice
    cfg = tiny_config("cyclegan", training_phantom, training_cache, data={**T1DUAL, "load_size": 32},
                      train={"lambda_paired": 10.0})
    task = build_task(cfg, cache_dir=training_cache)
    a = task.dataset.a
    assert isinstance(a, PairedSliceSet) and a.channels == 2 and a.target_channels == 1
    for vol, tgt in zip(a.volumes, a.targets):  # the same patient: MRI and its CT on the MR grid
        assert vol.meta["case"] == tgt.meta["case"] and vol.meta["kind"] == "MR" and tgt.meta["kind"] == "CT_ON_MR"
    assert set(task.data_summary["mr_cases"]).isdisjoint(task.data_summary["ct_cases"])  # B stays unpaired
    key, batch = _batch(task)
    assert batch["A"].shape == (1, 2, 32, 32) and batch["A_paired"].shape == (1, 1, 32, 32)
    ia = key[1] % len(a)
    v, z = a.index[ia]
    # the target slice is the library's prepare() of ct_on_mr, like every other volume
    ref = CaseRef("phantom", training_phantom, a.volumes[v].meta["case"], "CT_ON_MR")
    prepared, _ = prepare_case(ref, task.spec, with_label=False)
    np.testing.assert_array_equal(a.target(ia), prepared.array[:, z])
    # same crop position and flip for MRI and CT
    mr_full, ct_full = np.pad(a.image(ia), 0), a.target(ia)
    hits = _locate(mr_full, batch["A"][0].numpy())
    assert hits, "A is not a window of its MRI slice"
    assert any(np.array_equal(_window(ct_full, 32, *h), batch["A_paired"][0].numpy()) for h in hits)
    # and the body outlines agree (MRI and CT of the same patient, same slice)
    body_mr = (batch["A"][0, 0] > -0.95).numpy()
    body_ct = (batch["A_paired"][0, 0] > -0.95).numpy()
    assert (body_mr & body_ct).sum() / max(1, (body_mr | body_ct).sum()) > 0.7


def test_lambda_paired_zero_leaves_loss_unchanged(training_phantom, training_cache):
    cfg0 = tiny_config("cyclegan", training_phantom, training_cache, data=T1DUAL)
    assert cfg0.train.lambda_paired == 0.0
    torch.manual_seed(0)
    task0 = build_task(cfg0, cache_dir=training_cache)
    assert not isinstance(task0.dataset.a, PairedSliceSet)
    _, batch = _batch(task0)
    assert "A_paired" not in batch
    torch.manual_seed(0)
    task1 = build_task(cfg0, cache_dir=training_cache)
    task0.setup_training()
    task1.setup_training()
    out0 = task0.train_step(batch)
    # with lambda_paired 0 a paired target in the batch changes nothing
    out1 = task1.train_step({**batch, "A_paired": torch.rand(1, 1, 32, 32) * 2 - 1})
    assert set(out0) == {"G_A", "G_B", "cycle_A", "cycle_B", "G", "D_A", "D_B"}
    for k in out0:
        assert torch.equal(out0[k], out1[k]), k

    # lambda_paired > 0 adds exactly lambda * |G_A(A) - CT| to the generator loss
    _, _, outp, out2, expected = _paired_and_plain_step("cyclegan", training_phantom, training_cache, T1DUAL)
    assert float(outp["paired"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(outp["G"] - outp["paired"]) == pytest.approx(float(out2["G"]), rel=1e-5)
    for k in ("G_A", "G_B", "cycle_A", "cycle_B"):
        assert torch.equal(outp[k], out2[k]), k


def test_paired_steps_lower_l1(training_phantom, training_cache):
    cfg = tiny_config("cyclegan", training_phantom, training_cache, data=T1DUAL, train={"lambda_paired": 20.0})
    task = build_task(cfg, cache_dir=training_cache)
    _, batch = _batch(task)
    task.setup_training()
    hist = [float(task.train_step(batch)["paired"]) for _ in range(8)]
    assert hist[-1] < 0.8 * hist[0], hist


@pytest.mark.parametrize(
    "sections",
    [{"direction": "CT->MR"}, {"train": {"lambda_paired": -1.0}}, {"task": "unet"}],
)
def test_lambda_paired_config_checks(training_phantom, training_cache, sections):
    train = {"lambda_paired": 1.0, **sections.get("train", {})}
    extra = {k: v for k, v in sections.items() if k != "train"}
    with pytest.raises(ConfigError, match="lambda_paired"):
        tiny_config(extra.pop("task", "cyclegan"), training_phantom, training_cache, train=train, **extra)


# --------------------------------------------------------------------------- essnet (CT -> MRI)


def test_essnet_paired_batch_is_the_ct_patients_ct_on_mr_with_label_and_mri(training_phantom, training_cache):
    cfg = tiny_config("essnet", training_phantom, training_cache, data={"load_size": 32}, train={"lambda_paired": 10.0})
    task = build_task(cfg, cache_dir=training_cache)
    a = task.dataset.a
    assert isinstance(a, PairedSliceSet) and a.channels == 1 and a.target_channels == 1
    ct_cases = task.data_summary["ct_cases"]
    assert [v.meta["case"] for v in a.volumes] == ct_cases == [t.meta["case"] for t in a.targets]
    assert {v.meta["kind"] for v in a.volumes} == {"CT_ON_MR"} and {t.meta["kind"] for t in a.targets} == {"MR"}
    assert {v.meta["case"] for v in task.dataset.b.volumes}.isdisjoint(ct_cases)  # B: the other patients' MRI
    key, batch = _batch(task)
    assert batch["A"].shape == batch["A_paired"].shape == batch["A_label"].shape == (1, 1, 32, 32)
    ia = key[1] % len(a)
    hits = _locate(a.image(ia), batch["A"][0].numpy())
    assert hits, "A is not a window of its CT-on-MR slice"
    # the MRI target and the liver label went through the same window
    assert any(np.array_equal(_window(a.target(ia), 32, *h), batch["A_paired"][0].numpy())
               and np.array_equal(_window(a.label(ia)[None], 32, *h), batch["A_label"][0].numpy()) for h in hits)


def test_essnet_lambda_paired_adds_exactly_its_l1_term(training_phantom, training_cache):
    taskp, pbatch, outp, out0, expected = _paired_and_plain_step("essnet", training_phantom, training_cache)
    assert "paired" not in out0
    assert float(outp["paired"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(outp["G"] - outp["paired"]) == pytest.approx(float(out0["G"]), rel=1e-5)
    for k in ("seg", "cycle_A", "cycle_B"):
        assert torch.equal(outp[k], out0[k]), k
    hist = [float(taskp.train_step(pbatch)["paired"]) for _ in range(16)]
    assert hist[-1] < 0.8 * float(outp["paired"]), hist
