"""Distributed data parallel (DDP) under ``torchrun``: NCCL on GPUs, gloo on CPUs.

``torchrun --nproc_per_node N -m cmsynth_training cyclegan --config ...`` starts N processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set;
:func:`init_distributed` joins them into one process group. Each rank samples its own shard of
every epoch (``DistributedSampler``), gradients are averaged by DDP, so the replicas' parameters
stay identical; only rank 0 logs and writes checkpoints, and the losses it logs are averaged
over the ranks. The effective batch is ``train.batch_size x WORLD_SIZE``; the learning rate is
``train.lr`` unless ``train.lr_scaling: linear`` multiplies it by the world size. Without those variables (or with
``WORLD_SIZE=1``) everything runs in a single process and DDP is not used.
"""

import os
from dataclasses import dataclass
from typing import Any, Dict, List

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """"auto": CUDA (this rank's GPU) when available, else CPU."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from CrossModalitySynthLib.errors import ConfigError

        raise ConfigError("train.device is 'cuda' but no CUDA GPU is available; use auto or cpu.")
    return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))


def init_distributed(preference: str = "auto") -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (idempotent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = pick_device(preference, local_rank)
    if world <= 1:
        return DistInfo(0, 1, 0, device, "")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, device, backend)


def wrap(module: nn.Module, info: DistInfo) -> nn.Module:
    """DDP-wrap ``module`` when running distributed (else return it)."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    kwargs = {"device_ids": [info.device.index]} if info.device.type == "cuda" else {}
    return DDP(module, **kwargs)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def gather_objects(obj: Any, info: DistInfo) -> List[Any]:
    """Every rank's ``obj`` (a list on every rank; ``[obj]`` without DDP)."""
    if not info.enabled:
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: Dict[str, float], info: DistInfo) -> Dict[str, float]:
    """Each value averaged over the ranks (one all-reduce; every rank must call it with the
    same keys). Without DDP the values themselves."""
    if not info.enabled or not values:
        return dict(values)
    keys = sorted(values)
    device = info.device if info.backend == "nccl" else "cpu"
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist())}


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
