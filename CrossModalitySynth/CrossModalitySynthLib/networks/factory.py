"""Build networks from a small, serialisable configuration (stored in model bundle specs).

Example::

    cfg = NetworkConfig(kind="resnet_generator", in_channels=2, out_channels=1)
    spec["network"] = cfg.to_dict()
    # {'kind': 'resnet_generator', 'in_channels': 2, 'out_channels': 1, 'ngf': 64, 'n_blocks': 9}
    net = build_network(NetworkConfig.from_dict(spec["network"]))

Only the fields that apply to a kind are written by :meth:`NetworkConfig.to_dict` and accepted
by :meth:`NetworkConfig.from_dict`; an unknown or non-applicable key raises
:class:`NetworkConfigError` (a :class:`ValueError` and a :class:`ConfigError`) naming the key.
"""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from torch import nn

from ..errors import ConfigError
from .init import init_weights
from .patchgan import PatchGANDiscriminator
from .resnet_generator import GENERATOR_INPUT_MULTIPLE, ResnetGenerator
from .unet import DEFAULT_UNET_CHANNELS, DEFAULT_UNET_STRIDES, build_liver_unet, unet_input_multiple

KIND_GENERATOR = "resnet_generator"
KIND_DISCRIMINATOR = "patchgan"
KIND_UNET = "unet"
KINDS = (KIND_GENERATOR, KIND_DISCRIMINATOR, KIND_UNET)

#: Fields (besides ``kind``) that each kind uses, in the order ``to_dict`` writes them.
KIND_FIELDS: Dict[str, Tuple[str, ...]] = {
    KIND_GENERATOR: ("in_channels", "out_channels", "ngf", "n_blocks"),
    KIND_DISCRIMINATOR: ("in_channels", "ndf", "n_layers"),
    KIND_UNET: ("in_channels", "out_channels", "channels", "strides", "num_res_units", "dropout"),
}

_DEFAULT_OUT_CHANNELS = {KIND_GENERATOR: 1, KIND_DISCRIMINATOR: 1, KIND_UNET: 2}


class NetworkConfigError(ConfigError, ValueError):
    """A network configuration is invalid (unknown key, wrong kind, bad value)."""


@dataclass
class NetworkConfig:
    """Architecture of one network.

    Attributes:
        kind: ``"resnet_generator"``, ``"patchgan"`` or ``"unet"``.
        in_channels: input image channels.
        out_channels: output channels; ``None`` means the kind's default (generator 1,
            U-Net 2 = background + liver). Not applicable to ``patchgan`` (always 1).
        ngf, n_blocks: ResNet generator width and residual block count (64, 9).
        ndf, n_layers: PatchGAN width and stride-2 layer count (64, 3 -> 70x70 patches).
        channels, strides, num_res_units, dropout: MONAI U-Net settings.
    """

    kind: str
    in_channels: int = 1
    out_channels: Optional[int] = None
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    n_layers: int = 3
    channels: Tuple[int, ...] = field(default=DEFAULT_UNET_CHANNELS)
    strides: Tuple[int, ...] = field(default=DEFAULT_UNET_STRIDES)
    num_res_units: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NetworkConfigError(
                "Unknown network kind {!r}: use one of {}.".format(self.kind, ", ".join(KINDS))
            )
        self.channels = tuple(self.channels)
        self.strides = tuple(self.strides)
        if self.out_channels is None:
            self.out_channels = _DEFAULT_OUT_CHANNELS[self.kind]
        used = KIND_FIELDS[self.kind]
        for f in fields(self):
            if f.name == "kind" or f.name in used:
                continue
            default = _DEFAULT_OUT_CHANNELS[self.kind] if f.name == "out_channels" else f.default
            if getattr(self, f.name) != default:
                raise NetworkConfigError(
                    "Network setting {!r} does not apply to kind {!r} (it uses: {}).".format(
                        f.name, self.kind, ", ".join(used)
                    )
                )
        self._validate()

    def _validate(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise NetworkConfigError(
                    "Network setting {!r} must be an integer >= {}, got {!r}.".format(name, minimum, value)
                )

        positive_int("in_channels", self.in_channels)
        positive_int("out_channels", self.out_channels)
        positive_int("ngf", self.ngf)
        positive_int("n_blocks", self.n_blocks, minimum=0)
        positive_int("ndf", self.ndf)
        positive_int("n_layers", self.n_layers)
        positive_int("num_res_units", self.num_res_units, minimum=0)
        for name in ("channels", "strides"):
            for v in getattr(self, name):
                positive_int(name, v)
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) or not 0.0 <= self.dropout < 1.0:
            raise NetworkConfigError("Network setting 'dropout' must be in [0, 1), got {!r}.".format(self.dropout))
        if self.kind == KIND_UNET:
            if not 1 <= self.in_channels <= 3:
                raise NetworkConfigError(
                    "The liver U-Net takes 1 to 3 input channels, got in_channels={}.".format(self.in_channels)
                )
            if self.out_channels not in (1, 2):
                raise NetworkConfigError(
                    "The liver U-Net has out_channels 2 (softmax, recommended) or 1 (sigmoid), "
                    "got {}.".format(self.out_channels)
                )
            if len(self.channels) < 2 or len(self.strides) != len(self.channels) - 1:
                raise NetworkConfigError(
                    "U-Net settings need len(strides) == len(channels) - 1 >= 1, got channels={} "
                    "strides={}.".format(list(self.channels), list(self.strides))
                )

    @property
    def input_multiple(self) -> int:
        """H and W of the input must be multiples of this (1 = any size)."""
        if self.kind == KIND_GENERATOR:
            return GENERATOR_INPUT_MULTIPLE
        if self.kind == KIND_UNET:
            return unet_input_multiple(self.strides)
        return 1

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict with ``kind`` and the fields that apply to it (tuples as lists)."""
        out: Dict[str, Any] = {"kind": self.kind}
        for name in KIND_FIELDS[self.kind]:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetworkConfig":
        """Inverse of :meth:`to_dict`; raises :class:`NetworkConfigError` naming a bad key."""
        if not isinstance(data, Mapping):
            raise NetworkConfigError(
                "A network configuration must be a mapping, got {}.".format(type(data).__name__)
            )
        if "kind" not in data:
            raise NetworkConfigError(
                "The network configuration has no 'kind': use one of {}.".format(", ".join(KINDS))
            )
        kind = data["kind"]
        if kind not in KINDS:
            raise NetworkConfigError("Unknown network kind {!r}: use one of {}.".format(kind, ", ".join(KINDS)))
        known = {f.name for f in fields(cls)}
        allowed = KIND_FIELDS[kind]
        for key in data:
            if key == "kind":
                continue
            if key not in known:
                raise NetworkConfigError(
                    "Unknown network configuration key {!r} for kind {!r}: allowed keys are {}.".format(
                        key, kind, ", ".join(("kind",) + allowed)
                    )
                )
            if key not in allowed:
                raise NetworkConfigError(
                    "Network configuration key {!r} does not apply to kind {!r}: allowed keys are {}.".format(
                        key, kind, ", ".join(("kind",) + allowed)
                    )
                )
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**kwargs)


ConfigLike = Union[NetworkConfig, Mapping[str, Any]]


def _as_config(config: ConfigLike, expected_kind: Optional[str]) -> NetworkConfig:
    cfg = config if isinstance(config, NetworkConfig) else NetworkConfig.from_dict(config)
    if expected_kind is not None and cfg.kind != expected_kind:
        raise NetworkConfigError(
            "Expected a network of kind {!r}, got {!r}.".format(expected_kind, cfg.kind)
        )
    return cfg


def build_generator(config: ConfigLike, init: bool = True) -> ResnetGenerator:
    """ResNet generator from a ``resnet_generator`` config; weights ~ N(0, 0.02) if ``init``."""
    cfg = _as_config(config, KIND_GENERATOR)
    net = ResnetGenerator(cfg.in_channels, cfg.out_channels, ngf=cfg.ngf, n_blocks=cfg.n_blocks)
    return init_weights(net) if init else net


def build_discriminator(config: ConfigLike, init: bool = True) -> PatchGANDiscriminator:
    """PatchGAN from a ``patchgan`` config; weights ~ N(0, 0.02) if ``init``."""
    cfg = _as_config(config, KIND_DISCRIMINATOR)
    net = PatchGANDiscriminator(cfg.in_channels, ndf=cfg.ndf, n_layers=cfg.n_layers)
    return init_weights(net) if init else net


def build_unet(config: ConfigLike, init: bool = False) -> nn.Module:
    """MONAI liver U-Net from a ``unet`` config.

    Keeps MONAI's default initialisation unless ``init`` (then N(0, 0.02) as for the GAN).
    The required input multiple is ``config.input_multiple``.
    """
    cfg = _as_config(config, KIND_UNET)
    net, _ = build_liver_unet(
        cfg.in_channels,
        cfg.out_channels,
        channels=cfg.channels,
        strides=cfg.strides,
        num_res_units=cfg.num_res_units,
        dropout=cfg.dropout,
    )
    return init_weights(net) if init else net


def build_network(config: ConfigLike, init: Optional[bool] = None) -> nn.Module:
    """Build any kind; ``init=None`` uses each builder's default."""
    cfg = _as_config(config, None)
    builder = {KIND_GENERATOR: build_generator, KIND_DISCRIMINATOR: build_discriminator, KIND_UNET: build_unet}[cfg.kind]
    return builder(cfg) if init is None else builder(cfg, init=init)
