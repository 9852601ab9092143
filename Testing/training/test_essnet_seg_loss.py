"""Issue 18 item 3: EssNet's segmentation loss as SynSeg-Net defines it, and SynSeg-Net's segmenter.

The definition below is written from SynSeg-Net's ``dice_loss_norm`` (MASILab/SynSeg-Net,
models/cycle_seg_model.py): softmax over the classes; per class c the sums over the batch and
the pixels of ``p * g``, ``p ** 2`` and ``g ** 2``; ``Dice_c = 2 (sum p g + 1e-7) /
(sum p^2 + sum g^2 + 1e-7)``; the loss is ``-sum_{c >= 1} Dice_c / (K - 1)`` (foreground only).
Ours is ``1 - Dice`` (the same gradient, a loss >= 0)."""

import pytest
import torch
import torch.nn.functional as F

from testsupport.training import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401 (fixtures)

from CrossModalitySynthLib.errors import ConfigError
from CrossModalitySynthLib.networks.resnet_generator import ResnetGenerator
from cmsynth_training.data import EpochSampler
from cmsynth_training.losses import segmentation_loss
from cmsynth_training.trainer import build_task


def dice_loss_norm(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SynSeg-Net's definition, written out (labels (N, 1, H, W) int -> one-hot)."""
    k = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    g = F.one_hot(labels[:, 0].long(), k).permute(0, 3, 1, 2).to(p.dtype)
    num = (p * g).sum(dim=(0, 2, 3))
    den = (p * p).sum(dim=(0, 2, 3)) + (g * g).sum(dim=(0, 2, 3))
    dice = 2 * (num + 1e-7) / (den + 1e-7)
    return -dice[1:].sum() / (k - 1)


def _batch(seed, n=4, hw=24, liver=(True, False, True, True), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, 2, hw, hw, generator=g) * 2).to(dtype).requires_grad_(True)
    labels = torch.zeros(n, 1, hw, hw, dtype=torch.long)
    for i, has in enumerate(liver):
        if has:  # a random liver blob
            y0, x0 = torch.randint(0, hw // 2, (2,), generator=g).tolist()
            labels[i, 0, y0:y0 + hw // 3 + i, x0:x0 + hw // 4 + 2] = 1
    return logits, labels


@pytest.mark.parametrize("seed, liver", [(0, (True, False, True, True)), (1, (True, True, True, True)),
                                         (2, (False, True, False, False)), (3, (True,))])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_synseg_loss_equals_the_definition(seed, liver, dtype):
    logits, labels = _batch(seed, n=len(liver), liver=liver, dtype=dtype)
    ours = segmentation_loss("synseg")(logits, labels)
    ref = dice_loss_norm(logits.double(), labels)
    assert abs(float(ours.detach()) - (1.0 + float(ref.detach()))) < 1e-6
    g_ours, = torch.autograd.grad(ours, logits)
    g_ref, = torch.autograd.grad(ref, logits)
    scale = float(g_ref.abs().max())
    assert scale > 1e-5  # a real gradient to compare
    assert float((g_ours.double() - g_ref).abs().max()) < 1e-6 * max(1.0, scale)


def test_gradient_on_slices_without_liver():
    """Pooled over the batch, a slice without liver still gets a gradient when another slice of
    the batch has liver (its foreground probabilities enter sum p^2: false positives cost); a
    batch without any liver gets practically none: Dice = 2e-7 / (sum p^2 + 1e-7), whose gradient
    is below 1e-9 per logit (the definition in float64 and ours in float32), against more than
    1e-6 from MONAI's defaults (``dice``), which push such a batch through the background class."""
    logits, labels = _batch(0, liver=(True, False, True, True))
    g, = torch.autograd.grad(segmentation_loss("synseg")(logits, labels), logits)
    assert float(g[1].abs().max()) > 1e-5  # slice 1 has no liver, the batch does
    logits, labels = _batch(5, n=2, liver=(False, False))
    g_ref, = torch.autograd.grad(dice_loss_norm(logits, labels), logits)
    assert float(g_ref.abs().max()) < 1e-9
    x32 = logits.detach().float().requires_grad_(True)
    g32, = torch.autograd.grad(segmentation_loss("synseg")(x32, labels), x32)
    assert float(g32.abs().max()) < 1e-9
    g_monai, = torch.autograd.grad(segmentation_loss("dice")(x32, labels), x32)
    assert float(g_monai.abs().max()) > 1e-6


def test_dice_option_is_monai_default_and_differs():
    from monai.losses import DiceLoss

    logits, labels = _batch(7, dtype=torch.float32)
    logits = logits.detach()
    old = segmentation_loss("dice")(logits, labels)
    assert float(old) == pytest.approx(float(DiceLoss(to_onehot_y=True, softmax=True)(logits, labels.float())), abs=1e-7)
    assert abs(float(old) - float(segmentation_loss("synseg")(logits, labels))) > 1e-3


def _liver_batch(task, n):
    sampler = EpochSampler(task.dataset, 1, 0, 0, 1)
    sampler.set_epoch(0)
    items = [task.dataset[k] for k in sampler]
    items = [it for it in items if int(it["A_label"].sum()) > 20][:n]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_essnet_default_is_synseg_and_its_gradient_into_G_A_is_the_definitions(training_phantom, training_cache):
    cfg = tiny_config("essnet", training_phantom, training_cache, train={"batch_size": 2})
    assert cfg.train.seg_loss == "synseg"  # the default, written into the config (and so the checkpoint)
    task = build_task(cfg, cache_dir=training_cache)
    assert task.seg_kind == "synseg"
    batch = _liver_batch(task, 2)
    a, lab = batch["A"], batch["A_label"]
    _, seg = task.essnet.segment_synthetic(a)
    loss = task.extra_generator_losses(batch, {"seg": seg})["seg"]
    params = list(task.G_A.parameters())
    g_ours = torch.autograd.grad(loss, params, retain_graph=True)
    ref = dice_loss_norm(seg.double(), lab)
    assert abs(float(loss.detach()) - (1.0 + float(ref.detach()))) < 1e-6
    g_ref = torch.autograd.grad(ref, params)
    flat_ours = torch.cat([g.flatten().double() for g in g_ours])
    flat_ref = torch.cat([g.flatten() for g in g_ref])
    assert float(flat_ref.abs().max()) > 0
    # ours is computed in float32 (as every loss), the definition here in float64: float32's precision
    assert float((flat_ours - flat_ref).abs().max()) <= 1e-5 * float(flat_ref.abs().max())
    # the previous default stays available
    cfg = tiny_config("essnet", training_phantom, training_cache, train={"seg_loss": "dice"})
    assert build_task(cfg, cache_dir=training_cache).seg_kind == "dice"


def test_resnet9_segmenter(training_phantom, training_cache):
    cfg = tiny_config("essnet", training_phantom, training_cache, model={"segmenter": "resnet9"}, train={"lr": 1e-3})
    task = build_task(cfg, cache_dir=training_cache)
    S = task.essnet.S
    assert isinstance(S, ResnetGenerator) and task.S is S
    assert task.essnet.configs["S"].n_blocks == 9 and task.essnet.configs["S"].out_channels == 2
    assert task.essnet.configs["S"].ngf == cfg.model.ngf
    # N(0, 0.02) weights, zero biases (SynSeg-Net's weights_init)
    convs = [m for m in S.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    w = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(w.mean())) < 2e-3 and float(w.std()) == pytest.approx(0.02, rel=0.05)
    assert all(m.bias is None or float(m.bias.detach().abs().max()) == 0.0 for m in convs)
    # S's parameters are trained with G_A and G_B by one Adam, and a few steps lower the loss
    task.setup_training()
    g_params = {id(p) for p in task.optimizers["G"].param_groups[0]["params"]}
    assert all(id(p) in g_params for p in S.parameters())
    batch = _liver_batch(task, 1)
    with torch.no_grad():
        logits = S(torch.zeros(1, 1, 32, 32))
    assert logits.shape == (1, 2, 32, 32) and float(logits.abs().max()) <= 1.0  # Tanh output, as in SynSeg-Net
    hist = [float(task.train_step(batch)["seg"]) for _ in range(6)]
    assert hist[-1] < hist[0], hist


def test_bad_seg_settings_are_named(training_phantom, training_cache):
    with pytest.raises(ConfigError, match="train.seg_loss 'dice_norm' is unknown; use synseg, dice, ce, dice_ce."):
        tiny_config("essnet", training_phantom, training_cache, train={"seg_loss": "dice_norm"})
    with pytest.raises(ConfigError, match="model.segmenter 'resnet6' is unknown; use unet or resnet9"):
        tiny_config("essnet", training_phantom, training_cache, model={"segmenter": "resnet6"})
