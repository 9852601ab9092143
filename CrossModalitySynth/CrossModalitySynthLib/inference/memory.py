"""Batch size from a memory budget.

The estimate is deliberately simple and conservative: the activations a 2D network keeps alive
per slice (a few full-resolution feature maps of its first width), the prepared input volume, the
output volume and the weights. The budget defaults to a quarter of the available RAM (CPU,
capped at 4 GiB) or half of the free GPU memory.
"""

import math
from typing import Optional, Tuple

from ..errors import InputError

MAX_BATCH = 32
MiB = 1024 * 1024


def available_memory_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 1024 * MiB


def default_budget_bytes(device: str) -> int:
    avail = available_memory_bytes(device)
    if device == "cuda":
        return avail // 2
    return min(avail // 4, 4 * 1024 * MiB)


def per_slice_bytes(network: dict, height: int, width: int) -> int:
    """Peak activation bytes of one slice for a network config dict (float32)."""
    kind = network.get("kind")
    if kind == "unet":
        width0 = int(network.get("channels", (16,))[0])
        maps = 8 * width0
    else:
        maps = 4 * int(network.get("ngf", 64))
    maps += int(network.get("in_channels", 1)) + int(network.get("out_channels", 1) or 1)
    return 4 * height * width * maps


def choose_batch_size(
    network: dict,
    array_shape: Tuple[int, int, int, int],
    weights_bytes: int,
    device: str,
    budget_bytes: Optional[int] = None,
    requested: Optional[int] = None,
) -> int:
    """Largest batch (<= MAX_BATCH, <= number of slices) that fits the budget.

    Raises InputError saying how much memory is needed when even batch size 1 does not fit.
    """
    c, z, h, w = array_shape
    budget = int(budget_bytes if budget_bytes is not None else default_budget_bytes(device))
    volumes = 4 * z * h * w * (c + 2) * (2 if device == "cpu" else 1)  # input, output, restore copy
    if device == "cuda":
        volumes = 4 * z * h * w * (c + 2)  # host-side volumes do not count against the GPU
    fixed = (weights_bytes * 2) + (volumes if device == "cpu" else 0)
    one = per_slice_bytes(network, h, w)
    if fixed + one > budget:
        need = math.ceil((fixed + one) / MiB)
        raise InputError(
            f"The input needs about {need} MiB at batch size 1 but the memory budget is "
            f"{budget // MiB} MiB; raise --memory-budget, free memory, or crop the volume."
        )
    fits = max(1, (budget - fixed) // one)
    batch = int(min(fits, MAX_BATCH, z))
    if requested:
        if requested > fits:
            raise InputError(
                f"Batch size {requested} needs about {math.ceil((fixed + requested * one) / MiB)} MiB but the budget is "
                f"{budget // MiB} MiB; use a smaller --batch-size or leave it out."
            )
        batch = int(min(requested, z))
    return max(1, batch)
