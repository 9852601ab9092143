"""Liver segmentation U-Net: a thin factory over :class:`monai.networks.nets.UNet` (2D).

Recommended head: ``out_channels=2`` (background, liver) trained with softmax cross-entropy
and/or soft Dice; the label is ``argmax`` over the channel axis. A single-channel sigmoid head
(``out_channels=1``) also works with this factory, but the 2-class softmax is the default because
it extends to more organs without changing the loss or post-processing code.
"""

from typing import Sequence, Tuple

from torch import nn

DEFAULT_UNET_CHANNELS: Tuple[int, ...] = (16, 32, 64, 128, 256)
DEFAULT_UNET_STRIDES: Tuple[int, ...] = (2, 2, 2, 2)


def unet_input_multiple(strides: Sequence[int]) -> int:
    """H and W given to the U-Net must be multiples of the product of its strides."""
    m = 1
    for s in strides:
        m *= int(s)
    return m


def build_liver_unet(
    in_channels: int = 1,
    out_channels: int = 2,
    channels: Sequence[int] = DEFAULT_UNET_CHANNELS,
    strides: Sequence[int] = DEFAULT_UNET_STRIDES,
    num_res_units: int = 2,
    dropout: float = 0.0,
) -> Tuple[nn.Module, int]:
    """Build a 2D MONAI U-Net for liver segmentation.

    Args:
        in_channels: 1 to 3 image channels (MRI sequences, or 1 for CT).
        out_channels: 2 (background, liver; softmax, recommended) or 1 (liver; sigmoid).
        channels: feature widths per level, e.g. (16, 32, 64, 128, 256).
        strides: downsampling per level transition; ``len(strides) == len(channels) - 1``.
        num_res_units: residual units per block (MONAI).
        dropout: dropout probability inside the blocks.

    Returns:
        ``(network, input_multiple)``: the network maps (N, in_channels, H, W) to logits
        (N, out_channels, H, W) (no activation); H and W must be multiples of
        ``input_multiple`` (16 for four stride-2 levels).
    """
    from monai.networks.nets import UNet  # imported here: MONAI is only needed for the U-Net

    if not 1 <= int(in_channels) <= 3:
        raise ValueError("Liver U-Net: in_channels must be 1, 2 or 3, got {}.".format(in_channels))
    if int(out_channels) not in (1, 2):
        raise ValueError(
            "Liver U-Net: out_channels must be 2 (background, liver; softmax) or 1 (sigmoid), "
            "got {}.".format(out_channels)
        )
    channels = tuple(int(c) for c in channels)
    strides = tuple(int(s) for s in strides)
    if len(channels) < 2 or len(strides) != len(channels) - 1:
        raise ValueError(
            "Liver U-Net: need at least 2 channel levels and len(strides) == len(channels) - 1, "
            "got channels={} strides={}.".format(channels, strides)
        )
    net = UNet(
        spatial_dims=2,
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        channels=channels,
        strides=strides,
        num_res_units=int(num_res_units),
        dropout=float(dropout),
    )
    return net, unet_input_multiple(strides)
