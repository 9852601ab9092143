"""Loss functions of the three tasks.

- :class:`GANLoss`: LSGAN (mean squared error against 1 for real, 0 for fake; the reference
  default) or the vanilla GAN's binary cross-entropy on logits.
- :func:`l1`: cycle-consistency and identity losses.
- :func:`segmentation_loss`: EssNet's L_seg on ``S(G_A(real_A))`` (by default SynSeg-Net's
  ``dice_loss_norm`` form, see :data:`SEG_LOSSES`) and the U-Net's Dice + cross-entropy, from MONAI.

All losses are computed in float32 (network outputs under bf16 autocast are cast first).
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import SEG_LOSSES


class GANLoss(nn.Module):
    """Adversarial loss against a constant target map of the discriminator's output shape."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError("gan mode must be 'lsgan' or 'vanilla', got {!r}".format(mode))
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        pred = prediction.float()
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        if self.mode == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference in float32."""
    return F.l1_loss(a.float(), b.float())


# ``train.seg_loss`` values (cmsynth_training.config.SEG_LOSSES):
# - ``synseg``: SynSeg-Net's ``dice_loss_norm`` (EssNet's original code, MASILab/SynSeg-Net):
#   softmax, foreground classes only, the sums of ``p * g``, ``p ** 2`` and ``g ** 2`` pooled
#   over the batch and the pixels, ``Dice_c = 2 (sum p g + 1e-7) / (sum p^2 + sum g^2 + 1e-7)``,
#   averaged over the foreground classes. SynSeg-Net returns ``-Dice``; this returns
#   ``1 - Dice`` (the same gradient, a loss >= 0).
# - ``dice``: MONAI ``DiceLoss`` with its defaults (background included, per sample, plain
#   denominators, smoothing 1e-5; EssNet's default before issue 18).
# - ``ce``: cross-entropy; ``dice_ce``: MONAI ``DiceCELoss``.


def segmentation_loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(logits (N, K, H, W), labels (N, 1, H, W) int)`` for ``kind`` in :data:`SEG_LOSSES`.

    ``synseg`` is MONAI's ``DiceLoss(include_background=False, squared_pred=True, batch=True)``
    with SynSeg-Net's smoothing (numerator ``2e-7``, denominator ``1e-7``), which equals
    ``1 + dice_loss_norm`` (checked against the definition in Testing/training/test_essnet_seg_loss.py).
    The other Dice terms are MONAI's soft Dice on the softmax with one-hot labels (background
    included, smoothing 1e-5); cross-entropy is torch's on the logits.
    """
    from monai.losses import DiceCELoss, DiceLoss

    if kind == "synseg":
        fn = DiceLoss(to_onehot_y=True, softmax=True, include_background=False, squared_pred=True, batch=True,
                      smooth_nr=2e-7, smooth_dr=1e-7)
    elif kind == "dice":
        fn = DiceLoss(to_onehot_y=True, softmax=True)
    elif kind == "dice_ce":
        fn = DiceCELoss(to_onehot_y=True, softmax=True)
    elif kind == "ce":
        def fn(logits, labels):
            return F.cross_entropy(logits, labels[:, 0].long())
    else:
        raise ValueError("segmentation loss must be one of {}, got {!r}".format(", ".join(SEG_LOSSES), kind))

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return fn(logits.float(), labels.long() if kind == "ce" else labels.float())

    return loss
