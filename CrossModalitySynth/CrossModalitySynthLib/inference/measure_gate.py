"""Measuring a bundle's bf16 quality gate (the engine in fp32 and in bf16) into the record :mod:`.precision` reads."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError
from .device import cpu_bf16_kind
from .engine import EngineOptions, load_model, synthesize
from .precision import GATE_MEAN_HU, GATE_P99_HU, GATED_DIRECTION, as_float_array, gate_statistics, passes_gate


def measure_bf16_gate(bundle, cases: Sequence[Tuple[Sequence[sitk.Image], sitk.Image]],
                      names: Optional[Sequence[Any]] = None, device: str = "cpu",
                      threads: Optional[int] = None) -> Dict[str, Any]:
    """Measure the bf16 gate of an MR->CT bundle on phantom cases: the engine in fp32 and in bf16.

    Args:
        bundle: a verified :class:`~CrossModalitySynthLib.registry.Bundle`.
        cases: ``[(input images in the bundle's input order, body mask), ...]``.
        names: what to record for each case (names or seeds); default 0, 1, ...
        device: "cpu" (default) or "cuda"; the torch backend either way.
        threads: CPU threads (None keeps the library default).

    Returns:
        A JSON-able record: device, cpu_bf16 (CPU) or cuda_device, torch, runner_path (the bf16
        runner's), cases, voxels, mean_hu, p99_hu, max_hu (pooled over the body voxels of all
        cases), limits and passed.
    """
    import torch

    if bundle.direction != GATED_DIRECTION:
        raise ConfigError(f"Model {bundle.id} is a {bundle.direction} model; the bf16 gate is measured in HU on "
                          "MR->CT models only.")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"The bf16 gate is measured on 'cpu' or 'cuda', not {device!r}.")
    cases = list(cases)
    if not cases:
        raise ConfigError("Measuring the bf16 gate needs at least one phantom case.")
    names = list(range(len(cases))) if names is None else list(names)
    if len(names) != len(cases):
        raise ConfigError(f"{len(names)} case names were given for {len(cases)} cases.")

    def engine(precision):
        return load_model(bundle, EngineOptions(device=device, precision=precision, backend="torch",
                                                threads=threads, force=True))

    fp32, bf16 = engine("fp32"), engine("bf16")
    tests: List[np.ndarray] = []
    refs: List[np.ndarray] = []
    for name, (images, body) in zip(names, cases):
        ref = as_float_array(synthesize(fp32, list(images)).image)
        test = as_float_array(synthesize(bf16, list(images)).image)
        mask = as_float_array(body) != 0
        if mask.shape != ref.shape:
            raise InputError(f"Case {name}: the body mask's grid {mask.shape[::-1]} differs from the first input's "
                             f"{ref.shape[::-1]}; give a mask on the input grid.")
        tests.append(test[mask])
        refs.append(ref[mask])
    stats = gate_statistics(np.concatenate(tests), np.concatenate(refs))
    record: Dict[str, Any] = {"device": device}
    if device == "cpu":
        record["cpu_bf16"] = cpu_bf16_kind()
    else:
        record["cuda_device"] = torch.cuda.get_device_name()
    record.update({
        "torch": torch.__version__,
        "runner_path": bf16.runner.path,
        "cases": [n if isinstance(n, (int, str)) else str(n) for n in names],
        "voxels": stats["voxels"],
        "mean_hu": stats["mean_hu"],
        "p99_hu": stats["p99_hu"],
        "max_hu": stats["max_hu"],
        "limits": {"mean_hu": GATE_MEAN_HU, "p99_hu": GATE_P99_HU},
        "passed": passes_gate(stats),
    })
    return record


__all__ = ["measure_bf16_gate"]
