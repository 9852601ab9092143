"""Networks: CycleGAN ResNet generator, PatchGAN discriminator, MONAI liver U-Net, EssNet.

All networks work on 2D slices, tensors (N, C, H, W), images normalised to [-1, 1].
Build them from a :class:`NetworkConfig` (the form stored in model bundle specs)::

    from CrossModalitySynthLib.networks import NetworkConfig, build_network
    g = build_network(NetworkConfig(kind="resnet_generator", in_channels=2, out_channels=1))
"""

from .essnet import EssNet
from .factory import (
    KINDS,
    NetworkConfig,
    NetworkConfigError,
    build_discriminator,
    build_generator,
    build_network,
    build_unet,
)
from .init import init_weights
from .onnx_export import dynamo_exporter_available, export_onnx
from .patchgan import PatchGANDiscriminator, receptive_field
from .resnet_generator import GENERATOR_INPUT_MULTIPLE, ResidualBlock, ResnetGenerator
from .unet import build_liver_unet, unet_input_multiple

__all__ = [
    "EssNet",
    "GENERATOR_INPUT_MULTIPLE",
    "KINDS",
    "NetworkConfig",
    "NetworkConfigError",
    "PatchGANDiscriminator",
    "ResidualBlock",
    "ResnetGenerator",
    "build_discriminator",
    "build_generator",
    "build_liver_unet",
    "build_network",
    "build_unet",
    "dynamo_exporter_available",
    "export_onnx",
    "init_weights",
    "receptive_field",
    "unet_input_multiple",
]
