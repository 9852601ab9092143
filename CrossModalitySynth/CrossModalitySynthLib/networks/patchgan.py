"""PatchGAN discriminator of CycleGAN ("70x70 PatchGAN" with the default ``n_layers=3``).

Layer list (``ndf`` = base width, 64 by default; all kernels 4x4 with padding 1)::

    Conv s2 in->ndf, LeakyReLU(0.2)                   (no norm)
    Conv s2 ndf->2ndf, IN, LeakyReLU(0.2)             } n_layers - 1 stride-2 stages,
    Conv s2 2ndf->4ndf, IN, LeakyReLU(0.2)            } width doubling up to 8 ndf
    Conv s1 4ndf->8ndf, IN, LeakyReLU(0.2)
    Conv s1 8ndf->1                                   (no norm, no sigmoid: raw scores for LSGAN)

A 256x256 input gives a 30x30 score map; each score sees a 70x70 input patch. With the
default width the parameter counts are 2,762,689 / 2,763,713 / 2,764,737 for 1 / 2 / 3 input
channels.
"""

from typing import List

import torch
from torch import nn


class PatchGANDiscriminator(nn.Module):
    """Fully convolutional patch discriminator.

    Args:
        in_channels: channels of the judged image.
        ndf: width of the first layer.
        n_layers: number of stride-2 convolutions (3 gives the 70x70 receptive field).

    Shapes:
        input: (N, in_channels, H, W), float in [-1, 1].
        output: (N, 1, H', W') raw (unbounded) realness scores, one per overlapping patch;
        H' = 30 for H = 256 with the defaults (the smallest usable input is 24x24, which gives a 1x1 map).
    """

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("ndf", ndf), ("n_layers", n_layers)):
            if int(value) < 1:
                raise ValueError("PatchGANDiscriminator: {} must be >= 1, got {}.".format(name, value))
        self.in_channels = int(in_channels)
        self.ndf = int(ndf)
        self.n_layers = int(n_layers)

        k, p = 4, 1
        layers: List[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=k, stride=2, padding=p, bias=True),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=k, stride=2, padding=p, bias=True),
                nn.InstanceNorm2d(ndf * mult, affine=False, track_running_stats=False),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=k, stride=1, padding=p, bias=True),
            nn.InstanceNorm2d(ndf * mult, affine=False, track_running_stats=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * mult, 1, kernel_size=k, stride=1, padding=p, bias=True),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, 1, H', W') patch scores (no sigmoid)."""
        return self.model(x)


def receptive_field(model: nn.Module) -> int:
    """Receptive field (in input pixels) of a chain of Conv2d layers, in module order.

    Walks the convolutions from the last to the first: ``rf = (rf - 1) * stride + kernel``.
    Valid for plain sequential conv stacks such as :class:`PatchGANDiscriminator`.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    rf = 1
    for conv in reversed(convs):
        k = conv.kernel_size[0]
        s = conv.stride[0]
        d = conv.dilation[0]
        rf = (rf - 1) * s + d * (k - 1) + 1
    return rf
