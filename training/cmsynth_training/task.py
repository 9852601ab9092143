"""What every task (cyclegan, essnet, unet) provides to the training loop in :mod:`.trainer`.

A task owns its networks, optimisers, learning-rate schedulers and data set; the loop calls
:meth:`Task.build_data`, :meth:`Task.setup_training`, then :meth:`Task.train_step` per batch and
:meth:`Task.validate` / :meth:`Task.preview` per epoch. Everything a checkpoint needs is in
:attr:`nets`, :attr:`optimizers`, :attr:`schedulers` and :meth:`extra_state`.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from CrossModalitySynthLib.inference.device import cpu_bf16_kind
from CrossModalitySynthLib.networks import NetworkConfig
from CrossModalitySynthLib.preprocess import ModelGridSpec

from .config import MR_SEQUENCES, Config, required_multiple
from .data import AugmentSettings, CaseRef, PairedSliceSet, SliceSet, cached_volume, validation_cases
from .distributed import DistInfo
from .validation import autocast
from .logs import RunLogger


class LinearDecay:
    """The reference's rule: factor 1 for ``n_const`` epochs, then linear towards 0 over
    ``n_decay`` epochs: ``1 - max(0, epoch + 1 - n_const) / (n_decay + 1)``.

    A class (not a lambda) so that ``LambdaLR.state_dict`` stores its settings."""

    def __init__(self, n_const: int, n_decay: int):
        self.n_const = int(n_const)
        self.n_decay = int(n_decay)

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.n_const) / float(self.n_decay + 1)


def set_requires_grad(nets: Sequence[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def amp_enabled(setting: str, device: torch.device) -> bool:
    """bf16 autocast: "auto" on CUDA GPUs that support bf16, never on the CPU; "bf16" on CUDA
    (with bf16 support) and on the CPU, where it pays only on CPUs with bf16 matrix instructions
    (Intel AMX, AVX512-BF16); "off" never."""
    if setting == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if setting == "bf16":
        return device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    return False


def cpu_amp_warning(amp: bool, device: torch.device) -> Optional[str]:
    """A sentence for the run log when bf16 autocast is on (``amp``) on a CPU that only emulates
    bf16 (neither AMX nor AVX512-BF16: there a training step is about 2x slower than fp32);
    else None."""
    if not amp or device.type != "cpu" or cpu_bf16_kind() != "emulated":
        return None
    return ("warning: bf16 autocast on this CPU is emulated (no AMX or AVX512-BF16), so training is slower "
            "than in fp32 (about 2x when measured); set train.amp off here.")


class Task:
    """Base class; subclasses set :attr:`name` and implement the abstract methods."""

    name = ""

    def __init__(self, cfg: Config, dist: DistInfo, log: Optional[RunLogger] = None):
        self.cfg = cfg
        self.dist = dist
        self.device = dist.device
        self.log = log or RunLogger("", enabled=False)
        self.amp = amp_enabled(cfg.train.amp, self.device)
        self.nets: Dict[str, nn.Module] = {}
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.schedulers: Dict[str, Any] = {}
        self.dataset: Optional[Dataset] = None
        self.data_summary: Dict[str, Any] = {}
        self.spec: ModelGridSpec = cfg.grid_spec(required_multiple(cfg))
        self.aug = AugmentSettings(cfg.data.load_size, cfg.data.crop_size, cfg.data.flip, cfg.data.intensity_aug)
        self._preview_sets: List[Tuple[SliceSet, bool]] = []

    # ---- helpers --------------------------------------------------------------------------
    @property
    def mr_sequences(self) -> Tuple[str, ...]:
        return tuple(self.cfg.data.mr_sequences)

    @property
    def base_lr(self) -> float:
        """``train.lr``, times the world size with ``train.lr_scaling: linear`` under DDP."""
        t = self.cfg.train
        return t.lr * (self.dist.world_size if t.lr_scaling == "linear" else 1)

    def adam(self, params, beta1: Optional[float] = None) -> torch.optim.Optimizer:
        """Adam at :attr:`base_lr`; the fused CUDA kernel on a GPU (the same update rule)."""
        t = self.cfg.train
        extra = {"fused": True} if self.device.type == "cuda" else {}
        return torch.optim.Adam(params, lr=self.base_lr, betas=(t.beta1 if beta1 is None else beta1, t.beta2), **extra)

    def compiled(self, module: nn.Module) -> nn.Module:
        """``module``, or ``torch.compile(module)`` with ``train.compile`` (not measured yet)."""
        mode = self.cfg.train.compile
        if mode == "off":
            return module
        return torch.compile(module, mode=None if mode == "default" else mode)

    def make_schedulers(self) -> None:
        t = self.cfg.train
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, LinearDecay(t.epochs, t.epochs_decay))
            for name, opt in self.optimizers.items()
        }

    @property
    def lr(self) -> float:
        opt = next(iter(self.optimizers.values()))
        return float(opt.param_groups[0]["lr"])

    def autocast(self):
        return autocast(self.device, self.amp)

    def slice_set(self, cache_dir: str, refs: Sequence[CaseRef], with_label: bool, name: str) -> SliceSet:
        vols = [cached_volume(cache_dir, r, self.spec, with_label) for r in refs]
        for v in vols:
            for w in v.meta.get("warnings", []):
                self.log.info("{}: {}".format(v.meta["ref"], w))
        return SliceSet(vols, self.cfg.data.min_foreground, name)

    def paired_slice_set(self, cache_dir: str, refs: Sequence[CaseRef], target_refs: Sequence[CaseRef],
                         with_label: bool, name: str) -> PairedSliceSet:
        """:meth:`slice_set` of ``refs`` with, per volume, the same patient's ``target_refs``
        volume on the same model grid (the phantom pairs of ``train.lambda_paired``)."""
        vols = [cached_volume(cache_dir, r, self.spec, with_label) for r in refs]
        targets = [cached_volume(cache_dir, r, self.spec, False) for r in target_refs]
        return PairedSliceSet(vols, targets, self.cfg.data.min_foreground, name)

    def val_refs(self, kind: str = "MR") -> List[CaseRef]:
        v = self.cfg.val
        return [CaseRef(v.dataset, v.root, c, kind, self.mr_sequences if kind == "MR" else ()) for c in validation_cases(self.cfg, kind)]

    def preview_inputs(self, n: int = 3) -> List[Dict[str, torch.Tensor]]:
        """Up to ``n`` fixed whole slices (model grid, no augmentation) spread over the first preview
        set; with labels, over its slices that show the liver (all slices when none does)."""
        out = []
        for s, with_label in self._preview_sets[:1]:
            pool = np.arange(len(s))
            if with_label:
                shown = np.flatnonzero([s.label(int(i)).any() for i in pool])
                pool = shown if len(shown) else pool
            picks = pool[np.linspace(0, len(pool) - 1, num=min(n, len(pool))).round().astype(int)]
            for i in picks:
                img = torch.from_numpy(s.image(int(i)))
                lab = torch.from_numpy(s.label(int(i)))[None] if with_label else None
                out.append({"image": img, "label": lab})
        return out

    # ---- to implement -----------------------------------------------------------------------
    def build_networks(self) -> None:
        raise NotImplementedError

    def build_data(self, cache_dir: str, length: Optional[int] = None) -> Dataset:
        raise NotImplementedError

    def setup_training(self) -> None:
        raise NotImplementedError

    def train_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def preview(self) -> Tuple[List[List[np.ndarray]], List[str]]:
        return [], []

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        return {}

    def extra_state(self) -> Dict[str, Any]:
        return {}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        pass

    def export_target(self, which: str = "A") -> Dict[str, Any]:
        """``{"net", "config" (NetworkConfig), "direction", "inputs", "output"}`` of the deployable network."""
        raise NotImplementedError

    # ---- spec pieces ------------------------------------------------------------------------
    def mr_inputs(self) -> List[Dict[str, str]]:
        return [{"name": s, "modality": "MR", "sequence": MR_SEQUENCES[s][0]} for s in self.mr_sequences]

    @staticmethod
    def ct_inputs() -> List[Dict[str, str]]:
        return [{"name": "ct", "modality": "CT", "sequence": "CT"}]

    def ct_output(self) -> Dict[str, Any]:
        return {"modality": "CT", "unit": "HU", "range": [float(v) for v in self.spec.ct_window]}

    def mr_output(self) -> Dict[str, Any]:
        return {
            "modality": "MR",
            "unit": "arbitrary (the spec's mr_output_range)",
            "range": [float(v) for v in self.spec.mr_output_range],
            "sequence": ", ".join(MR_SEQUENCES[s][0] for s in self.mr_sequences),
            "sequences": list(self.mr_sequences),
        }


def liver_unet_config(m, in_channels: int) -> NetworkConfig:
    """The liver U-Net of ``model`` (``unet_channels``, ``unet_strides`` ...): 2 classes, background and liver."""
    return NetworkConfig("unet", in_channels=in_channels, out_channels=2, channels=tuple(m.unet_channels),
                         strides=tuple(m.unet_strides), num_res_units=m.num_res_units, dropout=m.dropout)


def first_channel(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor -> first channel as a float32 array (for the PNG grid)."""
    return t.detach().float().cpu().numpy()[0]
