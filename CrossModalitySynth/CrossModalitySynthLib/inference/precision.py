"""The bf16 quality gate, measured per model bundle, and the precision ``auto`` picks.

The inference issue allows bf16 as a *default* only where it was measured to keep, on phantom
cases, the mean |sCT(bf16) - sCT(fp32)| under 1 HU and its 99th percentile under 5 HU (inside the
body, HU after restore). Whether bf16 passes depends on the weights, not only on the network
shape. Measured on this project's CPUs (Testing/test_engine_precision.py):

- the trained demo bundles (ngf 16, 6 blocks) in bf16: mean 0.45 / 0.63 HU, p99 1.7 / 2.9 HU
  inside the body (T1 in+opp / T2): inside the gate;
- a paper-size generator (ngf 64, 9 blocks) trained for 25 minutes on CHAOS-size phantoms at
  256 x 256: mean 0.32 HU, p99 1.45 HU: inside the gate;
- the paper-size ResNet-9 generator with random N(0, 0.02) weights: bf16 convolutions with float32
  InstanceNorm (the optimised bf16 path) mean 16 HU, p99 77 HU; bf16 autocast mean 27 HU, p99
  120 HU: far outside it;
- the optimised fp32 path against eager fp32: mean 0.01 HU, max about 0.1 HU, the same order as
  eager fp32 against float64.

So the gate is measured per bundle (:func:`measure_bf16_gate`, run by the training export and by
``python -m training.demo gate``) and recorded in it, at ``spec["metrics"]["bf16_gate"]``: one
record, or a dict of records keyed by device type ("cpu", "cuda").

``precision="auto"`` (:func:`resolve_precision`) runs bf16 only when all of these hold, else fp32:

1. the backend is torch (ONNX Runtime runs fp32 only);
2. the bundle is MR->CT (the gate is in HU);
3. the bundle has a record measured on the same device type (a "cpu" record counts for the CPU
   only; a CUDA run needs a "cuda" record) with ``passed`` true and numbers inside the limits;
4. the device has native bf16 (AMX or AVX512-BF16 on the CPU, ``torch.cuda.is_bf16_supported()``);
5. (checked by the engine once its runner is built) the bf16 runner path is the one the record was
   measured with (:func:`confirm_runner`).

The choice comes with a short reason, which the engine exposes and ``cmsynth`` writes into its
summary. "fp32" and "bf16" given explicitly are used as asked.
"""

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError
from .device import check_precision

#: The gate: mean and 99th percentile of |HU difference| inside the body.
GATE_MEAN_HU = 1.0
GATE_P99_HU = 5.0
#: Tolerance for an optimised fp32 path against the eager fp32 reference (max |HU difference|).
FP32_PATH_MAX_HU = 1.0
#: Only these bundles are gated (and can run bf16 under ``auto``): their output is in HU.
GATED_DIRECTION = "MR->CT"


class PrecisionChoice(NamedTuple):
    """The precision a run uses and why (a short sentence for summaries and logs)."""

    precision: str
    reason: str


def _array(image) -> np.ndarray:
    if isinstance(image, sitk.Image):
        return sitk.GetArrayFromImage(image).astype(np.float64)
    return np.asarray(image, dtype=np.float64)


def gate_statistics(test, reference, mask=None) -> Dict[str, float]:
    """|test - reference| statistics in HU (images or arrays of the same shape).

    Args:
        test, reference: sCT volumes in HU (SimpleITK images or arrays), same grid.
        mask: optional body mask (non-zero inside); None = every voxel.

    Returns:
        {"mean_hu", "p99_hu", "max_hu", "voxels"}.
    """
    a, b = _array(test), _array(reference)
    if a.shape != b.shape:
        raise ValueError(f"gate_statistics: shapes differ, {a.shape} vs {b.shape}.")
    diff = np.abs(a - b)
    if mask is not None:
        m = _array(mask) != 0
        if m.shape != diff.shape:
            raise ValueError(f"gate_statistics: mask shape {m.shape} differs from the images' {diff.shape}.")
        diff = diff[m]
    else:
        diff = diff.ravel()
    if diff.size == 0:
        raise ValueError("gate_statistics: the mask is empty.")
    return {
        "mean_hu": float(diff.mean()),
        "p99_hu": float(np.percentile(diff, 99)),
        "max_hu": float(diff.max()),
        "voxels": int(diff.size),
    }


def passes_gate(stats: Dict[str, float], mean_hu: Optional[float] = None, p99_hu: Optional[float] = None) -> bool:
    """True when ``stats`` (from :func:`gate_statistics`) are inside the bf16 quality gate."""
    mean_hu = GATE_MEAN_HU if mean_hu is None else mean_hu
    p99_hu = GATE_P99_HU if p99_hu is None else p99_hu
    return bool(stats["mean_hu"] < mean_hu and stats["p99_hu"] < p99_hu)


# ----------------------------------------------------------------------------- hardware


def cpu_bf16_kind() -> str:
    """"amx", "avx512_bf16" or "emulated": how this CPU runs bf16 in torch."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for name, kind in (("_is_amx_tile_supported", "amx"), ("_is_avx512_bf16_supported", "avx512_bf16")):
        probe = getattr(cpu, name, None)  # private helpers: older torch lacks them
        try:
            if probe is not None and probe():
                return kind
        except Exception:  # noqa: BLE001 - a failing probe means no native support
            pass
    return "emulated"


def native_bf16(device: str) -> bool:
    """True when ``device`` ("cpu" or "cuda") runs bf16 in hardware (AMX / AVX512-BF16; CUDA bf16)."""
    if device == "cpu":
        return cpu_bf16_kind() != "emulated"
    if device == "cuda":
        import torch

        try:
            return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        except Exception:  # noqa: BLE001
            return False
    return False


def _hardware(device: str) -> str:
    if device == "cpu":
        return cpu_bf16_kind()
    return "native bf16" if native_bf16(device) else "no native bf16"


# ----------------------------------------------------------------------------- records


def bundle_gate(spec: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The bf16 gate recorded in a bundle spec (``spec["metrics"]["bf16_gate"]``), or None."""
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    record = metrics.get("bf16_gate") if isinstance(metrics, dict) else None
    return record if isinstance(record, dict) else None


def gate_record(spec: Dict[str, Any], device: str) -> Optional[Dict[str, Any]]:
    """The bundle's gate record measured on ``device`` ("cpu" or "cuda"), or None.

    The stored value is one record (its ``device`` must equal ``device``) or a dict of records
    keyed by device type.
    """
    stored = bundle_gate(spec)
    if stored is None:
        return None
    if "device" in stored:
        return stored if stored["device"] == device else None
    record = stored.get(device)
    if isinstance(record, dict) and record.get("device", device) == device:
        return record
    return None


def merge_gate(stored: Optional[Dict[str, Any]], record: Dict[str, Any]) -> Dict[str, Any]:
    """``stored`` (a bundle's current gate value) with ``record`` replacing its device's entry.

    One device: the record itself; several: a dict keyed by device type.
    """
    if not stored:
        return record
    by_device = {stored["device"]: stored} if "device" in stored else dict(stored)
    by_device[record["device"]] = record
    return record if list(by_device) == [record["device"]] else by_device


def record_passes(record: Optional[Dict[str, Any]]) -> bool:
    """True when a record says ``passed`` and its numbers lie inside today's limits."""
    try:
        return record is not None and record.get("passed") is True and passes_gate(record)
    except (KeyError, TypeError):
        return False


def _numbers(record: Dict[str, Any]) -> str:
    try:
        return f"mean {float(record['mean_hu']):.2f} HU, p99 {float(record['p99_hu']):.2f} HU"
    except (KeyError, TypeError, ValueError):
        return "no numbers"


def resolve_precision(requested: str, device: str, spec: Dict[str, Any], backend: str = "torch") -> PrecisionChoice:
    """The precision a run uses: "fp32"/"bf16" as asked; "auto" by the rule of this module.

    Args:
        requested: "auto", "fp32" or "bf16".
        device: the resolved device, "cpu" or "cuda".
        spec: the bundle's spec.
        backend: "torch" or "onnx".
    """
    check_precision(requested)
    if requested != "auto":
        return PrecisionChoice(requested, f"{requested} requested")
    if backend != "torch":
        return PrecisionChoice("fp32", "auto: the ONNX backend runs fp32 only")
    direction = spec.get("direction")
    if direction != GATED_DIRECTION:
        return PrecisionChoice("fp32", "auto: the bf16 gate is measured in HU on MR->CT models only; "
                                       f"this is {direction}")
    record = gate_record(spec, device)
    if record is None:
        return PrecisionChoice("fp32", f"auto: the bundle has no bf16 gate measured on {device}")
    limits = f"limits {GATE_MEAN_HU:g} / {GATE_P99_HU:g} HU"
    if not record_passes(record):
        return PrecisionChoice("fp32",
                               f"auto: bf16 failed the bundle's gate on {device} ({_numbers(record)}; {limits})")
    if not native_bf16(device):
        return PrecisionChoice("fp32", f"auto: bf16 passed the bundle's gate but this {device} has no native bf16")
    return PrecisionChoice("bf16", f"auto: bf16 passed the bundle's gate on {device} ({_numbers(record)}; {limits}) "
                                   f"and the {device} has native bf16 ({_hardware(device)})")


def confirm_runner(choice: PrecisionChoice, requested: str, device: str, spec: Dict[str, Any],
                   runner_path: str) -> PrecisionChoice:
    """An ``auto`` bf16 choice stands only when the runner is the one the gate was measured with.

    Returns ``choice`` unchanged, or fp32 with the reason when ``runner_path`` differs from the
    record's ``runner_path``.
    """
    if requested != "auto" or choice.precision != "bf16":
        return choice
    measured = (gate_record(spec, device) or {}).get("runner_path")
    if measured and measured != runner_path:
        return PrecisionChoice("fp32", f"auto: the bundle's bf16 gate was measured on the {measured} runner, "
                                       f"this run would use {runner_path}")
    return choice


# ----------------------------------------------------------------------------- measuring


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

    from .engine import EngineOptions, load_model, synthesize

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
        ref = _array(synthesize(fp32, list(images)).image)
        test = _array(synthesize(bf16, list(images)).image)
        mask = _array(body) != 0
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


__all__ = [
    "FP32_PATH_MAX_HU",
    "GATE_MEAN_HU",
    "GATE_P99_HU",
    "PrecisionChoice",
    "bundle_gate",
    "confirm_runner",
    "cpu_bf16_kind",
    "gate_record",
    "gate_statistics",
    "measure_bf16_gate",
    "merge_gate",
    "native_bf16",
    "passes_gate",
    "record_passes",
    "resolve_precision",
]
