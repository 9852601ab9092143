"""The batched CycleGAN step (``train.batched_step``, the default) is the reference step's maths:
from the same weights on the same batches, the first step's losses are bit-identical, and losses
and weights stay equal to float rounding over several steps, with and without the identity
term; it makes three generator calls instead of six."""

import pytest
import torch

from testsupport.training import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401 (fixtures)

from cmsynth_training.data import EpochSampler
from cmsynth_training.trainer import build_task


def _batches(task, n):
    sampler = EpochSampler(task.dataset, 1, 0, 0, task.cfg.train.batch_size)
    sampler.set_epoch(0)
    keys = list(sampler)
    bs = task.cfg.train.batch_size
    out = []
    for i in range(n):
        items = [task.dataset[k] for k in keys[i * bs:(i + 1) * bs]]
        out.append({k: torch.stack([it[k] for it in items]) for k in items[0]})
    return out


def _pair(phantom, cache, data=None, task="cyclegan", **train):
    """The reference step and the batched step, from the same weights."""
    tasks = []
    for batched in (False, True):
        cfg = tiny_config(task, phantom, cache, data=dict(data or {}), train={"batched_step": batched, **train})
        tasks.append(build_task(cfg, cache_dir=cache))
    ref, bat = tasks
    for name, net in ref.nets.items():
        bat.nets[name].load_state_dict(net.state_dict())
    ref.setup_training()
    bat.setup_training()
    return ref, bat


def _run(task, batches):
    return [{k: v.clone() for k, v in task.train_step(b).items()} for b in batches]


@pytest.mark.parametrize("channels", [["t1_in"], ["t1_in", "t1_opp"]], ids=["identity-on", "identity-off"])
def test_batched_step_gives_the_reference_losses_and_weights(training_phantom, training_cache, channels):
    ref, bat = _pair(training_phantom, training_cache, data={"mr_sequences": channels}, batch_size=2)
    assert bat.gen.batched and not ref.gen.batched
    assert ref.identity is (len(channels) == 1)
    batches = _batches(ref, 4)
    a, b = _run(ref, batches), _run(bat, batches)
    # the first step's losses are bit-identical: the forward maths is the same per sample
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), (k, float(a[0][k]), float(b[0][k]))
    # later steps: a batched backward sums the samples' weight gradients in another order, so
    # the weights (and then the losses) agree to float rounding, not bit for bit
    for step, (la, lb) in enumerate(zip(a[1:], b[1:]), 1):
        for k in la:
            assert torch.allclose(la[k], lb[k], rtol=1e-5, atol=1e-7), (step, k, float(la[k]), float(lb[k]))
    # the trained networks compute the same images. (Their raw parameters are not compared: a
    # convolution bias followed by InstanceNorm has a zero gradient in exact arithmetic, so Adam
    # turns rounding noise into steps of either sign, different in the two runs, with no effect
    # on any output.)
    x = {"A": batches[0]["A"], "B": batches[0]["B"]}
    with torch.no_grad():
        for name, key in (("G_A", "A"), ("G_B", "B"), ("D_A", "B"), ("D_B", "A")):
            ya, yb = ref.nets[name](x[key]), bat.nets[name](x[key])
            assert torch.allclose(ya, yb, rtol=1e-4, atol=1e-5), (name, float((ya - yb).abs().max()))


def test_batched_step_batch_one_small_crop_agrees_to_rounding(training_phantom, training_cache):
    # With one sample at 32 x 32, oneDNN may pick another convolution kernel for the 2- and
    # 3-sample calls of the batched step; the maths is the same, the values agree to float
    # rounding (documented in cmsynth_training.cyclegan.Generators).
    ref, bat = _pair(training_phantom, training_cache, batch_size=1)
    batches = _batches(ref, 3)
    for la, lb in zip(_run(ref, batches), _run(bat, batches)):
        for k in la:
            assert torch.allclose(la[k], lb[k], rtol=1e-5, atol=1e-6), (k, float(la[k]), float(lb[k]))


def test_batched_step_makes_three_generator_calls_instead_of_six(training_phantom, training_cache):
    ref, bat = _pair(training_phantom, training_cache, batch_size=2)
    counts = {}
    for name, task in (("ref", ref), ("bat", bat)):
        calls = []
        hooks = [task.nets[g].register_forward_hook(lambda m, i, o, g=g: calls.append((g, i[0].shape[0])))
                 for g in ("G_A", "G_B", "D_A", "D_B")]
        task.train_step(_batches(task, 1)[0])
        for h in hooks:
            h.remove()
        counts[name] = calls
    gen = lambda calls: [c for c in calls if c[0].startswith("G")]  # noqa: E731
    assert len(gen(counts["ref"])) == 6 and len(gen(counts["bat"])) == 3
    # G_A on [real_A, real_B] (4 samples at batch 2), G_B on [fake_B, real_B, real_A] (6)
    assert gen(counts["bat"])[:2] == [("G_A", 4), ("G_B", 6)]
    # discriminator step: one call per discriminator on [real, fake]
    dis = [c for c in counts["bat"] if c[0].startswith("D")]
    assert dis[-2:] == [("D_A", 4), ("D_B", 4)]


def test_essnet_batched_step_gives_the_reference_losses(training_phantom, training_cache):
    # EssNet shares the cycle (its first call segments the synthetic MRI): G_B on [fake_B, real_B]
    ref, bat = _pair(training_phantom, training_cache, task="essnet", batch_size=2)
    assert bat.gen.batched and not ref.gen.batched
    batches = _batches(ref, 3)
    a, b = _run(ref, batches), _run(bat, batches)
    assert "seg" in a[0] or any(k.startswith("seg") for k in a[0])
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), (k, float(a[0][k]), float(b[0][k]))
    for la, lb in zip(a[1:], b[1:]):
        for k in la:
            assert torch.allclose(la[k], lb[k], rtol=1e-5, atol=1e-7), (k, float(la[k]), float(lb[k]))
