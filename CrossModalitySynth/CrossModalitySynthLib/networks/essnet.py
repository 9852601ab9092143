"""EssNet: CycleGAN plus a segmentation network on the synthetic target image.

Domains: A = CT (with liver labels), B = MRI. ``seg = S(G_A(real_A))`` is supervised by A's
labels, so the segmentation loss back-propagates into G_A and discourages it from moving
anatomy. The training loop (losses, optimisers: one Adam over G_A, G_B and S, one per D)
lives in ``training/``; this module only holds and wires the networks.

Discriminator naming follows the CycleGAN reference implementation: ``D_A`` judges images of
domain **B** (real MRI vs. ``G_A``'s fake MRI) and ``D_B`` judges domain **A** (real CT vs.
``G_B``'s fake CT); i.e. ``D_X`` judges the output of ``G_X``.
"""

from typing import Any, Iterator, Mapping, Optional, Tuple

import torch
from torch import nn

from .factory import (
    KIND_DISCRIMINATOR,
    KIND_GENERATOR,
    KIND_UNET,
    NetworkConfig,
    NetworkConfigError,
    build_discriminator,
    build_generator,
    build_unet,
)


class EssNet(nn.Module):
    """Container of the five EssNet networks.

    Args:
        ct_channels: channels of domain A (CT), usually 1.
        mri_channels: channels of domain B (MRI), 1 to 3 sequences.
        ngf, n_blocks: generator width / residual blocks; ndf: discriminator width.
        seg_config: optional ``unet`` :class:`NetworkConfig` for S; its ``in_channels`` must equal
            ``mri_channels``. Default: 2-class (background, liver) U-Net on ``mri_channels``.
        init: initialise G and D with N(0, 0.02) (S keeps MONAI's initialisation).

    Attributes:
        G_A: CT -> MRI, (N, ct_channels, H, W) -> (N, mri_channels, H, W), values in [-1, 1].
        G_B: MRI -> CT, (N, mri_channels, H, W) -> (N, ct_channels, H, W), values in [-1, 1].
        S: segmentation on (synthetic) MRI, (N, mri_channels, H, W) -> logits (N, K, H, W).
        D_A: judges MRI (domain B), (N, mri_channels, H, W) -> (N, 1, H', W').
        D_B: judges CT (domain A), (N, ct_channels, H, W) -> (N, 1, H', W').
    """

    def __init__(
        self,
        ct_channels: int = 1,
        mri_channels: int = 1,
        ngf: int = 64,
        n_blocks: int = 9,
        ndf: int = 64,
        seg_config: Optional[NetworkConfig] = None,
        init: bool = True,
    ) -> None:
        super().__init__()
        if seg_config is None:
            seg_config = NetworkConfig(kind=KIND_UNET, in_channels=mri_channels, out_channels=2)
        if seg_config.kind != KIND_UNET or seg_config.in_channels != mri_channels:
            raise NetworkConfigError(
                "EssNet's segmentation network must be a 'unet' with in_channels == mri_channels "
                "({}), got kind {!r} with {} input channel(s).".format(
                    mri_channels, seg_config.kind, seg_config.in_channels
                )
            )
        self.ct_channels = int(ct_channels)
        self.mri_channels = int(mri_channels)
        self.configs = {
            "G_A": NetworkConfig(KIND_GENERATOR, in_channels=ct_channels, out_channels=mri_channels, ngf=ngf, n_blocks=n_blocks),
            "G_B": NetworkConfig(KIND_GENERATOR, in_channels=mri_channels, out_channels=ct_channels, ngf=ngf, n_blocks=n_blocks),
            "S": seg_config,
            "D_A": NetworkConfig(KIND_DISCRIMINATOR, in_channels=mri_channels, ndf=ndf),
            "D_B": NetworkConfig(KIND_DISCRIMINATOR, in_channels=ct_channels, ndf=ndf),
        }
        self.G_A = build_generator(self.configs["G_A"], init=init)
        self.G_B = build_generator(self.configs["G_B"], init=init)
        self.S = build_unet(seg_config)
        self.D_A = build_discriminator(self.configs["D_A"], init=init)
        self.D_B = build_discriminator(self.configs["D_B"], init=init)
        # H and W must suit both the generator (4) and the U-Net (16 by default).
        self.input_multiple = max(self.configs["G_A"].input_multiple, seg_config.input_multiple)

    def config_dict(self) -> Mapping[str, Any]:
        """Per-network configuration dicts (for a model bundle spec)."""
        return {name: cfg.to_dict() for name, cfg in self.configs.items()}

    def segment_synthetic(self, real_A: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Translate CT to synthetic MRI and segment it, keeping the graph through G_A.

        Args:
            real_A: (N, ct_channels, H, W) CT in [-1, 1]; H and W multiples of
                :attr:`input_multiple`.

        Returns:
            ``(fake_B, seg_logits)``: fake_B (N, mri_channels, H, W) in [-1, 1] and
            seg_logits (N, K, H, W) = S(fake_B) (raw logits). A loss on ``seg_logits`` against
            A's labels back-propagates into G_A (and S).
        """
        h, w = int(real_A.shape[-2]), int(real_A.shape[-1])
        m = self.input_multiple
        if h % m or w % m:
            raise ValueError(
                "EssNet needs H and W to be multiples of {}, got H={}, W={}: pad or crop the "
                "slices.".format(m, h, w)
            )
        fake_B = self.G_A(real_A)
        return fake_B, self.S(fake_B)

    def forward(self, real_A: torch.Tensor) -> torch.Tensor:
        """Segmentation logits S(G_A(real_A)), (N, K, H, W)."""
        return self.segment_synthetic(real_A)[1]

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of G_A, G_B and S (optimised together by one Adam)."""
        for net in (self.G_A, self.G_B, self.S):
            yield from net.parameters()

    def discriminators(self) -> Tuple[nn.Module, nn.Module]:
        """(D_A, D_B), each with its own optimiser."""
        return self.D_A, self.D_B
