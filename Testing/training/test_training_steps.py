"""One training step does what it should: repeated on one fixed batch, the losses go down."""

import numpy as np
import pytest
import torch

from testsupport.training import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401 (fixtures)

from cmsynth_training.data import EpochSampler
from cmsynth_training.trainer import build_task


def _fixed_batch(task, with_liver=False):
    sampler = EpochSampler(task.dataset, 1, 0, 0, 1)
    sampler.set_epoch(0)
    items = []
    for key in sampler:
        item = task.dataset[key]
        if not with_liver or int(item["label" if "label" in item else "A_label"].sum()) > 20:
            items.append(item)
        if len(items) == task.cfg.train.batch_size:
            break
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _repeat(task, batch, steps):
    task.setup_training()
    return [{k: float(v) for k, v in task.train_step(batch).items()} for _ in range(steps)]


def test_cyclegan_step_lowers_cycle_losses(training_phantom, training_cache):
    cfg = tiny_config("cyclegan", training_phantom, training_cache, data={"mr_sequences": ["t1_in", "t1_opp"]})
    task = build_task(cfg, cache_dir=training_cache)
    assert task.identity is False and "identity loss off" in task.identity_note  # 2-channel MRI -> CT
    batch = _fixed_batch(task)
    assert batch["A"].shape == (1, 2, 32, 32) and batch["B"].shape == (1, 1, 32, 32)
    hist = _repeat(task, batch, 8)
    for key in ("cycle_A", "cycle_B", "G"):
        assert hist[-1][key] < hist[0][key], (key, [h[key] for h in hist])
    assert set(hist[0]) == {"G_A", "G_B", "cycle_A", "cycle_B", "G", "D_A", "D_B"}
    assert len(task.pool_A) == 8 and len(task.pool_B) == 8


def test_cyclegan_identity_on_for_equal_channels(training_phantom, training_cache):
    cfg = tiny_config("cyclegan", training_phantom, training_cache)  # 1-channel T1 in-phase -> CT
    task = build_task(cfg, cache_dir=training_cache)
    assert task.identity and task.lambda_identity == 0.5
    hist = _repeat(task, _fixed_batch(task), 6)
    assert "idt_A" in hist[0] and hist[-1]["idt_A"] < hist[0]["idt_A"]
    # discriminators learn too: their loss falls on a fixed batch
    assert hist[-1]["D_A"] + hist[-1]["D_B"] < hist[0]["D_A"] + hist[0]["D_B"]


def test_essnet_step_lowers_segmentation_and_cycle(training_phantom, training_cache):
    cfg = tiny_config("essnet", training_phantom, training_cache, train={"lr": 1e-3})
    task = build_task(cfg, cache_dir=training_cache)
    batch = _fixed_batch(task, with_liver=True)  # SynSeg-Net's Dice (the default) has no gradient without liver
    assert batch["A_label"].shape == (1, 1, 32, 32) and batch["A_label"].dtype == torch.int64
    # the segmentation loss reaches G_A: its gradient is non-zero after one step
    task.setup_training()
    out = task.train_step(batch)
    assert "seg" in out and "idt_A" not in out  # EssNet has no identity term by default
    hist = [{k: float(v) for k, v in out.items()}] + [
        {k: float(v) for k, v in task.train_step(batch).items()} for _ in range(7)
    ]
    for key in ("seg", "cycle_A", "G"):
        assert hist[-1][key] < hist[0][key], (key, [h[key] for h in hist])
    # one Adam over G_A, G_B and S; one per discriminator
    assert set(task.optimizers) == {"G", "D_A", "D_B"}
    g_params = {id(p) for p in task.optimizers["G"].param_groups[0]["params"]}
    assert all(id(p) in g_params for p in task.S.parameters())
    assert all(id(p) in g_params for p in task.G_A.parameters())


def test_unet_step_lowers_dice_ce(training_phantom, training_cache):
    cfg = tiny_config("unet", training_phantom, training_cache, train={"batch_size": 4, "lr": 3e-3, "steps_per_epoch": 20})
    task = build_task(cfg, cache_dir=training_cache)
    batch = _fixed_batch(task, with_liver=True)
    assert batch["label"].max() == 1 and batch["label"].shape == (4, 1, 32, 32)
    hist = _repeat(task, batch, 8)
    assert hist[-1]["loss"] < hist[0]["loss"] - 0.05


def test_generator_gradients_stay_finite(training_phantom, training_cache):
    cfg = tiny_config("cyclegan", training_phantom, training_cache)
    task = build_task(cfg, cache_dir=training_cache)
    task.setup_training()
    task.train_step(_fixed_batch(task))
    for net in task.nets.values():
        for p in net.parameters():
            assert torch.isfinite(p).all()
    # the discriminators are trainable again after the step (frozen only during the G update)
    assert all(p.requires_grad for p in task.D_A.parameters())
    assert np.isfinite(task.lr)


def test_learning_rate_rule_and_autocast_choice():
    from cmsynth_training.task import LinearDecay, amp_enabled

    rule = LinearDecay(100, 100)  # the reference: 100 epochs constant, 100 linear decay
    assert [rule(e) for e in (0, 99)] == [1.0, 1.0]
    assert rule(100) == pytest.approx(1 - 1 / 101) and rule(199) == pytest.approx(1 / 101)
    # "auto" is bf16 on CUDA only; "bf16" asks for it on the CPU too; "off" never
    cpu = torch.device("cpu")
    assert not amp_enabled("auto", cpu) and amp_enabled("bf16", cpu) and not amp_enabled("off", cpu)


def test_bf16_on_the_cpu_runs_the_networks_in_bf16_and_still_learns(training_phantom, training_cache):
    cfg = tiny_config("cyclegan", training_phantom, training_cache, train={"amp": "bf16"})
    task = build_task(cfg, cache_dir=training_cache)
    assert task.amp
    seen = []
    hook = task.G_A.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    hist = _repeat(task, _fixed_batch(task), 8)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # the generator ran under autocast in every step
    assert all(p.dtype == torch.float32 for p in task.G_A.parameters())  # the weights stay float32
    for key in ("cycle_A", "cycle_B", "G"):
        assert hist[-1][key] < hist[0][key], (key, [h[key] for h in hist])


def test_bf16_autocast_on_a_cpu_that_emulates_bf16_is_said_to_be_slow(monkeypatch, tmp_path, training_phantom,
                                                                       training_cache):
    """train.amp bf16 on a CPU without AMX or AVX512-BF16 (there a step measured about 2x slower
    than fp32) writes a warning into the run log; on a CPU with native bf16, or with amp off, none."""
    from cmsynth_training import task as T
    from cmsynth_training.trainer import train

    cpu = torch.device("cpu")
    for kind, amp, warned in (("emulated", True, True), ("amx", True, False), ("avx512_bf16", True, False),
                              ("emulated", False, False)):
        monkeypatch.setattr(T, "cpu_bf16_kind", lambda kind=kind: kind)
        assert (T.cpu_amp_warning(amp, cpu) is not None) is warned, (kind, amp)
    monkeypatch.setattr(T, "cpu_bf16_kind", lambda: "emulated")
    out = tmp_path / "run"
    train(tiny_config("cyclegan", training_phantom, training_cache, train={"amp": "bf16", "max_steps": 1}), str(out),
          echo=False)
    with open(out / "log.txt") as f:
        log = f.read()
    assert "bf16 autocast on this CPU is emulated" in log and "set train.amp off" in log
