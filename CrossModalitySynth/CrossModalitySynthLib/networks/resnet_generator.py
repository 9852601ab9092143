"""ResNet generator of CycleGAN ("ResNet-9" with the default ``n_blocks=9``).

Layer list (``ngf`` = base width, 64 by default)::

    ReflectionPad(3), Conv7x7 in->ngf, IN, ReLU
    2 x [Conv3x3 stride 2 pad 1, IN, ReLU]                ngf -> 2 ngf -> 4 ngf
    n_blocks x ResidualBlock(4 ngf)                       out = x + block(x)
    2 x [ConvTranspose3x3 s2 p1 output_padding 1, IN, ReLU]  4 ngf -> 2 ngf -> ngf
    ReflectionPad(3), Conv7x7 ngf->out, Tanh

``IN`` is :class:`torch.nn.InstanceNorm2d` with ``affine=False`` and
``track_running_stats=False`` (so train and eval mode compute the same thing); every
convolution keeps its bias. With the default width the parameter counts are 11,365,633
(1 -> 1 channel), 11,368,769 (2 -> 1) and 11,378,179 (3 -> 3).
"""

from typing import List

import torch
from torch import nn

#: Spatial sizes (H and W) must be multiples of this (two stride-2 stages).
GENERATOR_INPUT_MULTIPLE = 4


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def _is_tracing_or_compiling() -> bool:
    """True while torch.jit tracing, torch.compile or torch.export traces the module."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, "compiler", None)
    for name in ("is_compiling", "is_exporting", "is_dynamo_compiling"):
        fn = getattr(compiler, name, None) if compiler is not None else None
        if fn is not None and fn():
            return True
    return False


class ResidualBlock(nn.Module):
    """``out = x + block(x)`` with block = ReflPad1, Conv3x3, IN, ReLU, ReflPad1, Conv3x3, IN.

    Input and output: (N, C, H, W) with the same C, H and W.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, padding=0, bias=True),
            _instance_norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, padding=0, bias=True),
            _instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator: image-to-image translation of 2D slices.

    Args:
        in_channels: channels of the input image (e.g. 1 to 3 MRI sequences, or 1 for CT).
        out_channels: channels of the output image.
        ngf: width of the first layer; the bottleneck has ``4 * ngf`` channels.
        n_blocks: number of residual blocks at the bottleneck (9 = "ResNet-9").

    Shapes:
        input: (N, in_channels, H, W), float, normalised to [-1, 1].
        output: (N, out_channels, H, W), float in [-1, 1] (Tanh).
        H and W must be multiples of 4 (:data:`GENERATOR_INPUT_MULTIPLE`); otherwise
        :meth:`forward` raises :class:`ValueError`, because the two stride-2 stages would
        not map back to the input size.
    """

    input_multiple = GENERATOR_INPUT_MULTIPLE

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("ngf", ngf)):
            if int(value) < 1:
                raise ValueError("ResnetGenerator: {} must be >= 1, got {}.".format(name, value))
        if int(n_blocks) < 0:
            raise ValueError("ResnetGenerator: n_blocks must be >= 0, got {}.".format(n_blocks))
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.ngf = int(ngf)
        self.n_blocks = int(n_blocks)

        layers: List[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=True),
            _instance_norm(ngf),
            nn.ReLU(inplace=True),
        ]
        ch = ngf
        for _ in range(2):  # downsampling
            layers += [
                nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=1, bias=True),
                _instance_norm(ch * 2),
                nn.ReLU(inplace=True),
            ]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):  # upsampling
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True),
                _instance_norm(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ch, out_channels, kernel_size=7, padding=0, bias=True),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        if not _is_tracing_or_compiling():
            check_generator_input(x, self.in_channels)
        return self.model(x)


def check_generator_input(x: torch.Tensor, in_channels: int) -> None:
    """Raise ValueError unless ``x`` is (N, in_channels, H, W) with H, W multiples of 4."""
    if x.dim() != 4:
        raise ValueError(
            "ResnetGenerator expects a 4D tensor (N, C, H, W), got shape {}.".format(tuple(x.shape))
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            "ResnetGenerator expects {} input channel(s), got {} (shape {}).".format(
                in_channels, x.shape[1], tuple(x.shape)
            )
        )
    h, w = int(x.shape[-2]), int(x.shape[-1])
    m = GENERATOR_INPUT_MULTIPLE
    if h % m or w % m:
        raise ValueError(
            "ResnetGenerator needs H and W to be multiples of {}, got H={}, W={}: pad or crop "
            "the slice (e.g. to {}x{}).".format(m, h, w, -(-h // m) * m, -(-w // m) * m)
        )
