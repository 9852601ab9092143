"""Weight initialisation of the CycleGAN reference: normal(0, 0.02)."""

from torch import nn

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place and return it.

    Convolution, transposed-convolution and linear weights ~ N(0, std), their biases = 0;
    affine normalisation layers: weight ~ N(1, std), bias = 0 (the ResNet generator and the
    PatchGAN use non-affine InstanceNorm, which has nothing to initialise). Seed with
    :func:`torch.manual_seed` beforehand for reproducible weights.
    """
    for m in net.modules():
        if isinstance(m, _CONV_TYPES):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORM_TYPES) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net
